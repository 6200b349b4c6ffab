//! Recovery (`recovery.time`, `recovery.mitigation`, `recovery.fast_fail`): how quickly the
//! target stops hurting users once a fault starts, and returns to normal once it ends.
//!
//! The lesson asks for graceful degradation and "honest messages beat silent hangs": during a
//! fault users should soon get a quick failure or a degraded answer rather than wait out every
//! timeout (mitigation); in a long outage, failures should come fast (a circuit breaker, not a
//! queue of doomed calls); and after the fault, success rate and p95 should return to the
//! baseline's within a bounded time, judged over k consecutive windows so one lucky second
//! does not count as recovered.

use super::common::{bounded, fault_spans, not_applicable, pending, quantile, FaultSpan};
use super::sla::{describe_record, format_ms, format_ratio};
use super::{Outcome, Verdict};
use crate::evidence::{Evidence, Phase, Record};
use crate::scenario::RecoveryExpectations;

/// However fast the baseline, the recovered windows may be this much slower and still count as
/// healthy: a 5 ms baseline p95 times 1.5 would call ordinary scheduling noise a relapse. On a
/// shared 2-core CI machine (load average 7), the healthy Python and Node examples' windows
/// were seen with p95s of 200-350 ms against baselines of 30-190 ms, with nothing wrong:
/// pooling the windows (see `check_time`) absorbs a one-off, this floor the steady noise. What
/// the check is for is slower or shows in the success rate: a breaker still open (failures), a
/// target still waiting out timeouts (seconds). The recovery phase's own p95 limit
/// (`sla.p95.recovery`) holds the absolute latency.
const P95_FLOOR_MS: f64 = 500.0;

/// Timeline switches land a few milliseconds off plan (a 10 s window measured 9.9999 s), so a
/// fault this much shorter than `long_outage` still counts as long.
const LONG_SLACK_MS: f64 = 250.0;
/// Faults on the same fake and route this close together are one outage to its users.
const ADJACENT_MS: f64 = 1_000.0;

pub fn check(evidence: &Evidence, expect: &RecoveryExpectations) -> Vec<Verdict> {
    let spans = fault_spans(evidence);
    let outages = outages(&spans);
    vec![
        check_time(evidence, &spans, expect),
        check_mitigation(evidence, &outages, expect),
        check_fast_fail(evidence, &outages, expect),
    ]
}

/// Fault windows merged into outages: a 503 window followed at once by a hang on the same
/// route is one 20 s outage, not two 10 s ones.
fn outages(spans: &[FaultSpan]) -> Vec<FaultSpan> {
    let mut merged: Vec<FaultSpan> = Vec::new();
    for span in spans {
        let joined = merged.iter_mut().find(|m| {
            m.fake == span.fake
                && m.route == span.route
                && span.start_ms <= m.end_ms + ADJACENT_MS
                && span.end_ms >= m.start_ms - ADJACENT_MS
        });
        match joined {
            Some(m) => {
                m.label = format!("{} then {}", m.label, span.label);
                m.start_ms = m.start_ms.min(span.start_ms);
                m.end_ms = m.end_ms.max(span.end_ms);
            }
            None => merged.push(span.clone()),
        }
    }
    merged
}

fn is_long(span: &FaultSpan, long_ms: f64) -> bool {
    span.duration_ms() + LONG_SLACK_MS >= long_ms
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A success share and p95 of some records.
fn health(records: &[Record]) -> (f64, f64) {
    let ok = records.iter().filter(|r| r.succeeded()).count();
    let latencies: Vec<f64> = records.iter().map(|r| r.latency_ms).collect();
    (ok as f64 / records.len() as f64, quantile(&latencies, 0.95))
}

/// `recovery.time`: from the last fault's end until `windows` consecutive windows are back
/// within tolerance of the baseline's success rate and p95.
fn check_time(evidence: &Evidence, spans: &[FaultSpan], expect: &RecoveryExpectations) -> Verdict {
    let limit = ms(expect.within);
    let mut v = pending(
        "recovery.time",
        format!(
            "within {} of the last fault's end, {} consecutive {} windows are back to baseline",
            format_ms(limit),
            expect.windows,
            format_ms(ms(expect.window))
        ),
        "ms",
        Some(limit),
    );
    let Some(fault_end) = spans.iter().map(|s| s.end_ms).reduce(f64::max) else {
        return not_applicable(v, "no fault was injected, so recovery could not be judged.");
    };
    let run_end = evidence.duration_ms;
    let baseline: Vec<Record> = evidence.records_in(Phase::Baseline).collect();
    if baseline.is_empty() {
        return not_applicable(
            v,
            "no request was sent in the baseline phase, so there is nothing to recover to.",
        );
    }
    if !evidence.records.iter().any(|r| r.at_ms >= fault_end) {
        return not_applicable(
            v,
            format!(
                "no request was sent after the last fault ended at {}, so recovery could not be \
                 judged.",
                format_ms(fault_end)
            ),
        );
    }
    // A recovery phase too short to hold the windows recovery is judged over cannot show a
    // recovery, whatever the target does: not applicable, never a failure (a short
    // `capacity` step or a custom scenario ending soon after its fault).
    let needed = ms(expect.window) * f64::from(expect.windows.max(1));
    if run_end - fault_end + LONG_SLACK_MS < needed {
        return not_applicable(
            v,
            format!(
                "the run ended {} after the last fault, too soon to see {} consecutive {} \
                 windows, so recovery could not be judged; leave at least {} after the last \
                 fault.",
                format_ms((run_end - fault_end).max(0.0)),
                expect.windows,
                format_ms(ms(expect.window)),
                format_ms(needed)
            ),
        );
    }
    let (base_ok, base_p95) = health(&baseline);
    let min_ok = base_ok - expect.success_tolerance;
    let max_p95 = (base_p95 * expect.p95_factor).max(base_p95 + P95_FLOOR_MS);
    let width = ms(expect.window);

    let mut lines = Vec::new();
    // The streak so far: each window's start and its requests. Success is judged per window;
    // latency over the last `windows` windows pooled, so that one request a busy machine
    // delayed (a window of 10 requests has its max as p95) cannot break a recovery on its own,
    // while a relapse lasting a window or more still does.
    let mut streak: Vec<(f64, Vec<Record>)> = Vec::new();
    let mut recovered: Option<f64> = None;
    let mut t = fault_end;
    while t < run_end.max(fault_end + width) && recovered.is_none() {
        let in_window: Vec<Record> = evidence
            .records
            .iter()
            .filter(|r| r.at_ms >= t && r.at_ms < t + width)
            .collect();
        // An empty window says nothing either way: it neither breaks nor extends a streak.
        if !in_window.is_empty() {
            let (ok, p95) = health(&in_window);
            let ok_enough = ok >= min_ok;
            lines.push(format!(
                "+{}: {} requests, {} ok, p95 {} {}",
                format_ms(t - fault_end),
                in_window.len(),
                format_ratio(ok),
                format_ms(p95),
                if ok_enough { "ok" } else { "not yet" }
            ));
            if ok_enough {
                streak.push((t, in_window));
                let k = expect.windows.max(1) as usize;
                if streak.len() >= k {
                    let last = &streak[streak.len() - k..];
                    let pooled: Vec<Record> =
                        last.iter().flat_map(|(_, rs)| rs.iter().cloned()).collect();
                    let (_, pooled_p95) = health(&pooled);
                    if pooled_p95 <= max_p95 {
                        recovered = Some(last[0].0);
                        lines.push(format!(
                            "+{}..: {k} windows, {} requests, p95 {}: healthy",
                            format_ms(last[0].0 - fault_end),
                            pooled.len(),
                            format_ms(pooled_p95)
                        ));
                    }
                }
            } else {
                streak.clear();
            }
        }
        t += width;
    }
    let target = format!(
        "baseline {} ok and p95 {}: each window needs at least {} ok, and {} windows together \
         p95 at most {}",
        format_ratio(base_ok),
        format_ms(base_p95),
        format_ratio(min_ok.max(0.0)),
        expect.windows,
        format_ms(max_p95)
    );
    v.evidence = bounded(lines);
    match recovered {
        Some(at) if at - fault_end <= limit => {
            v.figure = Some(at - fault_end);
            v.outcome = Outcome::Pass;
            v.summary = format!(
                "back to baseline {} after the last fault ended, within the {} limit ({target}).",
                format_ms(at - fault_end),
                format_ms(limit)
            );
        }
        Some(at) => {
            v.figure = Some(at - fault_end);
            v.outcome = Outcome::Fail;
            v.summary = format!(
                "back to baseline only {} after the last fault ended, over the {} limit \
                 ({target}): users kept suffering after the provider was fine.",
                format_ms(at - fault_end),
                format_ms(limit)
            );
        }
        None => {
            v.figure = Some((run_end - fault_end).max(0.0));
            v.outcome = Outcome::Fail;
            v.summary = format!(
                "not back to baseline for {} consecutive windows in the {} between the last \
                 fault's end and the run's end ({target}).",
                expect.windows,
                format_ms((run_end - fault_end).max(0.0))
            );
        }
    }
    v
}

/// Did this request spare its user the wait: a fast failure, or a degraded answer?
fn mitigates(r: &Record, fast_ms: f64) -> bool {
    (!r.succeeded() && r.latency_ms <= fast_ms) || (r.succeeded() && r.degraded == Some(true))
}

/// `recovery.mitigation`: after an outage of `long_outage` or more that hurts users starts,
/// the first fast failure or degraded answer comes within `mitigate_within`.
fn check_mitigation(
    evidence: &Evidence,
    spans: &[FaultSpan],
    expect: &RecoveryExpectations,
) -> Verdict {
    let limit = ms(expect.mitigate_within);
    let fast = ms(expect.fast_fail);
    let mut v = pending(
        "recovery.mitigation",
        format!(
            "within {} of the start of an outage of {} or more, users get a fast failure (at \
             most {}) or a degraded answer",
            format_ms(limit),
            format_ms(ms(expect.long_outage)),
            format_ms(fast)
        ),
        "ms",
        Some(limit),
    );
    if spans.is_empty() {
        return not_applicable(
            v,
            "no fault was injected, so mitigation could not be judged.",
        );
    }
    // In a short blip, retrying through it is the right answer; mitigation (a breaker, a
    // fallback) is owed when the outage lasts.
    let long = ms(expect.long_outage);
    let long_spans: Vec<&FaultSpan> = spans.iter().filter(|s| is_long(s, long)).collect();
    if long_spans.is_empty() {
        return not_applicable(
            v,
            format!(
                "no fault lasted {} or more, so mitigation could not be judged (retrying through \
                 a short fault is fine).",
                format_ms(long)
            ),
        );
    }
    let mut worst: Option<f64> = None;
    let mut lines = Vec::new();
    for span in long_spans {
        let during: Vec<Record> = evidence.records.iter().filter(|r| span.saw(r)).collect();
        // The clock starts when the fault first hurt a user, not when it was switched on: a
        // target that retries through the first stretch of a fault (every user still gets an
        // answer, as in `brownout`) owes no mitigation yet, and must not be charged for it.
        let Some(hurt_from) = during
            .iter()
            .filter(|r| !r.succeeded() || r.degraded == Some(true))
            .map(|r| r.at_ms)
            .min_by(f64::total_cmp)
        else {
            continue;
        };
        let first = during
            .iter()
            .filter(|r| mitigates(r, fast))
            .min_by(|a, b| (a.at_ms + a.latency_ms).total_cmp(&(b.at_ms + b.latency_ms)));
        let took = match first {
            Some(r) => {
                let took = (r.at_ms + r.latency_ms - hurt_from).max(0.0);
                lines.push(format!(
                    "{}: first hurt a user at {}; first mitigated answer {} later: {}",
                    span.describe(),
                    format_ms(hurt_from),
                    format_ms(took),
                    describe_record(r)
                ));
                took
            }
            None => {
                lines.push(format!(
                    "{}: no fast failure or degraded answer at all; slowest failure: {}",
                    span.describe(),
                    during
                        .iter()
                        .filter(|r| !r.succeeded())
                        .max_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms))
                        .map_or("-".into(), describe_record)
                ));
                f64::INFINITY
            }
        };
        worst = Some(worst.map_or(took, |w: f64| w.max(took)));
    }
    let Some(worst) = worst else {
        return not_applicable(
            v,
            "no fault made a request fail or degrade, so there was nothing to mitigate.",
        );
    };
    v.evidence = bounded(lines);
    if worst <= limit {
        v.figure = Some(worst);
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "users got a fast failure or degraded answer at most {} after a fault first hurt \
             one, within the {} limit.",
            format_ms(worst),
            format_ms(limit)
        );
    } else {
        v.figure = worst.is_finite().then_some(worst);
        v.outcome = Outcome::Fail;
        v.summary = if worst.is_finite() {
            format!(
                "the first fast failure or degraded answer came {} after a fault first hurt a \
                 user, over the {} limit: until then every user waited out the fault.",
                format_ms(worst),
                format_ms(limit)
            )
        } else {
            format!(
                "a fault hurt users but none got a fast failure (at most {}) or a degraded \
                 answer while it lasted: every user waited out the fault.",
                format_ms(fast)
            )
        };
    }
    v
}

/// `recovery.fast_fail`: in the second half of a long outage, most failures come fast. Judged
/// at the median, not the p95: a circuit breaker lets a few probes through to see whether the
/// provider is back, and those wait as long as the timeout, by design.
///
/// A failure belongs to the second half if its request was sent during the outage and was
/// still waiting at its midpoint or sent after it: with few users and long timeouts, every
/// request of the second half may have been sent just before it, and waited through it.
fn check_fast_fail(
    evidence: &Evidence,
    spans: &[FaultSpan],
    expect: &RecoveryExpectations,
) -> Verdict {
    let limit = ms(expect.fast_fail);
    let long = ms(expect.long_outage);
    let mut v = pending(
        "recovery.fast_fail",
        format!(
            "in the second half of an outage of {} or more, failures take at most {} (median)",
            format_ms(long),
            format_ms(limit)
        ),
        "ms",
        Some(limit),
    );
    if spans.is_empty() {
        return not_applicable(
            v,
            "no fault was injected, so failing fast could not be judged.",
        );
    }
    let long_spans: Vec<&FaultSpan> = spans.iter().filter(|s| is_long(s, long)).collect();
    if long_spans.is_empty() {
        return not_applicable(
            v,
            format!(
                "no fault lasted {} or more, so failing fast in a long outage could not be \
                 judged.",
                format_ms(long)
            ),
        );
    }
    let failures: Vec<Record> = evidence
        .records
        .iter()
        .filter(|r| !r.succeeded())
        .filter(|r| {
            long_spans.iter().any(|s| {
                let half = s.start_ms + s.duration_ms() / 2.0;
                r.at_ms >= s.start_ms && r.at_ms < s.end_ms && r.at_ms + r.latency_ms >= half
            })
        })
        .collect();
    if failures.is_empty() {
        return not_applicable(
            v,
            "no request failed in the second half of a long outage (answers succeeded or were \
             degraded), so failing fast could not be judged.",
        );
    }
    let latencies: Vec<f64> = failures.iter().map(|r| r.latency_ms).collect();
    let median = quantile(&latencies, 0.5);
    v.figure = Some(median);
    let windows: Vec<String> = long_spans.iter().map(|s| s.describe()).collect();
    let seen = format!(
        "{} failures in the second half of {} took {} at the median",
        failures.len(),
        windows.join("; "),
        format_ms(median)
    );
    if median <= limit {
        v.outcome = Outcome::Pass;
        v.summary = format!("{seen}, within the {} limit.", format_ms(limit));
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{seen}, over the {} limit: deep into the outage most requests still waited for a \
             provider known to be down (no circuit breaker failing them fast, nor a timeout \
             within the limit).",
            format_ms(limit)
        );
        let mut slow = failures;
        slow.sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
        v.evidence = bounded(slow.iter().map(describe_record).collect());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::window;
    use crate::evidence::testing::EvidenceBuilder;

    fn expect() -> RecoveryExpectations {
        RecoveryExpectations::default()
    }

    /// Healthy baseline; an LLM outage 10–20 s failing with `fail_ms`; after it, `slow_for` ms
    /// of slow answers before healthy ones.
    fn run(fail_ms: f64, slow_for: f64) -> Evidence {
        let mut b = EvidenceBuilder::new().records(Phase::Baseline, 40, Some(200), 200.0);
        for i in 0..40 {
            b = b.record(10_000.0 + i as f64 * 250.0, Some(503), fail_ms);
        }
        for i in 0..40 {
            let at = 20_000.0 + i as f64 * 250.0;
            let latency = if at < 20_000.0 + slow_for {
                3_000.0
            } else {
                210.0
            };
            b = b.record(at, Some(200), latency);
        }
        let mut e = b.build();
        // Failures in flight at the end would count in the fault phase but were sent in it.
        e.timeline = window("llm", "status 503", 10_000.0, 20_000.0);
        e
    }

    fn find(v: &[Verdict], id: &str) -> Verdict {
        v.iter().find(|x| x.id == id).expect(id).clone()
    }

    #[test]
    fn a_quick_return_to_baseline_passes() {
        let v = find(&check(&run(100.0, 0.0), &expect()), "recovery.time");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
    }

    #[test]
    fn staying_slow_after_the_fault_fails_recovery_time() {
        let v = find(&check(&run(100.0, 5_000.0), &expect()), "recovery.time");
        assert_eq!(v.outcome, Outcome::Pass, "5 s is within 10 s: {v:#?}");
        assert_eq!(v.figure, Some(5_000.0));
        let strict = RecoveryExpectations {
            within: std::time::Duration::from_secs(3),
            ..expect()
        };
        let v = find(&check(&run(100.0, 5_000.0), &strict), "recovery.time");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.summary.starts_with("back to baseline only 5 s after"),
            "{}",
            v.summary
        );
        let v = find(&check(&run(100.0, 60_000.0), &expect()), "recovery.time");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v
            .summary
            .starts_with("not back to baseline for 3 consecutive windows"));
    }

    #[test]
    fn a_recovery_phase_too_short_for_its_windows_is_not_applicable_not_failed() {
        // The run ends 2 s after the fault: fewer than 3 windows of 1 s, however healthy.
        let mut e = run(100.0, 0.0);
        e.records.retain(|r| r.at_ms < 22_000.0);
        e.duration_ms = 22_000.0;
        let v = find(&check(&e, &expect()), "recovery.time");
        assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
        assert!(v.summary.contains("leave at least 3 s"), "{}", v.summary);
    }

    #[test]
    fn fast_failures_mitigate_and_pass_fast_fail() {
        let verdicts = check(&run(100.0, 0.0), &expect());
        let v = find(&verdicts, "recovery.mitigation");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(100.0));
        let v = find(&verdicts, "recovery.fast_fail");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(100.0));
    }

    #[test]
    fn one_late_request_does_not_break_a_recovery_but_a_slow_window_does() {
        let spike = |late: &[usize]| {
            let mut b = EvidenceBuilder::new().records(Phase::Baseline, 40, Some(200), 20.0);
            for i in 0..40 {
                b = b.record(10_000.0 + i as f64 * 250.0, Some(503), 100.0);
            }
            // Eight requests a second, as the scenarios' four users make.
            for i in 0..80usize {
                let latency = if late.contains(&i) { 1_000.0 } else { 20.0 };
                b = b.record(20_000.0 + i as f64 * 125.0, Some(200), latency);
            }
            let mut e = b.build();
            e.timeline = window("llm", "status 503", 10_000.0, 20_000.0);
            find(&check(&e, &expect()), "recovery.time")
        };
        // One request a second late in the first window: recovered at once.
        let v = spike(&[1]);
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
        // The whole first second slow: recovered only after it.
        let v = spike(&[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(1_000.0));
    }

    #[test]
    fn mitigation_is_timed_from_when_the_fault_first_hurt_a_user() {
        // A brownout: for 9.5 s of a 10–20 s fault every call is retried through (users get
        // their answers); then calls fail, fast. No user waited out anything: it passes.
        let mut b = EvidenceBuilder::new().records(Phase::Baseline, 40, Some(200), 200.0);
        for i in 0..38 {
            b = b.record(10_000.0 + i as f64 * 250.0, Some(200), 700.0);
        }
        for i in 0..2 {
            b = b.record(19_500.0 + i as f64 * 250.0, Some(503), 300.0);
        }
        let mut e = b.build();
        e.timeline = window("llm", "status 503", 10_000.0, 20_000.0);
        let v = find(&check(&e, &expect()), "recovery.mitigation");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(300.0));
        assert!(
            v.evidence[0].contains("first hurt a user at 19.5 s"),
            "{v:#?}"
        );
    }

    #[test]
    fn slow_failures_throughout_an_outage_fail_mitigation_and_fast_fail() {
        let verdicts = check(&run(5_000.0, 0.0), &expect());
        let v = find(&verdicts, "recovery.mitigation");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.summary.contains("none got a fast failure"),
            "{}",
            v.summary
        );
        let v = find(&verdicts, "recovery.fast_fail");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(5_000.0));
        assert!(v.summary.contains("no circuit breaker"));
    }

    #[test]
    fn slow_failures_sent_just_before_the_midpoint_still_fail_fast_fail() {
        // Four users, each waiting 4.5 s per doomed request: none is sent after 15 s, but
        // they all wait through the second half of the 10-20 s outage.
        let mut b = EvidenceBuilder::new().records(Phase::Baseline, 40, Some(200), 200.0);
        for at in [10_000.0, 14_700.0] {
            for user in 0..4 {
                b = b.record(at + user as f64 * 50.0, Some(504), 4_500.0);
            }
        }
        let mut e = b.build();
        e.timeline = window("llm", "hang", 10_000.0, 20_000.0);
        let v = find(&check(&e, &expect()), "recovery.fast_fail");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(v.summary.starts_with("4 failures"), "{}", v.summary);

        // The same outage with a breaker: once it opens, requests fail at once, and pass.
        let mut b = EvidenceBuilder::new().records(Phase::Baseline, 40, Some(200), 200.0);
        for user in 0..4 {
            b = b.record(10_000.0 + user as f64 * 50.0, Some(504), 4_500.0);
        }
        for i in 0..40 {
            b = b.record(14_600.0 + i as f64 * 130.0, Some(503), 20.0);
        }
        let mut e = b.build();
        e.timeline = window("llm", "hang", 10_000.0, 20_000.0);
        let v = find(&check(&e, &expect()), "recovery.fast_fail");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
    }

    #[test]
    fn without_faults_recovery_is_not_applicable() {
        let e = EvidenceBuilder::new()
            .records(Phase::Baseline, 5, Some(200), 100.0)
            .build();
        for v in check(&e, &expect()) {
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
            assert!(v.summary.contains("no fault was injected"));
        }
    }

    #[test]
    fn back_to_back_faults_on_one_route_are_one_outage_and_near_misses_count_as_long() {
        let mut e = run(5_000.0, 0.0);
        let mut timeline = window("llm", "status 503", 10_000.0, 15_000.0);
        timeline.extend(window("llm", "hang", 15_000.0, 19_990.0));
        e.timeline = timeline;
        let verdicts = check(&e, &expect());
        let v = find(&verdicts, "recovery.fast_fail");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(
            v.summary.contains("\"status 503 then hang\" 10 s–20 s"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_short_fault_is_not_judged_for_mitigation_or_fast_fail() {
        let mut e = run(5_000.0, 0.0);
        e.timeline = window("llm", "status 503", 10_000.0, 15_000.0);
        let verdicts = check(&e, &expect());
        for id in ["recovery.fast_fail", "recovery.mitigation"] {
            let v = find(&verdicts, id);
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
            assert!(v.summary.starts_with("no fault lasted 10 s or more"));
        }
    }
}
