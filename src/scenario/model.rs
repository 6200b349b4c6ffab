//! The validated scenario: what [`super::parse`] makes of a scenario file, and what a run follows.
//! Every duration here is already on the run's clock (scaled when `--quick` asked for it).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::api::{Api, RequestOverride};
use super::profile::{Counts, ServiceProfile};
pub use crate::evidence::FakeName;
use crate::evidence::{FlowKind, Phase, PhaseSpan};
pub use crate::fakes::fault::Fault;

/// A parsed, validated scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub name: String,
    /// One line: what the scenario does to the target.
    pub description: String,
    /// Where it came from: a file path, or `built-in:<name>`.
    pub source: String,
    pub seed: u64,
    /// True when the timeline was scaled down by `--quick`.
    pub quick: bool,
    pub load: Load,
    pub target: TargetSpec,
    /// How to talk to the target (request shapes, where answers keep their markers).
    pub api: Api,
    /// How the fakes run.
    pub fakes: FakeOptions,
    pub faults: Vec<FaultWindow>,
    pub expect: Expectations,
}

/// The shape of the load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Load {
    /// How requests are started: closed users (Goose) or arrivals per second (open).
    pub executor: Executor,
    /// Concurrent Goose users (the `closed` executor).
    pub users: usize,
    /// Total run time; the load stops by itself after it.
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
    /// Pause between one user's requests.
    #[serde(serialize_with = "ser_ms")]
    pub think_time: Duration,
    /// A client request without an answer after this long is recorded as a timeout.
    #[serde(serialize_with = "ser_ms")]
    pub request_timeout: Duration,
    /// The factor `--quick` multiplies the timeline by (durations, fault windows), 0 < f <= 1.
    pub quick_scale: f64,
    /// Secrets planted in the users' messages (a password, a card number): they must never
    /// show up in the target's logs, answers or faultline's reports.
    pub secrets: Vec<String>,
    pub flows: Vec<Flow>,
}

impl Load {
    /// The load in a few words: `4 users`, `50/s arrivals (constant_rate)`.
    pub fn shape(&self) -> String {
        match &self.executor {
            Executor::Closed => format!("{} users", self.users),
            Executor::ConstantRate { rate, .. } => format!("{rate}/s arrivals (constant_rate)"),
            Executor::RampingRate {
                start_rate, stages, ..
            } => {
                let peak = stages.iter().map(|s| s.rate).fold(*start_rate, f64::max);
                format!("arrivals ramping up to {peak}/s (ramping_rate)")
            }
            Executor::RampingUsers { .. } => format!(
                "users ramping up to {} (ramping_users)",
                self.executor.peak_users().unwrap_or_default()
            ),
        }
    }
}

impl Executor {
    /// The most users a `ramping_users` load holds at once (`None` for the other executors).
    pub fn peak_users(&self) -> Option<usize> {
        match self {
            Executor::RampingUsers {
                start_users,
                stages,
            } => Some(
                stages
                    .iter()
                    .map(|s| s.users)
                    .fold(*start_users, usize::max),
            ),
            _ => None,
        }
    }
}

/// How the load starts requests (`executor` in `[load]`), named and meant as k6's executors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Executor {
    /// `users` Goose users, each sending a request, waiting for the whole answer, then
    /// `think_time` (k6 `constant-vus`). A slow target slows the users down.
    #[default]
    Closed,
    /// `rate` arrivals per second, whatever the target does (k6 `constant-arrival-rate`). An
    /// arrival that finds `max_in_flight` requests unanswered is dropped and counted.
    ConstantRate {
        rate: f64,
        max_in_flight: usize,
        arrivals: Arrivals,
    },
    /// The arrival rate goes linearly from `start_rate` to each stage's `rate` over the
    /// stage's duration (k6 `ramping-arrival-rate`).
    RampingRate {
        start_rate: f64,
        stages: Vec<RateStage>,
        max_in_flight: usize,
        arrivals: Arrivals,
    },
    /// Closed users whose number goes linearly from `start_users` to each stage's `users`
    /// (k6 `ramping-vus`).
    RampingUsers {
        start_users: usize,
        stages: Vec<UserStage>,
    },
}

impl Executor {
    /// The name written in `[load] executor`.
    pub fn name(&self) -> &'static str {
        match self {
            Executor::Closed => "closed",
            Executor::ConstantRate { .. } => "constant_rate",
            Executor::RampingRate { .. } => "ramping_rate",
            Executor::RampingUsers { .. } => "ramping_users",
        }
    }

    /// True for the arrival-rate executors, whose latency counts from the intended send time.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            Executor::ConstantRate { .. } | Executor::RampingRate { .. }
        )
    }

    /// The executor with its stages' durations multiplied by `scale` (`--quick`).
    fn scaled(self, scale: f64) -> Executor {
        match self {
            Executor::RampingRate {
                start_rate,
                stages,
                max_in_flight,
                arrivals,
            } => Executor::RampingRate {
                start_rate,
                stages: stages
                    .into_iter()
                    .map(|s| RateStage {
                        duration: s.duration.mul_f64(scale),
                        ..s
                    })
                    .collect(),
                max_in_flight,
                arrivals,
            },
            Executor::RampingUsers {
                start_users,
                stages,
            } => Executor::RampingUsers {
                start_users,
                stages: stages
                    .into_iter()
                    .map(|s| UserStage {
                        duration: s.duration.mul_f64(scale),
                        ..s
                    })
                    .collect(),
            },
            other => other,
        }
    }
}

/// How arrivals are spread within a second (`arrivals` in `[load]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced, as k6 does.
    #[default]
    Even,
    /// A Poisson process drawn from the scenario's seed (independent users, as production).
    Poisson,
}

/// One stage of `ramping_rate`: reach `rate` arrivals/s by the end of `duration`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateStage {
    pub rate: f64,
    #[serde(serialize_with = "ser_ms", deserialize_with = "de_ms")]
    pub duration: Duration,
}

/// One stage of `ramping_users`: reach `users` by the end of `duration`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserStage {
    pub users: usize,
    #[serde(serialize_with = "ser_ms", deserialize_with = "de_ms")]
    pub duration: Duration,
}

/// One kind of user request, picked by weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub name: String,
    pub weight: u32,
    /// Questions the users ask; one is picked per request (round robin per user).
    pub messages: Vec<String>,
    /// What the flow asks of the target; picks the request shape in [`Api`].
    pub kind: FlowKind,
    /// The flow's own changes to that request shape.
    pub request: RequestOverride,
}

/// How the fakes run (`[fakes]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FakeOptions {
    /// `[fakes.redis] upstream`: the Redis fake proxies to this real redis-server (loopback),
    /// so the target gets real Redis semantics with the fake's faults in between.
    pub redis_upstream: Option<String>,
    /// The tickets fake's shape: `[tools.tickets]` of the service profile.
    pub tickets: crate::fakes::tool::WriteSchema,
    /// `[fakes.llm] replay`: the fake LLM answers from this recording.
    pub llm_replay: Option<LlmReplay>,
}

/// A recording the fake LLM replays, and how (`[fakes.llm]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlmReplay {
    pub path: std::path::PathBuf,
    pub options: crate::fakes::llm::replay::ReplayOptions,
}

/// A fault switched on at `start` and off at `end` of the run's clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultWindow {
    pub fake: FakeName,
    /// Route prefix at the fake; `None` for every route.
    pub route: Option<String>,
    #[serde(serialize_with = "ser_ms")]
    pub start: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub end: Duration,
    /// Share of matching attempts that get the fault.
    pub rate: f64,
    /// Only the first N attempts of each client request get the fault.
    pub first_attempts: Option<u32>,
    pub fault: Fault,
}

/// The service under test and how to reach it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetSpec {
    /// The command to spawn; `None` (and no `url`) means the reference target shipped in
    /// this binary.
    pub command: Option<Vec<String>>,
    /// Attach to a target that is already running at this URL instead of starting one.
    pub url: Option<String>,
    /// Working directory for `command` (relative paths are from the config file's folder).
    pub cwd: Option<std::path::PathBuf>,
    /// Read the target's log lines from this file (as it grows) instead of its stdout/stderr.
    pub log_file: Option<std::path::PathBuf>,
    /// `--flaw` switches for the reference target (each breaks one practice).
    pub flaws: Vec<String>,
    /// Environment for the target; values may use `{llm}`, `{llm_key}`, `{tool.weather}`,
    /// `{redis}`, `{otlp}`.
    pub env: BTreeMap<String, String>,
    /// Path polled with GET until it answers 2xx.
    pub ready_path: String,
    /// How long to wait for readiness before giving up.
    #[serde(serialize_with = "ser_ms")]
    pub ready_timeout: Duration,
    /// Metrics endpoint, read at the end of the run; `None` when the target has none.
    pub metrics_path: Option<String>,
    /// Its format (`metrics_format`); `None`: told by the answer's content type.
    pub metrics_format: Option<crate::evidence::MetricsFormat>,
}

impl TargetSpec {
    /// The reference target shipped in this binary, with its defaults: what a scenario gets
    /// when it names no target.
    pub fn reference(env: BTreeMap<String, String>, flaws: Vec<String>) -> TargetSpec {
        TargetSpec {
            command: None,
            url: None,
            cwd: None,
            log_file: None,
            flaws,
            env,
            ready_path: "/healthz".into(),
            ready_timeout: Duration::from_secs(20),
            metrics_path: Some("/admin/metrics".into()),
            metrics_format: None,
        }
    }

    /// The target in a few words, for the console and reports.
    pub fn describe(&self) -> String {
        match (&self.command, &self.url) {
            (Some(command), _) => format!("`{}`", command.join(" ")),
            (None, Some(url)) => format!("the service at {url}"),
            (None, None) if self.flaws.is_empty() => "the reference target".into(),
            (None, None) => format!(
                "the reference target with --flaw {}",
                self.flaws.join(" --flaw ")
            ),
        }
    }
}

/// Limits a run is judged against. Every family has defaults, so a scenario without `[expect]`
/// still runs every check its evidence allows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Expectations {
    /// Latency and error-rate limits per phase; a phase without an entry is not gated.
    pub phases: BTreeMap<Phase, PhaseLimits>,
    pub errors: ErrorExpectations,
    pub retries: RetryExpectations,
    pub writes: WriteExpectations,
    pub fallback: FallbackExpectations,
    pub recovery: RecoveryExpectations,
    pub logs: LogExpectations,
    pub metrics: MetricsExpectations,
    pub cost: CostExpectations,
    pub agent: AgentExpectations,
    pub stream: StreamExpectations,
    pub traces: TracesExpectations,
    /// Checks not to run: a family (`cost`) or a verdict id (`retries.backoff`).
    pub skip: Vec<String>,
    /// The service-profile keys set explicitly (by the scenario's `[expect.*]`, then by
    /// `faultline.toml`), with where each was written; their values are already in the tables
    /// above. Probes read it to tell a user's setting from a default, and to name its line.
    pub profile: ServiceProfile,
}

impl Expectations {
    /// The check families [`Expectations::skip`] may name, in report order.
    pub const FAMILIES: [&'static str; 14] = [
        "sla",
        "errors",
        "retries",
        "writes",
        "fallback",
        "recovery",
        "logs",
        "metrics",
        "cost",
        "agent",
        "stream",
        "traces",
        "conversation",
        "mcp",
    ];

    /// Whether the verdict `id` was asked to be skipped (by its id or its family).
    pub fn skips(&self, id: &str) -> bool {
        self.skip
            .iter()
            .any(|s| id == s || (id.starts_with(s.as_str()) && id[s.len()..].starts_with('.')))
    }
}

/// How the target retries upstream calls (`[expect.retries]`). The defaults are derived from
/// real client policies (`checks::retries::policies`): every sane one passes them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryExpectations {
    /// Most attempts (first try included) one client request may make at one fake and route.
    /// Default 5: boto3's default (legacy) mode and the Gemini SDK's retry options make 5.
    pub max_attempts: u32,
    /// Most upstream attempts per client request in a fault window, relative to the baseline's.
    /// Default 5, as many as `max_attempts` allows a one-call flow.
    pub amplification: f64,
    /// The mean wait before retry n+1 over the one before must be able to reach this, given the
    /// spread of the waits seen: `retries.backoff` fails when even the upper confidence bound of
    /// the growth is lower. Default 1.1, under the slowest sane growth (1.3x) by what 5 samples
    /// can miss it by.
    pub min_growth: f64,
    /// The first waits of different requests must spread (range, outer tenths left out from
    /// 10 waits) at least this share of their mean, and at least 10 ms of scheduling noise, or
    /// clients that failed together retry together. Default 0.02: the OpenAI and Anthropic
    /// SDKs jitter first waits by 0–25% (375–500 ms).
    pub min_jitter: f64,
    /// Answers that must never be retried (the request itself is wrong).
    pub non_retryable: Vec<u16>,
    /// Answers worth retrying (plus no answer at all).
    pub retryable: Vec<u16>,
    /// Most share of requests whose retryable failure was never retried.
    pub max_unretried: f64,
}

impl Default for RetryExpectations {
    fn default() -> Self {
        RetryExpectations {
            max_attempts: 5,
            amplification: 5.0,
            min_growth: 1.1,
            min_jitter: 0.02,
            non_retryable: vec![400, 401, 403, 404, 422],
            retryable: vec![429, 500, 502, 503, 504],
            max_unretried: 0.5,
        }
    }
}

/// Writes through tools (`[expect.writes]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WriteExpectations {
    /// Most client requests allowed to have created their side effect more than once.
    pub max_duplicates: u32,
}

/// Graceful degradation (`[expect.fallback]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FallbackExpectations {
    /// Flows that need a tool; empty: the requests the tool fakes saw during their outage.
    pub tool_flows: Vec<String>,
    /// Least share of requests that must still succeed during a tool outage.
    pub tool_success_rate: f64,
    /// Least share of requests that must still succeed during a Redis outage.
    pub redis_success_rate: f64,
    /// The log field holding a line's level (`[logs] level_field`), read before the usual
    /// `level`, `severity`; filled from the log schema by [`Plan::expectations`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level_field: Option<String>,
}

impl Default for FallbackExpectations {
    fn default() -> Self {
        FallbackExpectations {
            tool_flows: Vec::new(),
            tool_success_rate: 0.95,
            redis_success_rate: 0.95,
            level_field: None,
        }
    }
}

/// Recovery after faults (`[expect.recovery]`, next to the recovery phase's own limits).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecoveryExpectations {
    /// Most time from the last fault's end until the service is back to its baseline.
    #[serde(serialize_with = "ser_ms")]
    pub within: Duration,
    /// Width of one judged window.
    #[serde(serialize_with = "ser_ms")]
    pub window: Duration,
    /// Consecutive healthy windows that count as recovered.
    pub windows: u32,
    /// A window is healthy when its success rate is at most this far below the baseline's…
    pub success_tolerance: f64,
    /// …and its p95 at most this many times the baseline's p95.
    pub p95_factor: f64,
    /// Most time from a long outage's start to the first fast failure or degraded answer.
    #[serde(serialize_with = "ser_ms")]
    pub mitigate_within: Duration,
    /// A failure this quick counts as fast (mitigation; p95 limit in a long outage).
    #[serde(serialize_with = "ser_ms")]
    pub fast_fail: Duration,
    /// Outages at least this long are owed mitigation, and must fail fast in their second
    /// half (a circuit breaker); shorter faults may simply be retried through.
    #[serde(serialize_with = "ser_ms")]
    pub long_outage: Duration,
}

impl Default for RecoveryExpectations {
    fn default() -> Self {
        RecoveryExpectations {
            within: Duration::from_secs(10),
            window: Duration::from_secs(1),
            windows: 3,
            success_tolerance: 0.05,
            p95_factor: 1.5,
            mitigate_within: Duration::from_secs(10),
            fast_fail: Duration::from_secs(1),
            long_outage: Duration::from_secs(10),
        }
    }
}

/// Structured logs (`[expect.logs]`, and the profile's `[logs]`); default field names are the
/// lesson's. A field name may be a dotted path (`usage.in`) into nested objects.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogExpectations {
    pub request_id_field: String,
    pub input_tokens_field: String,
    pub output_tokens_field: String,
    /// The field holding a line's level (`warn`, pino's 40), when the service names it.
    pub level_field: Option<String>,
    /// The field holding a line's message, when the service names it.
    pub message_field: Option<String>,
    /// The LLM route whose `usage` the logged token counts add up.
    pub tokens_route: String,
    /// Relative difference allowed between logged and real token counts.
    pub tokens_tolerance: f64,
}

impl Default for LogExpectations {
    fn default() -> Self {
        LogExpectations {
            request_id_field: "requestId".into(),
            input_tokens_field: "inputTokens".into(),
            output_tokens_field: "outputTokens".into(),
            level_field: None,
            message_field: None,
            tokens_route: "/v1/chat/completions".into(),
            tokens_tolerance: 0.02,
        }
    }
}

/// The target's metrics against ground truth (`[expect.metrics]`, and the profile's
/// `[metrics]`). Each figure is a JSON pointer into the metrics body or a Prometheus series
/// selector; an empty one leaves that figure out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricsExpectations {
    pub llm_errors: String,
    /// What the LLM-errors figure counts: failed calls (after the SDK's retries) or attempts.
    pub llm_errors_counts: Counts,
    pub tokens_input: String,
    pub tokens_output: String,
    pub cache_hit_ratio: String,
    pub agent_steps: String,
    /// The LLM route whose `usage` the token metrics add up.
    pub tokens_route: String,
    /// Relative difference allowed (counts may also be off by one).
    pub tolerance: f64,
}

impl Default for MetricsExpectations {
    fn default() -> Self {
        MetricsExpectations {
            llm_errors: "/llm_errors_total".into(),
            llm_errors_counts: Counts::Calls,
            tokens_input: "/tokens_input".into(),
            tokens_output: "/tokens_output".into(),
            cache_hit_ratio: "/cache_hit_ratio".into(),
            agent_steps: "/agent_steps_count".into(),
            tokens_route: "/v1/chat/completions".into(),
            tolerance: 0.05,
        }
    }
}

/// The token cost of faults (`[expect.cost]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostExpectations {
    /// Most tokens per successful answer in the fault phase, as a multiple of the baseline's.
    pub ratio: f64,
    pub tokens_route: String,
}

impl Default for CostExpectations {
    fn default() -> Self {
        CostExpectations {
            ratio: 2.0,
            tokens_route: "/v1/chat/completions".into(),
        }
    }
}

/// Agent loops (`[expect.agent]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentExpectations {
    /// Most LLM calls one agent request may make.
    pub max_llm_calls: u32,
    pub llm_route: String,
}

impl Default for AgentExpectations {
    fn default() -> Self {
        AgentExpectations {
            max_llm_calls: 8,
            llm_route: "/v1/chat/completions".into(),
        }
    }
}

/// Streamed answers (`[expect.stream]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamExpectations {
    #[serde(serialize_with = "ser_ms")]
    pub first_token_p95: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub inter_token_p95: Duration,
}

impl Default for StreamExpectations {
    fn default() -> Self {
        StreamExpectations {
            first_token_p95: Duration::from_secs(3),
            inter_token_p95: Duration::from_millis(500),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseLimits {
    /// Upper bound on the phase's p95 latency.
    #[serde(serialize_with = "ser_opt_ms")]
    pub p95: Option<Duration>,
    /// Upper bound on the share of failed requests, 0.0..=1.0.
    pub error_rate: Option<f64>,
}

/// What an honest failure looks like to a user.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorExpectations {
    /// Statuses a failed request may carry (e.g. 429, 502, 503, 504).
    pub allowed_statuses: Vec<u16>,
    /// A failure must arrive within this long: slower is a silent hang.
    #[serde(serialize_with = "ser_ms")]
    pub within: Duration,
    /// Where a failure's message is (`[api] error_pointer`), read before the usual `error`,
    /// `message` and `error.message`; filled from the API description by [`Plan::expectations`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_pointer: Option<String>,
}

impl Default for ErrorExpectations {
    fn default() -> Self {
        ErrorExpectations {
            allowed_statuses: vec![429, 502, 503, 504],
            within: Duration::from_secs(15),
            message_pointer: None,
        }
    }
}

impl Plan {
    /// The expectations the checks judge by, with what the API description says about
    /// answers folded in (where a failure's message is).
    pub fn expectations(&self) -> Expectations {
        let mut expect = self.expect.clone();
        expect.errors.message_pointer = self.api.response.error_pointer.clone();
        expect.fallback.level_field = expect.logs.level_field.clone();
        expect
    }

    /// The phases on the run's clock: baseline until the first fault starts, fault until the
    /// last one ends, recovery until the run ends. Empty phases are left out.
    pub fn phases(&self) -> Vec<PhaseSpan> {
        let end = self.load.duration.as_secs_f64() * 1000.0;
        let fault_start = self.faults.iter().map(|f| f.start).min();
        let fault_end = self.faults.iter().map(|f| f.end).max();
        let (Some(fault_start), Some(fault_end)) = (fault_start, fault_end) else {
            return vec![PhaseSpan {
                phase: Phase::Baseline,
                start_ms: 0.0,
                end_ms: end,
            }];
        };
        let fault_start = fault_start.as_secs_f64() * 1000.0;
        let fault_end = (fault_end.as_secs_f64() * 1000.0).min(end);
        [
            (Phase::Baseline, 0.0, fault_start),
            (Phase::Fault, fault_start, fault_end),
            (Phase::Recovery, fault_end, end),
        ]
        .into_iter()
        .filter(|(_, start, end)| end > start)
        .map(|(phase, start_ms, end_ms)| PhaseSpan {
            phase,
            start_ms,
            end_ms,
        })
        .collect()
    }

    /// The same plan with its timeline (run time, fault windows) multiplied by
    /// `load.quick_scale`. Limits, timeouts and think time stay: what is checked does not change.
    pub fn quick(mut self) -> Plan {
        let scale = self.load.quick_scale;
        self.load.duration = self.load.duration.mul_f64(scale);
        self.load.executor = std::mem::take(&mut self.load.executor).scaled(scale);
        for window in &mut self.faults {
            window.start = window.start.mul_f64(scale);
            window.end = window.end.mul_f64(scale);
        }
        self.quick = true;
        self
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Reads back what [`ser_ms`] wrote (a distributed run's plan travels as JSON).
fn de_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_millis() as u64)),
        None => s.serialize_none(),
    }
}

/// What the target's traces must show (`[expect.traces]`), read from the spans it exported to
/// the OTLP collector fake (`OTEL_EXPORTER_OTLP_ENDPOINT = "{otlp}"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TracesExpectations {
    /// The span attribute (on the root span, or any span of the trace) that carries the
    /// client's request id (`x-request-id`).
    pub request_id_attribute: String,
    /// A span carrying this attribute is one LLM attempt (the GenAI semantic conventions put
    /// `gen_ai.operation.name` on every call to a model).
    pub llm_span_attribute: String,
    /// Most share of completed requests whose trace may be missing or show fewer LLM spans
    /// than the LLM fake saw attempts.
    pub max_untraced: f64,
}

impl Default for TracesExpectations {
    fn default() -> Self {
        TracesExpectations {
            request_id_attribute: "request.id".into(),
            llm_span_attribute: "gen_ai.operation.name".into(),
            max_untraced: 0.0,
        }
    }
}
