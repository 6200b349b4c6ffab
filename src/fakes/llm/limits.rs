//! Rate limits as state, not dice: one pair of token buckets (requests, tokens) per API key,
//! refilled continuously at the per-minute limit as OpenAI's are, so a load above the quota
//! gets 429s the way a real account does, and every answer carries the `x-ratelimit-*`
//! headers a client can pace itself by.
//!
//! Without a `rate_limit` fault the buckets still count (so the headers move) against limits
//! generous enough never to refuse anything.

use crate::sync::LockExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits reported when no `rate_limit` fault is on: a large paid tier.
pub(super) const DEFAULT_RPM: u32 = 10_000;
pub(super) const DEFAULT_TPM: u32 = 30_000_000;
/// The same, as header values.
pub(super) const DEFAULT_RPM_TEXT: &str = "10000";
pub(super) const DEFAULT_TPM_TEXT: &str = "30000000";

/// Keys tracked at once; past this every bucket starts full again (bounded memory even if a
/// load sends a new key per request).
const KEYS_LIMIT: usize = 10_000;

/// The buckets of every API key seen.
#[derive(Default)]
pub(super) struct Limits {
    buckets: Mutex<HashMap<String, Buckets>>,
}

struct Buckets {
    rpm: u32,
    tpm: u32,
    requests: f64,
    tokens: f64,
    refilled: Instant,
}

/// What the buckets said about one request: the figures for the headers, and whether it may go.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Verdict {
    pub rpm: u32,
    pub tpm: u32,
    pub remaining_requests: u64,
    pub remaining_tokens: u64,
    /// Until the request bucket is full again.
    pub reset_requests: Duration,
    pub reset_tokens: Duration,
    /// `Some(which, wait)` when refused: the exhausted bucket (`requests`/`tokens`) and how
    /// long until this request would fit.
    pub refused: Option<(&'static str, Duration)>,
}

impl Limits {
    /// Takes one request and `tokens` tokens from `key`'s buckets under limits `rpm`/`tpm`, if
    /// both have enough; a refused request takes nothing, as OpenAI's limiter does. When not
    /// `enforced` (no `rate_limit` fault) nothing is refused: the buckets only count, down to
    /// empty, so the headers still move.
    pub fn take(
        &self,
        key: &str,
        (rpm, tpm): (u32, u32),
        tokens: u64,
        enforced: bool,
        now: Instant,
    ) -> Verdict {
        let mut buckets = self.buckets.locked();
        if buckets.len() >= KEYS_LIMIT && !buckets.contains_key(key) {
            buckets.clear();
        }
        // Look up before inserting: `entry` would allocate the key on every request.
        if !buckets.contains_key(key) {
            buckets.insert(
                key.to_owned(),
                Buckets {
                    rpm,
                    tpm,
                    requests: f64::from(rpm),
                    tokens: f64::from(tpm),
                    refilled: now,
                },
            );
        }
        let bucket = buckets.get_mut(key).expect("inserted above");
        if (bucket.rpm, bucket.tpm) != (rpm, tpm) {
            // New limits (a fault switched on or off): start from a full quota under them.
            *bucket = Buckets {
                rpm,
                tpm,
                requests: f64::from(rpm),
                tokens: f64::from(tpm),
                refilled: now,
            };
        }
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.refilled = now;
        let per_sec = |limit: u32| f64::from(limit) / 60.0;
        bucket.requests = (bucket.requests + elapsed * per_sec(rpm)).min(f64::from(rpm));
        bucket.tokens = (bucket.tokens + elapsed * per_sec(tpm)).min(f64::from(tpm));

        let wanted = tokens as f64;
        let wait = |level: f64, need: f64, limit: u32| {
            Duration::from_secs_f64(((need - level).max(0.0) / per_sec(limit.max(1))).min(3600.0))
        };
        let refused = if !enforced {
            bucket.requests = (bucket.requests - 1.0).max(0.0);
            bucket.tokens = (bucket.tokens - wanted).max(0.0);
            None
        } else if bucket.requests < 1.0 {
            Some(("requests", wait(bucket.requests, 1.0, rpm)))
        } else if bucket.tokens < wanted {
            Some(("tokens", wait(bucket.tokens, wanted, tpm)))
        } else {
            bucket.requests -= 1.0;
            bucket.tokens -= wanted;
            None
        };
        Verdict {
            rpm,
            tpm,
            remaining_requests: bucket.requests.max(0.0) as u64,
            remaining_tokens: bucket.tokens.max(0.0) as u64,
            reset_requests: wait(bucket.requests, f64::from(rpm), rpm),
            reset_tokens: wait(bucket.tokens, f64::from(tpm), tpm),
            refused,
        }
    }
}

/// A reset time as OpenAI writes it: `20ms`, `1.5s`, `6m0s`. Seconds are rounded to the
/// nearest millisecond (ties up). Written with integers and `itoa`, not `format!`: every
/// answer carries two of these, and formatting them was 1-1.5% of the fake's CPU.
pub(super) fn reset_text(wait: Duration) -> String {
    let mut text = String::with_capacity(12);
    let mut digits = itoa::Buffer::new();
    let ms = wait.as_millis();
    if ms < 1000 {
        text.push_str(digits.format(ms));
        text.push_str("ms");
    } else if ms < 60_000 {
        let rounded = (wait.as_nanos() + 500_000) / 1_000_000;
        let (secs, frac) = (rounded / 1000, rounded % 1000);
        text.push_str(digits.format(secs));
        if frac != 0 {
            // Three digits with leading zeros, then the trailing zeros dropped: .5, .05, .005.
            let padded = digits.format(frac + 1000);
            text.push('.');
            text.push_str(padded[1..].trim_end_matches('0'));
        }
        text.push('s');
    } else {
        text.push_str(digits.format(ms / 60_000));
        text.push('m');
        text.push_str(digits.format((ms % 60_000) / 1000));
        text.push('s');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_requests_per_minute_then_429s_until_the_bucket_refills() {
        let limits = Limits::default();
        let start = Instant::now();
        for left in (0..3).rev() {
            let verdict = limits.take("k", (3, 1000), 10, true, start);
            assert_eq!(verdict.refused, None);
            assert_eq!(verdict.remaining_requests, left);
        }
        let refused = limits.take("k", (3, 1000), 10, true, start);
        let (which, wait) = refused.refused.unwrap();
        assert_eq!(which, "requests");
        assert_eq!(wait, Duration::from_secs(20), "3 rpm refill one every 20 s");
        assert_eq!(
            limits.take("other", (3, 1000), 10, true, start).refused,
            None
        );
        let later = limits.take("k", (3, 1000), 10, true, start + Duration::from_secs(20));
        assert_eq!(later.refused, None);
    }

    #[test]
    fn a_request_larger_than_the_tokens_left_is_refused_on_tokens() {
        let limits = Limits::default();
        let now = Instant::now();
        assert_eq!(limits.take("k", (100, 600), 500, true, now).refused, None);
        let verdict = limits.take("k", (100, 600), 500, true, now);
        assert_eq!(verdict.refused.unwrap().0, "tokens");
        assert_eq!(verdict.remaining_tokens, 100);
    }

    #[test]
    fn without_enforcement_an_empty_bucket_still_lets_requests_through() {
        let limits = Limits::default();
        let now = Instant::now();
        for _ in 0..5 {
            let verdict = limits.take("k", (2, 1000), 1, false, now);
            assert_eq!(verdict.refused, None);
        }
        assert_eq!(
            limits
                .take("k", (2, 1000), 1, false, now)
                .remaining_requests,
            0
        );
    }

    #[test]
    fn the_default_limits_read_as_their_header_texts() {
        assert_eq!(DEFAULT_RPM.to_string(), DEFAULT_RPM_TEXT);
        assert_eq!(DEFAULT_TPM.to_string(), DEFAULT_TPM_TEXT);
    }

    #[test]
    fn reset_times_read_like_openais() {
        assert_eq!(reset_text(Duration::from_millis(20)), "20ms");
        assert_eq!(reset_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_text(Duration::from_secs(1)), "1s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
        assert_eq!(reset_text(Duration::from_micros(1_050_400)), "1.05s");
        assert_eq!(reset_text(Duration::from_micros(1_999_600)), "2s");
        assert_eq!(reset_text(Duration::from_micros(59_999_700)), "60s");
        // The integer rounding agrees with the float formatting it replaced.
        for nanos in (1_000_000_000u64..60_000_000_000).step_by(7_777_777) {
            let wait = Duration::from_nanos(nanos);
            let text = format!("{:.3}", wait.as_secs_f64());
            let float = format!("{}s", text.trim_end_matches('0').trim_end_matches('.'));
            assert_eq!(reset_text(wait), float, "{nanos} ns");
        }
    }
}
