//! Several runs, one verdict.
//!
//! - `faultline suite`: the pre-release set of scenarios, one after another, against the same
//!   target, with a combined table and exit code.
//! - `faultline selftest`: the gate-honesty matrix. The healthy reference target must pass
//!   every scenario in it, and each flaw of the reference target must make the check named
//!   for the practice it breaks fail. A gate that no flaw can fail would prove nothing.
//!
//! A suite's runs go one after another in this process: Goose's killswitch is process-wide.
//! The selftest runs its rows as child `faultline scenario` processes, a few at a time: each
//! run is light (a handful of users, mostly waiting on timers), and the matrix is long.

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::checks::Outcome;
use crate::run::{self, RunOptions};
use crate::scenario::Plan;

/// How one run of a suite ended.
#[derive(Clone, Debug, PartialEq)]
pub enum EntryOutcome {
    Passed,
    /// The gates that failed.
    GateFailed(Vec<String>),
    /// Why the run could not be made.
    NotRun(String),
}

/// One run of a suite or a selftest.
#[derive(Clone, Debug)]
pub struct Entry {
    /// What ran: the scenario, with the flaw for selftest rows.
    pub label: String,
    pub outcome: EntryOutcome,
    /// Where its reports are.
    pub dir: Option<PathBuf>,
}

/// Runs each plan in turn, writing each one's reports under `out_root/<label>/`.
/// Stops early (marking the rest not run) when `interrupt` turns true. `allow_gaps` is
/// `scenario --allow-gaps` for each run.
pub async fn run_all(
    plans: Vec<(String, Plan)>,
    out_root: &Path,
    allow_gaps: bool,
    interrupt: watch::Receiver<bool>,
) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(plans.len());
    for (label, plan) in plans {
        if *interrupt.borrow() {
            entries.push(Entry {
                label,
                outcome: EntryOutcome::NotRun("interrupted".into()),
                dir: None,
            });
            continue;
        }
        eprintln!("faultline: running {label} ({})", plan.target.describe());
        let dir = out_root.join(label.replace([' ', '/', '+'], "-"));
        let options = RunOptions {
            out_dir: Some(dir.clone()),
            reference_exe: None,
            progress: true,
            fake_ports: None,
            fakes_url: None,
            allow_gaps,
            fakes_token: None,
            workers: None,
        };
        let outcome = match run::run(&plan, &options, interrupt.clone()).await {
            Ok(outcome) if outcome.report.interrupted => EntryOutcome::NotRun("interrupted".into()),
            Ok(outcome) => {
                let failed: Vec<String> = outcome
                    .report
                    .verdicts
                    .iter()
                    .filter(|v| v.outcome == Outcome::Fail)
                    .map(|v| v.id.clone())
                    .collect();
                if failed.is_empty() {
                    EntryOutcome::Passed
                } else {
                    EntryOutcome::GateFailed(failed)
                }
            }
            Err(error) => EntryOutcome::NotRun(error.to_string()),
        };
        entries.push(Entry {
            label,
            outcome,
            dir: Some(dir),
        });
    }
    entries
}

/// One child run: its label (and report directory), its arguments, and environment set on it.
pub type ChildRun = (String, Vec<String>, Vec<(String, String)>);

/// Runs each `(label, args, env)` as a child `faultline <args> --out <root>/<label>` with `env`
/// added to its environment, `jobs` at a time, and reads each run's report.json for its failed
/// gates.
pub async fn run_in_processes(
    runs: Vec<ChildRun>,
    root: &Path,
    jobs: usize,
    interrupt: watch::Receiver<bool>,
) -> Vec<Entry> {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            return runs
                .into_iter()
                .map(|(label, _, _)| Entry {
                    label,
                    outcome: EntryOutcome::NotRun(format!("faultline's own binary: {error}")),
                    dir: None,
                })
                .collect()
        }
    };
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = Vec::with_capacity(runs.len());
    for (label, args, env) in runs {
        let dir = root.join(label.replace([' ', '/', '+', '(', ')'], "-"));
        let (exe, slots, interrupt) = (exe.clone(), slots.clone(), interrupt.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let outcome = if *interrupt.borrow() {
                EntryOutcome::NotRun("interrupted".into())
            } else {
                run_child(&exe, &args, &env, &dir, interrupt).await
            };
            Entry {
                label,
                outcome,
                dir: Some(dir),
            }
        }));
    }
    let mut entries = Vec::with_capacity(tasks.len());
    for task in tasks {
        entries.push(task.await.expect("a selftest row never panics"));
    }
    entries
}

/// How long a child run gets, after SIGTERM, to stop its target and write its partial report.
const CHILD_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// One child run, in a process group of its own that dies with this process (see
/// [`crate::target::group`]). On an interrupt, the child gets SIGTERM (which it treats as
/// Ctrl-C: it stops its target and writes what it measured), then SIGKILL after a grace.
async fn run_child(
    exe: &Path,
    args: &[String],
    env: &[(String, String)],
    dir: &Path,
    mut interrupt: watch::Receiver<bool>,
) -> EntryOutcome {
    use tokio::io::AsyncReadExt;
    let mut command = tokio::process::Command::new(exe);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--out")
        .arg(dir)
        .arg("--quiet")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let (mut child, group) = match crate::target::group::spawn(&mut command) {
        Ok(spawned) => spawned,
        Err(error) => return EntryOutcome::NotRun(format!("could not start a run: {error}")),
    };
    // Read stderr beside the wait, so a chatty child never blocks on a full pipe.
    let stderr_reader = child.stderr.take().map(|mut pipe| {
        tokio::spawn(async move {
            let mut text = Vec::new();
            // Only the last line is quoted: keep at most the last 64 KiB.
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                text.extend_from_slice(&chunk[..n]);
                if text.len() > 64 * 1024 {
                    text.drain(..text.len() - 64 * 1024);
                }
            }
            text
        })
    });
    let status = tokio::select! {
        status = child.wait() => Some(status),
        _ = interrupt.wait_for(|stop| *stop) => None,
    };
    let Some(status) = status else {
        crate::target::group::stop(&mut child, group, CHILD_STOP_GRACE).await;
        return EntryOutcome::NotRun("interrupted".into());
    };
    crate::target::group::forget(group);
    let stderr = match stderr_reader {
        Some(reader) => reader.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let output = status.map(|status| std::process::Output {
        status,
        stdout: Vec::new(),
        stderr,
    });
    let output = match output {
        Ok(output) => output,
        Err(error) => return EntryOutcome::NotRun(error.to_string()),
    };
    let report = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<crate::report::Report>(&text).ok());
    match (output.status.code(), report) {
        (Some(0 | 1), Some(report)) => {
            let failed: Vec<String> = report
                .verdicts
                .iter()
                .filter(|v| v.outcome == Outcome::Fail)
                .map(|v| v.id.clone())
                .collect();
            if failed.is_empty() {
                EntryOutcome::Passed
            } else {
                EntryOutcome::GateFailed(failed)
            }
        }
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            EntryOutcome::NotRun(format!("{} ({})", last.trim(), output.status))
        }
    }
}

/// The suite's exit code: 2 if any run could not be made, else 1 if any gate failed, else 0.
pub fn suite_exit_code(entries: &[Entry]) -> i32 {
    if entries
        .iter()
        .any(|e| matches!(e.outcome, EntryOutcome::NotRun(_)))
    {
        2
    } else if entries
        .iter()
        .any(|e| matches!(e.outcome, EntryOutcome::GateFailed(_)))
    {
        1
    } else {
        0
    }
}

/// The suite as a table: one line per run, then the combined verdict.
pub fn suite_table(entries: &[Entry]) -> String {
    let width = entries
        .iter()
        .map(|e| e.label.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!("{:width$}  RESULT  DETAIL\n", "SCENARIO");
    for entry in entries {
        let (result, detail) = match &entry.outcome {
            EntryOutcome::Passed => ("PASS", String::new()),
            EntryOutcome::GateFailed(ids) => ("FAIL", ids.join(", ")),
            EntryOutcome::NotRun(why) => ("NOT RUN", why.clone()),
        };
        out.push_str(&format!("{:width$}  {result:6}  {detail}\n", entry.label));
    }
    let failed = entries
        .iter()
        .filter(|e| e.outcome != EntryOutcome::Passed)
        .count();
    if failed == 0 {
        out.push_str(&format!("PASS: all {} scenarios passed\n", entries.len()));
    } else {
        out.push_str(&format!(
            "FAIL: {failed} of {} scenarios did not pass\n",
            entries.len()
        ));
    }
    out
}

/// One row of the gate-honesty matrix: a scenario run against the reference target with
/// `flaw` switched on (or healthy), and the checks that must fail (none for healthy rows).
#[derive(Clone, Copy, Debug)]
pub struct MatrixRow {
    pub scenario: &'static str,
    pub flaw: Option<&'static str>,
    /// Every one of these must fail; for a healthy row, nothing may fail.
    pub must_fail: &'static [&'static str],
}

/// The gate-honesty matrix: every built-in scenario against the healthy reference target,
/// then each flaw against the scenario that exercises the practice it breaks.
pub const MATRIX: &[MatrixRow] = &[
    MatrixRow {
        scenario: "outage",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "baseline",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "rate-limit",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "llm-timeout",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "slow-llm",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "flaky",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "tool-down",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "tool-writes",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "stream-cut",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "malformed",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "runaway-agent",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "redis-down",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "brownout",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "slow-stream",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "mcp-agent",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "bedrock-throttle",
        flaw: None,
        must_fail: &[],
    },
    MatrixRow {
        scenario: "llm-timeout",
        flaw: Some("no-timeout"),
        // Without a timeout, a hung call waits out the whole outage: no user gets a fast
        // failure (the mitigation a timeout plus a breaker gives), and deep into the hang
        // failures still take the load's whole request_timeout.
        must_fail: &["errors.honest", "recovery.mitigation", "recovery.fast_fail"],
    },
    MatrixRow {
        scenario: "flaky",
        flaw: Some("no-retry"),
        must_fail: &["retries.retryable"],
    },
    MatrixRow {
        scenario: "rate-limit",
        flaw: Some("retry-storm"),
        must_fail: &["retries.retry_after"],
    },
    MatrixRow {
        scenario: "flaky",
        flaw: Some("retry-storm"),
        must_fail: &["retries.jitter"],
    },
    MatrixRow {
        scenario: "rate-limit",
        flaw: Some("ignore-retry-after"),
        must_fail: &["retries.retry_after"],
    },
    MatrixRow {
        scenario: "tool-writes",
        flaw: Some("retry-writes"),
        must_fail: &["writes.idempotent"],
    },
    MatrixRow {
        scenario: "tool-down",
        flaw: Some("no-tool-fallback"),
        must_fail: &["fallback.tool"],
    },
    MatrixRow {
        scenario: "redis-down",
        flaw: Some("no-cache-fallback"),
        must_fail: &["fallback.redis"],
    },
    MatrixRow {
        scenario: "baseline",
        flaw: Some("leak-secrets"),
        must_fail: &["logs.no_secrets"],
    },
    MatrixRow {
        scenario: "outage",
        flaw: Some("no-request-id"),
        must_fail: &["errors.honest"],
    },
    MatrixRow {
        scenario: "outage",
        flaw: Some("stack-trace-errors"),
        must_fail: &["errors.honest"],
    },
    MatrixRow {
        scenario: "runaway-agent",
        flaw: Some("unbounded-agent"),
        must_fail: &["agent.steps"],
    },
    MatrixRow {
        scenario: "baseline",
        flaw: Some("lying-metrics"),
        must_fail: &["metrics.truth"],
    },
    MatrixRow {
        scenario: "outage",
        flaw: Some("no-circuit-breaker"),
        // Not recovery.mitigation: the target's retry budget still fails fast once spent,
        // which is mitigation (see scenarios/outage.toml).
        must_fail: &["recovery.fast_fail"],
    },
    MatrixRow {
        scenario: "baseline",
        flaw: Some("log-per-attempt"),
        must_fail: &["logs.one_line_per_request"],
    },
    MatrixRow {
        scenario: "brownout",
        flaw: Some("fixed-backoff"),
        must_fail: &["retries.backoff"],
    },
    MatrixRow {
        scenario: "brownout",
        flaw: Some("nested-retries"),
        must_fail: &["retries.attempts"],
    },
    MatrixRow {
        scenario: "brownout",
        flaw: Some("retry-client-errors"),
        must_fail: &["retries.non_retryable"],
    },
    MatrixRow {
        scenario: "outage",
        flaw: Some("stuck-breaker"),
        must_fail: &["recovery.time"],
    },
    MatrixRow {
        scenario: "baseline",
        flaw: Some("miscount-tokens"),
        must_fail: &["logs.tokens"],
    },
    MatrixRow {
        scenario: "stream-cut",
        flaw: Some("silent-stream-cut"),
        must_fail: &["stream.ends_clearly"],
    },
    MatrixRow {
        scenario: "slow-stream",
        flaw: Some("buffer-stream"),
        must_fail: &["stream.first_token"],
    },
    MatrixRow {
        scenario: "slow-stream",
        flaw: Some("batch-stream"),
        must_fail: &["stream.inter_token"],
    },
    MatrixRow {
        scenario: "flaky",
        flaw: Some("untraced-retries"),
        must_fail: &["traces.per_request"],
    },
    MatrixRow {
        scenario: "mcp-agent",
        flaw: Some("ignore-list-changed"),
        must_fail: &["mcp.list_changed"],
    },
    MatrixRow {
        scenario: "mcp-agent",
        flaw: Some("new-response-id-on-retry"),
        must_fail: &["conversation.retry_state"],
    },
    MatrixRow {
        scenario: "bedrock-throttle",
        flaw: Some("no-throttle-retry"),
        must_fail: &["retries.retryable"],
    },
];

impl MatrixRow {
    /// The `faultline` arguments that run this row.
    pub fn args(&self, quick: bool) -> Vec<String> {
        let mut args = vec!["scenario".to_string(), self.scenario.to_string()];
        if quick {
            args.push("--quick".into());
        }
        if let Some(flaw) = self.flaw {
            args.extend(["--flaw".to_string(), flaw.to_string()]);
        }
        args
    }

    /// Did the run come out as this row demands? `None` when it did; else why not.
    pub fn judge(&self, outcome: &EntryOutcome) -> Option<String> {
        judge(self.must_fail, outcome)
    }
}

/// Did a run that had to fail `must_fail` (nothing, for a healthy row) come out so? `None`
/// when it did; else why not.
pub fn judge<S: AsRef<str>>(must_fail: &[S], outcome: &EntryOutcome) -> Option<String> {
    match outcome {
        EntryOutcome::NotRun(why) => Some(format!("could not run: {why}")),
        EntryOutcome::Passed if must_fail.is_empty() => None,
        EntryOutcome::GateFailed(failed) if must_fail.is_empty() => {
            Some(format!("the healthy target failed {}", failed.join(", ")))
        }
        EntryOutcome::Passed => Some(format!(
            "nothing failed; expected {}",
            must_fail
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        EntryOutcome::GateFailed(failed) => {
            let missed: Vec<&str> = must_fail
                .iter()
                .map(AsRef::as_ref)
                .filter(|id| !failed.iter().any(|f| f == id))
                .collect();
            (!missed.is_empty()).then(|| {
                format!(
                    "{} did not fail (failed: {})",
                    missed.join(", "),
                    failed.join(", ")
                )
            })
        }
    }
}

/// The matrix as a table: whose row, flaw or defect × scenario, what had to fail, what
/// failed, and whether the gate told the truth.
pub fn matrix_table(rows: &[crate::selftest::Row], entries: &[Entry]) -> String {
    let mut out = String::from(
        "| target | flaw | scenario | must fail | failed | honest |\n|---|---|---|---|---|---|\n",
    );
    for (row, entry) in rows.iter().zip(entries) {
        let failed = match &entry.outcome {
            EntryOutcome::Passed => "-".to_string(),
            EntryOutcome::GateFailed(ids) => ids.join(", "),
            EntryOutcome::NotRun(why) => format!("not run: {why}"),
        };
        let verdict = match row.judge(&entry.outcome) {
            None => "yes".to_string(),
            Some(why) => format!("NO: {why}"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {failed} | {verdict} |\n",
            row.subject,
            row.variant,
            row.scenario,
            if row.must_fail.is_empty() {
                "nothing".to_string()
            } else {
                row.must_fail.join(", ")
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(ids: &[&str]) -> EntryOutcome {
        EntryOutcome::GateFailed(ids.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_flaw_row_holds_only_when_its_checks_fail() {
        let row = MatrixRow {
            scenario: "outage",
            flaw: Some("no-timeout"),
            must_fail: &["errors.honest"],
        };
        assert_eq!(
            row.judge(&failed(&["errors.honest", "sla.p95.fault"])),
            None
        );
        assert!(row
            .judge(&failed(&["sla.p95.fault"]))
            .unwrap()
            .contains("errors.honest did not fail"));
        assert!(row.judge(&EntryOutcome::Passed).is_some());
    }

    #[test]
    fn a_healthy_row_holds_only_when_nothing_fails() {
        let row = MatrixRow {
            scenario: "outage",
            flaw: None,
            must_fail: &[],
        };
        assert_eq!(row.judge(&EntryOutcome::Passed), None);
        assert!(row.judge(&failed(&["errors.honest"])).is_some());
    }

    #[test]
    fn every_matrix_row_names_a_built_in_scenario_and_a_known_flaw() {
        for row in MATRIX {
            assert!(
                crate::scenario::catalog::get(row.scenario).is_some(),
                "{}",
                row.scenario
            );
            if let Some(flaw) = row.flaw {
                assert!(crate::scenario::parse::is_known_flaw(flaw), "{flaw}");
            }
        }
    }

    #[test]
    fn every_flaw_and_every_built_in_scenario_has_a_matrix_row() {
        for flaw in crate::scenario::parse::known_flaws() {
            assert!(
                MATRIX.iter().any(|row| row.flaw == Some(flaw.as_str())),
                "flaw {flaw} has no row: no gate is shown to catch it"
            );
        }
        for name in crate::scenario::catalog::names() {
            assert!(
                MATRIX
                    .iter()
                    .any(|row| row.flaw.is_none() && row.scenario == name),
                "scenario {name} is not run against the healthy target"
            );
        }
    }

    #[test]
    fn the_suite_exit_code_puts_not_run_above_failed() {
        let entry = |outcome| Entry {
            label: "x".into(),
            outcome,
            dir: None,
        };
        assert_eq!(suite_exit_code(&[entry(EntryOutcome::Passed)]), 0);
        assert_eq!(suite_exit_code(&[entry(failed(&["a"]))]), 1);
        assert_eq!(
            suite_exit_code(&[
                entry(failed(&["a"])),
                entry(EntryOutcome::NotRun("x".into()))
            ]),
            2
        );
    }
}
