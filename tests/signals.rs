//! Signals to faultline (issue 16 items 4, 14, 15, 16): real child processes, real signals,
//! and /proc checked for leftovers after each.

use std::time::Duration;

mod procs;
use procs::*;

/// Every LLM call takes 1.5 s, so requests are in flight whenever the signal lands.
const SLOW_LLM: &str = r#"
[[faults]]
fake = "llm"
start = "0s"
end = "30s"
kind = "delay"
delay = "1500ms"
"#;

#[test]
fn sigterm_stops_a_scenario_like_ctrl_c_with_a_partial_report_and_no_false_failures() {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    let script = "trap '' TERM; sleep 986.5 & exec \"$FAULTLINE_EXE\" reference-target";
    let scenario = scenario_with(dir.path(), script, "30s", SLOW_LLM);
    let out = dir.path().join("out");
    let child = faultline(
        &[
            "scenario",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &token,
    )
    .spawn()
    .unwrap();
    let pid = child.id();
    wait_for_process(&token, "reference-target", Duration::from_secs(20));
    // Ready, probed, and into the load, with requests waiting on the slow LLM.
    std::thread::sleep(Duration::from_secs(4));
    signal(pid, libc::SIGTERM);
    let (output, _) = wait_measured(child, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted (Ctrl-C, SIGTERM or SIGHUP)"),
        "{stderr}"
    );
    let report = json_file(&out, "report.json");
    assert_eq!(report["interrupted"], true);
    assert!(
        report["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g.as_str().unwrap().contains("in flight at the interrupt")),
        "no request was in flight, so the test proved nothing: {}",
        report["gaps"]
    );
    assert_ne!(
        verdict(&report, "errors.honest")["outcome"],
        "fail",
        "{stdout}"
    );
    assert_no_leftovers(&token, Duration::from_secs(3));
}

#[test]
fn a_second_interrupt_exits_2_at_once_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    let script = "trap '' TERM; sleep 985.5 & exec \"$FAULTLINE_EXE\" reference-target";
    let scenario = scenario_with(dir.path(), script, "30s", SLOW_LLM);
    let out = dir.path().join("out");
    let child = faultline(
        &[
            "scenario",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &token,
    )
    .spawn()
    .unwrap();
    let pid = child.id();
    wait_for_process(&token, "reference-target", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    signal(pid, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal(pid, libc::SIGINT);
    let (output, _) = wait_measured(child, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted again"), "{stderr}");
    assert_no_leftovers(&token, Duration::from_secs(3));
}

#[test]
fn sigterm_to_selftest_exits_2_and_reaps_its_runs_and_their_targets() {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    let child = faultline(
        &[
            "selftest",
            "--quick",
            "--jobs",
            "2",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        &token,
    )
    .spawn()
    .unwrap();
    let pid = child.id();
    // The matrix's runs have started their reference targets.
    wait_for_process(&token, "reference-target", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, libc::SIGTERM);
    let (output, _) = wait_measured(child, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("the matrix is incomplete"), "{stderr}");
    assert_no_leftovers(&token, Duration::from_secs(3));
}
