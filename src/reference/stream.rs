//! The SSE half of `POST /api/chat` with `"stream": true`: relays the model's deltas to the
//! client as `data: {"delta": "…"}` events, then one final event with the request id, token
//! usage and cache/degraded flags. If the upstream stream breaks or stalls part-way, the client
//! gets an explicit `event: error` with an honest sentence and the request id, never a hang.
//! (The `silent-stream-cut` flaw leaves that event out; `batch-stream` holds deltas back and
//! sends them once a second.)
//!
//! The body is a `futures::stream::unfold` over [`State`], which owns the request's log line:
//! if the client goes away, axum drops the body, the [`RequestLog`] drops, and the request
//! still leaves its line (status 499).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::chat::{cache_set, BANNER_LIVE_DATA_UNAVAILABLE};
use super::flaws::Flaw;
use super::llm_client::{ChatStream, LlmError};
use super::otel::Span;
use super::request::{error_body, Failure, RequestLog};

/// A streamed answer ready to send.
pub struct Pending {
    upstream: Option<ChatStream>,
    first: Option<String>,
    /// Where to cache the finished answer, if it should be.
    cache_key: Option<String>,
    span: Option<Span>,
}

impl Pending {
    /// The model's stream, with its first delta already read.
    pub fn upstream(
        upstream: ChatStream,
        first: Option<String>,
        cache_key: Option<String>,
        span: Span,
    ) -> Pending {
        Pending {
            upstream: Some(upstream),
            first,
            cache_key,
            span: Some(span),
        }
    }

    /// A cache hit, sent as one delta.
    pub fn cached(answer: String) -> Pending {
        Pending {
            upstream: None,
            first: Some(answer),
            cache_key: None,
            span: None,
        }
    }
}

/// Under `batch-stream`, deltas are held this long and sent as one event.
const BATCH_WINDOW: Duration = Duration::from_secs(1);

struct State {
    log: RequestLog,
    pending: Pending,
    answer: String,
    done: bool,
    /// Under `batch-stream`: what the upstream said after the batch closed, sent next.
    held: Option<Result<Option<String>, LlmError>>,
}

pub fn respond(log: RequestLog, pending: Pending) -> Response {
    let state = State {
        log,
        pending,
        answer: String::new(),
        done: false,
        held: None,
    };
    let events = futures::stream::unfold(state, |mut state| async move {
        let event = next_event(&mut state).await?;
        Some((Ok::<_, Infallible>(event), state))
    });
    Sse::new(events)
        // Comments every few seconds keep proxies from closing a slow but healthy stream.
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response()
}

fn delta(text: &str) -> Event {
    Event::default().data(json!({ "delta": text }).to_string())
}

async fn next_event(state: &mut State) -> Option<Event> {
    if state.done {
        return None;
    }
    if let Some(first) = state.pending.first.take() {
        state.answer.push_str(&first);
        return Some(delta(&first));
    }
    let app = state.log.app.clone();
    let next = match (state.held.take(), state.pending.upstream.as_mut()) {
        (Some(held), _) => held,
        (None, Some(upstream)) => upstream.next_delta().await,
        (None, None) => Ok(None),
    };
    match next {
        Ok(Some(mut text)) => {
            // The flaw: deltas are saved up and flushed once a second, to send fewer events.
            if let (true, Some(upstream)) = (
                app.flaws.has(Flaw::BatchStream),
                state.pending.upstream.as_mut(),
            ) {
                let since = Instant::now();
                while since.elapsed() < BATCH_WINDOW {
                    match upstream.next_delta().await {
                        Ok(Some(more)) => text.push_str(&more),
                        other => {
                            state.held = Some(other);
                            break;
                        }
                    }
                }
            }
            state.answer.push_str(&text);
            Some(delta(&text))
        }
        Ok(None) => {
            state.done = true;
            if let Some(upstream) = &state.pending.upstream {
                app.llm.finish_stream(upstream, &mut state.log.stats);
            }
            if let Some(span) = state.pending.span.take() {
                span.end();
            }
            if let Some(key) = state.pending.cache_key.take() {
                cache_set(&app, &state.log, &key, &state.answer).await;
            }
            let log = &mut state.log;
            let body = json!({
                "done": true,
                "requestId": log.request_id,
                "cacheHit": log.cache_hit,
                "degraded": log.degraded,
                "banner": log.degraded.then_some(BANNER_LIVE_DATA_UNAVAILABLE),
                "usage": {"inputTokens": log.stats.input_tokens, "outputTokens": log.stats.output_tokens},
            });
            log.finish(200, None);
            Some(Event::default().data(body.to_string()))
        }
        Err(err) => {
            state.done = true;
            if let Some(mut span) = state.pending.span.take() {
                span.fail();
                span.end();
            }
            app.llm.stream_failed(&err);
            app.log.warn(
                "llm_stream_failed",
                json!({"requestId": state.log.request_id, "reason": err.kind(), "deltasSent": !state.answer.is_empty()}),
            );
            let failure = Failure::Llm(err);
            let body = error_body(&app, &state.log.request_id, &failure);
            state
                .log
                .finish(failure.status().as_u16(), Some(failure.kind()));
            // The flaw: the relay loop stops on an upstream error and just closes the body,
            // so the user's half answer looks finished.
            if app.flaws.has(Flaw::SilentStreamCut) {
                return None;
            }
            Some(Event::default().event("error").data(body.to_string()))
        }
    }
}
