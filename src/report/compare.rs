//! `faultline compare`: what changed between two runs' reports, per check and per phase.
//!
//! A regression is a check that passed before and fails after: that is what a release gate
//! wants to catch. A check that was not applicable before, or is missing from either run, is
//! shown but is not a regression, since there is nothing to regress from.

use serde::Serialize;

use super::{format_figure, format_ms, format_ratio, Report};
use crate::checks::Outcome;

/// One check before and after; `None` where a run lacks it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckChange {
    pub id: String,
    pub unit: String,
    pub before: Option<Outcome>,
    pub after: Option<Outcome>,
    pub figure_before: Option<f64>,
    pub figure_after: Option<f64>,
    /// Passed before, fails after.
    pub regression: bool,
}

/// One phase's figures before and after.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseChange {
    pub phase: String,
    pub p50_ms: (f64, f64),
    pub p95_ms: (f64, f64),
    pub error_rate: (f64, f64),
}

/// Everything `compare` shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub before: String,
    pub after: String,
    pub checks: Vec<CheckChange>,
    pub phases: Vec<PhaseChange>,
    /// Ids of the checks that regressed.
    pub regressions: Vec<String>,
}

/// Compares two reports: checks in `after`'s order, then those only `before` had.
pub fn compare(before: &Report, after: &Report) -> Comparison {
    let mut ids: Vec<&str> = after.verdicts.iter().map(|v| v.id.as_str()).collect();
    for v in &before.verdicts {
        if !ids.contains(&v.id.as_str()) {
            ids.push(&v.id);
        }
    }
    let checks: Vec<CheckChange> = ids
        .into_iter()
        .map(|id| {
            let b = before.verdicts.iter().find(|v| v.id == id);
            let a = after.verdicts.iter().find(|v| v.id == id);
            CheckChange {
                id: id.to_string(),
                unit: a.or(b).map(|v| v.unit.clone()).unwrap_or_default(),
                before: b.map(|v| v.outcome),
                after: a.map(|v| v.outcome),
                figure_before: b.and_then(|v| v.figure),
                figure_after: a.and_then(|v| v.figure),
                regression: b.map(|v| v.outcome) == Some(Outcome::Pass)
                    && a.map(|v| v.outcome) == Some(Outcome::Fail),
            }
        })
        .collect();
    let phases = after
        .phases
        .iter()
        .filter_map(|a| {
            let b = before.phases.iter().find(|b| b.phase == a.phase)?;
            Some(PhaseChange {
                phase: a.phase.to_string(),
                p50_ms: (b.p50_ms, a.p50_ms),
                p95_ms: (b.p95_ms, a.p95_ms),
                error_rate: (b.error_rate, a.error_rate),
            })
        })
        .collect();
    Comparison {
        before: format!("{} ({})", before.scenario, before.started_at),
        after: format!("{} ({})", after.scenario, after.started_at),
        regressions: checks
            .iter()
            .filter(|c| c.regression)
            .map(|c| c.id.clone())
            .collect(),
        checks,
        phases,
    }
}

fn outcome_word(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Pass) => "pass",
        Some(Outcome::Fail) => "FAIL",
        Some(Outcome::NotApplicable) => "n/a",
        None => "-",
    }
}

/// `+12%`, `-3.5%`; `new` when growing from zero, `=` when both are zero.
pub fn percent_change(before: f64, after: f64) -> String {
    if before == after {
        return "=".into();
    }
    if before == 0.0 {
        return "new".into();
    }
    let change = (after - before) / before * 100.0;
    let text = if change.abs() >= 10.0 {
        format!("{change:+.0}%")
    } else {
        format!("{change:+.1}%")
    };
    text
}

/// The comparison as aligned text, ending with a line that says whether anything regressed.
pub fn comparison_text(c: &Comparison) -> String {
    let mut rows = vec![vec![
        "CHECK".to_string(),
        "BEFORE".into(),
        "AFTER".into(),
        "FIGURE BEFORE".into(),
        "FIGURE AFTER".into(),
        String::new(),
    ]];
    for ch in &c.checks {
        rows.push(vec![
            ch.id.clone(),
            outcome_word(ch.before).into(),
            outcome_word(ch.after).into(),
            format_figure(ch.figure_before, &ch.unit),
            format_figure(ch.figure_after, &ch.unit),
            if ch.regression {
                "REGRESSION".into()
            } else {
                String::new()
            },
        ]);
    }
    let mut out = format!("before: {}\nafter:  {}\n\n", c.before, c.after);
    out.push_str(&super::console::align(&rows));
    out.push('\n');

    let mut rows = vec![vec![
        "PHASE".to_string(),
        "P50".into(),
        "P95".into(),
        "ERROR RATE".into(),
    ]];
    for p in &c.phases {
        let ms = |(b, a): (f64, f64)| {
            format!(
                "{} -> {} ({})",
                format_ms(b),
                format_ms(a),
                percent_change(b, a)
            )
        };
        let (b, a) = p.error_rate;
        rows.push(vec![
            p.phase.clone(),
            ms(p.p50_ms),
            ms(p.p95_ms),
            format!(
                "{} -> {} ({})",
                format_ratio(b),
                format_ratio(a),
                percent_change(b, a)
            ),
        ]);
    }
    out.push_str(&super::console::align(&rows));
    out.push('\n');
    if c.regressions.is_empty() {
        out.push_str("no regression: no check that passed before fails now\n");
    } else {
        out.push_str(&format!(
            "REGRESSION: {} check{} passed before and fail now ({})\n",
            c.regressions.len(),
            if c.regressions.len() == 1 { "" } else { "s" },
            c.regressions.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome::{Fail, NotApplicable, Pass};
    use crate::report::json::tests::report;

    #[test]
    fn a_check_that_passed_and_now_fails_is_a_regression_and_others_are_not() {
        let before = report(&[
            ("a", Pass),
            ("b", NotApplicable),
            ("c", Fail),
            ("gone", Pass),
        ]);
        let mut after = report(&[("a", Fail), ("b", Fail), ("c", Pass), ("new", Fail)]);
        after.verdicts[0].figure = Some(12_000.0);
        after.phases[1].p95_ms = 19_600.0;
        after.phases[1].error_rate = 0.5;

        let c = compare(&before, &after);
        let ids: Vec<&str> = c.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "new", "gone"]);
        assert_eq!(c.regressions, ["a"]);
        assert_eq!(c.checks[4].after, None);

        let text = comparison_text(&c);
        assert!(
            text.contains("a      pass    FAIL   9.8 s          12 s          REGRESSION"),
            "{text}"
        );
        assert!(text.contains("gone   pass    -"), "{text}");
        assert!(
            text.contains(
                "fault     9.8 s -> 9.8 s (=)    9.8 s -> 19.6 s (+100%)  100% -> 50% (-50%)"
            ),
            "{text}"
        );
        assert!(text.ends_with("REGRESSION: 1 check passed before and fail now (a)\n"));
    }

    #[test]
    fn changes_are_shown_as_percentages() {
        assert_eq!(percent_change(100.0, 112.0), "+12%");
        assert_eq!(percent_change(200.0, 193.0), "-3.5%");
        assert_eq!(percent_change(0.0, 0.1), "new");
        assert_eq!(percent_change(0.0, 0.0), "=");
    }
}
