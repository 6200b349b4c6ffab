//! The gate-honesty matrix, end to end: `faultline selftest --quick` runs every built-in
//! scenario against the healthy reference target (each must pass) and each of its flaws
//! against the scenario that exercises the broken practice (the check named for that practice
//! must fail). The matrix is printed in the test output.

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

#[test]
#[serial]
fn every_gate_catches_its_flaw_and_the_healthy_target_passes_every_scenario() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("faultline")
        .unwrap()
        // One rerun for a row that a busy machine's timing tipped over; the output names it.
        .args(["selftest", "--quick", "--reruns", "1", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert_eq!(
        output.status.code(),
        Some(0),
        "the matrix has dishonest rows:\n{stdout}\nstderr:\n{stderr}"
    );
    // One row per flaw and per scenario, each judged honest.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| flaw"))
        .collect();
    assert!(rows.len() >= 37, "{stdout}");
    assert!(rows.iter().all(|row| row.ends_with("| yes |")), "{stdout}");
}
