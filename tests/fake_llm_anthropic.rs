//! Anthropic's Messages API on the fake LLM, over real sockets: its message shape, its named
//! stream events, `x-api-key` auth, `request-id`, and its error shape for injected faults.

use std::sync::Arc;
use std::time::Instant;

use faultline::fakes::fault::{parse_rule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::llm::{self, LlmOptions};
use faultline::fakes::FakeHandle;
use serde_json::{json, Value};

const KEY: &str = "sk-ant-faultline-test";

async fn start_llm() -> FakeHandle {
    llm::start(
        LlmOptions {
            api_key: KEY.into(),
            seed: 42,
        },
        Arc::new(Switchboard::new(7)),
        Arc::new(Journal::new(Instant::now(), 1000)),
    )
    .await
    .expect("fake llm starts")
}

async fn messages(fake: &FakeHandle, key: &str, body: Value) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/v1/messages", fake.base_url()))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("messages request is answered")
}

fn ask(text: &str, stream: bool) -> Value {
    json!({ "model": "claude-3-5-haiku-latest", "max_tokens": 256, "stream": stream,
            "system": "Be brief.", "messages": [{ "role": "user", "content": text }] })
}

#[tokio::test]
async fn a_message_answers_in_anthropics_shape_with_a_request_id() {
    let fake = start_llm().await;

    let response = messages(&fake, KEY, ask("hello there", false)).await;

    assert_eq!(response.status(), 200);
    assert!(response.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    assert!(response
        .headers()
        .contains_key("anthropic-ratelimit-requests-remaining"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["content"][0]["type"], "text");
    assert!(!body["content"][0]["text"].as_str().unwrap().is_empty());
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_streamed_message_sends_the_named_events_in_order() {
    let fake = start_llm().await;

    let text = messages(&fake, KEY, ask("hello there", true))
        .await
        .text()
        .await
        .unwrap();

    let names: Vec<&str> = text
        .split("\n\n")
        .filter_map(|frame| frame.strip_prefix("event: ")?.lines().next())
        .collect();
    let mut distinct = names.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(
        names
            .iter()
            .filter(|n| **n == "content_block_delta")
            .count()
            > 1
    );
}

#[tokio::test]
async fn a_wrong_x_api_key_gets_anthropics_authentication_error() {
    let fake = start_llm().await;

    let response = messages(&fake, "sk-wrong", ask("hi", false)).await;

    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn injected_429_and_529_come_in_anthropics_error_shape() {
    let fake = start_llm().await;

    for (code, kind) in [(429, "rate_limit_error"), (529, "overloaded_error")] {
        fake.switchboard()
            .activate(parse_rule(&format!(r#"{{"kind":"status","code":{code}}}"#), 1).unwrap());
        let response = messages(&fake, KEY, ask("hi", false)).await;
        assert_eq!(response.status(), code);
        assert!(response.headers().contains_key("request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind);
    }
}

#[tokio::test]
async fn a_tool_is_called_with_a_tool_use_block() {
    let fake = start_llm().await;
    let mut body = ask("What is the weather in Rome?", false);
    body["tools"] = json!([{ "name": "get_weather", "description": "weather",
        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } }]);

    let reply: Value = messages(&fake, KEY, body).await.json().await.unwrap();

    assert_eq!(reply["stop_reason"], "tool_use");
    assert_eq!(reply["content"][0]["type"], "tool_use");
    assert_eq!(reply["content"][0]["input"], json!({ "city": "Rome" }));
}

#[tokio::test]
async fn the_models_list_names_the_models() {
    let fake = start_llm().await;

    let list: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/v1/models", fake.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(list["object"], "list");
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "gpt-4o-mini"));
}
