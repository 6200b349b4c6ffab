//! Configuration, from environment variables only (a twelve-factor service), and the planted
//! defects that `EXAMPLE_DEFECTS` switches on to prove faultline's gates catch them.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Context};

/// Each defect breaks one practice faultline checks (README.md names the gate that fails).
pub const DEFECTS: [&str; 5] = [
    "no-retry",           // the SDK's retries off: a passing 503 becomes the user's error
    "no-jitter",          // async-openai's stock retry layer: fixed 100 ms doubling, no jitter
    "leak-secrets",       // the raw question in the request log line
    "stack-trace-errors", // error bodies carry the error chain and a backtrace
    "no-cache-fallback",  // a Redis outage fails the request instead of skipping the cache
];

#[derive(Clone, Debug)]
pub struct Config {
    pub model: String,
    /// One attempt at the provider; the whole call, retries included, gets `llm_deadline`.
    pub llm_attempt_timeout: Duration,
    pub llm_deadline: Duration,
    pub llm_max_retries: usize,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    pub redis_url: Option<String>,
    pub weather_url: Option<String>,
    pub tickets_url: Option<String>,
    pub tool_timeout: Duration,
    pub defects: BTreeSet<String>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        let defects: BTreeSet<String> = std::env::var("EXAMPLE_DEFECTS")
            .unwrap_or_default()
            .split(',')
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .collect();
        if let Some(bad) = defects.iter().find(|d| !DEFECTS.contains(&d.as_str())) {
            bail!(
                "EXAMPLE_DEFECTS names {bad:?}; the defects are: {}",
                DEFECTS.join(", ")
            );
        }
        Ok(Config {
            model: std::env::var("ASKBOT_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into()),
            llm_attempt_timeout: millis("ASKBOT_LLM_ATTEMPT_TIMEOUT_MS", 4000)?,
            llm_deadline: millis("ASKBOT_LLM_DEADLINE_MS", 5000)?,
            llm_max_retries: 2,
            breaker_threshold: millis("ASKBOT_BREAKER_THRESHOLD", 3)?.as_millis() as u32,
            breaker_cooldown: millis("ASKBOT_BREAKER_COOLDOWN_MS", 1000)?,
            redis_url: var("REDIS_URL"),
            weather_url: var("WEATHER_API_URL"),
            tickets_url: var("TICKETS_API_URL"),
            tool_timeout: millis("ASKBOT_TOOL_TIMEOUT_MS", 800)?,
            defects,
        })
    }

    pub fn has(&self, defect: &str) -> bool {
        self.defects.contains(defect)
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A whole number from the environment (milliseconds, or a count read the same way).
fn millis(name: &str, default: u64) -> anyhow::Result<Duration> {
    match var(name) {
        None => Ok(Duration::from_millis(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .with_context(|| {
                format!("{name} is {v:?}; expected a whole number, e.g. {name}={default}")
            }),
    }
}
