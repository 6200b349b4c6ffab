//! The circuit breaker on the LLM provider, and the retry budget beside it.
//!
//! Breaker (one for chat completions, one for embeddings: an outage of one endpoint must not
//! be hidden by successes of the other): closed → open after `CIRCUIT_FAILURE_THRESHOLD`
//! consecutive failed attempts (timeouts, 5xx, refused connections) → calls fail fast →
//! after each `CIRCUIT_COOLDOWN_MS` one call goes through as a probe (half-open) → closed when
//! a probe succeeds. During a long outage users hear "unavailable" at once instead of after a
//! timeout, and the provider gets one call per cool-down instead of the full load plus retries.
//! State changes are logged as warn lines (open, first probe, closed).
//!
//! The cool-down defaults to a short 100 ms: that is how long users keep failing after the
//! provider is back, and faultline's outage scenario asks for recovery within a fraction of a
//! second; one probe per 100 ms is still next to nothing for a provider under real load.
//!
//! Retry budget: retries are allowed only while they stay under `RETRY_BUDGET_RATIO` of the
//! calls in a sliding window (plus a small floor), so an outage cannot triple the load.

use crate::sync::LockExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::log::Logger;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn name(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// For the Prometheus gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> u8 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }
}

struct Inner {
    state: CircuitState,
    consecutive_failures: u32,
    /// When the circuit opened, or when the last probe went out.
    opened_at: Option<Instant>,
    /// When a call last succeeded: a call sent before then that fails afterwards (one that
    /// hung on the provider while it was down) is old news about an outage already over, and
    /// must not open the circuit.
    last_success: Option<Instant>,
}

pub struct CircuitBreaker {
    /// Which upstream this guards, for the log lines: `chat` or `embeddings`.
    upstream: &'static str,
    /// `None` under `no-circuit-breaker`: every call goes through.
    threshold: Option<u32>,
    cooldown: Duration,
    /// `stuck-breaker`: each call rejected while open restarts the cool-down, so steady
    /// traffic keeps the circuit open long after the provider is back.
    restart_on_reject: bool,
    inner: Mutex<Inner>,
    log: Logger,
}

/// The circuit is open: the call was not made. Carries how long until a probe is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Open {
    pub retry_in: Duration,
}

impl CircuitBreaker {
    pub fn new(
        upstream: &'static str,
        threshold: Option<u32>,
        cooldown: Duration,
        log: Logger,
    ) -> Self {
        CircuitBreaker {
            upstream,
            threshold,
            cooldown,
            restart_on_reject: false,
            inner: Mutex::new(Inner {
                state: CircuitState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                last_success: None,
            }),
            log,
        }
    }

    /// The `stuck-breaker` flaw: count each rejected call as a fresh failure that restarts the
    /// cool-down.
    pub fn restarting_cooldown_on_reject(mut self, yes: bool) -> Self {
        self.restart_on_reject = yes;
        self
    }

    pub fn state(&self) -> CircuitState {
        self.lock().state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.locked()
    }

    /// May an attempt go out now? While open, one request per cool-down goes through as a
    /// probe. Probes are not exclusive: a probe hanging on a black-holed provider must not
    /// keep the circuit from noticing, one cool-down later, that the provider is back.
    pub fn allow(&self) -> Result<(), Open> {
        if self.threshold.is_none() {
            return Ok(());
        }
        let mut inner = self.lock();
        match inner.state {
            CircuitState::Closed => Ok(()),
            CircuitState::Open | CircuitState::HalfOpen => {
                let since = inner.opened_at.map(|t| t.elapsed()).unwrap_or_default();
                if since < self.cooldown {
                    if self.restart_on_reject {
                        inner.opened_at = Some(Instant::now());
                        return Err(Open {
                            retry_in: self.cooldown,
                        });
                    }
                    return Err(Open {
                        retry_in: self.cooldown - since,
                    });
                }
                let first_probe = inner.state == CircuitState::Open;
                inner.state = CircuitState::HalfOpen;
                // The next probe waits another cool-down.
                inner.opened_at = Some(std::time::Instant::now());
                drop(inner);
                if first_probe {
                    self.log.warn(
                        "circuit_half_open",
                        json!({"upstream": self.upstream, "cooldownMs": self.cooldown.as_millis() as u64}),
                    );
                }
                Ok(())
            }
        }
    }

    /// The upstream answered (any status that says it is up).
    pub fn record_success(&self) {
        if self.threshold.is_none() {
            return;
        }
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.last_success = Some(Instant::now());
        if inner.state != CircuitState::Closed {
            inner.state = CircuitState::Closed;
            inner.opened_at = None;
            drop(inner);
            self.log.warn(
                "circuit_closed",
                json!({"upstream": self.upstream, "reason": "probe succeeded"}),
            );
        }
    }

    /// The attempt timed out, got a 5xx or no connection.
    pub fn record_failure(&self, reason: &str) {
        self.record_failure_of(Instant::now(), reason);
    }

    /// Like [`CircuitBreaker::record_failure`], for an attempt sent at `sent`: one sent before
    /// the last success says nothing about the provider now.
    pub fn record_failure_of(&self, sent: Instant, reason: &str) {
        let Some(threshold) = self.threshold else {
            return;
        };
        let mut inner = self.lock();
        if inner.last_success.is_some_and(|success| sent < success) {
            return;
        }
        inner.consecutive_failures += 1;
        let opens = match inner.state {
            CircuitState::Closed => inner.consecutive_failures >= threshold,
            // A failed probe: back to open (logged once per outage, not once per probe), and
            // the cool-down starts over.
            CircuitState::HalfOpen => {
                inner.state = CircuitState::Open;
                inner.opened_at = Some(Instant::now());
                false
            }
            // A call let through before the circuit opened failed late: already open.
            CircuitState::Open => false,
        };
        if opens {
            inner.state = CircuitState::Open;
            inner.opened_at = Some(Instant::now());
            let failures = inner.consecutive_failures;
            drop(inner);
            self.log.warn(
                "circuit_open",
                json!({
                    "upstream": self.upstream,
                    "consecutiveFailures": failures,
                    "reason": reason,
                    "cooldownMs": self.cooldown.as_millis() as u64,
                }),
            );
        }
    }
}

/// Width of one bucket of the sliding window.
const BUCKET: Duration = Duration::from_secs(1);
/// Buckets in the window: retries are judged against the last 10 seconds of calls.
const BUCKETS: usize = 10;

/// The sliding-window retry budget (see the module docs).
pub struct RetryBudget {
    /// `None` under `retry-storm`: unlimited.
    ratio: Option<f64>,
    min: u32,
    started: Instant,
    /// (bucket number, calls, retries) per slot.
    window: Mutex<[(u64, u64, u64); BUCKETS]>,
}

impl RetryBudget {
    pub fn new(ratio: Option<f64>, min: u32) -> Self {
        RetryBudget {
            ratio,
            min,
            started: Instant::now(),
            window: Mutex::new([(u64::MAX, 0, 0); BUCKETS]),
        }
    }

    fn bucket_now(&self) -> u64 {
        (self.started.elapsed().as_nanos() / BUCKET.as_nanos()) as u64
    }

    fn with_slot<T>(&self, f: impl FnOnce(&mut (u64, u64, u64)) -> T) -> T {
        let now = self.bucket_now();
        let mut window = self.window.locked();
        let slot = &mut window[(now % BUCKETS as u64) as usize];
        if slot.0 != now {
            *slot = (now, 0, 0);
        }
        f(slot)
    }

    /// A first attempt of a call was made.
    pub fn record_call(&self) {
        self.with_slot(|slot| slot.1 += 1);
    }

    /// May a retry go out? Counts it if so.
    pub fn try_retry(&self) -> bool {
        let Some(ratio) = self.ratio else {
            return true;
        };
        let now = self.bucket_now();
        let (calls, retries) = {
            let window = self.window.locked();
            window
                .iter()
                .filter(|(b, _, _)| *b != u64::MAX && now - *b < BUCKETS as u64)
                .fold((0, 0), |(c, r), (_, calls, retries)| {
                    (c + calls, r + retries)
                })
        };
        let allowed = self.min as f64 + ratio * calls as f64;
        if (retries as f64) < allowed {
            self.with_slot(|slot| slot.2 += 1);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn breaker(
        threshold: u32,
        cooldown_ms: u64,
    ) -> (CircuitBreaker, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            CircuitBreaker::new(
                "chat",
                Some(threshold),
                Duration::from_millis(cooldown_ms),
                Logger::new(Arc::new(tx)),
            ),
            rx,
        )
    }

    #[test]
    fn opens_after_consecutive_failures_and_fails_fast() {
        let (b, mut logs) = breaker(3, 10_000);
        assert_eq!(b.state(), CircuitState::Closed);
        b.record_failure("x");
        b.record_failure("x");
        b.record_success();
        b.record_failure("x");
        b.record_failure("x");
        assert!(b.allow().is_ok(), "a success reset the count");
        b.record_failure("x");
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.allow().is_err());
        assert!(logs.try_recv().unwrap().contains("circuit_open"));
    }

    #[test]
    fn failures_of_calls_sent_before_the_last_success_do_not_open_it() {
        let (b, _log) = breaker(2, 50);
        let stale = Instant::now();
        b.record_failure("timeout");
        b.record_failure("timeout");
        assert_eq!(b.state(), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.allow().is_ok());
        b.record_success();
        assert_eq!(b.state(), CircuitState::Closed);
        // Probes sent during the outage time out now, after the provider came back.
        b.record_failure_of(stale, "timeout");
        b.record_failure_of(stale, "timeout");
        assert_eq!(b.state(), CircuitState::Closed);
        // Fresh failures still count.
        b.record_failure("timeout");
        b.record_failure("timeout");
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[test]
    fn a_stuck_breaker_never_probes_while_calls_keep_coming() {
        let (b, _logs) = breaker(1, 10_000);
        b.record_failure("x");
        // Healthy: once the cool-down has passed, a probe goes through.
        b.lock().opened_at = Some(Instant::now() - Duration::from_secs(9));
        assert!(b.allow().is_err());
        b.lock().opened_at = Some(Instant::now() - Duration::from_secs(11));
        assert!(b.allow().is_ok());

        let (b, _logs) = breaker(1, 10_000);
        let b = b.restarting_cooldown_on_reject(true);
        b.record_failure("x");
        b.lock().opened_at = Some(Instant::now() - Duration::from_secs(9));
        // The rejected call restarts the cool-down instead of letting it run out.
        assert!(b.allow().is_err());
        assert!(b.lock().opened_at.unwrap().elapsed() < Duration::from_secs(1));
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[test]
    fn only_one_probe_per_cooldown() {
        let (b, _logs) = breaker(1, 10_000);
        b.record_failure("x");
        b.lock().opened_at = Some(Instant::now() - Duration::from_secs(11));
        assert!(b.allow().is_ok());
        assert!(b.allow().is_err(), "the next probe waits a cool-down");
    }

    #[test]
    fn probes_go_through_after_each_cooldown_then_close_or_reopen() {
        let (b, _logs) = breaker(1, 0);
        b.record_failure("x");
        assert!(b.allow().is_ok(), "the cool-down is over: a probe");
        assert_eq!(b.state(), CircuitState::HalfOpen);
        b.record_failure("x");
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.allow().is_ok());
        b.record_success();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn retry_budget_allows_the_floor_plus_a_share_of_calls() {
        let budget = RetryBudget::new(Some(0.5), 1);
        for _ in 0..4 {
            budget.record_call();
        }
        let allowed = (0..10).filter(|_| budget.try_retry()).count();
        assert_eq!(allowed, 3, "1 + 0.5 * 4");
        let unlimited = RetryBudget::new(None, 0);
        assert!((0..100).all(|_| unlimited.try_retry()));
    }
}
