//! How an LLM call failed ([`LlmError`]), classified from the provider's status, headers and
//! transport errors, so the handlers can pick an honest status. The raw upstream body is kept
//! (cut to a bound) only for the `stack-trace-errors` flaw to leak.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// How much of an upstream error body is kept (for the flawed error bodies only).
pub(super) const RAW_BODY_LIMIT: usize = 2048;

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
    /// The circuit breaker is open: no call was made.
    CircuitOpen { retry_in: Duration },
    /// A stream ended or broke before it finished.
    Interrupted { raw: String },
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
            LlmError::CircuitOpen { .. } => "llm_circuit_open",
            LlmError::Interrupted { .. } => "llm_stream_interrupted",
        }
    }

    /// Retry only what another attempt may fix: rate limits, 503s and refused connections.
    /// Timeouts are not retried: the attempt already spent the user's patience.
    pub(super) fn retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. } => true,
            LlmError::Unavailable { status, .. } => matches!(status, None | Some(503)),
            _ => false,
        }
    }

    /// Does this outcome say the provider is unhealthy (for the circuit breaker)?
    pub(super) fn is_outage(&self) -> bool {
        matches!(
            self,
            LlmError::Timeout | LlmError::Unavailable { .. } | LlmError::Interrupted { .. }
        )
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
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
            LlmError::CircuitOpen { retry_in } => format!("LlmError::CircuitOpen({retry_in:?})"),
            LlmError::Interrupted { raw } => format!("LlmError::Interrupted({raw:?})"),
        }
    }

    /// The raw upstream body, if there was one.
    pub fn upstream_body(&self) -> Option<&str> {
        match self {
            LlmError::RateLimited { raw, .. }
            | LlmError::Unavailable { raw, .. }
            | LlmError::Rejected { raw, .. }
            | LlmError::Malformed { raw } => Some(raw),
            _ => None,
        }
    }

    /// The hint for the client, for the 429 or 503 we pass on.
    pub fn client_retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            LlmError::CircuitOpen { retry_in } => Some(*retry_in),
            _ => None,
        }
    }
}

pub(super) fn transport_error(e: reqwest::Error) -> LlmError {
    if e.is_timeout() {
        LlmError::Timeout
    } else {
        LlmError::Unavailable {
            status: None,
            retry_after: None,
            raw: e.to_string(),
        }
    }
}

/// `Ok` for a 2xx; otherwise the error its status means.
pub(super) fn classify(status: u16, headers: &HeaderMap, bytes: &[u8]) -> Result<(), LlmError> {
    let raw = || truncate(&String::from_utf8_lossy(bytes));
    match status {
        200..=299 => Ok(()),
        429 => Err(LlmError::RateLimited {
            retry_after: retry_after(headers),
            raw: raw(),
        }),
        500..=599 => Err(LlmError::Unavailable {
            status: Some(status),
            retry_after: retry_after(headers),
            raw: raw(),
        }),
        _ => Err(LlmError::Rejected { status, raw: raw() }),
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

pub(super) fn truncate(text: &str) -> String {
    let mut end = text.len().min(RAW_BODY_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
