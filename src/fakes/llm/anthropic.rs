//! `POST /v1/messages`, Anthropic's Messages API: the same answers and tool calls as the
//! OpenAI route, in Anthropic's `message` shape, or streamed with its named events
//! (`message_start`, `content_block_start`, `ping`, `content_block_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`).
//!
//! Input tokens: the system prompt plus 3 per message and its text; output tokens: the text's.

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::chat::{content_text, decide, Said};
use super::stream::{event, half_frame, pace, pieces, Frame};
use super::tools;
use super::{anthropic_error, context_window, with_limits, Provider, Turn};
use crate::fakes::fault::Malformation;
use crate::fakes::http::{Reply, Usage};
use crate::fakes::text::approx_tokens;

pub(super) fn messages(turn: &Turn) -> Reply {
    match try_messages(turn) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn invalid(message: &str) -> Reply {
    anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn try_messages(turn: &Turn) -> Result<Reply, Reply> {
    let body: Map<String, Value> = match serde_json::from_slice(&turn.request.body) {
        Ok(Value::Object(body)) => body,
        _ => return Err(invalid("The request body is not valid JSON.")),
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("model: Field required"))?;
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("max_tokens: Field required"))?;
    let messages = match body.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => return Err(invalid("messages: at least one message is required")),
        _ => return Err(invalid("messages: Field required")),
    };
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);

    let system = match body.get("system") {
        Some(Value::String(text)) => text.clone(),
        Some(blocks @ Value::Array(_)) => content_text(&json!({ "content": blocks })),
        _ => String::new(),
    };
    let input_tokens = approx_tokens(&system)
        + messages
            .iter()
            .map(|m| 3 + approx_tokens(&content_text(m)))
            .sum::<u64>();
    let window = context_window(model);
    if input_tokens + max_tokens > window {
        return Err(invalid(&format!(
            "prompt is too long: {} tokens > {window} maximum",
            input_tokens + max_tokens
        )));
    }
    let limits = turn.admit(Provider::Anthropic, model, input_tokens + max_tokens)?;

    let is_user = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("user");
    let prompt = messages
        .iter()
        .rev()
        .find(is_user)
        .map(content_text)
        .unwrap_or_default();
    let after_tool_result = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    let tools = tools::offered(&body);
    let said = decide(
        turn,
        &body,
        &tools,
        &prompt,
        after_tool_result,
        Some(max_tokens),
        "toolu_",
    );
    let output_tokens = match &said {
        Said::Text { content, .. } => approx_tokens(content),
        Said::Call { arguments, .. } => 3 + approx_tokens(arguments),
    };
    let stop_reason = match &said {
        Said::Call { .. } => "tool_use",
        Said::Text { finish_reason, .. } => match *finish_reason {
            "length" => "max_tokens",
            "content_filter" => "refusal",
            _ => "end_turn",
        },
    };
    let id = super::fresh_id("msg_");
    let malformed = turn.malformation();
    let empty = malformed == Some(Malformation::EmptyChoices);
    let reply = if streaming {
        let frames = events(
            &id,
            model,
            &said,
            stop_reason,
            (input_tokens, output_tokens),
            malformed,
        );
        Reply::event_stream(
            StatusCode::OK,
            pace(
                frames.into_iter().map(Frame::from).collect(),
                turn.fault,
                turn.board,
            ),
        )
    } else {
        let content = match (&said, empty) {
            (_, true) => json!([]),
            (Said::Text { content, .. }, _) => json!([{ "type": "text", "text": content }]),
            (
                Said::Call {
                    id,
                    name,
                    arguments,
                },
                _,
            ) => json!([{ "type": "tool_use", "id": id, "name": name, "input": input(arguments) }]),
        };
        Reply::json(
            StatusCode::OK,
            &json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": null,
                "usage": { "input_tokens": input_tokens, "output_tokens": output_tokens },
            }),
        )
    };
    let reply = with_limits(Provider::Anthropic, reply, &limits);
    // The journal keeps the usage the client was told (see chat.rs).
    let told = !streaming
        || !matches!(
            malformed,
            Some(Malformation::NoUsage | Malformation::ErrorFrame)
        );
    Ok(if told {
        reply.with_usage(Usage {
            input: input_tokens,
            output: output_tokens,
        })
    } else {
        reply
    })
}

/// A tool call's `input` object. Non-streamed, Anthropic always sends an object, so invalid
/// arguments travel as a string where an object belongs.
fn input(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

fn events(
    id: &str,
    model: &str,
    said: &Said,
    stop_reason: &str,
    (input_tokens, output_tokens): (u64, u64),
    malformed: Option<Malformation>,
) -> Vec<Bytes> {
    let mut frames = vec![event(
        "message_start",
        &json!({ "type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": input_tokens, "output_tokens": 1 } } }),
    )];
    if malformed != Some(Malformation::EmptyChoices) {
        let (block, deltas): (Value, Vec<Value>) = match said {
            Said::Text { content, .. } => (
                json!({ "type": "text", "text": "" }),
                pieces(content)
                    .map(|p| json!({ "type": "text_delta", "text": p }))
                    .collect(),
            ),
            Said::Call {
                id,
                name,
                arguments,
            } => {
                let chars: Vec<char> = arguments.chars().collect();
                (
                    json!({ "type": "tool_use", "id": id, "name": name, "input": {} }),
                    chars
                        .chunks(8)
                        .map(|c| json!({ "type": "input_json_delta", "partial_json": c.iter().collect::<String>() }))
                        .collect(),
                )
            }
        };
        frames.push(event(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": 0, "content_block": block }),
        ));
        frames.push(event("ping", &json!({ "type": "ping" })));
        for delta in deltas {
            frames.push(event(
                "content_block_delta",
                &json!({ "type": "content_block_delta", "index": 0, "delta": delta }),
            ));
        }
        frames.push(event(
            "content_block_stop",
            &json!({ "type": "content_block_stop", "index": 0 }),
        ));
    }
    let content_frames = frames.len();
    let mut delta = json!({ "type": "message_delta",
        "delta": { "stop_reason": stop_reason, "stop_sequence": null } });
    if malformed != Some(Malformation::NoUsage) {
        delta["usage"] = json!({ "output_tokens": output_tokens });
    }
    frames.push(event("message_delta", &delta));
    if malformed != Some(Malformation::NoDone) {
        frames.push(event("message_stop", &json!({ "type": "message_stop" })));
    }
    let middle = content_frames / 2;
    match malformed {
        // Anthropic's mid-stream failure: an `error` event after the 200, then the end.
        Some(Malformation::ErrorFrame) => {
            frames.truncate(middle.max(1));
            frames.push(event(
                "error",
                &json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
            ));
        }
        Some(Malformation::InvalidJson) => {
            frames[middle] =
                Bytes::from_static(b"event: content_block_delta\ndata: {\"type\": oops}\n\n");
        }
        Some(Malformation::TruncatedJson) => frames[middle] = half_frame(&frames[middle]),
        _ => {}
    }
    frames
}
