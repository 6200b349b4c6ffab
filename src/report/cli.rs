//! `faultline report <dir>` (render a run's HTML, Markdown and JUnit again from its report.json)
//! and `faultline compare <a> <b>` (per-check and per-phase changes between two runs).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::compare::{compare, comparison_text};
use super::{write_renderings, Report, SCHEMA};
use crate::evidence::Evidence;

/// Arguments of `faultline report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run's report directory (holding report.json, and evidence.json for the charts).
    pub dir: PathBuf,
}

/// Arguments of `faultline compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The earlier run's report directory.
    pub before: PathBuf,
    /// The later run's report directory.
    pub after: PathBuf,
    /// Print the comparison as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Reads `dir/report.json`, refusing other schema versions by name.
pub fn read_report(dir: &Path) -> anyhow::Result<Report> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "could not read {}; is it a faultline report directory?",
            path.display()
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let schema = value["schema"].as_str().unwrap_or("(none)");
    anyhow::ensure!(
        schema == SCHEMA,
        "{} has schema {schema}; this faultline reads {SCHEMA}",
        path.display()
    );
    serde_json::from_value(value)
        .with_context(|| format!("{} does not match schema {SCHEMA}", path.display()))
}

/// Reads `dir/evidence.json` when it is there.
fn read_evidence(dir: &Path) -> anyhow::Result<Option<Evidence>> {
    let path = dir.join("evidence.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let mut evidence: Evidence = serde_json::from_str(&text)
        .with_context(|| format!("{} is not faultline evidence", path.display()))?;
    evidence.attach(dir).with_context(|| {
        format!(
            "{} names a file of records, attempts, writes or spans that could not be read",
            path.display()
        )
    })?;
    Ok(Some(evidence))
}

/// Renders report.html, summary.md and junit.xml again; exit code 0 once written (the run's
/// own gate was decided when it ran; `compare` is the command that gates).
pub fn run_report(args: ReportArgs) -> anyhow::Result<i32> {
    let report = read_report(&args.dir)?;
    let evidence = read_evidence(&args.dir)?;
    if evidence.is_none() {
        eprintln!(
            "note: no evidence.json in {}: report.html leaves out the over-time charts",
            args.dir.display()
        );
    }
    let written = write_renderings(&report, evidence.as_ref(), &args.dir)
        .with_context(|| format!("could not write the reports to {}", args.dir.display()))?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(0)
}

/// Shows per-check and per-phase changes between two runs; exit code 1 when a check that
/// passed in the first run fails in the second, else 0.
pub fn run_compare(args: CompareArgs) -> anyhow::Result<i32> {
    let before = read_report(&args.before)?;
    let after = read_report(&args.after)?;
    let comparison = compare(&before, &after);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{}", comparison_text(&comparison));
    }
    Ok(if comparison.regressions.is_empty() {
        0
    } else {
        1
    })
}
