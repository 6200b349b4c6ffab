//! `POST /v1/chat/completions`, non-streaming: a canned answer to the latest user message in
//! OpenAI's `chat.completion` shape, with `usage` from the token approximation.
//!
//! Prompt tokens follow OpenAI's cookbook accounting for chat: 3 per message, plus the tokens
//! of its role, content and name, plus 3 priming the reply; text tokens are
//! [`approx_tokens`] (4 characters each). Tool definitions are not counted.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::answers::answer_for;
use super::{error, invalid, missing, parse_body, required_model, unix_now, LlmOptions};
use crate::fakes::http::{Reply, Request, Usage};
use crate::fakes::text::approx_tokens;

pub(super) fn complete(options: &LlmOptions, request: &Request) -> Reply {
    match try_complete(options, request) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn try_complete(options: &LlmOptions, request: &Request) -> Result<Reply, Reply> {
    let body = parse_body(request)?;
    let model = required_model(&body)?;
    let messages = match body.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(messages)) if messages.is_empty() => return Err(invalid(
            "messages",
            "empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )),
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err(invalid("messages", "expected an array of objects.")),
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Streaming (stream: true) is not supported by the faultline fake LLM yet; \
             server-sent events arrive in a later version. Send stream: false.",
            "invalid_request_error",
            Some("stream"),
            Some("unsupported_parameter"),
        ));
    }
    let max_tokens = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);

    let prompt_tokens = 3 + messages.iter().map(message_tokens).sum::<u64>();
    let prompt = latest_user_text(messages);
    let (content, finish_reason) = truncate(answer_for(options.seed, &prompt), max_tokens);
    let completion_tokens = approx_tokens(content);

    let completion = json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": null },
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": { "cached_tokens": 0 },
            "completion_tokens_details": { "reasoning_tokens": 0 },
        },
        "system_fingerprint": "fp_faultline",
    });
    Ok(Reply::json(StatusCode::OK, &completion).with_usage(Usage {
        input: prompt_tokens,
        output: completion_tokens,
    }))
}

/// The text of a message's `content`: a string, or the `text` parts of an array of parts.
fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn message_tokens(message: &Value) -> u64 {
    let field = |name| message.get(name).and_then(Value::as_str).unwrap_or("");
    3 + approx_tokens(field("role"))
        + approx_tokens(&content_text(message))
        + approx_tokens(field("name"))
}

/// What the answer responds to: the latest user message, else the latest message of any role.
fn latest_user_text(messages: &[Value]) -> String {
    let is_user = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("user");
    messages
        .iter()
        .rev()
        .find(is_user)
        .or_else(|| messages.last())
        .map(content_text)
        .unwrap_or_default()
}

/// Cuts the answer to `max_tokens` (4 characters a token), with OpenAI's `length` reason.
fn truncate(answer: &str, max_tokens: Option<u64>) -> (&str, &'static str) {
    match max_tokens {
        Some(max) if approx_tokens(answer) > max => {
            let keep = usize::try_from(max.saturating_mul(4)).unwrap_or(usize::MAX);
            let end = answer
                .char_indices()
                .nth(keep)
                .map_or(answer.len(), |(at, _)| at);
            (&answer[..end], "length")
        }
        _ => (answer, "stop"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_user_message_is_what_gets_answered() {
        let messages = vec![
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": "first"}),
            json!({"role": "assistant", "content": "ok"}),
            json!({"role": "user", "content": [{"type": "text", "text": "second"}]}),
            json!({"role": "assistant", "content": null, "tool_calls": []}),
        ];
        assert_eq!(latest_user_text(&messages), "second");
    }

    #[test]
    fn a_message_costs_three_tokens_plus_its_text() {
        // role "user" = 1 token, content of 8 characters = 2 tokens.
        assert_eq!(
            message_tokens(&json!({"role": "user", "content": "abcdefgh"})),
            6
        );
    }

    #[test]
    fn max_tokens_cuts_the_answer_with_reason_length() {
        assert_eq!(truncate("abcdefghij", Some(2)), ("abcdefgh", "length"));
        assert_eq!(truncate("abcdefghij", Some(3)), ("abcdefghij", "stop"));
        assert_eq!(truncate("abc", None), ("abc", "stop"));
    }
}
