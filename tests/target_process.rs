//! A target's own output and children must not break a run (issue 16 items 1, 2, 3, 5): real
//! target processes (a shell script around the reference target), real pipes, and /proc
//! checked for leftovers after each run.

use std::time::Duration;

mod procs;
use procs::*;

#[test]
fn bad_bytes_a_flood_of_startup_output_and_a_stubborn_grandchild_leave_a_healthy_run_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    // A byte that is not UTF-8, 250k start-up lines (more than the ring keeps), and a
    // grandchild that ignores SIGTERM, in front of the healthy reference target.
    let script = "printf 'caf\\351\\n'; seq 1 250000; trap '' TERM; sleep 987.5 & \
                  exec \"$FAULTLINE_EXE\" reference-target";
    let scenario = scenario(dir.path(), script, "3s");
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
    let (output, _) = wait_measured(child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json_file(&out, "report.json");
    assert_eq!(report["phases"][0]["failures"], 0, "{stdout}");
    for id in ["logs.request_id", "logs.one_line_per_request"] {
        assert_eq!(verdict(&report, id)["outcome"], "pass", "{stdout}");
    }
    let evidence = json_file(&out, "evidence.json");
    let lost = &evidence["logs_lost"];
    assert_eq!(lost["not_utf8"], 1);
    assert!(lost["dropped"].as_u64().unwrap() > 0, "{lost}");
    assert_eq!(lost["dropped_in_load"], 0, "{lost}");
    assert!(stdout.contains("1 lines not UTF-8"), "{stdout}");
    assert_no_leftovers(&token, Duration::from_secs(3));
}

#[test]
fn a_target_that_crashes_mid_run_is_named_with_its_exit_status_and_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    let script = "\"$FAULTLINE_EXE\" reference-target & pid=$!; sleep 2; \
                  echo 'fatal: out of memory, giving up'; kill -9 $pid; exit 3";
    let scenario = scenario(dir.path(), script, "4s");
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
    let (output, _) = wait_measured(child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let note = "target crash: the target exited during the run (exit status: 3)";
    assert!(stdout.contains(note), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("fatal: out of memory, giving up"),
        "{stdout}"
    );
    let report = json_file(&out, "report.json");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains(note)),
        "{}",
        report["notes"]
    );
    let evidence = json_file(&out, "evidence.json");
    assert_eq!(evidence["target_crash"]["status"], "exit status: 3");
    assert_no_leftovers(&token, Duration::from_secs(3));
}
