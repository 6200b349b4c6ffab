//! `summary.md`: a short, tabular account of a run, fit for a GitHub step summary
//! (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`): verdicts, phases, then why each failure failed.

use std::fmt::Write;
use std::io::Write as _;
use std::path::Path;

use super::{format_figure, format_ms, format_ratio, format_window, gate_line, Report};
use crate::checks::{Outcome, Verdict};

/// Evidence lines shown per failed verdict; the rest are in report.json.
const EVIDENCE_SHOWN: usize = 5;

/// The markdown summary of `report`.
pub fn summary_markdown(report: &Report) -> String {
    let mut md = String::new();
    let verdict = if report.passed {
        "✅ PASS"
    } else {
        "❌ FAIL"
    };
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(md, "# faultline: {} — {verdict}\n", cell(&report.scenario));
    if !report.description.is_empty() {
        let _ = writeln!(md, "{}\n", report.description.trim());
    }
    let _ = writeln!(
        md,
        "`{}` · seed {}{} · target: {} · started {} · ran {} · {} requests, {} failed\n",
        report.source,
        report.seed,
        if report.quick { " · quick" } else { "" },
        cell(&report.target),
        report.started_at,
        format_ms(report.duration_ms),
        report.counts.requests,
        report.counts.failures,
    );
    if report.interrupted {
        let _ = writeln!(
            md,
            "> ⚠️ The run was interrupted: the figures cover what was measured before it stopped.\n"
        );
    }
    let _ = writeln!(md, "**{}**\n", gate_line(report));

    md.push_str("## Verdicts\n\n");
    md.push_str("| Check | Outcome | Figure | Limit | Summary |\n");
    md.push_str("|---|---|---:|---:|---|\n");
    for v in &report.verdicts {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            v.id,
            outcome(v.outcome),
            format_figure(v.figure, &v.unit),
            format_figure(v.limit, &v.unit),
            cell(&v.summary),
        );
    }

    md.push_str("\n## Phases\n\n");
    md.push_str("| Phase | Window | Requests | Failures | Error rate | p50 | p95 | p99 |\n");
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for p in &report.phases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.phase,
            format_window(p.start_ms, p.end_ms),
            p.requests,
            p.failures,
            format_ratio(p.error_rate),
            format_ms(p.p50_ms),
            format_ms(p.p95_ms),
            format_ms(p.p99_ms),
        );
    }

    if let Some(load) = &report.load {
        md.push('\n');
        for line in super::load::lines(load) {
            let _ = writeln!(md, "{}  ", line.trim_start());
        }
    }
    if let Some(why) = &report.invalid {
        let _ = writeln!(md, "\n> ⚠️ The run cannot be judged: {why}");
    }

    if !report.notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for note in &report.notes {
            let _ = writeln!(md, "- {}", note.trim());
        }
    }

    let failed: Vec<&Verdict> = report.failed().collect();
    if !failed.is_empty() {
        md.push_str("\n## Why it failed\n");
        for v in failed {
            let _ = writeln!(md, "\n### `{}`\n\n{}\n", v.id, v.summary.trim());
            if v.evidence.is_empty() {
                continue;
            }
            let shown = &v.evidence[..v.evidence.len().min(EVIDENCE_SHOWN)];
            let fence = fence_for(shown);
            let _ = writeln!(md, "{fence}text");
            for line in shown {
                let _ = writeln!(md, "{line}");
            }
            if v.evidence.len() > EVIDENCE_SHOWN {
                let _ = writeln!(
                    md,
                    "… {} more in report.json",
                    v.evidence.len() - EVIDENCE_SHOWN
                );
            }
            let _ = writeln!(md, "{fence}");
        }
    }
    md
}

/// Appends the summary to the file at `path` (the value of `$GITHUB_STEP_SUMMARY`), creating
/// it. A blank line first, so it does not run into what an earlier step wrote.
pub fn append_step_summary(report: &Report, path: &Path) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let needs_gap = file.metadata()?.len() > 0;
    let mut text = String::new();
    if needs_gap {
        text.push('\n');
    }
    text.push_str(&summary_markdown(report));
    file.write_all(text.as_bytes())
}

fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅ pass",
        Outcome::Fail => "❌ fail",
        Outcome::NotApplicable => "➖ n/a",
    }
}

/// Text made safe for one table cell: a `|` would start a new column, a newline end the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A code fence longer than any run of backticks in `lines`, so a body cannot close it early.
fn fence_for(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .flat_map(|l| l.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome::{Fail, NotApplicable, Pass};
    use crate::report::json::tests::report;

    #[test]
    fn a_failed_run_shows_the_verdict_table_phases_and_why() {
        let mut report = report(&[
            ("sla.p95.fault", Fail),
            ("errors.rate.fault", Pass),
            ("errors.honest", NotApplicable),
        ]);
        report.verdicts[0].evidence = (0..8).map(|i| format!("req-{i} slow")).collect();
        let md = summary_markdown(&report);

        assert!(md.starts_with("# faultline: outage — ❌ FAIL\n"), "{md}");
        assert!(md.contains(
            "| `sla.p95.fault` | ❌ fail | 9.8 s | 9 s | sla.p95.fault summary \\| with a pipe |"
        ));
        assert!(md.contains("| `errors.honest` | ➖ n/a |"));
        assert!(md.contains("| fault | 10 s–20 s | 1 | 1 | 100% | 9.8 s | 9.8 s | 9.8 s |"));
        assert!(md.contains("### `sla.p95.fault`"));
        assert!(md.contains("req-4 slow\n… 3 more in report.json\n```\n"));
        assert!(!md.contains("req-5 slow"));
        assert!(!md.contains("### `errors.rate.fault`"));
    }

    #[test]
    fn a_passing_run_has_no_failure_section() {
        let md = summary_markdown(&report(&[("sla.p95.fault", Pass)]));
        assert!(md.starts_with("# faultline: outage — ✅ PASS\n"));
        assert!(md.contains("**PASS: all 1 gate passed**"));
        assert!(!md.contains("Why it failed"));
    }

    #[test]
    fn the_step_summary_is_appended_after_what_earlier_steps_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step_summary.md");
        std::fs::write(&path, "## build\nok\n").unwrap();
        let report = report(&[("sla.p95.fault", Pass)]);

        append_step_summary(&report, &path).unwrap();
        append_step_summary(&report, &path).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let summary = summary_markdown(&report);
        assert_eq!(text, format!("## build\nok\n\n{summary}\n{summary}"));
    }

    #[test]
    fn backticks_in_evidence_cannot_close_the_code_block() {
        assert_eq!(fence_for(&["plain".into()]), "```");
        assert_eq!(fence_for(&["a ```` b".into()]), "`````");
    }
}
