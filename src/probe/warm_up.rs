//! One warm-up request per flow, sent through the same API description the load uses, before
//! the load: what came back, what the service logged about it, and what the fakes saw.
//!
//! A warm-up carries its own ids (`flwarm-…`, and a nonce the load never hands out by the
//! same seed's counter), so the run can leave its traces out of the evidence (see
//! [`WarmUps::scrub`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::evidence::Attempt;
use crate::evidence::FakeName;
use crate::evidence::{Evidence, FlowKind, LogLine};
use crate::load::{read_answer, Correlation, SharedTiming};
use crate::scenario::api::{fill_template, fill_text};
use crate::scenario::{Flow, Plan};
use crate::target::TargetProcess;

/// How long the service may take to write a warm-up's log lines after answering.
const LOG_WAIT: Duration = Duration::from_secs(3);
/// Once a line names the request, how long the rest of its lines may take.
const LOG_SETTLE: Duration = Duration::from_millis(300);
/// Mixed into the seed for warm-up ids, so they are not the load's (which count from the
/// seed's own salt).
const WARM_UP_SALT: u64 = 0x5741_524d_5550;

/// What one warm-up request showed.
#[derive(Debug)]
pub struct WarmUp {
    pub flow: String,
    pub kind: FlowKind,
    /// `POST /api/chat`.
    pub request: String,
    pub nonce: String,
    pub request_id: String,
    /// The answer, or why none came (`timeout`, `connect`, …).
    pub answer: Result<Answered, String>,
    /// The log lines captured from the warm-up's send on.
    pub logs: Vec<LogLine>,
    /// Every log line captured so far (startup included), counted.
    pub logs_total: usize,
    /// The fakes' attempts carrying this warm-up's ids.
    pub upstream: Vec<Attempt>,
}

/// A warm-up's answer.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    /// Where the configured header or pointer found it, if anywhere.
    pub request_id: Option<String>,
    pub degraded: Option<bool>,
    pub excerpt: String,
    pub header_names: Vec<String>,
}

impl WarmUp {
    /// The ids the service may log this request under: the one sent, and the one it answered
    /// with if it made its own.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids = vec![self.request_id.as_str()];
        if let Ok(Answered {
            request_id: Some(own),
            ..
        }) = &self.answer
        {
            if own != &self.request_id && !own.trim().is_empty() {
                ids.push(own);
            }
        }
        ids
    }

    /// Input tokens the fake LLM reported for this request's chat calls, if it answered any.
    pub fn llm_usage(&self, route: &str) -> Option<(u64, u64)> {
        let usage: Vec<&Attempt> = self
            .upstream
            .iter()
            .filter(|a| a.fake == FakeName::Llm && a.route.starts_with(route))
            .filter(|a| a.input_tokens.is_some() || a.output_tokens.is_some())
            .collect();
        (!usage.is_empty()).then(|| {
            (
                usage.iter().filter_map(|a| a.input_tokens).sum(),
                usage.iter().filter_map(|a| a.output_tokens).sum(),
            )
        })
    }
}

/// The warm-ups' ids, to leave their traces out of the run's evidence.
#[derive(Clone, Debug, Default)]
pub struct WarmUps {
    pub ids: BTreeSet<String>,
}

impl WarmUps {
    pub fn of(warm_ups: &[WarmUp]) -> WarmUps {
        WarmUps {
            ids: warm_ups
                .iter()
                .flat_map(|w| {
                    [w.nonce.clone(), w.request_id.clone()]
                        .into_iter()
                        .chain(w.ids().into_iter().map(String::from))
                })
                .collect(),
        }
    }

    /// Removes what the warm-ups left in the evidence: the fakes' attempts and writes for
    /// them, their log lines, and their traces.
    pub fn scrub(&self, evidence: &mut Evidence) {
        if self.ids.is_empty() {
            return;
        }
        let ours = |key: &Option<String>| key.as_ref().is_some_and(|k| self.ids.contains(k));
        evidence.attempts.retain(|a| !ours(&a.key));
        evidence.writes.retain(|w| !ours(&w.key));
        evidence
            .logs
            .retain(|l| !self.ids.iter().any(|id| l.text.contains(id.as_str())));
        let traces: BTreeSet<String> = evidence
            .spans
            .iter()
            .filter(|s| {
                s.attributes
                    .values()
                    .any(|v| v.as_str().is_some_and(|v| self.ids.contains(v)))
            })
            .map(|s| s.trace_id.clone())
            .collect();
        evidence.spans.retain(|s| !traces.contains(&s.trace_id));
    }
}

/// Sends one warm-up per flow, one after another, and gathers what each showed.
pub async fn send_all(
    plan: &Plan,
    target: &TargetProcess,
    fakes: &crate::fakes::driver::Fakes,
    epoch: Instant,
) -> Vec<WarmUp> {
    let correlation = Correlation::new(plan.seed ^ WARM_UP_SALT);
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(client) => client,
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for flow in &plan.load.flows {
        let ids = correlation.next();
        let request_id = ids.request_id.replacen("flreq-", "flwarm-", 1);
        // Log lines are timed from the run's epoch; a little slack for the clock's grain.
        let since_ms = epoch.elapsed().as_secs_f64() * 1000.0 - 1.0;
        let answer = send(&client, plan, target, flow, &ids.nonce, &request_id).await;
        let mut warm_up = WarmUp {
            flow: flow.name.clone(),
            kind: flow.kind,
            request: {
                let shape = plan.api.request_for(flow.kind, &flow.request);
                format!("{} {}", shape.method, shape.path)
            },
            nonce: ids.nonce,
            request_id,
            answer,
            logs: Vec::new(),
            logs_total: 0,
            upstream: Vec::new(),
        };
        // An attached service's output is not captured unless it names its log file.
        if target.spawned() || plan.target.log_file.is_some() {
            wait_for_logs(target, &mut warm_up, since_ms).await;
        }
        warm_up.upstream = fakes
            .read()
            .await
            .attempts
            .iter()
            .filter(|a| {
                a.key
                    .as_deref()
                    .is_some_and(|k| k == warm_up.nonce || k == warm_up.request_id)
            })
            .collect();
        out.push(warm_up);
    }
    out
}

/// One request of `flow`'s shape, answered as the load reads answers.
async fn send(
    client: &reqwest::Client,
    plan: &Plan,
    target: &TargetProcess,
    flow: &Flow,
    nonce: &str,
    request_id: &str,
) -> Result<Answered, String> {
    let shape = plan.api.request_for(flow.kind, &flow.request);
    let message = format!("{} [{nonce}]", flow.messages[0]);
    let method = reqwest::Method::from_bytes(shape.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = client
        .request(
            method.clone(),
            format!("{}{}", target.base_url(), shape.path),
        )
        .header("x-request-id", request_id)
        .timeout(plan.load.request_timeout);
    for (name, value) in &shape.headers {
        request = request.header(name, fill_text(value, &message, request_id));
    }
    if method != reqwest::Method::GET {
        request = request.json(&fill_template(&shape.body, &message, request_id));
    }
    let response = request.send().await;
    let header_names = response
        .as_ref()
        .map(|r| r.headers().keys().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    let timing: Option<SharedTiming> = (flow.kind == FlowKind::Stream).then(Default::default);
    let answer = read_answer(
        response,
        &plan.api.response,
        Instant::now(),
        timing.as_ref(),
    )
    .await?;
    Ok(Answered {
        status: answer.status,
        request_id: answer.request_id,
        degraded: answer.degraded,
        excerpt: answer.excerpt,
        header_names,
    })
}

/// Waits until a log line names the warm-up (then a little longer, for its other lines), or
/// [`LOG_WAIT`] has passed; keeps the lines captured from the warm-up on.
async fn wait_for_logs(target: &TargetProcess, warm_up: &mut WarmUp, since_ms: f64) {
    let started = Instant::now();
    let mut named_at: Option<Instant> = None;
    loop {
        let lines = target.logs().snapshot();
        let named = lines
            .iter()
            .filter(|l| l.at_ms >= since_ms)
            .any(|l| warm_up.ids().iter().any(|id| l.text.contains(id)));
        if named && named_at.is_none() {
            named_at = Some(Instant::now());
        }
        let settled = named_at.is_some_and(|at| at.elapsed() >= LOG_SETTLE);
        if settled || started.elapsed() >= LOG_WAIT {
            warm_up.logs_total = lines.len();
            warm_up.logs = lines.into_iter().filter(|l| l.at_ms >= since_ms).collect();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;

    /// A chat warm-up (`fl-00000001`, `flwarm-00000001`) answered `status` with `body`, whose
    /// LLM call answered `llm_status` using 30 input and 7 output tokens.
    pub(crate) fn warm_up(status: u16, body: &str, llm_status: u16) -> WarmUp {
        let mut usage = attempt(
            1.0,
            "llm",
            "/v1/chat/completions",
            "fl-00000001",
            Some(llm_status),
            5.0,
        );
        usage.input_tokens = Some(30);
        usage.output_tokens = Some(7);
        WarmUp {
            flow: "ask".into(),
            kind: FlowKind::Chat,
            request: "POST /api/chat".into(),
            nonce: "fl-00000001".into(),
            request_id: "flwarm-00000001".into(),
            answer: Ok(Answered {
                status,
                request_id: None,
                degraded: Some(false),
                excerpt: body.into(),
                header_names: vec!["content-type".into()],
            }),
            logs: Vec::new(),
            logs_total: 3,
            upstream: vec![usage],
        }
    }
}
