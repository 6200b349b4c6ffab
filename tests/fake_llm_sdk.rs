//! Conformance with the official SDKs: tests/python/llm_sdk_conformance.py drives the fake LLM
//! with the `openai` and `anthropic` Python packages (non-streaming, streaming with usage,
//! tool calls, base64 embeddings, models, error classes, retry-after-ms and x-should-retry).
//!
//! The interpreter is `FAULTLINE_PYTHON`, else `<repo>/.venv/bin/python`, which `scripts/test`
//! provisions (scripts/provision/python.sh installs tests/python/requirements-*.txt).

mod common;

use common::python;
use std::time::Duration;

const KEY: &str = "sk-faultline-sdk";

#[tokio::test]
async fn the_official_openai_and_anthropic_sdks_work_against_the_fake() {
    let python = python();
    let fake = common::controlled_llm(KEY, 5).await;
    let run = common::python_script("llm_sdk_conformance.py")
        .args([fake.handle.base_url(), fake.control_url, KEY.to_owned()])
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
