//! The command line end to end: real fakes, the real reference target as a child process,
//! real Goose load. These runs take seconds each and load the machine, so they run one at a time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

fn faultline() -> Command {
    let mut command = Command::cargo_bin("faultline").expect("the faultline binary is built");
    command.env_remove("FAULTLINE_LOG");
    command
}

fn read_report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json is written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn verdict<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no verdict {id} in {report:#}"))
}

#[test]
#[serial]
fn quick_outage_against_the_reference_target_passes_every_gate() {
    let out = tempfile::tempdir().unwrap();
    let output = faultline()
        .args(["scenario", "outage", "--quick", "--json", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // --json: the verdict for scripts is the last line of stdout (Goose may print above it).
    let printed: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("a JSON verdict");
    assert_eq!(printed["passed"], true, "{printed:#}");

    let report = read_report(out.path());
    assert_eq!(report["schema"], "faultline.report/v1");
    assert_eq!(report["passed"], true);
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["baseline", "fault", "recovery"]);
    for phase in &report["phases"].as_array().unwrap()[..] {
        assert!(
            phase["requests"].as_u64().unwrap() > 0,
            "no requests in {phase}"
        );
    }
    for id in [
        "sla.p95.baseline",
        "errors.rate.baseline",
        "sla.p95.fault",
        "sla.p95.recovery",
        "recovery.time",
        "errors.honest",
    ] {
        assert_eq!(
            verdict(&report, id)["outcome"],
            "pass",
            "{id}: {:#}",
            verdict(&report, id)
        );
    }
    // The outage really happened: the fault phase saw failed requests, honestly reported.
    let fault = &report["phases"][1];
    assert!(
        fault["failures"].as_u64().unwrap() > 0,
        "the outage failed no request: {fault}"
    );
    assert!(out.path().join("summary.md").exists());
}

#[test]
#[serial]
fn a_target_without_an_llm_timeout_fails_the_gate_and_names_the_hanging_requests() {
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = faultline()
        .args([
            "scenario",
            "outage",
            "--quick",
            "--flaw",
            "no-timeout",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "stdout:\n{stdout}");
    // Bounded: hanging requests are cut off after the drain time, not waited on forever.
    assert!(started.elapsed() < Duration::from_secs(90));

    let report = read_report(out.path());
    assert_eq!(report["passed"], false);
    let honest = verdict(&report, "errors.honest");
    assert_eq!(honest["outcome"], "fail", "{honest:#}");
    let evidence = honest["evidence"].to_string();
    assert!(
        evidence.contains("flreq-"),
        "the verdict names no request: {evidence}"
    );
}

#[test]
#[serial]
fn leaked_internals_and_missing_request_ids_fail_error_honesty() {
    let out = tempfile::tempdir().unwrap();
    let output = faultline()
        .args(["scenario", "outage", "--quick"])
        .args(["--flaw", "stack-trace-errors", "--flaw", "no-request-id"])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "stdout:\n{stdout}");

    let report = read_report(out.path());
    let honest = verdict(&report, "errors.honest");
    assert_eq!(honest["outcome"], "fail", "{honest:#}");
    let summary = honest["summary"].as_str().unwrap();
    assert!(summary.contains("leaked"), "{summary}");
    assert!(summary.contains("request id"), "{summary}");
    // The latency gates still pass: only honesty is broken.
    assert_eq!(verdict(&report, "sla.p95.fault")["outcome"], "pass");
}

#[test]
fn a_malformed_scenario_exits_2_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "name = \"broken\"\ndescription = \"x\"\n[load]\nusres = 3\n",
    )
    .unwrap();
    let output = faultline().arg("scenario").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml:4:1"),
        "no line:column in: {stderr}"
    );
    assert!(stderr.contains("usres"), "the field is not named: {stderr}");
}

#[test]
fn validate_accepts_the_built_in_scenarios_and_list_names_them() {
    let output = faultline()
        .args(["validate", "scenarios/outage.toml"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = faultline().arg("list").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("outage") && stdout.contains("baseline"),
        "{stdout}"
    );
}

#[test]
fn validate_lists_what_the_checks_need_and_the_scenario_lacks() {
    // An attached service with a Redis outage, no metrics endpoint and no log file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(
        &path,
        r#"name = "mine"
description = "my service, attached"
[load]
users = 1
duration = "10s"
[[load.flows]]
name = "ask"
messages = ["hello"]
[target]
url = "http://127.0.0.1:3000"
[[faults]]
fake = "redis"
start = "2s"
end = "6s"
kind = "refuse"
"#,
    )
    .unwrap();
    let output = faultline().arg("validate").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for expected in [
        "logs.one_line_per_request, logs.request_id, logs.tokens: logs not captured",
        "fix: set [logs] file in faultline.toml",
        "metrics.truth: no metrics endpoint",
        "fix: set [metrics] path = \"/metrics\" in faultline.toml",
        "judged in part:",
        "logs.no_secrets:",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    // The Redis fault is there, so fallback.redis is not called unexercised.
    assert!(
        !stdout.contains("no fault window on the redis fake"),
        "{stdout}"
    );

    // The reference target's own scenario for a practice lacks nothing that practice needs.
    let output = faultline()
        .args(["validate", "redis-down"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("fallback.redis"), "{stdout}");
    assert!(!stdout.contains("metrics.truth"), "{stdout}");
}

#[test]
fn an_unknown_flaw_is_refused_before_anything_starts() {
    let output = faultline()
        .args(["scenario", "outage", "--quick", "--flaw", "no-such-flaw"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no-such-flaw") && stderr.contains("no-timeout"),
        "{stderr}"
    );
}

#[test]
#[serial]
fn a_target_that_never_gets_ready_exits_2_with_its_last_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.toml");
    std::fs::write(
        &path,
        r#"name = "dead"
description = "a target that dies at once"
[load]
users = 1
duration = "2s"
[[load.flows]]
name = "ask"
messages = ["hello"]
[target]
command = ["sh", "-c", "echo 'cannot open config.yaml' >&2; exit 3"]
ready_timeout = "5s"
"#,
    )
    .unwrap();
    let output = faultline().arg("scenario").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot open config.yaml"),
        "the target's output is not shown: {stderr}"
    );
}

/// Processes whose environment carries `marker`: the targets of one test run.
fn processes_with_env(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(environ) = std::fs::read(entry.path().join("environ")) {
            if String::from_utf8_lossy(&environ).contains(marker) {
                found.push(pid);
            }
        }
    }
    found
}

fn scenario_with_marker(dir: &Path, marker: &str) -> std::path::PathBuf {
    let outage = std::fs::read_to_string("scenarios/outage.toml").unwrap();
    let path = dir.join("marked.toml");
    // The marker rides in the target's environment, where /proc shows it.
    let marked = outage.replacen(
        "env = {",
        &format!("env = {{ FAULTLINE_TEST_MARKER = \"{marker}\", "),
        1,
    );
    assert!(
        marked.contains(marker),
        "outage.toml has no [target] env table to mark"
    );
    std::fs::write(&path, marked).unwrap();
    path
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[serial]
fn ctrl_c_stops_the_run_writes_what_was_measured_and_leaves_no_target_behind() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("ctrlc-{}", std::process::id());
    let scenario = scenario_with_marker(dir.path(), &marker);
    let out = dir.path().join("out");
    let mut child = faultline()
        .arg("scenario")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .spawn()
        .unwrap();
    wait_for("the target to start", Duration::from_secs(60), || {
        !processes_with_env(&marker).is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));

    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait_child(&mut child, Duration::from_secs(40));
    assert_eq!(status.code(), Some(2));
    let report = read_report(&out);
    assert_eq!(report["interrupted"], true);
    assert!(
        report["counts"]["requests"].as_u64().unwrap() > 0,
        "nothing measured: {report:#}"
    );
    wait_for("the target to be gone", Duration::from_secs(10), || {
        processes_with_env(&marker).is_empty()
    });
}

#[test]
#[serial]
fn a_killed_faultline_takes_its_target_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("sigkill-{}", std::process::id());
    let scenario = scenario_with_marker(dir.path(), &marker);
    let mut child = faultline()
        .arg("scenario")
        .arg(&scenario)
        .arg("--out")
        .arg(dir.path())
        .spawn()
        .unwrap();
    wait_for("the target to start", Duration::from_secs(60), || {
        !processes_with_env(&marker).is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the target to be gone", Duration::from_secs(10), || {
        processes_with_env(&marker).is_empty()
    });
}

fn wait_child(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("faultline did not stop within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
