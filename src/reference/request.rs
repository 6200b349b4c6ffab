//! What every API route shares: the request id, the one log line per request
//! ([`RequestLog`]), the failures a request can end in and their honest error bodies.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::cache::CacheError;
use super::flaws::{fake_panic_text, Flaw};
use super::llm_client::{CallStats, LlmError};
use super::log::{now_rfc3339, RequestLine};
use super::otel::Trace;
use super::tool::ToolError;
use super::App;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const REQUEST_ID_MAX: usize = 64;

/// Why a request could not be answered.
#[derive(Debug)]
pub enum Failure {
    /// The body was not what the route needs; the message says what is.
    BadRequest(&'static str),
    /// The corpus is not indexed yet.
    NotReady,
    Llm(LlmError),
    /// Weather, only under `no-tool-fallback`: normally a tool failure degrades the answer.
    Tool(ToolError),
    /// Only under `no-cache-fallback`: normally a cache failure skips the cache.
    Cache(CacheError),
    /// The ticket write failed: nothing was created, or we could not tell.
    Tickets(ToolError),
    TicketsNotConfigured,
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::BadRequest(_) => StatusCode::BAD_REQUEST,
            Failure::NotReady | Failure::TicketsNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Llm(LlmError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Llm(LlmError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Failure::Llm(LlmError::Unavailable { .. } | LlmError::CircuitOpen { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Failure::Llm(LlmError::Interrupted { .. }) => StatusCode::BAD_GATEWAY,
            // Our request or key was refused, or the answer made no sense: our problem.
            Failure::Llm(LlmError::Rejected { .. } | LlmError::Malformed { .. }) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Failure::Tool(_) => StatusCode::BAD_GATEWAY,
            Failure::Cache(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::Tickets(ToolError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Tickets(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The sentence the user sees.
    pub fn message(&self) -> &'static str {
        match self {
            Failure::BadRequest(message) => message,
            Failure::NotReady => "The service is starting up. Please try again shortly.",
            Failure::Llm(LlmError::Timeout) => {
                "The AI service timed out. Please try a shorter question."
            }
            Failure::Llm(LlmError::RateLimited { .. }) => {
                "The AI service is busy right now. Please try again in a minute."
            }
            Failure::Llm(LlmError::Unavailable { .. } | LlmError::CircuitOpen { .. }) => {
                "The AI service is unavailable right now. Please try again shortly."
            }
            Failure::Llm(LlmError::Interrupted { .. }) => {
                "The AI service stopped in the middle of the answer. Please try again."
            }
            Failure::Llm(_) | Failure::Cache(_) => "Something went wrong.",
            Failure::Tool(_) => "The weather service is unavailable.",
            Failure::Tickets(ToolError::Timeout) => {
                "The ticket service did not answer in time; your ticket may not have been \
                 created. Retrying with the same request id will not create a duplicate."
            }
            Failure::Tickets(_) => {
                "The ticket service is unavailable; your ticket was not created. Please try \
                 again shortly."
            }
            Failure::TicketsNotConfigured => "Ticket creation is not available right now.",
        }
    }

    /// The short kind for the log line.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::BadRequest(_) => "bad_request",
            Failure::NotReady => "not_ready",
            Failure::Llm(e) => e.kind(),
            Failure::Tool(_) => "tool_unavailable",
            Failure::Cache(_) => "cache_unavailable",
            Failure::Tickets(_) => "tickets_unavailable",
            Failure::TicketsNotConfigured => "tickets_not_configured",
        }
    }

    /// Internal detail and upstream body, for the `stack-trace-errors` flaw only.
    fn raw(&self) -> (String, Option<String>) {
        match self {
            Failure::Llm(e) => (e.raw(), e.upstream_body().map(str::to_string)),
            Failure::Tool(e) | Failure::Tickets(e) => (format!("ToolError::{e:?}"), None),
            Failure::Cache(e) => (format!("RedisError({e:?})"), None),
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

/// The client's id (sanitised) and whether it sent one; else a fresh UUID.
pub fn request_id_from(headers: &HeaderMap) -> (String, bool) {
    match headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| sanitize_request_id(v.as_bytes()))
    {
        Some(id) => (id, true),
        None => (uuid::Uuid::new_v4().to_string(), false),
    }
}

/// Collects what the request's log line needs and writes it exactly once: when the handler
/// finishes, or on drop if the client went away first (axum then drops the handler's future),
/// so an abandoned request still leaves a line (status 499). Owns the request's trace, so the
/// root span ends with the request too.
pub struct RequestLog {
    pub app: Arc<App>,
    pub route: &'static str,
    pub request_id: String,
    started: Instant,
    pub user_id: Option<String>,
    /// The raw message, kept only under `leak-secrets`.
    pub leaked_message: Option<String>,
    pub stats: CallStats,
    pub degraded: bool,
    pub cache_hit: bool,
    pub stream: bool,
    pub agent_steps: Option<u32>,
    pub trace: Trace,
    written: bool,
}

impl RequestLog {
    pub fn new(app: Arc<App>, route: &'static str, request_id: String) -> RequestLog {
        let mut trace = app.tracer.trace(route);
        trace.set("http.route", route);
        trace.set("request.id", request_id.clone());
        RequestLog {
            app,
            route,
            request_id,
            started: Instant::now(),
            user_id: None,
            leaked_message: None,
            stats: CallStats::default(),
            degraded: false,
            cache_hit: false,
            stream: false,
            agent_steps: None,
            trace,
            written: false,
        }
    }

    pub fn finish(&mut self, status: u16, error: Option<&'static str>) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        self.app.metrics.count_request(self.route, status);
        self.trace.set("http.status_code", status);
        if status >= 500 || status == 499 {
            self.trace.fail();
        }
        self.record_attempt_spans();
        // The flaw: attempts were logged one by one, and the totals never are.
        if self.app.flaws.has(Flaw::LogPerAttempt) {
            return;
        }
        let leak = self.app.flaws.has(Flaw::LeakSecrets);
        self.app.log.request(&RequestLine {
            level: if status == 429 || status == 499 || status >= 500 {
                "error"
            } else {
                "info"
            },
            ts: now_rfc3339(),
            request_id: self.request_id.clone(),
            route: self.route,
            stream: self.stream,
            model: self.app.llm.model().to_string(),
            status,
            latency_ms: self.started.elapsed().as_millis() as u64,
            input_tokens: self.stats.input_tokens,
            output_tokens: self.stats.output_tokens,
            cache_hit: self.cache_hit,
            degraded: self.degraded,
            llm_attempts: self.stats.attempts,
            agent_steps: self.agent_steps,
            user_id: self.user_id.clone(),
            error,
            api_key: leak.then(|| self.app.config.openai_api_key.clone()),
            message: self.leaked_message.take(),
        });
    }
}

impl RequestLog {
    /// One `llm_attempt` span per LLM attempt the request made, retries included (only the
    /// first of each call under `untraced-retries`).
    fn record_attempt_spans(&mut self) {
        let untraced_retries = self.app.flaws.has(Flaw::UntracedRetries);
        for attempt in std::mem::take(&mut self.stats.attempt_spans) {
            if untraced_retries && attempt.resend > 0 {
                continue;
            }
            let mut attributes = vec![
                ("gen_ai.operation.name", json!(attempt.call)),
                ("gen_ai.system", json!("openai")),
                ("request.id", json!(self.request_id)),
            ];
            if attempt.resend > 0 {
                attributes.push(("http.request.resend_count", json!(attempt.resend)));
            }
            if let Some(kind) = attempt.error {
                attributes.push(("error.type", json!(kind)));
            }
            self.trace.record(
                "llm_attempt",
                attempt.start,
                attempt.end,
                attributes,
                attempt.error.is_some(),
            );
        }
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.finish(499, Some("client_closed"));
    }
}

/// Puts the request id on a response, unless the `no-request-id` flaw is on.
pub fn with_request_id(app: &App, request_id: &str, mut response: Response) -> Response {
    if !app.flaws.has(Flaw::NoRequestId) {
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
    }
    response
}

/// The JSON body of an error: the honest sentence and the request id users can quote.
pub fn error_body(app: &App, request_id: &str, failure: &Failure) -> serde_json::Value {
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
    body
}

pub fn error_response(app: &App, request_id: &str, failure: &Failure) -> Response {
    let body = error_body(app, request_id, failure);
    let mut response = (failure.status(), Json(body)).into_response();
    if let Failure::Llm(err @ (LlmError::RateLimited { .. } | LlmError::CircuitOpen { .. })) =
        failure
    {
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
        let (id, given) = request_id_from(&HeaderMap::new());
        assert_eq!(id.len(), 36);
        assert!(!given);
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
                Failure::Llm(LlmError::CircuitOpen {
                    retry_in: std::time::Duration::from_secs(1),
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
            (Failure::BadRequest("x"), 400),
            (Failure::Tool(ToolError::Timeout), 502),
            (Failure::Tickets(ToolError::Timeout), 504),
            (Failure::Cache(CacheError::Timeout), 500),
        ];
        for (failure, status) in cases {
            assert_eq!(failure.status().as_u16(), status, "{failure:?}");
        }
    }
}
