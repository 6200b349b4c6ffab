//! Helpers the integration tests share. Each test file that needs them says `mod common;`
//! (each test binary uses some of them, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// The Python with the official SDKs, redis-py and the OpenTelemetry exporter: the one
/// `FAULTLINE_PYTHON` names, else the `.venv` that scripts/test provisions.
pub fn python() -> PathBuf {
    let python = std::env::var_os("FAULTLINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no Python at {}: run scripts/test (it creates .venv with every \
         tests/python/requirements-*.txt installed) or set FAULTLINE_PYTHON",
        python.display()
    );
    python
}

/// `program` run on `script`, killed if dropped, with no proxy between it and loopback (the
/// environment may name one).
fn loopback_command(
    program: impl AsRef<std::ffi::OsStr>,
    script: PathBuf,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .arg(script)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .kill_on_drop(true);
    command
}

/// `tests/python/<name>` run by [`python`], killed if dropped, with no proxy between it and
/// loopback.
pub fn python_script(name: &str) -> tokio::process::Command {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    loopback_command(python(), dir.join(name))
}

/// `tests/node/<name>` run by `node` (`FAULTLINE_NODE`, else the one on the PATH) in
/// tests/node, whose npm packages scripts/provision/node.sh installs.
pub fn node_script(name: &str) -> tokio::process::Command {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(
        dir.join("node_modules/openai/package.json").exists(),
        "no npm packages in {}: run scripts/test (scripts/provision/node.sh installs them with \
         npm ci)",
        dir.display()
    );
    let node = std::env::var_os("FAULTLINE_NODE").unwrap_or_else(|| "node".into());
    let mut command = loopback_command(node, dir.join(name));
    command.current_dir(dir);
    command
}

/// The fake LLM expecting `key`, with its control API (faults, journal) beside it.
pub struct ControlledLlm {
    pub handle: faultline::fakes::FakeHandle,
    pub control_url: String,
    pub journal: std::sync::Arc<faultline::fakes::journal::Journal>,
}

pub async fn controlled_llm(key: &str, seed: u64) -> ControlledLlm {
    use faultline::fakes::{control, fault::Switchboard, journal::Journal, llm};
    use std::sync::Arc;
    let board = Arc::new(Switchboard::new(seed));
    let journal = Arc::new(Journal::new(std::time::Instant::now(), 10_000));
    let options = llm::LlmOptions {
        api_key: key.into(),
        seed,
    };
    let handle = llm::start(options, board.clone(), journal.clone())
        .await
        .expect("fake llm starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    let fakes = vec![control::ControlledFake {
        name: "llm".into(),
        switchboard: board,
        journal: journal.clone(),
    }];
    tokio::spawn(control::serve(listener, fakes, std::future::pending()));
    ControlledLlm {
        handle,
        control_url,
        journal,
    }
}

/// Reads `lines` (a child's stdout) until one starts with `prefix` (after trimming), within
/// 20 s; that line, trimmed.
pub async fn line_starting(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    prefix: &str,
) -> String {
    let read = async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("stdout ended before a line starting {prefix:?}"));
            if line.trim_start().starts_with(prefix) {
                return line.trim().to_owned();
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("no line starting {prefix:?} within 20 s"))
}

/// `faultline fake llm --port 0 --control-port 0 ARGS…`, running, with what it printed first.
pub struct FakeLlmProcess {
    pub child: tokio::process::Child,
    /// The rest of its stdout.
    pub lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its `api key: …` line.
    pub key_line: String,
    /// The control API's URL.
    pub control: String,
}

/// Starts the built `faultline fake llm` with `args` on ephemeral ports and reads where it
/// listens; killed when dropped.
pub async fn spawn_fake_llm(args: &[&str]) -> FakeLlmProcess {
    use assert_cmd::cargo::CommandCargoExt;
    use tokio::io::AsyncBufReadExt;
    let mut command: tokio::process::Command = std::process::Command::cargo_bin("faultline")
        .unwrap()
        .into();
    let mut child = command
        .args(["fake", "llm", "--port", "0", "--control-port", "0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("faultline starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = line_starting(&mut lines, "fake llm listening on").await;
    let base = listening.rsplit(' ').next().unwrap().to_owned();
    let key_line = line_starting(&mut lines, "api key:").await;
    let control = line_starting(&mut lines, "control:").await;
    let control = control.split_whitespace().nth(1).unwrap().to_owned();
    FakeLlmProcess {
        child,
        lines,
        base,
        key_line,
        control,
    }
}

/// Kills a child when the test ends, however it ends.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A base port with ten free loopback ports above it.
pub fn free_base() -> u16 {
    for base in (21000..60000).step_by(97) {
        let free = (0..10).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no ten free loopback ports in a row");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `faultline fakes up --base-port base`, held until dropped; returns it with the env it printed.
pub fn fakes_up(base: u16) -> (Reaped, Vec<(String, String)>) {
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
    (up, env)
}

/// An HTTP client that never goes through a proxy: everything the tests reach is loopback.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The JSON `url` answers with.
pub async fn get_json(url: &str) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// 30 s of chat load with the LLM answering 503 from 10 s to 20 s, held to a 1 s p95 in the
/// fault phase, judged on the sla and errors families only (the others are tested beside
/// their code in src/checks). Report tests start from it and change what they are about.
pub fn outage_plan() -> faultline::scenario::Plan {
    use faultline::evidence::Phase;
    use faultline::fakes::fault::Fault;
    use faultline::scenario::{
        ErrorExpectations, Expectations, FakeName, FaultWindow, Flow, Load, PhaseLimits, Plan,
        TargetSpec,
    };
    use std::collections::BTreeMap;
    use std::time::Duration;

    Plan {
        name: "outage".into(),
        description: "The LLM provider answers 503 for 10 s.".into(),
        source: "built-in:outage".into(),
        seed: 42,
        quick: false,
        load: Load {
            executor: Default::default(),
            users: 4,
            duration: Duration::from_secs(30),
            think_time: Duration::from_millis(200),
            request_timeout: Duration::from_secs(20),
            quick_scale: 0.2,
            secrets: Vec::new(),
            flows: vec![Flow {
                name: "chat".into(),
                weight: 1,
                messages: vec!["What is the weather in Paris?".into()],
                kind: Default::default(),
                request: Default::default(),
            }],
        },
        target: TargetSpec {
            ready_path: "/health".into(),
            ready_timeout: Duration::from_secs(5),
            metrics_path: None,
            ..TargetSpec::reference(BTreeMap::new(), vec![])
        },
        api: Default::default(),
        fakes: Default::default(),
        faults: vec![FaultWindow {
            fake: FakeName::Llm,
            route: None,
            start: Duration::from_secs(10),
            end: Duration::from_secs(20),
            rate: 1.0,
            first_attempts: None,
            fault: Fault::status(503, None),
        }],
        expect: Expectations {
            phases: BTreeMap::from([(
                Phase::Fault,
                PhaseLimits {
                    p95: Some(Duration::from_secs(1)),
                    error_rate: None,
                },
            )]),
            errors: ErrorExpectations::default(),
            skip: Expectations::FAMILIES[2..]
                .iter()
                .map(|f| f.to_string())
                .collect(),
            ..Expectations::default()
        },
    }
}

/// Polls `attempt` every 20 ms until it gives `Some`, and returns that; panics naming `what`
/// after `within`. For state that settles asynchronously (a listener closing, a journal
/// entry written when a client goes), in place of a fixed sleep that is either too long or,
/// on a loaded machine, too short.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = attempt().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every YAML document in `text`, as JSON values, read by the test Python's PyYAML (which
/// kubernetes-validate brings).
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    use std::io::Write;
    let mut child = Command::new(python())
        .args([
            "-c",
            "import sys, json, yaml; json.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "PyYAML could not read:\n{text}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The bin folder of the test Python's virtualenv (`python()`'s), for a `PATH` that runs the
/// Python example from it.
pub fn venv_bin() -> PathBuf {
    python().parent().unwrap().to_path_buf()
}

/// A tool installed beside the test Python (scripts/provision/python.sh).
pub fn venv_tool(name: &str) -> PathBuf {
    let tool = python().with_file_name(name);
    assert!(
        tool.exists(),
        "no {}: run scripts/test (it installs tests/python/requirements-*.txt)",
        tool.display()
    );
    tool
}
