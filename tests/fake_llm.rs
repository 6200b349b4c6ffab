//! Conformance of the fake LLM over real sockets: OpenAI's shapes for chat completions,
//! embeddings and errors, each fault acted out on the wire, and what the journal records.

mod common;
use common::client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::fault::{Fault, FaultRule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::llm::{self, LlmOptions};
use faultline::fakes::FakeHandle;
use serde_json::{json, Value};

const KEY: &str = "sk-faultline-test";

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

fn always(fault: Fault) -> FaultRule {
    FaultRule {
        id: 1,
        fault,
        route: None,
        rate: 1.0,
        first_attempts: None,
    }
}

async fn chat(client: &reqwest::Client, fake: &FakeHandle, text: &str) -> reqwest::Response {
    client
        .post(format!("{}/v1/chat/completions", fake.base_url()))
        .bearer_auth(KEY)
        .json(&json!({
            "model": "gpt-4o-mini",
            "messages": [
                { "role": "system", "content": "You are a helpful assistant." },
                { "role": "user", "content": text },
            ],
        }))
        .send()
        .await
        .expect("chat request is answered")
}

async fn embed(fake: &FakeHandle, body: Value) -> Value {
    let response = client()
        .post(format!("{}/v1/embeddings", fake.base_url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn floats(embedding: &Value) -> Vec<f32> {
    embedding
        .as_array()
        .expect("a float array")
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Standard base64 decoding, enough to read OpenAI's `encoding_format: "base64"`.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let digits: Vec<u8> = chunk
            .iter()
            .filter(|c| **c != b'=')
            .map(|c| value(*c))
            .collect();
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        out.extend(n.to_be_bytes()[1..digits.len()].iter());
    }
    out
}

#[tokio::test]
async fn chat_completion_answers_in_openai_shape_with_usage() {
    let fake = start_llm().await;

    let response = chat(
        &client(),
        &fake,
        "What's the weather in Paris? [fl-1a2b3c4d]",
    )
    .await;

    assert_eq!(response.status(), 200);
    assert!(response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    assert!(response.headers().contains_key("openai-processing-ms"));
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-4o-mini");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(!content.is_empty());
    assert!(!content.contains("fl-1a2b3c4d"), "the nonce is not echoed");
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &body["usage"];
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(prompt > 0 && completion > 0);
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);
    assert_eq!(completion, (content.chars().count() as u64).div_ceil(4));
}

#[tokio::test]
async fn the_same_question_gets_the_same_answer() {
    let fake = start_llm().await;
    let client = client();
    let answer = |response: reqwest::Response| async move {
        let body: Value = response.json().await.unwrap();
        body["choices"][0]["message"]["content"].clone()
    };

    let first = answer(chat(&client, &fake, "How do refunds work? [fl-00000001]").await).await;
    let second = answer(chat(&client, &fake, "How do refunds work? [fl-00000002]").await).await;

    assert_eq!(first, second);
}

#[tokio::test]
async fn streaming_sends_completion_chunks_a_usage_chunk_and_done() {
    let fake = start_llm().await;

    let response = client()
        .post(format!("{}/v1/chat/completions", fake.base_url()))
        .bearer_auth(KEY)
        .json(
            &json!({ "model": "m", "stream": true, "stream_options": { "include_usage": true },
                       "messages": [{ "role": "user", "content": "hello there" }] }),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    let frames: Vec<&str> = text
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            f.strip_prefix("data: ")
                .expect("every frame is a data line")
        })
        .collect();
    assert_eq!(frames.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!content.is_empty());
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"]["completion_tokens"].as_u64().unwrap(),
        (content.chars().count() as u64).div_ceil(4)
    );
}

#[tokio::test]
async fn a_request_without_the_api_key_gets_401_invalid_api_key() {
    let fake = start_llm().await;

    let response = client()
        .post(format!("{}/v1/chat/completions", fake.base_url()))
        .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["param"], Value::Null);
}

#[tokio::test]
async fn embeddings_come_as_floats_and_similar_texts_are_closer() {
    let fake = start_llm().await;

    let body = embed(
        &fake,
        json!({
            "model": "text-embedding-3-small",
            "encoding_format": "float",
            "input": [
                "How do I get a refund for my order? [fl-0000abcd]",
                "Refunds: an order can be refunded within 30 days.",
                "Sunny weather is expected in Paris this weekend.",
            ],
        }),
    )
    .await;

    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "text-embedding-3-small");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[2]["object"], "embedding");
    assert_eq!(data[2]["index"], 2);
    let vectors: Vec<Vec<f32>> = data.iter().map(|d| floats(&d["embedding"])).collect();
    assert_eq!(vectors[0].len(), 256);
    assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]));
    let tokens = body["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(tokens > 0);
    assert_eq!(body["usage"]["total_tokens"].as_u64().unwrap(), tokens);
}

#[tokio::test]
async fn embeddings_in_base64_decode_to_the_float_vector() {
    let fake = start_llm().await;
    let text = "The quick brown fox";

    let as_floats = embed(&fake, json!({ "model": "m", "input": text })).await;
    let as_base64 = embed(
        &fake,
        json!({ "model": "m", "input": text, "encoding_format": "base64" }),
    )
    .await;

    let bytes = base64_decode(as_base64["data"][0]["embedding"].as_str().unwrap());
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(decoded, floats(&as_floats["data"][0]["embedding"]));
}

#[tokio::test]
async fn a_503_fault_answers_openais_overloaded_error() {
    let fake = start_llm().await;
    fake.switchboard()
        .activate(always(Fault::status(503, None)));

    let response = chat(&client(), &fake, "hello").await;

    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "The server is overloaded or not ready yet."
    );
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["param"], Value::Null);
}

#[tokio::test]
async fn a_429_fault_carries_retry_after_and_retry_after_ms() {
    let fake = start_llm().await;
    fake.switchboard().activate(always(Fault::status(
        429,
        Some(Duration::from_millis(1500)),
    )));

    let response = chat(&client(), &fake, "hello").await;

    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["retry-after-ms"], "1500");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Rate limit reached"));
}

#[tokio::test]
async fn a_delay_fault_delays_the_answer() {
    let fake = start_llm().await;
    fake.switchboard().activate(always(Fault::Delay {
        delay: Duration::from_millis(300),
        distribution: Default::default(),
    }));

    let started = Instant::now();
    let response = chat(&client(), &fake, "hello").await;

    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let processing: u64 = response.headers()["openai-processing-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(processing >= 300);
}

#[tokio::test]
async fn a_hang_fault_never_answers_and_shutdown_still_returns_promptly() {
    let fake = start_llm().await;
    let journal = fake.journal().clone();
    fake.switchboard().activate(always(Fault::Hang));
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();

    let error = impatient
        .post(format!("{}/v1/chat/completions", fake.base_url()))
        .bearer_auth(KEY)
        .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi [fl-0000aaaa]" }] }))
        .send()
        .await
        .expect_err("a hung request is not answered");
    assert!(error.is_timeout(), "{error:?}");

    // A second hung request, still waiting when the fake shuts down.
    let url = format!("{}/v1/chat/completions", fake.base_url());
    let patient = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth(KEY)
            .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi [fl-0000bbbb]" }] }))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    fake.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shutdown took {:?}",
        started.elapsed()
    );

    let outcome = tokio::time::timeout(Duration::from_secs(2), patient)
        .await
        .expect("the hung client is released by shutdown")
        .unwrap();
    assert!(outcome.is_err(), "the hung request never got an answer");
    let attempts = journal.snapshot();
    for key in ["fl-0000aaaa", "fl-0000bbbb"] {
        let attempt = attempts
            .iter()
            .find(|a| a.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("{key} journaled: {attempts:?}"));
        assert_eq!(attempt.fault.as_deref(), Some("hang"));
        assert_eq!(attempt.status, None);
    }
}

#[tokio::test]
async fn a_refuse_fault_closes_the_port_and_the_same_port_reopens_after() {
    let fake = start_llm().await;
    // No pooled connections: each request must connect afresh to observe the port.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = format!("{}/v1/models", fake.base_url());
    let get = || client.get(&url).bearer_auth(KEY).send();
    assert_eq!(get().await.unwrap().status(), 200);

    fake.switchboard().activate(always(Fault::Refuse));
    let deadline = Instant::now() + Duration::from_secs(2);
    let refused = loop {
        match get().await {
            Err(error) => break error,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(_) => panic!("the port stayed open while refusing"),
        }
    };
    assert!(refused.is_connect(), "{refused:?}");

    fake.switchboard().deactivate(1);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match get().await {
            Ok(response) => break assert_eq!(response.status(), 200),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("the port did not reopen: {error:?}"),
        }
    }
}

#[tokio::test]
async fn dropping_the_handle_stops_the_fake() {
    let fake = start_llm().await;
    let url = format!("{}/v1/models", fake.base_url());

    drop(fake);

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while client.get(&url).bearer_auth(KEY).send().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the fake kept serving after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_journal_records_key_fault_status_and_usage() {
    let fake = start_llm().await;
    let client = client();

    let ok: Value = chat(&client, &fake, "hello [fl-11112222]")
        .await
        .json()
        .await
        .unwrap();
    fake.switchboard()
        .activate(always(Fault::status(503, None)));
    chat(&client, &fake, "hello [fl-33334444]").await;
    let unkeyed = client
        .post(format!("{}/v1/embeddings", fake.base_url()))
        .bearer_auth(KEY)
        .header("x-request-id", "client-req-9")
        .json(&json!({ "model": "m", "input": "no nonce here" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unkeyed.status(), 503);

    let attempts = fake.journal().snapshot();
    assert_eq!(attempts.len(), 3);
    let first = &attempts[0];
    assert_eq!(first.fake, "llm");
    assert_eq!(first.route, "/v1/chat/completions");
    assert_eq!(first.key.as_deref(), Some("fl-11112222"));
    assert_eq!(first.fault, None);
    assert_eq!(first.status, Some(200));
    assert_eq!(first.input_tokens, ok["usage"]["prompt_tokens"].as_u64());
    assert_eq!(
        first.output_tokens,
        ok["usage"]["completion_tokens"].as_u64()
    );
    let second = &attempts[1];
    assert_eq!(second.key.as_deref(), Some("fl-33334444"));
    assert_eq!(second.fault.as_deref(), Some("status 503"));
    assert_eq!(second.status, Some(503));
    assert_eq!(second.input_tokens, None);
    assert!(second.at_ms >= first.at_ms);
    let third = &attempts[2];
    assert_eq!(third.route, "/v1/embeddings");
    assert_eq!(third.key.as_deref(), Some("client-req-9"));
}
