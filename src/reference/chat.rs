//! `POST /api/chat`: one RAG chat request from body to answer, and its one log line.
//!
//! Steps: embed the message, retrieve the top chunks, call the weather tool if asked (degrading
//! on failure), ask the model, answer. Every response carries the request id; every failure
//! becomes an honest sentence with a status that says whose problem it is.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::flaws::{fake_panic_text, Flaw};
use super::llm_client::{CallStats, LlmError};
use super::log::{now_rfc3339, RequestLine};
use super::rag::{Chunk, TOP_K};
use super::tool::{extract_city, is_weather_question, ToolError};
use super::App;

pub const ROUTE: &str = "/api/chat";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const REQUEST_ID_MAX: usize = 64;
pub const BANNER_LIVE_DATA_UNAVAILABLE: &str = "live data unavailable";

#[derive(Deserialize)]
struct ChatRequest {
    message: String,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatAnswer {
    pub answer: String,
    pub request_id: String,
    pub cache_hit: bool,
    pub degraded: bool,
    pub banner: Option<&'static str>,
}

/// Why a request could not be answered.
#[derive(Debug)]
enum Failure {
    BadRequest,
    /// The corpus is not indexed yet.
    NotReady,
    Llm(LlmError),
    /// Only under `no-tool-fallback`: normally a tool failure degrades the answer instead.
    Tool(ToolError),
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Failure::BadRequest => StatusCode::BAD_REQUEST,
            Failure::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Llm(LlmError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Llm(LlmError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Failure::Llm(LlmError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            // Our request or key was refused, or the answer made no sense: our problem.
            Failure::Llm(LlmError::Rejected { .. } | LlmError::Malformed { .. }) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Failure::Tool(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The sentence the user sees.
    fn message(&self) -> &'static str {
        match self {
            Failure::BadRequest => "Please send a JSON body with a non-empty \"message\".",
            Failure::NotReady => "The service is starting up. Please try again shortly.",
            Failure::Llm(LlmError::Timeout) => {
                "The AI service timed out. Please try a shorter question."
            }
            Failure::Llm(LlmError::RateLimited { .. }) => {
                "The AI service is busy right now. Please try again in a minute."
            }
            Failure::Llm(LlmError::Unavailable { .. }) => {
                "The AI service is unavailable right now. Please try again shortly."
            }
            Failure::Llm(_) => "Something went wrong.",
            Failure::Tool(_) => "The weather service is unavailable.",
        }
    }

    /// The short kind for the log line.
    fn kind(&self) -> &'static str {
        match self {
            Failure::BadRequest => "bad_request",
            Failure::NotReady => "not_ready",
            Failure::Llm(e) => e.kind(),
            Failure::Tool(_) => "tool_unavailable",
        }
    }

    /// Internal detail and upstream body, for the `stack-trace-errors` flaw only.
    fn raw(&self) -> (String, Option<String>) {
        match self {
            Failure::Llm(e) => (e.raw(), e.upstream_body().map(str::to_string)),
            Failure::Tool(e) => (format!("ToolError::{e:?}"), None),
            other => (format!("{other:?}"), None),
        }
    }
}

/// Keeps the `[A-Za-z0-9_-]` characters of an incoming id, up to 64; `None` if nothing is left.
pub fn sanitize_request_id(raw: &[u8]) -> Option<String> {
    let id: String = raw
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
        .take(REQUEST_ID_MAX)
        .map(|b| *b as char)
        .collect();
    (!id.is_empty()).then_some(id)
}

fn request_id_from(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| sanitize_request_id(v.as_bytes()))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Collects what the request's log line needs and writes it exactly once: when the handler
/// finishes, or on drop if the client went away first (axum then drops the handler's future),
/// so an abandoned request still leaves a line (status 499).
struct RequestLog {
    app: Arc<App>,
    request_id: String,
    started: Instant,
    user_id: Option<String>,
    /// The raw message, kept only under `leak-secrets`.
    leaked_message: Option<String>,
    stats: CallStats,
    degraded: bool,
    written: bool,
}

impl RequestLog {
    fn finish(&mut self, status: u16, error: Option<&'static str>) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        self.app.metrics.count_request(status);
        let leak = self.app.flaws.has(Flaw::LeakSecrets);
        self.app.log.request(&RequestLine {
            level: if status == 429 || status == 499 || status >= 500 {
                "error"
            } else {
                "info"
            },
            ts: now_rfc3339(),
            request_id: self.request_id.clone(),
            route: ROUTE,
            model: self.app.config.model.clone(),
            status,
            latency_ms: self.started.elapsed().as_millis() as u64,
            input_tokens: self.stats.input_tokens,
            output_tokens: self.stats.output_tokens,
            cache_hit: false,
            degraded: self.degraded,
            llm_attempts: self.stats.attempts,
            user_id: self.user_id.clone(),
            error,
            api_key: leak.then(|| self.app.config.openai_api_key.clone()),
            message: self.leaked_message.take(),
        });
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.finish(499, Some("client_closed"));
    }
}

pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = request_id_from(&headers);
    let mut log = RequestLog {
        app: app.clone(),
        request_id: request_id.clone(),
        started: Instant::now(),
        user_id: None,
        leaked_message: None,
        stats: CallStats::default(),
        degraded: false,
        written: false,
    };

    let mut response = match answer(&app, &request_id, &body, &mut log).await {
        Ok(answer) => {
            log.finish(200, None);
            Json(answer).into_response()
        }
        Err(failure) => {
            log.finish(failure.status().as_u16(), Some(failure.kind()));
            error_response(&app, &request_id, &failure)
        }
    };
    if !app.flaws.has(Flaw::NoRequestId) {
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
    }
    response
}

async fn answer(
    app: &App,
    request_id: &str,
    body: &[u8],
    log: &mut RequestLog,
) -> Result<ChatAnswer, Failure> {
    let request: ChatRequest = serde_json::from_slice(body).map_err(|_| Failure::BadRequest)?;
    if request.message.trim().is_empty() {
        return Err(Failure::BadRequest);
    }
    // The message itself goes upstream untouched: faultline hides its correlation nonce in it.
    let message = request.message;
    log.user_id = request.user.as_deref().map(|u| app.pseudonyms.user_id(u));
    if app.flaws.has(Flaw::LeakSecrets) {
        log.leaked_message = Some(message.clone());
    }
    let index = app.index.get().ok_or(Failure::NotReady)?;

    let query = app
        .llm
        .embed(&message, Some(request_id), &mut log.stats)
        .await
        .map_err(Failure::Llm)?;
    let chunks = index.top_k(&query, TOP_K);
    app.metrics.count_chunks(chunks.len());

    let weather = if is_weather_question(&message) {
        let city = extract_city(&message);
        if app.weather_configured() {
            app.metrics.count_agent_step();
        }
        match app.weather.fetch(&city, Some(request_id)).await {
            Ok(data) => Weather::Live(data),
            Err(err) => {
                app.log.warn(
                    "tool_unavailable",
                    json!({
                        "requestId": request_id,
                        "tool": "weather",
                        "reason": err.kind(),
                    }),
                );
                if app.flaws.has(Flaw::NoToolFallback) {
                    return Err(Failure::Tool(err));
                }
                log.degraded = true;
                Weather::Unavailable
            }
        }
    } else {
        Weather::NotAsked
    };

    let system = system_prompt(&app.product, &chunks, &weather);
    app.metrics.count_agent_step();
    let answer = app
        .llm
        .chat(&system, &message, Some(request_id), &mut log.stats)
        .await
        .map_err(Failure::Llm)?;

    Ok(ChatAnswer {
        answer,
        request_id: request_id.to_string(),
        cache_hit: false,
        degraded: log.degraded,
        banner: log.degraded.then_some(BANNER_LIVE_DATA_UNAVAILABLE),
    })
}

enum Weather {
    NotAsked,
    Live(Value),
    Unavailable,
}

fn system_prompt(product: &str, chunks: &[&Chunk], weather: &Weather) -> String {
    let mut prompt = format!(
        "You are the help-desk assistant for {product}. Answer briefly, using only the context \
         below. If the context does not cover the question, say so.\n\nContext:\n"
    );
    for (n, chunk) in chunks.iter().enumerate() {
        prompt.push_str(&format!("[{}] {}: {}\n", n + 1, chunk.title, chunk.text));
    }
    match weather {
        Weather::NotAsked => {}
        Weather::Live(data) => {
            prompt.push_str(&format!("\nLive weather data (JSON): {data}\n"));
        }
        Weather::Unavailable => prompt.push_str(
            "\nLive weather data is unavailable right now: say so, and do not invent current \
             conditions.\n",
        ),
    }
    prompt
}

fn error_response(app: &App, request_id: &str, failure: &Failure) -> Response {
    let mut body = json!({ "error": failure.message() });
    if !app.flaws.has(Flaw::NoRequestId) {
        // Shown so users can quote it to support, and support can grep the logs for it.
        body["requestId"] = json!(request_id);
    }
    if app.flaws.has(Flaw::StackTraceErrors) {
        let (raw, upstream) = failure.raw();
        body["error"] = json!(fake_panic_text(&raw));
        body["upstream"] = json!(upstream);
    }
    let mut response = (failure.status(), Json(body)).into_response();
    if let Failure::Llm(err @ LlmError::RateLimited { .. }) = failure {
        // Whole seconds, rounded up; a minute when the provider gave no hint (as the message says).
        let secs = err
            .client_retry_after()
            .map(|d| d.as_secs_f64().ceil().max(1.0) as u64)
            .unwrap_or(60);
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_keep_only_safe_characters_up_to_64() {
        assert_eq!(
            sanitize_request_id(b"abc-123_XYZ").as_deref(),
            Some("abc-123_XYZ")
        );
        assert_eq!(
            sanitize_request_id(b"a b\r\nc<script>").as_deref(),
            Some("abcscript")
        );
        assert_eq!(sanitize_request_id(&[b'x'; 100]).unwrap().len(), 64);
        assert_eq!(sanitize_request_id(b" !@#"), None);
    }

    #[test]
    fn a_missing_request_id_is_generated() {
        let id = request_id_from(&HeaderMap::new());
        assert_eq!(id.len(), 36);
    }

    #[test]
    fn failures_map_to_honest_statuses() {
        let cases = [
            (Failure::Llm(LlmError::Timeout), 504),
            (
                Failure::Llm(LlmError::RateLimited {
                    retry_after: None,
                    raw: String::new(),
                }),
                429,
            ),
            (
                Failure::Llm(LlmError::Unavailable {
                    status: None,
                    retry_after: None,
                    raw: String::new(),
                }),
                503,
            ),
            (
                Failure::Llm(LlmError::Rejected {
                    status: 401,
                    raw: String::new(),
                }),
                500,
            ),
            (Failure::BadRequest, 400),
            (Failure::Tool(ToolError::Timeout), 502),
        ];
        for (failure, status) in cases {
            assert_eq!(failure.status().as_u16(), status, "{failure:?}");
        }
    }

    #[test]
    fn system_prompt_lists_chunks_and_weather_state() {
        let chunk = Chunk {
            id: "a".into(),
            title: "Refunds".into(),
            text: "Within 14 days.".into(),
        };
        let live = system_prompt("Lumen", &[&chunk], &Weather::Live(json!({"tempC": 12})));
        assert!(live.contains("[1] Refunds: Within 14 days."));
        assert!(live.contains("{\"tempC\":12}"));
        let down = system_prompt("Lumen", &[&chunk], &Weather::Unavailable);
        assert!(down.contains("unavailable"));
    }
}
