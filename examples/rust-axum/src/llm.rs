//! The LLM call: async-openai over a tower stack of our own (the crate's `middleware` feature):
//!
//! - `JitteredRetry`, a `tower::retry::Policy`: 429, 5xx, timeouts and connection errors are
//!   retried up to twice, after the provider's `retry-after-ms` / `retry-after` when it sent one,
//!   else after 0.5 s doubling with "equal jitter" (half fixed, half random, as the AWS
//!   architecture blog names it). async-openai's own retry layer waits 100 ms doubling with no
//!   jitter at all, so clients that failed together retry together: the `no-jitter` defect
//!   puts it back.
//! - `Attempts`: one `llm_attempt` span per HTTP attempt (`gen_ai.operation.name`), and the
//!   count of failed attempts.
//!
//! Around it: a timeout per attempt (reqwest's), a deadline for the whole call, and a circuit
//! breaker that fails fast while the provider is down.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use rand::Rng;
use tracing::Instrument;

use crate::config::Config;
use crate::telemetry::Metrics;

/// Why a call failed, in the terms the user is told.
#[derive(Debug)]
pub enum LlmFailure {
    CircuitOpen,
    Timeout,
    RateLimited,
    Unavailable,
    /// The provider refused the request (4xx other than 429): retrying cannot help.
    Rejected,
    /// A 2xx whose body is not a completion.
    BadAnswer,
}

pub struct Completion {
    pub text: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

pub struct Llm {
    client: Client<OpenAIConfig>,
    model: String,
    deadline: Duration,
    breaker: CircuitBreaker,
    metrics: Arc<Metrics>,
    /// The `stack-trace-errors` defect keeps the raw error to show the user.
    pub last_error: Mutex<Option<String>>,
}

impl Llm {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Llm> {
        let http = reqwest::Client::builder()
            .timeout(config.llm_attempt_timeout)
            .build()?;
        // OPENAI_BASE_URL and OPENAI_API_KEY are read by async-openai itself.
        let client = Client::with_config(OpenAIConfig::new());
        let attempts = Attempts {
            inner: ReqwestService::new(http.clone()),
            metrics: metrics.clone(),
        };
        let client = if config.has("no-retry") {
            client.with_http_service(attempts)
        } else if config.has("no-jitter") {
            client.with_http_service(
                tower::ServiceBuilder::new()
                    .layer(async_openai::middleware::retry::OpenAIRetryLayer::new(
                        config.llm_max_retries,
                    ))
                    .service(attempts),
            )
        } else {
            client.with_http_service(
                tower::ServiceBuilder::new()
                    .retry(JitteredRetry::new(config.llm_max_retries))
                    .service(attempts),
            )
        };
        Ok(Llm {
            client,
            model: config.model.clone(),
            deadline: config.llm_deadline,
            breaker: CircuitBreaker::new(config.breaker_threshold, config.breaker_cooldown),
            metrics,
            last_error: Mutex::new(None),
        })
    }

    pub async fn complete(
        &self,
        correlation_id: &str,
        system: &str,
        question: &str,
    ) -> Result<Completion, LlmFailure> {
        if !self.breaker.allow() {
            return Err(LlmFailure::CircuitOpen);
        }
        let started = Instant::now();
        let result =
            tokio::time::timeout(self.deadline, self.call(correlation_id, system, question))
                .await
                .unwrap_or(Err(LlmFailure::Timeout));
        // A refused request says nothing about the provider's health.
        if !matches!(result, Err(LlmFailure::Rejected)) {
            self.breaker.record(result.is_ok(), started);
        }
        result
    }

    async fn call(
        &self,
        correlation_id: &str,
        system: &str,
        question: &str,
    ) -> Result<Completion, LlmFailure> {
        use async_openai::traits::RequestOptionsBuilder;
        let request = CreateChatCompletionRequestArgs::default()
            .model(&self.model)
            .messages([
                ChatCompletionRequestSystemMessage::from(system).into(),
                ChatCompletionRequestUserMessage::from(question).into(),
            ])
            .build()
            .map_err(|_| LlmFailure::Rejected)?;
        let chat = self
            .client
            .chat()
            .header("x-correlation-id", correlation_id)
            .map_err(|_| LlmFailure::Rejected)?;
        let response = match chat.create(request).await {
            Ok(response) => response,
            Err(error) => {
                *self.last_error.lock().unwrap() = Some(format!("{error:?}"));
                return Err(self.classify(error));
            }
        };
        let Some(text) = response
            .choices
            .first()
            .and_then(|c| c.message.content.clone())
        else {
            return Err(LlmFailure::BadAnswer);
        };
        let usage = response.usage.as_ref();
        let completion = Completion {
            text,
            prompt_tokens: usage.map_or(0, |u| u.prompt_tokens as u64),
            completion_tokens: usage.map_or(0, |u| u.completion_tokens as u64),
        };
        self.metrics
            .tokens
            .with_label_values(&["prompt"])
            .inc_by(completion.prompt_tokens);
        self.metrics
            .tokens
            .with_label_values(&["completion"])
            .inc_by(completion.completion_tokens);
        Ok(completion)
    }

    fn classify(&self, error: OpenAIError) -> LlmFailure {
        match error {
            OpenAIError::ApiError(e) if e.status_code.as_u16() == 429 => LlmFailure::RateLimited,
            OpenAIError::ApiError(e) if e.status_code.is_client_error() => LlmFailure::Rejected,
            OpenAIError::ApiError(_) => LlmFailure::Unavailable,
            OpenAIError::Reqwest(e) if e.is_timeout() => LlmFailure::Timeout,
            OpenAIError::Reqwest(e) if e.is_decode() || e.is_body() => {
                // The attempt answered 2xx, then its body broke off: that attempt failed too.
                self.metrics.llm_attempt_failures.inc();
                LlmFailure::BadAnswer
            }
            OpenAIError::JSONDeserialize(..) => {
                self.metrics.llm_attempt_failures.inc();
                LlmFailure::BadAnswer
            }
            _ => LlmFailure::Unavailable,
        }
    }
}

/// Retries 429, 5xx, timeouts and connection errors with growing, jittered waits, honouring
/// the provider's `retry-after-ms` / `retry-after`.
#[derive(Clone)]
struct JitteredRetry {
    max_retries: usize,
    done: usize,
}

impl JitteredRetry {
    fn new(max_retries: usize) -> Self {
        JitteredRetry {
            max_retries,
            done: 0,
        }
    }

    /// 0.5 s, 1 s, 2 s … capped at 8 s; half of it fixed, half random.
    fn backoff(&self) -> Duration {
        let full = (0.5 * 2f64.powi(self.done as i32)).min(8.0);
        Duration::from_secs_f64(full / 2.0 + rand::rng().random::<f64>() * full / 2.0)
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let wait = header("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| header("retry-after"))?;
    // A provider asking for more than a minute is better answered with an honest error.
    (wait <= 60.0).then(|| Duration::from_secs_f64(wait))
}

impl tower::retry::Policy<HttpRequestFactory, reqwest::Response, OpenAIError> for JitteredRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut HttpRequestFactory,
        result: &mut Result<reqwest::Response, OpenAIError>,
    ) -> Option<Self::Future> {
        if self.done >= self.max_retries {
            return None;
        }
        let wait = match result {
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                retry_after(r).unwrap_or_else(|| self.backoff())
            }
            Ok(_) => return None,
            Err(OpenAIError::Reqwest(e)) if e.is_timeout() || e.is_connect() => self.backoff(),
            Err(_) => return None,
        };
        self.done += 1;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &HttpRequestFactory) -> Option<HttpRequestFactory> {
        Some(request.clone())
    }
}

/// One span per HTTP attempt, and the count of the ones that failed.
#[derive(Clone)]
struct Attempts {
    inner: ReqwestService,
    metrics: Arc<Metrics>,
}

impl tower::Service<HttpRequestFactory> for Attempts {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let future = self.inner.call(request);
        let metrics = self.metrics.clone();
        let span = tracing::info_span!(
            "llm_attempt",
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.system = "openai",
            http.response.status_code = tracing::field::Empty,
        );
        Box::pin(
            async move {
                // An attempt the call's deadline cancels never returns here, yet it failed.
                let mut unfinished = Unfinished(Some(metrics));
                let result = future.await;
                let metrics = unfinished.0.take().expect("taken once");
                match &result {
                    Ok(r) => {
                        tracing::Span::current()
                            .record("http.response.status_code", r.status().as_u16());
                        if !r.status().is_success() {
                            metrics.llm_attempt_failures.inc();
                        }
                    }
                    Err(_) => metrics.llm_attempt_failures.inc(),
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Counts its attempt as failed if dropped before the attempt finished (cancelled by the
/// call's deadline).
struct Unfinished(Option<Arc<Metrics>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(metrics) = self.0.take() {
            metrics.llm_attempt_failures.inc();
        }
    }
}

/// Open after `threshold` failed calls in a row; then one probe per cool-down until one succeeds.
/// A call that started before the circuit last closed says nothing about the provider now: its
/// failure is not counted (calls that hung through an outage would reopen it once it is over).
struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

struct BreakerState {
    failures: u32,
    opened: Option<Instant>,
    closed: Option<Instant>,
}

impl CircuitBreaker {
    fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold,
            cooldown,
            state: Mutex::new(BreakerState {
                failures: 0,
                opened: None,
                closed: None,
            }),
        }
    }

    fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        match state.opened {
            None => true,
            Some(opened) if opened.elapsed() >= self.cooldown => {
                state.opened = Some(Instant::now()); // this caller is the probe
                true
            }
            Some(_) => false,
        }
    }

    fn record(&self, ok: bool, started: Instant) {
        let mut state = self.state.lock().unwrap();
        if ok {
            if state.opened.is_some() {
                tracing::warn!(
                    event = "circuit_closed",
                    "provider answered again; circuit closed"
                );
                state.closed = Some(Instant::now());
            }
            state.failures = 0;
            state.opened = None;
            return;
        }
        if state.closed.is_some_and(|closed| started < closed) {
            return;
        }
        state.failures += 1;
        if state.failures >= self.threshold && state.opened.is_none() {
            state.opened = Some(Instant::now());
            tracing::warn!(
                event = "circuit_opened",
                failures = state.failures,
                "provider failing; circuit open"
            );
        }
    }
}
