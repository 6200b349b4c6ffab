//! `POST /api/chat`: one RAG chat request from body to answer.
//!
//! Steps: look the normalised question up in the cache (skipping the cache if Redis is down or
//! slow); on a miss embed the message, retrieve the top chunks, call the weather tool if asked
//! (degrading on failure), ask the model, cache the answer. With `"stream": true` the answer
//! is relayed as server-sent events ([`super::stream`]). Every response carries the request
//! id; every failure becomes an honest sentence with a status that says whose problem it is.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cache::cache_key;
use super::flaws::Flaw;
use super::llm_client::{ChatStream, Traffic};
use super::rag::{Chunk, TOP_K};
use super::request::{error_response, request_id_from, with_request_id, Failure, RequestLog};
use super::stream;
use super::tool::{extract_city, is_weather_question};
use super::App;

pub const ROUTE: &str = "/api/chat";
pub const BANNER_LIVE_DATA_UNAVAILABLE: &str = "live data unavailable";
const BAD_REQUEST: &str = "Please send a JSON body with a non-empty \"message\".";

#[derive(Deserialize)]
struct ChatRequest {
    message: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    stream: bool,
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

/// How a request that got past its failures goes on.
pub enum Prepared {
    Answer(ChatAnswer),
    /// A streamed answer: either the upstream stream with its first delta already read (so a
    /// failure before the first token still gets an honest status), or a cached answer.
    Stream(Box<stream::Pending>),
}

pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (request_id, _) = request_id_from(&headers);
    let mut log = RequestLog::new(app.clone(), ROUTE, request_id.clone());
    let response = match prepare(&app, &body, &mut log).await {
        Ok(Prepared::Answer(answer)) => {
            log.finish(200, None);
            Json(answer).into_response()
        }
        Ok(Prepared::Stream(pending)) => stream::respond(log, *pending),
        Err(failure) => {
            log.finish(failure.status().as_u16(), Some(failure.kind()));
            error_response(&app, &request_id, &failure)
        }
    };
    with_request_id(&app, &request_id, response)
}

async fn prepare(app: &App, body: &[u8], log: &mut RequestLog) -> Result<Prepared, Failure> {
    let request: ChatRequest =
        serde_json::from_slice(body).map_err(|_| Failure::BadRequest(BAD_REQUEST))?;
    if request.message.trim().is_empty() {
        return Err(Failure::BadRequest(BAD_REQUEST));
    }
    log.stream = request.stream;
    // The message itself goes upstream untouched: faultline hides its correlation nonce in it.
    let message = request.message;
    let request_id = log.request_id.clone();
    let request_id = request_id.as_str();
    log.user_id = request.user.as_deref().map(|u| app.pseudonyms.user_id(u));
    if app.flaws.has(Flaw::LeakSecrets) {
        log.leaked_message = Some(message.clone());
    }
    let index = app.index.get().ok_or(Failure::NotReady)?;

    // Live data is not cached: a weather answer is stale long before the TTL.
    let key = (!is_weather_question(&message)).then(|| cache_key(&message));
    if let Some(key) = &key {
        if let Some(answer) = cache_get(app, log, key).await? {
            log.cache_hit = true;
            return Ok(if request.stream {
                Prepared::Stream(Box::new(stream::Pending::cached(answer)))
            } else {
                Prepared::Answer(ChatAnswer {
                    answer,
                    request_id: request_id.to_string(),
                    cache_hit: true,
                    degraded: false,
                    banner: None,
                })
            });
        }
    }

    let span = log.trace.span("embed");
    let query = app
        .llm
        .embed(&message, Some(request_id), Traffic::User, &mut log.stats)
        .await;
    end_span(span, query.is_ok());
    let query = query.map_err(Failure::Llm)?;
    let mut span = log.trace.span("retrieve");
    let chunks = index.top_k(&query, TOP_K);
    span.set("rag.chunks", chunks.len() as u64);
    span.end();
    app.metrics.count_chunks(chunks.len());

    let weather = if is_weather_question(&message) {
        let city = extract_city(&message);
        if app.weather_configured() {
            app.metrics.count_agent_step();
        }
        let mut span = log.trace.span("tool_weather");
        span.set("weather.city", city.clone());
        let fetched = app.weather.fetch(&city, Some(request_id)).await;
        end_span(span, fetched.is_ok());
        match fetched {
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
    // A degraded answer is not cached: it would outlive the outage that caused it.
    let key = key.filter(|_| !log.degraded);

    let system = system_prompt(&app.product, &chunks, &weather);
    app.metrics.count_agent_step();
    if request.stream {
        let span = log.trace.span("llm_call");
        let mut upstream: ChatStream = match app
            .llm
            .chat_stream(&system, &message, Some(request_id), &mut log.stats)
            .await
        {
            Ok(upstream) => upstream,
            Err(err) => {
                end_span(span, false);
                return Err(Failure::Llm(err));
            }
        };
        let mut first = match upstream.next_delta().await {
            Ok(first) => first,
            Err(err) => {
                end_span(span, false);
                app.llm.stream_failed(&err);
                return Err(Failure::Llm(err));
            }
        };
        // The flaw: the whole answer is read before a byte goes out (to check or rewrite
        // it), so the user waits as long as for an answer that was never streamed.
        if app.flaws.has(Flaw::BufferStream) {
            let mut whole = first.take().unwrap_or_default();
            loop {
                match upstream.next_delta().await {
                    Ok(Some(more)) => whole.push_str(&more),
                    Ok(None) => break,
                    Err(err) => {
                        end_span(span, false);
                        app.llm.stream_failed(&err);
                        return Err(Failure::Llm(err));
                    }
                }
            }
            first = Some(whole);
        }
        return Ok(Prepared::Stream(Box::new(stream::Pending::upstream(
            upstream, first, key, span,
        ))));
    }

    let span = log.trace.span("llm_call");
    let answer = app
        .llm
        .chat(&system, &message, Some(request_id), &mut log.stats)
        .await;
    end_span(span, answer.is_ok());
    let answer = answer.map_err(Failure::Llm)?;
    if let Some(key) = &key {
        cache_set(app, log, key, &answer).await;
    }

    Ok(Prepared::Answer(ChatAnswer {
        answer,
        request_id: request_id.to_string(),
        cache_hit: false,
        degraded: log.degraded,
        banner: log.degraded.then_some(BANNER_LIVE_DATA_UNAVAILABLE),
    }))
}

fn end_span(mut span: super::otel::Span, ok: bool) {
    if !ok {
        span.fail();
    }
    span.end();
}

/// A cache lookup; `Ok(None)` on a miss and, unless `no-cache-fallback`, when Redis fails.
async fn cache_get(app: &App, log: &mut RequestLog, key: &str) -> Result<Option<String>, Failure> {
    let Some(cache) = &app.cache else {
        return Ok(None);
    };
    let mut span = log.trace.span("cache");
    span.set("cache.op", "get");
    let result = cache.get(key).await;
    match result {
        Ok(hit) => {
            span.set("cache.hit", hit.is_some());
            span.end();
            app.metrics.count_cache(hit.is_some());
            Ok(hit)
        }
        Err(err) => {
            end_span(span, false);
            app.metrics.count_cache_error();
            app.log.warn(
                "cache_unavailable",
                json!({"requestId": log.request_id, "op": "get", "reason": err.kind()}),
            );
            if app.flaws.has(Flaw::NoCacheFallback) {
                return Err(Failure::Cache(err));
            }
            Ok(None)
        }
    }
}

/// Stores an answer with the TTL; a failure only costs a warning.
pub(crate) async fn cache_set(app: &App, log: &RequestLog, key: &str, answer: &str) {
    let Some(cache) = &app.cache else {
        return;
    };
    let mut span = log.trace.span("cache");
    span.set("cache.op", "set");
    if let Err(err) = cache.set(key, answer).await {
        span.fail();
        app.metrics.count_cache_error();
        app.log.warn(
            "cache_unavailable",
            json!({"requestId": log.request_id, "op": "set", "reason": err.kind()}),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
