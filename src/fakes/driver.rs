//! The fakes one run drives, whichever they are: its own [`FakeSet`], or the fakes a running
//! `faultline fakes up` holds, reached through their control API ([`ControlClient`]). The
//! orchestrator switches rules and reads what the fakes saw through this one type, so it does
//! not care which; the checks see the same evidence either way.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::fault::FaultRule;
use super::remote::{ControlClient, Readings};
use super::set::FakeSet;
use super::FakeError;
use crate::evidence::{AttemptStore, SpanStore};
use crate::scenario::{FakeName, FakeOptions};

/// How long the OTLP collector must go without an export before spans are read.
const SPANS_QUIET: Duration = Duration::from_millis(300);
/// The longest wait for exports to go quiet.
const SPANS_LIMIT: Duration = Duration::from_secs(3);

/// The fakes of one run.
pub enum Fakes {
    /// Started by this run, stopped at its end (boxed: a set of handles is large).
    Local(Box<FakeSet>),
    /// Held by `faultline fakes up`; this run only switches rules and reads journals.
    Remote(ControlClient),
}

impl Fakes {
    /// The run's own fakes (see [`FakeSet::start_with`]).
    pub async fn start(
        seed: u64,
        epoch: Instant,
        base_port: Option<u16>,
        options: &FakeOptions,
    ) -> Result<Fakes, FakeError> {
        FakeSet::start_with(seed, epoch, base_port, options)
            .await
            .map(|set| Fakes::Local(Box::new(set)))
    }

    /// The fakes behind the control API `client` reached, with every leftover rule switched
    /// off (the run owns the fakes' rules while it runs).
    pub async fn attach(client: ControlClient) -> Result<Fakes, String> {
        client.clear().await?;
        Ok(Fakes::Remote(client))
    }

    /// Which fakes, in a few words, for the console.
    pub fn describe(&self) -> String {
        match self {
            Fakes::Local(_) => "fakes of its own, started for this run".into(),
            Fakes::Remote(client) => format!(
                "the fakes `faultline fakes up` holds (control API {})",
                client.url()
            ),
        }
    }

    /// Switches `rule` on at `fake`.
    pub async fn switch_on(&self, fake: FakeName, rule: FaultRule) -> Result<(), String> {
        match self {
            Fakes::Local(set) => {
                if let Some(board) = set.boards().get(&fake) {
                    board.activate(rule);
                }
                Ok(())
            }
            Fakes::Remote(client) => client.switch_on(fake, &rule).await,
        }
    }

    /// Switches the rule with the timeline's `id` off at `fake`.
    pub async fn switch_off(&self, fake: FakeName, id: usize) -> Result<(), String> {
        match self {
            Fakes::Local(set) => {
                if let Some(board) = set.boards().get(&fake) {
                    board.deactivate(id);
                }
                Ok(())
            }
            Fakes::Remote(client) => client.switch_off(fake, id).await,
        }
    }

    /// Switches every rule off: the end of a run, however it ended.
    pub async fn switch_all_off(&self) -> Result<(), String> {
        match self {
            Fakes::Local(set) => {
                set.boards().values().for_each(|board| board.clear());
                Ok(())
            }
            Fakes::Remote(client) => client.clear().await,
        }
    }

    /// What the fakes saw so far, on the run's epoch clock (a copy: for probes before the
    /// load; the run's evidence comes from [`Fakes::take_readings`]).
    pub async fn read(&self) -> Readings {
        match self {
            Fakes::Local(set) => Self::readings(set, set.copy_attempts(), set.copy_spans()),
            Fakes::Remote(client) => client.read().await,
        }
    }

    /// What the fakes saw during this run, for its evidence: the run's own fakes hand over
    /// their streams (see `fakes::journal`), remote ones are read as by [`Fakes::read`].
    pub async fn take_readings(&self) -> Readings {
        match self {
            Fakes::Local(set) => Self::readings(set, set.take_attempts(), set.take_spans()),
            Fakes::Remote(client) => client.read().await,
        }
    }

    /// Every attempt and span streamed as they came, not only what the rings still hold; the
    /// spools' own cuts are what is missing.
    fn readings(set: &FakeSet, attempts: AttemptStore, spans: SpanStore) -> Readings {
        Readings {
            dropped: attempts.cut().count,
            spans_dropped: spans.cut().count,
            attempts,
            writes: set.writes().into(),
            spans,
            gaps: Vec::new(),
        }
    }

    /// Waits until the OTLP collector has had no export for [`SPANS_QUIET`] (at most
    /// [`SPANS_LIMIT`]): a stopping target flushes its last spans, and they should be in
    /// before the spans are read.
    pub async fn settle_spans(&self) {
        match self {
            Fakes::Local(set) => {
                let spans = set.span_journal();
                if spans.exports() > 0 {
                    spans.settle(SPANS_QUIET, SPANS_LIMIT).await;
                }
            }
            Fakes::Remote(client) => client.settle_spans(SPANS_QUIET, SPANS_LIMIT).await,
        }
    }

    /// Values for `{llm}`-style placeholders in a spawned target's environment; `None` for
    /// remote fakes, whose service was started by hand with `faultline fakes env`.
    pub fn placeholders(&self, port: u16) -> Option<BTreeMap<&'static str, String>> {
        match self {
            Fakes::Local(set) => Some(set.placeholders(port)),
            Fakes::Remote(_) => None,
        }
    }

    /// Stops the run's own fakes; leaves remote ones running with every rule off.
    pub async fn shutdown(self) {
        match self {
            Fakes::Local(set) => set.shutdown().await,
            Fakes::Remote(client) => {
                if let Err(e) = client.clear().await {
                    eprintln!(
                        "faultline: warning: could not switch the fakes' faults off ({e}); \
                         run `curl -X DELETE {}/faults`",
                        client.url()
                    );
                }
            }
        }
    }
}
