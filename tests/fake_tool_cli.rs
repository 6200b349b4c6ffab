//! `faultline fake tool` end to end: the built binary as a child process on a loopback port,
//! driven with reqwest, stopped with SIGINT as Ctrl-C would.

mod common;

use common::client;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{json, Value};

/// A running `faultline fake tool …`; killed if a test fails before stopping it.
struct Fake {
    child: Child,
    base_url: String,
    /// Where its stderr goes (a file, so a chatty fake can never block on a full pipe).
    stderr: tempfile::NamedTempFile,
}

impl Fake {
    /// Starts `faultline fake tool <args>` and waits for the base URL it prints first.
    fn start(args: &[&str]) -> Fake {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::cargo_bin("faultline")
            .expect("the faultline binary is built")
            .args(["fake", "tool"])
            .args(args)
            .env_remove("FAULTLINE_LOG")
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .expect("faultline starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the base URL is printed");
        let base_url = line.trim().to_owned();
        assert!(
            base_url.starts_with("http://127.0.0.1:"),
            "printed {base_url:?}"
        );
        Fake {
            child,
            base_url,
            stderr,
        }
    }

    /// What it wrote to stderr so far.
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap()
    }

    fn port(&self) -> u16 {
        self.base_url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for a clean exit.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the fake did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn weather_on_port_zero_prints_its_real_port_and_stops_on_ctrl_c() {
    let mut fake = Fake::start(&["weather", "--port", "0"]);

    assert_ne!(fake.port(), 0);
    let response = client()
        .get(format!("{}/weather?city=Lisbon", fake.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["city"], "Lisbon");

    assert!(fake.interrupt().success());
}

#[tokio::test]
async fn tickets_listens_on_the_port_it_is_given() {
    // A port that was free a moment ago; the fake must take exactly it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fake = Fake::start(&["tickets", "--port", &port.to_string()]);

    assert_eq!(fake.base_url, format!("http://127.0.0.1:{port}"));
    let response = client()
        .post(format!("{}/tickets", fake.base_url))
        .header("Idempotency-Key", "k")
        .json(&json!({ "subject": "s", "body": "b" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn tickets_takes_its_shape_from_flags_and_sums_up_its_writes_on_ctrl_c() {
    let mut fake = Fake::start(&[
        "tickets",
        "--port",
        "0",
        "--path",
        "/v1/tickets",
        "--required",
        "subject,user",
        "--idempotency-header",
        "X-Idempotency-Key",
    ]);
    let write = |body: Value, key: Option<&'static str>| {
        let mut request = client()
            .post(format!("{}/v1/tickets", fake.base_url))
            .json(&body);
        if let Some(key) = key {
            request = request.header("X-Idempotency-Key", key);
        }
        request.send()
    };
    let ticket = json!({ "subject": "Refund [fl-00000007]", "user": "u_1" });

    let missing = write(json!({ "subject": "no user" }), None).await.unwrap();
    let first = write(ticket.clone(), Some("k-1")).await.unwrap();
    let replay = write(ticket.clone(), Some("k-1")).await.unwrap();
    let duplicate = write(ticket, None).await.unwrap();

    assert_eq!(missing.status(), 400);
    let error = missing.json::<Value>().await.unwrap();
    assert_eq!(
        error["error"],
        "missing required field 'user' (required: subject, user)"
    );
    assert_eq!(
        [first.status(), replay.status(), duplicate.status()].map(|s| s.as_u16()),
        [201, 201, 201]
    );
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert!(fake.interrupt().success());
    let stderr = fake.stderr();
    assert!(
        stderr.contains(
            "fake tickets: 4 writes: 2 created, 1 replayed, 0 refused (key reused), 1 invalid, \
             0 faulted; 1 duplicate side effect"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("request fl-00000007 created 2 times (idempotency keys: k-1, none)"),
        "{stderr}"
    );
}

#[test]
fn tickets_shape_flags_are_checked_before_anything_starts() {
    assert!(refused(&["tickets", "--path", "tickets"]).contains("starting with `/`"));
    assert!(refused(&["tickets", "--required", "a,,b"]).contains("give field names"));
    assert!(refused(&["tickets", "--idempotency-header", "a b"]).contains("not an HTTP header"));
    assert!(refused(&["weather", "--path", "/w"]).contains("shape `faultline fake tool tickets`"));
}

#[tokio::test]
async fn a_fault_flag_is_applied_from_the_first_request() {
    let fake = Fake::start(&[
        "tickets",
        "--fault",
        r#"{"kind":"status","code":503,"retry_after":"2s","route":"/tickets"}"#,
    ]);

    let response = client()
        .post(format!("{}/tickets", fake.base_url))
        .json(&json!({ "subject": "s", "body": "b" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
}

#[tokio::test]
async fn a_refuse_fault_flag_closes_the_printed_port() {
    let fake = Fake::start(&["weather", "--fault", r#"{"kind":"refuse"}"#]);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let result = client()
        .get(format!("{}/weather?city=Oslo", fake.base_url))
        .send()
        .await;

    assert!(result.unwrap_err().is_connect());
}

#[tokio::test]
async fn stubs_are_served_from_the_file_given() {
    let fake = Fake::start(&["stubs", "--stubs", "mocks/stubs.example.toml"]);

    let response = client()
        .get(format!("{}/orders?customer=c_1", fake.base_url))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["orders"][0]["id"], 42);
}

#[test]
fn a_bad_stub_file_fails_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[stub]]\npath = \"/a\"\n[stub.response]\nstatus = \"ok\"\n",
    )
    .unwrap();

    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args(["fake", "tool", "stubs", "--stubs"])
        .arg(&file)
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:4:10:", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn stubs_without_a_file_and_a_bad_fault_are_refused() {
    assert!(refused(&["stubs"]).contains("needs --stubs FILE"));
    assert!(refused(&["weather", "--fault", r#"{"kind":"explode"}"#]).contains("kinds: refuse"));
}

/// `faultline fake tool ARGS…`, which must refuse to start (exit 2); what it said.
fn refused(args: &[&str]) -> String {
    let output = Command::cargo_bin("faultline")
        .unwrap()
        .args(["fake", "tool"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}
