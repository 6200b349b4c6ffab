//! The gate-honesty matrix, end to end, with no reruns: `faultline selftest` runs every
//! built-in scenario against the healthy reference target (each must pass) and each of its
//! flaws against the scenario that exercises the broken practice (the check named for that
//! practice must fail), in the full form users run by default and in `--quick`; and each
//! example service's rows (`--example DIR`): every applicable scenario passes it healthy, each
//! planted defect fails its gate. The matrix is printed in the test output.
//!
//! Rows run several at a time (`--jobs`, default 6 here; `FAULTLINE_SELFTEST_JOBS` to change):
//! each is a few users mostly waiting on timers, so a 2-core machine holds that many, and the
//! full matrix fits CI's time. A row that only comes out right on an idle machine is not honest
//! by design, so no row is ever run again.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

fn jobs() -> String {
    std::env::var("FAULTLINE_SELFTEST_JOBS").unwrap_or_else(|_| "6".into())
}

/// Runs `faultline selftest <args> --jobs N --out <tmp>` and checks that it exits 0 with
/// exactly `rows` rows, each judged honest.
fn selftest(args: &[&str], rows: usize, path: Option<String>) {
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::cargo_bin("faultline").unwrap();
    command
        .arg("selftest")
        .args(args)
        .args(["--jobs", &jobs(), "--out"])
        .arg(out.path());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert_eq!(
        output.status.code(),
        Some(0),
        "the matrix has dishonest rows:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stdout.contains("run again"), "{stdout}");
    let table: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| target"))
        .collect();
    assert_eq!(
        table.len(),
        rows,
        "one row per flaw, scenario and defect:\n{stdout}"
    );
    assert!(table.iter().all(|row| row.ends_with("| yes |")), "{stdout}");
}

#[test]
#[serial]
fn quick_every_gate_catches_its_flaw_and_the_healthy_target_passes_every_scenario() {
    selftest(&["--quick"], faultline::suite::MATRIX.len(), None);
}

#[test]
#[serial]
fn full_every_gate_catches_its_flaw_and_the_healthy_target_passes_every_scenario() {
    selftest(&[], faultline::suite::MATRIX.len(), None);
}

#[test]
#[serial]
fn every_example_passes_its_scenarios_healthy_and_each_planted_defect_fails_its_gate() {
    let examples = ["python-fastapi", "node-express", "rust-axum"];
    let dirs: Vec<PathBuf> = examples
        .iter()
        .map(|name| Path::new("examples").join(name))
        .collect();
    let rows = faultline::selftest::all_example_rows(&dirs, true)
        .unwrap()
        .len();
    let mut args = vec!["--quick".to_string(), "--examples-only".to_string()];
    for dir in &dirs {
        args.extend(["--example".to_string(), dir.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let path = format!(
        "{}:{}",
        common::venv_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    selftest(&args, rows, Some(path));
}
