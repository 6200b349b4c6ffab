//! Conformance with the official SDKs: tests/python/llm_sdk_conformance.py drives the fake LLM
//! with the `openai` and `anthropic` Python packages (non-streaming, streaming with usage,
//! tool calls, base64 embeddings, models, error classes, retry-after-ms and x-should-retry),
//! the Responses API with `openai` (tests/python/llm_responses.py), Azure OpenAI's paths with
//! `AzureOpenAI` (tests/python/llm_azure.py), the Gemini API with `google-genai`
//! (tests/python/llm_gemini.py), and Bedrock Runtime with boto3 (tests/python/llm_bedrock.py).
//!
//! And the key: `faultline fake llm --api-key any` (the built binary) serves both SDKs with
//! arbitrary keys (tests/python/llm_any_key.py) and a call with no key at all; the journal
//! classes each attempt's key without keeping it, and the Ctrl-C summary names the attempts
//! that sent none. A fake that expects one key says in its 401 which and how to accept any;
//! the fakes of a scenario run accept any key while classing it against `{llm_key}`, for the
//! report's notes.
//!
//! The interpreter is `FAULTLINE_PYTHON`, else `<repo>/.venv/bin/python`, which `scripts/test`
//! provisions (scripts/provision/python.sh installs tests/python/requirements-*.txt).

mod common;

use common::{client, get_json, line_starting, python, spawn_fake_llm};
use std::time::{Duration, Instant};

use faultline::fakes::fault::Switchboard;
use faultline::fakes::journal::{ApiKeySent, Journal};
use faultline::fakes::llm::{self, ApiKey, LlmOptions};
use faultline::fakes::set::{FakeSet, FAKE_LLM_KEY};
use serde_json::{json, Value};

const KEY: &str = "sk-faultline-sdk";

/// Runs `tests/python/<script>` against a fake LLM with a control API; it fails on any failed
/// check and prints the script's `ok` lines.
async fn sdk_script_passes(script: &str) {
    let python = python();
    let fake = common::controlled_llm(KEY, 5).await;
    let run = common::python_script(script)
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
    assert!(stdout.contains("checks passed"), "{stdout}");
    println!("{stdout}");
}

#[tokio::test]
async fn the_official_openai_and_anthropic_sdks_work_against_the_fake() {
    sdk_script_passes("llm_sdk_conformance.py").await;
}

#[tokio::test]
async fn the_official_openai_sdk_speaks_the_responses_api_with_the_fake() {
    sdk_script_passes("llm_responses.py").await;
}

#[tokio::test]
async fn the_official_openai_sdk_reaches_the_fake_through_azure_paths() {
    sdk_script_passes("llm_azure.py").await;
}

#[tokio::test]
async fn the_aws_sdk_speaks_bedrock_runtime_with_the_fake() {
    sdk_script_passes("llm_bedrock.py").await;
}

#[tokio::test]
async fn googles_genai_sdk_speaks_the_gemini_api_with_the_fake() {
    sdk_script_passes("llm_gemini.py").await;
}

#[tokio::test]
async fn any_key_serves_the_official_sdks_and_a_keyless_call_and_the_journal_classes_them() {
    let mut fake = spawn_fake_llm(&["--api-key", "any"]).await;
    assert!(fake.key_line.contains("any"), "{}", fake.key_line);
    let control = fake.control.clone();

    let run = common::python_script("llm_any_key.py")
        .args([fake.base.clone(), control.clone()])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the SDK checks finish within 120 s")
        .expect("the SDK script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SDK checks failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let passed = stdout
        .lines()
        .filter(|line| line.starts_with("ok "))
        .count();
    assert_eq!(passed, 9, "{stdout}");
    let journal = get_json(&format!("{control}/journal/llm")).await;
    assert_eq!(journal["attempts"].as_array().unwrap().len(), 4);

    // SAFETY: signalling our own child by its pid.
    let pid = fake.child.id().expect("still running") as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    line_starting(&mut fake.lines, "fake llm: 4 attempts").await;
    let keyless = line_starting(&mut fake.lines, "fake llm:").await;
    let status = tokio::time::timeout(Duration::from_secs(10), fake.child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        keyless.starts_with("fake llm: 1 attempts sent no API key"),
        "{keyless}"
    );
}

#[tokio::test]
async fn a_fake_that_expects_one_key_says_which_and_how_to_accept_any() {
    let fake = llm::start(
        LlmOptions {
            api_key: "sk-only-this-one-0123".into(),
            seed: 1,
        },
        Switchboard::new(1).into(),
        Journal::new(Instant::now(), 100).into(),
    )
    .await
    .unwrap();
    let ask = |key: &'static str| {
        client()
            .post(format!("{}/v1/chat/completions", fake.base_url()))
            .bearer_auth(key)
            .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
    };

    let wrong = ask("sk-a-different-key-9999").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let message = wrong.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("Incorrect API key provided: ***9999."),
        "{message}"
    );
    assert!(message.contains("sk-o…0123, 21 characters"), "{message}");
    assert!(message.contains("--api-key any"), "{message}");
    assert!(!message.contains("sk-only-this-one-0123"), "{message}");
    assert_eq!(ask("sk-only-this-one-0123").await.unwrap().status(), 200);
    let classes: Vec<_> = fake
        .journal()
        .snapshot()
        .into_iter()
        .map(|a| a.api_key)
        .collect();
    assert_eq!(classes, [Some(ApiKeySent::Other), Some(ApiKeySent::Given)]);
}

#[tokio::test]
async fn a_runs_fake_llm_accepts_any_key_and_classes_it_against_the_key_it_gave() {
    let fakes = FakeSet::start(1, Instant::now(), None, None).await.unwrap();
    let llm = fakes.placeholders(0)["{llm}"].clone();
    let ask = |key: Option<&'static str>| {
        let mut request = client()
            .post(format!("{llm}/v1/chat/completions"))
            .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] }));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };

    let statuses = [
        ask(Some(FAKE_LLM_KEY)).await.unwrap().status(),
        ask(Some("sk-hard-coded-elsewhere")).await.unwrap().status(),
        ask(None).await.unwrap().status(),
    ];

    assert_eq!(statuses.map(|s| s.as_u16()), [200, 200, 200]);
    let classes: Vec<_> = fakes.attempts().into_iter().map(|a| a.api_key).collect();
    assert_eq!(
        classes,
        [
            Some(ApiKeySent::Given),
            Some(ApiKeySent::Other),
            Some(ApiKeySent::None)
        ]
    );
    assert_eq!(
        ApiKey::from_flag("ANY"),
        ApiKey::Any { given: None },
        "`--api-key any` is any case"
    );
    fakes.shutdown().await;
}
