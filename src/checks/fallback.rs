//! Graceful degradation (`fallback.tool`, `fallback.redis`): when a dependency that is not
//! essential goes down, users still get answers.
//!
//! The lesson: "Tool API down → answer from RAG only, show banner 'live data unavailable'.
//! Redis down → skip cache, log warning, continue (higher cost OK briefly)." So during a tool
//! outage, requests that needed the tool still succeed and say they are degraded; during a
//! Redis outage the success rate holds and the target logs a warning.

use super::common::{
    attempt_failed, bounded, fault_spans, is_warning, json_line, not_applicable, pending, FaultSpan,
};
use super::sla::{describe_record, format_ms, format_ratio};
use super::{Outcome, Verdict};
use crate::evidence::FakeName;
use crate::evidence::{Evidence, FlowKind, Record};
use crate::scenario::FallbackExpectations;

/// A warning logged this long after a Redis outage ends still counts (logs trail a little).
const WARNING_GRACE_MS: f64 = 2_000.0;

/// Fakes that are neither the LLM nor Redis: HTTP tools.
fn is_tool(fake: &str) -> bool {
    !matches!(fake, "llm" | "redis")
}

pub fn check(evidence: &Evidence, expect: &FallbackExpectations) -> Vec<Verdict> {
    vec![check_tool(evidence, expect), check_redis(evidence, expect)]
}

/// The requests sent during `span` that needed its tool: the fake saw them fail there, or
/// their flow is named as needing the tool and the fake never saw them (a breaker skipped it).
fn needing_tool(
    evidence: &Evidence,
    span: &FaultSpan,
    expect: &FallbackExpectations,
) -> Vec<Record> {
    // One index for the pass, rather than a pass over the attempts per request.
    let linked = super::common::attempts_per_record(evidence);
    evidence
        .records
        .iter()
        .filter(|r| span.saw(r) && r.kind != FlowKind::Write)
        .filter(|r| {
            let mut at_tool = linked
                .of(r)
                .into_iter()
                .filter(|a| a.fake == span.fake)
                .peekable();
            match at_tool.peek() {
                Some(_) => at_tool.any(attempt_failed),
                None => expect.tool_flows.contains(&r.flow),
            }
        })
        .collect()
}

/// `fallback.tool`: requests that needed a down tool still succeed, marked degraded.
fn check_tool(evidence: &Evidence, expect: &FallbackExpectations) -> Verdict {
    let mut v = pending(
        "fallback.tool",
        format!(
            "during a tool outage at least {} of requests needing it succeed, marked degraded",
            format_ratio(expect.tool_success_rate)
        ),
        "ratio",
        Some(expect.tool_success_rate),
    );
    let spans: Vec<FaultSpan> = fault_spans(evidence)
        .into_iter()
        .filter(|s| is_tool(&s.fake))
        .collect();
    if spans.is_empty() {
        return not_applicable(
            v,
            "no tool fake was faulted, so tool fallback could not be judged.",
        );
    }
    let mut needed: Vec<Record> = Vec::new();
    for span in &spans {
        for r in needing_tool(evidence, span, expect) {
            if !needed.contains(&r) {
                needed.push(r);
            }
        }
    }
    let windows: Vec<String> = spans.iter().map(FaultSpan::describe).collect();
    if needed.is_empty() {
        return not_applicable(
            v,
            format!(
                "no request sent during the tool outage ({}) was seen needing the tool; name \
                 the flows that use it with tool_flows in [expect.fallback].",
                windows.join("; ")
            ),
        );
    }
    let bad: Vec<String> = needed
        .iter()
        .filter_map(|r| {
            let why = if !r.succeeded() {
                "failed instead of answering without the tool"
            } else if r.degraded != Some(true) {
                "answered without the degraded marker"
            } else {
                return None;
            };
            Some(format!("{}: {why}", describe_record(r)))
        })
        .collect();
    let share = 1.0 - bad.len() as f64 / needed.len() as f64;
    v.figure = Some(share);
    let seen = format!(
        "{} of {} requests that needed the tool during its outage ({}) succeeded marked degraded \
         ({})",
        needed.len() - bad.len(),
        needed.len(),
        windows.join("; "),
        format_ratio(share)
    );
    if share >= expect.tool_success_rate {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "{seen}, at least the {} asked.",
            format_ratio(expect.tool_success_rate)
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{seen}, under the {} asked: a tool outage should cost live data, not the answer, \
             and the user should be told.",
            format_ratio(expect.tool_success_rate)
        );
    }
    v.evidence = bounded(bad);
    v
}

/// `fallback.redis`: during a Redis outage the success rate holds and a warning is logged.
fn check_redis(evidence: &Evidence, expect: &FallbackExpectations) -> Verdict {
    let mut v = pending(
        "fallback.redis",
        format!(
            "during a Redis outage at least {} of requests succeed and a warning is logged",
            format_ratio(expect.redis_success_rate)
        ),
        "ratio",
        Some(expect.redis_success_rate),
    );
    let spans: Vec<FaultSpan> = fault_spans(evidence)
        .into_iter()
        .filter(|s| s.fake == FakeName::Redis)
        .collect();
    if spans.is_empty() {
        return not_applicable(
            v,
            "Redis was not faulted, so the cache fallback could not be judged.",
        );
    }
    let during: Vec<Record> = evidence
        .records
        .iter()
        .filter(|r| spans.iter().any(|s| s.saw(r)))
        .collect();
    if during.is_empty() {
        return not_applicable(v, "no request was sent during the Redis outage.");
    }
    let ok = during.iter().filter(|r| r.succeeded()).count();
    let share = ok as f64 / during.len() as f64;
    v.figure = Some(share);
    let warning = evidence.logs.iter().find(|l| {
        spans
            .iter()
            .any(|s| l.at_ms >= s.start_ms && l.at_ms <= s.end_ms + WARNING_GRACE_MS)
            && json_line(&l.text).is_some_and(|j| is_warning(&j, expect.level_field.as_deref()))
    });
    let windows: Vec<String> = spans.iter().map(FaultSpan::describe).collect();
    let seen = format!(
        "{ok} of {} requests during the Redis outage ({}) succeeded ({})",
        during.len(),
        windows.join("; "),
        format_ratio(share)
    );
    let held = share >= expect.redis_success_rate;
    let mut lines: Vec<String> = during
        .iter()
        .filter(|r| !r.succeeded())
        .map(describe_record)
        .collect();
    match (held, warning, evidence.logs.is_empty()) {
        (true, Some(line), _) => {
            v.outcome = Outcome::Pass;
            v.summary = format!("{seen} and a warning was logged.");
            lines.insert(
                0,
                format!(
                    "warning at {}: {}",
                    format_ms(line.at_ms),
                    super::sla::excerpt(&line.text)
                ),
            );
        }
        (true, None, true) => {
            v.outcome = Outcome::Pass;
            v.summary = format!(
                "{seen}; the target's logs were not captured ({}), so the warning could not \
                 be checked.",
                super::common::gap_about(evidence, "log").unwrap_or("no log lines")
            );
        }
        (true, None, false) if super::logs::lines_lost(evidence).is_some() => {
            v.outcome = Outcome::Pass;
            v.summary = format!(
                "{seen}; no warning was found in the logs kept, but {}, so the warning could \
                 not be checked.",
                super::logs::lines_lost(evidence).unwrap_or_default()
            );
        }
        (true, None, false) => {
            v.outcome = Outcome::Fail;
            v.summary = format!(
                "{seen}, but no JSON warning was logged during the outage: operators cannot \
                 tell that the cache is being skipped."
            );
        }
        (false, _, _) => {
            v.outcome = Outcome::Fail;
            v.summary = format!(
                "{seen}, under the {} asked: a cache outage should cost money, not answers.",
                format_ratio(expect.redis_success_rate)
            );
        }
    }
    v.evidence = bounded(lines);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::{attempt, window};
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::{LogLine, LogStream, Phase};

    fn tool_outage(degraded: Option<bool>, status: u16) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 4, Some(status), 300.0)
            .build();
        e.timeline = window("weather", "refuse", 10_000.0, 20_000.0);
        e.records.edit(|rs| {
            for r in rs.iter_mut() {
                r.degraded = degraded;
            }
        });
        let tool_calls: Vec<_> = e
            .records
            .iter()
            .map(|r| {
                attempt(
                    r.at_ms + 5.0,
                    "weather",
                    "/v1/forecast",
                    &r.nonce,
                    None,
                    1.0,
                )
            })
            .collect();
        e.attempts = tool_calls.into();
        e
    }

    #[test]
    fn degraded_answers_during_a_tool_outage_pass() {
        let v = check_tool(
            &tool_outage(Some(true), 200),
            &FallbackExpectations::default(),
        );
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(1.0));
    }

    #[test]
    fn failing_or_unmarked_answers_during_a_tool_outage_fail() {
        let v = check_tool(&tool_outage(None, 502), &FallbackExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(0.0));
        assert!(v.evidence[0].ends_with("failed instead of answering without the tool"));

        let v = check_tool(&tool_outage(None, 200), &FallbackExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.evidence[0].ends_with("answered without the degraded marker"));
    }

    #[test]
    fn tool_flows_name_requests_the_fake_never_saw() {
        let mut e = tool_outage(None, 502);
        e.attempts.clear();
        let v = check_tool(&e, &FallbackExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("tool_flows"));
        let expect = FallbackExpectations {
            tool_flows: vec!["chat".into()],
            ..FallbackExpectations::default()
        };
        assert_eq!(check_tool(&e, &expect).outcome, Outcome::Fail);
    }

    fn redis_outage(status: u16, warn: bool) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 10, Some(status), 300.0)
            .build();
        e.timeline = window("redis", "refuse", 10_000.0, 20_000.0);
        let level = if warn { "warn" } else { "info" };
        e.logs.push(LogLine {
            at_ms: 10_100.0,
            stream: LogStream::Stdout,
            text: format!(r#"{{"level":"{level}","event":"cache_unavailable"}}"#),
        });
        e
    }

    #[test]
    fn a_redis_outage_with_answers_and_a_warning_passes() {
        let v = check_redis(&redis_outage(200, true), &FallbackExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(v.evidence[0].starts_with("warning at 10.1 s"));
    }

    #[test]
    fn a_redis_outage_without_a_warning_or_with_failures_fails() {
        let v = check_redis(&redis_outage(200, false), &FallbackExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.contains("no JSON warning was logged"));
        let v = check_redis(&redis_outage(503, true), &FallbackExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(0.0));
        assert!(v.summary.contains("should cost money, not answers"));
    }

    #[test]
    fn without_an_outage_fallback_is_not_applicable() {
        let e = EvidenceBuilder::new()
            .records(Phase::Fault, 3, Some(200), 300.0)
            .build();
        for v in check(&e, &FallbackExpectations::default()) {
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
        }
    }
}
