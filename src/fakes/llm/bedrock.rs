//! Amazon Bedrock Runtime: `POST /model/{modelId}/converse`, `/converse-stream` (its events in
//! the binary event-stream framing, see `eventstream`) and `/invoke` with an
//! Anthropic-on-Bedrock body (`anthropic_version`, no `model`), answered in Anthropic's shape.
//!
//! SigV4 `Authorization` headers are accepted without being verified (the fake has no secret
//! to check them with); the access key id they name is what the journal classes as the key
//! sent. Errors are Bedrock's: the exception's name in `x-amzn-ErrorType` and
//! `{"message": …}` as the body (`ThrottlingException` and `ModelNotReadyException` on 429,
//! `ServiceUnavailableException` on 503, …), which botocore maps to its error codes. The
//! SDK's attempt number (`amz-sdk-request: attempt=N`) is journaled as its retry count (by
//! `fakes::http`).

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::chat::{decide, Said};
use super::eventstream;
use super::stream::{pace, pieces, Frame};
use super::tools;
use super::{anthropic, context_window, told_usage, typed_stream, Provider, Turn};
use crate::fakes::fault::Malformation;
use crate::fakes::http::{Reply, Request, Usage};
use crate::fakes::text::approx_tokens;
use std::time::Duration;

/// What a Bedrock route asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Converse,
    ConverseStream,
    Invoke,
}

/// Whether `path` is a Bedrock Runtime route.
pub(super) fn is_bedrock(path: &str) -> bool {
    path.starts_with("/model/")
}

/// The model id (as sent, percent-encoded) and action of a Bedrock route.
pub(super) fn route(path: &str) -> Option<(&str, Action)> {
    let (model, action) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    let action = match action {
        "converse" => Action::Converse,
        "converse-stream" => Action::ConverseStream,
        "invoke" => Action::Invoke,
        _ => return None,
    };
    (!model.is_empty()).then_some((model, action))
}

/// The exception Bedrock names for an HTTP status (`error_code` picks another where one
/// status has several, e.g. `ModelNotReadyException` on 429).
fn exception_for(status: StatusCode, error_code: Option<&str>) -> (&str, &'static str) {
    let (name, message) = match status.as_u16() {
        400 => ("ValidationException", "The request is invalid."),
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => ("ResourceNotFoundException", "The model was not found."),
        408 => (
            "ModelTimeoutException",
            "The request took too long to process.",
        ),
        424 => (
            "ModelErrorException",
            "The model failed to process the request.",
        ),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        503 => (
            "ServiceUnavailableException",
            "The service is temporarily unable to handle the request.",
        ),
        _ if status.is_server_error() => (
            "InternalServerException",
            "The server encountered an internal error.",
        ),
        _ => ("ValidationException", "The request was rejected."),
    };
    match error_code {
        Some("ModelNotReadyException") => (
            "ModelNotReadyException",
            "The model is not ready to serve inference requests. Retry the request later.",
        ),
        Some(other) => (other, message),
        None => (name, message),
    }
}

/// An error in Bedrock's shape.
pub(super) fn error(status: StatusCode, exception: &str, message: &str) -> Reply {
    Reply::json(status, &json!({ "message": message })).with_header(
        "x-amzn-errortype",
        format!("{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )
}

/// Bedrock's answer to an injected status fault.
pub(super) fn status_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    error_code: Option<&str>,
) -> Reply {
    let (exception, message) = exception_for(status, error_code);
    error(status, exception, message).with_retry_after(retry_after)
}

/// The access key id of a SigV4 `Authorization` header (`… Credential=AKID/date/…`).
pub(super) fn access_key_id(authorization: &str) -> Option<&str> {
    let credential = authorization
        .strip_prefix("AWS4-HMAC-SHA256")?
        .split(',')
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    credential.split('/').next().filter(|id| !id.is_empty())
}

pub(super) fn answer(turn: &Turn, model: &str, action: Action) -> Reply {
    let outcome = match action {
        Action::Converse | Action::ConverseStream => converse(turn, model, action),
        Action::Invoke => invoke(turn, model),
    };
    match outcome {
        Ok(reply) | Err(reply) => reply,
    }
}

fn invalid(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

fn body(turn: &Turn) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice(&turn.request.body) {
        Ok(Value::Object(body)) => Ok(body),
        _ => Err(invalid(
            "Malformed input request, please reformat your input and try again.",
        )),
    }
}

/// The text blocks of a Converse message (or `system` list), joined.
fn text_of(blocks: Option<&Value>) -> String {
    blocks
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The request's tools in the shape the shared tool chooser reads, from `toolConfig`.
fn as_openai_tools(body: &Map<String, Value>) -> Map<String, Value> {
    let config = body.get("toolConfig");
    let specs: Vec<Value> = config
        .and_then(|c| c.get("tools"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tool| {
            let spec = tool.get("toolSpec")?;
            Some(json!({
                "name": spec.get("name")?,
                "parameters": spec.get("inputSchema").and_then(|s| s.get("json")),
            }))
        })
        .collect();
    let choice = match config.and_then(|c| c.get("toolChoice")) {
        Some(choice) if choice.get("any").is_some() => json!("required"),
        Some(choice) => match choice.get("tool").and_then(|t| t.get("name")) {
            Some(name) => json!({ "name": name }),
            None => json!("auto"),
        },
        None => json!("auto"),
    };
    let mut map = Map::new();
    map.insert("tools".into(), Value::Array(specs));
    map.insert("tool_choice".into(), choice);
    map
}

fn converse(turn: &Turn, model: &str, action: Action) -> Result<Reply, Reply> {
    let body = body(turn)?;
    let messages = match body.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        _ => {
            return Err(invalid(
                "1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must not be null",
            ))
        }
    };
    let max_tokens = body
        .get("inferenceConfig")
        .and_then(|c| c.get("maxTokens"))
        .and_then(Value::as_u64);
    let input_tokens = approx_tokens(&text_of(body.get("system")))
        + messages
            .iter()
            .map(|m| 3 + approx_tokens(&text_of(m.get("content"))))
            .sum::<u64>();
    let window = context_window(model);
    let wanted = input_tokens + max_tokens.unwrap_or(0);
    if wanted > window {
        return Err(invalid(&format!(
            "Input is too long for requested model ({wanted} tokens, at most {window})."
        )));
    }
    turn.admit(Provider::Bedrock, model, wanted)?;

    let is_user = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("user");
    let prompt = messages
        .iter()
        .rev()
        .find(is_user)
        .map(|m| text_of(m.get("content")))
        .unwrap_or_default();
    let after_tool_result = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| blocks.iter().any(|b| b.get("toolResult").is_some()));
    let tool_body = as_openai_tools(&body);
    let offered = tools::offered(&tool_body);
    let said = decide(
        turn,
        &tool_body,
        &offered,
        &prompt,
        after_tool_result,
        max_tokens,
        "tooluse_",
    );
    let output_tokens = said.tokens();
    let stop_reason = match &said {
        Said::Call { .. } => "tool_use",
        Said::Text { finish_reason, .. } => match *finish_reason {
            "length" => "max_tokens",
            "content_filter" => "content_filtered",
            _ => "end_turn",
        },
    };
    let malformed = turn.malformation();
    let usage = json!({ "inputTokens": input_tokens, "outputTokens": output_tokens,
                        "totalTokens": input_tokens + output_tokens });
    let latency = turn.request.arrival.elapsed().as_millis() as u64;
    let reply = if action == Action::ConverseStream {
        let frames = stream_events(&said, stop_reason, &usage, latency, malformed);
        let script = pace(
            frames.into_iter().map(Frame::from).collect(),
            turn.fault,
            turn.board,
        );
        let reply = Reply::event_stream(StatusCode::OK, script);
        typed_stream(reply, "application/vnd.amazon.eventstream", malformed)
    } else {
        let content = match (&said, malformed == Some(Malformation::EmptyChoices)) {
            (_, true) => json!([]),
            (Said::Text { content, .. }, _) => json!([{ "text": content }]),
            (
                Said::Call {
                    id,
                    name,
                    arguments,
                },
                _,
            ) => json!([{ "toolUse": { "toolUseId": id, "name": name,
                                     "input": tool_input(arguments) } }]),
        };
        let answer = json!({
            "output": { "message": { "role": "assistant", "content": content } },
            "stopReason": stop_reason,
            "usage": usage,
            "metrics": { "latencyMs": latency },
        });
        Reply::json(StatusCode::OK, &answer)
    };
    let usage = Usage {
        input: input_tokens,
        output: output_tokens,
    };
    let streaming = action == Action::ConverseStream;
    Ok(told_usage(reply, streaming, malformed, usage))
}

/// A tool call's `input` document: an object, or, under `invalid_tool_args`, the broken text
/// where the object belongs.
fn tool_input(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

/// ConverseStream's events: messageStart, the content block's deltas and stop, messageStop and
/// metadata (with usage), each broken as `malformed` says.
fn stream_events(
    said: &Said,
    stop_reason: &str,
    usage: &Value,
    latency: u64,
    malformed: Option<Malformation>,
) -> Vec<Bytes> {
    let mut frames = vec![eventstream::event(
        "messageStart",
        &json!({ "role": "assistant" }),
    )];
    if malformed != Some(Malformation::EmptyChoices) {
        match said {
            Said::Text { content, .. } => {
                for piece in pieces(content) {
                    frames.push(eventstream::event(
                        "contentBlockDelta",
                        &json!({ "contentBlockIndex": 0, "delta": { "text": piece } }),
                    ));
                }
            }
            Said::Call {
                id,
                name,
                arguments,
            } => {
                frames.push(eventstream::event(
                    "contentBlockStart",
                    &json!({ "contentBlockIndex": 0,
                             "start": { "toolUse": { "toolUseId": id, "name": name } } }),
                ));
                let chars: Vec<char> = arguments.chars().collect();
                for part in chars.chunks(8) {
                    frames.push(eventstream::event(
                        "contentBlockDelta",
                        &json!({ "contentBlockIndex": 0,
                                 "delta": { "toolUse": { "input": part.iter().collect::<String>() } } }),
                    ));
                }
            }
        }
        frames.push(eventstream::event(
            "contentBlockStop",
            &json!({ "contentBlockIndex": 0 }),
        ));
    }
    let content_frames = frames.len();
    if malformed != Some(Malformation::NoDone) {
        frames.push(eventstream::event(
            "messageStop",
            &json!({ "stopReason": stop_reason }),
        ));
    }
    if malformed != Some(Malformation::NoUsage) && malformed != Some(Malformation::NoDone) {
        frames.push(eventstream::event(
            "metadata",
            &json!({ "usage": usage, "metrics": { "latencyMs": latency } }),
        ));
    }
    let middle = (content_frames / 2).max(1);
    match malformed {
        // Bedrock's mid-stream failure: an exception message after the 200, then the end.
        Some(Malformation::ErrorFrame) => {
            frames.truncate(middle);
            frames.push(eventstream::exception(
                "internalServerException",
                "The server encountered an internal error while processing the request.",
            ));
        }
        Some(Malformation::InvalidJson) => {
            frames[middle] = eventstream::message(
                &[
                    (":event-type", "contentBlockDelta"),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                b"{\"delta\": oops}",
            );
        }
        // Half a frame: its length and CRC no longer hold, as on a connection cut mid-frame.
        Some(Malformation::TruncatedJson) => {
            let frame = frames[middle].clone();
            frames[middle] = frame.slice(..frame.len() / 2);
        }
        _ => {}
    }
    frames
}

/// `InvokeModel` with an Anthropic-on-Bedrock body: the Messages API's answer, the model
/// taken from the path, plus Bedrock's token-count headers.
fn invoke(turn: &Turn, model: &str) -> Result<Reply, Reply> {
    let mut body = body(turn)?;
    if body.get("anthropic_version").is_none() {
        return Err(invalid(
            "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.",
        ));
    }
    body.remove("anthropic_version");
    body.insert("model".into(), Value::String(model.to_owned()));
    let request = Request {
        method: Method::POST,
        uri: "/v1/messages".parse().expect("a valid path"),
        headers: turn.request.headers.clone(),
        body: Bytes::from(Value::Object(body).to_string()),
        arrival: turn.request.arrival,
    };
    let inner = Turn {
        request: &request,
        ..*turn
    };
    let reply = anthropic::messages(&inner);
    let Some(usage) = reply.usage else {
        return Ok(reply);
    };
    Ok(reply
        .with_header("x-amzn-bedrock-input-token-count", usage.input)
        .with_header("x-amzn-bedrock-output-token-count", usage.output)
        .with_header(
            "x-amzn-bedrock-invocation-latency",
            turn.request.arrival.elapsed().as_millis(),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_the_model_and_the_action() {
        assert_eq!(
            route("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"),
            Some((
                "anthropic.claude-3-5-haiku-20241022-v1%3A0",
                Action::Converse
            ))
        );
        assert_eq!(
            route("/model/m/converse-stream"),
            Some(("m", Action::ConverseStream))
        );
        assert_eq!(route("/model/m/invoke"), Some(("m", Action::Invoke)));
        assert_eq!(route("/model/m/explode"), None);
    }

    #[test]
    fn a_sigv4_header_names_its_access_key() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261205/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(access_key_id(auth), Some("AKIDEXAMPLE"));
        assert_eq!(access_key_id("Bearer x"), None);
    }

    #[test]
    fn a_throttle_names_its_exception_and_can_say_the_model_is_not_ready() {
        let reply = status_error(StatusCode::TOO_MANY_REQUESTS, None, None);
        assert!(reply
            .header("x-amzn-errortype")
            .unwrap()
            .starts_with("ThrottlingException:"));
        let reply = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some("ModelNotReadyException"),
        );
        assert!(reply
            .header("x-amzn-errortype")
            .unwrap()
            .starts_with("ModelNotReadyException:"));
    }
}
