//! Google's Gemini API (the `generativelanguage` REST surface the `google-genai` SDKs call):
//! `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
//! `:embedContent` (and `:batchEmbedContents`, which the SDKs call) and `:countTokens` (and the same under `/v1/`), behind `x-goog-api-key`
//! or `?key=`.
//!
//! The same answers and tool calls as the OpenAI route, in Gemini's shapes: `candidates` with
//! `content.parts` (`text`, `functionCall`), `finishReason`, `usageMetadata`. A stream is
//! `data:` chunks of the same shape, the last one with the finish reason and the whole usage.
//! Errors are Google's `{"error":{"code","message","status","details"}}`; a 429 is
//! `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` detail giving the wait.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::chat::{decide, Said};
use super::embeddings::vector;
use super::stream::{data, half_frame, pace, pieces, Frame};
use super::tools;
use super::{context_window, told_usage, typed_stream, Provider, Turn};
use crate::fakes::fault::Malformation;
use crate::fakes::http::{Reply, Usage};
use crate::fakes::text::approx_tokens;

/// What a Gemini route asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Generate,
    StreamGenerate,
    Embed,
    BatchEmbed,
    CountTokens,
}

/// Whether `path` is a Gemini route: `/v1beta/models/{model}:{action}` (or `/v1/`).
pub(super) fn is_gemini(path: &str) -> bool {
    path.starts_with("/v1beta/") || (path.starts_with("/v1/models/") && path.contains(':'))
}

/// The model and action of a Gemini route, if `path` is one this fake serves.
pub(super) fn route(path: &str) -> Option<(&str, Action)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, action) = rest.rsplit_once(':')?;
    let action = match action {
        "generateContent" => Action::Generate,
        "streamGenerateContent" => Action::StreamGenerate,
        "embedContent" => Action::Embed,
        "batchEmbedContents" => Action::BatchEmbed,
        "countTokens" => Action::CountTokens,
        _ => return None,
    };
    (!model.is_empty()).then_some((model, action))
}

/// Google's status name for an HTTP status, as its errors carry it.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status.is_server_error() => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// An error in Google's shape; with `retry`, a `RetryInfo` detail and `retry-after` too.
pub(super) fn error(status: StatusCode, message: &str, retry: Option<Duration>) -> Reply {
    let mut details = Vec::new();
    if let Some(wait) = retry {
        details.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}s", wait.as_millis().div_ceil(1000)),
        }));
    }
    Reply::json(
        status,
        &json!({ "error": {
            "code": status.as_u16(), "message": message, "status": status_name(status),
            "details": details,
        } }),
    )
    .with_retry_after(retry)
}

/// The body Gemini sends with this status, for an injected fault.
pub(super) fn status_error(status: StatusCode, retry: Option<Duration>) -> Reply {
    let message = match status.as_u16() {
        429 => "Resource has been exhausted (e.g. check quota).",
        500 => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        503 => "The model is overloaded. Please try again later.",
        504 => "Deadline expired before operation could complete.",
        401 | 403 => "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        404 => "Requested entity was not found.",
        _ if status.is_server_error() => "An internal error has occurred.",
        _ => "Request contains an invalid argument.",
    };
    error(status, message, retry)
}

/// Gemini's 400 for a request it cannot read.
fn invalid(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message, None)
}

/// The text parts of one `Content` (`{role, parts:[{text}]}`), joined.
fn text_of(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn answer(turn: &Turn, model: &str, action: Action) -> Reply {
    let outcome = match action {
        Action::Generate | Action::StreamGenerate => generate(turn, model, action),
        Action::Embed => embed(turn),
        Action::BatchEmbed => batch_embed(turn),
        Action::CountTokens => count_tokens(turn),
    };
    match outcome {
        Ok(reply) | Err(reply) => reply,
    }
}

fn body(turn: &Turn) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice(&turn.request.body) {
        Ok(Value::Object(body)) => Ok(body),
        _ => Err(invalid(
            "Invalid JSON payload received. Unable to parse the request body.",
        )),
    }
}

fn contents(body: &Map<String, Value>) -> Result<&Vec<Value>, Reply> {
    match body.get("contents") {
        Some(Value::Array(contents)) if !contents.is_empty() => Ok(contents),
        _ => Err(invalid(
            "* GenerateContentRequest.contents: contents is not specified",
        )),
    }
}

fn prompt_tokens(body: &Map<String, Value>, contents: &[Value]) -> u64 {
    let system = body
        .get("systemInstruction")
        .map_or(0, |s| approx_tokens(&text_of(s)));
    system
        + contents
            .iter()
            .map(|c| 3 + approx_tokens(&text_of(c)))
            .sum::<u64>()
}

fn count_tokens(turn: &Turn) -> Result<Reply, Reply> {
    let body = body(turn)?;
    // The SDK may wrap the contents in a `generateContentRequest`.
    let inner = match body.get("generateContentRequest") {
        Some(Value::Object(inner)) => inner,
        _ => &body,
    };
    let contents = contents(inner)?;
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ "totalTokens": prompt_tokens(inner, contents) }),
    ))
}

/// One `EmbedContentRequest`'s vector and its tokens.
fn embedding(seed: u64, request: &Map<String, Value>) -> Result<(Value, u64), Reply> {
    let content = request
        .get("content")
        .ok_or_else(|| invalid("* EmbedContentRequest.content: content is not specified"))?;
    let dimensions = request
        .get("outputDimensionality")
        .and_then(Value::as_u64)
        .unwrap_or(768)
        .clamp(1, 3072) as usize;
    let text = text_of(content);
    Ok((
        json!({ "values": vector(seed, &text, dimensions) }),
        approx_tokens(&text),
    ))
}

fn embed(turn: &Turn) -> Result<Reply, Reply> {
    let (embedding, tokens) = embedding(turn.options.seed, &body(turn)?)?;
    let reply = Reply::json(StatusCode::OK, &json!({ "embedding": embedding }));
    Ok(reply.with_usage(Usage {
        input: tokens,
        output: 0,
    }))
}

fn batch_embed(turn: &Turn) -> Result<Reply, Reply> {
    let body = body(turn)?;
    let requests = match body.get("requests") {
        Some(Value::Array(requests)) if !requests.is_empty() => requests,
        _ => {
            return Err(invalid(
                "* BatchEmbedContentsRequest.requests: requests is not specified",
            ))
        }
    };
    let mut embeddings = Vec::with_capacity(requests.len());
    let mut tokens = 0;
    for request in requests {
        let Value::Object(request) = request else {
            return Err(invalid(
                "* BatchEmbedContentsRequest.requests: each request is an object",
            ));
        };
        let (embedding, used) = embedding(turn.options.seed, request)?;
        embeddings.push(embedding);
        tokens += used;
    }
    let reply = Reply::json(StatusCode::OK, &json!({ "embeddings": embeddings }));
    Ok(reply.with_usage(Usage {
        input: tokens,
        output: 0,
    }))
}

/// The request's tools in the shape the shared tool chooser reads (`{name, parameters}` and
/// an OpenAI-style `tool_choice`), from Gemini's `functionDeclarations` and `toolConfig`.
fn as_openai_tools(body: &Map<String, Value>) -> Map<String, Value> {
    let declarations: Vec<Value> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tool| tool.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    let config = body
        .get("toolConfig")
        .and_then(|c| c.get("functionCallingConfig"));
    let choice = match config.and_then(|c| c.get("mode")).and_then(Value::as_str) {
        Some("ANY") => match config
            .and_then(|c| c.get("allowedFunctionNames"))
            .and_then(|names| names.get(0))
        {
            Some(name) => json!({ "name": name }),
            None => json!("required"),
        },
        Some("NONE") => json!("none"),
        _ => json!("auto"),
    };
    let mut map = Map::new();
    map.insert("tools".into(), Value::Array(declarations));
    map.insert("tool_choice".into(), choice);
    map
}

fn generate(turn: &Turn, model: &str, action: Action) -> Result<Reply, Reply> {
    let body = body(turn)?;
    let contents = contents(&body)?;
    let max_tokens = body
        .get("generationConfig")
        .and_then(|c| c.get("maxOutputTokens"))
        .and_then(Value::as_u64);
    let input_tokens = prompt_tokens(&body, contents);
    let window = context_window(model);
    let wanted = input_tokens + max_tokens.unwrap_or(0);
    if wanted > window {
        return Err(invalid(&format!(
            "The input token count ({wanted}) exceeds the maximum number of tokens allowed \
             ({window})."
        )));
    }
    let _limits = turn.admit(Provider::Gemini, model, wanted)?;

    let role = |c: &&Value| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user";
    let prompt = contents
        .iter()
        .rev()
        .find(role)
        .map(text_of)
        .unwrap_or_default();
    let after_tool_result = contents
        .last()
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .is_some_and(|parts| parts.iter().any(|p| p.get("functionResponse").is_some()));
    let tool_body = as_openai_tools(&body);
    let offered = tools::offered(&tool_body);
    let said = decide(
        turn,
        &tool_body,
        &offered,
        &prompt,
        after_tool_result,
        max_tokens,
        "call_",
    );
    let output_tokens = said.tokens();
    let finish = match &said {
        Said::Text { finish_reason, .. } => match *finish_reason {
            "length" => "MAX_TOKENS",
            "content_filter" => "SAFETY",
            _ => "STOP",
        },
        Said::Call { .. } => "STOP",
    };
    let malformed = turn.malformation();
    let id = super::fresh_id("");
    let usage = json!({
        "promptTokenCount": input_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": input_tokens + output_tokens,
    });
    let chunk = |parts: Value, finish: Option<&str>, usage: &Value| {
        let mut candidate = json!({ "content": { "parts": parts, "role": "model" }, "index": 0 });
        if let Some(finish) = finish {
            candidate["finishReason"] = json!(finish);
        }
        let empty = malformed == Some(Malformation::EmptyChoices);
        json!({
            "candidates": if empty { json!([]) } else { json!([candidate]) },
            "usageMetadata": usage, "modelVersion": model, "responseId": id,
        })
    };
    let streaming = action == Action::StreamGenerate;
    let reply = if streaming {
        let partial = json!({ "promptTokenCount": input_tokens, "totalTokenCount": input_tokens });
        let mut frames: Vec<Bytes> = match &said {
            Said::Text { content, .. } => pieces(content)
                .map(|piece| data(&chunk(json!([{ "text": piece }]), None, &partial)))
                .collect(),
            Said::Call {
                name, arguments, ..
            } => vec![data(&chunk(
                json!([{ "functionCall": { "name": name, "args": args(arguments) } }]),
                None,
                &partial,
            ))],
        };
        let content_frames = frames.len();
        if malformed != Some(Malformation::NoDone) {
            let last_usage = if malformed == Some(Malformation::NoUsage) {
                &partial
            } else {
                &usage
            };
            frames.push(data(&chunk(
                json!([{ "text": "" }]),
                Some(finish),
                last_usage,
            )));
        }
        let middle = content_frames / 2;
        match malformed {
            // Google's mid-stream failure: an error object after the 200, then the end.
            Some(Malformation::ErrorFrame) => {
                frames.truncate(middle.max(1));
                frames.push(data(&json!({ "error": { "code": 500,
                    "message": "An internal error has occurred.", "status": "INTERNAL" } })));
            }
            Some(Malformation::InvalidJson) => {
                frames[middle] = Bytes::from_static(b"data: {\"candidates\": oops}\n\n");
            }
            Some(Malformation::TruncatedJson) => frames[middle] = half_frame(&frames[middle]),
            _ => {}
        }
        let script = pace(
            frames.into_iter().map(Frame::from).collect(),
            turn.fault,
            turn.board,
        );
        let reply = Reply::event_stream(StatusCode::OK, script);
        typed_stream(reply, "text/event-stream; charset=utf-8", malformed)
    } else {
        let parts = match &said {
            Said::Text { content, .. } => json!([{ "text": content }]),
            Said::Call {
                name, arguments, ..
            } => json!([{ "functionCall": { "name": name, "args": args(arguments) } }]),
        };
        Reply::json(StatusCode::OK, &chunk(parts, Some(finish), &usage))
    };
    let usage = Usage {
        input: input_tokens,
        output: output_tokens,
    };
    Ok(told_usage(reply, streaming, malformed, usage))
}

/// A call's `args` object. Gemini always sends an object, so invalid arguments travel as a
/// string where the object belongs, which a client's schema check refuses.
fn args(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_the_model_and_the_action() {
        assert_eq!(
            route("/v1beta/models/gemini-2.0-flash:generateContent"),
            Some(("gemini-2.0-flash", Action::Generate))
        );
        assert_eq!(
            route("/v1/models/gemini-pro:streamGenerateContent"),
            Some(("gemini-pro", Action::StreamGenerate))
        );
        assert_eq!(route("/v1beta/models/m:explode"), None);
        assert_eq!(route("/v1/chat/completions"), None);
        assert!(!is_gemini("/v1/chat/completions"));
        assert!(is_gemini("/v1beta/models/m:countTokens"));
    }

    #[test]
    fn a_429_says_resource_exhausted_with_how_long_to_wait() {
        let reply = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_millis(1500)),
        );
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["details"][0]["retryDelay"], "2s");
        assert_eq!(reply.header("retry-after").unwrap(), "2");
    }
}
