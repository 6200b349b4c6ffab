//! A service started by hand: `faultline fakes up` holds the fakes on fixed ports while the
//! service starts with the env they print, then `faultline scenario … --attach URL` drives it
//! with its own fakes on those same ports.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

/// Kills a child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A base port with ten free loopback ports above it.
fn free_base() -> u16 {
    for base in (21000..60000).step_by(97) {
        let free = (0..10).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no ten free loopback ports in a row");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let mut up = Reaped(
        Command::cargo_bin("faultline")
            .unwrap()
            .args(["fakes", "up", "--base-port", &base.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut env = Vec::new();
    for line in BufReader::new(up.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            env.push((name.to_string(), value.to_string()));
        }
        if line.starts_with("# Ctrl-C") {
            break;
        }
    }
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
