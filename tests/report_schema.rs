//! report.json keeps its schema: a report built from hand-made evidence and a plan is written to
//! a directory, read back as plain JSON and as a `Report`, and rendered as markdown and console.

mod common;

use faultline::checks::{self, Outcome};
use faultline::evidence::{Evidence, Phase, Record, TimelineEvent};
use faultline::report::{self, Report, RunMeta, SCHEMA};
use faultline::scenario::{PhaseLimits, Plan};
use serde_json::Value;

/// 30 s of load with the LLM answering 503 from 10 s to 20 s, held to a 1 s p95 in the fault
/// phase and 10% errors in recovery.
fn plan() -> Plan {
    let mut plan = common::outage_plan();
    plan.quick = true;
    plan.faults[0].route = Some("/v1/chat/completions".into());
    plan.expect.phases.insert(
        Phase::Recovery,
        PhaseLimits {
            p95: None,
            error_rate: Some(0.1),
        },
    );
    plan
}

fn record(i: usize, at_ms: f64, status: Option<u16>, latency_ms: f64, body: &str) -> Record {
    Record {
        at_ms,
        flow: "chat".into(),
        request_id: format!("req-{i}"),
        nonce: format!("n{i}"),
        status,
        latency_ms,
        response_request_id: status.map(|_| format!("req-{i}")),
        body_excerpt: body.into(),
        error: status.is_none().then(|| "timeout".into()),
        ..Record::default()
    }
}

/// Fast answers in baseline and recovery; in the fault phase, slow honest 503s and one hang.
fn evidence(plan: &Plan) -> Evidence {
    let ok = r#"{"answer":"Sunny."}"#;
    let sorry = r#"{"error":"The AI service is unavailable, please try again."}"#;
    let mut records = Vec::new();
    for i in 0..10 {
        records.push(record(i, i as f64 * 900.0, Some(200), 300.0, ok));
    }
    for i in 10..20 {
        let at = 10_000.0 + (i - 10) as f64 * 900.0;
        records.push(record(i, at, Some(503), 2_500.0, sorry));
    }
    records.push(record(20, 19_000.0, None, 20_000.0, ""));
    for i in 21..31 {
        let at = 20_000.0 + (i - 21) as f64 * 900.0;
        records.push(record(i, at, Some(200), 350.0, ok));
    }
    Evidence {
        phases: plan.phases(),
        timeline: vec![
            TimelineEvent {
                at_ms: 10_000.0,
                fake: "llm".into(),
                kind: "status".into(),
                fault: "status 503".into(),
                route: Some("/v1/chat/completions".into()),
                on: true,
            },
            TimelineEvent {
                at_ms: 20_000.0,
                fake: "llm".into(),
                kind: "status".into(),
                fault: "status 503".into(),
                route: Some("/v1/chat/completions".into()),
                on: false,
            },
        ],
        records: records.into(),
        duration_ms: 30_000.0,
        ..Evidence::default()
    }
}

fn meta() -> RunMeta {
    RunMeta {
        started_at: time::macros::datetime!(2025-06-01 08:00:00 UTC),
        target: "reference target".into(),
    }
}

#[test]
fn report_json_round_trips_with_its_schema_phases_and_verdicts() {
    // Arrange
    let plan = plan();
    let evidence = evidence(&plan);
    let verdicts = checks::evaluate(&evidence, &plan.expect);
    let report = report::build(&plan, &meta(), &evidence, verdicts);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("outage-run");

    // Act
    let written = report::write_all(&report, &evidence, &out).unwrap();

    // Assert: the files
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "report.json",
            "summary.md",
            "report.html",
            "junit.xml",
            "records.jsonl.gz",
            "attempts.jsonl.gz",
            "writes.jsonl.gz",
            "spans.jsonl.gz",
            "evidence.json"
        ]
    );
    for path in &written {
        assert!(path.starts_with(&out) && path.is_file(), "{path:?}");
    }

    // Assert: the records are in their own compressed file, which evidence.json names, and
    // report.json counts them per phase x flow x outcome with an encoded histogram each.
    let evidence_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evidence.json")).unwrap()).unwrap();
    assert_eq!(evidence_json["records"]["file"], "records.jsonl.gz");
    assert_eq!(
        evidence_json["records"]["kept"],
        evidence.records.len() as u64
    );
    // The fakes' journals likewise, each in its own file (issue 14: journals follow the rule).
    for (field, file, kept) in [
        ("attempts", "attempts.jsonl.gz", evidence.attempts.len()),
        ("writes", "writes.jsonl.gz", evidence.writes.len()),
        ("spans", "spans.jsonl.gz", evidence.spans.len()),
    ] {
        assert_eq!(evidence_json[field]["file"], file);
        assert_eq!(evidence_json[field]["kept"], kept as u64);
    }
    let report_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let cells = report_json["latency_histograms"].as_array().unwrap();
    let counted: u64 = cells.iter().map(|c| c["requests"].as_u64().unwrap()).sum();
    assert_eq!(counted, report_json["counts"]["requests"].as_u64().unwrap());
    assert!(cells
        .iter()
        .all(|c| c["latency_us"].as_str().unwrap().starts_with("HISTFAAA")));

    // Assert: report.json as plain JSON, field by field as reports/README.md documents it
    let text = std::fs::read_to_string(out.join("report.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "counts",
            "description",
            "duration_ms",
            "faults",
            "gaps",
            "interrupted",
            "latency_histograms",
            "passed",
            "phases",
            "quick",
            "scenario",
            "schema",
            "seed",
            "source",
            "started_at",
            "target",
            "timeline",
            "verdicts",
        ]
    );
    assert_eq!(json["schema"], SCHEMA);
    assert_eq!(json["schema"], "faultline.report/v1");
    assert_eq!(json["scenario"], "outage");
    assert_eq!(json["seed"], 42);
    assert_eq!(json["started_at"], "2025-06-01T08:00:00Z");
    assert_eq!(json["passed"], false);
    assert_eq!(json["faults"][0]["fake"], "llm");
    assert_eq!(json["faults"][0]["start"], 10_000);
    assert_eq!(json["faults"][0]["fault"]["kind"], "status");
    assert_eq!(json["counts"]["requests"], 31);
    assert_eq!(json["counts"]["failures"], 11);
    assert_eq!(json["timeline"].as_array().unwrap().len(), 2);

    let phases = json["phases"].as_array().unwrap();
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["baseline", "fault", "recovery"]);
    assert_eq!(phases[1]["requests"], 11);
    assert_eq!(phases[1]["failures"], 11);
    assert_eq!(phases[1]["p95_ms"], 20_000.0);
    for field in [
        "start_ms",
        "end_ms",
        "error_rate",
        "p50_ms",
        "p99_ms",
        "max_ms",
    ] {
        assert!(phases[1][field].is_number(), "{field}");
    }

    let verdicts = json["verdicts"].as_array().unwrap();
    let ids: Vec<&str> = verdicts.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "faults.reached",
            "sla.p95.fault",
            "errors.rate.recovery",
            "errors.honest"
        ]
    );
    let outcomes: Vec<&str> = verdicts
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    // No fake's journal, so faults.reached cannot judge; the p95 fails (2.5 s and a 20 s hang
    // against 1 s); recovery had no errors; the hang makes one failure dishonest.
    assert_eq!(outcomes, ["not_applicable", "fail", "pass", "fail"]);
    assert_eq!(verdicts[3]["figure"], 1.0);
    assert_eq!(verdicts[3]["unit"], "requests");
    assert!(verdicts[3]["evidence"][0]
        .as_str()
        .unwrap()
        .starts_with("req-20 error=timeout"));

    // Assert: it reads back into the same Report
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);

    // Assert: evidence.json with the records file it names is the whole evidence
    let evidence_text = std::fs::read_to_string(out.join("evidence.json")).unwrap();
    let mut evidence_back: Evidence = serde_json::from_str(&evidence_text).unwrap();
    evidence_back.records.attach(&out).unwrap();
    assert_eq!(evidence_back, evidence);
}

#[test]
fn summary_md_has_a_row_per_verdict_and_per_phase() {
    let plan = plan();
    let evidence = evidence(&plan);
    let report = report::build(
        &plan,
        &meta(),
        &evidence,
        checks::evaluate(&evidence, &plan.expect),
    );
    let dir = tempfile::tempdir().unwrap();
    report::write_all(&report, &evidence, dir.path()).unwrap();

    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.starts_with("# faultline: outage — ❌ FAIL"), "{md}");
    assert!(md.contains("| Check | Outcome | Figure | Limit | Summary |"));
    assert!(md.contains("| `sla.p95.fault` | ❌ fail | 20 s | 1 s | p95 latency in the fault phase was 20 s, over the 1 s limit: 11 of 11 requests took longer. |"), "{md}");
    assert!(md.contains("| `errors.rate.recovery` | ✅ pass | 0% | 10% |"));
    assert!(md.contains("| `errors.honest` | ❌ fail | 1 request | 0 requests |"));
    assert!(md.contains("| recovery | 20 s–30 s | 10 | 0 | 0% | 350 ms | 350 ms | 350 ms |"));
    assert!(md.contains("### `errors.honest`"));
}

#[test]
fn console_table_ends_with_the_gate_line() {
    let plan = plan();
    let evidence = evidence(&plan);
    let failing = report::build(
        &plan,
        &meta(),
        &evidence,
        checks::evaluate(&evidence, &plan.expect),
    );
    let text = report::console_table(&failing);
    assert_eq!(
        text.lines().last().unwrap(),
        // faults.reached is not applicable: this evidence holds no fake's journal.
        "FAIL: 2 of 3 gates failed (sla.p95.fault, errors.honest); 1 not applicable"
    );

    let mut passing = failing.clone();
    for v in &mut passing.verdicts {
        v.outcome = Outcome::Pass;
    }
    passing.passed = true;
    let text = report::console_table(&passing);
    assert_eq!(text.lines().last().unwrap(), "PASS: all 4 gates passed");
}

#[test]
#[ignore = "prints the renderings for a person to look at"]
fn show() {
    let plan = plan();
    let evidence = evidence(&plan);
    let report = report::build(
        &plan,
        &meta(),
        &evidence,
        checks::evaluate(&evidence, &plan.expect),
    );
    println!(
        "{}\n-----\n{}",
        report::summary_markdown(&report),
        report::console_table(&report)
    );
}
