//! Every fault kind acted out on the wire, over real sockets: the shared HTTP faults (reset,
//! drop, malformed JSON, status headers) on the fake LLM and on a tool fake, and the LLM's own
//! (slow and cut streams, broken streams, finish reasons, tool faults, rate limits as state).

mod common;
use common::client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::fault::{parse_rule, Fault, FaultRule, Switchboard};
use faultline::fakes::journal::{Attempt, Journal};
use faultline::fakes::llm::{self, LlmOptions};
use faultline::fakes::{tool, FakeHandle};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "sk-faultline-test";

async fn start_llm_seeded(seed: u64) -> FakeHandle {
    llm::start(
        LlmOptions {
            api_key: KEY.into(),
            seed: 42,
        },
        Arc::new(Switchboard::new(seed)),
        Arc::new(Journal::new(Instant::now(), 1000)),
    )
    .await
    .expect("fake llm starts")
}

async fn start_llm() -> FakeHandle {
    start_llm_seeded(7).await
}

/// Starts the fake LLM with one fault rule on, written as on the command line.
async fn llm_with(rule: &str) -> FakeHandle {
    let fake = start_llm().await;
    fake.switchboard().activate(parse_rule(rule, 1).unwrap());
    fake
}

fn chat_body(text: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "stream_options": if stream { json!({ "include_usage": true }) } else { Value::Null },
        "messages": [{ "role": "user", "content": text }],
    })
}

async fn post(fake: &FakeHandle, path: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{}{path}", fake.base_url()))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
}

async fn chat(fake: &FakeHandle, text: &str, stream: bool) -> reqwest::Response {
    post(fake, "/v1/chat/completions", &chat_body(text, stream))
        .await
        .expect("chat is answered")
}

/// A streamed body as it arrived: each piece with when it came, and how the body ended.
struct Received {
    pieces: Vec<(Duration, String)>,
    error: Option<reqwest::Error>,
}

impl Received {
    fn text(&self) -> String {
        self.pieces.iter().map(|(_, p)| p.as_str()).collect()
    }
    /// The `data:` payloads of the SSE frames received whole.
    fn data(&self) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter_map(|frame| {
                frame
                    .lines()
                    .find_map(|line| line.strip_prefix("data: "))
                    .map(str::to_owned)
            })
            .collect()
    }
}

async fn receive(mut response: reqwest::Response) -> Received {
    let started = Instant::now();
    let mut pieces = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(piece)) => pieces.push((
                started.elapsed(),
                String::from_utf8_lossy(&piece).into_owned(),
            )),
            Ok(None) => {
                return Received {
                    pieces,
                    error: None,
                }
            }
            Err(error) => {
                return Received {
                    pieces,
                    error: Some(error),
                }
            }
        }
    }
}

/// Sends one raw HTTP request and reads until the server closes: the bytes, or the error.
async fn raw_exchange(fake: &FakeHandle, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(fake.addr()).await?;
    let body = chat_body("hi", false).to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got))
        .await
        .expect("the server ends the connection")?;
    Ok(got)
}

#[tokio::test]
async fn a_reset_fault_resets_the_connection_with_an_rst() {
    let fake = llm_with(r#"{"kind":"reset"}"#).await;

    let raw = raw_exchange(&fake, "/v1/chat/completions").await;
    let error = client()
        .post(format!("{}/v1/chat/completions", fake.base_url()))
        .bearer_auth(KEY)
        .json(&chat_body("hi", false))
        .send()
        .await
        .expect_err("no response arrives");

    assert_eq!(
        raw.expect_err("the read fails").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    let attempt = &fake.journal().snapshot()[0];
    assert_eq!(attempt.fault.as_deref(), Some("reset"));
    assert_eq!(attempt.status, None);
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_a_response() {
    let fake = llm_with(r#"{"kind":"drop"}"#).await;

    let raw = raw_exchange(&fake, "/v1/chat/completions")
        .await
        .expect("an orderly close, not a reset");
    let error = post(&fake, "/v1/chat/completions", &chat_body("hi", false))
        .await
        .expect_err("no response arrives");

    assert!(raw.is_empty(), "not a byte of response: {raw:?}");
    assert!(!error.is_status(), "{error:?}");
}

#[tokio::test]
async fn a_tool_fake_gets_reset_drop_and_malformed_too() {
    let fake = tool::start_weather(
        Arc::new(Switchboard::new(1)),
        Arc::new(Journal::new(Instant::now(), 100)),
    )
    .await
    .unwrap();
    let url = format!("{}/weather?city=Paris", fake.base_url());

    for kind in ["reset", "drop"] {
        fake.switchboard()
            .activate(parse_rule(&format!(r#"{{"kind":"{kind}"}}"#), 1).unwrap());
        let outcome = client().get(&url).send().await;
        assert!(outcome.is_err(), "{kind}: {outcome:?}");
    }
    fake.switchboard()
        .activate(parse_rule(r#"{"kind":"malformed","what":"truncated_json"}"#, 1).unwrap());
    let body = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with('{'));
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
}

#[tokio::test]
async fn malformed_json_faults_break_the_body_or_its_content_type() {
    let fake = start_llm().await;
    let board = fake.switchboard();

    board.activate(parse_rule(r#"{"kind":"malformed","what":"invalid_json"}"#, 1).unwrap());
    let invalid = chat(&fake, "hi", false).await;
    assert_eq!(invalid.status(), 200);
    let invalid = invalid.text().await.unwrap();
    board.activate(parse_rule(r#"{"kind":"malformed","what":"truncated_json"}"#, 1).unwrap());
    let truncated = chat(&fake, "hi", false).await.text().await.unwrap();
    board.activate(parse_rule(r#"{"kind":"malformed","what":"wrong_content_type"}"#, 1).unwrap());
    let wrong = chat(&fake, "hi", false).await;
    let wrong_type = wrong.headers()["content-type"].to_str().unwrap().to_owned();
    let wrong_body: Value = wrong.json().await.unwrap();

    assert!(
        serde_json::from_str::<Value>(&invalid).is_err(),
        "{invalid}"
    );
    assert!(!invalid.trim_start().starts_with('{'));
    assert!(truncated.starts_with("{\""));
    assert!(serde_json::from_str::<Value>(&truncated).is_err());
    assert!(wrong_type.starts_with("text/html"));
    assert_eq!(wrong_body["object"], "chat.completion");
}

#[tokio::test]
async fn a_status_fault_sends_the_retry_hints_it_asks_for() {
    let fake = llm_with(
        r#"{"kind":"status","code":429,"retry_after":"1500ms","retry_after_ms":false,"should_retry":false,"error_code":"insufficient_quota"}"#,
    )
    .await;

    let response = chat(&fake, "hi", false).await;

    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    assert_eq!(headers["retry-after"], "2");
    assert!(!headers.contains_key("retry-after-ms"));
    assert_eq!(headers["x-should-retry"], "false");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_quota");

    fake.switchboard()
        .activate(parse_rule(r#"{"kind":"status","code":503,"retry_after":"250ms"}"#, 1).unwrap());
    let busy = chat(&fake, "hi", false).await;
    assert_eq!(busy.headers()["retry-after-ms"], "250");
    assert!(!busy.headers().contains_key("x-should-retry"));
}

#[tokio::test]
async fn a_400_context_length_fault_and_a_too_long_prompt_both_say_context_length_exceeded() {
    let fake = start_llm().await;
    let long = "word ".repeat(1000);

    let real = post(
        &fake,
        "/v1/chat/completions",
        &json!({ "model": "gpt-tiny-ctx", "messages": [{ "role": "user", "content": long }] }),
    )
    .await
    .unwrap();
    assert_eq!(real.status(), 400);
    let real: Value = real.json().await.unwrap();
    assert_eq!(real["error"]["code"], "context_length_exceeded");
    assert!(real["error"]["message"]
        .as_str()
        .unwrap()
        .contains("maximum context length is 512 tokens"));

    fake.switchboard().activate(
        parse_rule(
            r#"{"kind":"status","code":400,"error_code":"context_length_exceeded"}"#,
            1,
        )
        .unwrap(),
    );
    let injected: Value = chat(&fake, "hi", false).await.json().await.unwrap();
    assert_eq!(injected["error"]["code"], "context_length_exceeded");
    assert_eq!(injected["error"]["param"], "messages");
}

#[tokio::test]
async fn a_slow_stream_delays_the_first_token_and_spaces_the_rest() {
    let fake = llm_with(
        r#"{"kind":"slow_stream","first_token":"300ms","inter_token":"30ms","jitter":0.2}"#,
    )
    .await;

    let started = Instant::now();
    let received = receive(chat(&fake, "hello there", true).await).await;

    assert!(received.error.is_none());
    let (first, _) = received.pieces[0];
    assert!(
        first >= Duration::from_millis(290),
        "first piece at {first:?}"
    );
    let frames = received.data().len() as u32;
    let least = Duration::from_millis(300) + Duration::from_millis(24) * (frames - 1);
    assert!(
        started.elapsed() >= least,
        "{frames} frames in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stall_pauses_the_stream_after_n_chunks_then_finishes_it() {
    let fake = llm_with(r#"{"kind":"stall","after_chunks":2,"stall":"400ms"}"#).await;

    let received = receive(chat(&fake, "hello there", true).await).await;

    assert!(received.error.is_none());
    let gaps: Vec<Duration> = received
        .pieces
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    assert!(
        gaps.iter().any(|gap| *gap >= Duration::from_millis(380)),
        "{gaps:?}"
    );
    assert_eq!(received.data().last().map(String::as_str), Some("[DONE]"));
    let attempt = recorded(&fake).await;
    assert_eq!(
        attempt.chunks_sent,
        Some(received.data().len() as u32),
        "the journal counts every event sent: {attempt:?}"
    );
}

/// The first journal entry, once the attempt has ended (a stream records when its body ends).
async fn recorded(fake: &FakeHandle) -> Attempt {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(attempt) = fake.journal().snapshot().into_iter().next() {
            return attempt;
        }
        assert!(Instant::now() < deadline, "no attempt journaled within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_stream_cut_after_n_chunks_ends_the_body_with_an_error() {
    let fake = llm_with(r#"{"kind":"stream_cut","after_chunks":3}"#).await;

    let received = receive(chat(&fake, "hello there", true).await).await;

    assert!(received.error.is_some(), "the body ends in an error");
    assert_eq!(received.data().len(), 3);
    assert!(!received.text().contains("[DONE]"));
    let attempt = recorded(&fake).await;
    assert_eq!(
        attempt.chunks_sent,
        Some(3),
        "the journal counts the events sent before the cut: {attempt:?}"
    );
}

#[tokio::test]
async fn a_stream_cut_after_a_time_cuts_mid_stream_at_that_time() {
    let fake = llm_with(r#"{"kind":"stream_cut","after":"300ms"}"#).await;

    let started = Instant::now();
    let received = receive(chat(&fake, "hello there", true).await).await;

    assert!(received.error.is_some());
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!received.data().is_empty());
    assert!(!received.text().contains("[DONE]"));
}

#[tokio::test]
async fn broken_stream_faults_send_an_error_frame_or_leave_out_done_or_usage() {
    let fake = start_llm().await;
    let frames_under = |what: &'static str| {
        let fake = &fake;
        async move {
            fake.switchboard().activate(
                parse_rule(&format!(r#"{{"kind":"malformed","what":"{what}"}}"#), 1).unwrap(),
            );
            receive(chat(fake, "hello there", true).await).await.data()
        }
    };

    let error_frame = frames_under("error_frame").await;
    let no_done = frames_under("no_done").await;
    let no_usage = frames_under("no_usage").await;
    let empty = frames_under("empty_choices").await;

    let last: Value = serde_json::from_str(error_frame.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error");
    assert_ne!(no_done.last().unwrap(), "[DONE]");
    assert!(no_usage
        .iter()
        .all(|f| !f.contains("\"completion_tokens\"")));
    assert_eq!(no_usage.last().unwrap(), "[DONE]");
    assert!(empty
        .iter()
        .filter(|f| *f != "[DONE]")
        .all(|f| serde_json::from_str::<Value>(f).unwrap()["choices"] == json!([])));
}

#[tokio::test]
async fn a_finish_reason_fault_ends_the_answer_early_with_that_reason() {
    let fake = llm_with(r#"{"kind":"finish_reason","reason":"content_filter"}"#).await;

    let filtered: Value = chat(&fake, "hello there", false)
        .await
        .json()
        .await
        .unwrap();
    fake.switchboard()
        .activate(parse_rule(r#"{"kind":"finish_reason","reason":"length"}"#, 1).unwrap());
    let cut: Value = chat(&fake, "hello there", false)
        .await
        .json()
        .await
        .unwrap();
    fake.switchboard().clear();
    let whole: Value = chat(&fake, "hello there", false)
        .await
        .json()
        .await
        .unwrap();

    let content = |v: &Value| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
    };
    assert_eq!(filtered["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(cut["choices"][0]["finish_reason"], "length");
    assert!(content(&cut) < content(&whole));
}

fn weather_tools() -> Value {
    json!([{ "type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] },
    }}])
}

#[tokio::test]
async fn a_prompt_naming_a_tool_gets_a_tool_call_and_the_tool_result_gets_text() {
    let fake = start_llm().await;
    let mut body = json!({ "model": "m", "tools": weather_tools(),
        "messages": [{ "role": "user", "content": "What's the weather in Lyon?" }] });

    let called: Value = post(&fake, "/v1/chat/completions", &body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let choice = &called["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({ "city": "Lyon" }));

    body["messages"].as_array_mut().unwrap().extend([
        choice["message"].clone(),
        json!({ "role": "tool", "tool_call_id": call["id"], "content": "{\"temperature_c\": 20}" }),
    ]);
    let answered: Value = post(&fake, "/v1/chat/completions", &body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answered["choices"][0]["finish_reason"], "stop");

    fake.switchboard()
        .activate(parse_rule(r#"{"kind":"tool_loop"}"#, 1).unwrap());
    let looped: Value = post(&fake, "/v1/chat/completions", &body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(looped["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn tool_calls_stream_as_argument_deltas() {
    let fake = start_llm().await;
    let body = json!({ "model": "m", "stream": true, "tools": weather_tools(),
        "messages": [{ "role": "user", "content": "weather in Oslo please" }] });

    let received = receive(post(&fake, "/v1/chat/completions", &body).await.unwrap()).await;

    let chunks: Vec<Value> = received
        .data()
        .iter()
        .filter(|f| *f != "[DONE]")
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({ "city": "Oslo" })
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn an_invalid_tool_args_fault_sends_arguments_that_are_not_json() {
    let fake = llm_with(r#"{"kind":"invalid_tool_args"}"#).await;
    let body = json!({ "model": "m", "tools": weather_tools(),
        "messages": [{ "role": "user", "content": "tell me a joke" }] });

    let reply: Value = post(&fake, "/v1/chat/completions", &body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let arguments = reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert!(
        serde_json::from_str::<Value>(arguments).is_err(),
        "{arguments}"
    );
}

#[tokio::test]
async fn a_rate_limit_is_a_bucket_that_runs_out_and_says_so_in_headers() {
    let fake = llm_with(r#"{"kind":"rate_limit","requests_per_minute":3}"#).await;

    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = chat(&fake, "hi", false).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit-requests"], "3");
        remaining.push(
            response.headers()["x-ratelimit-remaining-requests"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let refused = chat(&fake, "hi", false).await;

    assert_eq!(remaining, ["2", "1", "0"]);
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-ratelimit-remaining-requests"], "0");
    let wait: u64 = refused.headers()["retry-after-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((15_000..=20_000).contains(&wait), "{wait} ms");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    // OpenAI's own wording, in one sentence with single spaces (users read it in their logs).
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limit reached for gpt-4o-mini in organization org-faultline on requests per \
             min (RPM): Limit 3, Requested 1. Please try again in "
        ),
        "{message}"
    );
    assert!(!message.contains("  "), "{message}");
}

#[tokio::test]
async fn a_tokens_per_minute_limit_refuses_a_request_too_big_for_what_is_left() {
    let fake = llm_with(r#"{"kind":"rate_limit","tokens_per_minute":100}"#).await;

    let big = chat(&fake, &"word ".repeat(100), false).await;

    assert_eq!(big.status(), 429);
    let body: Value = big.json().await.unwrap();
    assert_eq!(body["error"]["type"], "tokens");
}

#[tokio::test]
async fn a_distributed_delay_varies_and_repeats_with_the_seed() {
    async fn delays(seed: u64) -> Vec<u128> {
        let fake = start_llm_seeded(seed).await;
        fake.switchboard().activate(
            parse_rule(
                r#"{"kind":"delay","delay":"40ms","distribution":"uniform"}"#,
                1,
            )
            .unwrap(),
        );
        let mut waits = Vec::new();
        for _ in 0..6 {
            let started = Instant::now();
            assert_eq!(chat(&fake, "hi", false).await.status(), 200);
            waits.push(started.elapsed().as_millis() / 20);
        }
        waits
    }
    let first = delays(5).await;
    assert!(
        first.iter().any(|w| *w != first[0]),
        "uniform delays vary: {first:?}"
    );
}

#[tokio::test]
async fn the_same_seed_gives_the_same_fault_sequence() {
    async fn sequence(seed: u64) -> Vec<u16> {
        let fake = start_llm_seeded(seed).await;
        fake.switchboard().activate(FaultRule {
            id: 1,
            fault: Fault::status(503, None),
            route: None,
            rate: 0.5,
            first_attempts: None,
        });
        let mut statuses = Vec::new();
        for _ in 0..24 {
            statuses.push(chat(&fake, "hi", false).await.status().as_u16());
        }
        statuses
    }

    let (first, again, other) = (sequence(11).await, sequence(11).await, sequence(12).await);

    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(first.contains(&503) && first.contains(&200));
}

#[tokio::test]
async fn an_anthropic_rate_limit_says_so_in_one_sentence() {
    let fake = llm_with(r#"{"kind":"rate_limit","requests_per_minute":1}"#).await;
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{ "role": "user", "content": "hi" }],
    });
    let send = || {
        client()
            .post(format!("{}/v1/messages", fake.base_url()))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
    };

    assert_eq!(send().await.unwrap().status(), 200);
    let refused = send().await.unwrap();

    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "This request would exceed the rate limit for your organization of 1 requests per \
         minute. Please try again later."
    );
}
