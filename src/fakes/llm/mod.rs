//! The fake LLM, OpenAI- and Anthropic-compatible: `POST /v1/chat/completions` (plain and
//! SSE, with tool calls), `POST /v1/embeddings`, `GET /v1/models` behind
//! `Authorization: Bearer <api_key>`, and Anthropic's `POST /v1/messages` (plain and SSE with
//! its named events) behind `x-api-key`, and OpenAI's Responses API `POST /v1/responses`
//! (plain and SSE with its semantic events, function calls, `previous_response_id`), and
//! Google's Gemini API (`/v1beta/models/{m}:generateContent` and its siblings) behind
//! `x-goog-api-key`. Azure OpenAI's paths (`/openai/deployments/{d}/…`, `/openai/v1/…`) reach
//! the OpenAI routes behind `api-key`, with Azure's headers and gateway errors. Amazon Bedrock
//! Runtime's Converse, ConverseStream and InvokeModel (`/model/{id}/…`) behind SigV4.
//!
//! This module owns routing, authentication, rate limiting, context windows and each
//! provider's error shape (OpenAI `{"error":{"message","type","param","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"}}`), including the bodies of injected status
//! faults. `chat` and `anthropic` own the two chat endpoints (`chat_body` reads a chat
//! request's body), `stream` the pacing of SSE under the stream faults, `tools` tool calls,
//! `limits` the per-key buckets, `embeddings` vectors, `answers` the canned replies from
//! `mocks/answers.toml`. Faults every HTTP fake shares (status, delay, hang, reset, drop,
//! broken JSON), journaling and serving come from
//! `fakes::http`.
//!
//! Every answer carries its own request id (`x-request-id`, or Anthropic's `request-id`), an
//! `openai-processing-ms` and rate-limit headers, as the providers' do, so a target's logging
//! of upstream request ids and its pacing can be checked.
//!
//! Context windows: 128k tokens, except a model whose name ends in `-ctx<N>` (`gpt-4o-ctx2000`:
//! N tokens) or is `gpt-tiny-ctx` (512), so a test can provoke `context_length_exceeded`.

mod answers;
mod anthropic;
mod azure;
mod bedrock;
mod chat;
mod chat_body;
mod embeddings;
mod eventstream;
mod gemini;
mod limits;
pub mod replay;
mod responses;
pub mod standalone;
mod stream;
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::json;

use super::fault::{Fault, Malformation, Switchboard};
use super::http::{self, Reply, Request, Responder};
use super::journal::{ApiKeySent, Journal};
use super::{FakeError, FakeHandle};
use limits::{Limits, Verdict};

/// Whether `text` holds one of the fake's canned answers (a service may wrap or trim it, so a
/// long enough part of one counts): how `faultline init` tells an answer came from the fake.
pub fn is_canned_answer(text: &str) -> bool {
    answers::is_canned(text)
}

// The headers on every answer, checked once when compiled.
const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const X_AMZN_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
const PROCESSING_MS: HeaderName = HeaderName::from_static("openai-processing-ms");

/// How the fake LLM behaves when no fault is on.
#[derive(Clone, Debug)]
pub struct LlmOptions {
    /// Which API keys clients may send (`Authorization: Bearer`, or `x-api-key` for
    /// Anthropic's routes). `KEY.into()` accepts only that key.
    pub api_key: ApiKey,
    /// Seed for generated answers, embeddings and tool-call ids.
    pub seed: u64,
}

/// The keys the fake LLM accepts. Every attempt is journaled with the class of key it sent
/// ([`ApiKeySent`]), whichever this is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiKey {
    /// Only this key; any other, or none, gets the provider's 401.
    Only(String),
    /// Every key, and none, as other LLM fakes do. Attempts are classed against `given`, the
    /// key the service was given (a scenario run's `{llm_key}`), when there is one.
    Any { given: Option<String> },
}

impl ApiKey {
    /// `any` (accept every key), else only `text`: the `--api-key` flag's meaning.
    pub fn from_flag(text: &str) -> ApiKey {
        if text.eq_ignore_ascii_case("any") {
            ApiKey::Any { given: None }
        } else {
            ApiKey::Only(text.to_owned())
        }
    }

    /// The key the service was given, if any.
    pub fn given(&self) -> Option<&str> {
        match self {
            ApiKey::Only(key) => Some(key),
            ApiKey::Any { given } => given.as_deref(),
        }
    }

    /// How a request's key compares with the one the service was given.
    fn class(&self, sent: Option<&str>) -> ApiKeySent {
        match (sent, self.given()) {
            (None, _) => ApiKeySent::None,
            (Some(sent), Some(given)) if sent == given => ApiKeySent::Given,
            (Some(_), _) => ApiKeySent::Other,
        }
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> ApiKey {
        ApiKey::Only(key.to_owned())
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> ApiKey {
        ApiKey::Only(key)
    }
}

/// Starts the fake LLM on `127.0.0.1` at an ephemeral port. Point an OpenAI SDK at
/// `{base_url}/v1` and an Anthropic SDK at `{base_url}` with a key `options.api_key` accepts.
pub async fn start(
    options: LlmOptions,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    start_on(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        options,
        switchboard,
        journal,
    )
    .await
}

/// Like [`start`], on a given loopback address (`faultline fake llm --port`).
pub async fn start_on(
    addr: SocketAddr,
    options: LlmOptions,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let llm = Llm {
        options,
        board: switchboard.clone(),
        limits: Limits::default(),
        ledger: responses::Ledger::default(),
        replay: None,
    };
    http::serve_on(addr, "llm", llm, switchboard, journal).await
}

struct Llm {
    options: LlmOptions,
    /// For jitter draws while pacing streams (the same seeded RNG as the fault picks).
    board: Arc<Switchboard>,
    limits: Limits,
    /// The Responses API's conversation state: which response ids exist.
    ledger: responses::Ledger,
    /// A recording to answer from instead of generating (`replay`).
    replay: Option<Arc<replay::Replay>>,
}

/// Whose wire format a request speaks, by route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
    /// OpenAI's routes under Azure's paths.
    Azure,
    Bedrock,
}

impl Provider {
    fn of(request: &Request) -> Provider {
        let path = request.uri.path();
        if azure::is_azure(path) {
            Provider::Azure
        } else if bedrock::is_bedrock(path) {
            Provider::Bedrock
        } else if path.starts_with("/v1/messages") {
            Provider::Anthropic
        } else if gemini::is_gemini(path) {
            Provider::Gemini
        } else {
            Provider::OpenAi
        }
    }
}

/// One request being answered, with what the endpoints need to answer it.
pub(super) struct Turn<'a> {
    pub options: &'a LlmOptions,
    pub board: &'a Switchboard,
    limits: &'a Limits,
    pub fault: Option<&'a Fault>,
    pub request: &'a Request,
}

impl Turn<'_> {
    /// How the `malformed` fault on, if any, breaks this answer.
    pub(super) fn malformation(&self) -> Option<Malformation> {
        match self.fault {
            Some(Fault::Malformed { what }) => Some(*what),
            _ => None,
        }
    }

    /// Takes one request and `tokens` from the caller's buckets: the rate-limit figures for
    /// the headers, or the provider's 429 when the quota is spent. Only a `rate_limit` fault
    /// refuses; otherwise the generous default limits just count.
    fn admit(&self, provider: Provider, model: &str, tokens: u64) -> Result<Verdict, Reply> {
        let (rpm, tpm, enforced) = match self.fault {
            Some(Fault::RateLimit {
                requests_per_minute,
                tokens_per_minute,
            }) => (
                requests_per_minute.unwrap_or(limits::DEFAULT_RPM),
                tokens_per_minute.unwrap_or(limits::DEFAULT_TPM),
                true,
            ),
            _ => (limits::DEFAULT_RPM, limits::DEFAULT_TPM, false),
        };
        let key = sent_key(self.request).unwrap_or("");
        let verdict = self
            .limits
            .take(key, (rpm, tpm), tokens, enforced, Instant::now());
        let Some((which, wait)) = verdict.refused else {
            return Ok(verdict);
        };
        let reply = match provider {
            Provider::OpenAi => {
                // As OpenAI words it: a request asks for one request of the RPM bucket, or
                // its tokens of the TPM bucket.
                let (unit, limit, requested) = match which {
                    "requests" => ("requests per min (RPM)", rpm, 1),
                    _ => ("tokens per min (TPM)", tpm, tokens),
                };
                error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Rate limit reached for {model} in organization org-faultline on {unit}: \
                         Limit {limit}, Requested {requested}. Please try again in {}.",
                        limits::reset_text(wait)
                    ),
                    which,
                    None,
                    Some("rate_limit_exceeded"),
                )
            }
            Provider::Anthropic => anthropic_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                &format!(
                    "This request would exceed the rate limit for your organization of {} \
                     {which} per minute. Please try again later.",
                    if which == "requests" { rpm } else { tpm }
                ),
            ),
            Provider::Azure => azure::error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API \
                     version 2024-10-21 have exceeded {which} rate limit of your current OpenAI \
                     S0 pricing tier. Please retry after {} seconds.",
                    wait.as_millis().div_ceil(1000)
                ),
            ),
            Provider::Bedrock => bedrock::error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many tokens, please wait before trying again.",
            ),
            Provider::Gemini => gemini::error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Quota exceeded for metric: generate_content_{which}, limit: {}. Please \
                     retry in {}.",
                    if which == "requests" { rpm } else { tpm },
                    limits::reset_text(wait)
                ),
                Some(wait),
            ),
        };
        let reply = reply
            .with_retry_after(Some(wait))
            .with_header("retry-after-ms", wait.as_millis());
        Err(with_limits(provider, reply, &verdict))
    }
}

/// Adds the rate-limit headers of `verdict` in the provider's spelling.
fn with_limits(provider: Provider, reply: Reply, verdict: &Verdict) -> Reply {
    match provider {
        // Azure sends OpenAI's rate-limit headers too.
        Provider::OpenAi | Provider::Azure => {
            // The default limits are on almost every answer: their values are built once.
            let limit = |value: u32, default: u32, text: &'static str| {
                if value == default {
                    HeaderValue::from_static(text)
                } else {
                    HeaderValue::from(value)
                }
            };
            reply
                .with_value(
                    LIMIT_REQUESTS,
                    limit(verdict.rpm, limits::DEFAULT_RPM, limits::DEFAULT_RPM_TEXT),
                )
                .with_value(
                    LIMIT_TOKENS,
                    limit(verdict.tpm, limits::DEFAULT_TPM, limits::DEFAULT_TPM_TEXT),
                )
                .with_number(REMAINING_REQUESTS, verdict.remaining_requests)
                .with_number(REMAINING_TOKENS, verdict.remaining_tokens)
                .with_text(RESET_REQUESTS, limits::reset_text(verdict.reset_requests))
                .with_text(RESET_TOKENS, limits::reset_text(verdict.reset_tokens))
        }
        Provider::Anthropic => {
            let at = |wait: Duration| {
                (time::OffsetDateTime::now_utc() + wait)
                    .replace_nanosecond(0)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default()
            };
            reply
                .with_header("anthropic-ratelimit-requests-limit", verdict.rpm)
                .with_header("anthropic-ratelimit-tokens-limit", verdict.tpm)
                .with_header(
                    "anthropic-ratelimit-requests-remaining",
                    verdict.remaining_requests,
                )
                .with_header(
                    "anthropic-ratelimit-tokens-remaining",
                    verdict.remaining_tokens,
                )
                .with_header(
                    "anthropic-ratelimit-requests-reset",
                    at(verdict.reset_requests),
                )
                .with_header("anthropic-ratelimit-tokens-reset", at(verdict.reset_tokens))
        }
        // Gemini and Bedrock send no rate-limit headers; Gemini's 429 says the wait in a
        // RetryInfo detail.
        Provider::Gemini | Provider::Bedrock => reply,
    }
}

/// The context window of `model`, in tokens (see the module doc).
fn context_window(model: &str) -> u64 {
    if model == "gpt-tiny-ctx" {
        return 512;
    }
    model
        .rsplit_once("-ctx")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(128_000)
}

impl Responder for Llm {
    fn answer(&self, request: &Request) -> Reply {
        self.respond(request, None)
    }

    fn answer_under(&self, request: &Request, fault: &Fault) -> Reply {
        self.respond(request, Some(fault))
    }

    fn fault_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        self.status_reply(request, status, retry_after, None)
    }

    fn api_key_sent(&self, request: &Request) -> Option<ApiKeySent> {
        Some(self.options.api_key.class(sent_key(request)))
    }

    fn exchange(&self, request: &Request) -> Option<crate::evidence::Exchange> {
        (request.uri.path() == "/v1/responses").then(|| responses::exchange(&request.body))
    }

    fn status_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
        error_code: Option<&str>,
    ) -> Reply {
        let provider = Provider::of(request);
        let reply = match provider {
            Provider::OpenAi => status_error(status, retry_after, error_code),
            Provider::Anthropic => {
                anthropic_status_error(status, error_code).with_retry_after(retry_after)
            }
            Provider::Gemini => gemini::status_error(status, retry_after),
            Provider::Azure => azure::status_error(status, retry_after),
            Provider::Bedrock => bedrock::status_error(status, retry_after, error_code),
        };
        stamp(provider, request, reply)
    }
}

impl Llm {
    fn respond(&self, request: &Request, fault: Option<&Fault>) -> Reply {
        let provider = Provider::of(request);
        let turn = Turn {
            options: &self.options,
            board: &self.board,
            limits: &self.limits,
            fault,
            request,
        };
        let replayed = || self.replay.as_ref()?.answer(&turn, provider);
        let reply = match self.authenticate(provider, request) {
            Err(refusal) => refusal,
            // A recording answers first; a miss it leaves to the generator falls through.
            Ok(()) if let Some(reply) = replayed() => reply,
            Ok(()) => match (
                &request.method,
                azure::openai_path(request.uri.path()).0.as_ref(),
            ) {
                (&Method::POST, "/v1/chat/completions") => chat::complete(&turn),
                (&Method::POST, "/v1/messages") => anthropic::messages(&turn),
                (&Method::POST, "/v1/responses") => responses::create(&turn, &self.ledger),
                (&Method::POST, "/v1/embeddings") => {
                    let mut reply = embeddings::embed(&self.options, request);
                    if matches!(
                        fault,
                        Some(Fault::Malformed {
                            what: crate::fakes::fault::Malformation::EmptyChoices
                        })
                    ) {
                        reply.body = bytes::Bytes::from_static(br#"{"object":"list","data":[],"model":"unknown","usage":{"prompt_tokens":0,"total_tokens":0}}"#);
                    }
                    reply
                }
                (&Method::GET, "/v1/models") => models(),
                (&Method::POST, path) if bedrock::route(path).is_some() => {
                    let (model, action) = bedrock::route(path).expect("matched above");
                    bedrock::answer(&turn, model, action)
                }
                (&Method::POST, path) if gemini::route(path).is_some() => {
                    let (model, action) = gemini::route(path).expect("matched above");
                    gemini::answer(&turn, model, action)
                }
                (method, path) => match provider {
                    Provider::OpenAi => error(
                        StatusCode::NOT_FOUND,
                        &format!("Invalid URL ({method} {path})"),
                        "invalid_request_error",
                        None,
                        None,
                    ),
                    Provider::Anthropic => anthropic_error(
                        StatusCode::NOT_FOUND,
                        "not_found_error",
                        &format!("Not found: {method} {path}"),
                    ),
                    Provider::Gemini => gemini::error(
                        StatusCode::NOT_FOUND,
                        &format!("Method not found: {method} {path}"),
                        None,
                    ),
                    Provider::Azure => azure::error(StatusCode::NOT_FOUND, "Resource not found"),
                    Provider::Bedrock => bedrock::error(
                        StatusCode::NOT_FOUND,
                        "UnknownOperationException",
                        &format!("No operation at {method} {path}"),
                    ),
                },
            },
        };
        stamp(provider, request, reply)
    }

    fn authenticate(&self, provider: Provider, request: &Request) -> Result<(), Reply> {
        let ApiKey::Only(expected) = &self.options.api_key else {
            return Ok(());
        };
        if provider == Provider::Bedrock {
            // SigV4 cannot be checked without the secret key: a signed request is accepted.
            let signed = request
                .header("authorization")
                .is_some_and(|auth| bedrock::access_key_id(auth).is_some());
            if signed || sent_key(request) == Some(expected.as_str()) {
                return Ok(());
            }
        }
        let sent = sent_key(request);
        if sent == Some(expected.as_str()) {
            return Ok(());
        }
        // The provider's own wording first (SDKs and services match on it), then where the
        // expected key comes from: without it a person sees only "incorrect key".
        let which = format!(
            "faultline's fake LLM expects the key it was started with ({}); start it with \
             --api-key any to accept every key.",
            shown(expected)
        );
        Err(match provider {
            Provider::OpenAi => {
                let message = match sent {
                    Some(key) => format!(
                        "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys. {which}",
                        mask(key)
                    ),
                    None => format!(
                        "You didn't provide an API key. You need to provide your API key in an \
                         Authorization header using Bearer auth (i.e. Authorization: Bearer \
                         YOUR_KEY). {which}"
                    ),
                };
                error(
                    StatusCode::UNAUTHORIZED,
                    &message,
                    "invalid_request_error",
                    None,
                    Some("invalid_api_key"),
                )
            }
            Provider::Anthropic => anthropic_error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                &match sent {
                    Some(_) => format!("invalid x-api-key. {which}"),
                    None => format!("x-api-key header is required. {which}"),
                },
            ),
            Provider::Azure => azure::error(
                StatusCode::UNAUTHORIZED,
                &format!(
                    "Access denied due to invalid subscription key or wrong API endpoint. Make \
                     sure to provide a valid key for an active subscription and use a correct \
                     regional API endpoint for your resource. {which}"
                ),
            ),
            Provider::Bedrock => bedrock::error(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            // Google answers a wrong key with 400 and a missing one with 403.
            Provider::Gemini => match sent {
                Some(_) => gemini::error(
                    StatusCode::BAD_REQUEST,
                    &format!("API key not valid. Please pass a valid API key. {which}"),
                    None,
                ),
                None => gemini::error(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "Method doesn't allow unregistered callers (callers without established \
                         identity). Please use API Key or other form of API consumer identity \
                         to call this API. {which}"
                    ),
                    None,
                ),
            },
        })
    }
}

/// The API key a request carries: `Authorization: Bearer`, else Anthropic's `x-api-key`,
/// else Google's `x-goog-api-key` or `?key=`, else Azure's `api-key`, else the access key id
/// of a SigV4 signature; an empty one is none.
fn sent_key(request: &Request) -> Option<&str> {
    let header = |name: &str| {
        request
            .header(name)
            .map(str::trim)
            .filter(|key| !key.is_empty())
    };
    let bearer = request
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty());
    let query_key = || {
        request
            .uri
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("key="))
            .filter(|key| !key.is_empty())
    };
    bearer
        .or_else(|| header("x-api-key"))
        .or_else(|| header("x-goog-api-key"))
        .or_else(|| header("api-key"))
        .or_else(|| bedrock::access_key_id(request.header("authorization")?))
        .or_else(query_key)
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

/// A key the fake expects, shown so a person can tell which it is without it being usable
/// from a log line: its first 4 characters, the last 4 and its length.
fn shown(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return format!("{} characters", chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}, {} characters", chars.len())
}

/// Adds the headers every answer carries: the provider's own request id and the time spent
/// (which includes an injected delay, as a slow model's would).
fn stamp(provider: Provider, request: &Request, reply: Reply) -> Reply {
    let processing_ms = request.arrival.elapsed().as_millis() as u64;
    let id = fresh_id("req_");
    let reply = match provider {
        Provider::OpenAi => reply.with_text(X_REQUEST_ID, id),
        Provider::Anthropic => reply.with_text(REQUEST_ID, id),
        Provider::Gemini => reply,
        Provider::Bedrock => reply.with_text(X_AMZN_REQUEST_ID, id),
        Provider::Azure => {
            let deployment = azure::openai_path(request.uri.path()).1;
            azure::stamp(reply.with_text(X_REQUEST_ID, id.clone()), &id, deployment)
        }
    };
    reply.with_number(PROCESSING_MS, processing_ms)
}

/// `prefix` and a new id of 32 lowercase hex digits, the shape of a simple UUID the providers' ids have.
/// Not a v4 UUID: a per-process random start plus a counter, scrambled by splitmix64, so ids
/// are unique in a process, differ between processes and cost no system call (a v4 UUID
/// read the OS's random source twice per request, a tenth of the fake's time).
pub(super) fn fresh_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::LazyLock;
    static START: LazyLock<u64> = LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    // The high half is a bijection of the counter: no two ids of one process are equal.
    let high = mix(START.wrapping_add(n));
    let low = mix(high ^ *START);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for half in [high, low] {
        for shift in (0..16).rev() {
            id.push(char::from(HEX[((half >> (shift * 4)) & 0xf) as usize]));
        }
    }
    id
}

/// An error in Anthropic's shape.
fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "type": "error", "error": { "type": kind, "message": message } }),
    )
}

/// The body Anthropic sends with this status, for an injected fault.
fn anthropic_status_error(status: StatusCode, error_code: Option<&str>) -> Reply {
    let (kind, message) = match status.as_u16() {
        400 => ("invalid_request_error", "Invalid request."),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit.",
        ),
        503 | 529 => ("overloaded_error", "Overloaded"),
        _ if status.is_server_error() => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "The request was rejected."),
    };
    anthropic_error(status, error_code.unwrap_or(kind), message)
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
fn status_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    error_code: Option<&str>,
) -> Reply {
    let code = status.as_u16();
    let (message, kind, usual_code) = match (code, error_code) {
        (429, Some("insufficient_quota")) => (
            "You exceeded your current quota, please check your plan and billing details. For \
             more information on this error, read the docs: \
             https://platform.openai.com/docs/guides/error-codes/api-errors."
                .to_owned(),
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
        (400, Some("context_length_exceeded")) => (
            "This model's maximum context length is 128000 tokens. However, your messages \
             resulted in 130000 tokens. Please reduce the length of the messages."
                .to_owned(),
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
        (code, _) => match code {
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
                "The server had an error while processing your request. Sorry about that!"
                    .to_owned(),
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
        },
    };
    let param = (usual_code == Some("context_length_exceeded")).then_some("messages");
    // `retry-after-ms` (which openai-python reads first) is added by the serving loop, as the
    // fault's `retry_after_ms` switch says.
    error(status, &message, kind, param, error_code.or(usual_code)).with_retry_after(retry_after)
}

/// The models the fake lists; any model name is accepted in requests and echoed back.
fn models() -> Reply {
    let data: Vec<_> = ["gpt-4o-mini", "gpt-4o", "gpt-tiny-ctx", "text-embedding-3-small", "claude-3-5-haiku-latest"]
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

/// A stream's answer with `content_type`, or with `application/json` under
/// `malformed: wrong_content_type` (what a proxy that buffers streams sends).
fn typed_stream(
    mut reply: Reply,
    content_type: &'static str,
    malformed: Option<Malformation>,
) -> Reply {
    let content_type = if malformed == Some(Malformation::WrongContentType) {
        "application/json"
    } else {
        content_type
    };
    reply
        .headers
        .retain(|(name, _)| name != axum::http::header::CONTENT_TYPE);
    reply.headers.push((
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    ));
    reply
}

/// The usage the journal keeps: the answer's, unless a broken stream never told the client
/// (no usage event, an error frame, or no end).
fn told_usage(
    reply: Reply,
    streaming: bool,
    malformed: Option<Malformation>,
    usage: http::Usage,
) -> Reply {
    let untold = streaming
        && matches!(
            malformed,
            Some(Malformation::NoUsage | Malformation::ErrorFrame | Malformation::NoDone)
        );
    if untold {
        reply
    } else {
        reply.with_usage(usage)
    }
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
    fn a_429_fault_says_when_to_retry_and_why() {
        let reply = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_millis(1500)),
            None,
        );
        assert_eq!(reply.header("retry-after").unwrap(), "2");
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "requests");
    }

    #[test]
    fn a_429_can_say_insufficient_quota_instead() {
        let reply = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some("insufficient_quota"),
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "insufficient_quota");
        assert_eq!(body["error"]["type"], "insufficient_quota");
    }

    #[test]
    fn fresh_ids_look_like_simple_uuids_and_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| fresh_id("")).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
    }

    #[test]
    fn a_model_name_can_ask_for_a_small_context_window() {
        assert_eq!(context_window("gpt-tiny-ctx"), 512);
        assert_eq!(context_window("gpt-4o-ctx2000"), 2000);
        assert_eq!(context_window("gpt-4o-mini"), 128_000);
    }
}
