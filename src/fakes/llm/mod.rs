//! The OpenAI-compatible fake LLM: `POST /v1/chat/completions` (non-streaming),
//! `POST /v1/embeddings` and `GET /v1/models`, behind `Authorization: Bearer <api_key>`.
//!
//! This module owns routing, authentication and OpenAI's error shape
//! (`{"error":{"message","type","param","code"}}`), including the bodies and headers of
//! injected status faults; `chat` and `embeddings` own the two endpoints, `answers` the canned
//! replies from `mocks/answers.toml`. Faults, journaling and serving come from `fakes::http`.
//!
//! Every answer carries its own `x-request-id` and an `openai-processing-ms`, as OpenAI's do,
//! so a target's logging of upstream request ids can be checked.

mod answers;
mod chat;
mod embeddings;
pub mod standalone;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::fault::Switchboard;
use super::http::{self, Reply, Request, Responder};
use super::journal::Journal;
use super::{FakeError, FakeHandle};

/// How the fake LLM behaves when no fault is on.
#[derive(Clone, Debug)]
pub struct LlmOptions {
    /// The API key clients must send as `Authorization: Bearer`; others get a 401.
    pub api_key: String,
    /// Seed for generated answers and embeddings.
    pub seed: u64,
}

/// Starts the fake LLM on `127.0.0.1` at an ephemeral port. Point an OpenAI SDK at
/// `{base_url}/v1` with `options.api_key`.
pub async fn start(
    options: LlmOptions,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    http::serve("llm", Llm { options }, switchboard, journal).await
}

struct Llm {
    options: LlmOptions,
}

impl Responder for Llm {
    fn answer(&self, request: &Request) -> Reply {
        let reply = match self.authenticate(request) {
            Err(refusal) => refusal,
            Ok(()) => match (&request.method, request.uri.path()) {
                (&Method::POST, "/v1/chat/completions") => chat::complete(&self.options, request),
                (&Method::POST, "/v1/embeddings") => embeddings::embed(&self.options, request),
                (&Method::GET, "/v1/models") => models(),
                (method, path) => error(
                    StatusCode::NOT_FOUND,
                    &format!("Invalid URL ({method} {path})"),
                    "invalid_request_error",
                    None,
                    None,
                ),
            },
        };
        stamp(request, reply)
    }

    fn fault_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        stamp(request, status_error(status, retry_after))
    }
}

impl Llm {
    fn authenticate(&self, request: &Request) -> Result<(), Reply> {
        let sent = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let message = match sent {
            Some(key) if key == self.options.api_key => return Ok(()),
            Some(key) => format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask(key)
            ),
            None => "You didn't provide an API key. You need to provide your API key in an \
                     Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                .to_owned(),
        };
        Err(error(
            StatusCode::UNAUTHORIZED,
            &message,
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ))
    }
}

/// Shows only the last 4 characters of a wrong key, as OpenAI does, so an error message a
/// target passes on to users never carries a usable key.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 8 {
        return "***".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("***{tail}")
}

/// Adds the headers every OpenAI answer carries: the provider's own request id and the time
/// spent (which includes an injected delay, as a slow model's would).
fn stamp(request: &Request, reply: Reply) -> Reply {
    let processing_ms = request.arrival.elapsed().as_millis();
    reply
        .with_header(
            "x-request-id",
            format!("req_{}", uuid::Uuid::new_v4().simple()),
        )
        .with_header("openai-processing-ms", processing_ms)
}

/// An error in OpenAI's shape.
fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Reply {
    Reply::json(
        status,
        &json!({
            "error": { "message": message, "type": kind, "param": param, "code": code }
        }),
    )
}

/// The body and headers OpenAI sends with this status, for an injected fault.
fn status_error(status: StatusCode, retry_after: Option<Duration>) -> Reply {
    let code = status.as_u16();
    let (message, kind, error_code) = match code {
        429 => {
            let wait = match retry_after {
                Some(after) => {
                    format!("Please try again in {}.", humantime::format_duration(after))
                }
                None => "Please try again later.".to_owned(),
            };
            (
                format!("Rate limit reached for requests per min (RPM) on the faultline fake LLM: Limit 60, Used 60, Requested 1. {wait}"),
                "requests",
                Some("rate_limit_exceeded"),
            )
        }
        503 => (
            "The server is overloaded or not ready yet.".to_owned(),
            "server_error",
            None,
        ),
        500 => (
            "The server had an error while processing your request. Sorry about that!".to_owned(),
            "server_error",
            None,
        ),
        502 => ("Bad gateway.".to_owned(), "server_error", None),
        504 => ("Gateway timeout.".to_owned(), "server_error", None),
        401 => (
            "Incorrect API key provided.".to_owned(),
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        404 => (
            "The model does not exist or you do not have access to it.".to_owned(),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        _ if status.is_server_error() => (
            format!("The server had an error processing your request (HTTP {code})."),
            "server_error",
            None,
        ),
        _ => (
            format!("The request was rejected (HTTP {code})."),
            "invalid_request_error",
            None,
        ),
    };
    let reply = error(status, &message, kind, None, error_code).with_retry_after(retry_after);
    match retry_after {
        // openai-python reads `retry-after-ms` first, for sub-second precision.
        Some(after) => reply.with_header("retry-after-ms", after.as_millis()),
        None => reply,
    }
}

/// The models the fake lists; any model name is accepted in requests and echoed back.
fn models() -> Reply {
    let data: Vec<_> = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 1_700_000_000, "owned_by": "faultline" }))
        .collect();
    Reply::json(StatusCode::OK, &json!({ "object": "list", "data": data }))
}

/// Seconds since the Unix epoch, for `created`.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Parses a JSON object body, or answers OpenAI's 400 for an unparseable one.
fn parse_body(request: &Request) -> Result<serde_json::Map<String, serde_json::Value>, Reply> {
    match serde_json::from_slice(&request.body) {
        Ok(serde_json::Value::Object(body)) => Ok(body),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            "invalid_request_error",
            None,
            None,
        )),
    }
}

/// The `model` of a request, or OpenAI's 400 when it is missing.
fn required_model(body: &serde_json::Map<String, serde_json::Value>) -> Result<&str, Reply> {
    body.get("model")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "you must provide a model parameter",
                "invalid_request_error",
                None,
                None,
            )
        })
}

/// OpenAI's 400 for a missing parameter.
fn missing(param: &str) -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        &format!("Missing required parameter: '{param}'."),
        "invalid_request_error",
        Some(param),
        Some("missing_required_parameter"),
    )
}

/// OpenAI's 400 for a parameter with the wrong type or value.
fn invalid(param: &str, why: &str) -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        &format!("Invalid '{param}': {why}"),
        "invalid_request_error",
        Some(param),
        Some("invalid_value"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_key_is_masked_to_its_last_four_characters() {
        assert_eq!(mask("sk-secret-abcd"), "***abcd");
        assert_eq!(mask("short"), "***");
    }

    #[test]
    fn a_429_fault_says_when_to_retry_in_both_headers() {
        let reply = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_millis(1500)),
        );
        assert_eq!(reply.header("retry-after").unwrap(), "2");
        assert_eq!(reply.header("retry-after-ms").unwrap(), "1500");
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "requests");
    }
}
