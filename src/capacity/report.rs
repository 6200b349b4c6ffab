//! What a capacity search wrote down: `capacity.json` ([`CapacityReport`]), the console table
//! of steps, and the knee in words. `report.html` is drawn from the same value ([`super::html`]).

use std::fmt::Write;

use serde::Serialize;

use super::search::{rate_text, Bounds, Conclusion, MAX_STEPS};
use super::step::{Step, StepVerdict};
use crate::checks::sla::{format_ms, format_ratio};
use crate::cli::{EXIT_GATE_FAILED, EXIT_NOT_RUN, EXIT_PASSED};

/// The schema id in every `capacity.json`.
pub const SCHEMA: &str = "faultline.capacity/v1";

/// `capacity.json`: the search asked for, every step, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacityReport {
    pub schema: String,
    pub scenario: String,
    /// Where the scenario came from: a file path, or `built-in:<name>`.
    pub source: String,
    /// The service under test, in a few words.
    pub target: String,
    pub quick: bool,
    pub seed: u64,
    /// When the search started, RFC 3339 in UTC.
    pub started_at: String,
    pub bounds: Bounds,
    pub max_steps: usize,
    /// `even` or `poisson`: how each step's arrivals are spaced.
    pub arrivals: String,
    /// Each step's run time, milliseconds (the scenario's, scaled by `--quick`).
    pub step_duration_ms: f64,
    pub steps: Vec<Step>,
    pub conclusion: Conclusion,
    pub knee: Knee,
    /// The conclusion in one sentence, as the console prints it.
    pub summary: String,
    /// True when Ctrl-C stopped the search: the steps are what was measured before.
    pub interrupted: bool,
    /// The exit code the search ended with.
    pub exit_code: i32,
}

/// The knee as far as it was found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Knee {
    /// The highest arrival rate at which every gate passed.
    pub highest_pass: Option<f64>,
    /// The lowest arrival rate at which the service failed.
    pub lowest_fail: Option<f64>,
    /// The gates that failed at `lowest_fail`: what gives first.
    pub first_failed_gates: Vec<String>,
}

impl Knee {
    /// The knee from the steps: the highest pass, the lowest fail and its failed gates.
    pub fn of(steps: &[Step]) -> Knee {
        let highest_pass = steps
            .iter()
            .filter(|s| s.verdict == StepVerdict::Pass)
            .map(|s| s.rate)
            .reduce(f64::max);
        let first_fail = steps
            .iter()
            .filter(|s| matches!(s.verdict, StepVerdict::Fail | StepVerdict::Saturated))
            .min_by(|a, b| a.rate.total_cmp(&b.rate));
        Knee {
            highest_pass,
            lowest_fail: first_fail.map(|s| s.rate),
            first_failed_gates: first_fail
                .map(|s| s.failed_gates.clone())
                .unwrap_or_default(),
        }
    }
}

/// The exit code a conclusion stands for: 0 a knee found or `--max` passed (the generator's
/// limit reached above `--min` counts as the latter, said so); 1 `--min` failed; 2 nothing
/// could be judged (the generator's limit at `--min`, a step not run, an interrupt).
pub fn exit_code(conclusion: &Conclusion, interrupted: bool) -> i32 {
    if interrupted {
        return EXIT_NOT_RUN;
    }
    match conclusion {
        Conclusion::Knee { .. } | Conclusion::MaxPassed { .. } => EXIT_PASSED,
        Conclusion::GeneratorLimit {
            highest_pass: Some(_),
            ..
        } => EXIT_PASSED,
        Conclusion::MinFailed { .. } => EXIT_GATE_FAILED,
        Conclusion::GeneratorLimit {
            highest_pass: None, ..
        }
        | Conclusion::Unfinished { .. } => EXIT_NOT_RUN,
    }
}

/// `12.5/s`.
pub fn per_s(rate: f64) -> String {
    format!("{}/s", rate_text(rate))
}

fn gates_text(gates: &[String], saturated: bool) -> String {
    match (gates.is_empty(), saturated) {
        (true, true) => "saturated: arrivals dropped, requests unanswered".into(),
        (true, false) => "no gate named".into(),
        (false, _) => gates.join(", "),
    }
}

/// The conclusion in one sentence.
pub fn summary(conclusion: &Conclusion, knee: &Knee, bounds: &Bounds, steps: &[Step]) -> String {
    let saturated_at = |rate: f64| {
        steps
            .iter()
            .any(|s| s.rate == rate && s.verdict == StepVerdict::Saturated)
    };
    let first_failed = |rate: f64| gates_text(&knee.first_failed_gates, saturated_at(rate));
    match conclusion {
        Conclusion::Knee {
            highest_pass,
            lowest_fail,
            precise,
        } => format!(
            "knee: every gate passes at {}, the service fails at {} (first to fail: {}); {}",
            per_s(*highest_pass),
            per_s(*lowest_fail),
            first_failed(*lowest_fail),
            if *precise {
                format!("found within {}", bounds.precision.describe())
            } else {
                format!(
                    "the {MAX_STEPS}-step limit was reached before {}",
                    bounds.precision.describe()
                )
            }
        ),
        Conclusion::MaxPassed { max } => format!(
            "no knee up to --max {}: every gate passed at {}; the knee is above it (raise --max \
             to find it)",
            per_s(*max),
            per_s(*max)
        ),
        Conclusion::MinFailed { min } => format!(
            "the service fails already at --min {} (failed: {}); the knee is below it (lower \
             --min to find it)",
            per_s(*min),
            first_failed(*min)
        ),
        Conclusion::GeneratorLimit {
            highest_pass: Some(pass),
            limit,
            ..
        } => format!(
            "every gate passes at {}; at {} the load generator itself could not keep up, so \
             the knee is unknown above {} (this machine's generator is the limit, not the \
             service)",
            per_s(*pass),
            per_s(*limit),
            per_s(*pass)
        ),
        Conclusion::GeneratorLimit {
            highest_pass: None,
            limit,
            ..
        } => format!(
            "at --min {} the load generator itself could not keep up, so nothing was judged; \
             lower --min, or run on a less busy machine",
            per_s(*limit)
        ),
        Conclusion::Unfinished {
            highest_pass, at, ..
        } => format!(
            "the search stopped at {} without a verdict (see the step's note){}",
            per_s(*at),
            match highest_pass {
                Some(pass) => format!("; every gate passed up to {}", per_s(*pass)),
                None => String::new(),
            }
        ),
    }
}

/// The console table of steps, the notes of steps that need one, and the knee.
pub fn console(report: &CapacityReport) -> String {
    let phase = report
        .steps
        .iter()
        .find_map(|s| s.headline_phase)
        .map(|p| p.to_string())
        .unwrap_or_else(|| "run".into());
    let header = [
        "step".to_string(),
        "rate asked".into(),
        "achieved".into(),
        format!("p95 ({phase})"),
        format!("errors ({phase})"),
        "verdict".into(),
        "gates failed".into(),
    ];
    let rows: Vec<[String; 7]> = report
        .steps
        .iter()
        .map(|s| {
            [
                s.number.to_string(),
                per_s(s.rate),
                s.achieved_rate
                    .map(|r| format!("{r:.1}/s"))
                    .unwrap_or_else(|| "-".into()),
                s.p95_ms.map(format_ms).unwrap_or_else(|| "-".into()),
                s.error_rate.map(format_ratio).unwrap_or_else(|| "-".into()),
                s.verdict.word().to_string(),
                if s.failed_gates.is_empty() {
                    "-".into()
                } else {
                    s.failed_gates.join(", ")
                },
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..7)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "capacity search: `{}`{} against {}, {} arrivals, each step {}\n\n",
        report.scenario,
        if report.quick { " (quick)" } else { "" },
        report.target,
        report.arrivals,
        format_ms(report.step_duration_ms)
    );
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        let _ = writeln!(out, "  {}", line.join("  ").trim_end());
    }
    let notes: Vec<&Step> = report.steps.iter().filter(|s| s.why.is_some()).collect();
    if !notes.is_empty() {
        out.push('\n');
        for s in notes {
            let _ = writeln!(
                out,
                "  step {} ({}): {}",
                s.number,
                per_s(s.rate),
                s.why.as_deref().unwrap_or_default()
            );
        }
    }
    let _ = write!(out, "\n{}", report.summary);
    if report.interrupted {
        out.push_str("\ninterrupted: the table holds what was measured before the interrupt");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::search::Precision;

    fn step(number: usize, rate: f64, verdict: StepVerdict, gates: &[&str]) -> Step {
        Step {
            number,
            rate,
            max_in_flight: 10,
            achieved_rate: Some(rate),
            verdict,
            failed_gates: gates.iter().map(|g| g.to_string()).collect(),
            why: None,
            headline_phase: Some(crate::evidence::Phase::Fault),
            p95_ms: Some(120.0),
            error_rate: Some(0.0),
            dropped: 0,
            late: 0,
            phases: Vec::new(),
            dir: None,
        }
    }

    #[test]
    fn the_knee_names_the_gates_that_failed_first_and_the_exit_code_follows() {
        let steps = vec![
            step(1, 10.0, StepVerdict::Pass, &[]),
            step(
                2,
                20.0,
                StepVerdict::Fail,
                &["sla.p95.fault", "errors.rate.fault"],
            ),
            step(3, 15.0, StepVerdict::Fail, &["errors.rate.fault"]),
            step(4, 12.5, StepVerdict::Pass, &[]),
        ];
        let knee = Knee::of(&steps);
        assert_eq!(knee.highest_pass, Some(12.5));
        assert_eq!(knee.lowest_fail, Some(15.0));
        assert_eq!(knee.first_failed_gates, ["errors.rate.fault"]);
        let bounds = Bounds::new(10.0, 100.0, Precision::Relative(0.25), 50_000.0).unwrap();
        let conclusion = Conclusion::Knee {
            highest_pass: 12.5,
            lowest_fail: 15.0,
            precise: true,
        };
        let text = summary(&conclusion, &knee, &bounds, &steps);
        assert_eq!(
            text,
            "knee: every gate passes at 12.5/s, the service fails at 15/s (first to fail: \
             errors.rate.fault); found within 25%"
        );
        assert_eq!(exit_code(&conclusion, false), EXIT_PASSED);
        assert_eq!(exit_code(&conclusion, true), EXIT_NOT_RUN);
        assert_eq!(
            exit_code(&Conclusion::MinFailed { min: 1.0 }, false),
            EXIT_GATE_FAILED
        );
        assert_eq!(
            exit_code(
                &Conclusion::GeneratorLimit {
                    highest_pass: None,
                    limit: 1.0,
                    lowest_fail: None
                },
                false
            ),
            EXIT_NOT_RUN
        );
        assert_eq!(
            exit_code(
                &Conclusion::GeneratorLimit {
                    highest_pass: Some(1.0),
                    limit: 2.0,
                    lowest_fail: None
                },
                false
            ),
            EXIT_PASSED
        );
    }
}
