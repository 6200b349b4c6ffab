//! `faultline report <dir>` and `faultline compare <a> <b>`, run as the binary on report
//! directories written by hand, as a person or CI would meet them.

use std::path::Path;

use assert_cmd::Command;
use serde_json::{json, Value};

/// A small schema-v1 report.json: two checks, three phases.
fn report_json(p95_outcome: &str, p95_ms: f64, fault_error_rate: f64) -> Value {
    let phase = |name: &str, start: f64, p95: f64, error_rate: f64| {
        json!({
            "phase": name, "start_ms": start, "end_ms": start + 10_000.0,
            "requests": 20, "failures": (error_rate * 20.0) as u64, "error_rate": error_rate,
            "p50_ms": p95 / 2.0, "p95_ms": p95, "p99_ms": p95, "max_ms": p95
        })
    };
    json!({
        "schema": "faultline.report/v1",
        "scenario": "outage",
        "description": "The LLM provider answers 503 for 10 s.",
        "source": "built-in:outage",
        "seed": 42,
        "quick": true,
        "started_at": "2025-06-01T08:00:00Z",
        "duration_ms": 30_000.0,
        "interrupted": false,
        "passed": p95_outcome != "fail",
        "target": "reference target",
        "phases": [
            phase("baseline", 0.0, 200.0, 0.0),
            phase("fault", 10_000.0, p95_ms, fault_error_rate),
            phase("recovery", 20_000.0, 210.0, 0.0),
        ],
        "timeline": [
            {"at_ms": 10_000.0, "fake": "llm", "fault": "status 503", "route": null, "on": true},
            {"at_ms": 20_000.0, "fake": "llm", "fault": "status 503", "route": null, "on": false}
        ],
        "faults": [{"fake": "llm", "route": null, "start": 10_000, "end": 20_000, "rate": 1.0,
                    "first_attempts": null, "fault": {"kind": "status", "code": 503}}],
        "verdicts": [
            {"id": "sla.p95.fault", "title": "p95 latency in the fault phase stays within 1 s",
             "outcome": p95_outcome, "figure": p95_ms, "limit": 1000.0, "unit": "ms",
             "summary": "p95 latency in the fault phase.",
             "evidence": if p95_outcome == "fail" { json!(["req-7 <b>slow</b> sk-abcdef0123456789"]) } else { json!([]) }},
            {"id": "errors.honest", "title": "failed requests get an honest answer",
             "outcome": "not_applicable", "figure": null, "limit": 0.0, "unit": "requests",
             "summary": "no request failed.", "evidence": []}
        ],
        "counts": {"requests": 60, "failures": 0, "upstream_attempts": 0,
                   "upstream_attempts_dropped": 0, "log_lines": 0}
    })
}

fn write_run(dir: &Path, report: &Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report).unwrap(),
    )
    .unwrap();
}

fn faultline() -> Command {
    Command::cargo_bin("faultline").unwrap()
}

#[test]
fn report_renders_html_markdown_and_junit_from_report_json_alone() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &report_json("fail", 2_400.0, 1.0));

    let out = faultline().arg("report").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no evidence.json"), "{stderr}");

    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<strong>FAIL</strong>1 of 1 gate failed (sla.p95.fault)"));
    assert!(html.contains("evidence.json was not found"));
    assert!(!html.contains("<svg"));
    assert!(html.contains("req-7 &lt;b&gt;slow&lt;/b&gt; sk-[redacted]"));
    assert!(html.contains("<td>fault</td><td>10 s–20 s</td>"));

    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.starts_with("# faultline: outage — ❌ FAIL"), "{md}");

    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some("2"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("p95 latency in the fault phase. (figure 2.4 s, limit 1 s)")
    );
    assert_eq!(failure.text(), Some("req-7 <b>slow</b> sk-[redacted]"));
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("skipped"))
            .count(),
        1
    );
}

#[test]
fn report_draws_the_charts_when_evidence_json_is_there() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &report_json("pass", 400.0, 0.0));
    let evidence = json!({
        "phases": [], "timeline": [], "attempts": [], "attempts_dropped": 0, "logs": [],
        "metrics": [], "duration_ms": 3000.0, "interrupted": false,
        "records": [
            {"at_ms": 100.0, "flow": "chat", "request_id": "req-1", "nonce": "n1",
             "status": 200, "latency_ms": 150.0, "response_request_id": null,
             "body_excerpt": "{}", "error": null},
            {"at_ms": 1100.0, "flow": "chat", "request_id": "req-2", "nonce": "n2",
             "status": 200, "latency_ms": 250.0, "response_request_id": null,
             "body_excerpt": "{}", "error": null}
        ]
    });
    std::fs::write(dir.path().join("evidence.json"), evidence.to_string()).unwrap();

    faultline().arg("report").arg(dir.path()).assert().success();

    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<path data-series=\"p95\" d=\"M"));
    assert!(html.contains("<strong>PASS</strong>"));
}

#[test]
fn report_refuses_another_schema_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = report_json("pass", 400.0, 0.0);
    report["schema"] = json!("faultline.report/v9");
    write_run(dir.path(), &report);
    let out = faultline().arg("report").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has schema faultline.report/v9; this faultline reads faultline.report/v1"),
        "{stderr}"
    );
}

#[test]
fn compare_exits_1_on_a_check_that_passed_before_and_fails_now() {
    let root = tempfile::tempdir().unwrap();
    let before = root.path().join("before");
    let after = root.path().join("after");
    write_run(&before, &report_json("pass", 800.0, 0.5));
    write_run(&after, &report_json("fail", 2_400.0, 1.0));

    let out = faultline()
        .args(["compare"])
        .arg(&before)
        .arg(&after)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sla.p95.fault  pass    FAIL   800 ms         2.4 s         REGRESSION"),
        "{text}"
    );
    assert!(text.contains("800 ms -> 2.4 s (+200%)"), "{text}");
    assert!(text.contains("50% -> 100% (+100%)"), "{text}");
    assert!(text.contains("REGRESSION: 1 check passed before and fail now (sla.p95.fault)"));

    // The other way round is an improvement: exit 0.
    let out = faultline()
        .args(["compare", "--json"])
        .arg(&after)
        .arg(&before)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["regressions"], json!([]));
    assert_eq!(json["checks"][0]["id"], "sla.p95.fault");
    assert_eq!(json["checks"][0]["before"], "fail");
    assert_eq!(json["checks"][0]["after"], "pass");
    assert_eq!(json["phases"][1]["p95_ms"], json!([2400.0, 800.0]));
}
