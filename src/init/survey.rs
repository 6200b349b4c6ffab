//! The survey: every probe, in order, against a service that answers HTTP: health, the
//! metrics, the chat route; then one more request with the route's shape, alone between two
//! metrics reads, for where its answer keeps things, its log line and its spans; then one
//! request while the fake LLM fails. What each found becomes the draft's [`Findings`].

use std::time::{Duration, Instant};

use super::draft::{self, Findings};
use super::{answer, logs, metrics, probe, source, traces};
use crate::evidence::MetricsFormat;
use crate::fakes::driver::Fakes;
use crate::load::Correlation;
use crate::target::TargetProcess;

/// Every probe, in order. `reached` is left for the caller to say.
pub async fn survey(
    service: &TargetProcess,
    fakes: Option<&Fakes>,
    scan: &source::Scan,
    scan_dir: &str,
) -> Findings {
    let session = probe::Session {
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a plain HTTP client always builds"),
        base: service.base_url().to_string(),
        fakes,
        correlation: Correlation::new(rand::random()),
    };
    let ready = session.health().await;
    let metrics_found = metrics::find(&session.client, &session.base).await;
    let routes: Vec<(String, String)> = scan
        .routes
        .iter()
        .map(|r| (r.path.clone(), r.at.clone()))
        .collect();
    let chat = session.chat(&routes).await;
    let mut findings = Findings {
        reached: draft::Reached::Url {
            url: session.base.clone(),
            fakes: None,
        },
        scan: (scan_dir.to_string(), scan.clone()),
        listening_after: None,
        ready,
        chat: Err(String::new()),
        located: answer::Located::default(),
        id_header: None,
        error_pointer: Err("no chat route to send a failing request to".into()),
        llm_reached: false,
        logs: Err("no chat route was found, so no request left a log line".into()),
        metrics: Err(String::new()),
        traces: Err("no chat route was found, so no request left spans".into()),
        limits: scenario_limits(),
    };
    let route = match chat {
        Ok(route) => route,
        Err(why) => {
            findings.chat = Err(why);
            findings.metrics = metrics_found.map(|(endpoint, snapshot)| {
                let readings = metrics::Readings {
                    before: snapshot,
                    after_answer: None,
                    after_failure: None,
                };
                propose(endpoint, readings, metrics::Observed::default())
            });
            return findings;
        }
    };
    let mut route = route;
    // An answer without the id faultline sent: perhaps the service reads it from another
    // header (x-correlation-id in and out, say).
    if route.confirmed && !route.echoed {
        findings.id_header = session.inbound_id_header(&route).await;
        route.id_header = findings.id_header.as_ref().map(|found| found.value.clone());
    }
    findings.chat = Ok(route.clone());
    findings.llm_reached = route.confirmed;

    // One more request with the found shape, alone between two metrics reads, so each figure
    // can be checked against what the fake LLM saw for exactly this request.
    let path = metrics_found.as_ref().ok().map(|(e, _)| e.path.as_str());
    let metrics_start = snapshot(&session, path).await;
    let second = session
        .send(
            &route.path,
            &route.body,
            route.id_header.as_deref(),
            probe::SECOND_QUESTION,
            probe::CHAT_TIMEOUT,
        )
        .await;
    let metrics_answered = snapshot(&session, path).await;
    let mut observed = metrics::Observed::default();
    match second {
        Ok(exchange) if (200..300).contains(&exchange.reply.status) => {
            findings.located = answer::locate(
                &exchange.reply,
                &exchange.ids.request_id,
                crate::fakes::llm::is_canned_answer,
            );
            let sum = |tokens: fn(&crate::evidence::Attempt) -> Option<u64>| {
                let values: Vec<u64> = exchange.llm_attempts.iter().filter_map(tokens).collect();
                (!values.is_empty()).then(|| values.iter().sum::<u64>())
            };
            observed.input_tokens = sum(|a| a.input_tokens);
            observed.output_tokens = sum(|a| a.output_tokens);
            findings.logs = log_line(service, &exchange, &observed).await;
            findings.traces = span_attributes(fakes, &exchange).await;
        }
        answered => {
            let why = match answered {
                Ok(exchange) => format!(
                    "a second request to POST {} answered {}, not 2xx",
                    route.path, exchange.reply.status
                ),
                Err(error) => format!("a second request to POST {}: {error}", route.path),
            };
            findings.logs = Err(why.clone());
            findings.traces = Err(why);
        }
    }

    let failure = session.failure(&route).await;
    let metrics_failed = snapshot(&session, path).await;
    findings.error_pointer = failure
        .as_ref()
        .map_err(Clone::clone)
        .and_then(probe::error_shape);
    observed.failed_attempts = failure
        .as_ref()
        .ok()
        .map(|e| e.llm_attempts.len())
        .filter(|n| *n > 0);
    findings.metrics = metrics_found.map(|(endpoint, first)| {
        let readings = metrics::Readings {
            before: metrics_start.unwrap_or(first),
            after_answer: metrics_answered,
            after_failure: metrics_failed,
        };
        propose(endpoint, readings, observed)
    });
    findings
}

/// One read of the metrics at `path`, if there is one and it answers.
async fn snapshot(session: &probe::Session<'_>, path: Option<&str>) -> Option<metrics::Snapshot> {
    let path = path?;
    metrics::read(&session.client, &session.base, path)
        .await
        .ok()
        .map(|(snapshot, _)| snapshot)
}

fn propose(
    endpoint: metrics::Endpoint,
    readings: metrics::Readings,
    observed: metrics::Observed,
) -> (metrics::Endpoint, MetricsFormat, metrics::Proposal) {
    let format = readings.before.format();
    (endpoint, format, metrics::propose(&readings, &observed))
}

/// The log schema, from the line `exchange` left in the service's output.
async fn log_line(
    service: &TargetProcess,
    exchange: &probe::Exchange,
    observed: &metrics::Observed,
) -> Result<logs::Schema, String> {
    if !service.spawned() {
        return Err(
            "init cannot see the output of a service it did not start: if it writes \
                    its logs to a file, set [target] log_file = \"…\""
                .into(),
        );
    }
    // The line may follow the answer by a moment (a logger's buffer).
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let found = logs::find(
            &service.logs().snapshot(),
            &exchange.ids.request_id,
            observed.input_tokens,
            observed.output_tokens,
        );
        if found.is_ok() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The trace attributes, from the spans `exchange` left at the OTLP collector fake.
async fn span_attributes(
    fakes: Option<&Fakes>,
    exchange: &probe::Exchange,
) -> Result<traces::Attributes, String> {
    let Some(fakes) = fakes else {
        return Err("no fakes' control API answered, so no OTLP collector saw spans".into());
    };
    wait_for_spans(fakes, &exchange.ids.request_id).await;
    traces::find(
        &fakes.read().await.spans.to_vec(),
        &exchange.ids.request_id,
        exchange.llm_attempts.len(),
    )
}

/// Waits (up to 6 s: an exporter's batch delay) for a span carrying `request_id`.
async fn wait_for_spans(fakes: &Fakes, request_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        let spans = fakes.read().await.spans;
        let arrived = spans.iter().any(|s| {
            s.attributes
                .values()
                .any(|v| v.as_str() == Some(request_id))
        });
        if arrived {
            // Its children may come in the same batch or the next one.
            tokio::time::sleep(Duration::from_millis(400)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tightest limits among the built-in scenarios that a service's timeouts and breaker
/// settings must fit: `errors.within` where an upstream hangs (only a timeout ends a hang),
/// and `recovery.fast_fail`.
fn scenario_limits() -> draft::ScenarioLimits {
    let mut within: Option<(String, f64)> = None;
    let mut fast_fail: Option<(String, f64)> = None;
    let tighter =
        |best: &Option<(String, f64)>, value: f64| best.as_ref().is_none_or(|b| value < b.1);
    for name in crate::scenario::catalog::names() {
        let Ok(plan) = crate::scenario::load_scenario(name) else {
            continue;
        };
        let hangs = plan
            .faults
            .iter()
            .any(|w| matches!(w.fault, crate::fakes::fault::Fault::Hang));
        let w = plan.expect.errors.within.as_secs_f64();
        if hangs && tighter(&within, w) {
            within = Some((name.to_string(), w));
        }
        let f = plan.expect.recovery.fast_fail.as_secs_f64();
        if tighter(&fast_fail, f) {
            fast_fail = Some((name.to_string(), f));
        }
    }
    draft::ScenarioLimits {
        // The built-in catalog always has both; the fallbacks only keep this total.
        errors_within: within.unwrap_or(("outage".into(), 9.0)),
        fast_fail: fast_fail.unwrap_or(("outage".into(), 1.0)),
    }
}

/// One line for the console: what was found.
pub fn summary(findings: &Findings) -> String {
    let mut found = Vec::new();
    if let Ok(route) = &findings.chat {
        found.push(format!("chat route POST {}", route.path));
    }
    if let Ok(ready) = &findings.ready {
        found.push(format!("health {}", ready.value));
    }
    if let Ok((endpoint, _, _)) = &findings.metrics {
        found.push(format!("metrics {}", endpoint.path));
    }
    if findings.logs.is_ok() {
        found.push("a JSON log line".into());
    }
    if findings.traces.is_ok() {
        found.push("spans".into());
    }
    if found.is_empty() {
        "found nothing it could use".into()
    } else {
        format!("found {}", found.join(", "))
    }
}
