//! `metrics.truth` read through the Prometheus text format: the reference target's `/metrics`
//! with series selectors in `[expect.metrics]`, end to end. Healthy it passes; with
//! `--flaw lying-metrics` (tokens miscounted) the same selectors catch it.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

/// The baseline scenario, its metrics read from `/metrics` as Prometheus text by selectors.
fn prometheus_baseline(dir: &Path) -> PathBuf {
    let baseline = std::fs::read_to_string("scenarios/baseline.toml").unwrap();
    let text = baseline.replacen(
        "[target]\n",
        "[target]\nmetrics_path = \"/metrics\"\nmetrics_format = \"prometheus\"\n",
        1,
    ) + r#"
[expect.metrics]
llm_errors = 'llm_errors_total'
tokens_input = 'llm_tokens_total{direction="input"}'
tokens_output = 'llm_tokens_total{direction="output"}'
cache_hit_ratio = 'cache_hit_ratio'
agent_steps = 'agent_steps_count_total'
"#;
    assert!(
        text.contains("metrics_format"),
        "baseline.toml has no [target] table"
    );
    let path = dir.join("prometheus-baseline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn metrics_truth(scenario: &Path, out: &Path, flaws: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut command = Command::cargo_bin("faultline").unwrap();
    command
        .env_remove("FAULTLINE_LOG")
        .args(["scenario", "--quick", "--quiet", "--out"])
        .arg(out)
        .arg(scenario);
    for flaw in flaws {
        command.args(["--flaw", flaw]);
    }
    let output = command.output().unwrap();
    let text = std::fs::read_to_string(out.join("report.json")).unwrap_or_else(|_| {
        panic!(
            "no report.json; stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let verdict = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "metrics.truth")
        .cloned()
        .expect("a metrics.truth verdict");
    (output.status.code(), verdict)
}

#[test]
#[serial]
fn prometheus_metrics_are_checked_by_selector_and_lying_ones_fail() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = prometheus_baseline(dir.path());

    let (code, verdict) = metrics_truth(&scenario, &dir.path().join("healthy"), &[]);
    assert_eq!(verdict["outcome"], "pass", "{verdict:#}");
    assert_eq!(code, Some(0), "{verdict:#}");
    let evidence = verdict["evidence"].to_string();
    assert!(
        evidence.contains(r#"llm_tokens_total{direction=\"input\"}"#),
        "the figure was read by its selector: {evidence}"
    );

    let (code, verdict) = metrics_truth(&scenario, &dir.path().join("lying"), &["lying-metrics"]);
    assert_eq!(verdict["outcome"], "fail", "{verdict:#}");
    assert_eq!(code, Some(1));
    assert!(
        verdict["summary"].as_str().unwrap().contains("tokens in"),
        "{verdict:#}"
    );
}

/// The baseline scenario with `extra` appended; returns the parse error's text.
fn error_with(extra: &str) -> String {
    let baseline = std::fs::read_to_string("scenarios/baseline.toml").unwrap();
    let text = format!("{baseline}\n{extra}\n");
    match faultline::scenario::parse_scenario(&text, "s.toml") {
        Ok(_) => panic!("accepted:\n{extra}"),
        Err(e) => {
            // Check the position points into the appended text, at the reported column.
            let (line, column) = e.position().expect("a position");
            let source_line = text.lines().nth(line - 1).unwrap();
            format!("{e} @ `{}`", &source_line[column - 1..])
        }
    }
}

#[test]
fn a_bad_selector_is_refused_at_its_line_and_column() {
    let err = error_with("[expect.metrics]\ntokens_input = 'llm_tokens_total{direction=~\"in\"}'");
    assert!(
        err.contains("`tokens_input` in [expect.metrics]")
            && err.contains("not supported")
            && err.ends_with("@ `=~\"in\"}'`"),
        "{err}"
    );
    let err = error_with("[expect.metrics]\nllm_errors = 'llm errors'");
    assert!(
        err.contains("unexpected `errors`") && err.ends_with("@ `errors'`"),
        "{err}"
    );
}

#[test]
fn an_unknown_metrics_format_or_traces_key_is_refused() {
    let baseline = std::fs::read_to_string("scenarios/baseline.toml").unwrap();
    let text = baseline.replacen("[target]\n", "[target]\nmetrics_format = \"xml\"\n", 1);
    let err = faultline::scenario::parse_scenario(&text, "s.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("use \"prometheus\""), "{err}");
    let err = error_with("[expect.traces]\nrequest_id_attr = \"request.id\"");
    assert!(err.contains("request_id_attr"), "{err}");
    let err = error_with("[expect.traces]\nllm_span_attribute = \"gen ai\"");
    assert!(err.contains("without spaces"), "{err}");
}
