//! The Python FastAPI example (examples/python-fastapi), a service built on the official
//! openai SDK, tested by faultline through its own faultline.toml: proof that a service in
//! another language is tested unchanged.

mod common;

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

#[test]
#[serial]
fn the_outage_scenario_passes_against_the_python_example_through_its_config() {
    let bin = common::venv_bin();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args(["scenario", "outage", "--quick", "--config"])
        .arg("examples/python-fastapi/faultline.toml")
        .arg("--out")
        .arg(out.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("uvicorn app:app"),
        "not the example that ran: {stderr}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["passed"], true);
    let honest = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "errors.honest")
        .unwrap();
    // The outage made the service fail requests, and it failed them honestly.
    assert_eq!(honest["outcome"], "pass", "{honest:#}");
    assert!(report["counts"]["failures"].as_u64().unwrap() > 0);
    // Its traces reached the OTLP collector fake: a root span per request with its id, and a
    // span per attempt the SDK made, its retries included.
    let traces = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "traces.per_request")
        .unwrap();
    assert_eq!(traces["outcome"], "pass", "{traces:#}");
}
