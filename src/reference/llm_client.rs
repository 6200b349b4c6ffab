//! The client for the OpenAI-compatible provider: embeddings, chat completions (plain, with
//! tools, and streamed), with a per-attempt timeout, an overall deadline, retries of 429/503
//! and refused connections with capped exponential backoff and full jitter that honour
//! `retry-after-ms` / `retry-after`, a retry budget, and a circuit breaker ([`super::circuit`]).
//!
//! Errors come back classified ([`LlmError`]) so the handlers can pick an honest status;
//! the raw upstream body is kept only for the `stack-trace-errors` flaw to leak.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use super::circuit::{CircuitBreaker, RetryBudget};
use super::config::{Config, LlmApi};
use super::flaws::{Flaw, Flaws};
pub use super::llm_error::LlmError;
use super::llm_error::{classify, transport_error, truncate};
use super::log::Logger;
use super::metrics::Metrics;

/// The embedding model used for the corpus and for queries (they must match).
pub const EMBEDDING_MODEL: &str = "text-embedding-3-small";

/// Retries under `retry-storm`: "no cap" in spirit, bounded so a test run ends.
const STORM_RETRIES: u32 = 10;

/// Retries inside each attempt under `nested-retries`: the official SDKs' default.
const SDK_RETRIES: u32 = 2;

/// When to give up and how long to wait between attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Timeout of one attempt; `None` under `no-timeout`.
    pub attempt_timeout: Option<Duration>,
    /// Budget for the whole call, backoff included; `None` under `no-timeout`.
    pub deadline: Option<Duration>,
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Wait at least what `retry-after` asks (off under `ignore-retry-after` and `retry-storm`).
    pub honour_retry_after: bool,
    /// Back off between attempts (off under `retry-storm`).
    pub backoff: bool,
    /// The backoff ceiling doubles per retry (off under `fixed-backoff`: every wait is `base`).
    pub growth: bool,
    /// Retry 400/401 too (`retry-client-errors`).
    pub retry_rejected: bool,
    /// Retries made inside each attempt, unseen by the breaker, the budget and the deadline
    /// (`nested-retries`: an SDK's own retries under the app's loop).
    pub inner_retries: u32,
}

impl RetryPolicy {
    pub fn new(config: &Config, flaws: &Flaws) -> Self {
        let timed = !flaws.has(Flaw::NoTimeout);
        let storm = flaws.has(Flaw::RetryStorm);
        RetryPolicy {
            attempt_timeout: timed.then_some(config.llm_timeout),
            // Twice the attempt timeout: room for one slow attempt plus quick retries, while
            // the user still hears back in bounded time.
            deadline: timed.then_some(config.llm_timeout * 2),
            max_retries: if flaws.has(Flaw::NoRetry) {
                0
            } else if storm {
                STORM_RETRIES
            } else {
                config.llm_max_retries
            },
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            honour_retry_after: !storm && !flaws.has(Flaw::IgnoreRetryAfter),
            backoff: !storm,
            growth: !flaws.has(Flaw::FixedBackoff),
            retry_rejected: flaws.has(Flaw::RetryClientErrors),
            inner_retries: if flaws.has(Flaw::NestedRetries) {
                SDK_RETRIES
            } else {
                0
            },
        }
    }

    /// The largest backoff before retry number `retry` (0-based): `min(cap, base * 2^retry)`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.cap)
    }

    /// Full jitter: uniform in `[0, ceiling]`, so clients that failed together retry apart.
    /// Under `fixed-backoff`, `base` whatever the retry number: the fixed delay of Polly's and
    /// resilience4j's defaults (`checks::retries::policies`).
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        if !self.growth {
            return self.base;
        }
        let ceiling = self.backoff_ceiling(retry).as_millis() as u64;
        Duration::from_millis(rng.random_range(0..=ceiling))
    }

    /// Is another attempt worth making after `err`?
    fn retries(&self, err: &LlmError) -> bool {
        err.retryable() || (self.retry_rejected && matches!(err, LlmError::Rejected { .. }))
    }
}

/// What one request's LLM calls cost, for its log line, and each attempt's timing, for its
/// trace (turned into spans when the request finishes: the retry loop has no trace at hand).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    pub attempts: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub attempt_spans: Vec<AttemptSpan>,
}

impl CallStats {
    /// Keeps one attempt's timing for the request's trace.
    fn record_span<T>(
        &mut self,
        kind: CallKind,
        resend: u32,
        start: u64,
        outcome: &Result<T, LlmError>,
    ) {
        self.attempt_spans.push(AttemptSpan {
            call: kind.name(),
            resend,
            start,
            end: super::otel::now_nanos(),
            error: outcome.as_ref().err().map(|e| e.kind()),
        });
    }
}

/// One LLM attempt as its span will show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptSpan {
    /// `chat` or `embeddings` (the GenAI operation name).
    pub call: &'static str,
    /// 0 for the first attempt of a call, n for its n-th retry.
    pub resend: u32,
    /// Unix nanoseconds.
    pub start: u64,
    pub end: u64,
    /// The error kind when the attempt failed.
    pub error: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallKind {
    Embeddings,
    /// Chat completions.
    Chat,
    /// OpenAI's Responses API (`super::responses_api`).
    Responses,
    /// Bedrock's Converse (`super::bedrock`).
    Converse,
}

impl CallKind {
    /// The GenAI operation name: every API but embeddings is a chat.
    fn name(self) -> &'static str {
        match self {
            CallKind::Embeddings => "embeddings",
            CallKind::Chat | CallKind::Responses | CallKind::Converse => "chat",
        }
    }
}

/// Whether a call is user traffic (breaker and budget apply) or startup indexing (they don't:
/// indexing has its own slow retry loop, and must not open the circuit before the first user).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    User,
    Startup,
}

pub struct LlmClient {
    pub(super) http: reqwest::Client,
    base_url: String,
    api_key: String,
    pub(super) model: String,
    pub(super) api: LlmApi,
    /// Bedrock's endpoint and API key, with `LLM_API=bedrock`.
    pub(super) bedrock: Option<(String, String)>,
    policy: RetryPolicy,
    pub(super) metrics: Arc<Metrics>,
    pub(super) log: Logger,
    /// Guards chat completions; shared with the app, which reports its state.
    breaker: Arc<CircuitBreaker>,
    embeddings_breaker: CircuitBreaker,
    budget: RetryBudget,
    log_per_attempt: bool,
    /// `miscount-tokens`: requests' token counts are word counts (metrics still read usage).
    miscount_tokens: bool,
    /// `no-throttle-retry`: Bedrock's ThrottlingException is final.
    no_throttle_retry: bool,
    /// `new-response-id-on-retry`: a retried follow-up turn replays the conversation first.
    pub(super) replay_on_retry: bool,
}

impl LlmClient {
    pub fn new(
        config: &Config,
        flaws: &Flaws,
        metrics: Arc<Metrics>,
        log: Logger,
        breaker: Arc<CircuitBreaker>,
    ) -> Self {
        let storm = flaws.has(Flaw::RetryStorm);
        LlmClient {
            // No client-wide timeout: each attempt gets its own, and `no-timeout` needs none.
            http: reqwest::Client::new(),
            base_url: config.openai_base_url.clone(),
            api_key: config.openai_api_key.clone(),
            model: config.model.clone(),
            api: config.llm_api,
            bedrock: config
                .bedrock_endpoint
                .clone()
                .zip(config.bedrock_token.clone()),
            policy: RetryPolicy::new(config, flaws),
            metrics,
            embeddings_breaker: CircuitBreaker::new(
                "embeddings",
                (!flaws.has(Flaw::NoCircuitBreaker)).then_some(config.circuit_failure_threshold),
                config.circuit_cooldown,
                log.clone(),
            ),
            log,
            breaker,
            budget: RetryBudget::new(
                (!storm).then_some(config.retry_budget_ratio),
                config.retry_budget_min,
            ),
            log_per_attempt: flaws.has(Flaw::LogPerAttempt),
            miscount_tokens: flaws.has(Flaw::MiscountTokens),
            no_throttle_retry: flaws.has(Flaw::NoThrottleRetry),
            replay_on_retry: flaws.has(Flaw::NewResponseIdOnRetry),
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Attempts one call may make: the first and its retries.
    pub(super) fn max_attempts(&self) -> u32 {
        self.policy.max_retries + 1
    }

    /// Embeds `input`; the text is sent verbatim (faultline finds its nonce there).
    pub async fn embed(
        &self,
        input: &str,
        request_id: Option<&str>,
        traffic: Traffic,
        stats: &mut CallStats,
    ) -> Result<Vec<f32>, LlmError> {
        let body = json!({"model": EMBEDDING_MODEL, "input": input});
        let answer = self
            .call(CallKind::Embeddings, &body, request_id, traffic, stats)
            .await?;
        answer["data"][0]["embedding"]
            .as_array()
            .and_then(|xs| {
                xs.iter()
                    .map(|x| x.as_f64().map(|x| x as f32))
                    .collect::<Option<Vec<f32>>>()
            })
            .filter(|v| !v.is_empty())
            .ok_or_else(|| LlmError::Malformed {
                raw: truncate(&answer.to_string()),
            })
    }

    /// One answer from the configured API: the system prompt, then the user's message
    /// verbatim.
    pub async fn chat(
        &self,
        system: &str,
        user_message: &str,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<String, LlmError> {
        match self.api {
            LlmApi::ChatCompletions => {}
            LlmApi::Responses => {
                let input = json!([{"role": "user", "content": user_message}]);
                let turn = super::responses_api::Turn::first(system, input, None);
                let reply = self.respond(&turn, request_id, stats).await?;
                return Ok(reply.text);
            }
            LlmApi::Bedrock => return self.converse(system, user_message, request_id, stats).await,
        }
        let messages = json!([
            {"role": "system", "content": system},
            {"role": "user", "content": user_message},
        ]);
        let message = self.complete(&messages, None, request_id, stats).await?;
        message["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| LlmError::Malformed {
                raw: truncate(&message.to_string()),
            })
    }

    /// One chat completion over `messages` (offering `tools` if given); returns the assistant
    /// message (`content` and maybe `tool_calls`).
    pub async fn complete(
        &self,
        messages: &Value,
        tools: Option<&Value>,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<Value, LlmError> {
        let mut body = json!({"model": self.model, "messages": messages});
        if let Some(tools) = tools {
            body["tools"] = tools.clone();
        }
        let answer = self
            .call(CallKind::Chat, &body, request_id, Traffic::User, stats)
            .await?;
        let message = &answer["choices"][0]["message"];
        if self.miscount_tokens {
            // The flaw: "a token is about a word", counted from the text we have at hand.
            let before = (stats.input_tokens, stats.output_tokens);
            self.count_usage(&answer["usage"], stats);
            stats.input_tokens = before.0 + word_count(messages);
            stats.output_tokens = before.1 + word_count(&message["content"]);
        } else {
            self.count_usage(&answer["usage"], stats);
        }
        if message.is_object() {
            Ok(message.clone())
        } else {
            // Answered, but with nothing usable: the call failed all the same.
            self.metrics.count_llm_error();
            Err(LlmError::Malformed {
                raw: truncate(&answer.to_string()),
            })
        }
    }

    /// Counts an answer's usage (tokens, metrics) under the chat completions' field names.
    pub(super) fn count_usage(&self, usage: &Value, stats: &mut CallStats) {
        let input = usage["prompt_tokens"].as_u64().unwrap_or(0);
        let output = usage["completion_tokens"].as_u64().unwrap_or(0);
        self.count_tokens(input, output, stats);
    }

    /// Counts tokens the provider reported (tokens, metrics).
    pub(super) fn count_tokens(&self, input: u64, output: u64, stats: &mut CallStats) {
        stats.input_tokens += input;
        stats.output_tokens += output;
        self.metrics.count_tokens(input, output);
    }

    /// A streamed chat completion (`stream: true`, usage requested in the last chunk). Retries
    /// happen only before the stream starts; the first delta must come within the attempt
    /// timeout, each later chunk within it too.
    pub async fn chat_stream(
        &self,
        system: &str,
        user_message: &str,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<ChatStream, LlmError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user_message},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let started = Instant::now();
        let response = self
            .with_retries(
                CallKind::Chat,
                request_id,
                Traffic::User,
                stats,
                |timeout| self.open_stream(&body, request_id, timeout),
            )
            .await?;
        Ok(ChatStream {
            response,
            buf: Vec::new(),
            first_token_by: self.policy.attempt_timeout.map(|t| started + t),
            idle: self.policy.attempt_timeout,
            finished: false,
            usage: None,
        })
    }

    /// Counts a finished stream's usage (tokens, metrics).
    pub fn finish_stream(&self, stream: &ChatStream, stats: &mut CallStats) {
        if let Some(usage) = &stream.usage {
            self.count_usage(usage, stats);
        }
    }

    /// A stream broke after it started: an LLM error, and maybe a sign of an outage.
    pub fn stream_failed(&self, err: &LlmError) {
        self.metrics.count_llm_error();
        if err.is_outage() {
            self.breaker.record_failure(err.kind());
        }
    }

    /// Attempts until success, a final error, the retry limit or the deadline.
    async fn call(
        &self,
        kind: CallKind,
        body: &Value,
        request_id: Option<&str>,
        traffic: Traffic,
        stats: &mut CallStats,
    ) -> Result<Value, LlmError> {
        self.with_retries(kind, request_id, traffic, stats, |timeout| {
            self.attempt(kind, body, request_id, timeout)
        })
        .await
    }

    /// One call, retries included. A call that still failed after them, having sent at least
    /// one attempt, is one LLM error in the metrics: services count the SDK call, not each of
    /// its attempts (see `checks::metrics`); a call the open breaker refused sent nothing.
    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        kind: CallKind,
        request_id: Option<&str>,
        traffic: Traffic,
        stats: &mut CallStats,
        attempt: F,
    ) -> Result<T, LlmError>
    where
        F: FnMut(Option<Duration>) -> Fut,
        Fut: std::future::Future<Output = Result<T, LlmError>>,
    {
        let sent_before = stats.attempts;
        let result = self
            .retrying(kind, request_id, traffic, stats, attempt)
            .await;
        if result.is_err() && stats.attempts > sent_before {
            self.metrics.count_llm_error();
        }
        result
    }

    /// The retry loop shared by plain and streamed calls: breaker, budget, backoff, deadline.
    async fn retrying<T, F, Fut>(
        &self,
        kind: CallKind,
        request_id: Option<&str>,
        traffic: Traffic,
        stats: &mut CallStats,
        mut attempt: F,
    ) -> Result<T, LlmError>
    where
        F: FnMut(Option<Duration>) -> Fut,
        Fut: std::future::Future<Output = Result<T, LlmError>>,
    {
        let guarded = traffic == Traffic::User;
        let breaker = match kind {
            CallKind::Chat | CallKind::Responses | CallKind::Converse => &*self.breaker,
            CallKind::Embeddings => &self.embeddings_breaker,
        };
        let deadline = self.policy.deadline.map(|d| Instant::now() + d);
        if guarded {
            self.budget.record_call();
        }
        let mut retries = 0;
        // Attempts this call has sent, the SDK's own retries included (`nested-retries`).
        let mut sent: u32 = 0;
        loop {
            if guarded {
                if let Err(open) = breaker.allow() {
                    return Err(LlmError::CircuitOpen {
                        retry_in: open.retry_in,
                    });
                }
            }
            let timeout = match (self.policy.attempt_timeout, deadline) {
                (Some(t), Some(d)) => Some(t.min(d.saturating_duration_since(Instant::now()))),
                (t, _) => t,
            };
            stats.attempts += 1;
            let started = Instant::now();
            let started_nanos = super::otel::now_nanos();
            let mut outcome = attempt(timeout).await;
            if guarded {
                stats.record_span(kind, sent, started_nanos, &outcome);
            }
            sent += 1;
            // `nested-retries`: the retries an SDK makes on its own, out of sight of the
            // breaker, the budget and the deadline, multiplying ours.
            for inner in 0..self.policy.inner_retries {
                let wait = match &outcome {
                    Err(err) if err.retryable() => self
                        .policy
                        .backoff(inner, &mut rand::rng())
                        .max(err.retry_after().unwrap_or_default()),
                    _ => break,
                };
                tokio::time::sleep(wait).await;
                stats.attempts += 1;
                let start = super::otel::now_nanos();
                outcome = attempt(timeout).await;
                if guarded {
                    stats.record_span(kind, sent, start, &outcome);
                }
                sent += 1;
            }
            if kind != CallKind::Embeddings {
                self.metrics.record_llm_latency(started.elapsed());
            }
            if self.log_per_attempt {
                self.log.info(
                    "llm_attempt",
                    json!({
                        "requestId": request_id,
                        "call": kind.name(),
                        "attempt": stats.attempts,
                        "outcome": outcome.as_ref().map(|_| "ok").unwrap_or_else(|e| e.kind()),
                        "latencyMs": started.elapsed().as_millis() as u64,
                    }),
                );
            }
            let err = match outcome {
                Ok(answer) => {
                    if guarded {
                        breaker.record_success();
                    }
                    return Ok(answer);
                }
                Err(err) => err,
            };
            if guarded {
                if err.is_outage() {
                    breaker.record_failure_of(started, err.kind());
                } else if !matches!(err, LlmError::RateLimited { .. }) {
                    // It answered, if not as hoped: the provider is up.
                    breaker.record_success();
                }
            }
            // The flaw: Bedrock's throttling treated as final, as a client that retries only
            // 5xx would (the AWS SDKs retry ThrottlingException in every retry mode).
            let throttle_final = self.no_throttle_retry
                && kind == CallKind::Converse
                && matches!(err, LlmError::RateLimited { .. });
            if !self.policy.retries(&err) || throttle_final || retries >= self.policy.max_retries {
                return Err(err);
            }
            let jitter = if self.policy.backoff {
                self.policy.backoff(retries, &mut rand::rng())
            } else {
                Duration::ZERO
            };
            // The provider's hint is a floor: retrying sooner would only earn another 429.
            let wait = if self.policy.honour_retry_after {
                jitter.max(err.retry_after().unwrap_or_default())
            } else {
                jitter
            };
            let fields = json!({
                "requestId": request_id,
                "call": kind.name(),
                "attempt": retries + 1,
                "reason": err.kind(),
                "waitMs": wait.as_millis() as u64,
            });
            if let Some(deadline) = deadline {
                if Instant::now() + wait >= deadline {
                    self.log.warn("llm_retry_abandoned", fields);
                    return Err(err);
                }
            }
            if guarded && !self.budget.try_retry() {
                self.log.warn("retry_budget_exhausted", fields);
                return Err(err);
            }
            self.log.warn("llm_retry", fields);
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    pub(super) fn request(
        &self,
        path: &str,
        body: &Value,
        request_id: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(format!("{}/{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(body);
        if let Some(id) = request_id {
            // Propagated so the provider's (and faultline's) logs can be joined to ours.
            request = request.header("x-request-id", id);
        }
        request
    }

    async fn attempt(
        &self,
        kind: CallKind,
        body: &Value,
        request_id: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Value, LlmError> {
        let path = match kind {
            CallKind::Embeddings => "embeddings",
            CallKind::Responses => "responses",
            // Bedrock's calls build their own requests (`super::bedrock`).
            CallKind::Chat | CallKind::Converse => "chat/completions",
        };
        let request = self.request(path, body, request_id);
        self.exchange(request, timeout).await
    }

    /// Sends `request` within `timeout` and reads a JSON answer, classifying failures.
    pub(super) async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Option<Duration>,
    ) -> Result<Value, LlmError> {
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, bytes))
        };
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .map_err(|_| LlmError::Timeout)?,
            None => exchange.await,
        };
        let (status, headers, bytes) = result.map_err(transport_error)?;
        classify(status, &headers, &bytes).and_then(|()| {
            serde_json::from_slice(&bytes).map_err(|_| LlmError::Malformed {
                raw: truncate(&String::from_utf8_lossy(&bytes)),
            })
        })
    }

    /// One streamed attempt, up to the response headers; an error status reads the body.
    async fn open_stream(
        &self,
        body: &Value,
        request_id: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, LlmError> {
        let request = self.request("chat/completions", body, request_id);
        let exchange = async {
            let response = request.send().await?;
            if response.status().is_success() {
                return Ok(Ok(response));
            }
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>(Err((status, headers, bytes)))
        };
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .map_err(|_| LlmError::Timeout)?,
            None => exchange.await,
        };
        match result.map_err(transport_error)? {
            Ok(response) => Ok(response),
            Err((status, headers, bytes)) => {
                classify(status, &headers, &bytes)?;
                Err(LlmError::Malformed {
                    raw: "unexpected status".into(),
                })
            }
        }
    }
}

/// A chat completion arriving as server-sent events (`data: {chunk}` lines, then
/// `data: [DONE]`), read delta by delta.
pub struct ChatStream {
    response: reqwest::Response,
    buf: Vec<u8>,
    /// The first delta must arrive by then (time to first token is bounded).
    first_token_by: Option<Instant>,
    /// Longest wait for each later chunk.
    idle: Option<Duration>,
    finished: bool,
    usage: Option<Value>,
}

impl ChatStream {
    /// The next piece of the answer; `Ok(None)` once the stream finished properly.
    pub async fn next_delta(&mut self) -> Result<Option<String>, LlmError> {
        loop {
            while let Some(at) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    self.finished = true;
                    return Ok(None);
                }
                let chunk: Value = serde_json::from_str(data).map_err(|_| LlmError::Malformed {
                    raw: truncate(data),
                })?;
                if chunk["usage"].is_object() {
                    self.usage = Some(chunk["usage"].clone());
                }
                if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
                    if !text.is_empty() {
                        self.first_token_by = None;
                        return Ok(Some(text.to_string()));
                    }
                }
            }
            if self.finished {
                return Ok(None);
            }
            let wait = match self.first_token_by {
                Some(by) => Some(by.saturating_duration_since(Instant::now())),
                None => self.idle,
            };
            let chunk = match wait {
                Some(wait) => tokio::time::timeout(wait, self.response.chunk())
                    .await
                    .map_err(|_| LlmError::Timeout)?,
                None => self.response.chunk().await,
            };
            match chunk {
                Ok(Some(bytes)) => self.buf.extend_from_slice(&bytes),
                Ok(None) => {
                    return Err(LlmError::Interrupted {
                        raw: "the stream ended before [DONE]".into(),
                    })
                }
                Err(e) => return Err(LlmError::Interrupted { raw: e.to_string() }),
            }
        }
    }
}

/// Words in a message's `content`, or in every message's of a list (for `miscount-tokens`).
fn word_count(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.split_whitespace().count() as u64,
        Value::Array(items) => items.iter().map(word_count).sum(),
        Value::Object(fields) => fields
            .iter()
            .filter(|(name, _)| *name == "content")
            .map(|(_, v)| word_count(v))
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::llm_error::{retry_after, RAW_BODY_LIMIT};
    use super::*;
    use rand::SeedableRng;
    use reqwest::header::HeaderMap;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempt_timeout: Some(Duration::from_millis(500)),
            deadline: Some(Duration::from_millis(1000)),
            max_retries: 2,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            honour_retry_after: true,
            backoff: true,
            growth: true,
            retry_rejected: false,
            inner_retries: 0,
        }
    }

    #[test]
    fn backoff_ceiling_doubles_then_caps() {
        let p = policy();
        let ceilings: Vec<u64> = (0..6)
            .map(|n| p.backoff_ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_spreads() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let waits: Vec<Duration> = (0..200).map(|_| p.backoff(1, &mut rng)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(400)));
        assert!(waits.iter().any(|w| *w < Duration::from_millis(100)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(300)));
    }

    #[test]
    fn fixed_backoff_waits_the_base_at_every_retry() {
        let p = RetryPolicy {
            growth: false,
            ..policy()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for retry in [0, 1, 4] {
            assert!((0..20).all(|_| p.backoff(retry, &mut rng) == p.base));
        }
    }

    #[test]
    fn client_errors_are_retried_only_under_the_flaw() {
        let rejected = LlmError::Rejected {
            status: 400,
            raw: String::new(),
        };
        assert!(!policy().retries(&rejected));
        let flawed = RetryPolicy {
            retry_rejected: true,
            ..policy()
        };
        assert!(flawed.retries(&rejected));
        assert!(!flawed.retries(&LlmError::Timeout));
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }

    #[test]
    fn unparseable_retry_after_is_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_rate_limits_503s_and_refusals_are_retryable() {
        let unavailable = |status| LlmError::Unavailable {
            status,
            retry_after: None,
            raw: String::new(),
        };
        assert!(LlmError::RateLimited {
            retry_after: None,
            raw: String::new()
        }
        .retryable());
        assert!(unavailable(Some(503)).retryable());
        assert!(unavailable(None).retryable());
        assert!(!unavailable(Some(500)).retryable());
        assert!(!LlmError::Timeout.retryable());
        for status in [400, 401] {
            assert!(!LlmError::Rejected {
                status,
                raw: String::new()
            }
            .retryable());
        }
    }

    #[test]
    fn word_count_reads_message_contents_only() {
        let messages = json!([
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "How do I reset my password?"},
        ]);
        assert_eq!(word_count(&messages), 9);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let text = "é".repeat(RAW_BODY_LIMIT);
        let cut = truncate(&text);
        assert!(cut.len() <= RAW_BODY_LIMIT);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
