//! Distributed runs end to end through the real binary (issue 18): `scenario --workers 2`
//! against the reference target judges as one process does, with exact totals and latency
//! percentiles from the merged histograms within HdrHistogram's precision of the union of
//! records; a worker killed mid-run is named with its lost share and the run follows the
//! invalid-run rule; a wrong token is refused; a worker refuses a plan whose target is not
//! allowed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

fn faultline() -> Command {
    let mut command = Command::cargo_bin("faultline").expect("the faultline binary is built");
    command
        .env_remove("FAULTLINE_LOG")
        .env_remove("FAULTLINE_COORDINATOR_TOKEN");
    command
}

/// 4 s at 40 arrivals/s against the reference target, the LLM 200 ms slower from 1.5 s to
/// 2.5 s: every phase holds some 40 requests, and each arrival is due at the same instant
/// whichever process sends it. (A 503 window was tried first: the reference target's circuit
/// breaker then makes retries.retryable sit at its limit, and come out either way in one
/// process too, so it cannot show equivalence.)
fn open_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("open.toml");
    std::fs::write(
        &path,
        "name = \"distributed\"\nseed = 7\n\n[load]\nexecutor = \"constant_rate\"\nrate = 40\n\
         duration = \"4s\"\nrequest_timeout = \"10s\"\n\n[[load.flows]]\nname = \"ask\"\n\
         weight = 3\nmessages = [\"How do I reset my password?\", \"What plans do you offer?\"]\n\n\
         [[load.flows]]\nname = \"stream\"\nkind = \"stream\"\n\
         messages = [\"Explain the refund policy.\"]\n\n\
         [[faults]]\nfake = \"llm\"\nstart = \"1500ms\"\nend = \"2500ms\"\nkind = \"delay\"\n\
         delay = \"200ms\"\n",
    )
    .unwrap();
    path
}

/// 4 s of 4 closed users, for killing one of two workers mid-run.
fn closed_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("closed.toml");
    std::fs::write(
        &path,
        "name = \"distributed-closed\"\nseed = 7\n\n[load]\nusers = 4\nduration = \"4s\"\n\
         think_time = \"100ms\"\nrequest_timeout = \"10s\"\n\n[[load.flows]]\nname = \"ask\"\n\
         messages = [\"How do I reset my password?\"]\n",
    )
    .unwrap();
    path
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

fn outcomes(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every record of a run, read from its records.jsonl.gz.
fn records(out: &Path) -> Vec<faultline::evidence::Record> {
    faultline::evidence::RecordStore::open(&out.join("records.jsonl.gz"))
        .unwrap()
        .iter()
        .collect()
}

#[test]
#[serial]
fn two_local_workers_judge_as_one_process_with_exact_totals_and_merged_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = open_scenario(dir.path());
    let run = |out: &Path, workers: Option<&str>, flaw: Option<&str>| {
        let mut command = faultline();
        command.args(["scenario", "--quiet", "--out"]).arg(out);
        if let Some(flaw) = flaw {
            command.args(["--flaw", flaw]);
        }
        if let Some(n) = workers {
            command.args(["--workers", n]);
        }
        let output = command.arg(&scenario).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // Judged the same when a gate fails: the target's request counter lies, and
    // metrics.truth compares it with the requests the (merged) load sent.
    let (one_dir, two_dir) = (dir.path().join("lying1"), dir.path().join("lying2"));
    let (one_code, one_err) = run(&one_dir, None, Some("lying-metrics"));
    let (two_code, two_err) = run(&two_dir, Some("2"), Some("lying-metrics"));
    assert_eq!(
        (one_code, two_code),
        (Some(1), Some(1)),
        "{one_err}\n{two_err}"
    );
    let (one, two) = (report(&one_dir), report(&two_dir));
    assert_eq!(outcomes(&one)["metrics.truth"], "fail");
    assert_eq!(outcomes(&two), outcomes(&one), "{two_err}");

    // And when they pass: metrics.truth then says the target counted every merged request.
    let (one_dir, two_dir) = (dir.path().join("one"), dir.path().join("two"));
    let (one_code, one_err) = run(&one_dir, None, None);
    let (two_code, two_err) = run(&two_dir, Some("2"), None);
    assert_ne!(one_code, Some(2), "{one_err}");
    assert_eq!(
        two_code, one_code,
        "one process: {one_err}\ntwo workers: {two_err}"
    );
    let (one, two) = (report(&one_dir), report(&two_dir));
    assert_eq!(outcomes(&one)["metrics.truth"], "pass");
    assert_eq!(outcomes(&two), outcomes(&one), "{two_err}");

    // Exact totals: the schedule's 160 arrivals, every one sent once, each request id once.
    assert_eq!(one["load"]["asked"], 160);
    assert_eq!(two["load"]["asked"], one["load"]["asked"]);
    assert_eq!(two["load"]["sent"], 160);
    assert_eq!(two["counts"]["requests"], 160);
    let workers = two["load"]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    assert_eq!(
        workers[0]["sent"].as_u64().unwrap() + workers[1]["sent"].as_u64().unwrap(),
        160
    );
    assert!(workers.iter().all(|w| w["lost"].is_null()), "{workers:?}");
    let union = records(&two_dir);
    assert_eq!(union.len(), 160);
    let mut ids: Vec<&str> = union.iter().map(|r| r.request_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 160, "request ids collided across workers");
    // Each arrival went out with the flow and intended time the one-process run gave it.
    let by_time = |records: &[faultline::evidence::Record]| {
        let mut v: Vec<(i64, String)> = records
            .iter()
            .map(|r| ((r.at_ms * 10.0).round() as i64, r.flow.clone()))
            .collect();
        v.sort();
        v
    };
    let (one_times, two_times) = (by_time(&records(&one_dir)), by_time(&union));
    let misplaced = one_times
        .iter()
        .zip(&two_times)
        .filter(|((a, fa), (b, fb))| (a - b).abs() > 20 || fa != fb)
        .count();
    assert_eq!(
        misplaced, 0,
        "arrivals differ from the one-process schedule"
    );

    // Percentiles from the merged histograms (report.json) against the union's records.
    let cells: Vec<faultline::evidence::EncodedCell> =
        serde_json::from_value(two["latency_histograms"].clone()).unwrap();
    let summary = faultline::evidence::Summary::decode(&cells).unwrap();
    let mut merged = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for cell in summary.cells.values() {
        merged.add(&cell.latency_us).unwrap();
    }
    assert_eq!(merged.len(), 160);
    let mut exact: Vec<u64> = union
        .iter()
        .map(|r| (r.latency_ms * 1000.0).round() as u64)
        .collect();
    exact.sort_unstable();
    for q in [0.50, 0.95, 0.99] {
        let rank = ((q * exact.len() as f64).ceil() as usize).max(1) - 1;
        let (figure, truth) = (merged.value_at_quantile(q), exact[rank]);
        // 3 significant figures: a value is stored within 0.1% of itself.
        let precision = truth as f64 * 0.001 + 1.0;
        assert!(
            (figure as f64 - truth as f64).abs() <= precision,
            "p{}: merged {figure} us, union {truth} us",
            q * 100.0
        );
    }
}

#[test]
#[serial]
fn a_worker_killed_mid_run_is_named_with_its_lost_share_and_the_rule_decides() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = closed_scenario(dir.path());
    // Half the load lost: past the default 10%, invalid (exit 2). With --max-lost-share 0.6
    // the same loss is within the limit: the run is judged, and the worker still named.
    for (limit, invalid) in [(None, true), (Some("0.6"), false)] {
        let out = dir.path().join(format!("kill-{invalid}"));
        let mut command = faultline();
        command
            .args(["scenario", "--workers", "2", "--out"])
            .arg(&out)
            .arg(&scenario)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = limit {
            command.args(["--max-lost-share", limit]);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut said = Vec::new();
        let mut pid = None;
        while pid.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("worker pids");
            pid = line
                .strip_prefix("faultline: load worker 1 started (pid ")
                .and_then(|rest| rest.trim_end_matches(')').parse::<i32>().ok());
            said.push(line);
        }
        // Mid-run: the load starts once the target is ready and both workers joined.
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the load starts");
            let started = line.contains("the load starts on 2 workers");
            said.push(line);
            if started {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(2500));
        // SAFETY: kill(2) on the pid of a child of our child; no memory is touched.
        assert_eq!(unsafe { libc::kill(pid.unwrap(), libc::SIGKILL) }, 0);
        let status = child.wait().unwrap();
        said.extend(rx.try_iter());
        let said = said.join("\n");
        let report = report(&out);
        let workers = report["load"]["workers"].as_array().unwrap();
        let lost = workers[1]["lost"].as_str().unwrap_or_default();
        assert!(lost.contains("exited (signal: 9"), "{lost}\n{said}");
        assert_eq!(workers[1]["share"], 0.5);
        assert!(workers[0]["lost"].is_null(), "{workers:?}");
        let markdown = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(markdown.contains("worker 1 LOST"), "{markdown}");
        if invalid {
            assert_eq!(status.code(), Some(2), "{said}");
            let why = report["invalid"].as_str().unwrap();
            assert!(
                why.contains("worker 1 (50.0%)") && why.contains("10.0%"),
                "{why}"
            );
        } else {
            assert_ne!(status.code(), Some(2), "{said}");
            assert!(report["invalid"].is_null(), "{report:#}");
        }
    }
}

/// A free loopback port for a coordinator.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
#[serial]
fn a_wrong_token_is_refused_and_the_right_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = closed_scenario(dir.path());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "right-token\n").unwrap();
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let mut coordinator = faultline()
        .args([
            "coordinate",
            "--quiet",
            "--workers",
            "1",
            "--join-timeout",
            "20s",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--token-file"])
        .arg(&token_file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(&scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let worker = |token: &str| {
        faultline()
            .args(["worker", "--quiet", "--wait", "30s", "--coordinator", &url])
            .env("FAULTLINE_COORDINATOR_TOKEN", token)
            .output()
            .unwrap()
    };
    let refused = worker("wrong-token");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("401") && stderr.contains("shared token"),
        "{stderr}"
    );
    let accepted = worker("right-token");
    assert_eq!(accepted.status.code(), Some(0), "{accepted:?}");
    let status = coordinator.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut coordinator.stderr.take().unwrap(), &mut said).unwrap();
    assert_ne!(status.code(), Some(2), "{said}");
    let report = report(&dir.path().join("out"));
    assert_eq!(
        report["load"]["workers"][0]["lost"],
        serde_json::Value::Null
    );
    assert!(report["counts"]["requests"].as_u64().unwrap() > 0);
}

/// A coordinator stand-in (wiremock) whose plan sends load to `target`.
async fn coordinator_planning(target: &str) -> wiremock::MockServer {
    use faultline::distributed::protocol::{WireLoad, WorkPlan};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    let plan = WorkPlan {
        scenario: "elsewhere".into(),
        count: 1,
        start_at_ms: 0.0,
        load: WireLoad {
            base_url: target.into(),
            api: faultline::scenario::api::Api::default(),
            executor: faultline::scenario::Executor::Closed,
            users: 1,
            duration: Duration::from_secs(1),
            think_time: Duration::from_millis(100),
            request_timeout: Duration::from_secs(2),
            flows: faultline::scenario::load_scenario("outage")
                .unwrap()
                .load
                .flows,
            seed: 7,
        },
        phases: Vec::new(),
    };
    for (verb, route, body) in [
        ("GET", "/clock", serde_json::json!({ "now_ms": 0.0 })),
        ("POST", "/join", serde_json::json!({})),
        ("GET", "/plan", serde_json::to_value(&plan).unwrap()),
        ("POST", "/heartbeat", serde_json::json!({ "stop": false })),
        ("POST", "/results/0", serde_json::json!({})),
    ] {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    server
}

#[tokio::test]
async fn a_worker_refuses_a_plan_whose_target_is_not_allowed() {
    // Nothing listens at 10.0.0.1 for this test: the worker must refuse before sending.
    let outside = coordinator_planning("http://10.0.0.1:80").await;
    let output = faultline()
        .args(["worker", "--token", "t", "--coordinator", &outside.uri()])
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing the coordinator's plan") && stderr.contains("[network] allow"),
        "{stderr}"
    );
    let asked: Vec<String> = outside
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(
        !asked.iter().any(|p| p.starts_with("/results")),
        "{asked:?}"
    );

    // The same plan aimed at this machine is taken: it runs and reports.
    let target = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "answer": "ok" })),
        )
        .mount(&target)
        .await;
    let inside = coordinator_planning(&target.uri()).await;
    let output = faultline()
        .args(["worker", "--token", "t", "--coordinator", &inside.uri()])
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(!target.received_requests().await.unwrap().is_empty());

    // A faultline.toml range that does not hold the target changes nothing.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("faultline.toml"),
        "[network]\nallow = [\"192.168.0.0/16\"]\n",
    )
    .unwrap();
    let output = faultline()
        .args(["worker", "--token", "t", "--coordinator", &outside.uri()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("10.0.0.1 is not in them"), "{stderr}");
}

#[test]
fn a_network_range_that_is_not_one_is_refused_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faultline.toml");
    std::fs::write(
        &config,
        "[network]\nallow = [\"10.0.0.0/8\", \"10.0.0/8\"]\n",
    )
    .unwrap();
    let output = faultline()
        .args(["validate", "outage", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("faultline.toml:2:24") && stderr.contains("CIDR"),
        "{stderr}"
    );
}

#[test]
fn a_coordinator_without_a_token_or_serving_others_a_loopback_target_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = closed_scenario(dir.path());
    let output = faultline()
        .args(["coordinate", "--workers", "1"])
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs a shared token"), "{stderr}");

    // Listening beyond loopback means workers elsewhere, which cannot reach a target the
    // coordinator starts on its own loopback.
    let output = faultline()
        .args(["coordinate", "--workers", "1", "--listen", "0.0.0.0:0"])
        .env("FAULTLINE_COORDINATOR_TOKEN", "t")
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach") && stderr.contains("--attach"),
        "{stderr}"
    );
}
