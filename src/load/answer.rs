//! Reading the target's answers: status, the request id and markers the API description
//! points at, and for streamed answers (SSE) how the stream went, event by event.
//!
//! Goose times to the first byte; a chat answer is only useful when complete, so the whole
//! body is read and timed here.

use crate::sync::LockExt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::evidence::{Record, StreamEnd, StreamTiming};
use crate::scenario::api::ResponseShape;

/// What came back for one request.
#[derive(Debug, Default)]
pub struct Answer {
    pub status: u16,
    pub request_id: Option<String>,
    pub degraded: Option<bool>,
    pub cache_hit: Option<bool>,
    pub excerpt: String,
}

/// Gaps kept per stream: enough for p95s, bounded so a long stream cannot grow a record.
const GAPS_KEPT: usize = 1000;

/// A stream's timing, shared with the caller so a stream cut off by the end of the run still
/// reports what arrived.
pub type SharedTiming = Arc<Mutex<Option<StreamTiming>>>;

/// Reads a whole answer. For `stream`, reads it as SSE and fills `timing` as events arrive.
pub async fn read(
    response: Result<reqwest::Response, reqwest::Error>,
    shape: &ResponseShape,
    sent: Instant,
    stream: Option<&SharedTiming>,
) -> Result<Answer, String> {
    let mut response = response.map_err(|e| error_kind(&e))?;
    let status = response.status().as_u16();
    let header_id = shape.request_id_header.as_ref().and_then(|name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let is_sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = match stream {
        Some(timing) if is_sse => read_sse(&mut response, sent, timing).await?,
        _ => response.text().await.map_err(|e| error_kind(&e))?,
    };
    // A streamed answer's markers live in its last JSON event; a plain one's in the body.
    let json_part = if is_sse {
        last_sse_json(&body)
    } else {
        body.clone()
    };
    let markers = Markers::read(&json_part, shape);
    Ok(Answer {
        status,
        request_id: header_id.or(markers.request_id),
        degraded: markers.degraded,
        cache_hit: markers.cache_hit,
        excerpt: excerpt(&body),
    })
}

/// Reads an SSE body chunk by chunk, timing content events. Keeps at most the excerpt's worth
/// of text.
async fn read_sse(
    response: &mut reqwest::Response,
    sent: Instant,
    timing: &SharedTiming,
) -> Result<String, String> {
    *timing.locked() = Some(StreamTiming {
        end: StreamEnd::Stalled,
        ..StreamTiming::default()
    });
    let mut kept = String::new();
    let mut pending = String::new();
    let mut last_event_at: Option<Instant> = None;
    let mut finished = false;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => {
                // The connection broke mid-body: a cut stream, unless it had already ended.
                if !finished {
                    set_end(timing, StreamEnd::Cut);
                }
                return Ok(kept);
            }
        };
        let text = String::from_utf8_lossy(&chunk);
        if kept.len() < Record::EXCERPT_LIMIT {
            kept.push_str(&text);
        }
        pending.push_str(&text);
        // Events end with a blank line.
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            match classify(&event) {
                Event::Content => {
                    let now = Instant::now();
                    let mut guard = timing.locked();
                    let timing = guard.as_mut().expect("set above");
                    match last_event_at {
                        None => timing.first_token_ms = Some(ms_since(sent, now)),
                        Some(previous) if timing.gaps_ms.len() < GAPS_KEPT => {
                            timing.gaps_ms.push(ms_since(previous, now))
                        }
                        Some(_) => {}
                    }
                    timing.events += 1;
                    last_event_at = Some(now);
                }
                Event::Error => {
                    finished = true;
                    set_end(timing, StreamEnd::ErrorEvent);
                }
                Event::Done => {
                    finished = true;
                    set_end(timing, StreamEnd::Complete);
                }
                Event::Other => {}
            }
        }
    }
    if !finished {
        // Closed cleanly but without a final or error event: the user never learns the
        // answer ended early.
        set_end(timing, StreamEnd::Cut);
    }
    Ok(kept)
}

fn set_end(timing: &SharedTiming, end: StreamEnd) {
    if let Some(timing) = timing.locked().as_mut() {
        timing.end = end;
    }
}

#[derive(Debug, PartialEq)]
enum Event {
    Content,
    Error,
    Done,
    Other,
}

/// What one SSE event is: an error (`event: error`, or a JSON `error`), the end (`[DONE]`,
/// `event: done|end|message_stop`, or JSON with `done: true`, a `finish_reason` or `usage`),
/// content (other data), or a comment/keep-alive.
fn classify(event: &str) -> Event {
    let mut name = None;
    let mut data = String::new();
    for line in event.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim().to_string());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim());
        }
    }
    match name.as_deref() {
        Some("error") => return Event::Error,
        Some("done" | "end" | "message_stop") => return Event::Done,
        _ => {}
    }
    if data.is_empty() {
        return Event::Other;
    }
    if data == "[DONE]" {
        return Event::Done;
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&data) else {
        return Event::Content;
    };
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Event::Error;
    }
    let finished = value.get("done").and_then(|d| d.as_bool()) == Some(true)
        || value.get("usage").is_some_and(|u| !u.is_null())
        || value
            .pointer("/choices/0/finish_reason")
            .is_some_and(|f| !f.is_null());
    if finished {
        Event::Done
    } else {
        Event::Content
    }
}

/// The last `data:` JSON of an SSE body, where streamed answers put their request id.
fn last_sse_json(body: &str) -> String {
    body.lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data:").map(str::trim))
        .find(|data| data.starts_with('{'))
        .unwrap_or("")
        .to_string()
}

/// What an answer's JSON says about itself, read where the API description points.
#[derive(Debug, Default, PartialEq)]
pub struct Markers {
    pub request_id: Option<String>,
    pub degraded: Option<bool>,
    pub cache_hit: Option<bool>,
}

impl Markers {
    pub fn read(body: &str, shape: &ResponseShape) -> Markers {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            return Markers::default();
        };
        let at = |pointer: &Option<String>| pointer.as_deref().and_then(|p| value.pointer(p));
        let request_id = at(&shape.request_id_pointer)
            .and_then(|v| v.as_str())
            .map(str::to_string);
        // A degraded marker is a flag, or a banner that is non-empty when degraded.
        let degraded = at(&shape.degraded_pointer).and_then(|v| match v {
            serde_json::Value::Bool(flag) => Some(*flag),
            serde_json::Value::String(banner) => Some(!banner.is_empty()),
            serde_json::Value::Null => Some(false),
            _ => None,
        });
        let degraded = degraded.or_else(|| {
            // The reference target also shows a banner; honour it when the flag is absent.
            value
                .get("banner")
                .and_then(|b| b.as_str())
                .map(|b| !b.is_empty())
        });
        let cache_hit = at(&shape.cache_hit_pointer).and_then(|v| v.as_bool());
        Markers {
            request_id,
            degraded,
            cache_hit,
        }
    }
}

pub fn error_kind(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connect".into()
    } else if error.is_body() || error.is_decode() {
        "broken body".into()
    } else {
        "transport".into()
    }
}

/// The body cut to [`Record::EXCERPT_LIMIT`] bytes on a character boundary.
pub fn excerpt(body: &str) -> String {
    let mut end = body.len().min(Record::EXCERPT_LIMIT);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_string()
}

fn ms_since(earlier: Instant, later: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_never_splits_a_character() {
        let body = "é".repeat(Record::EXCERPT_LIMIT);
        let cut = excerpt(&body);
        assert!(cut.len() <= Record::EXCERPT_LIMIT);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn markers_are_read_where_the_api_points() {
        let shape = ResponseShape::default();
        let markers = Markers::read(
            r#"{"requestId":"a","degraded":true,"cacheHit":false}"#,
            &shape,
        );
        assert_eq!(markers.request_id.as_deref(), Some("a"));
        assert_eq!(
            (markers.degraded, markers.cache_hit),
            (Some(true), Some(false))
        );
        let shape = ResponseShape {
            request_id_pointer: Some("/meta/id".into()),
            degraded_pointer: Some("/notice".into()),
            ..ResponseShape::default()
        };
        let markers = Markers::read(
            r#"{"meta":{"id":"b"},"notice":"live data unavailable"}"#,
            &shape,
        );
        assert_eq!(markers.request_id.as_deref(), Some("b"));
        assert_eq!(markers.degraded, Some(true));
        assert_eq!(Markers::read("not json", &shape), Markers::default());
    }

    #[test]
    fn sse_events_are_told_apart() {
        assert_eq!(classify("data: {\"delta\":\"Hel\"}\n\n"), Event::Content);
        assert_eq!(
            classify("event: error\ndata: {\"error\":\"x\"}\n\n"),
            Event::Error
        );
        assert_eq!(classify("data: [DONE]\n\n"), Event::Done);
        assert_eq!(
            classify("data: {\"done\":true,\"requestId\":\"r\"}\n\n"),
            Event::Done
        );
        assert_eq!(classify(": keep-alive\n\n"), Event::Other);
        assert_eq!(classify("event: message_stop\ndata: {}\n\n"), Event::Done);
    }
}
