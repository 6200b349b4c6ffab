//! Reports: one model ([`Report`], written as `report.json`) and its renderers: `summary.md`
//! for people and CI step summaries ([`markdown`]), and the terminal verdict table ([`console`]).
//!
//! [`write_all`] writes a report directory: `report.json`, `summary.md`, and `evidence.json`
//! (the whole [`Evidence`], so a run can be debugged or re-rendered later). The schema is
//! documented in `reports/README.md`.

pub mod cli;
pub mod console;
pub mod json;
pub mod markdown;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub use console::console_table;
pub use json::{build, Counts, Report, RunMeta, SCHEMA};
pub use markdown::summary_markdown;

use crate::checks::sla::{format_ms, format_ratio};
use crate::checks::Outcome;
use crate::evidence::Evidence;

/// Writes `report.json` (pretty), `summary.md` and `evidence.json` into `dir`, creating it;
/// returns the paths written, in that order.
pub fn write_all(
    report: &Report,
    evidence: &Evidence,
    dir: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;

    let report_path = dir.join("report.json");
    write_json(&report_path, report, true)?;

    let summary_path = dir.join("summary.md");
    fs::write(&summary_path, summary_markdown(report))?;

    // Compact: evidence holds every record and attempt, and is read by programs, not people.
    let evidence_path = dir.join("evidence.json");
    write_json(&evidence_path, evidence, false)?;

    Ok(vec![report_path, summary_path, evidence_path])
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T, pretty: bool) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    if pretty {
        serde_json::to_writer_pretty(&mut out, value)?;
    } else {
        serde_json::to_writer(&mut out, value)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// A verdict's figure or limit in its unit, for people: `9.8 s`, `15%`, `3 requests`; `-` for none.
pub fn format_figure(value: Option<f64>, unit: &str) -> String {
    let Some(value) = value else {
        return "-".into();
    };
    match unit {
        "ms" => format_ms(value),
        "ratio" => format_ratio(value),
        // Counts are whole numbers, and one of them is singular: `1 request`.
        _ if value == 1.0 => format!("1 {}", unit.strip_suffix('s').unwrap_or(unit)),
        _ if value.fract() == 0.0 && value.abs() < 1e15 => format!("{value:.0} {unit}"),
        _ => format!("{value} {unit}"),
    }
    .trim_end()
    .to_string()
}

/// A phase's place on the run's clock: `0–10 s`, `10 s–20 s`.
pub fn format_window(start_ms: f64, end_ms: f64) -> String {
    let start = if start_ms == 0.0 {
        "0".to_string()
    } else {
        format_ms(start_ms)
    };
    format!("{start}–{}", format_ms(end_ms))
}

/// The gate's verdict in one line: `PASS: all 5 gates passed; 2 not applicable` or
/// `FAIL: 2 of 7 gates failed (sla.p95.fault, errors.honest)`.
///
/// Not-applicable checks are not counted as gates that passed: saying "all 7 passed" when two
/// could not be measured would overstate what the run showed.
pub fn gate_line(report: &Report) -> String {
    let not_applicable = report
        .verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::NotApplicable)
        .count();
    let gates = report.verdicts.len() - not_applicable;
    let failed: Vec<&str> = report.failed().map(|v| v.id.as_str()).collect();
    let na = if not_applicable > 0 {
        format!("; {not_applicable} not applicable")
    } else {
        String::new()
    };
    let noun = if gates == 1 { "gate" } else { "gates" };
    if !failed.is_empty() {
        format!(
            "FAIL: {} of {gates} {noun} failed ({}){na}",
            failed.len(),
            failed.join(", ")
        )
    } else if gates == 0 {
        format!("PASS: no gate failed, but none could be checked{na}")
    } else {
        format!("PASS: all {gates} {noun} passed{na}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome::{Fail, NotApplicable, Pass};

    #[test]
    fn figures_are_shown_in_their_unit() {
        assert_eq!(format_figure(Some(9_800.0), "ms"), "9.8 s");
        assert_eq!(format_figure(Some(0.05), "ratio"), "5%");
        assert_eq!(format_figure(Some(3.0), "requests"), "3 requests");
        assert_eq!(format_figure(Some(1.0), "requests"), "1 request");
        assert_eq!(format_figure(None, "ms"), "-");
        assert_eq!(format_window(0.0, 10_000.0), "0–10 s");
        assert_eq!(format_window(10_000.0, 20_500.0), "10 s–20.5 s");
    }

    #[test]
    fn the_gate_line_names_failures_and_does_not_count_unmeasured_checks_as_passes() {
        let line = |outcomes: &[(&str, Outcome)]| gate_line(&json::tests::report(outcomes));
        assert_eq!(
            line(&[("a", Pass), ("b", Pass)]),
            "PASS: all 2 gates passed"
        );
        assert_eq!(
            line(&[("a", Pass), ("b", NotApplicable)]),
            "PASS: all 1 gate passed; 1 not applicable"
        );
        assert_eq!(
            line(&[("a", Fail), ("b", Pass), ("c", Fail)]),
            "FAIL: 2 of 3 gates failed (a, c)"
        );
        assert_eq!(
            line(&[("a", NotApplicable)]),
            "PASS: no gate failed, but none could be checked; 1 not applicable"
        );
    }
}
