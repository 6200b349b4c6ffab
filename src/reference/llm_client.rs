//! The client for the OpenAI-compatible provider: embeddings and (non-streaming) chat
//! completions, with a per-attempt timeout, an overall deadline, and retries of 429/503 and
//! refused connections with capped exponential backoff and full jitter that honour
//! `retry-after-ms` / `retry-after`.
//!
//! Errors come back classified ([`LlmError`]) so the chat handler can pick an honest status;
//! the raw upstream body is kept only for the `stack-trace-errors` flaw to leak.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use super::config::Config;
use super::flaws::{Flaw, Flaws};
use super::log::Logger;
use super::metrics::Metrics;

/// The embedding model used for the corpus and for queries (they must match).
pub const EMBEDDING_MODEL: &str = "text-embedding-3-small";

/// How much of an upstream error body is kept (for the flawed error bodies only).
const RAW_BODY_LIMIT: usize = 2048;

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
}

impl RetryPolicy {
    pub fn new(config: &Config, flaws: &Flaws) -> Self {
        let timed = !flaws.has(Flaw::NoTimeout);
        RetryPolicy {
            attempt_timeout: timed.then_some(config.llm_timeout),
            // Twice the attempt timeout: room for one slow attempt plus quick retries, while
            // the user still hears back in bounded time.
            deadline: timed.then_some(config.llm_timeout * 2),
            max_retries: if flaws.has(Flaw::NoRetry) {
                0
            } else {
                config.llm_max_retries
            },
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
        }
    }

    /// The largest backoff before retry number `retry` (0-based): `min(cap, base * 2^retry)`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.cap)
    }

    /// Full jitter: uniform in `[0, ceiling]`, so clients that failed together retry apart.
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.backoff_ceiling(retry).as_millis() as u64;
        Duration::from_millis(rng.random_range(0..=ceiling))
    }
}

/// Why an LLM call failed, after any retries.
#[derive(Debug)]
pub enum LlmError {
    /// An attempt ran past its timeout (or the call past its deadline).
    Timeout,
    /// 429: the provider asks us to slow down, maybe saying for how long.
    RateLimited {
        retry_after: Option<Duration>,
        raw: String,
    },
    /// 5xx, or no connection at all (`status: None`); a 503 may say when to come back.
    Unavailable {
        status: Option<u16>,
        retry_after: Option<Duration>,
        raw: String,
    },
    /// Another 4xx: our request or key is wrong; retrying cannot help.
    Rejected { status: u16, raw: String },
    /// A 2xx whose body is not what the API promises.
    Malformed { raw: String },
}

impl LlmError {
    /// A short kind for log lines and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Timeout => "llm_timeout",
            LlmError::RateLimited { .. } => "llm_rate_limited",
            LlmError::Unavailable { .. } => "llm_unavailable",
            LlmError::Rejected { .. } => "llm_rejected",
            LlmError::Malformed { .. } => "llm_malformed",
        }
    }

    /// Retry only what another attempt may fix: rate limits, 503s and refused connections.
    /// Timeouts are not retried: the attempt already spent the user's patience.
    fn retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. } => true,
            LlmError::Unavailable { status, .. } => matches!(status, None | Some(503)),
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. }
            | LlmError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The internal description, upstream body included: never shown to users unless a flaw
    /// says so.
    pub fn raw(&self) -> String {
        match self {
            LlmError::Timeout => "LlmError::Timeout(\"operation timed out\")".into(),
            LlmError::RateLimited { raw, .. } => format!("LlmError::RateLimited(429, {raw:?})"),
            LlmError::Unavailable {
                status: Some(s),
                raw,
                ..
            } => format!("LlmError::Unavailable({s}, {raw:?})"),
            LlmError::Unavailable {
                status: None, raw, ..
            } => {
                format!("LlmError::Connect({raw:?})")
            }
            LlmError::Rejected { status, raw } => format!("LlmError::Rejected({status}, {raw:?})"),
            LlmError::Malformed { raw } => format!("LlmError::Malformed({raw:?})"),
        }
    }

    /// The raw upstream body, if there was one.
    pub fn upstream_body(&self) -> Option<&str> {
        match self {
            LlmError::RateLimited { raw, .. }
            | LlmError::Unavailable { raw, .. }
            | LlmError::Rejected { raw, .. }
            | LlmError::Malformed { raw } => Some(raw),
            LlmError::Timeout => None,
        }
    }

    /// The provider's hint for the client, for the 429 we pass on.
    pub fn client_retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What one request's LLM calls cost, for its log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    pub attempts: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallKind {
    Embeddings,
    Chat,
}

impl CallKind {
    fn name(self) -> &'static str {
        match self {
            CallKind::Embeddings => "embeddings",
            CallKind::Chat => "chat",
        }
    }
}

pub struct LlmClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    model: String,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
    log: Logger,
}

impl LlmClient {
    pub fn new(config: &Config, flaws: &Flaws, metrics: Arc<Metrics>, log: Logger) -> Self {
        LlmClient {
            // No client-wide timeout: each attempt gets its own, and `no-timeout` needs none.
            http: reqwest::Client::new(),
            base_url: config.openai_base_url.clone(),
            api_key: config.openai_api_key.clone(),
            model: config.model.clone(),
            policy: RetryPolicy::new(config, flaws),
            metrics,
            log,
        }
    }

    /// Embeds `input`; the text is sent verbatim (faultline finds its nonce there).
    pub async fn embed(
        &self,
        input: &str,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<Vec<f32>, LlmError> {
        let body = json!({"model": EMBEDDING_MODEL, "input": input});
        let answer = self
            .call(CallKind::Embeddings, &body, request_id, stats)
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

    /// One chat completion: the system prompt, then the user's message verbatim.
    pub async fn chat(
        &self,
        system: &str,
        user_message: &str,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<String, LlmError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user_message},
            ],
        });
        let answer = self.call(CallKind::Chat, &body, request_id, stats).await?;
        let usage = &answer["usage"];
        let input = usage["prompt_tokens"].as_u64().unwrap_or(0);
        let output = usage["completion_tokens"].as_u64().unwrap_or(0);
        stats.input_tokens += input;
        stats.output_tokens += output;
        self.metrics.count_tokens(input, output);
        answer["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| LlmError::Malformed {
                raw: truncate(&answer.to_string()),
            })
    }

    /// Attempts until success, a final error, the retry limit or the deadline.
    async fn call(
        &self,
        kind: CallKind,
        body: &Value,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<Value, LlmError> {
        let deadline = self.policy.deadline.map(|d| Instant::now() + d);
        let mut retries = 0;
        loop {
            let timeout = match (self.policy.attempt_timeout, deadline) {
                (Some(t), Some(d)) => Some(t.min(d.saturating_duration_since(Instant::now()))),
                (t, _) => t,
            };
            stats.attempts += 1;
            let started = Instant::now();
            let outcome = self.attempt(kind, body, request_id, timeout).await;
            if kind == CallKind::Chat {
                self.metrics.record_llm_latency(started.elapsed());
            }
            let err = match outcome {
                Ok(answer) => return Ok(answer),
                Err(err) => err,
            };
            self.metrics.count_llm_error();
            if !err.retryable() || retries >= self.policy.max_retries {
                return Err(err);
            }
            let jitter = self.policy.backoff(retries, &mut rand::rng());
            // The provider's hint is a floor: retrying sooner would only earn another 429.
            let wait = jitter.max(err.retry_after().unwrap_or_default());
            if let Some(deadline) = deadline {
                if Instant::now() + wait >= deadline {
                    self.log.warn(
                        "llm_retry_abandoned",
                        json!({
                            "requestId": request_id,
                            "call": kind.name(),
                            "attempt": retries + 1,
                            "reason": err.kind(),
                            "waitMs": wait.as_millis() as u64,
                        }),
                    );
                    return Err(err);
                }
            }
            self.log.warn(
                "llm_retry",
                json!({
                    "requestId": request_id,
                    "call": kind.name(),
                    "attempt": retries + 1,
                    "reason": err.kind(),
                    "waitMs": wait.as_millis() as u64,
                }),
            );
            tokio::time::sleep(wait).await;
            retries += 1;
        }
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
            CallKind::Chat => "chat/completions",
        };
        let mut request = self
            .http
            .post(format!("{}/{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(body);
        if let Some(id) = request_id {
            // Propagated so the provider's (and faultline's) logs can be joined to ours.
            request = request.header("x-request-id", id);
        }
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
        let (status, headers, bytes) = result.map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout
            } else {
                LlmError::Unavailable {
                    status: None,
                    retry_after: None,
                    raw: e.to_string(),
                }
            }
        })?;
        let raw = || truncate(&String::from_utf8_lossy(&bytes));
        match status {
            200..=299 => {
                serde_json::from_slice(&bytes).map_err(|_| LlmError::Malformed { raw: raw() })
            }
            429 => Err(LlmError::RateLimited {
                retry_after: retry_after(&headers),
                raw: raw(),
            }),
            500..=599 => Err(LlmError::Unavailable {
                status: Some(status),
                retry_after: retry_after(&headers),
                raw: raw(),
            }),
            _ => Err(LlmError::Rejected { status, raw: raw() }),
        }
    }
}

/// Reads `retry-after-ms` (OpenAI's, milliseconds) or else `retry-after` (seconds). The
/// HTTP-date form of `retry-after` is ignored: providers send seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0));
    }
    number("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(RAW_BODY_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempt_timeout: Some(Duration::from_millis(500)),
            deadline: Some(Duration::from_millis(1000)),
            max_retries: 2,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
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
    fn truncate_respects_char_boundaries() {
        let text = "é".repeat(RAW_BODY_LIMIT);
        let cut = truncate(&text);
        assert!(cut.len() <= RAW_BODY_LIMIT);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
