//! Reports: one model ([`Report`], written as `report.json`) and its renderers: `report.html`
//! for a person at a laptop ([`html`], charts from [`chart`]), `summary.md` for CI step
//! summaries ([`markdown`]), `junit.xml` for CI test tabs ([`junit`]), and the terminal
//! verdict table, JSON verdict and live progress line ([`console`], [`progress`]).
//!
//! [`write_all`] writes a report directory: `report.json`, `summary.md`, `report.html`,
//! `junit.xml`, `evidence.json` (the whole [`Evidence`], so a run can be debugged or
//! re-rendered later by `faultline report`), `records.jsonl.gz` (the client records, one JSON
//! line each, gzip-compressed; `evidence.json` names it) and the fakes' journals beside it the
//! same way: `attempts.jsonl.gz`, `writes.jsonl.gz`, `spans.jsonl.gz`. The schema is documented in `reports/README.md`.

pub mod chart;
pub mod cli;
pub mod compare;
pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod load;
pub mod markdown;
pub mod notes;
pub mod progress;
pub mod redact;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub use console::{console_table, verdict_json};
pub use html::report_html;
pub use json::{build, Counts, Report, RunMeta, SCHEMA};
pub use junit::junit_xml;
pub use markdown::{append_step_summary, summary_markdown};
pub use progress::{LiveStatus, Progress};

use crate::checks::sla::{format_ms, format_ratio};
use crate::checks::Outcome;
use crate::evidence::{Evidence, Spool, Spooled};

/// Files of a report directory that could not be written, each with why.
#[derive(Debug)]
pub struct Unwritten {
    /// Written in full (each one whole: files are written to a temporary name and renamed).
    pub written: Vec<PathBuf>,
    /// `file: error`, for each file that is missing.
    pub missing: Vec<String>,
}

/// Writes `report.json`, the renderings and `evidence.json` into `dir`, each to a temporary
/// name renamed into place, so a full disk leaves a file missing, never cut short. Goes on
/// past a file that fails, and says which are missing.
///
/// Also appends the summary to `$GITHUB_STEP_SUMMARY` when that is set, and points
/// `reports/latest` at `dir` when `dir` sits directly in a folder named `reports`. Neither is
/// worth failing a finished run for: trouble with them is logged, not returned.
pub fn write_all(
    report: &Report,
    evidence: &Evidence,
    dir: &Path,
) -> Result<Vec<PathBuf>, Unwritten> {
    if let Err(error) = fs::create_dir_all(dir) {
        return Err(Unwritten {
            written: Vec::new(),
            missing: vec![format!("{}: {error}", dir.display())],
        });
    }
    let mut written = Vec::new();
    let mut missing = Vec::new();
    let mut keep = |path: PathBuf, result: std::io::Result<()>| match result {
        Ok(()) => written.push(path),
        Err(error) => missing.push(format!("{}: {error}", path.display())),
    };
    let report_path = dir.join("report.json");
    keep(report_path.clone(), write_json(&report_path, report, true));
    for (name, text) in renderings(report, Some(evidence)) {
        let path = dir.join(name);
        keep(path.clone(), write_atomically(&path, text.as_bytes()));
    }
    // The client records and the fakes' journals, compressed; evidence.json names these files
    // instead of holding them.
    fn stream<T: Spooled>(dir: &Path, spool: &Spool<T>) -> (PathBuf, std::io::Result<()>) {
        let path = dir.join(T::FILE);
        let result = write_with(&path, |out| spool.write_into(out));
        (path, result)
    }
    for (path, result) in [
        stream(dir, &evidence.records),
        stream(dir, &evidence.attempts),
        stream(dir, &evidence.writes),
        stream(dir, &evidence.spans),
    ] {
        keep(path, result);
    }
    // Compact: read by programs, not people.
    let evidence_path = dir.join("evidence.json");
    keep(
        evidence_path.clone(),
        write_json(&evidence_path, evidence, false),
    );

    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        if let Err(error) = append_step_summary(report, Path::new(&path)) {
            tracing::warn!("could not append to GITHUB_STEP_SUMMARY: {error}");
        }
    }
    if dir.parent().and_then(Path::file_name) == Some("reports".as_ref()) {
        if let Err(error) = update_latest(dir) {
            tracing::warn!(
                "could not point reports/latest at {}: {error}",
                dir.display()
            );
        }
    }
    if missing.is_empty() {
        Ok(written)
    } else {
        Err(Unwritten { written, missing })
    }
}

/// Checks, before a run, that its reports can be written to `dir`: it is (or can be made) a
/// directory, and a file can be created in it.
pub fn check_writable(dir: &Path) -> std::io::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "it exists and is not a directory",
        ));
    }
    fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".faultline-write-check.{}", std::process::id()));
    fs::write(&probe, b"")?;
    fs::remove_file(&probe)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a reader
/// finds the old file or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut out = BufWriter::new(File::create(&temporary)?);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        // Flushed to disk before the rename, so a crash cannot leave a renamed empty file.
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// The files rendered from the report, by name: `summary.md`, `report.html` (charts only with
/// `evidence`) and `junit.xml`.
fn renderings(report: &Report, evidence: Option<&Evidence>) -> [(&'static str, String); 3] {
    [
        ("summary.md", summary_markdown(report)),
        ("report.html", report_html(report, evidence)),
        ("junit.xml", junit_xml(&[report])),
    ]
}

/// Writes what is rendered from the report: `summary.md`, `report.html` (charts only with
/// `evidence`) and `junit.xml`; returns their paths in that order. `faultline report` calls
/// this to render a run again.
pub fn write_renderings(
    report: &Report,
    evidence: Option<&Evidence>,
    dir: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, text) in renderings(report, evidence) {
        let path = dir.join(name);
        write_atomically(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Points `latest`, beside `dir`, at `dir` with a relative symlink (so the reports folder can
/// move), replacing any older link atomically: a reader never finds `latest` missing.
pub fn update_latest(dir: &Path) -> std::io::Result<()> {
    let name = dir.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a run directory needs a name",
        )
    })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let latest = parent.join("latest");
    // A real directory named latest is someone's data, not our link: leave it and say so.
    if latest.is_dir() && !latest.is_symlink() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} is a directory, not a link", latest.display()),
        ));
    }
    let temporary = parent.join(format!(".latest.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&temporary);
    symlink(Path::new(name), &temporary)?;
    // rename(2) over an existing link replaces it in one step.
    fs::rename(&temporary, &latest).inspect_err(|_| {
        let _ = fs::remove_file(&temporary);
    })
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reports/latest is a symlink, made only on Unix",
    ))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T, pretty: bool) -> std::io::Result<()> {
    write_with(path, |out| {
        if pretty {
            serde_json::to_writer_pretty(&mut *out, value)?;
        } else {
            serde_json::to_writer(&mut *out, value)?;
        }
        out.write_all(b"\n")
    })
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
    fn a_file_that_cannot_be_written_is_named_and_the_others_are_whole() {
        use crate::report::json::tests::{evidence, plan, report};
        let dir = tempfile::tempdir().unwrap();
        // evidence.json cannot be put in place: a directory holds its name.
        fs::create_dir(dir.path().join("evidence.json")).unwrap();
        fs::write(dir.path().join("evidence.json").join("keep"), "x").unwrap();
        let report = report(&[("sla.baseline", Pass)]);
        let failure = write_all(&report, &evidence(&plan()), dir.path()).unwrap_err();
        assert_eq!(failure.missing.len(), 1, "{:?}", failure.missing);
        assert!(
            failure.missing[0].contains("evidence.json"),
            "{:?}",
            failure.missing
        );
        // report.json, three renderings, records, attempts, writes and spans.
        assert_eq!(failure.written.len(), 8);
        let text = fs::read_to_string(dir.path().join("report.json")).unwrap();
        assert!(serde_json::from_str::<Report>(&text).is_ok());
        // No temporary file is left behind.
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn out_that_is_a_file_is_refused_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, "x").unwrap();
        assert!(check_writable(&file).is_err());
        assert!(check_writable(&dir.path().join("new/dir")).is_ok());
    }

    #[test]
    fn latest_points_at_the_newest_run_with_a_relative_link() {
        let root = tempfile::tempdir().unwrap();
        let reports = root.path().join("reports");
        let first = reports.join("outage-1");
        let second = reports.join("outage-2");
        fs::create_dir_all(&first).unwrap();
        fs::create_dir_all(&second).unwrap();
        fs::write(second.join("report.json"), "{}").unwrap();

        update_latest(&first).unwrap();
        update_latest(&second).unwrap();

        let latest = reports.join("latest");
        assert_eq!(fs::read_link(&latest).unwrap(), Path::new("outage-2"));
        assert_eq!(
            fs::read_to_string(latest.join("report.json")).unwrap(),
            "{}"
        );
        let leftovers: Vec<_> = fs::read_dir(&reports)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".latest"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_real_directory_named_latest_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("latest")).unwrap();
        fs::create_dir_all(root.path().join("run")).unwrap();
        assert!(update_latest(&root.path().join("run")).is_err());
        assert!(root.path().join("latest").is_dir());
    }

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
