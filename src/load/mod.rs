//! The load: Goose users asking the target questions, one scenario per flow, weighted.
//!
//! Goose schedules users, think time and run time; each transaction sends one chat request
//! and turns what came back into a [`Record`]. Goose times to the first byte and drops a
//! request in flight when asked to stop, so the transaction times the whole answer itself and
//! records a request still unanswered when the run ends as `unfinished` instead of losing it.
//!
//! Correlation: every request carries a fresh `x-request-id` and a nonce (`[fl-1a2b3c4d]`)
//! at the end of the user text, which fakes find in prompts and embedding inputs.

mod answer;
mod correlation;

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

use crate::evidence::{FlowKind, Record};
use crate::scenario::api::{fill_template, fill_text, Api, RequestShape, ResponseShape};
use crate::scenario::Flow;

/// What the load needs to know, taken from the plan.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The target's base URL (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// How to talk to the target.
    pub api: Api,
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

/// Drives the load until its run time is over (or `stop` turns true), and returns every
/// request it sent. Record times count from `epoch`.
pub async fn drive(
    spec: &LoadSpec,
    epoch: Instant,
    stop: watch::Receiver<bool>,
    live: Arc<Live>,
) -> Result<Vec<Record>, LoadError> {
    let (sink, mut records) = mpsc::unbounded_channel();
    let correlation = Arc::new(Correlation::new(spec.seed));
    let mut attack =
        GooseAttack::initialize_with_config(GooseConfiguration::default()).map_err(goose_error)?;
    for flow in &spec.flows {
        let context = Arc::new(FlowContext {
            flow: flow.name.clone(),
            kind: flow.kind,
            messages: flow.messages.clone(),
            asked: AtomicU64::new(0),
            request: spec.api.request_for(flow.kind, &flow.request),
            response: spec.api.response.clone(),
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
            live.requests.fetch_add(1, Ordering::Relaxed);
            if !record.succeeded() {
                live.failures.fetch_add(1, Ordering::Relaxed);
            }
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
    /// Sends one request of this flow and records what came back.
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
            kind: self.kind,
            request_id: ids.request_id.clone(),
            nonce: ids.nonce.clone(),
            ..Record::default()
        };
        let builder = match self.build(user, &message, &ids.request_id) {
            Ok(builder) => builder,
            Err(error) => {
                record.error = Some(format!("request not built: {error}"));
                let _ = self.sink.send(record);
                return;
            }
        };
        let request = GooseRequest::builder()
            .set_request_builder(builder)
            .name(self.flow.as_str())
            .build();
        let timing: Option<answer::SharedTiming> =
            (self.kind == FlowKind::Stream).then(Default::default);
        let mut stop = self.stop.clone();
        let answered = tokio::select! {
            answered = async {
                match user.request(request).await {
                    Ok(goose_response) => {
                        answer::read(goose_response.response, &self.response, sent, timing.as_ref()).await
                    }
                    Err(error) => Err(format!("transport: {error}")),
                }
            } => Some(answered),
            _ = stop.wait_for(|stop| *stop) => None,
        };
        record.latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
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
    fn build(
        &self,
        user: &goose::goose::GooseUser,
        message: &str,
        request_id: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        let method = match self.request.method.as_str() {
            "GET" => GooseMethod::Get,
            "PUT" => GooseMethod::Put,
            "PATCH" => GooseMethod::Patch,
            "DELETE" => GooseMethod::Delete,
            _ => GooseMethod::Post,
        };
        let mut builder = user
            .get_request_builder(&method, &self.request.path)
            .map_err(|e| e.to_string())?
            .header("x-request-id", request_id)
            .timeout(self.request_timeout);
        for (name, value) in &self.request.headers {
            builder = builder.header(name, fill_text(value, message, request_id));
        }
        if method != GooseMethod::Get {
            builder = builder.json(&fill_template(&self.request.body, message, request_id));
        }
        Ok(builder)
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
