//! The load: Goose users asking the target questions, one scenario per flow, weighted.
//!
//! Goose schedules users, think time and run time; each transaction sends one chat request
//! and turns what came back into a [`Record`]. Goose times to the first byte and drops a
//! request in flight when asked to stop, so the transaction times the whole answer itself and
//! records a request still unanswered when the run ends as `unfinished` instead of losing it.
//!
//! Correlation: every request carries a fresh `x-request-id` and a nonce (`[fl-1a2b3c4d]`)
//! at the end of the user text, which fakes find in prompts and embedding inputs.

mod correlation;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::goose::{GooseMethod, GooseRequest, Scenario, Transaction, TransactionFunction};
use goose::GooseAttack;
use tokio::sync::{mpsc, watch};

pub use correlation::Correlation;

use crate::evidence::Record;
use crate::scenario::Flow;

/// What the load needs to know, taken from the plan.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The target's base URL (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// Path the chat requests go to.
    pub chat_path: String,
    pub users: usize,
    pub duration: Duration,
    pub think_time: Duration,
    pub request_timeout: Duration,
    pub flows: Vec<Flow>,
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the load generator (goose) could not run: {0}")]
    Goose(String),
}

/// How long requests still in flight when the run time is up may take before they are
/// recorded as unfinished. Bounded so a hanging target cannot hold the run open.
pub fn drain_time(request_timeout: Duration) -> Duration {
    request_timeout.min(Duration::from_secs(10))
}

/// Drives the load until its run time is over (or `stop` turns true), and returns every
/// request it sent. Record times count from `epoch`.
pub async fn drive(
    spec: &LoadSpec,
    epoch: Instant,
    stop: watch::Receiver<bool>,
) -> Result<Vec<Record>, LoadError> {
    let (sink, mut records) = mpsc::unbounded_channel();
    let correlation = Arc::new(Correlation::new(spec.seed));
    let mut attack =
        GooseAttack::initialize_with_config(GooseConfiguration::default()).map_err(goose_error)?;
    for flow in &spec.flows {
        let context = Arc::new(FlowContext {
            flow: flow.name.clone(),
            messages: flow.messages.clone(),
            asked: AtomicU64::new(0),
            chat_path: spec.chat_path.clone(),
            request_timeout: spec.request_timeout,
            correlation: correlation.clone(),
            epoch,
            sink: sink.clone(),
            stop: stop.clone(),
        });
        let ask: TransactionFunction = Arc::new(move |user| {
            let context = context.clone();
            Box::pin(async move {
                context.ask(user).await;
                Ok(())
            })
        });
        let scenario = Scenario::new(&flow.name)
            .set_weight(flow.weight as usize)
            .map_err(goose_error)?
            .set_wait_time(spec.think_time, spec.think_time)
            .map_err(goose_error)?
            .register_transaction(Transaction::new(ask).set_name(&flow.name));
        attack = attack.register_scenario(scenario);
    }
    drop(sink);
    // Goose counts run time in whole seconds; round up so the last phase is not cut short.
    let run_secs = spec.duration.as_secs_f64().ceil().max(1.0) as usize;
    let attack = attack
        .set_default(GooseDefault::Host, spec.base_url.as_str())
        .and_then(|a| a.set_default(GooseDefault::Users, spec.users))
        // Launch every user at once: phases are cut on the run's clock, not the ramp's.
        .and_then(|a| a.set_default(GooseDefault::IncreaseRate, "1000"))
        .and_then(|a| a.set_default(GooseDefault::RunTime, run_secs))
        .and_then(|a| a.set_default(GooseDefault::Quiet, 1))
        .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
        .and_then(|a| a.set_default(GooseDefault::NoResetMetrics, true))
        .and_then(|a| a.set_default(GooseDefault::NoPrintMetrics, true))
        .and_then(|a| a.set_default(GooseDefault::NoErrorSummary, true))
        .map_err(goose_error)?;
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(record) = records.recv().await {
            all.push(record);
        }
        all
    });
    attack.execute().await.map_err(goose_error)?;
    let mut all = collector
        .await
        .map_err(|e| LoadError::Goose(e.to_string()))?;
    all.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    Ok(all)
}

fn goose_error(error: goose::GooseError) -> LoadError {
    LoadError::Goose(error.to_string())
}

/// What one flow's transactions share.
struct FlowContext {
    flow: String,
    messages: Vec<String>,
    /// Round-robin position in `messages`.
    asked: AtomicU64,
    chat_path: String,
    request_timeout: Duration,
    correlation: Arc<Correlation>,
    epoch: Instant,
    sink: mpsc::UnboundedSender<Record>,
    stop: watch::Receiver<bool>,
}

impl FlowContext {
    /// Sends one chat request and records what came back.
    async fn ask(&self, user: &mut goose::goose::GooseUser) {
        let turn = self.asked.fetch_add(1, Ordering::Relaxed) as usize;
        let ids = self.correlation.next();
        let message = format!(
            "{} [{}]",
            self.messages[turn % self.messages.len()],
            ids.nonce
        );
        let sent = Instant::now();
        let mut record = Record {
            at_ms: ms_between(self.epoch, sent),
            flow: self.flow.clone(),
            request_id: ids.request_id.clone(),
            nonce: ids.nonce.clone(),
            status: None,
            latency_ms: 0.0,
            response_request_id: None,
            ..Record::default()
        };
        let builder = match user.get_request_builder(&GooseMethod::Post, &self.chat_path) {
            Ok(builder) => builder,
            Err(error) => {
                record.error = Some(format!("request not built: {error}"));
                let _ = self.sink.send(record);
                return;
            }
        };
        let builder = builder
            .header("x-request-id", &ids.request_id)
            .json(&serde_json::json!({ "message": message }))
            .timeout(self.request_timeout);
        let request = GooseRequest::builder()
            .set_request_builder(builder)
            .name(self.flow.as_str())
            .build();
        let mut stop = self.stop.clone();
        let answered = tokio::select! {
            answered = async {
                match user.request(request).await {
                    Ok(goose_response) => read_answer(goose_response.response).await,
                    Err(error) => Err(format!("transport: {error}")),
                }
            } => Some(answered),
            _ = stop.wait_for(|stop| *stop) => None,
        };
        record.latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
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
}

struct Answer {
    status: u16,
    request_id: Option<String>,
    degraded: Option<bool>,
    cache_hit: Option<bool>,
    excerpt: String,
}

async fn read_answer(
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<Answer, String> {
    let response = response.map_err(|e| error_kind(&e))?;
    let status = response.status().as_u16();
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.map_err(|e| error_kind(&e))?;
    let markers = Markers::read(&body);
    Ok(Answer {
        status,
        request_id: header_id.or(markers.request_id),
        degraded: markers.degraded,
        cache_hit: markers.cache_hit,
        excerpt: excerpt(&body),
    })
}

/// What an answer's JSON body says about itself: its request id (`requestId` or
/// `request_id`), whether it is degraded (`degraded`, or a non-empty `banner`), and whether
/// it came from a cache (`cacheHit`).
#[derive(Debug, Default, PartialEq)]
struct Markers {
    request_id: Option<String>,
    degraded: Option<bool>,
    cache_hit: Option<bool>,
}

impl Markers {
    fn read(body: &str) -> Markers {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            return Markers::default();
        };
        let request_id = ["requestId", "request_id"].iter().find_map(|field| {
            value
                .get(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
        let banner = value
            .get("banner")
            .and_then(|v| v.as_str())
            .map(|b| !b.is_empty());
        let degraded = value.get("degraded").and_then(|v| v.as_bool()).or(banner);
        let cache_hit = value.get("cacheHit").and_then(|v| v.as_bool());
        Markers {
            request_id,
            degraded,
            cache_hit,
        }
    }
}

fn error_kind(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connect".into()
    } else if error.is_body() || error.is_decode() {
        "broken body".into()
    } else {
        "transport".into()
    }
}

/// The body cut to [`Record::EXCERPT_LIMIT`] bytes on a character boundary.
fn excerpt(body: &str) -> String {
    let mut end = body.len().min(Record::EXCERPT_LIMIT);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_string()
}

fn ms_between(earlier: Instant, later: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_never_splits_a_character() {
        let body = "é".repeat(Record::EXCERPT_LIMIT);
        let cut = excerpt(&body);
        assert!(cut.len() <= Record::EXCERPT_LIMIT);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_request_id_is_read_from_either_json_spelling() {
        let id = |body| Markers::read(body).request_id;
        assert_eq!(id(r#"{"requestId":"a"}"#).as_deref(), Some("a"));
        assert_eq!(id(r#"{"request_id":"b"}"#).as_deref(), Some("b"));
        assert_eq!(Markers::read("not json"), Markers::default());
    }

    #[test]
    fn a_banner_marks_an_answer_degraded_and_cache_hits_are_read() {
        let markers = Markers::read(r#"{"banner":"live data unavailable","cacheHit":true}"#);
        assert_eq!(
            (markers.degraded, markers.cache_hit),
            (Some(true), Some(true))
        );
        let markers = Markers::read(r#"{"degraded":false,"banner":null}"#);
        assert_eq!(markers.degraded, Some(false));
    }

    #[test]
    fn requests_still_in_flight_get_at_most_ten_seconds() {
        assert_eq!(drain_time(Duration::from_secs(30)), Duration::from_secs(10));
        assert_eq!(drain_time(Duration::from_secs(3)), Duration::from_secs(3));
    }
}
