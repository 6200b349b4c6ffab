//! The terminal account of a run: an aligned verdict table, a phase table, a few evidence lines
//! per failure, and the gate line (`PASS: …` / `FAIL: …`) last, where a reader's eye lands.
//! Plain text, no colours, so it reads the same in a CI log.

use super::{format_figure, format_ms, format_ratio, format_window, gate_line, Report};
use crate::checks::Outcome;

/// Evidence lines printed per failed verdict; summary.md and report.json have more.
const EVIDENCE_SHOWN: usize = 3;

/// The console report; the caller adds `reports written to <dir>` after it.
pub fn console_table(report: &Report) -> String {
    let mut out = format!(
        "faultline: {} ({}, seed {}{})\n",
        report.scenario,
        report.source,
        report.seed,
        if report.quick { ", quick" } else { "" }
    );
    if !report.description.is_empty() {
        out.push_str(report.description.trim());
        out.push('\n');
    }
    if report.interrupted {
        out.push_str(
            "the run was interrupted: figures cover what was measured before it stopped\n",
        );
    }
    out.push('\n');

    let mut verdicts = vec![row(["CHECK", "RESULT", "FIGURE", "LIMIT", "SUMMARY"])];
    for v in &report.verdicts {
        verdicts.push(vec![
            v.id.clone(),
            match v.outcome {
                Outcome::Pass => "PASS",
                Outcome::Fail => "FAIL",
                Outcome::NotApplicable => "N/A",
            }
            .into(),
            format_figure(v.figure, &v.unit),
            format_figure(v.limit, &v.unit),
            v.summary.trim().replace('\n', " "),
        ]);
    }
    out.push_str(&align(&verdicts));
    out.push('\n');

    let mut phases = vec![row([
        "PHASE", "WINDOW", "REQUESTS", "FAILURES", "ERRORS", "P50", "P95", "P99",
    ])];
    for p in &report.phases {
        phases.push(vec![
            p.phase.to_string(),
            // An ASCII dash: some CI log viewers mangle the en dash.
            format_window(p.start_ms, p.end_ms).replace('–', "-"),
            p.requests.to_string(),
            p.failures.to_string(),
            format_ratio(p.error_rate),
            format_ms(p.p50_ms),
            format_ms(p.p95_ms),
            format_ms(p.p99_ms),
        ]);
    }
    out.push_str(&align(&phases));
    if let Some(load) = &report.load {
        for line in super::load::lines(load) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if let Some(why) = &report.invalid {
        out.push_str(&format!("\nthe run cannot be judged: {why}\n"));
    }

    for v in report.failed() {
        if v.evidence.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{} failed:\n", v.id));
        for line in v.evidence.iter().take(EVIDENCE_SHOWN) {
            out.push_str(&format!("  {line}\n"));
        }
        if v.evidence.len() > EVIDENCE_SHOWN {
            out.push_str(&format!(
                "  … {} more in report.json\n",
                v.evidence.len() - EVIDENCE_SHOWN
            ));
        }
    }

    for note in &report.notes {
        out.push_str(&format!("\nnote: {note}\n"));
    }

    out.push('\n');
    out.push_str(&gate_line(report));
    out.push('\n');
    out
}

/// The verdict as JSON for scripts (`--json`): `passed`, `scenario`, `seed`, the gate line and
/// each verdict's id, outcome, figure, limit and unit. The caller adds where the reports went.
pub fn verdict_json(report: &Report) -> String {
    let verdicts: Vec<serde_json::Value> = report
        .verdicts
        .iter()
        .map(|v| {
            serde_json::json!({
                "id": v.id,
                "outcome": v.outcome,
                "figure": v.figure,
                "limit": v.limit,
                "unit": v.unit,
                "summary": v.summary,
            })
        })
        .collect();
    serde_json::json!({
        "schema": super::SCHEMA,
        "scenario": report.scenario,
        "seed": report.seed,
        "passed": report.passed,
        "interrupted": report.interrupted,
        "gate": gate_line(report),
        "verdicts": verdicts,
    })
    .to_string()
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Rows as left-aligned columns two spaces apart; the last column is not padded, so a long
/// summary does not push trailing spaces onto every line.
pub(crate) fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome::{Fail, NotApplicable, Pass};
    use crate::report::json::tests::report;

    #[test]
    fn the_table_is_aligned_and_ends_with_the_gate_line() {
        let text = console_table(&report(&[
            ("sla.p95.fault", Fail),
            ("errors.honest", NotApplicable),
            ("errors.rate.fault", Pass),
        ]));
        let lines: Vec<&str> = text.lines().collect();

        let header = lines.iter().position(|l| l.starts_with("CHECK")).unwrap();
        let result_col = lines[header].find("RESULT").unwrap();
        assert_eq!(&lines[header + 1][result_col..result_col + 4], "FAIL");
        assert_eq!(&lines[header + 2][result_col..result_col + 3], "N/A");
        assert_eq!(&lines[header + 3][result_col..result_col + 4], "PASS");
        assert!(text.contains("fault     10 s-20 s"), "{text}");
        assert!(text.contains("sla.p95.fault failed:\n  req-12000"));
        assert_eq!(
            lines.last().unwrap(),
            &"FAIL: 1 of 2 gates failed (sla.p95.fault); 1 not applicable"
        );
    }

    #[test]
    fn the_json_verdict_is_one_line_a_script_can_read() {
        let text = verdict_json(&report(&[("sla.p95.fault", Fail), ("errors.honest", Pass)]));
        assert!(!text.contains('\n'));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["scenario"], "outage");
        assert_eq!(json["seed"], 7);
        assert_eq!(json["gate"], "FAIL: 1 of 2 gates failed (sla.p95.fault)");
        assert_eq!(json["verdicts"][0]["id"], "sla.p95.fault");
        assert_eq!(json["verdicts"][0]["outcome"], "fail");
        assert_eq!(json["verdicts"][0]["figure"], 9800.0);
        assert_eq!(json["verdicts"][0]["limit"], 9000.0);
        assert_eq!(json["verdicts"][1]["outcome"], "pass");
    }
}
