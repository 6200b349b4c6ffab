//! The scenario file exactly as written: serde shapes that mirror the TOML, before validation.
//!
//! Every struct denies unknown fields, so a typo is an error rather than a silently ignored
//! setting. Values that a later check may reject are `Spanned`, so that check can point at
//! them. Numbers that have a range are read as `i64` and range-checked in [`super::build`], which
//! gives a better message ("users must be at least 1") than serde's "expected usize".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

/// A string value with its place in the file.
pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Text,
    #[serde(default)]
    pub description: String,
    pub seed: Option<u64>,
    pub load: RawLoad,
    pub target: Option<RawTarget>,
    pub api: Option<RawApi>,
    pub fakes: Option<RawFakes>,
    #[serde(default)]
    pub faults: Vec<RawFault>,
    pub expect: Option<RawExpect>,
}

/// `[fakes]`: how the fakes themselves run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFakes {
    pub redis: Option<RawRedisFake>,
    pub llm: Option<RawLlmFake>,
}

/// `[fakes.llm]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlmFake {
    /// A recording (`faultline record`) the fake LLM answers from, relative to the scenario.
    pub replay: Option<Text>,
    pub replay_speed: Option<Spanned<f64>>,
    /// `error` (the provider's 404 naming the miss) or `generate`.
    pub replay_miss: Option<Text>,
}

/// `[fakes.redis]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisFake {
    /// Proxy mode: a real redis-server the fake forwards to, with its faults in between.
    pub upstream: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    /// closed | constant_rate | ramping_rate | ramping_users (see `parse::load`).
    pub executor: Option<Text>,
    pub users: Option<Spanned<i64>>,
    pub rate: Option<Spanned<f64>>,
    pub start_rate: Option<Spanned<f64>>,
    pub start_users: Option<Spanned<i64>>,
    pub max_in_flight: Option<Spanned<i64>>,
    /// even | poisson
    pub arrivals: Option<Text>,
    pub stages: Option<Spanned<Vec<RawStage>>>,
    pub duration: Text,
    pub think_time: Option<Text>,
    pub request_timeout: Option<Text>,
    pub quick_scale: Option<Spanned<f64>>,
    #[serde(default)]
    pub secrets: Vec<Text>,
    pub flows: Spanned<Vec<RawFlow>>,
}

/// One `stages` entry of a ramping executor: `{ rate = 50, duration = "30s" }` or
/// `{ users = 10, duration = "30s" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub rate: Option<Spanned<f64>>,
    pub users: Option<Spanned<i64>>,
    pub duration: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    pub name: Text,
    pub weight: Option<Spanned<i64>>,
    pub messages: Spanned<Vec<Text>>,
    /// chat | stream | agent | write
    pub kind: Option<Text>,
    pub method: Option<Text>,
    pub path: Option<Text>,
    #[serde(default)]
    pub headers: BTreeMap<Text, Text>,
    pub body: Option<Spanned<toml::Value>>,
}

/// `[api]`: how to talk to the target (see `scenario::api`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    #[serde(default)]
    pub headers: BTreeMap<Text, Text>,
    pub chat: Option<RawRequestShape>,
    pub stream: Option<RawRequestShape>,
    pub agent: Option<RawRequestShape>,
    pub write: Option<RawRequestShape>,
    pub request_id_header: Option<Text>,
    pub request_id_pointer: Option<Text>,
    pub answer_pointer: Option<Text>,
    pub degraded_pointer: Option<Text>,
    pub cache_hit_pointer: Option<Text>,
    pub error_pointer: Option<Text>,
}

/// `[api.chat]` and its siblings: one kind of flow's request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestShape {
    pub method: Option<Text>,
    pub path: Option<Text>,
    #[serde(default)]
    pub headers: BTreeMap<Text, Text>,
    pub body: Option<Spanned<toml::Value>>,
}

/// A `faultline.toml` kept in a user's repository: their target, its API and how it speaks
/// (the service profile: `[logs]`, `[metrics]`, `[traces]`, `[tools.*]`), picked up by every
/// scenario run from there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub target: Option<RawTarget>,
    pub api: Option<RawApi>,
    pub logs: Option<super::profile::RawProfileLogs>,
    pub metrics: Option<super::profile::RawProfileMetrics>,
    pub traces: Option<super::profile::RawProfileTraces>,
    pub tools: Option<super::tools::RawTools>,
    pub network: Option<RawNetwork>,
}

/// `[network]` of faultline.toml: where a distributed run may send load beyond this machine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub allow: Option<Spanned<Vec<Text>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub command: Option<Spanned<Vec<Text>>>,
    pub url: Option<Text>,
    pub cwd: Option<Text>,
    pub log_file: Option<Text>,
    pub flaws: Option<Spanned<Vec<Text>>>,
    #[serde(default)]
    pub env: BTreeMap<Text, Text>,
    pub ready_path: Option<Text>,
    pub ready_timeout: Option<Text>,
    pub metrics_path: Option<Text>,
    pub metrics_format: Option<Text>,
}

/// One `[[faults]]` table. Kind-specific fields are all optional here; [`super::build`] checks
/// that each kind gets exactly the fields it uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub fake: Text,
    pub route: Option<Text>,
    pub start: Text,
    pub end: Text,
    pub rate: Option<Spanned<f64>>,
    pub first_attempts: Option<Spanned<i64>>,
    pub kind: Text,
    // status
    pub code: Option<Spanned<i64>>,
    pub retry_after: Option<Text>,
    pub retry_after_ms: Option<Spanned<bool>>,
    pub should_retry: Option<Spanned<bool>>,
    pub error_code: Option<Text>,
    // delay
    pub delay: Option<Text>,
    pub distribution: Option<Text>,
    // slow_stream
    pub first_token: Option<Text>,
    pub inter_token: Option<Text>,
    pub jitter: Option<Spanned<f64>>,
    // stall, stream_cut
    pub after_chunks: Option<Spanned<i64>>,
    pub stall: Option<Text>,
    pub after: Option<Text>,
    // malformed, finish_reason
    pub what: Option<Text>,
    pub reason: Option<Text>,
    // rate_limit
    pub requests_per_minute: Option<Spanned<i64>>,
    pub tokens_per_minute: Option<Spanned<i64>>,
    // redis_error
    pub reply: Option<Text>,
    // rpc_error (with `code`), large_result
    pub message: Option<Text>,
    pub bytes: Option<Spanned<i64>>,
}

impl RawFault {
    /// The kind-specific fields given, with where each starts.
    pub fn kind_fields(&self) -> Vec<(&'static str, usize)> {
        fn at<T>(field: &Option<Spanned<T>>) -> Option<usize> {
            field.as_ref().map(|f| f.span().start)
        }
        [
            ("code", at(&self.code)),
            ("retry_after", at(&self.retry_after)),
            ("retry_after_ms", at(&self.retry_after_ms)),
            ("should_retry", at(&self.should_retry)),
            ("error_code", at(&self.error_code)),
            ("delay", at(&self.delay)),
            ("distribution", at(&self.distribution)),
            ("first_token", at(&self.first_token)),
            ("inter_token", at(&self.inter_token)),
            ("jitter", at(&self.jitter)),
            ("after_chunks", at(&self.after_chunks)),
            ("stall", at(&self.stall)),
            ("after", at(&self.after)),
            ("what", at(&self.what)),
            ("reason", at(&self.reason)),
            ("requests_per_minute", at(&self.requests_per_minute)),
            ("tokens_per_minute", at(&self.tokens_per_minute)),
            ("reply", at(&self.reply)),
            ("message", at(&self.message)),
            ("bytes", at(&self.bytes)),
        ]
        .into_iter()
        .filter_map(|(name, at)| at.map(|at| (name, at)))
        .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub baseline: Option<RawPhaseLimits>,
    pub fault: Option<RawPhaseLimits>,
    /// The recovery phase's limits and how the service must recover, in one table.
    pub recovery: Option<RawRecovery>,
    pub errors: Option<RawErrors>,
    pub retries: Option<RawRetries>,
    pub writes: Option<RawWrites>,
    pub fallback: Option<RawFallback>,
    pub logs: Option<RawLogs>,
    pub metrics: Option<RawMetrics>,
    pub cost: Option<RawCost>,
    pub agent: Option<RawAgent>,
    pub stream: Option<RawStream>,
    pub traces: Option<RawTraces>,
    pub skip: Option<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraces {
    pub request_id_attribute: Option<Text>,
    pub llm_span_attribute: Option<Text>,
    pub max_untraced: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecovery {
    pub p95: Option<Text>,
    pub error_rate: Option<Spanned<f64>>,
    pub within: Option<Text>,
    pub window: Option<Text>,
    pub windows: Option<Spanned<i64>>,
    pub success_tolerance: Option<Spanned<f64>>,
    pub p95_factor: Option<Spanned<f64>>,
    pub mitigate_within: Option<Text>,
    pub fast_fail: Option<Text>,
    pub long_outage: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    pub max_attempts: Option<Spanned<i64>>,
    pub amplification: Option<Spanned<f64>>,
    pub min_growth: Option<Spanned<f64>>,
    pub min_jitter: Option<Spanned<f64>>,
    pub non_retryable: Option<Vec<Spanned<i64>>>,
    pub retryable: Option<Vec<Spanned<i64>>>,
    pub max_unretried: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWrites {
    pub max_duplicates: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    pub tool_flows: Option<Vec<Text>>,
    pub tool_success_rate: Option<Spanned<f64>>,
    pub redis_success_rate: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    pub request_id_field: Option<Text>,
    pub input_tokens_field: Option<Text>,
    pub output_tokens_field: Option<Text>,
    pub level_field: Option<Text>,
    pub message_field: Option<Text>,
    pub tokens_route: Option<Text>,
    pub tokens_tolerance: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// A selector string, or `{ selector = "...", counts = "calls" | "attempts" }`.
    pub llm_errors: Option<Spanned<toml::Value>>,
    pub tokens_input: Option<Text>,
    pub tokens_output: Option<Text>,
    pub cache_hit_ratio: Option<Text>,
    pub agent_steps: Option<Text>,
    pub tokens_route: Option<Text>,
    pub tolerance: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    pub ratio: Option<Spanned<f64>>,
    pub tokens_route: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub max_llm_calls: Option<Spanned<i64>>,
    pub llm_route: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    pub first_token_p95: Option<Text>,
    pub inter_token_p95: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhaseLimits {
    pub p95: Option<Text>,
    pub error_rate: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawErrors {
    pub allowed_statuses: Option<Vec<Spanned<i64>>>,
    pub within: Option<Text>,
}
