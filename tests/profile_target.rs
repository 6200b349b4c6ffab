//! A service with conventions of its own (tests/python/custom_fields_target.py: its own routes,
//! log field names, metric names, the official openai SDK's retries), described only by a
//! faultline.toml, runs a built-in scenario unchanged:
//! - its logs and metrics pass `logs.*` and `metrics.truth` (the false alarms a new user met:
//!   log fields settable only per scenario, LLM errors counted per attempt);
//! - a profile that leaves its log fields out stops the run before the load with exit 2,
//!   naming the key, what the service logs instead and the fix; `--allow-gaps` runs it with
//!   the log checks not applicable;
//! - `faultline validate` shows each profile key and the file that set it, a scenario's
//!   explicit key over the profile's.

mod common;

use std::path::Path;
use std::process::Output;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// The profile: how to start the service and how it speaks.
fn profile(with_logs: bool) -> String {
    let python = common::python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/custom_fields_target.py");
    let logs = if with_logs {
        r#"
[logs]
request_id_field = "req_id"
input_tokens_field = "usage.in"
output_tokens_field = "usage.out"
level_field = "severity"
message_field = "message"
"#
    } else {
        ""
    };
    format!(
        r#"[target]
command = [{python:?}, {script:?}, "{{port}}"]
ready_path = "/health"
env = {{ OPENAI_BASE_URL = "{{llm}}/v1", OPENAI_API_KEY = "{{llm_key}}", NO_PROXY = "127.0.0.1" }}

[api]
request_id_header = ""
request_id_pointer = "/meta/id"
error_pointer = "/problem"
degraded_pointer = ""

[api.chat]
path = "/v1/ask"
body = {{ q = "{{message}}" }}
{logs}
[metrics]
path = "/metrics"
llm_errors = {{ selector = "chat_llm_failures_total", counts = "calls" }}
tokens_input = 'chat_tokens_total{{kind="prompt"}}'
tokens_output = 'chat_tokens_total{{kind="completion"}}'
cache_hit_ratio = ""
agent_steps = ""
"#
    )
}

fn faultline(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::cargo_bin("faultline")
        .unwrap()
        .args(args)
        .arg("--config")
        .arg(dir.join("faultline.toml"))
        .output()
        .unwrap()
}

fn write_profile(with_logs: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("faultline.toml"), profile(with_logs)).unwrap();
    dir
}

fn verdict(report: &Value, id: &str) -> Value {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no verdict {id}"))
        .clone()
}

/// `faultline scenario flaky --quick` with the profile in `dir`, reports in `dir/out`; its exit
/// code and stderr.
fn run_flaky(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = dir.join("out");
    let mut args = vec![
        "scenario",
        "flaky",
        "--quick",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let output = faultline(dir, &args);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/report.json")).unwrap()).unwrap()
}

#[test]
fn a_service_with_its_own_names_passes_the_log_and_metrics_checks_through_its_profile() {
    let dir = write_profile(true);
    let (code, stderr) = run_flaky(dir.path(), &[]);
    // Other families may judge the SDK's own policy; this test is about logs and metrics.
    assert_ne!(code, Some(2), "{stderr}");
    let report = report(dir.path());
    for id in [
        "logs.one_line_per_request",
        "logs.request_id",
        "logs.tokens",
        "metrics.truth",
    ] {
        let v = verdict(&report, id);
        assert_eq!(v["outcome"], "pass", "{v:#}\n{stderr}");
    }
    // The SDK retried the 503s through: failed attempts, but no failed call, and the service
    // rightly counted none (the "target says 0, ground truth 12" false alarm).
    let truth = verdict(&report, "metrics.truth");
    let errors = truth["evidence"][0].as_str().unwrap();
    assert!(
        errors.starts_with("LLM errors (chat_llm_failures_total): target says 0, ground truth 0 failed calls (0 failed calls of ")
            && !errors.contains("of 0 failed attempts")
            && errors.contains("told apart by the SDK's retry count"),
        "{errors}"
    );
}

#[test]
fn a_profile_without_the_services_log_fields_stops_before_the_load_with_the_fix() {
    let dir = write_profile(false);
    let (code, stderr) = run_flaky(dir.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    for expected in [
        "the service does not match its description",
        r#"[logs] request_id_field (not set: the default "requestId")"#,
        "the JSON lines with this request id have fields message, req_id, severity, status, usage",
        r#"fix: set [logs] request_id_field = "req_id""#,
        r#"fix: set [logs] input_tokens_field = "usage.in""#,
        r#"fix: set [logs] output_tokens_field = "usage.out""#,
        "--allow-gaps",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !dir.path().join("out/report.json").exists(),
        "no load, no report"
    );

    // Asked to go on, the log checks it cannot judge say why instead.
    let (code, stderr) = run_flaky(dir.path(), &["--allow-gaps"]);
    assert_ne!(code, Some(2), "{stderr}");
    let report = report(dir.path());
    for id in ["logs.one_line_per_request", "logs.tokens"] {
        let v = verdict(&report, id);
        assert_eq!(v["outcome"], "not_applicable", "{v:#}");
        assert!(
            v["summary"]
                .as_str()
                .unwrap()
                .contains("[logs] request_id_field (not set"),
            "{v:#}"
        );
    }
    // The request id is still found in its lines, field or not.
    assert_eq!(verdict(&report, "logs.request_id")["outcome"], "pass");
}

#[test]
fn validate_shows_each_profile_key_and_the_file_a_scenario_key_overrides_it_from() {
    let dir = write_profile(true);
    let flaky = faultline::scenario::catalog::get("flaky").unwrap();
    let scenario = format!("{flaky}\n[expect.logs]\nrequest_id_field = \"rid\"\n");
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, scenario).unwrap();
    let output = faultline(dir.path(), &["validate", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let config = dir.path().join("faultline.toml").display().to_string();
    let line_of = |key: &str| {
        stdout
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
            .trim()
            .to_string()
    };
    let rid = line_of("request_id_field");
    assert!(
        rid.starts_with(r#"[logs] request_id_field = "rid"  ("#) && rid.contains("mine.toml:"),
        "{rid}"
    );
    assert_eq!(
        line_of("input_tokens_field"),
        format!(r#"[logs] input_tokens_field = "usage.in"  ({config}:18:22)"#)
    );
    assert!(line_of("llm_errors").contains(r#"counts = "calls""#));
}
