//! Did the faults take effect (`faults.reached`)? The first verdict of every run.
//!
//! Every other check judges how the target behaved *while a fault was on*. If no call of the
//! target reached the faulty fake during a window (a cache answered everything, the service
//! talks to another address than the fake's, or a `--quick` window too short for any request
//! to land in it), those checks would judge healthy traffic and pass vacuously: the run proved
//! nothing about the fault it was meant to test. So each scheduled window must have met at
//! least one upstream call at its fake, on its route, counted from the fake's own journal.
//!
//! - Windows back to back on one fake (outage's 503s then its hang) are one outage and are
//!   judged together: once the first has opened a circuit breaker, a service rightly stops
//!   calling, and a breaker with a long cool-down (resilience4j's 60 s) may send nothing
//!   during the second. The outage must have met a call somewhere.
//! - A `refuse` window is left out: the port is closed, so a refused connection leaves no
//!   trace at the fake (the fallback checks judge what the target did about it).
//! - A window on a fake the target never called at all in the whole run is "not applicable"
//!   with that reason: the service does not use that dependency (or is not configured to),
//!   which the checks of that dependency report in their own terms.

use super::common::{bounded, fault_spans, not_applicable, pending, FaultSpan};
use super::{Outcome, Verdict};
use crate::evidence::Evidence;

/// `faults.reached`: every fault window met at least one call at its fake.
pub fn check_reached(evidence: &Evidence) -> Verdict {
    let mut v = pending(
        "faults.reached",
        "every fault window met at least one call of the target at its fake".into(),
        "windows",
        Some(0.0),
    );
    let spans = fault_spans(evidence);
    if spans.is_empty() {
        return not_applicable(v, "the scenario schedules no fault.");
    }
    let used = |fake: &str| {
        evidence.attempts.iter().any(|a| a.fake == fake)
            || evidence.writes.iter().any(|w| w.fake == fake)
    };
    let mut judged: Vec<(FaultSpan, usize)> = Vec::new();
    let mut left_out: Vec<String> = Vec::new();
    for span in &outages(&spans) {
        if span.kind == "refuse" {
            left_out.push(format!(
                "{}: a refused connection leaves no trace at the fake",
                span.describe()
            ));
        } else if !used(&span.fake) {
            left_out.push(format!(
                "{}: the target never called the {} fake in this run",
                span.describe(),
                span.fake
            ));
        } else {
            let calls = evidence
                .attempts
                .iter()
                .filter(|a| span.covers(a) && a.at_ms >= span.start_ms && a.at_ms < span.end_ms)
                .count()
                + evidence
                    .writes
                    .iter()
                    .filter(|w| {
                        w.fake == span.fake && w.at_ms >= span.start_ms && w.at_ms < span.end_ms
                    })
                    .count();
            judged.push((span.clone(), calls));
        }
    }
    if judged.is_empty() {
        v.evidence = bounded(left_out.clone());
        return not_applicable(
            v,
            format!(
                "no fault window could be observed at its fake ({}).",
                left_out.join("; ")
            ),
        );
    }
    let missed: Vec<&(FaultSpan, usize)> = judged.iter().filter(|(_, n)| *n == 0).collect();
    let mut lines: Vec<String> = judged
        .iter()
        .map(|(span, n)| format!("{}: {n} calls at the fake", span.describe()))
        .collect();
    lines.extend(left_out.iter().map(|why| format!("left out: {why}")));
    v.evidence = bounded(lines);
    v.figure = Some(missed.len() as f64);
    if missed.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "each of the {} fault windows judged met calls of the target at its fake, so the \
             checks below judged the target under the fault{}.",
            judged.len(),
            if left_out.is_empty() {
                String::new()
            } else {
                format!(" ({} left out, see the evidence)", left_out.len())
            }
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {} fault windows met no call of the target at its fake ({}): the fault never \
             took effect, so this run proves nothing about it. Is a cache answering everything, \
             or the window too short for a request to land in it?",
            missed.len(),
            judged.len(),
            missed
                .iter()
                .map(|(span, _)| span.describe())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    v
}

/// Faults on one fake and route that follow each other without a gap, as one outage (labels
/// joined with "then"). Refuse windows stay apart: they are left out on their own.
fn outages(spans: &[FaultSpan]) -> Vec<FaultSpan> {
    let mut merged: Vec<FaultSpan> = Vec::new();
    for span in spans {
        let joins = merged.iter_mut().rev().find(|m| {
            m.fake == span.fake
                && m.route == span.route
                && m.kind != "refuse"
                && span.kind != "refuse"
                && span.start_ms <= m.end_ms + ADJACENT_MS
        });
        match joins {
            Some(m) => {
                m.end_ms = m.end_ms.max(span.end_ms);
                m.label = format!("{} then {}", m.label, span.label);
            }
            None => merged.push(span.clone()),
        }
    }
    merged
}

/// Windows on one fake this close together are one outage (the timeline's switches land a few
/// milliseconds off plan).
const ADJACENT_MS: f64 = 1_000.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::{attempt, window};

    fn evidence(windows: &[(&str, &str, f64, f64)], calls: &[(f64, &str)]) -> Evidence {
        let mut evidence = Evidence {
            duration_ms: 60_000.0,
            ..Evidence::default()
        };
        for (fake, label, start, end) in windows {
            evidence.timeline.extend(window(fake, label, *start, *end));
        }
        evidence
            .timeline
            .sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        evidence.attempts = calls
            .iter()
            .map(|(at, fake)| attempt(*at, fake, "/v1/chat/completions", "n", Some(200), 5.0))
            .collect();
        evidence
    }

    #[test]
    fn a_window_the_calls_met_passes() {
        let v = check_reached(&evidence(
            &[("llm", "status 503", 10_000.0, 20_000.0)],
            &[(5_000.0, "llm"), (12_000.0, "llm")],
        ));
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
    }

    #[test]
    fn a_window_no_call_met_fails_and_names_it() {
        // The service called the LLM before and after the window, never during it (a cache).
        let v = check_reached(&evidence(
            &[
                ("llm", "status 503", 10_000.0, 20_000.0),
                ("llm", "hang", 25_000.0, 30_000.0),
            ],
            &[(5_000.0, "llm"), (27_000.0, "llm"), (40_000.0, "llm")],
        ));
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert_eq!(v.figure, Some(1.0));
        assert!(v.summary.contains("status 503"), "{}", v.summary);
        assert!(!v.summary.contains("\"hang\""), "{}", v.summary);
    }

    #[test]
    fn back_to_back_windows_are_one_outage_reached_by_a_call_in_either() {
        // A breaker opened in the 503s and stayed open through the hang: the outage was met.
        let v = check_reached(&evidence(
            &[
                ("llm", "status 503", 10_000.0, 20_000.0),
                ("llm", "hang", 20_000.0, 30_000.0),
            ],
            &[(12_000.0, "llm"), (40_000.0, "llm")],
        ));
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(v.evidence[0].contains("status 503 then hang"), "{v:#?}");
    }

    #[test]
    fn a_call_on_another_fake_does_not_reach_the_window() {
        let v = check_reached(&evidence(
            &[("llm", "status 503", 10_000.0, 20_000.0)],
            &[(5_000.0, "llm"), (12_000.0, "weather")],
        ));
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
    }

    #[test]
    fn a_fake_never_called_or_a_refuse_window_is_not_applicable_with_the_reason() {
        let v = check_reached(&evidence(
            &[("weather", "status 503", 10_000.0, 20_000.0)],
            &[(12_000.0, "llm")],
        ));
        assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
        assert!(
            v.summary.contains("never called the weather fake"),
            "{}",
            v.summary
        );

        let v = check_reached(&evidence(
            &[("redis", "refuse", 10_000.0, 20_000.0)],
            &[(12_000.0, "llm")],
        ));
        assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
        assert!(v.summary.contains("no trace"), "{}", v.summary);
    }

    #[test]
    fn a_run_without_faults_is_not_applicable() {
        let v = check_reached(&evidence(&[], &[(12_000.0, "llm")]));
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(!v.summary.is_empty());
    }
}
