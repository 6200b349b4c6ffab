//! The reference target end to end, in process: tiny axum servers on 127.0.0.1:0 stand in for
//! the OpenAI-compatible provider and the weather tool, behaving as each test says; the target
//! runs through `Server::bind` + `run` with its log lines sent to a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline::reference::{Config, Flaw, Server};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const API_KEY: &str = "sk-test-DO-NOT-LOG-4f9a";
const LLM_TIMEOUT_MS: u64 = 500;
const ANSWER: &str = "Refunds reach your card in 5-10 business days.";

// ---------------------------------------------------------------------------------------------
// Stub upstreams

/// What a stub does with one attempt.
#[derive(Clone, Debug)]
enum Reply {
    Ok,
    /// Answer normally after this long.
    Delay(Duration),
    Hang,
    Status {
        code: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

impl Reply {
    fn status(code: u16) -> Reply {
        Reply::Status {
            code,
            headers: vec![],
            body: json!({"error": {"message": "upstream said no", "type": "server_error"}})
                .to_string(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Status { headers, .. } = &mut self {
            headers.push((name, value.to_string()));
        }
        self
    }

    fn body(mut self, text: &str) -> Reply {
        if let Reply::Status { body, .. } = &mut self {
            *body = text.to_string();
        }
        self
    }

    async fn act_out(self, ok: Value) -> Response {
        match self {
            Reply::Ok => Json(ok).into_response(),
            Reply::Delay(wait) => {
                tokio::time::sleep(wait).await;
                Json(ok).into_response()
            }
            Reply::Hang => std::future::pending().await,
            Reply::Status {
                code,
                headers,
                body,
            } => {
                let mut response =
                    (StatusCode::from_u16(code).unwrap(), body.clone()).into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
        }
    }
}

/// One chat-completion attempt as the stub provider saw it.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    body: Value,
    request_id: Option<String>,
    authorization: Option<String>,
}

type Plan = Box<dyn Fn(usize) -> Reply + Send + Sync>;

struct LlmState {
    /// Attempt number (0-based, over the stub's life) → what to do.
    chat_plan: Plan,
    chat_seen: Mutex<Vec<Seen>>,
    embeddings_down: AtomicBool,
}

struct StubLlm {
    base_url: String,
    state: Arc<LlmState>,
}

impl StubLlm {
    async fn start(chat_plan: impl Fn(usize) -> Reply + Send + Sync + 'static) -> StubLlm {
        let state = Arc::new(LlmState {
            chat_plan: Box::new(chat_plan),
            chat_seen: Mutex::new(vec![]),
            embeddings_down: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(state.clone());
        let addr = spawn_server(app).await;
        StubLlm {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    fn chat_attempts(&self) -> Vec<Seen> {
        self.state.chat_seen.lock().unwrap().clone()
    }
}

/// A made-up but deterministic embedding: letter frequencies, so similar texts score alike.
fn embed_text(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 26];
    for c in text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase())
    {
        v[(c as u8 - b'a') as usize] += 1.0;
    }
    v
}

async fn embeddings(State(state): State<Arc<LlmState>>, Json(body): Json<Value>) -> Response {
    if state.embeddings_down.load(Ordering::SeqCst) {
        return Reply::status(503).act_out(json!({})).await;
    }
    let input = body["input"].as_str().unwrap_or_default();
    Json(json!({
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": embed_text(input)}],
        "model": body["model"],
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }))
    .into_response()
}

async fn chat_completions(
    State(state): State<Arc<LlmState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let attempt = {
        let mut seen = state.chat_seen.lock().unwrap();
        seen.push(Seen {
            at: Instant::now(),
            body,
            request_id: header("x-request-id"),
            authorization: header("authorization"),
        });
        seen.len() - 1
    };
    (state.chat_plan)(attempt)
        .act_out(json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
        }))
        .await
}

struct StubWeather {
    base_url: String,
    cities: Arc<Mutex<Vec<String>>>,
}

impl StubWeather {
    async fn start(reply: Reply) -> StubWeather {
        let cities = Arc::new(Mutex::new(vec![]));
        let seen = cities.clone();
        let app = Router::new().route(
            "/weather",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let reply = reply.clone();
                let city = q.get("city").cloned().unwrap_or_default();
                seen.lock().unwrap().push(city.clone());
                async move {
                    reply
                        .act_out(json!({"city": city, "tempC": 14, "conditions": "drizzle"}))
                        .await
                }
            }),
        );
        let addr = spawn_server(app).await;
        StubWeather {
            base_url: format!("http://{addr}"),
            cities,
        }
    }
}

async fn spawn_server(app: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

// ---------------------------------------------------------------------------------------------
// The target under test

struct Target {
    url: String,
    logs: mpsc::UnboundedReceiver<String>,
    seen_logs: Vec<Value>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
}

async fn start_target(llm: &StubLlm, extra_env: &[(&str, &str)], flaws: &[Flaw]) -> Target {
    let target = start_target_unready(llm, extra_env, flaws).await;
    target.wait_ready().await;
    target
}

async fn start_target_unready(llm: &StubLlm, extra_env: &[(&str, &str)], flaws: &[Flaw]) -> Target {
    let mut env: HashMap<String, String> = [
        ("PORT", "0".to_string()),
        ("OPENAI_BASE_URL", llm.base_url.clone()),
        ("OPENAI_API_KEY", API_KEY.to_string()),
        ("LLM_TIMEOUT_MS", LLM_TIMEOUT_MS.to_string()),
        ("TOOL_TIMEOUT_MS", "300".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra_env {
        env.insert(k.to_string(), v.to_string());
    }
    let (log_tx, logs) = mpsc::unbounded_channel::<String>();
    let config = Config::from_env_map(&env)
        .unwrap()
        .with_log_sink(Arc::new(log_tx));
    let server = Server::bind(config, flaws.to_vec()).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Target {
        url,
        logs,
        seen_logs: vec![],
        stop: Some(stop),
        task,
        http: reqwest::Client::new(),
    }
}

impl Target {
    async fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = self.http.get(format!("{}/healthz", self.url)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < until, "target never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn chat(&self, body: Value, request_id: Option<&str>) -> (u16, HeaderMap, Value) {
        let mut request = self.http.post(format!("{}/api/chat", self.url)).json(&body);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json::<Value>().await.unwrap();
        (status, headers, body)
    }

    async fn ask(&self, message: &str) -> (u16, HeaderMap, Value) {
        self.chat(json!({"message": message}), None).await
    }

    async fn metrics(&self) -> Value {
        self.http
            .get(format!("{}/admin/metrics", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every log line so far, parsed (each must be JSON).
    fn logs(&mut self) -> &[Value] {
        while let Ok(line) = self.logs.try_recv() {
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            self.seen_logs.push(value);
        }
        &self.seen_logs
    }

    fn raw_logs(&mut self) -> String {
        self.logs()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn request_lines(&mut self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter(|l| l["route"] == "/api/chat")
            .cloned()
            .collect()
    }

    fn events(&mut self, event: &str) -> Vec<Value> {
        self.logs()
            .iter()
            .filter(|l| l["event"] == event)
            .cloned()
            .collect()
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(7), self.task)
            .await
            .expect("target did not stop")
            .unwrap()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn gap(a: &Seen, b: &Seen) -> Duration {
    b.at.duration_since(a.at)
}

// ---------------------------------------------------------------------------------------------
// Happy path, request ids, logs

#[tokio::test]
async fn happy_path_answers_and_logs_one_clean_line() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(&llm, &[], &[]).await;
    let message = "How long do refunds take? [n:q7x2k9]";

    let (status, headers, body) = target
        .chat(
            json!({"message": message, "user": "alice@example.com"}),
            Some("req-happy-1"),
        )
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"], ANSWER);
    assert_eq!(body["requestId"], "req-happy-1");
    assert_eq!(body["cacheHit"], false);
    assert_eq!(body["degraded"], false);
    assert_eq!(body["banner"], Value::Null);
    assert_eq!(
        header(&headers, "x-request-id").as_deref(),
        Some("req-happy-1")
    );

    // Upstream got the user's text verbatim, the request id and the key; the prompt has context.
    let seen = llm.chat_attempts();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["messages"][1]["content"], message);
    assert_eq!(seen[0].body["model"], "gpt-4o-mini");
    assert_eq!(seen[0].request_id.as_deref(), Some("req-happy-1"));
    assert_eq!(seen[0].authorization, Some(format!("Bearer {API_KEY}")));
    let system = seen[0].body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("[3]") && system.contains("Lumen Notes"),
        "{system}"
    );

    let lines = target.request_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["level"], "info");
    assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(line["requestId"], "req-happy-1");
    assert_eq!(line["model"], "gpt-4o-mini");
    assert_eq!(line["status"], 200);
    assert!(line["latencyMs"].is_u64());
    assert_eq!(line["inputTokens"], 42);
    assert_eq!(line["outputTokens"], 7);
    assert_eq!(line["cacheHit"], false);
    assert_eq!(line["degraded"], false);
    assert_eq!(line["llmAttempts"], 2, "one embedding, one chat");
    let user_id = line["userId"].as_str().unwrap();
    assert!(user_id.starts_with("u_") && !user_id.contains("alice"));
    assert!(line.get("error").is_none());

    let all = target.raw_logs();
    assert!(!all.contains(API_KEY), "API key in logs");
    assert!(!all.contains("q7x2k9"), "user text in logs");
    assert!(!all.contains("alice"), "raw user in logs");
    assert!(all.contains("\"event\":\"cache_disabled\""));
    target.stop().await.unwrap();
}

#[tokio::test]
async fn request_id_is_generated_or_sanitised() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(&llm, &[], &[]).await;

    let (_, headers, body) = target.ask("hello").await;
    let generated = header(&headers, "x-request-id").unwrap();
    assert_eq!(generated.len(), 36);
    assert_eq!(body["requestId"], generated);

    let (_, headers, body) = target
        .chat(json!({"message": "hello"}), Some("abc def;<x>"))
        .await;
    assert_eq!(header(&headers, "x-request-id").as_deref(), Some("abcdefx"));
    assert_eq!(body["requestId"], "abcdefx");
}

#[tokio::test]
async fn bad_bodies_get_400_with_a_request_id() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(&llm, &[], &[]).await;

    for body in [json!({}), json!({"message": "   "}), json!({"message": 3})] {
        let (status, headers, body) = target.chat(body, Some("req-bad")).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "Please send a JSON body with a non-empty \"message\"."
        );
        assert_eq!(body["requestId"], "req-bad");
        assert_eq!(header(&headers, "x-request-id").as_deref(), Some("req-bad"));
    }
    let response = target
        .http
        .post(format!("{}/api/chat", target.url))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(llm.chat_attempts().is_empty());
    let lines = target.request_lines();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["error"] == "bad_request"));
}

// ---------------------------------------------------------------------------------------------
// Timeouts

#[tokio::test]
async fn llm_hang_answers_504_with_request_id_within_the_timeout() {
    let llm = StubLlm::start(|_| Reply::Hang).await;
    let mut target = start_target(&llm, &[], &[]).await;

    let started = Instant::now();
    let (status, headers, body) = target
        .chat(json!({"message": "hi"}), Some("req-hang"))
        .await;
    let elapsed = started.elapsed();

    assert_eq!(status, 504);
    assert_eq!(
        body["error"],
        "The AI service timed out. Please try a shorter question."
    );
    assert_eq!(body["requestId"], "req-hang");
    assert_eq!(
        header(&headers, "x-request-id").as_deref(),
        Some("req-hang")
    );
    assert!(
        elapsed >= Duration::from_millis(LLM_TIMEOUT_MS - 50)
            && elapsed < Duration::from_millis(LLM_TIMEOUT_MS * 2),
        "answered after {elapsed:?}"
    );
    assert_eq!(llm.chat_attempts().len(), 1, "timeouts are not retried");
    let line = &target.request_lines()[0];
    assert_eq!(line["level"], "error");
    assert_eq!(line["status"], 504);
    assert_eq!(line["error"], "llm_timeout");
}

#[tokio::test]
async fn no_timeout_flaw_lets_a_hanging_provider_hang_the_request() {
    let llm = StubLlm::start(|_| Reply::Hang).await;
    let mut target = start_target(&llm, &[], &[Flaw::NoTimeout]).await;

    let result = target
        .http
        .post(format!("{}/api/chat", target.url))
        .json(&json!({"message": "hi"}))
        .timeout(Duration::from_millis(LLM_TIMEOUT_MS * 2))
        .send()
        .await;

    assert!(result.unwrap_err().is_timeout());
    // The abandoned request still leaves its one line, once the server notices the client left.
    let until = Instant::now() + Duration::from_secs(2);
    while target.request_lines().is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = target.request_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], 499);
    assert_eq!(lines[0]["error"], "client_closed");
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn upstream_503_is_retried_then_reported_honestly() {
    let llm = StubLlm::start(|_| {
        Reply::status(503).body(r#"{"error":{"message":"OpenAI engine overloaded"}}"#)
    })
    .await;
    let mut target = start_target(&llm, &[], &[]).await;

    let (status, headers, body) = target.chat(json!({"message": "hi"}), Some("req-503")).await;

    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        "The AI service is unavailable right now. Please try again shortly."
    );
    assert_eq!(body["requestId"], "req-503");
    assert_eq!(header(&headers, "x-request-id").as_deref(), Some("req-503"));
    let text = body.to_string();
    assert!(
        !text.contains("OpenAI") && !text.contains("overloaded"),
        "{text}"
    );
    assert_eq!(
        llm.chat_attempts().len(),
        3,
        "one attempt and LLM_MAX_RETRIES=2 retries"
    );
    assert_eq!(target.events("llm_retry").len(), 2);
    let line = &target.request_lines()[0];
    assert_eq!(line["llmAttempts"], 4, "one embedding, three chat attempts");
    assert_eq!(line["error"], "llm_unavailable");
    // One call that still failed after its retries: one LLM error, not three.
    assert_eq!(target.metrics().await["llm_errors_total"], 1);
}

#[tokio::test]
async fn a_503_then_success_answers_200() {
    let llm = StubLlm::start(|n| {
        if n == 0 {
            Reply::status(503)
        } else {
            Reply::Ok
        }
    })
    .await;
    let target = start_target(&llm, &[], &[]).await;

    let (status, _, body) = target.ask("hi").await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(llm.chat_attempts().len(), 2);
}

#[tokio::test]
async fn max_retries_comes_from_the_environment() {
    let llm = StubLlm::start(|_| Reply::status(503)).await;
    let target = start_target(&llm, &[("LLM_MAX_RETRIES", "0")], &[]).await;
    let (status, _, _) = target.ask("hi").await;
    assert_eq!(status, 503);
    assert_eq!(llm.chat_attempts().len(), 1);
}

#[tokio::test]
async fn no_retry_flaw_makes_exactly_one_attempt() {
    let llm = StubLlm::start(|_| Reply::status(503)).await;
    let target = start_target(&llm, &[], &[Flaw::NoRetry]).await;

    let (status, _, _) = target.ask("hi").await;

    assert_eq!(status, 503);
    assert_eq!(llm.chat_attempts().len(), 1);
}

#[tokio::test]
async fn retry_after_ms_is_honoured() {
    let llm = StubLlm::start(|n| {
        if n == 0 {
            Reply::status(429).header("retry-after-ms", "300")
        } else {
            Reply::Ok
        }
    })
    .await;
    let target = start_target(&llm, &[], &[]).await;

    let (status, _, _) = target.ask("hi").await;

    assert_eq!(status, 200);
    let seen = llm.chat_attempts();
    assert_eq!(seen.len(), 2);
    assert!(
        gap(&seen[0], &seen[1]) >= Duration::from_millis(300),
        "retried after {:?}",
        gap(&seen[0], &seen[1])
    );
}

#[tokio::test]
async fn retry_after_on_a_503_is_honoured_too() {
    let llm = StubLlm::start(|n| {
        if n == 0 {
            Reply::status(503).header("retry-after-ms", "300")
        } else {
            Reply::Ok
        }
    })
    .await;
    let target = start_target(&llm, &[], &[]).await;

    let (status, _, _) = target.ask("hi").await;

    assert_eq!(status, 200);
    let seen = llm.chat_attempts();
    assert_eq!(seen.len(), 2);
    assert!(
        gap(&seen[0], &seen[1]) >= Duration::from_millis(300),
        "retried after {:?}",
        gap(&seen[0], &seen[1])
    );
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_gives_up_at_once_with_429() {
    let llm = StubLlm::start(|_| Reply::status(429).header("retry-after", "5")).await;
    let mut target = start_target(&llm, &[], &[]).await;

    let started = Instant::now();
    let (status, headers, body) = target.chat(json!({"message": "hi"}), Some("req-429")).await;

    assert_eq!(status, 429);
    assert_eq!(
        body["error"],
        "The AI service is busy right now. Please try again in a minute."
    );
    assert_eq!(body["requestId"], "req-429");
    assert_eq!(header(&headers, "retry-after").as_deref(), Some("5"));
    assert_eq!(llm.chat_attempts().len(), 1);
    assert!(started.elapsed() < Duration::from_millis(LLM_TIMEOUT_MS));
    assert_eq!(target.events("llm_retry_abandoned").len(), 1);
}

#[tokio::test]
async fn client_errors_from_the_provider_are_not_retried() {
    for code in [400, 401] {
        let llm = StubLlm::start(move |_| Reply::status(code)).await;
        let target = start_target(&llm, &[], &[]).await;

        let (status, _, body) = target.ask("hi").await;

        assert_eq!(status, 500, "provider {code}");
        assert_eq!(body["error"], "Something went wrong.");
        assert_eq!(llm.chat_attempts().len(), 1, "provider {code}");
    }
}

// ---------------------------------------------------------------------------------------------
// The weather tool

#[tokio::test]
async fn weather_questions_call_the_tool_with_the_city() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let weather = StubWeather::start(Reply::Ok).await;
    let target = start_target(&llm, &[("WEATHER_API_URL", &weather.base_url)], &[]).await;

    let (status, _, body) = target.ask("What's the weather in paris today?").await;

    assert_eq!(status, 200);
    assert_eq!(body["degraded"], false);
    assert_eq!(*weather.cities.lock().unwrap(), ["Paris"]);
    let system = llm.chat_attempts()[0].body["messages"][0]["content"].to_string();
    assert!(system.contains("drizzle"), "{system}");
    assert_eq!(target.metrics().await["agent_steps_count"], 2);
}

#[tokio::test]
async fn weather_down_answers_degraded_with_a_banner() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    for reply in [Reply::status(500), Reply::Hang] {
        let weather = StubWeather::start(reply.clone()).await;
        let mut target = start_target(&llm, &[("WEATHER_API_URL", &weather.base_url)], &[]).await;

        let started = Instant::now();
        let (status, _, body) = target.ask("forecast in Oslo?").await;

        assert_eq!(status, 200, "{reply:?}: {body}");
        assert_eq!(body["degraded"], true);
        assert_eq!(body["banner"], "live data unavailable");
        assert_eq!(body["answer"], ANSWER);
        assert!(started.elapsed() < Duration::from_millis(1500));
        let warnings = target.events("tool_unavailable");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0]["level"], "warn");
        let line = &target.request_lines()[0];
        assert_eq!(line["degraded"], true);
        assert_eq!(line["status"], 200);
    }
}

#[tokio::test]
async fn weather_unconfigured_answers_degraded() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(&llm, &[], &[]).await;
    let (status, _, body) = target.ask("temperature in Rome").await;
    assert_eq!(status, 200);
    assert_eq!(body["degraded"], true);
}

#[tokio::test]
async fn no_tool_fallback_flaw_fails_the_request_with_502() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let weather = StubWeather::start(Reply::status(500)).await;
    let target = start_target(
        &llm,
        &[("WEATHER_API_URL", &weather.base_url)],
        &[Flaw::NoToolFallback],
    )
    .await;

    let (status, _, body) = target.ask("weather in Oslo?").await;

    assert_eq!(status, 502);
    assert!(body["requestId"].is_string());
    assert!(llm.chat_attempts().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Flawed error bodies and logs

#[tokio::test]
async fn no_request_id_flaw_drops_the_id_from_errors_and_headers() {
    let llm = StubLlm::start(|_| Reply::status(500)).await;
    let target = start_target(&llm, &[], &[Flaw::NoRequestId]).await;

    let (status, headers, body) = target.chat(json!({"message": "hi"}), Some("req-x")).await;

    assert_eq!(status, 503);
    assert!(body.get("requestId").is_none(), "{body}");
    assert!(header(&headers, "x-request-id").is_none());
    assert!(!body.to_string().contains("req-x"));
}

#[tokio::test]
async fn stack_trace_errors_flaw_leaks_a_backtrace_and_the_upstream_body() {
    let upstream = r#"{"error":{"message":"OpenAI engine overloaded","type":"server_error"}}"#;
    let llm = StubLlm::start(move |_| Reply::status(503).body(upstream)).await;
    let target = start_target(&llm, &[], &[Flaw::StackTraceErrors]).await;

    let (status, _, body) = target.ask("hi").await;

    assert_eq!(status, 503);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("panicked at") && error.contains("stack backtrace"),
        "{error}"
    );
    assert!(error.contains("OpenAI engine overloaded"));
    assert_eq!(body["upstream"], upstream);
}

#[tokio::test]
async fn leak_secrets_flaw_logs_the_key_and_the_message() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(&llm, &[], &[Flaw::LeakSecrets]).await;

    target.ask("my card is 4111 1111 1111 1111 [n:zz9]").await;

    let line = &target.request_lines()[0];
    assert_eq!(line["apiKey"], API_KEY);
    assert!(line["message"].as_str().unwrap().contains("4111 1111"));
}

// ---------------------------------------------------------------------------------------------
// Metrics, readiness, shutdown

#[tokio::test]
async fn metrics_count_tokens_chunks_and_statuses() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(&llm, &[], &[]).await;

    target.ask("refund?").await;
    target.ask("password?").await;
    target.chat(json!({}), None).await;
    let m = target.metrics().await;

    assert_eq!(m["tokens_input"], 84);
    assert_eq!(m["tokens_output"], 14);
    assert_eq!(m["rag_chunks_retrieved"], 6);
    assert_eq!(m["agent_steps_count"], 2);
    assert_eq!(m["requests_total"], 3);
    assert_eq!(m["requests_by_status"], json!({"200": 2, "400": 1}));
    assert_eq!(m["llm_errors_total"], 0);
    assert_eq!(m["cache_hit_ratio"], 0.0);
    assert!(m["llm_latency_ms"]["p50"].as_u64().unwrap() >= 1);
    assert!(
        m["llm_latency_ms"]["p95"].as_u64().unwrap()
            >= m["llm_latency_ms"]["p50"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn healthz_is_503_until_the_corpus_is_indexed() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    llm.state.embeddings_down.store(true, Ordering::SeqCst);
    let target = start_target_unready(&llm, &[], &[]).await;

    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = target
        .http
        .get(format!("{}/healthz", target.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let (status, _, body) = target.ask("hi").await;
    assert_eq!(status, 503);
    assert!(body["requestId"].is_string());

    llm.state.embeddings_down.store(false, Ordering::SeqCst);
    target.wait_ready().await;
    let (status, _, _) = target.ask("hi").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn shutdown_stops_the_server_cleanly() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(&llm, &[], &[]).await;
    let url = target.url.clone();

    target.stop().await.unwrap();

    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let llm = StubLlm::start(|_| Reply::Delay(Duration::from_millis(300))).await;
    let target = start_target(&llm, &[], &[]).await;
    let (http, url) = (target.http.clone(), target.url.clone());
    let in_flight = tokio::spawn(async move {
        http.post(format!("{url}/api/chat"))
            .json(&json!({"message": "hi"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    target.stop().await.unwrap();

    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
}
