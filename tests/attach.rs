//! A service started by hand: `faultline fakes up` holds the fakes on fixed ports while the
//! service starts with the env they print, then `faultline scenario … --attach URL` drives it:
//! through `fakes up`'s control API while it runs, else with its own fakes on the same ports.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

mod common;
use common::{fakes_up, free_base, free_port, Reaped};

fn wait_healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::blocking_get(url) {
            if response {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

mod reqwest {
    /// A tiny blocking GET over a raw socket (the tests have no blocking HTTP client).
    pub fn blocking_get(url: &str) -> std::io::Result<bool> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = std::net::TcpStream::connect(host)?;
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer.starts_with("HTTP/1.1 200"))
    }
}

#[test]
#[serial]
fn a_service_started_by_hand_is_driven_through_the_fakes_fixed_ports() {
    let base = free_base();
    // 1. Hold the fakes, and read the env they print.
    let (mut up, env) = fakes_up(base);
    let printed_env = Command::cargo_bin("faultline")
        .unwrap()
        .args(["fakes", "env", "--base-port", &base.to_string()])
        .output()
        .unwrap();
    let printed: Vec<String> = String::from_utf8_lossy(&printed_env.stdout)
        .lines()
        .map(String::from)
        .collect();
    let held: Vec<String> = env.iter().map(|(n, v)| format!("export {n}={v}")).collect();
    assert_eq!(held, printed, "`fakes env` and `fakes up` disagree");

    // 2. Start the service by hand with that env (the reference target, here).
    let port = free_port();
    let _service = Reaped(
        Command::cargo_bin("faultline")
            .unwrap()
            .arg("reference-target")
            // Without its cache, as the outage scenario runs it: a cache would answer most
            // repeated questions and hide the outage.
            .envs(env.iter().filter(|(name, _)| name != "REDIS_URL").cloned())
            .env("PORT", port.to_string())
            .env("LLM_TIMEOUT_MS", "2500")
            .env("CIRCUIT_COOLDOWN_MS", "1000")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(&format!("http://127.0.0.1:{port}/healthz"));

    // 3. Stop `fakes up`: the scenario run holds the same ports itself.
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(up.0.id() as i32, libc::SIGINT) };
    let _ = up.0.wait();

    // 4. Drive the running service.
    let out = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args(["scenario", "outage", "--quick", "--attach"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--fake-port", &base.to_string(), "--out"])
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
    // No control API answered (fakes up was stopped), so the run held the ports itself.
    assert!(stderr.contains("starting the run's own fakes"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    // The outage reached the service through the fakes: requests failed, honestly.
    assert!(
        report["counts"]["failures"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    // Its logs were not captured, and the log checks say so instead of passing.
    let logs = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "logs.one_line_per_request")
        .unwrap();
    assert_eq!(logs["outcome"], "not_applicable", "{logs:#}");
    assert!(
        logs["summary"].as_str().unwrap().contains("attached"),
        "{logs:#}"
    );
}

/// The reference target (with `flaws`) started by hand against the fakes' env, without its
/// cache (a cache would answer repeated questions and hide LLM faults); returns it and its URL.
fn service(env: &[(String, String)], flaws: &[&str]) -> (Reaped, String) {
    let port = free_port();
    let mut command = Command::cargo_bin("faultline").unwrap();
    command.arg("reference-target");
    for flaw in flaws {
        command.args(["--flaw", flaw]);
    }
    let child = command
        .envs(env.iter().filter(|(name, _)| name != "REDIS_URL").cloned())
        .env("PORT", port.to_string())
        .env("LLM_TIMEOUT_MS", "2500")
        .env("CIRCUIT_COOLDOWN_MS", "1000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let service = Reaped(child);
    wait_healthy(&format!("{url}/healthz"));
    (service, url)
}

/// `faultline scenario NAME --quick --attach URL --fakes CONTROL`: exit code, stderr, report.json
/// and evidence.json.
fn attached_run(
    scenario: &str,
    url: &str,
    control: &str,
) -> (Option<i32>, String, serde_json::Value, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args([
            "scenario", scenario, "--quick", "--attach", url, "--fakes", control,
        ])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(out.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{stderr}"));
        serde_json::from_str(&text).unwrap()
    };
    let (report, mut evidence) = (read("report.json"), read("evidence.json"));
    // The journals stream to gzip JSON-lines files that evidence.json names
    // (`{"file": "attempts.jsonl.gz", ...}`): read them back in place, as arrays.
    for part in ["records", "attempts", "writes", "spans"] {
        if let Some(file) = evidence[part]["file"].as_str() {
            use std::io::BufRead;
            let gz = std::fs::File::open(out.path().join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}\n{stderr}"));
            // An empty stream is an empty file, not an empty gzip member.
            if gz.metadata().unwrap().len() == 0 {
                evidence[part] = serde_json::Value::Array(Vec::new());
                continue;
            }
            let items: Vec<serde_json::Value> =
                std::io::BufReader::new(flate2::read::MultiGzDecoder::new(gz))
                    .lines()
                    .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
                    .collect();
            evidence[part] = serde_json::Value::Array(items);
        }
    }
    (output.status.code(), stderr, report, evidence)
}

fn verdict<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no verdict {id}"))
}

/// `GET path` on the control API, as JSON.
fn control_get(control: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let host = control.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap()
}

#[test]
#[serial]
fn attached_runs_drive_the_fakes_that_fakes_up_holds_and_leave_them_clean() {
    let base = free_base();
    let (mut up, env) = fakes_up(base);
    let control = format!("http://127.0.0.1:{}", base + 9);
    let (_service, url) = service(&env, &[]);

    // Two runs in a row through the same `fakes up`, which is never restarted.
    for run in 1..=2 {
        let (code, output, report, evidence) = attached_run("outage", &url, &control);
        assert_eq!(code, Some(0), "run {run}: {output}");
        assert!(output.contains("fakes up` holds"), "run {run}: {output}");
        // The evidence came from the remote journals, aligned onto the load's clock: the
        // LLM's attempts span the run and the faulted ones fall in the fault windows.
        let attempts = evidence["attempts"].as_array().unwrap();
        let llm: Vec<&serde_json::Value> = attempts.iter().filter(|a| a["fake"] == "llm").collect();
        assert!(llm.len() > 20, "run {run}: {} llm attempts", llm.len());
        let timeline = evidence["timeline"].as_array().unwrap();
        let first_on = timeline[0]["at_ms"].as_f64().unwrap();
        let last_off = timeline.last().unwrap()["at_ms"].as_f64().unwrap();
        let faulted: Vec<f64> = llm
            .iter()
            .filter(|a| !a["fault"].is_null())
            .map(|a| a["at_ms"].as_f64().unwrap())
            .collect();
        assert!(!faulted.is_empty(), "run {run}: no faulted attempt");
        for at in &faulted {
            assert!(
                *at >= first_on - 50.0 && *at <= last_off + 50.0,
                "run {run}: a faulted attempt at {at} ms, outside the windows {first_on}..{last_off}"
            );
        }
        // Only this run's window: the run before (15 s of load, seconds ago) does not leak in;
        // what comes before the load is the readiness wait, well under 5 s.
        let earliest = llm
            .iter()
            .map(|a| a["at_ms"].as_f64().unwrap())
            .fold(f64::INFINITY, f64::min);
        assert!(
            earliest > -5_000.0,
            "run {run}: an attempt at {earliest} ms"
        );
        assert!(
            report["counts"]["failures"].as_u64().unwrap() > 0,
            "run {run}"
        );
        assert_eq!(
            report["counts"]["upstream_attempts"].as_u64().unwrap() as usize,
            attempts.len()
        );
        assert_eq!(
            verdict(&report, "retries.attempts")["outcome"],
            "pass",
            "run {run}"
        );
        // No rule is left on between runs, and `fakes up` still runs.
        let rules = control_get(&control, "/faults");
        for (fake, on) in rules.as_object().unwrap() {
            assert_eq!(
                on.as_array().unwrap().len(),
                0,
                "run {run}: {fake} left {on}"
            );
        }
        assert!(
            up.0.try_wait().unwrap().is_none(),
            "fakes up died in run {run}"
        );
    }
}

#[test]
#[serial]
fn an_attached_run_judges_the_remote_journals_so_a_retry_storm_fails_it() {
    let base = free_base();
    let (mut up, env) = fakes_up(base);
    let control = format!("http://127.0.0.1:{}", base + 9);

    // Healthy: it waits the retry-after the fakes asked for.
    let (healthy, url) = service(&env, &[]);
    let (code, output, report, _) = attached_run("rate-limit", &url, &control);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        verdict(&report, "retries.retry_after")["outcome"],
        "pass",
        "{output}"
    );
    drop(healthy);

    // Flawed: it retries at once, and only the fakes' journals can tell.
    let (_flawed, url) = service(&env, &["retry-storm"]);
    let (code, output, report, _) = attached_run("rate-limit", &url, &control);
    assert_eq!(code, Some(1), "{output}");
    let retry_after = verdict(&report, "retries.retry_after");
    assert_eq!(retry_after["outcome"], "fail", "{retry_after:#}");
    let rules = control_get(&control, "/faults");
    assert!(rules
        .as_object()
        .unwrap()
        .values()
        .all(|on| on.as_array().unwrap().is_empty()));
    assert!(up.0.try_wait().unwrap().is_none(), "fakes up died");
}

#[test]
fn a_control_api_that_is_not_faultlines_is_a_clear_error() {
    // Something answers at the control address, but not as faultline's control API.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Bounded: the thread gives up after 20 s if faultline never calls.
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf);
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args([
            "scenario",
            "outage",
            "--quick",
            "--attach",
            "http://127.0.0.1:9",
        ])
        .arg("--fakes")
        .arg(format!("http://{addr}"))
        .output()
        .unwrap();
    let _ = server.join();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not as faultline's control API"),
        "{stderr}"
    );
}

#[test]
fn a_control_api_on_another_machine_is_refused() {
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args(["scenario", "outage", "--attach", "http://127.0.0.1:9"])
        .args(["--fakes", "http://10.1.2.3:8409"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("only to this machine"), "{stderr}");
}

#[test]
fn attaching_to_another_machine_is_refused() {
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args(["scenario", "outage", "--attach", "http://10.1.2.3:8000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("only to this machine"), "{stderr}");
}

/// Waits for `child` to exit, at most `limit`; kills it (and fails) past that.
fn wait_bounded(child: &mut Reaped, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "still running after {limit:?}: a hang"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rules on now at the fakes, over every fake.
fn rules_on(control: &str) -> usize {
    control_get(control, "/faults")
        .as_object()
        .unwrap()
        .values()
        .map(|on| on.as_array().unwrap().len())
        .sum()
}

#[test]
#[serial]
fn an_attached_run_reads_the_tickets_ledger_so_retried_writes_fail_it() {
    let base = free_base();
    let (_up, env) = fakes_up(base);
    let control = format!("http://127.0.0.1:{}", base + 9);

    let (healthy, url) = service(&env, &[]);
    let (code, output, report, evidence) = attached_run("tool-writes", &url, &control);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        !evidence["writes"].as_array().unwrap().is_empty(),
        "{output}"
    );
    assert_eq!(verdict(&report, "writes.idempotent")["outcome"], "pass");
    drop(healthy);

    // Retried writes without their idempotency key: only the remote ledger shows the duplicates.
    let (_flawed, url) = service(&env, &["retry-writes"]);
    let (code, output, report, _) = attached_run("tool-writes", &url, &control);
    assert_eq!(code, Some(1), "{output}");
    let writes = verdict(&report, "writes.idempotent");
    assert_eq!(writes["outcome"], "fail", "{writes:#}");
}

/// `faultline scenario outage --quick --attach URL --fakes CONTROL`, running in the background.
fn spawn_attached_outage(url: &str, control: &str, out: &Path, stderr: Stdio) -> Reaped {
    Reaped(
        Command::cargo_bin("faultline")
            .unwrap()
            .args(["scenario", "outage", "--quick", "--attach", url])
            .args(["--fakes", control, "--quiet", "--out"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

#[test]
#[serial]
fn ctrl_c_in_an_attached_run_leaves_no_rule_on() {
    let base = free_base();
    let (mut up, env) = fakes_up(base);
    let control = format!("http://127.0.0.1:{}", base + 9);
    let (_service, url) = service(&env, &[]);
    let out = tempfile::tempdir().unwrap();
    let mut run = spawn_attached_outage(&url, &control, out.path(), Stdio::null());
    // Wait for the fault window (5 s into the quick outage) to be on at the fakes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rules_on(&control) == 0 {
        assert!(Instant::now() < deadline, "no rule was ever switched on");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGINT) };
    let code = wait_bounded(&mut run, Duration::from_secs(60));
    assert_eq!(code, Some(2), "an interrupted run exits 2");
    assert_eq!(rules_on(&control), 0, "a rule stayed on after Ctrl-C");
    assert!(up.0.try_wait().unwrap().is_none(), "fakes up died");
}

#[test]
#[serial]
fn fakes_that_stop_answering_mid_run_leave_gaps_not_a_hang() {
    let base = free_base();
    let (up, env) = fakes_up(base);
    let control = format!("http://127.0.0.1:{}", base + 9);
    let (_service, url) = service(&env, &[]);
    let out = tempfile::tempdir().unwrap();
    let mut run = spawn_attached_outage(&url, &control, out.path(), Stdio::piped());
    // Freeze `fakes up` (fakes and control API) after the warm-up requests before the load,
    // and before the first fault window, 5 s into it.
    std::thread::sleep(Duration::from_secs(3));
    let pid = up.0.id() as i32;
    // SAFETY: plain syscalls on our own child; SIGCONT below, and Reaped kills it at the end.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    struct Thaw(i32);
    impl Drop for Thaw {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe { libc::kill(self.0, libc::SIGCONT) };
        }
    }
    let _thaw = Thaw(pid);
    // 15 s of load, up to 10 s of drain, a few 3 s control calls: bounded well under 2 min.
    let code = wait_bounded(&mut run, Duration::from_secs(120));
    let mut stderr = String::new();
    use std::io::Read;
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    let gaps: Vec<&str> = report["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        gaps.iter()
            .any(|g| g.contains("could not switch llm") && g.contains("no answer within")),
        "{gaps:#?}"
    );
    assert!(
        gaps.iter().any(|g| g.contains("journal was not read")),
        "{gaps:#?}"
    );
    // It says how to clean up what it could not switch off.
    assert!(stderr.contains("curl -X DELETE"), "{stderr}");
}

// Serial: it squats on the base port free_base() would give a concurrent test's `fakes up`.
#[test]
#[serial]
fn busy_fake_ports_without_a_control_api_say_what_to_do() {
    // Something that is not `fakes up` holds the LLM fake's port.
    let base = free_base();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", base)).unwrap();
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args([
            "scenario",
            "outage",
            "--quick",
            "--attach",
            "http://127.0.0.1:9",
        ])
        .args(["--fake-port", &base.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("starting the run's own fakes")
            && stderr.contains("no control API answers")
            && stderr.contains(&format!("faultline fakes up --base-port {base}")),
        "{stderr}"
    );
}
