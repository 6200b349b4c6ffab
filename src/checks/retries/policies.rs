//! Real client retry policies, each read from its source: the table the `retries.*` limits are
//! derived from, and that the tests replay through the real checks (`replay.rs`, and the
//! official SDKs themselves through the fake in tests/retry_policies_sdk.rs).
//!
//! A row is data: the wait before each retry, when the policy stops, what it does with
//! `retry-after`, which answers it retries, and the `retries.*` verdicts it fails, each with
//! why. The sane rows fail none of the checks that judge their waits; the limits
//! (`RetryExpectations::default()`) are chosen so that they never do:
//! - `retries.attempts` and `retries.amplification`: 5, the most attempts of a library default
//!   (boto3's legacy mode, the Gemini SDK's retry options);
//! - `retries.backoff`: growth bounded under 1.1x, below the slowest sane growth (1.3x: Google's
//!   generated clients, Polly's first step) by enough for 5 samples ([`super::waits`]);
//! - `retries.jitter`: a spread of 2% of the mean and 10 ms, under what 5 waits of the narrowest
//!   sane jitter (the OpenAI and Anthropic SDKs' 0–25%) show.
//!
//! Some sane rows still fail a check, and say so, because their library leaves out a practice
//! the lesson asks for: generic retry libraries read no `retry-after`, and by default retry
//! every exception (a 400 included). Those are findings, not false alarms. The flawed rows are
//! the policies the checks exist for: no retries, a fixed delay, an immediate retry, a backoff
//! without jitter.
//!
//! Versions are those read for this table (npm, PyPI, and the GitHub repositories at the
//! commits named); the formulas have been stable across recent releases of each.

use rand::Rng;

/// How a policy picks the wait before retry `k` (0: the first retry), in ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wait {
    /// `min(base · factor^k, cap)`, then `jitter`.
    Exponential {
        base_ms: f64,
        factor: f64,
        cap_ms: f64,
        jitter: Jitter,
    },
    /// Polly v8's `DecorrelatedJitterBackoffV2`: with `t = k + U` and
    /// `next = 2^t · tanh(√(4t))`, the wait is `(next − previous next) / 1.4 · base`, so each
    /// wait depends on the one before.
    DecorrelatedJitter { base_ms: f64 },
    /// tenacity's `wait_random_exponential(multiplier, min, max)`: uniform between `min_ms` and
    /// `max(min_ms, min(multiplier · 2^k, cap))`.
    RandomExponential {
        multiplier_ms: f64,
        min_ms: f64,
        cap_ms: f64,
    },
    /// The same wait before every retry.
    Fixed { ms: f64 },
    /// No wait at all.
    Immediate,
}

/// The random part of an exponential wait `x` (`U` uniform in [0, 1)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Jitter {
    /// `x`: every client waits the same.
    None,
    /// `x · (1 − share · U)`: the OpenAI and Anthropic SDKs (a quarter).
    Minus { share: f64 },
    /// `x · (1 − share + 2 · share · U)`: resilience4j's randomization factor.
    PlusMinus { share: f64 },
    /// `x + U · ms`: tenacity's `wait_exponential_jitter`.
    Plus { ms: f64 },
    /// `x · U`, "full jitter": the AWS SDKs, google-api-core.
    Full,
}

/// When a policy stops retrying.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// After this many retries (attempts less one).
    Retries(u32),
    /// When the next wait would end past this long after the first attempt (google-api-core's
    /// `timeout`): bounded by time, not by count.
    Deadline { ms: f64 },
}

/// What a policy does with a `retry-after` (or `retry-after-ms`) the provider sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Waits exactly what it asks (within the SDK's own ceiling).
    Honoured,
    /// Waits its own backoff or what it asks, whichever is longer.
    AtLeast,
    /// Reads no such header.
    Ignored,
}

/// Which failed answers a policy retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retries {
    /// These statuses, and every 5xx when `server_errors`.
    Statuses {
        codes: &'static [u16],
        server_errors: bool,
    },
    /// Whatever the call raised: a generic retry library's default, with an SDK that raises on
    /// any non-2xx.
    AnyFailure,
}

impl Retries {
    pub fn status(&self, status: u16) -> bool {
        match self {
            Retries::Statuses {
                codes,
                server_errors,
            } => codes.contains(&status) || (*server_errors && (500..600).contains(&status)),
            Retries::AnyFailure => !(200..300).contains(&status),
        }
    }
}

/// One client's retry policy, as its source defines it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Who retries this way, with the version read.
    pub name: &'static str,
    /// Where it was read: repository or package, file, function or constant.
    pub source: &'static str,
    pub wait: Wait,
    pub limit: Limit,
    pub retry_after: RetryAfter,
    pub retries: Retries,
    /// The `retries.*` verdicts this policy fails, each with why; empty for a sane policy.
    pub fails: &'static [(&'static str, &'static str)],
}

impl Policy {
    /// The waits before retries 0..`count` of one call, with no `retry-after` in play.
    pub fn waits(&self, count: usize, rng: &mut impl Rng) -> Vec<f64> {
        let mut previous = 0.0;
        (0..count)
            .map(|k| self.wait.draw(k, &mut previous, rng))
            .collect()
    }

    /// The wait before a retry after an answer that asked for `asked_ms`, where the policy's
    /// own backoff would have been `backoff_ms`.
    pub fn after_retry_after(&self, backoff_ms: f64, asked_ms: f64) -> f64 {
        match self.retry_after {
            RetryAfter::Honoured => asked_ms,
            RetryAfter::AtLeast => backoff_ms.max(asked_ms),
            RetryAfter::Ignored => backoff_ms,
        }
    }

    /// Whether the policy fails the verdict `id`.
    pub fn fails(&self, id: &str) -> bool {
        self.fails.iter().any(|(failed, _)| *failed == id)
    }
}

impl Wait {
    /// The wait before retry `k`; `previous` carries state between draws (Polly's decorrelated
    /// jitter), starting at 0.
    pub fn draw(&self, k: usize, previous: &mut f64, rng: &mut impl Rng) -> f64 {
        let u: f64 = rng.random();
        match *self {
            Wait::Exponential {
                base_ms,
                factor,
                cap_ms,
                jitter,
            } => {
                let x = (base_ms * factor.powi(k as i32)).min(cap_ms);
                match jitter {
                    Jitter::None => x,
                    Jitter::Minus { share } => x * (1.0 - share * u),
                    Jitter::PlusMinus { share } => x * (1.0 - share + 2.0 * share * u),
                    Jitter::Plus { ms } => x + u * ms,
                    Jitter::Full => x * u,
                }
            }
            Wait::DecorrelatedJitter { base_ms } => {
                let t = k as f64 + u;
                let next = 2f64.powf(t) * (4.0 * t).sqrt().tanh();
                let wait = (next - *previous) / 1.4 * base_ms;
                *previous = next;
                wait
            }
            Wait::RandomExponential {
                multiplier_ms,
                min_ms,
                cap_ms,
            } => {
                let high = min_ms.max((multiplier_ms * 2f64.powi(k as i32)).min(cap_ms));
                min_ms + u * (high - min_ms)
            }
            Wait::Fixed { ms } => ms,
            Wait::Immediate => 0.0,
        }
    }
}

/// The OpenAI and Anthropic SDKs' statuses: 408, 409, 429 and every 5xx (`_should_retry`).
const STAINLESS: Retries = Retries::Statuses {
    codes: &[408, 409, 429],
    server_errors: true,
};

/// The OpenAI and Anthropic SDKs' wait: 0.5 s doubling to 8 s, less up to a quarter.
const STAINLESS_WAIT: Wait = Wait::Exponential {
    base_ms: 500.0,
    factor: 2.0,
    cap_ms: 8_000.0,
    jitter: Jitter::Minus { share: 0.25 },
};

/// An OpenAI or Anthropic SDK's default client (they share a generated retry loop).
const fn stainless(name: &'static str, source: &'static str) -> Policy {
    Policy {
        name,
        source,
        wait: STAINLESS_WAIT,
        limit: Limit::Retries(2),
        retry_after: RetryAfter::Honoured,
        retries: STAINLESS,
        fails: &[],
    }
}

const NO_RETRY_AFTER: (&str, &str) = (
    "retries.retry_after",
    "reads no retry-after: the provider's hint is ignored unless the caller adds it",
);

const RETRIES_400: (&str, &str) = (
    "retries.non_retryable",
    "by default retries every exception, a 400 or 401 included",
);

/// The table. Sane rows first, then the flawed policies the checks exist for.
pub const POLICIES: &[Policy] = &[
    stainless(
        "openai-python 2.54.0 (default client)",
        "https://github.com/openai/openai-python src/openai/_base_client.py \
         _calculate_retry_timeout, _should_retry, _parse_retry_after_header; \
         src/openai/_constants.py INITIAL_RETRY_DELAY 0.5, MAX_RETRY_DELAY 8.0, \
         DEFAULT_MAX_RETRIES 2 (PyPI openai 2.54.0)",
    ),
    stainless(
        "openai-node 6.49.0 (default client)",
        "https://github.com/openai/openai-node src/client.ts \
         calculateDefaultRetryTimeoutMillis, shouldRetry, retryRequest (retry-after-ms, \
         retry-after); maxRetries ?? 2 (npm openai 6.49.0)",
    ),
    stainless(
        "anthropic-python 0.125.0 (default client)",
        "https://github.com/anthropics/anthropic-sdk-python \
         src/anthropic/_base_client.py _calculate_retry_timeout (retry-after honoured \
         up to 60 s), _should_retry; src/anthropic/_constants.py (PyPI anthropic \
         0.125.0)",
    ),
    stainless(
        "anthropic-sdk-typescript 1.17.0 (default client)",
        "https://github.com/anthropics/anthropic-sdk-typescript src/client.ts \
         calculateDefaultRetryTimeoutMillis, shouldRetry, retryRequest; maxRetries ?? 2 \
         (npm @anthropic-ai/sdk 1.17.0)",
    ),
    Policy {
        name: "google-genai 2.19 retry options (tenacity wait_exponential_jitter)",
        source: "https://github.com/googleapis/python-genai google/genai/_api_client.py \
                 retry_args: _RETRY_ATTEMPTS 5, initial 1 s, max 60 s, exp_base 2, jitter 1 s, \
                 statuses 408 429 500 502 503 504 (commit 6680718); \
                 https://github.com/jd/tenacity tenacity/wait.py wait_exponential_jitter \
                 (9.1.4, commit c650fb4)",
        wait: Wait::Exponential {
            base_ms: 1_000.0,
            factor: 2.0,
            cap_ms: 60_000.0,
            jitter: Jitter::Plus { ms: 1_000.0 },
        },
        limit: Limit::Retries(4),
        retry_after: RetryAfter::Ignored,
        retries: Retries::Statuses {
            codes: &[408, 429, 500, 502, 503, 504],
            server_errors: false,
        },
        fails: &[NO_RETRY_AFTER],
    },
    Policy {
        name: "boto3 / botocore 1.43 legacy mode (boto3's default)",
        source: "https://github.com/boto/botocore botocore/retryhandler.py delay_exponential \
                 (base 'rand', growth_factor 2) and botocore/data/_retry.json (max_attempts 5, \
                 429 500 502 503 504 509 and throttling codes); configprovider.py \
                 _DEFAULT_RETRY_MODE 'legacy' (1.43.67, commit 0e6e240)",
        wait: Wait::Exponential {
            base_ms: 1_000.0,
            factor: 2.0,
            cap_ms: f64::INFINITY,
            jitter: Jitter::Full,
        },
        limit: Limit::Retries(4),
        retry_after: RetryAfter::Ignored,
        retries: Retries::Statuses {
            codes: &[429, 500, 502, 503, 504, 509],
            server_errors: false,
        },
        fails: &[NO_RETRY_AFTER],
    },
    Policy {
        name: "botocore 1.43 standard and adaptive modes",
        source: "https://github.com/boto/botocore botocore/retries/standard.py \
                 ExponentialBackoff.delay_amount (rand · min(2^(attempt−1), 20) s), \
                 DEFAULT_MAX_ATTEMPTS 3, _TRANSIENT_STATUS_CODES 500 502 503 504 and throttling \
                 codes; adaptive.py adds a client-side rate limiter on top (commit 0e6e240)",
        wait: Wait::Exponential {
            base_ms: 1_000.0,
            factor: 2.0,
            cap_ms: 20_000.0,
            jitter: Jitter::Full,
        },
        limit: Limit::Retries(2),
        retry_after: RetryAfter::Ignored,
        retries: Retries::Statuses {
            codes: &[429, 500, 502, 503, 504],
            server_errors: false,
        },
        fails: &[NO_RETRY_AFTER],
    },
    Policy {
        name: "AWS SDK for JavaScript v3 standard and adaptive modes, on a 5xx",
        source: "npm @smithy/core 3.33.2 dist-cjs/submodules/retry: \
                 DefaultRetryBackoffStrategy.computeNextBackoffDelay (rand · min(base · 2^i, \
                 20 s), base 100 ms, 500 ms when throttled), DEFAULT_MAX_ATTEMPTS 3, \
                 TRANSIENT_ERROR_STATUS_CODES 500 502 503 504, 429 as throttling; a retry-after \
                 hint waits max(backoff, min(hint, backoff + 5 s))",
        wait: Wait::Exponential {
            base_ms: 100.0,
            factor: 2.0,
            cap_ms: 20_000.0,
            jitter: Jitter::Full,
        },
        limit: Limit::Retries(2),
        retry_after: RetryAfter::AtLeast,
        retries: Retries::Statuses {
            codes: &[429, 500, 502, 503, 504],
            server_errors: false,
        },
        fails: &[],
    },
    Policy {
        name: "Microsoft.Extensions.Http.Resilience standard handler (Polly 8 retry)",
        source: "https://github.com/dotnet/extensions \
                 src/Libraries/Microsoft.Extensions.Http.Resilience/Polly/\
                 HttpRetryStrategyOptions.cs (Exponential, UseJitter, ShouldRetryAfterHeader) \
                 and HttpClientResiliencePredicates.cs (408, 429, 5xx); \
                 https://github.com/App-vNext/Polly src/Polly.Core/Retry/RetryHelper.cs \
                 DecorrelatedJitterBackoffV2, RetryConstants.cs (3 retries, 2 s; 8.7.0, commit \
                 173d6d1)",
        wait: Wait::DecorrelatedJitter { base_ms: 2_000.0 },
        limit: Limit::Retries(3),
        retry_after: RetryAfter::Honoured,
        retries: Retries::Statuses {
            codes: &[408, 429],
            server_errors: true,
        },
        fails: &[],
    },
    Policy {
        name: "resilience4j 2.4 Retry with IntervalFunction.ofExponentialRandomBackoff()",
        source: "https://github.com/resilience4j/resilience4j \
                 resilience4j-core/src/main/java/io/github/resilience4j/core/IntervalFunction.java \
                 (500 ms, multiplier 1.5, randomization factor 0.5); \
                 resilience4j-retry/.../RetryConfig.java (maxAttempts 3, every exception \
                 retried; v2.4.0, commit af9e7c9)",
        wait: Wait::Exponential {
            base_ms: 500.0,
            factor: 1.5,
            cap_ms: f64::INFINITY,
            jitter: Jitter::PlusMinus { share: 0.5 },
        },
        limit: Limit::Retries(2),
        retry_after: RetryAfter::Ignored,
        retries: Retries::AnyFailure,
        fails: &[RETRIES_400, NO_RETRY_AFTER],
    },
    Policy {
        name: "google-api-core 2.29 Retry() defaults",
        source: "https://github.com/googleapis/python-api-core \
                 google/api_core/retry/retry_base.py exponential_sleep_generator \
                 (uniform(0, min(initial · multiplier^k, maximum))), _DEFAULT_INITIAL_DELAY 1 s, \
                 _DEFAULT_DELAY_MULTIPLIER 2, _DEFAULT_MAXIMUM_DELAY 60 s, _DEFAULT_DEADLINE \
                 120 s, if_transient_error (429, 500, 503) (2.29.1; now in \
                 googleapis/google-cloud-python packages/google-api-core)",
        wait: Wait::Exponential {
            base_ms: 1_000.0,
            factor: 2.0,
            cap_ms: 60_000.0,
            jitter: Jitter::Full,
        },
        limit: Limit::Deadline { ms: 120_000.0 },
        retry_after: RetryAfter::Ignored,
        retries: Retries::Statuses {
            codes: &[429, 500, 503],
            server_errors: false,
        },
        fails: &[
            (
                "retries.attempts",
                "bounded by a 120 s deadline, not a count: a long outage gets 7 or more attempts",
            ),
            (
                "retries.amplification",
                "as many attempts per request as fit in its deadline",
            ),
            NO_RETRY_AFTER,
        ],
    },
    Policy {
        name: "Google GAPIC-generated clients' default retry_params",
        source: "https://github.com/googleapis/google-cloud-python e.g. \
                 packages/google-cloud-build/google/cloud/devtools/cloudbuild_v1/gapic/\
                 cloud_build_client_config.py (initial_retry_delay_millis 100, \
                 retry_delay_multiplier 1.3, max_retry_delay_millis 60000, total_timeout_millis \
                 600000, UNAVAILABLE and DEADLINE_EXCEEDED) run by google-api-core Retry",
        wait: Wait::Exponential {
            base_ms: 100.0,
            factor: 1.3,
            cap_ms: 60_000.0,
            jitter: Jitter::Full,
        },
        limit: Limit::Deadline { ms: 600_000.0 },
        // It retries no 429 at all, so it never meets a retry-after (and `retries.retryable`
        // holds while 429s are under half the retryable failures).
        retry_after: RetryAfter::Ignored,
        retries: Retries::Statuses {
            codes: &[503, 504],
            server_errors: false,
        },
        fails: &[
            (
                "retries.attempts",
                "bounded by a 600 s deadline, not a count: a long outage gets dozens of attempts",
            ),
            (
                "retries.amplification",
                "as many attempts per request as fit in its deadline",
            ),
        ],
    },
    // The flawed policies.
    Policy {
        name: "no retries (an SDK with max_retries=0, or no retry code)",
        source: "openai-python OpenAI(max_retries=0); the reference target's no-retry flaw",
        wait: Wait::Immediate,
        limit: Limit::Retries(0),
        retry_after: RetryAfter::Ignored,
        retries: STAINLESS,
        fails: &[(
            "retries.retryable",
            "a 429 or 503 that one retry would have absorbed reaches the user",
        )],
    },
    Policy {
        name: "immediate retry (a loop without a sleep)",
        source: "the reference target's retry-storm flaw; `for _ in range(3): try: … except: \
                 continue`",
        wait: Wait::Immediate,
        limit: Limit::Retries(2),
        retry_after: RetryAfter::Ignored,
        retries: STAINLESS,
        fails: &[
            ("retries.backoff", "retries fire at once"),
            ("retries.jitter", "retries fire at once, all together"),
            NO_RETRY_AFTER,
        ],
    },
    Policy {
        name: "Polly 8 RetryStrategyOptions defaults (constant 2 s)",
        source: "https://github.com/App-vNext/Polly src/Polly.Core/Retry/RetryConstants.cs \
                 (DelayBackoffType.Constant, 2 s, 3 retries), RetryStrategyOptions.cs (UseJitter \
                 false; ShouldHandle: any exception but cancellation; 8.7.0, commit 173d6d1)",
        wait: Wait::Fixed { ms: 2_000.0 },
        limit: Limit::Retries(3),
        retry_after: RetryAfter::Ignored,
        retries: Retries::AnyFailure,
        fails: &[
            ("retries.backoff", "waits the same 2 s before every retry"),
            ("retries.jitter", "every client waits the same 2 s"),
            RETRIES_400,
            NO_RETRY_AFTER,
        ],
    },
    Policy {
        name: "resilience4j 2.4 RetryConfig defaults (fixed 500 ms)",
        source: "https://github.com/resilience4j/resilience4j \
                 resilience4j-retry/src/main/java/io/github/resilience4j/retry/RetryConfig.java \
                 DEFAULT_WAIT_DURATION 500, DEFAULT_MAX_ATTEMPTS 3 (v2.4.0, commit af9e7c9)",
        wait: Wait::Fixed { ms: 500.0 },
        limit: Limit::Retries(2),
        retry_after: RetryAfter::Ignored,
        retries: Retries::AnyFailure,
        fails: &[
            (
                "retries.backoff",
                "waits the same 500 ms before every retry",
            ),
            ("retries.jitter", "every client waits the same 500 ms"),
            RETRIES_400,
            NO_RETRY_AFTER,
        ],
    },
    Policy {
        name: "Polly 8 exponential backoff without jitter (the standard handler, UseJitter = \
               false)",
        source: "https://github.com/App-vNext/Polly src/Polly.Core/Retry/RetryHelper.cs \
                 GetRetryDelayCore without jitter: 2^attempt · base (8.7.0, commit 173d6d1)",
        wait: Wait::Exponential {
            base_ms: 2_000.0,
            factor: 2.0,
            cap_ms: f64::INFINITY,
            jitter: Jitter::None,
        },
        limit: Limit::Retries(3),
        retry_after: RetryAfter::Honoured,
        retries: Retries::Statuses {
            codes: &[408, 429],
            server_errors: true,
        },
        fails: &[(
            "retries.jitter",
            "every client waits exactly 2 s, 4 s, 8 s: they retry in lockstep",
        )],
    },
    Policy {
        name: "OpenAI Cookbook: tenacity wait_random_exponential(min=1, max=60), \
               stop_after_attempt(6)",
        source: "https://github.com/openai/openai-cookbook \
                 examples/How_to_handle_rate_limits.ipynb; https://github.com/jd/tenacity \
                 tenacity/wait.py wait_random_exponential (9.1.4, commit c650fb4)",
        wait: Wait::RandomExponential {
            multiplier_ms: 1_000.0,
            min_ms: 1_000.0,
            cap_ms: 60_000.0,
        },
        limit: Limit::Retries(5),
        retry_after: RetryAfter::Ignored,
        retries: Retries::AnyFailure,
        fails: &[
            (
                "retries.jitter",
                "min=1 clamps the first window [0, 1 s] to exactly 1 s: first retries in lockstep",
            ),
            (
                "retries.attempts",
                "6 attempts, over the 5 of any SDK default",
            ),
            (
                "retries.amplification",
                "6 attempts per request in an outage",
            ),
            RETRIES_400,
            NO_RETRY_AFTER,
        ],
    },
];

/// The policy named `name` (a prefix of it will do).
pub fn find(name: &str) -> Option<&'static Policy> {
    POLICIES.iter().find(|p| p.name.starts_with(name))
}
