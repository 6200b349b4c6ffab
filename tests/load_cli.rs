//! The load's limits end to end through the real binary: `users` a machine cannot hold is
//! refused at its line and column (issue 16 item 10), a run too short to judge is exit 2
//! (item 11), and an arrival-rate run whose generator fell behind is exit 2 with the figures,
//! never a pass (issue 14 item 2), while the same run with room to keep up is judged.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

fn faultline() -> Command {
    let mut command = Command::cargo_bin("faultline").expect("the faultline binary is built");
    command.env_remove("FAULTLINE_LOG");
    command
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A scenario with `load` as its `[load]` keys, one flow, and `rest` after it.
fn scenario(load: &str, rest: &str) -> String {
    format!(
        "name = \"load-limits\"\nseed = 7\n\n[load]\n{load}\nrequest_timeout = \"10s\"\n\n\
         [[load.flows]]\nname = \"ask\"\nmessages = [\"How do I reset my password?\"]\n{rest}"
    )
}

#[test]
fn users_beyond_what_the_machine_holds_are_refused_at_their_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let too_many = write(
        dir.path(),
        "many.toml",
        &scenario("users = 100000\nduration = \"5s\"", ""),
    );
    let output = faultline().arg("validate").arg(&too_many).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("many.toml:5:9"), "no line:column: {stderr}");
    assert!(
        stderr.contains("100000") && stderr.contains("more than this machine can hold"),
        "{stderr}"
    );

    // What the message asks for is accepted.
    let fixed = write(
        dir.path(),
        "fixed.toml",
        &scenario("users = 4\nduration = \"5s\"", ""),
    );
    let output = faultline().arg("validate").arg(&fixed).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn executor_keys_are_checked_against_the_executor_named() {
    let dir = tempfile::tempdir().unwrap();
    for (load, at, says) in [
        (
            "executor = \"constant_rat\"\nrate = 5\nduration = \"5s\"",
            ":5:12",
            "use one of",
        ),
        (
            "users = 4\nrate = 5\nduration = \"5s\"",
            ":6:8",
            "does not apply",
        ),
        (
            "executor = \"constant_rate\"\nduration = \"5s\"",
            ":5:12",
            "needs `rate`",
        ),
        (
            "executor = \"ramping_rate\"\nstages = [{ rate = 5, duration = \"4s\" }]\n\
             duration = \"5s\"",
            ":6:10",
            "add up",
        ),
        (
            "executor = \"constant_rate\"\nrate = 5\nthink_time = \"1s\"\nduration = \"5s\"",
            ":7:14",
            "does not apply",
        ),
    ] {
        let path = write(dir.path(), "e.toml", &scenario(load, ""));
        let output = faultline().arg("validate").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{load}: {stderr}");
        assert!(
            stderr.contains(&format!("e.toml{at}")) && stderr.contains(says),
            "{load}: expected {at} and {says:?} in {stderr}"
        );
    }
    let fine = write(
        dir.path(),
        "fine.toml",
        &scenario(
            "executor = \"ramping_rate\"\nstages = [{ rate = 5, duration = \"2s\" }, { rate = \
             0, duration = \"3s\" }]\narrivals = \"poisson\"\nduration = \"5s\"",
            "",
        ),
    );
    let output = faultline().arg("validate").arg(&fine).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn a_quick_run_scaled_to_microseconds_is_exit_2_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/outage.toml"),
    )
    .unwrap()
    .replace("quick_scale = 0.25", "quick_scale = 1e-7");
    let path = write(dir.path(), "tiny.toml", &text);
    let output = faultline()
        .args(["scenario", "--quick", "--quiet", "--out"])
        .arg(dir.path().join("out"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("too short to judge"), "{stderr}");
}

/// Every LLM call 300 ms slower for the whole run, at 30 arrivals/s.
fn slow_rate_run(max_in_flight: &str) -> String {
    scenario(
        &format!("executor = \"constant_rate\"\nrate = 30\n{max_in_flight}\nduration = \"3s\""),
        "\n[[faults]]\nfake = \"llm\"\nstart = \"0s\"\nend = \"3s\"\nkind = \"delay\"\n\
         delay = \"300ms\"\n",
    )
}

fn run(path: &Path, out: &Path) -> (Option<i32>, String, serde_json::Value) {
    let output = faultline()
        .args(["scenario", "--quiet", "--out"])
        .arg(out)
        .arg(path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json is written"),
    )
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    )
}

#[test]
#[serial]
fn a_generator_that_fell_behind_is_exit_2_with_its_figures_and_one_that_kept_up_is_judged() {
    let dir = tempfile::tempdir().unwrap();
    // One slot for answers that take 300 ms: most arrivals find it taken.
    let starved = write(
        dir.path(),
        "starved.toml",
        &slow_rate_run("max_in_flight = 1"),
    );
    let (code, stderr, report) = run(&starved, &dir.path().join("starved"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("fell behind"), "{stderr}");
    assert_eq!(report["passed"], false);
    assert!(report["invalid"].as_str().unwrap().contains("dropped"));
    let dropped = report["load"]["dropped"].as_u64().unwrap();
    let asked = report["load"]["asked"].as_u64().unwrap();
    assert!(dropped * 2 > asked, "{dropped} of {asked} dropped");

    // The default max_in_flight holds every arrival of a request timeout: it keeps up.
    let roomy = write(dir.path(), "roomy.toml", &slow_rate_run(""));
    let (code, stderr, report) = run(&roomy, &dir.path().join("roomy"));
    assert_ne!(code, Some(2), "{stderr}");
    assert!(report["invalid"].is_null(), "{report:#}");
    assert_eq!(report["load"]["dropped"], 0);
    assert_eq!(report["load"]["asked"], 90);
    assert_eq!(report["load"]["sent"], 90);
}
