//! Conformance with the official SDKs: tests/python/llm_sdk_conformance.py drives the fake LLM
//! with the `openai` and `anthropic` Python packages (non-streaming, streaming with usage,
//! tool calls, base64 embeddings, models, error classes, retry-after-ms and x-should-retry).
//!
//! The interpreter is `FAULTLINE_PYTHON`, else `<repo>/.venv/bin/python`, which `scripts/test`
//! provisions (scripts/provision/python.sh installs tests/python/requirements-*.txt).

mod common;

use common::python;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::control::{self, ControlledFake};
use faultline::fakes::fault::Switchboard;
use faultline::fakes::journal::Journal;
use faultline::fakes::llm::{self, LlmOptions};

const KEY: &str = "sk-faultline-sdk";

#[tokio::test]
async fn the_official_openai_and_anthropic_sdks_work_against_the_fake() {
    let python = python();
    let board = Arc::new(Switchboard::new(5));
    let journal = Arc::new(Journal::new(Instant::now(), 10_000));
    let fake = llm::start(
        LlmOptions {
            api_key: KEY.into(),
            seed: 5,
        },
        board.clone(),
        journal.clone(),
    )
    .await
    .expect("fake llm starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    let fakes = vec![ControlledFake {
        name: "llm".into(),
        switchboard: board,
        journal,
    }];
    tokio::spawn(control::serve(listener, fakes, std::future::pending()));
    let run = common::python_script("llm_sdk_conformance.py")
        .args([fake.base_url(), control_url, KEY.to_owned()])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the SDK checks finish within 180 s")
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK checks failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    println!("{stdout}");
}
