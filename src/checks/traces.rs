//! Traces (`traces.per_request`): the target's own traces, as it exported them to the OTLP
//! collector fake, account for every client request and every LLM attempt it made.
//!
//! The lesson asks for tracing that follows one request through embedding, retrieval, tools and
//! the model call, so a slow or failed answer can be explained. Retries are what such a trace
//! most often hides: one `llm_call` span over three attempts makes a 503 storm look like one
//! slow call. So each completed client request must have a trace with a span that carries its
//! request id (the root span, usually; but a framework that traces itself owns the root, and
//! the service can only annotate a span inside it), and that trace must hold at least one LLM span (a span with the GenAI attribute,
//! `gen_ai.operation.name` by default) per attempt the LLM fake journaled for the request
//! (grouped by nonce or propagated request id, as `retries.*` groups chains).

use std::collections::HashMap;

use super::common::{attempts_per_record, bounded, not_applicable, pending};
use super::sla::{format_ms, format_ratio};
use super::{Outcome, Verdict};
use crate::evidence::FakeName;
use crate::evidence::{Evidence, Record};
use crate::scenario::TracesExpectations;

/// An exporter's batch delay, at most (OpenTelemetry's default `OTEL_BSP_SCHEDULE_DELAY` is 5 s).
const EXPORT_GRACE_MS: f64 = 5_000.0;
/// How long before an export arrives its batch may have been cut (batching, then the POST).
const EXPORT_LAG_MS: f64 = 1_000.0;

/// `traces.per_request`: a trace per completed request, with a span per LLM attempt.
pub fn check_per_request(evidence: &Evidence, expect: &TracesExpectations) -> Verdict {
    let mut v = pending(
        "traces.per_request",
        format!(
            "every completed request has a trace (a span with `{}` = its id) with a span per LLM \
             attempt, retries included (at most {} of requests short)",
            expect.request_id_attribute,
            format_ratio(expect.max_untraced)
        ),
        "ratio",
        Some(expect.max_untraced),
    );
    if evidence.spans.is_empty() {
        return not_applicable(
            v,
            "the target exported no spans to the OTLP collector fake (set \
             OTEL_EXPORTER_OTLP_ENDPOINT = \"{otlp}\" in [target] env and export traces over \
             OTLP/HTTP), so its traces could not be checked.",
        );
    }
    if evidence.spans_dropped > 0 {
        return not_applicable(
            v,
            format!(
                "the collector's journal dropped {} spans, so the traces are partial and could \
                 not be checked.",
                evidence.spans_dropped
            ),
        );
    }
    // Traces by the request id a span of theirs carries (a root span's wins), and LLM spans
    // per trace.
    // One pass over the spans' stream; the maps hold a request id and a trace id per request.
    let mut trace_of: HashMap<String, String> = HashMap::new();
    let mut llm_spans: HashMap<String, usize> = HashMap::new();
    for span in evidence.spans.iter() {
        if let Some(id) = span.attribute_text(&expect.request_id_attribute) {
            let slot = trace_of.entry(id).or_insert_with(|| span.trace_id.clone());
            if span.parent_id.is_none() {
                *slot = span.trace_id.clone();
            }
        }
        if span.attributes.contains_key(&expect.llm_span_attribute) {
            *llm_spans.entry(span.trace_id).or_default() += 1;
        }
    }

    // A target faultline does not stop (attached) never flushes: the spans of a request
    // answered shortly before the collector's last export (after its batch was cut) or after
    // it may still sit in its exporter's queue. Such a request without a trace, answered in
    // the last EXPORT_GRACE_MS of the run, is not owed one yet; a target that stopped
    // exporting earlier still owes every trace, and a partial trace is judged as it is.
    let last_export = evidence
        .spans
        .iter()
        .map(|s| s.at_ms)
        .fold(f64::NEG_INFINITY, f64::max);
    let grace_from = evidence.duration_ms - EXPORT_GRACE_MS;
    let in_queue = |r: &Record| {
        let answered = r.at_ms + r.latency_ms;
        answered > last_export - EXPORT_LAG_MS
            && answered > grace_from
            && !trace_of.contains_key(r.request_id.as_str())
    };
    let answered = || evidence.records.iter().filter(|r| r.status.is_some());
    let queued = answered().filter(|r| in_queue(r)).count();
    let completed = answered().filter(|r| !in_queue(r)).count();
    if completed == 0 {
        return not_applicable(v, "no client request was answered, so no trace is owed.");
    }
    let attempts = attempts_per_record(evidence);

    let mut short = Vec::new();
    let mut missing_traces = 0;
    let mut hidden_attempts = 0;
    for r in answered().filter(|r| !in_queue(r)) {
        let journaled = attempts
            .of(&r)
            .iter()
            .filter(|a| a.fake == FakeName::Llm)
            .count();
        match trace_of.get(r.request_id.as_str()) {
            None => {
                missing_traces += 1;
                short.push(format!(
                    "{}: no span with {} = \"{}\" ({journaled} LLM attempts journaled)",
                    r.request_id, expect.request_id_attribute, r.request_id
                ));
            }
            Some(trace) => {
                let shown = llm_spans.get(trace).copied().unwrap_or(0);
                if shown < journaled {
                    hidden_attempts += journaled - shown;
                    short.push(format!(
                        "{}: trace {trace} shows {shown} LLM spans, the LLM fake saw \
                         {journaled} attempts",
                        r.request_id
                    ));
                }
            }
        }
    }
    let share = short.len() as f64 / completed as f64;
    v.figure = Some(share);
    v.evidence = bounded(short.clone());
    let not_judged = if queued > 0 {
        format!(
            " {queued} answered without a trace around or after the collector's last export, in the \
             run's last {}, were not judged: their spans may still be in the exporter's queue.",
            format_ms(EXPORT_GRACE_MS)
        )
    } else {
        String::new()
    };
    if share <= expect.max_untraced {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "{} of {} completed requests are traced in full ({} spans received).{not_judged}",
            completed - short.len(),
            completed,
            evidence.spans.len()
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {} completed requests are not traced in full ({missing_traces} without a \
             trace, {hidden_attempts} LLM attempts without a span): retries and failures \
             missing from traces make an outage look like a few slow calls.{not_judged}",
            short.len(),
            completed
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::{Phase, SpanRecord, SpanStatus};
    use serde_json::json;

    const CHAT: &str = "/v1/chat/completions";

    fn span(trace: &str, id: &str, parent: Option<&str>, attrs: &[(&str, &str)]) -> SpanRecord {
        SpanRecord {
            at_ms: 0.0,
            trace_id: trace.into(),
            span_id: id.into(),
            parent_id: parent.map(str::to_string),
            name: if parent.is_none() {
                "/api/chat"
            } else {
                "llm_attempt"
            }
            .into(),
            service: None,
            start_unix_nano: 1,
            end_unix_nano: 2,
            status: SpanStatus::Unset,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
        }
    }

    /// Three answered requests; the second retried its chat call once after a 503. Each gets
    /// a trace with `spans_per_attempt` LLM spans per journaled attempt of the first call.
    fn evidence(traced_retries: bool) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        for (i, r) in e.records.to_vec().iter().enumerate() {
            let trace = format!("t{i}");
            e.spans.push(span(
                &trace,
                "root",
                None,
                &[("request.id", r.request_id.as_str())],
            ));
            e.attempts
                .push(attempt(r.at_ms, "llm", CHAT, &r.nonce, Some(200), 10.0));
            e.spans.push(span(
                &trace,
                "a0",
                Some("root"),
                &[("gen_ai.operation.name", "chat")],
            ));
            if i == 1 {
                e.attempts.push(attempt(
                    r.at_ms + 20.0,
                    "llm",
                    CHAT,
                    &r.nonce,
                    Some(503),
                    5.0,
                ));
                if traced_retries {
                    e.spans.push(span(
                        &trace,
                        "a1",
                        Some("root"),
                        &[("gen_ai.operation.name", "chat")],
                    ));
                }
            }
        }
        e
    }

    #[test]
    fn requests_answered_after_the_last_export_near_the_end_are_not_owed_yet() {
        let mut e = evidence(true);
        let answered = |r: &Record| r.at_ms + r.latency_ms;
        let last = e.records.iter().map(|r| answered(&r)).fold(0.0, f64::max);
        let late = e.records.iter().position(|r| answered(&r) == last).unwrap();
        let late_trace = format!("t{late}");
        // The late request's spans never arrived; the others' arrived before it was answered.
        e.spans.retain(|s| s.trace_id != late_trace);
        let before = e
            .records
            .iter()
            .map(|r| answered(&r))
            .filter(|&t| t < last)
            .fold(0.0, f64::max);
        e.spans.edit(|items| {
            for s in items.iter_mut() {
                s.at_ms = (before + last) / 2.0;
            }
        });
        // Answered 1 s before the run ended: its spans may still be queued.
        e.duration_ms = last + 1_000.0;
        let v = check_per_request(&e, &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(
            v.summary.contains("1 answered without a trace"),
            "{}",
            v.summary
        );
        // Answered long before the end, it was owed a trace: the exporter had time.
        e.duration_ms = last + 60_000.0;
        let v = check_per_request(&e, &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(v.summary.contains("1 without a trace"), "{}", v.summary);

        // A partial trace is judged as it is, even at the very end: it was exported.
        let mut e = evidence(false);
        let last = e.records.iter().map(|r| answered(&r)).fold(0.0, f64::max);
        e.duration_ms = last + 1_000.0;
        let v = check_per_request(&e, &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(
            v.summary.contains("1 LLM attempts without a span"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn traces_with_a_span_per_attempt_pass() {
        let v = check_per_request(&evidence(true), &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
    }

    #[test]
    fn a_retry_without_a_span_fails_naming_the_request() {
        let v = check_per_request(&evidence(false), &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert_eq!(v.figure, Some(1.0 / 3.0));
        assert!(
            v.evidence[0].contains("shows 1 LLM spans, the LLM fake saw 2 attempts"),
            "{:?}",
            v.evidence
        );
        assert!(v.summary.contains("1 LLM attempts without a span"));
    }

    #[test]
    fn a_trace_without_the_request_id_is_a_missing_trace() {
        let mut e = evidence(true);
        e.spans.edit(|spans| spans[0].attributes.clear());
        let v = check_per_request(&e, &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.evidence[0].contains("no span with request.id"));
        // Carried by a child span (the framework owns the root), it still names the trace.
        let id = e.records.to_vec()[0].request_id.clone();
        e.spans.edit(|spans| {
            spans[1].attributes.insert("request.id".into(), json!(id));
        });
        let v = check_per_request(&e, &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        // Another attribute name, as a scenario may set it, finds nothing either.
        let expect = TracesExpectations {
            request_id_attribute: "http.request.header.x-request-id".into(),
            ..TracesExpectations::default()
        };
        assert_eq!(
            check_per_request(&evidence(true), &expect).figure,
            Some(1.0)
        );
    }

    #[test]
    fn no_spans_is_not_applicable_and_says_how_to_export_them() {
        let mut e = evidence(true);
        e.spans.clear();
        let v = check_per_request(&e, &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("{otlp}"), "{}", v.summary);
        let mut e = evidence(true);
        e.spans_dropped = 4;
        let v = check_per_request(&e, &TracesExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("dropped 4 spans"));
    }
}
