//! The HTTP API, with this service's own conventions:
//!
//! - `POST /api/v2/ask` `{"query": {"text": "..."}}` → `{"data": {"answer", "degraded",
//!   "from_cache"}, "correlation_id"}`
//! - `POST /api/v2/tickets` `{"title", "requester"}` → 201 `{"data": {"ticket"}, "correlation_id"}`
//! - errors: `{"error": {"code", "message"}, "correlation_id"}` with an honest status
//! - the correlation id comes in and goes out as `x-correlation-id`; one JSON log line per request.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::llm::LlmFailure;
use crate::tools;
use crate::App;

const HEADER: &str = "x-correlation-id";

/// What the request's one log line says, filled in as the request goes.
#[derive(Default)]
pub struct Summary {
    prompt_tokens: u64,
    completion_tokens: u64,
    cache_hit: bool,
    degraded: bool,
    code: Option<&'static str>,
    question: Option<String>,
}

#[derive(Clone)]
pub struct Ctx {
    id: String,
    summary: Arc<Mutex<Summary>>,
}

/// The correlation id (the caller's, when it looks like one), the request's span, its one log
/// line, and the id on the way out.
pub async fn track(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let given = req.headers().get(HEADER).and_then(|v| v.to_str().ok());
    let id = match given {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) =>
        {
            id.to_string()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let route = req.uri().path().to_string();
    let summary = Arc::new(Mutex::new(Summary::default()));
    req.extensions_mut().insert(Ctx {
        id: id.clone(),
        summary: summary.clone(),
    });
    let span = tracing::info_span!(
        "http_request",
        otel.kind = "server",
        otel.name = format!("{} {route}", req.method()),
        correlation_id = %id,
        http.response.status_code = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    if route == "/metrics" || route == "/healthz" {
        return response;
    }
    app.metrics
        .requests
        .with_label_values(&[route.as_str(), &status.to_string()])
        .inc();
    let s = summary.lock().unwrap();
    let latency_ms = started.elapsed().as_millis() as u64;
    let question = s
        .question
        .as_deref()
        .filter(|_| app.config.has("leak-secrets"));
    macro_rules! line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                correlation_id = %id,
                route = %route,
                status,
                latency_ms,
                prompt_tokens = s.prompt_tokens,
                completion_tokens = s.completion_tokens,
                cache_hit = s.cache_hit,
                degraded = s.degraded,
                code = s.code,
                question,
                $message
            )
        };
    }
    if status >= 500 {
        line!(error, "request failed");
    } else {
        line!(info, "request");
    }
    response
}

/// An honest failure: a status, a sentence, the correlation id, nothing internal.
fn fail(app: &App, ctx: &Ctx, status: StatusCode, code: &'static str, message: &str) -> Response {
    ctx.summary.lock().unwrap().code = Some(code);
    if app.config.has("stack-trace-errors") {
        let cause = app
            .llm
            .last_error
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default();
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": format!("{code}: {cause}"), "backtrace": trace, "correlation_id": ctx.id })),
        )
            .into_response();
    }
    (
        status,
        Json(json!({ "error": { "code": code, "message": message }, "correlation_id": ctx.id })),
    )
        .into_response()
}

fn told(failure: &LlmFailure) -> (StatusCode, &'static str, &'static str) {
    use LlmFailure::*;
    match failure {
        CircuitOpen => (
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_circuit_open",
            "The assistant is unavailable right now. Please try again in a minute.",
        ),
        Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "llm_timeout",
            "The assistant took too long to answer. Please try again.",
        ),
        RateLimited => (
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_busy",
            "The assistant is busy right now. Please try again in a minute.",
        ),
        Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "llm_unavailable",
            "The assistant is unavailable right now. Please try again shortly.",
        ),
        Rejected => (
            StatusCode::BAD_GATEWAY,
            "llm_rejected",
            "The assistant could not process this question. Please rephrase it.",
        ),
        BadAnswer => (
            StatusCode::BAD_GATEWAY,
            "llm_bad_answer",
            "The assistant sent an answer we could not read. Please try again.",
        ),
    }
}

pub async fn ask(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let question = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/query/text")
                .and_then(Value::as_str)
                .map(str::trim)
                .map(String::from)
        })
        .filter(|q| !q.is_empty());
    let Some(question) = question else {
        return fail(
            &app,
            &ctx,
            StatusCode::BAD_REQUEST,
            "bad_request",
            r#"Please send a JSON body like {"query": {"text": "your question"}}."#,
        );
    };
    ctx.summary.lock().unwrap().question = Some(question.clone());

    let key = tools::cache_key(&question);
    if let Some(cache) = &app.cache {
        match cache.get(&key).await {
            Ok(Some(answer)) => {
                ctx.summary.lock().unwrap().cache_hit = true;
                return answer_with(&ctx, &answer, false, true);
            }
            Ok(None) => {}
            Err(down) => {
                tracing::warn!(correlation_id = %ctx.id, event = "cache_unavailable", reason = %down.0, "redis unreachable; answering without the cache");
                if app.config.has("no-cache-fallback") {
                    return fail(
                        &app,
                        &ctx,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "cache_unavailable",
                        "The service is unavailable right now. Please try again shortly.",
                    );
                }
            }
        }
    }

    let mut context = String::new();
    let mut degraded = false;
    if let (Some(base), Some(city)) = (&app.config.weather_url, tools::weather_city(&question)) {
        match tools::weather(&app.http, base, &city, &ctx.id, app.config.tool_timeout).await {
            Ok(live) => context = format!("Live weather: {live}"),
            Err(why) => {
                tracing::warn!(correlation_id = %ctx.id, event = "tool_unavailable", tool = "weather", reason = %why, "weather tool failed; answering without live data");
                degraded = true;
            }
        }
    }

    let system = format!("You are a helpful support assistant. {context}");
    let completion = match app.llm.complete(&ctx.id, &system, &question).await {
        Ok(c) => c,
        Err(failure) => {
            let (status, code, message) = told(&failure);
            return fail(&app, &ctx, status, code, message);
        }
    };
    {
        let mut s = ctx.summary.lock().unwrap();
        s.prompt_tokens = completion.prompt_tokens;
        s.completion_tokens = completion.completion_tokens;
        s.degraded = degraded;
    }
    // A degraded answer is not cached: once the tool is back, the live one should be given.
    if let (Some(cache), false) = (&app.cache, degraded) {
        let _ = cache.set(&key, &completion.text).await; // already warned on the read if down
    }
    answer_with(&ctx, &completion.text, degraded, false)
}

fn answer_with(ctx: &Ctx, answer: &str, degraded: bool, from_cache: bool) -> Response {
    Json(json!({
        "data": { "answer": answer, "degraded": degraded, "from_cache": from_cache },
        "correlation_id": ctx.id,
    }))
    .into_response()
}

pub async fn tickets(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let (Some(title), Some(requester)) = (field("title"), field("requester")) else {
        return fail(
            &app,
            &ctx,
            StatusCode::BAD_REQUEST,
            "bad_request",
            r#"Please send a JSON body with a "title" and a "requester"."#,
        );
    };
    let Some(base) = &app.config.tickets_url else {
        return fail(
            &app,
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "tickets_unavailable",
            "Tickets cannot be filed right now. Please try again later.",
        );
    };
    let ticket = json!({ "title": title, "requester": requester });
    match tools::file_ticket(&app.http, base, &ticket, &ctx.id, app.config.tool_timeout).await {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "data": { "ticket": id }, "correlation_id": ctx.id })),
        )
            .into_response(),
        Err(why) => {
            tracing::warn!(correlation_id = %ctx.id, event = "tool_unavailable", tool = "tickets", reason = %why, "ticket write failed");
            fail(
                &app,
                &ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "tickets_unavailable",
                "We could not file your ticket right now. Please try again shortly.",
            )
        }
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "ok": true }))
}
