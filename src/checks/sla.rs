//! Latency and error rate per phase: [`phase_stats`] measures each phase's client requests,
//! [`check`] holds them to the scenario's limits (`sla.p95.<phase>`, `errors.rate.<phase>`).
//!
//! Also home to [`format_ms`] and [`format_ratio`], the human-readable figures that verdict
//! summaries and reports share, so a figure reads the same in both.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{Outcome, Verdict};
use crate::evidence::{Evidence, Phase, Record};
use crate::scenario::Expectations;

/// Latency percentiles and error counts of one phase's client requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    pub phase: Phase,
    pub start_ms: f64,
    pub end_ms: f64,
    pub requests: u64,
    pub failures: u64,
    /// failures / requests; 0 when there were no requests.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One [`PhaseStats`] per span in `evidence.phases`, in order.
///
/// Every record counts, answered or not: a client timeout is a failure that took its full
/// latency, which is exactly what the user waited.
pub fn phase_stats(evidence: &Evidence) -> Vec<PhaseStats> {
    evidence
        .phases
        .iter()
        .map(|span| {
            let mut failures = 0u64;
            let latencies = Latencies::new(evidence.records_in(span.phase).map(|r| {
                failures += u64::from(!r.succeeded());
                r.latency_ms
            }));
            let requests = latencies.sorted_us.len() as u64;
            PhaseStats {
                phase: span.phase,
                start_ms: span.start_ms,
                end_ms: span.end_ms,
                requests,
                failures,
                error_rate: if requests == 0 {
                    0.0
                } else {
                    failures as f64 / requests as f64
                },
                p50_ms: latencies.quantile_ms(0.50),
                p95_ms: latencies.quantile_ms(0.95),
                p99_ms: latencies.quantile_ms(0.99),
                max_ms: latencies.max_ms(),
            }
        })
        .collect()
}

/// For each phase the expectations put limits on: `sla.p95.<phase>` when a p95 limit is set and
/// `errors.rate.<phase>` when an error-rate limit is set, in phase order.
pub fn check(evidence: &Evidence, expect: &Expectations) -> Vec<Verdict> {
    let stats = phase_stats(evidence);
    let mut verdicts = Vec::new();
    // BTreeMap order is Phase order: baseline, fault, recovery.
    for (&phase, limits) in &expect.phases {
        let phase_stats = stats.iter().find(|s| s.phase == phase);
        if let Some(limit) = limits.p95 {
            let limit_ms = limit.as_secs_f64() * 1000.0;
            verdicts.push(check_p95(evidence, phase, phase_stats, limit_ms));
        }
        if let Some(limit) = limits.error_rate {
            verdicts.push(check_error_rate(evidence, phase, phase_stats, limit));
        }
    }
    verdicts
}

fn check_p95(
    evidence: &Evidence,
    phase: Phase,
    stats: Option<&PhaseStats>,
    limit_ms: f64,
) -> Verdict {
    let mut verdict = Verdict {
        id: format!("sla.p95.{phase}"),
        title: format!(
            "p95 latency in the {phase} phase stays within {}",
            format_ms(limit_ms)
        ),
        outcome: Outcome::NotApplicable,
        figure: None,
        limit: Some(limit_ms),
        unit: "ms".into(),
        summary: String::new(),
        evidence: Vec::new(),
    };
    let Some(stats) = stats.filter(|s| s.requests > 0) else {
        verdict.summary = no_requests(phase, stats.is_some(), "its latency");
        return verdict;
    };

    let slower = evidence
        .records_in(phase)
        .filter(|r| r.latency_ms > limit_ms)
        .count();
    verdict.figure = Some(stats.p95_ms);
    if stats.p95_ms <= limit_ms {
        verdict.outcome = Outcome::Pass;
        verdict.summary = format!(
            "p95 latency in the {phase} phase was {}, within the {} limit ({} requests).",
            format_ms(stats.p95_ms),
            format_ms(limit_ms),
            stats.requests
        );
        return verdict;
    }

    verdict.outcome = Outcome::Fail;
    verdict.summary = format!(
        "p95 latency in the {phase} phase was {}, over the {} limit: {slower} of {} requests took longer.",
        format_ms(stats.p95_ms),
        format_ms(limit_ms),
        stats.requests
    );
    verdict.evidence = slowest(evidence.records_in(phase), Verdict::EVIDENCE_LIMIT)
        .iter()
        .map(describe_record)
        .collect();
    verdict
}

fn check_error_rate(
    evidence: &Evidence,
    phase: Phase,
    stats: Option<&PhaseStats>,
    limit: f64,
) -> Verdict {
    let mut verdict = Verdict {
        id: format!("errors.rate.{phase}"),
        title: format!(
            "at most {} of requests in the {phase} phase fail",
            format_ratio(limit)
        ),
        outcome: Outcome::NotApplicable,
        figure: None,
        limit: Some(limit),
        unit: "ratio".into(),
        summary: String::new(),
        evidence: Vec::new(),
    };
    let Some(stats) = stats.filter(|s| s.requests > 0) else {
        verdict.summary = no_requests(phase, stats.is_some(), "its error rate");
        return verdict;
    };

    verdict.figure = Some(stats.error_rate);
    let share = format!(
        "{} of {} requests in the {phase} phase failed ({})",
        stats.failures,
        stats.requests,
        format_ratio(stats.error_rate)
    );
    if stats.error_rate <= limit {
        verdict.outcome = Outcome::Pass;
        verdict.summary = format!("{share}, within the {} limit.", format_ratio(limit));
        return verdict;
    }

    verdict.outcome = Outcome::Fail;
    verdict.summary = format!("{share}, over the {} limit.", format_ratio(limit));
    verdict.evidence = evidence
        .records_in(phase)
        .filter(|r| !r.succeeded())
        .take(Verdict::EVIDENCE_LIMIT)
        .map(|r| format!("{} body: {}", describe_record(&r), excerpt(&r.body_excerpt)))
        .collect();
    verdict
}

/// The `n` slowest of `records`, slowest first (the earliest first among equals), holding
/// no more than `n` at a time: a bounded set of exemplars from a stream of any length.
pub(crate) fn slowest(records: impl Iterator<Item = Record>, n: usize) -> Vec<Record> {
    let mut kept: Vec<Record> = Vec::with_capacity(n + 1);
    if n == 0 {
        return kept;
    }
    for record in records {
        if kept.len() == n && kept[n - 1].latency_ms >= record.latency_ms {
            continue;
        }
        let at = kept.partition_point(|r| r.latency_ms >= record.latency_ms);
        kept.insert(at, record);
        kept.truncate(n);
    }
    kept
}

/// Why a phase could not be judged: it had no requests, or the run never reached it.
fn no_requests(phase: Phase, phase_exists: bool, what: &str) -> String {
    if phase_exists {
        format!("no requests were sent in the {phase} phase, so {what} could not be checked.")
    } else {
        format!("the run had no {phase} phase, so {what} could not be checked.")
    }
}

/// One line naming a request: `req-7 flow=chat status=504 latency=9.8 s at=12.3 s`.
pub(crate) fn describe_record(r: &Record) -> String {
    format!(
        "{} flow={} {} latency={} at={}",
        r.request_id,
        r.flow,
        outcome_of(r),
        format_ms(r.latency_ms),
        format_ms(r.at_ms)
    )
}

/// `status=504`, or for a request without an answer `error=timeout`.
pub(crate) fn outcome_of(r: &Record) -> String {
    match (r.status, r.error.as_deref()) {
        (Some(status), _) => format!("status={status}"),
        (None, Some(error)) => format!("error={error}"),
        (None, None) => "error=no answer".into(),
    }
}

/// Characters of a response body shown in an evidence line.
pub(crate) const EXCERPT_CHARS: usize = 120;

/// A body cut to one short line, so an evidence line stays readable.
pub(crate) fn excerpt(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.is_empty() {
        return "(empty)".into();
    }
    if flat.chars().count() <= EXCERPT_CHARS {
        return flat.to_string();
    }
    let cut: String = flat.chars().take(EXCERPT_CHARS).collect();
    format!("{cut}…")
}

/// Milliseconds for people: `0.4 ms`, `842 ms`, `9.8 s`, `9 s`, `125 s`.
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "-".into();
    }
    if ms < 10.0 {
        format!("{} ms", trim_zero(format!("{ms:.1}")))
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 100_000.0 {
        format!("{} s", trim_zero(format!("{:.1}", ms / 1000.0)))
    } else {
        format!("{:.0} s", ms / 1000.0)
    }
}

/// A 0..=1 ratio as a percentage: `0%`, `1.2%`, `15%`, `100%`.
pub fn format_ratio(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "-".into();
    }
    format!("{}%", trim_zero(format!("{:.1}", ratio * 100.0)))
}

fn trim_zero(s: String) -> String {
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => s,
    }
}

/// The values at each of `quantiles` (0 without values), as the phase table computes its
/// percentiles: for other figures that must read the same (service time beside response time).
pub fn quantiles_ms(values_ms: impl Iterator<Item = f64>, quantiles: &[f64]) -> Vec<f64> {
    let latencies = Latencies::new(values_ms);
    quantiles
        .iter()
        .map(|&q| latencies.quantile_ms(q))
        .collect()
}

/// One phase's latencies: an HDR histogram in microseconds for the percentiles, and the sorted
/// raw values to report a latency that was really observed.
struct Latencies {
    histogram: Histogram<u64>,
    sorted_us: Vec<u64>,
}

impl Latencies {
    fn new(latencies_ms: impl Iterator<Item = f64>) -> Self {
        // 3 significant figures, auto-resizing: no upper bound to guess for a hung request.
        let mut histogram = Histogram::<u64>::new(3).expect("3 significant figures is valid");
        let mut sorted_us: Vec<u64> = latencies_ms.map(to_us).collect();
        for &us in &sorted_us {
            histogram
                .record(us)
                .expect("an auto-resizing histogram takes any u64");
        }
        sorted_us.sort_unstable();
        Latencies {
            histogram,
            sorted_us,
        }
    }

    /// The latency at `quantile`, in ms; 0 without samples.
    ///
    /// HDR reports the top of the bucket holding the quantile, up to 0.1% above any latency
    /// seen: with every request at exactly the 9 s limit it would say 9.004 s and fail the gate.
    /// So snap to the largest recorded latency in that bucket, a value that really happened.
    fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.sorted_us.is_empty() {
            return 0.0;
        }
        let top = self.histogram.value_at_quantile(quantile);
        let at_or_below = self.sorted_us.partition_point(|&us| us <= top);
        let us = self.sorted_us[at_or_below.saturating_sub(1)];
        us as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.sorted_us.last().map_or(0.0, |&us| us as f64 / 1000.0)
    }
}

fn to_us(ms: f64) -> u64 {
    // NaN and negatives (a clock oddity) count as 0 rather than poisoning the histogram.
    if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::scenario::{ErrorExpectations, PhaseLimits};

    fn limits(phase: Phase, p95_ms: Option<u64>, error_rate: Option<f64>) -> Expectations {
        Expectations {
            phases: BTreeMap::from([(
                phase,
                PhaseLimits {
                    p95: p95_ms.map(Duration::from_millis),
                    error_rate,
                },
            )]),
            errors: ErrorExpectations::default(),
            ..Expectations::default()
        }
    }

    fn find<'a>(verdicts: &'a [Verdict], id: &str) -> &'a Verdict {
        verdicts
            .iter()
            .find(|v| v.id == id)
            .unwrap_or_else(|| panic!("no verdict {id} in {verdicts:#?}"))
    }

    #[test]
    fn stats_come_one_per_phase_in_order_with_percentiles_in_ms() {
        let mut builder = EvidenceBuilder::new();
        for i in 1..=100 {
            builder = builder.record(10_000.0 + i as f64, Some(200), i as f64 * 10.0);
        }
        let stats = phase_stats(&builder.build());

        let phases: Vec<Phase> = stats.iter().map(|s| s.phase).collect();
        assert_eq!(phases, Phase::ALL.to_vec());
        let fault = &stats[1];
        assert_eq!(fault.requests, 100);
        assert_eq!(fault.p50_ms, 500.0);
        assert_eq!(fault.p95_ms, 950.0);
        assert_eq!(fault.p99_ms, 990.0);
        assert_eq!(fault.max_ms, 1000.0);
        assert_eq!(stats[0].requests, 0);
        assert_eq!(stats[0].p95_ms, 0.0);
        assert_eq!(stats[0].error_rate, 0.0);
    }

    #[test]
    fn unanswered_and_non_2xx_requests_count_as_failures_with_their_latency() {
        // In recovery, so the 30 s request does not reach back into the fault phase.
        let evidence = EvidenceBuilder::new()
            .records(Phase::Recovery, 2, Some(200), 100.0)
            .records(Phase::Recovery, 1, Some(503), 100.0)
            .records(Phase::Recovery, 1, None, 30_000.0)
            .build();
        let baseline = &phase_stats(&evidence)[2];
        assert_eq!(baseline.requests, 4);
        assert_eq!(baseline.failures, 2);
        assert_eq!(baseline.error_rate, 0.5);
        assert_eq!(baseline.max_ms, 30_000.0);
    }

    #[test]
    fn p95_within_the_limit_passes_even_exactly_at_it() {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Fault, 40, Some(200), 9_000.0)
            .build();
        let verdicts = check(&evidence, &limits(Phase::Fault, Some(9_000), None));
        let v = find(&verdicts, "sla.p95.fault");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(9_000.0));
        assert_eq!(v.limit, Some(9_000.0));
        assert_eq!(v.unit, "ms");
    }

    #[test]
    fn p95_over_the_limit_fails_naming_the_slowest_requests() {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Fault, 68, Some(200), 800.0)
            .records(Phase::Fault, 12, Some(504), 9_800.0)
            .build();
        let verdicts = check(&evidence, &limits(Phase::Fault, Some(9_000), None));
        let v = find(&verdicts, "sla.p95.fault");

        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(9_800.0));
        assert_eq!(
            v.summary,
            "p95 latency in the fault phase was 9.8 s, over the 9 s limit: \
             12 of 80 requests took longer."
        );
        assert_eq!(v.evidence.len(), Verdict::EVIDENCE_LIMIT);
        assert!(
            v.evidence[0].contains("status=504 latency=9.8 s"),
            "{}",
            v.evidence[0]
        );
    }

    #[test]
    fn error_rate_within_the_limit_passes_and_over_it_fails_with_bodies() {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Fault, 9, Some(200), 100.0)
            .records(Phase::Fault, 1, Some(503), 100.0)
            .build();
        let pass = check(&evidence, &limits(Phase::Fault, None, Some(0.1)));
        let v = find(&pass, "errors.rate.fault");
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.figure, Some(0.1));
        assert_eq!(v.unit, "ratio");

        let fail = check(&evidence, &limits(Phase::Fault, None, Some(0.05)));
        let v = find(&fail, "errors.rate.fault");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "1 of 10 requests in the fault phase failed (10%), over the 5% limit."
        );
        assert_eq!(v.evidence.len(), 1);
        assert!(v.evidence[0].contains("status=503"));
        assert!(v.evidence[0].contains("body: {\"error\":\"The AI service"));
    }

    #[test]
    fn a_phase_without_requests_is_not_applicable_never_a_pass() {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 5, Some(200), 100.0)
            .build();
        let verdicts = check(&evidence, &limits(Phase::Recovery, Some(1_000), Some(0.0)));
        assert_eq!(verdicts.len(), 2);
        for v in &verdicts {
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
            assert!(v
                .summary
                .contains("no requests were sent in the recovery phase"));
            assert_eq!(v.figure, None);
        }
    }

    #[test]
    fn a_phase_the_run_never_had_is_not_applicable() {
        let evidence = EvidenceBuilder::new()
            .baseline_only()
            .records(Phase::Baseline, 5, Some(200), 100.0)
            .build();
        let verdicts = check(&evidence, &limits(Phase::Fault, Some(1_000), None));
        assert_eq!(verdicts[0].outcome, Outcome::NotApplicable);
        assert!(verdicts[0].summary.contains("no fault phase"));
    }

    #[test]
    fn long_bodies_are_cut_to_one_short_line() {
        let body = format!("{{\"error\":\n\"{}\"}}", "x".repeat(500));
        let cut = excerpt(&body);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert!(!cut.contains('\n'));
        assert_eq!(excerpt(""), "(empty)");
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(format_ms(0.42), "0.4 ms");
        assert_eq!(format_ms(842.3), "842 ms");
        assert_eq!(format_ms(9_800.0), "9.8 s");
        assert_eq!(format_ms(9_000.0), "9 s");
        assert_eq!(format_ms(125_000.0), "125 s");
        assert_eq!(format_ratio(0.0), "0%");
        assert_eq!(format_ratio(0.15), "15%");
        assert_eq!(format_ratio(0.0123), "1.2%");
        assert_eq!(format_ratio(1.0), "100%");
    }
}
