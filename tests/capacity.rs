//! `faultline capacity` (issue 14 item 5) against services whose capacity is known without
//! faultline: the knee it finds must bracket that capacity within the precision it claims.
//! Then the command end to end through the binary: bad input is a clear exit 2, and Ctrl-C
//! mid-search still writes what was measured.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline::capacity::search::{Bounds, Conclusion, Precision};
use faultline::capacity::{self, step::StepVerdict};
use faultline::run::RunOptions;
use tokio::sync::{watch, Semaphore};

/// How long the known-capacity service holds each request it takes.
const HOLD: Duration = Duration::from_millis(200);

/// A chat service with `slots` workers, each holding a request for [`HOLD`]: a request that
/// finds every worker busy gets 503 at once (load shedding). Its capacity is `slots / HOLD`
/// arrivals per second, by Little's law: with evenly spaced arrivals below it, at most
/// `ceil(rate × HOLD) <= slots` requests are ever in flight and none is shed; above it, a
/// share of every second's arrivals is.
async fn known_capacity_service(slots: usize) -> String {
    let workers = Arc::new(Semaphore::new(slots));
    let chat = post(move |Json(_body): Json<serde_json::Value>| {
        let workers = workers.clone();
        async move {
            let Ok(_worker) = workers.try_acquire() else {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "error": "overloaded, try again later" })),
                );
            };
            tokio::time::sleep(HOLD).await;
            (
                StatusCode::OK,
                Json(serde_json::json!({ "answer": "Paris." })),
            )
        }
    });
    let app = Router::new()
        .route("/api/chat", chat)
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A 2 s scenario against `url`: a fault window in the middle (the fake LLM slowed, which this
/// service does not call: the timeline still runs), and no request may fail in any phase.
/// Only the latency and error-rate gates judge: the service has no logs or metrics to read.
fn scenario(url: &str) -> faultline::scenario::Plan {
    let text = format!(
        r#"name = "known-capacity"
seed = 7

[load]
executor = "constant_rate"
rate = 1
duration = "2s"
request_timeout = "5s"

[[load.flows]]
name = "ask"
messages = ["What is the capital of France?"]

[target]
url = "{url}"
ready_path = "/health"

[[faults]]
fake = "llm"
start = "500ms"
end = "1500ms"
kind = "delay"
delay = "300ms"

[expect.baseline]
error_rate = 0.0
[expect.fault]
error_rate = 0.0
[expect.recovery]
error_rate = 0.0

[expect]
skip = ["errors.honest", "retries", "writes", "fallback", "recovery", "logs", "metrics", "cost", "agent", "stream", "traces"]
"#
    );
    faultline::scenario::parse_scenario(&text, "known-capacity.toml").unwrap()
}

async fn find_knee(slots: usize, out: &Path) -> capacity::report::CapacityReport {
    let url = known_capacity_service(slots).await;
    let bounds = Bounds::new(5.0, 200.0, Precision::Relative(0.1), 50_000.0).unwrap();
    let options = RunOptions {
        // The service calls no fake, so the probe's "the target never called X" findings
        // are expected: go on, as `--allow-gaps` does.
        allow_gaps: true,
        ..RunOptions::default()
    };
    let (_keep, interrupt) = watch::channel(false);
    capacity::search(&scenario(&url), bounds, &options, out, interrupt, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_knee_brackets_a_known_capacity_within_the_precision() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // Two services, 15/s and 30/s: the knee must follow the capacity, not the search's path.
    let (small_dir, large_dir) = (dir.path().join("small"), dir.path().join("large"));
    let (small, large) = tokio::join!(find_knee(3, &small_dir), find_knee(6, &large_dir));
    eprintln!("two searches took {:?}", started.elapsed());
    for (report, capacity) in [(small, 15.0), (large, 30.0)] {
        let table = capacity::report::console(&report);
        eprintln!("{table}");
        let Conclusion::Knee {
            highest_pass,
            lowest_fail,
            precise: true,
        } = report.conclusion
        else {
            panic!("no knee for capacity {capacity}/s:\n{table}");
        };
        // Above the capacity requests are shed whatever the machine does: no pass there.
        assert!(highest_pass < capacity, "{capacity}/s:\n{table}");
        // At or below it, only a stall of the service's timers longer than 25% of HOLD (50 ms)
        // could shed one; a 2-core CI machine stalls far less.
        assert!(lowest_fail >= 0.75 * capacity, "{capacity}/s:\n{table}");
        assert!(lowest_fail - highest_pass <= 0.1 * highest_pass, "{table}");
        assert_eq!(report.exit_code, 0);
        // What failed first is the error-rate gate, and the steps above the knee were shed.
        assert!(
            report
                .knee
                .first_failed_gates
                .iter()
                .any(|g| g.starts_with("errors.rate.")),
            "{:?}",
            report.knee
        );
        let shed = report
            .steps
            .iter()
            .filter(|s| s.verdict == StepVerdict::Fail)
            .all(|s| s.phases.iter().any(|p| p.failures > 0));
        assert!(shed, "{table}");
        // Every step kept its own reports.
        for step in &report.steps {
            assert!(step.dir.as_ref().unwrap().join("report.json").exists());
        }
    }
}

fn faultline() -> Command {
    let mut command = Command::cargo_bin("faultline").expect("the faultline binary is built");
    command.env_remove("FAULTLINE_LOG");
    command
}

#[test]
fn bad_input_is_a_clear_exit_2_before_any_run() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["outage", "--min", "20", "--max", "10"],
            "--min 20 is above --max 10",
        ),
        (
            vec!["outage", "--min", "0"],
            "--min is 0; it must be more than 0",
        ),
        (vec!["outage", "--min", "-5"], "--min is -5"),
        (vec!["outage", "--precision", "150%"], "less than 100%"),
        (vec!["outage", "--precision", "fast"], "write a share (10%)"),
        (vec!["no-such-scenario"], "no-such-scenario"),
    ] {
        let output = faultline()
            .arg("capacity")
            .args(&args)
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?}: expected {says:?} in {stderr}"
        );
    }
    // Nothing ran: no step directory was made.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// A short scenario against the reference target with a fault window: each step lasts 2 s.
const SHORT: &str = r#"name = "short"
seed = 7

[load]
users = 2
duration = "2s"
think_time = "250ms"
request_timeout = "10s"

[[load.flows]]
name = "ask"
messages = ["How do I reset my password?"]

[[faults]]
fake = "llm"
route = "/v1/chat/completions"
start = "500ms"
end = "1500ms"
kind = "delay"
delay = "100ms"

[expect.fault]
p95 = "5s"

# A 0.5 s recovery phase holds too few requests for recovery.time's consecutive windows.
[expect]
skip = ["recovery"]
"#;

#[test]
fn ctrl_c_mid_search_stops_it_and_writes_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("short.toml");
    std::fs::write(&scenario, SHORT).unwrap();
    let out = dir.path().join("out");
    let mut child = faultline()
        .args(["capacity", "--min", "2", "--max", "64", "--out"])
        .arg(&out)
        .arg(&scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the second step has started: the first is done and on disk.
    let second = out.join("step-02-4-per-s");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !second.exists() {
        assert!(Instant::now() < deadline, "the second step never started");
        assert!(child.try_wait().unwrap().is_none(), "ended before step 2");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("capacity.json")).unwrap()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["conclusion"]["kind"], "unfinished");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps[0]["rate"], 2.0);
    assert_eq!(steps[0]["verdict"], "pass", "{stdout}\n{stderr}");
    assert!(steps.len() <= 2, "{stdout}");
    // The page draws the measured step on the chart, marked pass.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(r#"<svg id="capacity-p95""#));
    assert!(
        html.contains(r#"class="step pass" data-rate="2""#),
        "{html}"
    );
}
