//! The reference target's deeper practices, each shown working on the healthy service and
//! broken by the flaw that names it, observed from outside only: responses, what the stub
//! upstreams recorded, the log lines, the metrics endpoints, a real redis-server.
//!
//! Stubs are tiny axum servers on 127.0.0.1:0 (the LLM with SSE and tool calls, weather,
//! tickets, an OTLP collector). Redis tests start their own `redis-server` on a free port and
//! kill it on drop; without redis-server they fail and say to run `scripts/test`.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline::reference::{cache_key, Config, Flaw, Server};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const API_KEY: &str = "sk-test-DO-NOT-LOG-77aa";
const LLM_TIMEOUT_MS: u64 = 400;
const ANSWER: &str = "Refunds reach your card in 5-10 business days.";

// ---------------------------------------------------------------------------------------------
// Stub LLM: chat (plain, tools, streamed) and embeddings

#[derive(Clone, Debug)]
enum End {
    /// `data: [DONE]` and a clean end.
    Done,
    /// The connection breaks after the deltas.
    Cut,
    /// Nothing more is sent, ever.
    Stall,
}

#[derive(Clone, Debug)]
enum Reply {
    Ok,
    /// An assistant message asking for these tool calls (name, arguments).
    Tools(Vec<(&'static str, Value)>),
    Stream(Vec<&'static str>, End),
    Status(u16, Vec<(&'static str, &'static str)>),
}

#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    body: Value,
}

type Plan = Box<dyn Fn(usize) -> Reply + Send + Sync>;

struct LlmState {
    plan: Plan,
    seen: Mutex<Vec<Seen>>,
    /// When set, every chat attempt answers 503 (an outage), whatever the plan says.
    down: AtomicBool,
}

struct StubLlm {
    base_url: String,
    state: Arc<LlmState>,
}

impl StubLlm {
    async fn start(plan: impl Fn(usize) -> Reply + Send + Sync + 'static) -> StubLlm {
        let state = Arc::new(LlmState {
            plan: Box::new(plan),
            seen: Mutex::new(vec![]),
            down: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/chat/completions", post(chat))
            .with_state(state.clone());
        StubLlm {
            base_url: format!("http://{}/v1", spawn_server(app).await),
            state,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

async fn embeddings(Json(body): Json<Value>) -> Json<Value> {
    let text = body["input"].as_str().unwrap_or_default().to_lowercase();
    let mut v = vec![0.0f32; 26];
    for c in text.chars().filter(|c| c.is_ascii_lowercase()) {
        v[(c as u8 - b'a') as usize] += 1.0;
    }
    Json(json!({"data": [{"index": 0, "embedding": v}], "usage": {"prompt_tokens": 5}}))
}

async fn chat(State(state): State<Arc<LlmState>>, Json(body): Json<Value>) -> Response {
    let n = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            at: Instant::now(),
            body,
        });
        seen.len() - 1
    };
    if state.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"down\"}").into_response();
    }
    let usage = json!({"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49});
    match (state.plan)(n) {
        Reply::Ok => Json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response(),
        Reply::Tools(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"id": format!("call_{n}_{i}"), "type": "function",
                           "function": {"name": name, "arguments": args.to_string()}})
                })
                .collect();
            Json(json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
                "usage": usage,
            }))
            .into_response()
        }
        Reply::Status(code, headers) => {
            let mut response =
                (StatusCode::from_u16(code).unwrap(), "{\"error\":\"no\"}").into_response();
            for (k, v) in headers {
                response.headers_mut().insert(k, v.parse().unwrap());
            }
            response
        }
        Reply::Stream(deltas, end) => {
            let mut frames: Vec<Result<String, std::io::Error>> = deltas
                .iter()
                .map(|d| {
                    Ok(format!(
                        "data: {}\n\n",
                        json!({"choices": [{"index": 0, "delta": {"content": d}}]})
                    ))
                })
                .collect();
            let tail: futures::stream::BoxStream<'static, Result<String, std::io::Error>> =
                match end {
                    End::Done => {
                        frames.push(Ok(format!(
                            "data: {}\n\ndata: [DONE]\n\n",
                            json!({"choices": [], "usage": usage})
                        )));
                        Box::pin(futures::stream::empty())
                    }
                    End::Cut => Box::pin(futures::stream::once(async {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Err(std::io::Error::other("cut"))
                    })),
                    End::Stall => Box::pin(futures::stream::pending()),
                };
            use futures::StreamExt;
            let body = futures::stream::iter(frames).chain(tail);
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(body))
                .unwrap()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stub tools and collector

#[derive(Clone, Debug)]
struct TicketSeen {
    key: Option<String>,
    body: Value,
}

struct StubTickets {
    base_url: String,
    seen: Arc<Mutex<Vec<TicketSeen>>>,
}

impl StubTickets {
    /// `plan(n)` is the status for attempt `n`; 201 creates a ticket.
    async fn start(plan: impl Fn(usize) -> u16 + Send + Sync + 'static) -> StubTickets {
        let seen = Arc::new(Mutex::new(vec![]));
        let recorded = seen.clone();
        let plan = Arc::new(plan);
        let app = Router::new().route(
            "/tickets",
            post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let n = {
                    let mut s = recorded.lock().unwrap();
                    s.push(TicketSeen {
                        key: headers
                            .get("idempotency-key")
                            .map(|v| v.to_str().unwrap().to_string()),
                        body,
                    });
                    s.len() - 1
                };
                let status = plan(n);
                async move {
                    (
                        StatusCode::from_u16(status).unwrap(),
                        Json(json!({"id": format!("T-{n}")})),
                    )
                }
            }),
        );
        StubTickets {
            base_url: format!("http://{}", spawn_server(app).await),
            seen,
        }
    }

    fn seen(&self) -> Vec<TicketSeen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn stub_weather() -> (String, Arc<Mutex<Vec<String>>>) {
    let cities = Arc::new(Mutex::new(vec![]));
    let seen = cities.clone();
    let app = Router::new().route(
        "/weather",
        get(move |Query(q): Query<HashMap<String, String>>| {
            let city = q.get("city").cloned().unwrap_or_default();
            seen.lock().unwrap().push(city.clone());
            async move { Json(json!({"city": city, "tempC": 9, "conditions": "sleet"})) }
        }),
    );
    (format!("http://{}", spawn_server(app).await), cities)
}

async fn stub_collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies = Arc::new(Mutex::new(vec![]));
    let seen = bodies.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |Json(body): Json<Value>| {
            seen.lock().unwrap().push(body);
            async { Json(json!({})) }
        }),
    );
    (format!("http://{}", spawn_server(app).await), bodies)
}

async fn spawn_server(app: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

// ---------------------------------------------------------------------------------------------
// A real redis-server

struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer { port, child: None };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}); these tests need a real one: run scripts/test \
                     (it provisions redis-server via scripts/provision/redis.sh)"
                )
            });
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < until,
                "redis-server did not start on {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn ttl(&self, key: &str) -> i64 {
        let mut conn = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("TTL").arg(key).query(&mut conn).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// The target

struct Target {
    url: String,
    logs: mpsc::UnboundedReceiver<String>,
    seen_logs: Vec<Value>,
    _stop: oneshot::Sender<()>,
    http: reqwest::Client,
}

async fn start_target(llm: &StubLlm, extra_env: &[(&str, &str)], flaws: &[Flaw]) -> Target {
    let mut env: HashMap<String, String> = [
        ("PORT", "0".to_string()),
        ("OPENAI_BASE_URL", llm.base_url.clone()),
        ("OPENAI_API_KEY", API_KEY.to_string()),
        ("LLM_TIMEOUT_MS", LLM_TIMEOUT_MS.to_string()),
        ("TOOL_TIMEOUT_MS", "300".to_string()),
        ("REDIS_TIMEOUT_MS", "150".to_string()),
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
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let target = Target {
        url,
        logs,
        seen_logs: vec![],
        _stop: stop,
        http: reqwest::Client::new(),
    };
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = target
            .http
            .get(format!("{}/healthz", target.url))
            .send()
            .await
        {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < until, "target never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    target
}

impl Target {
    async fn post(&self, path: &str, body: Value, request_id: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    }

    async fn ask(&self, message: &str) -> (u16, Value) {
        self.post("/api/chat", json!({"message": message}), None)
            .await
    }

    /// A streamed chat: the status and the SSE events as (event name, data JSON).
    async fn ask_streamed(&self, message: &str, id: &str) -> (u16, Vec<(String, Value)>) {
        let response = self
            .http
            .post(format!("{}/api/chat", self.url))
            .header("x-request-id", id)
            .json(&json!({"message": message, "stream": true}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = tokio::time::timeout(Duration::from_secs(3), response.text())
            .await
            .expect("the SSE body must end, not hang")
            .unwrap();
        if status != 200 {
            return (
                status,
                vec![("json".into(), serde_json::from_str(&text).unwrap())],
            );
        }
        let events = text
            .split("\n\n")
            .filter(|e| e.contains("data:"))
            .map(|e| {
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in e.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim());
                    }
                }
                (name, serde_json::from_str(&data).unwrap())
            })
            .collect();
        (status, events)
    }

    async fn metrics(&self) -> Value {
        let r = self.http.get(format!("{}/admin/metrics", self.url));
        r.send().await.unwrap().json().await.unwrap()
    }

    fn logs(&mut self) -> &[Value] {
        while let Ok(line) = self.logs.try_recv() {
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            self.seen_logs.push(value);
        }
        &self.seen_logs
    }

    fn raw_logs(&mut self) -> String {
        let lines: Vec<String> = self.logs().iter().map(|v| v.to_string()).collect();
        lines.join("\n")
    }

    fn request_lines(&mut self) -> Vec<Value> {
        let lines = self.logs().iter().filter(|l| l.get("route").is_some());
        lines.cloned().collect()
    }

    fn events(&mut self, event: &str) -> Vec<Value> {
        let lines = self.logs().iter().filter(|l| l["event"] == event);
        lines.cloned().collect()
    }
}

fn gaps(seen: &[Seen]) -> Vec<Duration> {
    seen.windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cache (real redis-server)

#[tokio::test]
async fn cache_miss_then_hit_skips_the_llm_and_sets_a_ttl() {
    let redis = RedisServer::start().await;
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(
        &llm,
        &[("REDIS_URL", &redis.url()), ("CACHE_TTL_SECS", "120")],
        &[],
    )
    .await;

    let (status, first) = target.ask("How long do refunds take? [fl-1a2b3c4d]").await;
    let (_, second) = target
        .ask("  how long do REFUNDS   take? [fl-99ffee00]")
        .await;

    assert_eq!(status, 200, "{first}");
    assert_eq!(first["cacheHit"], false);
    assert_eq!(second["cacheHit"], true);
    assert_eq!(second["answer"], ANSWER);
    let seen = llm.seen();
    assert_eq!(seen.len(), 1, "a hit makes no LLM call");
    // The nonce is stripped for the key only: the LLM got the full text to correlate.
    assert_eq!(
        seen[0].body["messages"][1]["content"],
        "How long do refunds take? [fl-1a2b3c4d]"
    );
    let ttl = redis.ttl(&cache_key("how long do refunds take?"));
    assert!((1..=120).contains(&ttl), "TTL {ttl}");
    let lines = target.request_lines();
    assert_eq!(lines[0]["cacheHit"], false);
    assert_eq!(lines[1]["cacheHit"], true);
    assert_eq!(lines[1]["inputTokens"], 0);
    let m = target.metrics().await;
    assert_eq!(m["cache_hit_ratio"], 0.5);
    assert!(target.events("cache_unavailable").is_empty());

    // A streamed request hits the same entry: one delta, then the final event says so.
    let (status, events) = target
        .ask_streamed("How long do refunds take? [fl-0000abcd]", "req-sc")
        .await;
    assert_eq!(status, 200);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].1["delta"], ANSWER);
    assert_eq!(events[1].1["cacheHit"], true);
    assert_eq!(llm.seen().len(), 1);
}

#[tokio::test]
async fn redis_killed_mid_test_still_answers_with_a_warning_and_the_cache_comes_back() {
    let mut redis = RedisServer::start().await;
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(&llm, &[("REDIS_URL", &redis.url())], &[]).await;
    let (status, _) = target.ask("refund policy?").await;
    assert_eq!(status, 200);

    redis.kill();
    let started = Instant::now();
    let (status, body) = target.ask("password reset?").await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"], ANSWER);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let warnings = target.events("cache_unavailable");
    assert!(!warnings.is_empty());
    assert_eq!(warnings[0]["level"], "warn");
    assert!(warnings[0]["requestId"].is_string());

    // Back on the same port: the client reconnects and the cache works again.
    redis.spawn().await;
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        target.ask("export my notes?").await;
        let (_, again) = target.ask("export my notes?").await;
        if again["cacheHit"] == true {
            break;
        }
        assert!(Instant::now() < until, "the cache never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_at_most_the_cache_timeout() {
    // Accepts connections and never replies: the worst kind of slow.
    let blackhole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", blackhole.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((socket, _)) = blackhole.accept().await {
            held.push(socket);
        }
    });
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(&llm, &[("REDIS_URL", &url)], &[]).await;

    let started = Instant::now();
    let (status, _) = target.ask("refunds?").await;

    assert_eq!(status, 200);
    // GET and SET, each bounded by REDIS_TIMEOUT_MS=150.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let reasons: Vec<Value> = target
        .events("cache_unavailable")
        .iter()
        .map(|w| w["reason"].clone())
        .collect();
    assert!(reasons.contains(&json!("timeout")), "{reasons:?}");
}

#[tokio::test]
async fn no_cache_fallback_flaw_fails_the_request_when_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    redis.kill();
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(&llm, &[("REDIS_URL", &url)], &[Flaw::NoCacheFallback]).await;

    let (status, body) = target
        .post("/api/chat", json!({"message": "refunds?"}), Some("req-nc"))
        .await;

    assert_eq!(status, 500);
    assert_eq!(body["requestId"], "req-nc");
    assert!(llm.seen().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Streaming

#[tokio::test]
async fn streaming_relays_deltas_then_a_final_event_with_usage() {
    let llm =
        StubLlm::start(|_| Reply::Stream(vec!["Refunds ", "take ", "5 days."], End::Done)).await;
    let mut target = start_target(&llm, &[], &[]).await;

    let (status, events) = target.ask_streamed("refunds?", "req-s1").await;

    assert_eq!(status, 200);
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|(_, d)| d["delta"].as_str())
        .collect();
    assert_eq!(deltas, ["Refunds ", "take ", "5 days."]);
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "message");
    assert_eq!(last["done"], true);
    assert_eq!(last["requestId"], "req-s1");
    assert_eq!(last["usage"]["inputTokens"], 42);
    assert_eq!(last["usage"]["outputTokens"], 7);
    let upstream = &llm.seen()[0].body;
    assert_eq!(upstream["stream"], true);
    assert_eq!(upstream["stream_options"]["include_usage"], true);
    let line = &target.request_lines()[0];
    assert_eq!(line["stream"], true);
    assert_eq!(line["status"], 200);
    assert_eq!(line["outputTokens"], 7);
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_error_event_and_the_request_id() {
    let llm = StubLlm::start(|_| Reply::Stream(vec!["Refunds ", "take "], End::Cut)).await;
    let mut target = start_target(&llm, &[], &[]).await;

    let (status, events) = target.ask_streamed("refunds?", "req-cut").await;

    assert_eq!(status, 200);
    assert_eq!(events.len(), 3, "{events:?}");
    let (name, error) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(error["requestId"], "req-cut");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("Please try again"),
        "{error}"
    );
    assert_eq!(target.request_lines()[0]["error"], "llm_stream_interrupted");
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_event_within_the_llm_timeout() {
    let llm = StubLlm::start(|_| Reply::Stream(vec!["Refunds "], End::Stall)).await;
    let target = start_target(&llm, &[], &[]).await;

    let started = Instant::now();
    let (_, events) = target.ask_streamed("refunds?", "req-stall").await;

    assert!(started.elapsed() < Duration::from_millis(LLM_TIMEOUT_MS * 3));
    let (name, error) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(
        error["error"],
        "The AI service timed out. Please try a shorter question."
    );
}

#[tokio::test]
async fn no_first_token_answers_504_json_within_the_llm_timeout() {
    let llm = StubLlm::start(|_| Reply::Stream(vec![], End::Stall)).await;
    let target = start_target(&llm, &[], &[]).await;

    let started = Instant::now();
    let (status, events) = target.ask_streamed("refunds?", "req-ttft").await;

    assert_eq!(status, 504);
    assert_eq!(events[0].1["requestId"], "req-ttft");
    assert!(started.elapsed() < Duration::from_millis(LLM_TIMEOUT_MS * 2));
}

// ---------------------------------------------------------------------------------------------
// Agent mode

#[tokio::test]
async fn agent_runs_tool_calls_and_feeds_results_back() {
    let llm = StubLlm::start(|n| match n {
        0 => Reply::Tools(vec![("get_weather", json!({"city": "Oslo"}))]),
        1 => Reply::Tools(vec![(
            "create_ticket",
            json!({"subject": "Sleet", "body": "card 4111 1111 1111 1111, password: hunter2"}),
        )]),
        _ => Reply::Ok,
    })
    .await;
    let (weather_url, cities) = stub_weather().await;
    let tickets = StubTickets::start(|_| 201).await;
    let mut target = start_target(
        &llm,
        &[
            ("WEATHER_API_URL", &weather_url),
            ("TICKETS_API_URL", &tickets.base_url),
        ],
        &[],
    )
    .await;

    let (status, body) = target
        .post(
            "/api/agent",
            json!({"message": "weather in Oslo? open a ticket"}),
            Some("req-ag"),
        )
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"], ANSWER);
    assert_eq!(body["steps"], 3);
    assert_eq!(*cities.lock().unwrap(), ["Oslo"]);
    assert_eq!(tickets.seen().len(), 1);
    assert!(tickets.seen()[0].key.is_some());
    let seen = llm.seen();
    assert!(seen[0].body["tools"].as_array().unwrap().len() == 2);
    let fed_back = seen[1].body["messages"].to_string();
    assert!(
        fed_back.contains("sleet"),
        "tool result fed back: {fed_back}"
    );
    assert_eq!(
        target.metrics().await["agent_steps_count"],
        5,
        "3 LLM calls + 2 tools"
    );
    let line = &target.request_lines()[0];
    assert_eq!(line["route"], "/api/agent");
    assert_eq!(line["agentSteps"], 3);
    // Tool arguments are logged, masked.
    let logs = target.raw_logs();
    assert!(target.events("agent_tool_call").len() == 2);
    assert!(!logs.contains("4111 1111"), "card number in logs");
    assert!(!logs.contains("hunter2"), "password in logs");
}

#[tokio::test]
async fn agent_stops_honestly_at_the_step_limit() {
    let llm =
        StubLlm::start(|_| Reply::Tools(vec![("get_weather", json!({"city": "Lima"}))])).await;
    let mut target = start_target(&llm, &[("AGENT_MAX_STEPS", "3")], &[]).await;

    let (status, body) = target
        .post("/api/agent", json!({"message": "loop forever"}), None)
        .await;

    assert_eq!(status, 200);
    assert_eq!(body["stopReason"], "step_limit");
    assert!(body["answer"].as_str().unwrap().contains("3 steps"));
    assert_eq!(llm.seen().len(), 3);
    assert_eq!(target.events("agent_step_limit").len(), 1);
}

#[tokio::test]
async fn unbounded_agent_flaw_loops_far_past_the_limit() {
    let llm = StubLlm::start(|_| Reply::Tools(vec![("nonexistent_tool", json!({}))])).await;
    let target = start_target(&llm, &[("AGENT_MAX_STEPS", "3")], &[Flaw::UnboundedAgent]).await;

    target
        .post("/api/agent", json!({"message": "loop forever"}), None)
        .await;

    assert!(llm.seen().len() > 10, "{} LLM calls", llm.seen().len());
}

// ---------------------------------------------------------------------------------------------
// Tickets and idempotency keys

#[tokio::test]
async fn ticket_writes_are_retried_only_with_the_same_idempotency_key() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let tickets = StubTickets::start(|n| if n < 2 { 503 } else { 201 }).await;
    let mut target = start_target(&llm, &[("TICKETS_API_URL", &tickets.base_url)], &[]).await;
    let ticket = json!({"subject": "Sync broken", "body": "Since Monday."});

    let (status, body) = target
        .post("/api/tickets", ticket.clone(), Some("req-t1"))
        .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ticketId"], "T-2");
    let seen = tickets.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.key.is_some() && s.key == seen[0].key));
    assert_eq!(seen[0].body, ticket);
    assert_eq!(target.events("tickets_retry").len(), 2);

    // The same client request id again: the same key, so the tool can deduplicate.
    target.post("/api/tickets", ticket, Some("req-t1")).await;
    assert_eq!(tickets.seen()[3].key, seen[0].key);
}

#[tokio::test]
async fn tickets_without_a_tool_answer_503_honestly_with_the_request_id() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(&llm, &[], &[]).await;

    let response = target
        .http
        .post(format!("{}/api/tickets", target.url))
        .header("x-request-id", "req-t0")
        .json(&json!({"subject": "a", "body": "b"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-request-id"], "req-t0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], "req-t0");
    assert_eq!(body["error"], "Ticket creation is not available right now.");
    let (status, body) = target
        .post("/api/tickets", json!({"subject": " "}), Some("req-t00"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["requestId"], "req-t00");
}

#[tokio::test]
async fn ticket_client_errors_are_not_retried() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let tickets = StubTickets::start(|_| 422).await;
    let target = start_target(&llm, &[("TICKETS_API_URL", &tickets.base_url)], &[]).await;

    let (status, body) = target
        .post(
            "/api/tickets",
            json!({"subject": "a", "body": "b"}),
            Some("req-t2"),
        )
        .await;

    assert_eq!(status, 502);
    assert_eq!(body["requestId"], "req-t2");
    assert!(body["error"].as_str().unwrap().contains("not created"));
    assert_eq!(tickets.seen().len(), 1);
}

#[tokio::test]
async fn retry_writes_flaw_sends_a_new_idempotency_key_per_retry() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let tickets = StubTickets::start(|n| if n < 2 { 503 } else { 201 }).await;
    let target = start_target(
        &llm,
        &[("TICKETS_API_URL", &tickets.base_url)],
        &[Flaw::RetryWrites],
    )
    .await;

    target
        .post(
            "/api/tickets",
            json!({"subject": "a", "body": "b"}),
            Some("req-t3"),
        )
        .await;

    let keys: std::collections::HashSet<Option<String>> =
        tickets.seen().into_iter().map(|s| s.key).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

#[tokio::test]
async fn the_circuit_opens_fails_fast_and_closes_when_the_llm_is_back() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    llm.state.down.store(true, Ordering::SeqCst);
    let env = [
        ("CIRCUIT_FAILURE_THRESHOLD", "3"),
        ("CIRCUIT_COOLDOWN_MS", "300"),
        ("LLM_MAX_RETRIES", "0"),
    ];
    let mut target = start_target(&llm, &env, &[]).await;

    for _ in 0..3 {
        assert_eq!(target.ask("hi").await.0, 503);
    }
    let started = Instant::now();
    let (status, body) = target.ask("hi").await;

    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        "The AI service is unavailable right now. Please try again shortly."
    );
    assert!(started.elapsed() < Duration::from_millis(200), "fails fast");
    assert_eq!(llm.seen().len(), 3, "no call while open");
    assert_eq!(target.events("circuit_open")[0]["level"], "warn");
    assert_eq!(target.metrics().await["circuit_state"], "open");

    llm.state.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, _) = target.ask("hi").await;

    assert_eq!(status, 200);
    assert_eq!(target.events("circuit_half_open").len(), 1);
    assert_eq!(target.events("circuit_closed").len(), 1);
    assert_eq!(target.metrics().await["circuit_state"], "closed");
}

#[tokio::test]
async fn no_circuit_breaker_flaw_keeps_calling_a_dead_llm() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    llm.state.down.store(true, Ordering::SeqCst);
    let env = [("CIRCUIT_FAILURE_THRESHOLD", "3"), ("LLM_MAX_RETRIES", "0")];
    let mut target = start_target(&llm, &env, &[Flaw::NoCircuitBreaker]).await;

    for _ in 0..6 {
        target.ask("hi").await;
    }

    assert_eq!(llm.seen().len(), 6);
    assert!(target.events("circuit_open").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Retries: budget, storm, retry-after

#[tokio::test]
async fn the_retry_budget_caps_retries_during_an_outage() {
    let llm = StubLlm::start(|_| Reply::Status(503, vec![])).await;
    let env = [
        ("RETRY_BUDGET_MIN", "2"),
        ("RETRY_BUDGET_RATIO", "0"),
        ("CIRCUIT_FAILURE_THRESHOLD", "100"),
    ];
    let mut target = start_target(&llm, &env, &[]).await;

    for _ in 0..4 {
        assert_eq!(target.ask("hi").await.0, 503);
    }

    assert_eq!(
        llm.seen().len(),
        4 + 2,
        "four calls, two retries in the budget"
    );
    assert!(!target.events("retry_budget_exhausted").is_empty());
}

#[tokio::test]
async fn retry_storm_flaw_retries_at_once_many_times() {
    let llm = StubLlm::start(|_| Reply::Status(503, vec![])).await;
    let target = start_target(
        &llm,
        &[("CIRCUIT_FAILURE_THRESHOLD", "100")],
        &[Flaw::RetryStorm],
    )
    .await;

    target.ask("hi").await;

    let seen = llm.seen();
    assert_eq!(seen.len(), 11, "one attempt and ten retries");
    assert!(
        gaps(&seen).iter().all(|g| *g < Duration::from_millis(100)),
        "{:?}",
        gaps(&seen)
    );
}

#[tokio::test]
async fn ignore_retry_after_flaw_retries_sooner_than_asked() {
    let plan = |n| {
        if n == 0 {
            Reply::Status(429, vec![("retry-after-ms", "500")])
        } else {
            Reply::Ok
        }
    };
    let healthy = StubLlm::start(plan).await;
    let target = start_target(&healthy, &[("LLM_TIMEOUT_MS", "800")], &[]).await;
    target.ask("hi").await;
    assert!(gaps(&healthy.seen())[0] >= Duration::from_millis(500));

    let flawed = StubLlm::start(plan).await;
    let target = start_target(
        &flawed,
        &[("LLM_TIMEOUT_MS", "800")],
        &[Flaw::IgnoreRetryAfter],
    )
    .await;
    let (status, _) = target.ask("hi").await;

    assert_eq!(status, 200);
    assert!(
        gaps(&flawed.seen())[0] < Duration::from_millis(400),
        "{:?}",
        gaps(&flawed.seen())
    );
}

// ---------------------------------------------------------------------------------------------
// Metrics and logs

#[tokio::test]
async fn prometheus_metrics_show_the_same_figures_as_the_json() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(&llm, &[], &[]).await;
    target.ask("refunds?").await;

    let response = target
        .http
        .get(format!("{}/metrics", target.url))
        .send()
        .await
        .unwrap();

    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for expected in [
        "# TYPE llm_latency_ms summary",
        "llm_latency_ms_count 1",
        "tokens_input_total 42",
        "tokens_output_total 7",
        "rag_chunks_retrieved_total 3",
        "circuit_state 0",
        "requests_total{route=\"/api/chat\",status=\"200\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let json = target.metrics().await;
    assert_eq!(json["tokens_input"], 42);
    assert_eq!(json["rag_chunks_retrieved"], 3);
}

#[tokio::test]
async fn lying_metrics_flaw_reports_tokens_the_provider_did_not_count() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(&llm, &[], &[Flaw::LyingMetrics]).await;

    target.ask("refunds?").await;

    let m = target.metrics().await;
    // The stub's usage said 42 in, 7 out; so does the log line.
    assert_eq!(target.request_lines()[0]["inputTokens"], 42);
    assert_ne!(m["tokens_input"], 42);
    assert_ne!(m["tokens_output"], 7);
}

#[tokio::test]
async fn log_per_attempt_flaw_writes_attempt_lines_and_no_totals() {
    let llm = StubLlm::start(|n| {
        if n == 0 {
            Reply::Status(503, vec![])
        } else {
            Reply::Ok
        }
    })
    .await;
    let mut healthy = start_target(&llm, &[], &[]).await;
    healthy.ask("hi").await;
    let lines = healthy.request_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["llmAttempts"], 3, "embedding, 503, retry");

    let llm = StubLlm::start(|n| {
        if n == 0 {
            Reply::Status(503, vec![])
        } else {
            Reply::Ok
        }
    })
    .await;
    let mut flawed = start_target(&llm, &[], &[Flaw::LogPerAttempt]).await;
    flawed.ask("hi").await;

    let attempts = flawed.events("llm_attempt");
    let attempts: Vec<&Value> = attempts
        .iter()
        .filter(|l| l["requestId"] != "startup-index")
        .collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(flawed.request_lines().is_empty(), "no line with the totals");
    assert!(!flawed.logs().iter().any(|l| l.get("inputTokens").is_some()));
}

// ---------------------------------------------------------------------------------------------
// Traces

#[tokio::test]
async fn spans_are_exported_as_otlp_json_under_one_trace() {
    let (collector, bodies) = stub_collector().await;
    let (weather_url, _) = stub_weather().await;
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let target = start_target(
        &llm,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("WEATHER_API_URL", &weather_url),
        ],
        &[],
    )
    .await;

    target.ask("weather in Oslo?").await;

    let spans = spans_once_the_root_is_in(&bodies).await;
    let root = spans.iter().find(|s| s["name"] == "/api/chat").unwrap();
    let trace_id = root["traceId"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    for name in ["embed", "retrieve", "tool_weather", "llm_call"] {
        let span = spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:?}"));
        assert_eq!(span["traceId"], trace_id);
        assert_eq!(span["parentSpanId"], root["spanId"]);
        let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(start > 1_600_000_000_000_000_000 && start <= end);
    }
}

/// Every span the target exported, once one request's root span is in.
async fn spans_once_the_root_is_in(bodies: &Arc<Mutex<Vec<Value>>>) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let spans: Vec<Value> = bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| {
                b["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        if spans.iter().any(|s| s["name"] == "/api/chat") {
            return spans;
        }
        assert!(Instant::now() < until, "no root span exported: {spans:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `llm_attempt` spans for chat calls one request of `target` exported, once its root span
/// is in.
async fn chat_attempt_spans(bodies: &Arc<Mutex<Vec<Value>>>) -> Vec<Value> {
    spans_once_the_root_is_in(bodies)
        .await
        .into_iter()
        .filter(|s| {
            s["name"] == "llm_attempt"
                && s["attributes"].as_array().unwrap().iter().any(|a| {
                    a["key"] == "gen_ai.operation.name" && a["value"]["stringValue"] == "chat"
                })
        })
        .collect()
}

#[tokio::test]
async fn every_llm_attempt_is_a_span_unless_retries_go_untraced() {
    for (flaws, expected) in [(vec![], 2), (vec![Flaw::UntracedRetries], 1)] {
        let (collector, bodies) = stub_collector().await;
        let llm = StubLlm::start(|n| {
            if n == 0 {
                Reply::Status(503, vec![])
            } else {
                Reply::Ok
            }
        })
        .await;
        let target = start_target(
            &llm,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
                ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ],
            &flaws,
        )
        .await;
        target.ask("hi").await;

        let attempts = chat_attempt_spans(&bodies).await;
        assert_eq!(attempts.len(), expected, "{flaws:?}: {attempts:?}");
        let failed = &attempts[0];
        assert_eq!(failed["status"]["code"], 2, "the 503 attempt failed");
        if expected == 2 {
            let resend = attempts[1]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "http.request.resend_count")
                .expect("the retry says it is one");
            assert_eq!(resend["value"]["intValue"], "1");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The command line

#[test]
fn list_flaws_names_every_flaw_with_the_practice_it_breaks() {
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["reference-target", "--list-flaws"])
        .env_remove("PORT")
        .output()
        .unwrap();

    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    use clap::ValueEnum;
    for flaw in Flaw::value_variants() {
        let name = flaw.to_possible_value().unwrap().get_name().to_string();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"));
        assert!(line.contains("breaks: "), "{line}");
    }
    assert_eq!(text.lines().count(), Flaw::value_variants().len());
}

// ---------------------------------------------------------------------------------------------
// Flaws that break one practice each (faultline's selftest shows a gate catching each)

#[tokio::test]
async fn retry_client_errors_flaw_retries_a_400_that_the_healthy_target_accepts() {
    let llm = StubLlm::start(|_| Reply::Status(400, vec![])).await;
    let target = start_target(&llm, &[], &[]).await;
    let (status, _) = target.ask("refunds?").await;
    assert_eq!(status, 500);
    assert_eq!(llm.seen().len(), 1, "a 400 is not retried");

    let llm = StubLlm::start(|_| Reply::Status(400, vec![])).await;
    let target = start_target(&llm, &[], &[Flaw::RetryClientErrors]).await;
    target.ask("refunds?").await;
    assert_eq!(llm.seen().len(), 3, "the flaw retries it twice");
}

#[tokio::test]
async fn nested_retries_flaw_multiplies_attempts_past_the_retry_limit() {
    // A long enough timeout that the deadline never cuts the retries short.
    let env = [("LLM_TIMEOUT_MS", "3000")];
    let llm = StubLlm::start(|_| Reply::Status(503, vec![])).await;
    let target = start_target(&llm, &env, &[]).await;
    target.ask("refunds?").await;
    assert_eq!(llm.seen().len(), 3, "one attempt and two retries");

    let llm = StubLlm::start(|_| Reply::Status(503, vec![])).await;
    let target = start_target(&llm, &env, &[Flaw::NestedRetries]).await;
    target.ask("refunds?").await;
    assert_eq!(
        llm.seen().len(),
        9,
        "three attempts, each retried twice inside"
    );
}

#[tokio::test]
async fn miscount_tokens_flaw_logs_word_counts_while_metrics_keep_the_usage() {
    let llm = StubLlm::start(|_| Reply::Ok).await;
    let mut target = start_target(&llm, &[], &[Flaw::MiscountTokens]).await;

    target.ask("refunds?").await;

    let line = &target.request_lines()[0];
    // The stub's usage said 42 in, 7 out; the answer has 8 words.
    assert_eq!(line["outputTokens"], ANSWER.split_whitespace().count());
    assert_ne!(line["inputTokens"], 42);
    let m = target.metrics().await;
    assert_eq!(m["tokens_input"], 42);
    assert_eq!(m["tokens_output"], 7);
}

#[tokio::test]
async fn silent_stream_cut_flaw_closes_a_cut_stream_without_an_error_event() {
    let llm = StubLlm::start(|_| Reply::Stream(vec!["Refunds ", "take "], End::Cut)).await;
    let mut target = start_target(&llm, &[], &[Flaw::SilentStreamCut]).await;

    let (status, events) = target.ask_streamed("refunds?", "req-silent").await;

    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["message", "message"], "{events:?}");
    assert!(events.iter().all(|(_, data)| data.get("delta").is_some()));
    // The log still knows.
    assert_eq!(target.request_lines()[0]["error"], "llm_stream_interrupted");
}

/// The deltas a target with `flaw` relays of a three-chunk stream the stub sends at once.
async fn relayed_deltas(flaw: Flaw) -> Vec<String> {
    let llm =
        StubLlm::start(|_| Reply::Stream(vec!["Refunds ", "take ", "5 days."], End::Done)).await;
    let target = start_target(&llm, &[], &[flaw]).await;

    let (status, events) = target.ask_streamed("refunds?", "req-relay").await;

    assert_eq!(status, 200);
    assert_eq!(events.last().unwrap().1["done"], true);
    events
        .iter()
        .filter_map(|(_, d)| d["delta"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn buffer_stream_flaw_sends_the_whole_answer_as_one_delta() {
    assert_eq!(
        relayed_deltas(Flaw::BufferStream).await,
        ["Refunds take 5 days."]
    );
}

#[tokio::test]
async fn batch_stream_flaw_sends_the_deltas_after_the_first_in_one_burst() {
    // The stub sends at once: everything after the first delta lands in one batch.
    assert_eq!(
        relayed_deltas(Flaw::BatchStream).await,
        ["Refunds ", "take 5 days."]
    );
}
