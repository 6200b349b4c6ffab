//! The set of fakes one run uses: the LLM, the weather and tickets tools, Redis, the OTLP
//! collector and the MCP tool server, each with its own switchboard (seeded apart) and journal. `faultline fakes up` holds the same set on
//! fixed ports for a target started by hand.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::fault::Switchboard;
use super::journal::{Attempt, AttemptSpooler, Journal, Spooler};
use super::llm::{self, ApiKey, LlmOptions};
use super::mcp;
use super::otlp::{self, SpanJournal, SpanRecord};
use super::redis::{self, RedisOptions};
use super::tool::{self, WriteLedger, WriteOutcome};
use super::{FakeError, FakeHandle};
use crate::evidence::{AttemptStore, SpanStore, WriteAttempt};
use crate::scenario::{FakeName, FakeOptions};

/// The API key faultline gives the service (`{llm_key}`). The fake LLM accepts any key (and
/// none), as other LLM fakes do, and journals whether each attempt sent this one, another or
/// none, so a service that sends no key or a hard-coded one is named in the report instead of
/// failing every request with 401. Also a canary: it must never show up in logs or answers.
pub const FAKE_LLM_KEY: &str = "sk-faultline-canary-7c1e9a20d4b84f55";
/// Attempts each fake's journal keeps.
const JOURNAL_CAPACITY: usize = 200_000;
/// Spans the OTLP collector keeps (a request makes a handful).
const SPAN_CAPACITY: usize = 500_000;
/// Export attempts the OTLP collector journals (kept apart from the upstream attempts).
const EXPORT_JOURNAL_CAPACITY: usize = 10_000;

/// The fakes of one run (or of `faultline fakes up`).
pub struct FakeSet {
    llm: FakeHandle,
    weather: FakeHandle,
    tickets: FakeHandle,
    /// Every write the tickets fake received, for duplicate side effects.
    ledger: Arc<WriteLedger>,
    redis: FakeHandle,
    /// The OTLP collector; its export attempts are not upstream calls, so they stay out of
    /// [`FakeSet::attempts`].
    otlp: FakeHandle,
    spans: Arc<SpanJournal>,
    mcp: FakeHandle,
    /// Every upstream attempt and span, streamed for the run's evidence (see
    /// `fakes::journal`); off for `faultline fakes up`.
    attempt_spooler: Arc<AttemptSpooler>,
    span_spooler: Arc<Spooler<SpanRecord>>,
}

impl FakeSet {
    /// Starts every fake; on fixed ports from `base_port` up when given (llm, weather,
    /// tickets, redis, otlp, mcp), else on ephemeral ones. Journal times count from `epoch`.
    pub async fn start(
        seed: u64,
        epoch: Instant,
        base_port: Option<u16>,
        redis_upstream: Option<String>,
    ) -> Result<FakeSet, FakeError> {
        let options = FakeOptions {
            redis_upstream,
            ..FakeOptions::default()
        };
        FakeSet::start_with(seed, epoch, base_port, &options).await
    }

    /// Like [`FakeSet::start`], with the fakes shaped as `options` says (the Redis upstream,
    /// the tickets fake's schema).
    pub async fn start_with(
        seed: u64,
        epoch: Instant,
        base_port: Option<u16>,
        options: &FakeOptions,
    ) -> Result<FakeSet, FakeError> {
        let at = |offset: u16| {
            SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                base_port.map_or(0, |base| base + offset),
            ))
        };
        let attempt_spooler = AttemptSpooler::new();
        let span_spooler = Spooler::new();
        let journal = || {
            Arc::new(Journal::spooling(
                epoch,
                JOURNAL_CAPACITY,
                attempt_spooler.clone(),
            ))
        };
        // Each fake draws from its own stream so adding a fault to one leaves the others' draws alone.
        let replay = match &options.llm_replay {
            None => None,
            Some(replay) => Some(Arc::new(
                llm::replay::Replay::load(&replay.path, replay.options)
                    .map_err(FakeError::Replay)?,
            )),
        };
        let llm = llm::replay::start_on(
            at(0),
            LlmOptions {
                api_key: ApiKey::Any {
                    given: Some(FAKE_LLM_KEY.into()),
                },
                seed,
            },
            replay,
            Arc::new(Switchboard::new(seed ^ 0x11)),
            journal(),
        )
        .await?;
        // On an error, the fakes already started stop as their handles drop.
        let weather =
            tool::start_weather_on(at(1), Arc::new(Switchboard::new(seed ^ 0x22)), journal())
                .await?;
        let (tickets, ledger) = tool::start_tickets_on(
            at(2),
            options.tickets.clone(),
            Arc::new(Switchboard::new(seed ^ 0x33)),
            journal(),
        )
        .await?;
        let redis = redis::start(
            RedisOptions {
                port: at(3).port(),
                password: None,
                upstream: options.redis_upstream.clone(),
                keyspace: None,
            },
            Arc::new(Switchboard::new(seed ^ 0x44)),
            journal(),
        )
        .await?;
        let spans = Arc::new(SpanJournal::spooling(
            epoch,
            SPAN_CAPACITY,
            span_spooler.clone(),
        ));
        let otlp = otlp::start_on(
            at(4),
            Arc::new(Switchboard::new(seed ^ 0x55)),
            Arc::new(Journal::new(epoch, EXPORT_JOURNAL_CAPACITY)),
            spans.clone(),
        )
        .await?;
        let mcp = mcp::start_on(
            at(5),
            seed,
            Arc::new(Switchboard::new(seed ^ 0x66)),
            journal(),
        )
        .await?;
        Ok(FakeSet {
            mcp,
            llm,
            weather,
            tickets,
            ledger,
            redis,
            otlp,
            spans,
            attempt_spooler,
            span_spooler,
        })
    }

    /// Stops streaming attempts and spans for evidence: for `faultline fakes up`, whose runs
    /// read the bounded journals through the control API.
    pub fn stop_spooling(&self) {
        self.attempt_spooler.switch_off();
        self.span_spooler.switch_off();
    }

    /// Every upstream attempt streamed since the start (or the last take), in the order they
    /// ended, with the spool's cuts counted.
    pub fn take_attempts(&self) -> AttemptStore {
        self.attempt_spooler.take()
    }

    /// A copy of every upstream attempt streamed so far (for probes before the load).
    pub fn copy_attempts(&self) -> AttemptStore {
        self.attempt_spooler.copy()
    }

    /// A copy of every span streamed so far.
    pub fn copy_spans(&self) -> SpanStore {
        self.span_spooler.copy()
    }

    /// Every span streamed since the start (or the last take).
    pub fn take_spans(&self) -> SpanStore {
        self.span_spooler.take()
    }

    pub fn boards(&self) -> BTreeMap<FakeName, Arc<Switchboard>> {
        BTreeMap::from([
            (FakeName::Llm, self.llm.switchboard().clone()),
            (FakeName::Weather, self.weather.switchboard().clone()),
            (FakeName::Tickets, self.tickets.switchboard().clone()),
            (FakeName::Redis, self.redis.switchboard().clone()),
            (FakeName::Mcp, self.mcp.switchboard().clone()),
        ])
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        let mut all = self.llm.journal().snapshot();
        all.extend(self.weather.journal().snapshot());
        all.extend(self.tickets.journal().snapshot());
        all.extend(self.redis.journal().snapshot());
        all.extend(self.mcp.journal().snapshot());
        all.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        all
    }

    /// The tickets fake's writes, as evidence.
    pub fn writes(&self) -> Vec<WriteAttempt> {
        write_attempts("tickets", &self.ledger)
    }

    /// The fakes that keep a ledger of writes, by name, for the control API's `/writes`.
    pub fn ledgers(&self) -> Vec<(String, Arc<WriteLedger>)> {
        vec![("tickets".to_string(), self.ledger.clone())]
    }

    pub fn dropped(&self) -> u64 {
        self.llm.journal().dropped()
            + self.weather.journal().dropped()
            + self.tickets.journal().dropped()
            + self.redis.journal().dropped()
            + self.mcp.journal().dropped()
    }

    /// The spans the OTLP collector kept, in arrival order.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.spans.snapshot()
    }

    /// The OTLP collector's span journal (for the control API and settling before a read).
    pub fn span_journal(&self) -> &Arc<SpanJournal> {
        &self.spans
    }

    /// Each fake with its switchboard and journal, for the control API.
    pub fn controlled(&self) -> Vec<super::control::ControlledFake> {
        [
            ("llm", &self.llm),
            ("weather", &self.weather),
            ("tickets", &self.tickets),
            ("redis", &self.redis),
            ("otlp", &self.otlp),
            ("mcp", &self.mcp),
        ]
        .into_iter()
        .map(|(name, fake)| super::control::ControlledFake {
            name: name.to_string(),
            switchboard: fake.switchboard().clone(),
            journal: fake.journal().clone(),
        })
        .collect()
    }

    /// The environment a service needs to use these fakes, as the reference target reads it
    /// (and as the official SDKs do: OPENAI_BASE_URL, OPENAI_API_KEY).
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        service_env(
            &self.llm.base_url(),
            &self.weather.base_url(),
            &self.tickets.base_url(),
            &self.redis.base_url(),
            &self.otlp.base_url(),
            &format!("{}/mcp", self.mcp.base_url()),
        )
    }

    /// Placeholder values for the target's environment.
    pub fn placeholders(&self, port: u16) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("{llm}", self.llm.base_url()),
            ("{llm_key}", FAKE_LLM_KEY.to_string()),
            ("{tool.weather}", self.weather.base_url()),
            ("{tool.tickets}", self.tickets.base_url()),
            ("{redis}", self.redis.base_url()),
            ("{otlp}", self.otlp.base_url()),
            ("{mcp}", format!("{}/mcp", self.mcp.base_url())),
            ("{port}", port.to_string()),
        ])
    }

    pub async fn shutdown(self) {
        tokio::join!(
            self.llm.shutdown(),
            self.weather.shutdown(),
            self.tickets.shutdown(),
            self.redis.shutdown(),
            self.otlp.shutdown(),
            self.mcp.shutdown()
        );
    }
}

/// A ledger's writes as evidence, attributed to the fake `name`.
pub fn write_attempts(name: &str, ledger: &WriteLedger) -> Vec<WriteAttempt> {
    ledger
        .writes()
        .into_iter()
        .map(|write| WriteAttempt {
            at_ms: write.at_ms,
            fake: name.into(),
            key: write.key,
            idempotency_key: write.idempotency_key,
            payload_hash: write.payload_hash,
            side_effect: write.outcome == WriteOutcome::Created,
            status: write.status,
        })
        .collect()
}

/// The environment that points a service at fakes with these base URLs.
pub fn service_env(
    llm: &str,
    weather: &str,
    tickets: &str,
    redis: &str,
    otlp: &str,
    mcp: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_BASE_URL", format!("{llm}/v1")),
        ("OPENAI_API_KEY", FAKE_LLM_KEY.to_string()),
        ("ANTHROPIC_BASE_URL", llm.to_string()),
        ("ANTHROPIC_API_KEY", FAKE_LLM_KEY.to_string()),
        ("WEATHER_API_URL", weather.to_string()),
        ("TICKETS_API_URL", tickets.to_string()),
        ("REDIS_URL", redis.to_string()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.to_string()),
        ("MCP_SERVER_URL", mcp.to_string()),
    ]
}
