//! The `--flaw` switches: each one breaks exactly one practice of the reference target, so
//! faultline's checks can be shown to fail when they should (negative controls).
//!
//! To add a flaw: add a variant (its doc line is the `--help` text), say in [`Flaw::breaks`]
//! which practice it breaks, and test for it where the practice lives.

use std::collections::BTreeSet;

/// One practice the reference target can be told to break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Flaw {
    /// No timeout on the LLM calls: a hanging provider hangs the request forever.
    NoTimeout,
    /// No retries at all on the LLM calls.
    NoRetry,
    /// No request id in error bodies or response headers.
    NoRequestId,
    /// Error bodies carry a panic message, a backtrace and the raw upstream error body.
    StackTraceErrors,
    /// Log lines include the API key and the raw user message.
    LeakSecrets,
    /// A weather tool failure fails the request (502) instead of answering degraded.
    NoToolFallback,
    /// LLM retries at once, with no backoff and no cap beyond 10, ignoring the retry budget.
    RetryStorm,
    /// Backoff ignores the provider's `retry-after` / `retry-after-ms`.
    IgnoreRetryAfter,
    /// Ticket writes are retried with a new idempotency key per attempt (duplicates).
    RetryWrites,
    /// Redis down fails the request (500) instead of skipping the cache.
    NoCacheFallback,
    /// The agent loop has no step limit (bounded only internally, far above the limit).
    UnboundedAgent,
    /// `/admin/metrics` and `/metrics` count tokens wrong (input doubled, output ignored).
    LyingMetrics,
    /// No circuit breaker: a long LLM outage is hammered by every request.
    NoCircuitBreaker,
    /// A log line per LLM attempt and no per-request line with the totals.
    LogPerAttempt,
    /// LLM retries wait the same fixed delay every time instead of backing off exponentially.
    FixedBackoff,
    /// The SDK's own retries (2) run inside the app's retry loop: up to 9 attempts per call.
    NestedRetries,
    /// LLM calls are retried on any error, 400 and 401 included.
    RetryClientErrors,
    /// A call the open circuit breaker rejects restarts its cool-down: it never half-opens.
    StuckBreaker,
    /// Request log lines count words as tokens instead of reading the provider's usage.
    MiscountTokens,
    /// A stream cut upstream is closed to the user without an error event.
    SilentStreamCut,
    /// The whole upstream stream is collected before anything is sent to the user.
    BufferStream,
    /// Streamed deltas are held and sent in batches once a second.
    BatchStream,
    /// Only the first LLM attempt of each call gets a span: retries are invisible in traces.
    UntracedRetries,
    /// The MCP server's `notifications/tools/list_changed` is ignored: the agent keeps
    /// offering (and calling) the tools it listed first.
    IgnoreListChanged,
    /// A retried Responses API follow-up turn replays the conversation's first turn and
    /// continues from that new response instead of the one it had: the conversation forks.
    NewResponseIdOnRetry,
    /// Bedrock's ThrottlingException (429) is not retried: only 5xx are.
    NoThrottleRetry,
}

impl Flaw {
    /// The `--flaw` name: `no-timeout`, `leak-secrets`, …
    pub fn name(self) -> &'static str {
        match self {
            Flaw::NoTimeout => "no-timeout",
            Flaw::NoRetry => "no-retry",
            Flaw::NoRequestId => "no-request-id",
            Flaw::StackTraceErrors => "stack-trace-errors",
            Flaw::LeakSecrets => "leak-secrets",
            Flaw::NoToolFallback => "no-tool-fallback",
            Flaw::RetryStorm => "retry-storm",
            Flaw::IgnoreRetryAfter => "ignore-retry-after",
            Flaw::RetryWrites => "retry-writes",
            Flaw::NoCacheFallback => "no-cache-fallback",
            Flaw::UnboundedAgent => "unbounded-agent",
            Flaw::LyingMetrics => "lying-metrics",
            Flaw::NoCircuitBreaker => "no-circuit-breaker",
            Flaw::LogPerAttempt => "log-per-attempt",
            Flaw::FixedBackoff => "fixed-backoff",
            Flaw::NestedRetries => "nested-retries",
            Flaw::RetryClientErrors => "retry-client-errors",
            Flaw::StuckBreaker => "stuck-breaker",
            Flaw::MiscountTokens => "miscount-tokens",
            Flaw::SilentStreamCut => "silent-stream-cut",
            Flaw::BufferStream => "buffer-stream",
            Flaw::BatchStream => "batch-stream",
            Flaw::UntracedRetries => "untraced-retries",
            Flaw::IgnoreListChanged => "ignore-list-changed",
            Flaw::NewResponseIdOnRetry => "new-response-id-on-retry",
            Flaw::NoThrottleRetry => "no-throttle-retry",
        }
    }

    /// The practice this flaw breaks, in the words a report would use.
    pub fn breaks(self) -> &'static str {
        match self {
            Flaw::NoTimeout => "upstream calls have a timeout",
            Flaw::NoRetry => "idempotent LLM calls are retried on 429/503 with backoff",
            Flaw::NoRequestId => "errors show a request id users can report",
            Flaw::StackTraceErrors => "error messages are honest and leak no internals",
            Flaw::LeakSecrets => "logs carry no API keys or raw user text",
            Flaw::NoToolFallback => "a failed tool degrades the answer instead of failing it",
            Flaw::RetryStorm => {
                "retries back off exponentially with jitter, capped, within a budget"
            }
            Flaw::IgnoreRetryAfter => "retries wait at least as long as retry-after asks",
            Flaw::RetryWrites => "writes are retried only with the same idempotency key",
            Flaw::NoCacheFallback => "a Redis outage skips the cache instead of failing requests",
            Flaw::UnboundedAgent => "agent loops stop at a maximum step count",
            Flaw::LyingMetrics => "metrics report the tokens actually used",
            Flaw::NoCircuitBreaker => {
                "a circuit breaker fails fast during a long LLM outage and recovers after it"
            }
            Flaw::LogPerAttempt => "one log line per request, with its totals",
            Flaw::FixedBackoff => "the wait before each retry grows exponentially",
            Flaw::NestedRetries => "a call makes a bounded number of attempts in all",
            Flaw::RetryClientErrors => "a 400 or 401 is not retried: the same request fails again",
            Flaw::StuckBreaker => {
                "an open circuit breaker probes after its cool-down and closes when the LLM is back"
            }
            Flaw::MiscountTokens => "logged token counts are the provider's usage",
            Flaw::SilentStreamCut => "a broken stream ends with an error event the user sees",
            Flaw::BufferStream => "the first streamed token reaches the user as soon as it arrives",
            Flaw::BatchStream => "streamed tokens are relayed one by one, not in bursts",
            Flaw::UntracedRetries => {
                "every LLM attempt, retries included, is a span in the request's trace"
            }
            Flaw::IgnoreListChanged => {
                "an MCP client told the tool list changed lists the tools again"
            }
            Flaw::NewResponseIdOnRetry => {
                "a retry continues the conversation from the same previous_response_id"
            }
            Flaw::NoThrottleRetry => "a Bedrock ThrottlingException is retried with backoff",
        }
    }
}

/// `--list-flaws`: one line per flaw, its name padded, then the practice it breaks.
pub fn list() -> String {
    use clap::ValueEnum;
    let mut out = String::new();
    for flaw in Flaw::value_variants() {
        out.push_str(&format!("{:<24} breaks: {}\n", flaw.name(), flaw.breaks()));
    }
    out
}

/// The set of flaws switched on for one run of the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flaws(BTreeSet<Flaw>);

impl Flaws {
    pub fn new(flaws: impl IntoIterator<Item = Flaw>) -> Self {
        Flaws(flaws.into_iter().collect())
    }

    pub fn has(&self, flaw: Flaw) -> bool {
        self.0.contains(&flaw)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Flaw> + '_ {
        self.0.iter().copied()
    }
}

/// What a careless service puts in an error body under `stack-trace-errors`: the text of a
/// panic over `raw` (the internal error, upstream body included) and a plausible backtrace.
pub fn fake_panic_text(raw: &str) -> String {
    format!(
        "thread 'tokio-runtime-worker' panicked at src/reference/chat.rs:214:38:\n\
         called `Result::unwrap()` on an `Err` value: {raw}\n\
         stack backtrace:\n\
         \x20  0: rust_begin_unwind\n\
         \x20  1: core::panicking::panic_fmt\n\
         \x20  2: core::result::unwrap_failed\n\
         \x20  3: faultline::reference::llm_client::LlmClient::chat::{{{{closure}}}}\n\
         \x20            at ./src/reference/llm_client.rs:187:9\n\
         \x20  4: faultline::reference::chat::answer::{{{{closure}}}}\n\
         \x20            at ./src/reference/chat.rs:214:38\n\
         \x20  5: tokio::runtime::task::harness::Harness<T,S>::poll\n\
         note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn flaw_names_are_the_kebab_case_cli_names() {
        let names: Vec<String> = Flaw::value_variants()
            .iter()
            .map(|f| f.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "no-timeout",
                "no-retry",
                "no-request-id",
                "stack-trace-errors",
                "leak-secrets",
                "no-tool-fallback",
                "retry-storm",
                "ignore-retry-after",
                "retry-writes",
                "no-cache-fallback",
                "unbounded-agent",
                "lying-metrics",
                "no-circuit-breaker",
                "log-per-attempt",
                "fixed-backoff",
                "nested-retries",
                "retry-client-errors",
                "stuck-breaker",
                "miscount-tokens",
                "silent-stream-cut",
                "buffer-stream",
                "batch-stream",
                "untraced-retries",
                "ignore-list-changed",
                "new-response-id-on-retry",
                "no-throttle-retry",
            ]
        );
        for flaw in Flaw::value_variants() {
            assert_eq!(flaw.to_possible_value().unwrap().get_name(), flaw.name());
        }
    }

    #[test]
    fn repeated_flaws_count_once() {
        let flaws = Flaws::new([Flaw::NoRetry, Flaw::NoRetry]);
        assert!(flaws.has(Flaw::NoRetry));
        assert!(!flaws.has(Flaw::NoTimeout));
        assert_eq!(flaws.iter().count(), 1);
    }

    #[test]
    fn fake_panic_text_carries_the_raw_error_and_a_backtrace() {
        let text = fake_panic_text("status 503: {\"error\":\"overloaded\"}");
        assert!(text.contains("panicked at"));
        assert!(text.contains("stack backtrace"));
        assert!(text.contains("{\"error\":\"overloaded\"}"));
    }
}
