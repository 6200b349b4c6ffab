//! Helpers the integration tests share. Each test file that needs them says `mod common;`
//! (each test binary uses some of them, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::path::PathBuf;

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
