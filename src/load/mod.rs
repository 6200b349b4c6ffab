//! The load: requests to the target, started by one of four executors, each turned into a
//! [`Record`].
//!
//! - `closed` (this file): Goose users, one scenario per flow, weighted. Goose schedules users,
//!   think time and run time. Goose times to the first byte and drops a request in flight when
//!   asked to stop, so the transaction times the whole answer itself and records a request
//!   still unanswered when the run ends as `unfinished` instead of losing it.
//! - `constant_rate`, `ramping_rate` ([`open`]): arrivals at intended times ([`schedule`]),
//!   sent on faultline's own pooled client (reqwest over hyper), timed from the intended send
//!   time. The benchmark (`cargo bench --bench load`, README "Load engine") decided this:
//!   Goose runs one task per user and has no arrival-rate executor, and its per-request
//!   bookkeeping made it the slower engine.
//! - `ramping_users` ([`users`]): closed users on the same client, their number following the
//!   stages.
//!
//! Correlation: every request carries a fresh `x-request-id` and a nonce (`[fl-1a2b3c4d]`)
//! at the end of the user text, which fakes find in prompts and embedding inputs.

mod answer;
mod correlation;
mod open;
mod schedule;
mod share;
mod users;

use crate::sync::LockExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::goose::{GooseMethod, GooseRequest, Scenario, Transaction, TransactionFunction};
use goose::GooseAttack;
use tokio::sync::{mpsc, watch};

pub use answer::{read as read_answer, Answer, SharedTiming};
pub use correlation::{Correlation, Ids};
pub use open::{LATE_LIMIT, MAX_LATE_SHARE};
pub use schedule::Schedule;
pub use share::Share;

use crate::evidence::{FlowKind, LoadStats, Record, RecordStore};
use crate::scenario::api::{fill_template, fill_text, Api, RequestShape, ResponseShape};
use crate::scenario::{Executor, Flow};

/// What the load needs to know, taken from the plan.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The target's base URL (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// How to talk to the target.
    pub api: Api,
    pub executor: Executor,
    pub users: usize,
    pub duration: Duration,
    pub think_time: Duration,
    pub request_timeout: Duration,
    pub flows: Vec<Flow>,
    pub seed: u64,
    /// The part of the load this process makes: [`Share::WHOLE`] unless it is one of a
    /// distributed run's workers (then `executor` is already the share's, see [`Share`]).
    pub share: Share,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the load generator (goose) could not run: {0}")]
    Goose(String),
    #[error("the load generator's HTTP client could not run: {0}")]
    Client(String),
}

/// Counts the run shows live (requests answered so far, and how many failed).
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
}

/// How long requests still in flight when the run time is up may take before they are
/// recorded as unfinished. Bounded so a hanging target cannot hold the run open.
pub fn drain_time(request_timeout: Duration) -> Duration {
    request_timeout.min(Duration::from_secs(10))
}

/// What the load sent and how well it kept to its schedule.
#[derive(Debug, Default)]
pub struct Driven {
    /// Every request sent, in the order their answers completed, streamed to disk as they
    /// came (memory stays flat however long the load runs).
    pub records: RecordStore,
    pub stats: LoadStats,
}

/// The HTTP client the load's own engine sends on, sized for the executor. Build it before the
/// load's clock starts (it takes tens of milliseconds), and hand it to [`drive`].
pub fn client(spec: &LoadSpec) -> Result<reqwest::Client, LoadError> {
    let slots = match &spec.executor {
        Executor::Closed => 1,
        Executor::ConstantRate { max_in_flight, .. }
        | Executor::RampingRate { max_in_flight, .. } => *max_in_flight,
        Executor::RampingUsers { .. } => spec.executor.peak_users().unwrap_or_default(),
    };
    open::client(slots.max(1))
}

/// Drives the load until its run time is over (or `stop` turns true), and returns every
/// request it sent. Record times count from `epoch`; `client` is [`client`]'s.
pub async fn drive(
    spec: &LoadSpec,
    client: reqwest::Client,
    epoch: Instant,
    stop: watch::Receiver<bool>,
    live: Arc<Live>,
) -> Result<Driven, LoadError> {
    let (sink, records) = mpsc::unbounded_channel();
    // On a thread of its own: sealing a chunk of the record stream compresses it, which must
    // not hold up the runtime's workers that send the load.
    let collector = tokio::task::spawn_blocking(move || collect(records, live));
    // One id sequence for the whole run, so ids never repeat across flows (nor workers).
    let correlation = Arc::new(Correlation::for_share(spec.seed, spec.share));
    let contexts: Vec<Arc<FlowContext>> = spec
        .flows
        .iter()
        .map(|flow| {
            Arc::new(FlowContext::new(
                spec,
                flow,
                epoch,
                (&sink, &stop),
                correlation.clone(),
            ))
        })
        .collect();
    drop(sink);
    let mut stats = match &spec.executor {
        Executor::Closed => drive_closed(spec, contexts).await?,
        Executor::RampingUsers { .. } => users::drive(spec, contexts, client, epoch, stop).await,
        _ => open::drive(spec, contexts, client, epoch, stop).await?,
    };
    let records = collector
        .await
        .map_err(|e| LoadError::Goose(e.to_string()))?;
    stats.executor = spec.executor.name().to_string();
    stats.sent = records.len() as u64 + records.cut().count;
    let seconds = spec.duration.as_secs_f64();
    if seconds > 0.0 {
        stats.achieved_rate = stats.sent as f64 / seconds;
    }
    Ok(Driven { records, stats })
}

/// Gathers the records the requests send back, counting them for the live display.
fn collect(mut records: mpsc::UnboundedReceiver<Record>, live: Arc<Live>) -> RecordStore {
    let mut all = RecordStore::new();
    while let Some(record) = records.blocking_recv() {
        live.requests.fetch_add(1, Ordering::Relaxed);
        if !record.succeeded() {
            live.failures.fetch_add(1, Ordering::Relaxed);
        }
        all.push(record);
    }
    all
}

/// The `closed` executor: Goose users with think time.
async fn drive_closed(
    spec: &LoadSpec,
    contexts: Vec<Arc<FlowContext>>,
) -> Result<LoadStats, LoadError> {
    let mut attack =
        GooseAttack::initialize_with_config(GooseConfiguration::default()).map_err(goose_error)?;
    // A worker runs the users of each flow the one-process run would have given it (see
    // [`Share::closed_users`]): weighted by those counts, Goose allocates exactly them.
    let flow_users = spec.share.closed_users(&spec.flows, spec.users);
    let users: usize = flow_users.iter().sum();
    if users == 0 {
        return Ok(LoadStats::default());
    }
    let weights = flow_users.iter().map(|&n| {
        if spec.share == Share::WHOLE {
            None
        } else {
            Some(n)
        }
    });
    for ((flow, context), weight) in spec.flows.iter().zip(contexts).zip(weights) {
        if weight == Some(0) {
            continue;
        }
        let weight = weight.unwrap_or(flow.weight as usize);
        let ask: TransactionFunction = Arc::new(move |user| {
            let context = context.clone();
            Box::pin(async move {
                context.ask(user).await;
                Ok(())
            })
        });
        let scenario = Scenario::new(&flow.name)
            .set_weight(weight)
            .map_err(goose_error)?
            .set_wait_time(spec.think_time, spec.think_time)
            .map_err(goose_error)?
            .register_transaction(Transaction::new(ask).set_name(&flow.name));
        attack = attack.register_scenario(scenario);
    }
    // Goose counts run time in whole seconds; round up so the last phase is not cut short.
    let run_secs = spec.duration.as_secs_f64().ceil().max(1.0) as usize;
    // Launch every user within the first second: phases are cut on the run's clock, not the
    // ramp's, and Goose starts counting run time only once every user is up.
    let increase_rate = users.max(1000).to_string();
    let attack = attack
        .set_default(GooseDefault::Host, spec.base_url.as_str())
        .and_then(|a| a.set_default(GooseDefault::Users, users))
        .and_then(|a| a.set_default(GooseDefault::IncreaseRate, increase_rate.as_str()))
        .and_then(|a| a.set_default(GooseDefault::RunTime, run_secs))
        .and_then(|a| a.set_default(GooseDefault::Quiet, 1))
        .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
        .and_then(|a| a.set_default(GooseDefault::NoResetMetrics, true))
        .and_then(|a| a.set_default(GooseDefault::NoPrintMetrics, true))
        .and_then(|a| a.set_default(GooseDefault::NoErrorSummary, true))
        .map_err(goose_error)?;
    attack.execute().await.map_err(goose_error)?;
    Ok(LoadStats::default())
}

fn goose_error(error: goose::GooseError) -> LoadError {
    LoadError::Goose(error.to_string())
}

impl FlowContext {
    fn new(
        spec: &LoadSpec,
        flow: &Flow,
        epoch: Instant,
        (sink, stop): (&mpsc::UnboundedSender<Record>, &watch::Receiver<bool>),
        correlation: Arc<Correlation>,
    ) -> FlowContext {
        FlowContext {
            flow: flow.name.clone(),
            kind: flow.kind,
            messages: flow.messages.clone(),
            asked: AtomicU64::new(0),
            request: spec.api.request_for(flow.kind, &flow.request),
            response: spec.api.response.clone(),
            request_timeout: spec.request_timeout,
            correlation,
            epoch,
            sink: sink.clone(),
            stop: stop.clone(),
        }
    }
}

/// What one flow's transactions share.
struct FlowContext {
    flow: String,
    kind: FlowKind,
    messages: Vec<String>,
    /// Round-robin position in `messages`.
    asked: AtomicU64,
    request: RequestShape,
    response: ResponseShape,
    request_timeout: Duration,
    correlation: Arc<Correlation>,
    epoch: Instant,
    sink: mpsc::UnboundedSender<Record>,
    stop: watch::Receiver<bool>,
}

impl FlowContext {
    /// Sends one request of this flow through a Goose user and records what came back.
    async fn ask(&self, user: &mut goose::goose::GooseUser) {
        let method = match self.request.method.as_str() {
            "GET" => GooseMethod::Get,
            "PUT" => GooseMethod::Put,
            "PATCH" => GooseMethod::Patch,
            "DELETE" => GooseMethod::Delete,
            _ => GooseMethod::Post,
        };
        let base = user
            .get_request_builder(&method, &self.request.path)
            .map_err(|e| e.to_string());
        let name = self.flow.clone();
        self.exchange(base, None, |builder| async move {
            let request = GooseRequest::builder()
                .set_request_builder(builder)
                .name(name.as_str())
                .build();
            match user.request(request).await {
                Ok(goose_response) => Ok(goose_response.response),
                Err(error) => Err(format!("transport: {error}")),
            }
        })
        .await;
    }

    /// Sends one request of this flow on faultline's own client. `intended` is when the
    /// schedule meant it to go (arrival-rate executors): latency then counts from there.
    async fn send(&self, client: &reqwest::Client, base_url: &str, intended: Option<Instant>) {
        let method = reqwest::Method::from_bytes(self.request.method.as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let base = Ok(client.request(method, format!("{base_url}{}", self.request.path)));
        self.exchange(
            base,
            intended,
            |builder| async move { Ok(builder.send().await) },
        )
        .await;
    }

    /// Fills in the request, sends it with `send`, reads the whole answer and records it.
    async fn exchange<F, Fut>(
        &self,
        base: Result<reqwest::RequestBuilder, String>,
        intended: Option<Instant>,
        send: F,
    ) where
        F: FnOnce(reqwest::RequestBuilder) -> Fut,
        Fut:
            std::future::Future<Output = Result<Result<reqwest::Response, reqwest::Error>, String>>,
    {
        let turn = self.asked.fetch_add(1, Ordering::Relaxed) as usize;
        let ids = self.correlation.next();
        let message = format!(
            "{} [{}]",
            self.messages[turn % self.messages.len()],
            ids.nonce
        );
        let sent = Instant::now();
        // An open model's user arrived at the intended time: that is when its wait began.
        let start = intended.unwrap_or(sent);
        let mut record = Record {
            at_ms: ms_between(self.epoch, start),
            flow: self.flow.clone(),
            kind: self.kind,
            request_id: ids.request_id.clone(),
            nonce: ids.nonce.clone(),
            ..Record::default()
        };
        let builder = match base.map(|b| self.fill(b, &message, &ids.request_id)) {
            Ok(builder) => builder,
            Err(error) => {
                record.error = Some(format!("request not built: {error}"));
                let _ = self.sink.send(record);
                return;
            }
        };
        let timing: Option<answer::SharedTiming> =
            (self.kind == FlowKind::Stream).then(Default::default);
        let mut stop = self.stop.clone();
        let answered = tokio::select! {
            answered = async {
                match send(builder).await {
                    Ok(response) => answer::read(response, &self.response, start, timing.as_ref()).await,
                    Err(error) => Err(error),
                }
            } => Some(answered),
            _ = stop.wait_for(|stop| *stop) => None,
        };
        record.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        if intended.is_some() {
            record.service_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
        }
        record.stream = timing.and_then(|timing| timing.locked().take());
        match answered {
            Some(Ok(answer)) => {
                record.status = Some(answer.status);
                record.response_request_id = answer.request_id;
                record.degraded = answer.degraded;
                record.cache_hit = answer.cache_hit;
                record.body_excerpt = answer.excerpt;
            }
            Some(Err(kind)) => record.error = Some(kind),
            None => record.error = Some("unfinished".into()),
        }
        let _ = self.sink.send(record);
    }

    /// The flow's request with the question and ids filled in.
    fn fill(
        &self,
        mut builder: reqwest::RequestBuilder,
        message: &str,
        request_id: &str,
    ) -> reqwest::RequestBuilder {
        builder = builder
            .header("x-request-id", request_id)
            .timeout(self.request_timeout);
        for (name, value) in &self.request.headers {
            builder = builder.header(name, fill_text(value, message, request_id));
        }
        if self.request.method != "GET" {
            builder = builder.json(&fill_template(&self.request.body, message, request_id));
        }
        builder
    }
}

fn ms_between(earlier: Instant, later: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_still_in_flight_get_at_most_ten_seconds() {
        assert_eq!(drain_time(Duration::from_secs(30)), Duration::from_secs(10));
        assert_eq!(drain_time(Duration::from_secs(3)), Duration::from_secs(3));
    }
}
