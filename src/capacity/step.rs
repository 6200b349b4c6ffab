//! One step of a capacity search: the scenario run at one arrival rate, and what that run
//! means for the search ([`StepVerdict`], judged from the run's report by [`judge`]).
//!
//! A step passes only when every gate passed and the load asked for was applied. A run in
//! which the generator fell behind is never a pass; whose fault it was decides the rest:
//! - arrivals dropped for want of a free slot, when `max_in_flight` held every arrival of a
//!   request timeout ([`max_in_flight`]): the service kept that many requests unanswered, so
//!   users were waiting out their timeout. That is the service failing: `saturated`.
//! - sends late beyond the limit, or drops when the machine's limit made `max_in_flight`
//!   smaller than that: the generator could not apply the rate. That is not the service's
//!   failure, and nothing above it can be measured: `generator_limit`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::search::Class;
use crate::checks::sla::PhaseStats;
use crate::evidence::Phase;
use crate::report::Report;

/// How one step came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    /// Every gate passed and the generator applied the rate.
    Pass,
    /// At least one gate failed.
    Fail,
    /// The service held `max_in_flight` requests unanswered, so arrivals were dropped.
    Saturated,
    /// The generator could not apply the rate (late sends, or its in-flight limit).
    GeneratorLimit,
    /// The run cannot be judged for another reason (nothing sent in a fault window, say).
    Invalid,
    /// Ctrl-C cut the step short.
    Interrupted,
    /// The run could not be made (target never ready, ports taken).
    NotRun,
}

impl StepVerdict {
    /// How the step counts in the search.
    pub fn class(self) -> Class {
        match self {
            StepVerdict::Pass => Class::Pass,
            StepVerdict::Fail | StepVerdict::Saturated => Class::Fail,
            StepVerdict::GeneratorLimit => Class::GeneratorLimit,
            StepVerdict::Invalid | StepVerdict::Interrupted | StepVerdict::NotRun => {
                Class::Unjudged
            }
        }
    }

    /// The word in the table.
    pub fn word(self) -> &'static str {
        match self {
            StepVerdict::Pass => "pass",
            StepVerdict::Fail => "FAIL",
            StepVerdict::Saturated => "FAIL (saturated)",
            StepVerdict::GeneratorLimit => "generator limit",
            StepVerdict::Invalid => "invalid",
            StepVerdict::Interrupted => "interrupted",
            StepVerdict::NotRun => "not run",
        }
    }
}

/// One step, as `capacity.json` and the tables show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// 1, 2, … in the order run.
    pub number: usize,
    /// Arrivals per second asked for.
    pub rate: f64,
    /// The slots the step's `constant_rate` load had (see [`max_in_flight`]).
    pub max_in_flight: usize,
    /// Arrivals per second sent, over the run (`None` when the run was not made).
    pub achieved_rate: Option<f64>,
    pub verdict: StepVerdict,
    /// The gates (verdict ids) that failed, in report order.
    pub failed_gates: Vec<String>,
    /// Why the step is not a plain pass or fail: the generator's figures, the run's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The phase the headline figures come from: `fault` when the scenario has faults (the
    /// question is what the service takes while they are on), else `baseline`.
    pub headline_phase: Option<Phase>,
    /// p95 response time and error rate of the headline phase.
    pub p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
    /// Arrivals dropped (no free slot) and sent late, from the load's account.
    pub dropped: u64,
    pub late: u64,
    /// Every phase's figures.
    pub phases: Vec<PhaseStats>,
    /// The step's own reports (report.json, report.html, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// The slots a step at `rate` gets: every arrival of one `request_timeout` may wait unanswered
/// (`ceil(rate × timeout) + 1`, the `[load]` default), within the machine's limit. Then a
/// missing slot means the service held requests as long as the users' timeout: its failure,
/// not the generator's. Returns the slots and whether the machine's limit cut them.
pub fn max_in_flight(rate: f64, request_timeout: Duration, machine_limit: usize) -> (usize, bool) {
    let needed = (rate * request_timeout.as_secs_f64()).ceil() as usize + 1;
    (needed.clamp(1, machine_limit), needed > machine_limit)
}

/// What the step's run means for the search. `slots_cut`: the machine's limit made
/// `max_in_flight` smaller than a request timeout's arrivals (see [`max_in_flight`]).
pub fn judge(report: &Report, slots_cut: bool) -> (StepVerdict, Option<String>) {
    if report.interrupted {
        return (
            StepVerdict::Interrupted,
            Some("interrupted: the step was cut short and is not judged".into()),
        );
    }
    let Some(why) = &report.invalid else {
        return if report.passed {
            (StepVerdict::Pass, None)
        } else {
            (StepVerdict::Fail, None)
        };
    };
    let Some(load) = report
        .load
        .as_ref()
        .filter(|l| l.stats.fell_behind.is_some())
    else {
        return (StepVerdict::Invalid, Some(why.clone()));
    };
    let stats = &load.stats;
    let allowed = crate::load::MAX_LATE_SHARE * stats.asked as f64;
    // Late sends are the generator's own: it could not keep to the schedule.
    if stats.late as f64 > allowed || slots_cut {
        return (
            StepVerdict::GeneratorLimit,
            Some(format!(
                "the load generator could not apply this rate, so the service is not judged \
                 at it: {why}"
            )),
        );
    }
    (
        StepVerdict::Saturated,
        Some(format!(
            "the service saturated: {} of {} arrivals found every slot taken by requests left \
             unanswered (max_in_flight holds every arrival of one request timeout, so those \
             users were waiting out their timeout)",
            stats.dropped, stats.asked
        )),
    )
}

/// The phase whose figures head a step: the fault phase when the run had one, else baseline.
pub fn headline(phases: &[PhaseStats]) -> Option<&PhaseStats> {
    phases
        .iter()
        .find(|p| p.phase == Phase::Fault)
        .or_else(|| phases.iter().find(|p| p.phase == Phase::Baseline))
        .or_else(|| phases.first())
}

/// The gates that failed in `report`, in report order.
pub fn failed_gates(report: &Report) -> Vec<String> {
    report.failed().map(|v| v.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::evidence::LoadStats;
    use crate::report::load::LoadReport;

    fn report(passed: bool, invalid: Option<&str>, stats: Option<LoadStats>) -> Report {
        let mut report = crate::report::json::tests::report(&[(
            "sla.p95.fault",
            if passed { Outcome::Pass } else { Outcome::Fail },
        )]);
        report.passed = passed && invalid.is_none();
        report.invalid = invalid.map(String::from);
        report.load = stats.map(|stats| LoadReport {
            stats,
            service: Vec::new(),
        });
        report
    }

    fn fell_behind(asked: u64, dropped: u64, late: u64) -> LoadStats {
        LoadStats {
            executor: "constant_rate".into(),
            asked,
            sent: asked - dropped,
            dropped,
            late,
            fell_behind: Some("the load generator fell behind".into()),
            ..LoadStats::default()
        }
    }

    #[test]
    fn gates_decide_a_run_the_generator_kept_up_with() {
        assert_eq!(judge(&report(true, None, None), false).0, StepVerdict::Pass);
        let failed = report(false, None, None);
        assert_eq!(judge(&failed, false).0, StepVerdict::Fail);
        assert_eq!(failed_gates(&failed), ["sla.p95.fault"]);
    }

    #[test]
    fn late_sends_are_the_generators_limit_never_a_pass_or_the_services_failure() {
        let stats = fell_behind(1000, 0, 200);
        let (verdict, why) = judge(&report(true, Some("fell behind"), Some(stats)), false);
        assert_eq!(verdict, StepVerdict::GeneratorLimit);
        assert_eq!(verdict.class(), Class::GeneratorLimit);
        assert!(why.unwrap().contains("not judged"));
    }

    #[test]
    fn drops_with_a_timeouts_worth_of_slots_are_the_service_saturating() {
        let stats = fell_behind(1000, 300, 0);
        let (verdict, why) = judge(
            &report(false, Some("fell behind"), Some(stats.clone())),
            false,
        );
        assert_eq!(verdict, StepVerdict::Saturated);
        assert_eq!(verdict.class(), Class::Fail);
        assert!(why.unwrap().contains("300 of 1000"));
        // With fewer slots than that (the machine's limit), the drops are the generator's.
        let (verdict, _) = judge(&report(true, Some("fell behind"), Some(stats)), true);
        assert_eq!(verdict, StepVerdict::GeneratorLimit);
    }

    #[test]
    fn other_invalid_runs_and_interrupts_stop_the_search() {
        let (verdict, why) = judge(&report(true, Some("no request was sent"), None), false);
        assert_eq!(verdict, StepVerdict::Invalid);
        assert_eq!(verdict.class(), Class::Unjudged);
        assert_eq!(why.as_deref(), Some("no request was sent"));
        let mut cut = report(true, None, None);
        cut.interrupted = true;
        assert_eq!(judge(&cut, false).0.class(), Class::Unjudged);
    }

    #[test]
    fn slots_hold_a_request_timeout_of_arrivals_within_the_machines_limit() {
        assert_eq!(
            max_in_flight(20.0, Duration::from_secs(30), 10_000),
            (601, false)
        );
        assert_eq!(
            max_in_flight(0.5, Duration::from_secs(3), 10_000),
            (3, false)
        );
        assert_eq!(
            max_in_flight(1000.0, Duration::from_secs(30), 10_000),
            (10_000, true)
        );
    }

    #[test]
    fn the_headline_is_the_fault_phase_when_there_is_one() {
        let report = report(true, None, None);
        assert_eq!(headline(&report.phases).unwrap().phase, Phase::Fault);
        let baseline_only: Vec<_> = report
            .phases
            .iter()
            .filter(|p| p.phase == Phase::Baseline)
            .cloned()
            .collect();
        assert_eq!(headline(&baseline_only).unwrap().phase, Phase::Baseline);
    }
}
