//! The one fault model every fake shares: what to inject ([`Fault`]), where (a route prefix),
//! how often (a rate drawn from one seeded RNG, or the first N attempts of each client
//! request), and a [`Switchboard`] that the timeline (or a control API) turns rules on and off at.
//!
//! Fakes ask the switchboard once per attempt ([`Switchboard::pick`]); the answer is data, and
//! the fake decides how to act it out on its own wire protocol. Not every fake can act out
//! every fault ([`Fault::supported_by`]); the scenario parser refuses the rest up front.
//!
//! Durations read from `"250ms"`-style strings or integer milliseconds and are written as
//! strings, so the same JSON works in scenario files, the control API and reports.

pub mod kinds;

use crate::sync::LockExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What a fake does instead of (or before, or while) answering normally.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The port is closed while the rule is on: new connections are refused, open ones dropped.
    Refuse,
    /// Answer with this HTTP status and the provider's own error body.
    Status {
        code: u16,
        /// Sent as `retry-after` (whole seconds, rounded up).
        #[serde(
            default,
            with = "opt_duration",
            skip_serializing_if = "Option::is_none"
        )]
        retry_after: Option<Duration>,
        /// Also send `retry-after-ms` (OpenAI's millisecond hint) when `retry_after` is set.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        retry_after_ms: bool,
        /// Send `x-should-retry: true|false`, which the official SDKs obey over the status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        should_retry: Option<bool>,
        /// The provider's error code in the body: `rate_limit_exceeded` vs `insufficient_quota`
        /// for a 429, `context_length_exceeded` for a 400. Default: the usual one for the status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    /// Wait, then answer normally. `distribution` spreads the wait around `delay`.
    Delay {
        #[serde(with = "duration")]
        delay: Duration,
        #[serde(default, skip_serializing_if = "Distribution::is_fixed")]
        distribution: Distribution,
    },
    /// Accept the request and never answer (until the client gives up or the fake stops).
    Hang,
    /// Reset the TCP connection (RST) instead of answering.
    Reset,
    /// Close the connection without a response.
    Drop,
    /// Stream slowly: time to first token, then a delay between tokens (`jitter` is the
    /// fraction, 0..=1, by which each inter-token delay may vary).
    SlowStream {
        #[serde(with = "duration")]
        first_token: Duration,
        #[serde(with = "duration")]
        inter_token: Duration,
        #[serde(default, skip_serializing_if = "is_zero")]
        jitter: f64,
    },
    /// Stream normally, then stall for `stall` after `after_chunks` chunks, then go on.
    Stall {
        after_chunks: u32,
        #[serde(with = "duration")]
        stall: Duration,
    },
    /// Cut the stream (close the connection mid-body) after `after_chunks` chunks or `after`
    /// time, whichever comes first; at least one must be given.
    StreamCut {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_chunks: Option<u32>,
        #[serde(
            default,
            with = "opt_duration",
            skip_serializing_if = "Option::is_none"
        )]
        after: Option<Duration>,
    },
    /// Answer 200 with a broken body (see [`Malformation`]).
    Malformed { what: Malformation },
    /// Answer normally but end with this `finish_reason` (`length`, `content_filter`).
    FinishReason { reason: FinishReason },
    /// Agents: ask for the same tool call on every turn, forever.
    ToolLoop,
    /// Agents: ask for a tool call whose `arguments` are not valid JSON.
    InvalidToolArgs,
    /// Rate limiting as state: per-API-key buckets refilled per minute; a load above the quota
    /// gets 429s with realistic `x-ratelimit-*` headers, as a real account would.
    RateLimit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requests_per_minute: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens_per_minute: Option<u32>,
    },
    /// Redis: answer every command with this error reply, e.g. `LOADING Redis is loading the
    /// dataset in memory` (the first word is the error's kind, as Redis sends it).
    RedisError { reply: String },
    /// MCP: a JSON-RPC error (HTTP 200) instead of the result; default code -32603.
    RpcError {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// MCP: a `tools/call` result with `isError: true`.
    ToolError,
    /// MCP: the request's session is forgotten and answered 404.
    SessionExpired,
    /// MCP: the tool list changes (and sessions get `notifications/tools/list_changed`).
    ToolsChanged,
    /// MCP: a `tools/call` result of `bytes` bytes (default 4 MiB).
    LargeResult {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
    },
}

/// How a delay varies around its nominal value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Exactly the delay.
    #[default]
    Fixed,
    /// Uniform between zero and twice the delay (mean: the delay).
    Uniform,
    /// Log-normal with the delay as median (sigma 0.5): the long tail real providers show.
    LogNormal,
}

impl Distribution {
    fn is_fixed(&self) -> bool {
        *self == Distribution::Fixed
    }
}

/// Ways an answer can be broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformation {
    /// A body that is not JSON at all.
    InvalidJson,
    /// Valid JSON cut off halfway.
    TruncatedJson,
    /// JSON served as `text/html`.
    WrongContentType,
    /// A completion with `choices: []`.
    EmptyChoices,
    /// Streams: an error event after the 200 and some chunks.
    ErrorFrame,
    /// Streams: no `data: [DONE]` at the end.
    NoDone,
    /// Streams: no usage chunk even when `stream_options.include_usage` asked for one.
    NoUsage,
}

/// A `finish_reason` other than `stop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Length,
    ContentFilter,
}

impl Fault {
    /// A status fault with the provider's usual body and headers.
    pub fn status(code: u16, retry_after: Option<Duration>) -> Fault {
        Fault::Status {
            code,
            retry_after,
            retry_after_ms: true,
            should_retry: None,
            error_code: None,
        }
    }

    /// The kind, as scenario files spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Refuse => "refuse",
            Fault::Status { .. } => "status",
            Fault::Delay { .. } => "delay",
            Fault::Hang => "hang",
            Fault::Reset => "reset",
            Fault::Drop => "drop",
            Fault::SlowStream { .. } => "slow_stream",
            Fault::Stall { .. } => "stall",
            Fault::StreamCut { .. } => "stream_cut",
            Fault::Malformed { .. } => "malformed",
            Fault::FinishReason { .. } => "finish_reason",
            Fault::ToolLoop => "tool_loop",
            Fault::InvalidToolArgs => "invalid_tool_args",
            Fault::RateLimit { .. } => "rate_limit",
            Fault::RedisError { .. } => "redis_error",
            Fault::RpcError { .. } => "rpc_error",
            Fault::ToolError => "tool_error",
            Fault::SessionExpired => "session_expired",
            Fault::ToolsChanged => "tools_changed",
            Fault::LargeResult { .. } => "large_result",
        }
    }

    /// The fakes that can act this fault out (`llm`, `weather`, `tickets`, `redis`, …).
    /// HTTP tool fakes answer to the names of their tools; `tool` stands for all of them.
    pub fn supported_by(&self) -> &'static [&'static str] {
        const EVERY: &[&str] = &["llm", "tool", "redis", "mcp"];
        const HTTP: &[&str] = &["llm", "tool", "mcp"];
        match self {
            Fault::Refuse | Fault::Hang | Fault::Reset | Fault::Drop | Fault::Delay { .. } => EVERY,
            Fault::Status { .. } => HTTP,
            Fault::Malformed {
                what:
                    Malformation::InvalidJson
                    | Malformation::TruncatedJson
                    | Malformation::WrongContentType,
            } => HTTP,
            Fault::SlowStream { .. } | Fault::Stall { .. } | Fault::StreamCut { .. } => {
                &["llm", "mcp"]
            }
            Fault::Malformed { .. }
            | Fault::FinishReason { .. }
            | Fault::ToolLoop
            | Fault::InvalidToolArgs
            | Fault::RateLimit { .. } => &["llm"],
            Fault::RedisError { .. } => &["redis"],
            Fault::RpcError { .. }
            | Fault::ToolError
            | Fault::SessionExpired
            | Fault::ToolsChanged
            | Fault::LargeResult { .. } => &["mcp"],
        }
    }

    /// A short label for journals, timelines and reports: `status 503`, `delay 2s`, `hang`.
    pub fn label(&self) -> String {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Fault::Status {
                code,
                retry_after: None,
                ..
            } => format!("status {code}"),
            Fault::Status {
                code,
                retry_after: Some(after),
                ..
            } => {
                format!("status {code} retry-after {}", d(after))
            }
            Fault::Delay {
                delay,
                distribution: Distribution::Fixed,
            } => format!("delay {}", d(delay)),
            Fault::Delay {
                delay,
                distribution,
            } => {
                format!("delay {} {}", d(delay), serde_plain(distribution))
            }
            Fault::SlowStream {
                first_token,
                inter_token,
                ..
            } => {
                format!(
                    "slow_stream first {} then {}",
                    d(first_token),
                    d(inter_token)
                )
            }
            Fault::Stall {
                after_chunks,
                stall,
            } => format!("stall {} after {after_chunks} chunks", d(stall)),
            Fault::StreamCut {
                after_chunks,
                after,
            } => match (after_chunks, after) {
                (Some(n), _) => format!("stream_cut after {n} chunks"),
                (None, Some(t)) => format!("stream_cut after {}", d(t)),
                (None, None) => "stream_cut".into(),
            },
            Fault::Malformed { what } => format!("malformed {}", serde_plain(what)),
            Fault::FinishReason { reason } => format!("finish_reason {}", serde_plain(reason)),
            Fault::RateLimit {
                requests_per_minute,
                tokens_per_minute,
            } => {
                let mut label = "rate_limit".to_string();
                if let Some(rpm) = requests_per_minute {
                    label.push_str(&format!(" {rpm} rpm"));
                }
                if let Some(tpm) = tokens_per_minute {
                    label.push_str(&format!(" {tpm} tpm"));
                }
                label
            }
            Fault::RedisError { reply } => {
                format!(
                    "redis_error {}",
                    reply.split_whitespace().next().unwrap_or("")
                )
            }
            other => other.kind().to_string(),
        }
    }
}

/// A unit enum's serde name (`log_normal`), for labels.
fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A fault with its scope: which routes of the fake it touches and on which attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Stable id, so the timeline (or a control API user) can switch this rule off again.
    pub id: usize,
    pub fault: Fault,
    /// Route prefix (`/v1/chat/completions`) or, for Redis, a command (`GET`); `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Share of matching attempts that get the fault, 0.0..=1.0.
    #[serde(default = "one")]
    pub rate: f64,
    /// Only the first N attempts of each client request (grouped by correlation key) get the
    /// fault: `1` fails the first try and lets the retry through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempts: Option<u32>,
}

impl FaultRule {
    fn applies_to(&self, route: &str) -> bool {
        self.route
            .as_deref()
            .is_none_or(|prefix| route.starts_with(prefix) || route.eq_ignore_ascii_case(prefix))
    }
}

/// A fault rule as written on a command line (`faultline fake llm --fault '{…}'`) or posted to
/// the control API: the fault's own JSON with optional `route`, `rate` and `first_attempts`
/// beside `kind`. The scenario parser's rules apply: settings the kind does not read are
/// refused, required ones must be there, and the values obey [`kinds::check`].
pub fn parse_rule(text: &str, id: usize) -> Result<FaultRule, String> {
    #[derive(Deserialize)]
    struct Given {
        #[serde(flatten)]
        fault: Fault,
        route: Option<String>,
        rate: Option<f64>,
        first_attempts: Option<u32>,
    }
    const SCOPE: &[&str] = &["kind", "route", "rate", "first_attempts"];
    let shown = shown_rule(text);
    let hint = || {
        format!(
            "write a JSON fault such as '{{\"kind\":\"status\",\"code\":503,\"retry_after\":\"1s\"}}' \
             (kinds: {})",
            kinds::names().join(", ")
        )
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("--fault {shown}: {e}; {}", hint()))?;
    let Some(object) = value.as_object() else {
        return Err(format!("--fault {shown}: not a JSON object; {}", hint()));
    };
    // Unknown kinds and fields are refused here, by name: `flatten` below would let unknown
    // fields through silently.
    let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let Some(spec) = kinds::spec(kind) else {
        return Err(format!(
            "--fault {shown}: unknown or missing fault kind `{kind}`; {}",
            hint()
        ));
    };
    if let Some(field) = object
        .keys()
        .find(|key| !SCOPE.contains(&key.as_str()) && !spec.settings().any(|s| s == *key))
    {
        let takes: Vec<&str> = spec.settings().collect();
        return Err(format!(
            "--fault {shown}: `{field}` is not a setting of kind `{kind}`, which takes {}; \
             remove `{field}`",
            if takes.is_empty() {
                "no settings".to_string()
            } else {
                takes.join(", ")
            }
        ));
    }
    if let Some(missing) = spec.required.iter().find(|f| !object.contains_key(**f)) {
        return Err(format!(
            "--fault {shown}: kind `{kind}` needs `{missing}`; add e.g. {}",
            kinds::example_setting(missing)
        ));
    }
    let given: Given =
        serde_json::from_value(value).map_err(|e| format!("--fault {shown}: {e}; {}", hint()))?;
    kinds::check(&given.fault).map_err(|why| format!("--fault {shown}: {why}"))?;
    let rate = given.rate.unwrap_or(1.0);
    if !(rate > 0.0 && rate <= 1.0) {
        return Err(format!(
            "--fault {shown}: rate {rate} must be more than 0 and at most 1"
        ));
    }
    Ok(FaultRule {
        id,
        fault: given.fault,
        route: given.route,
        rate,
        first_attempts: given.first_attempts,
    })
}

/// The rule as echoed in an error: cut to a length a terminal line can hold.
fn shown_rule(text: &str) -> String {
    const SHOWN: usize = 200;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The faults a fake injects right now. Shared between the fake (reads) and the timeline or
/// control API (writes).
pub struct Switchboard {
    state: Mutex<State>,
    /// Rules on that [`Switchboard::pick`] could return, so an attempt with none on (most of
    /// a run) skips the lock.
    pickable: AtomicUsize,
    /// True while a `refuse` rule is on; the fake's accept loop watches it to close its port.
    refusing: watch::Sender<bool>,
}

struct State {
    active: Vec<FaultRule>,
    rng: ChaCha8Rng,
    /// Attempts seen per (rule id, correlation key), for `first_attempts`.
    attempts: HashMap<(usize, String), u32>,
}

/// Keys remembered for `first_attempts` per rule; past this the oldest are forgotten (bounded
/// memory over a long soak; a forgotten key's next attempt counts as a first).
const ATTEMPT_KEYS_LIMIT: usize = 100_000;

impl Switchboard {
    /// A switchboard with nothing on, drawing rates from `seed`.
    pub fn new(seed: u64) -> Self {
        Switchboard {
            state: Mutex::new(State {
                active: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                attempts: HashMap::new(),
            }),
            refusing: watch::Sender::new(false),
            pickable: AtomicUsize::new(0),
        }
    }

    /// Turns a rule on (replacing one with the same id).
    pub fn activate(&self, rule: FaultRule) {
        let mut state = self.state.locked();
        let id = rule.id;
        state.active.retain(|r| r.id != id);
        state.attempts.retain(|(rule, _), _| *rule != id);
        state.active.push(rule);
        self.publish_refusing(&state.active);
    }

    /// Turns a rule off; unknown ids are ignored. Returns whether one was on.
    pub fn deactivate(&self, id: usize) -> bool {
        let mut state = self.state.locked();
        let before = state.active.len();
        state.active.retain(|r| r.id != id);
        state.attempts.retain(|(rule, _), _| *rule != id);
        self.publish_refusing(&state.active);
        state.active.len() != before
    }

    /// Turns every rule off.
    pub fn clear(&self) {
        let mut state = self.state.locked();
        state.active.clear();
        state.attempts.clear();
        self.publish_refusing(&state.active);
    }

    /// The rules on now, for control APIs and tests.
    pub fn active(&self) -> Vec<FaultRule> {
        self.state.locked().active.clone()
    }

    /// The fault for one attempt at `route` by the client request `key` (its correlation key,
    /// if the fake found one): the first active rule that matches the route, is within its
    /// `first_attempts` for this key, and wins its rate draw. `Refuse` is not returned here;
    /// watch [`Switchboard::refusing`] instead.
    pub fn pick(&self, route: &str, key: Option<&str>) -> Option<Fault> {
        if self.pickable.load(AtomicOrdering::Acquire) == 0 {
            return None;
        }
        let mut state = self.state.locked();
        let State {
            active,
            rng,
            attempts,
        } = &mut *state;
        for rule in active.iter() {
            if rule.fault == Fault::Refuse || !rule.applies_to(route) {
                continue;
            }
            if let (Some(limit), Some(key)) = (rule.first_attempts, key) {
                if attempts.len() >= ATTEMPT_KEYS_LIMIT {
                    attempts.clear();
                }
                let seen = attempts.entry((rule.id, key.to_string())).or_insert(0);
                *seen += 1;
                if *seen > limit {
                    continue;
                }
            }
            // Draw only for partial rates so a rate of 1.0 does not move the seeded sequence.
            if rule.rate >= 1.0 || (rule.rate > 0.0 && rng.random_bool(rule.rate)) {
                return Some(rule.fault.clone());
            }
        }
        None
    }

    /// One wait drawn from `distribution` around `delay`, from the switchboard's seeded RNG.
    pub fn sample_delay(&self, delay: Duration, distribution: Distribution) -> Duration {
        let mut state = self.state.locked();
        let rng = &mut state.rng;
        match distribution {
            Distribution::Fixed => delay,
            Distribution::Uniform => delay.mul_f64(rng.random_range(0.0..=2.0)),
            Distribution::LogNormal => {
                // Box-Muller: one standard normal draw, then exp(sigma * z) around the median.
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random_range(0.0..1.0);
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                delay.mul_f64((0.5 * z).exp().min(50.0))
            }
        }
    }

    /// A factor in `1 ± jitter`, for inter-token delays.
    pub fn sample_jitter(&self, jitter: f64) -> f64 {
        if jitter <= 0.0 {
            return 1.0;
        }
        let jitter = jitter.min(1.0);
        self.state
            .locked()
            .rng
            .random_range(1.0 - jitter..=1.0 + jitter)
    }

    /// A receiver that reads `true` while the fake must keep its port closed.
    pub fn refusing(&self) -> watch::Receiver<bool> {
        self.refusing.subscribe()
    }

    fn count_pickable(&self, active: &[FaultRule]) {
        let pickable = active.iter().filter(|r| r.fault != Fault::Refuse).count();
        self.pickable.store(pickable, AtomicOrdering::Release);
    }

    fn publish_refusing(&self, active: &[FaultRule]) {
        self.count_pickable(active);
        let refuse = active.iter().any(|r| r.fault == Fault::Refuse);
        self.refusing
            .send_if_modified(|now| std::mem::replace(now, refuse) != refuse);
    }
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// A duration as `"250ms"` (humantime) or integer milliseconds; written as a string.
mod duration {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Millis(u64),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Millis(ms) => Ok(Duration::from_millis(ms)),
            Given::Text(text) => humantime::parse_duration(&text).map_err(|e| {
                de::Error::custom(format!(
                    "`{text}` is not a duration ({e}); write it like \"250ms\" or \"2s\""
                ))
            }),
        }
    }
}

mod opt_duration {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_api_refuses_what_a_scenario_file_refuses() {
        let refused = |text: &str, says: &str| {
            let err = parse_rule(text, 1).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        };
        refused(
            r#"{"kind":"hang","boom":1}"#,
            "`boom` is not a setting of kind `hang`",
        );
        refused(r#"{"kind":"status","code":0}"#, "from 100 to 599");
        refused(r#"{"kind":"status","code":99}"#, "from 100 to 599");
        refused(r#"{"kind":"status","code":600}"#, "from 100 to 599");
        refused(r#"{"kind":"status"}"#, "needs `code`; add e.g. code = 503");
        refused(
            r#"{"kind":"slow_stream","first_token":"1s","inter_token":"10ms","jitter":-3}"#,
            "`jitter` is -3",
        );
        refused(
            r#"{"kind":"slow_stream","first_token":"1s","inter_token":"10ms","jitter":5}"#,
            "`jitter` is 5",
        );
        refused(
            r#"{"kind":"stream_cut"}"#,
            "needs `after_chunks` or `after`",
        );
        refused(
            r#"{"kind":"status","code":429,"retry_after":"584942418y"}"#,
            "at most 365 days",
        );
        refused(r#"{"kind":"nope"}"#, "unknown or missing fault kind `nope`");
        refused(r#"[1]"#, "not a JSON object");
        // The rules the scenario parser has always applied still pass good rules through.
        let rule = parse_rule(
            r#"{"kind":"status","code":429,"retry_after":"2s","route":"/v1","rate":0.5}"#,
            3,
        )
        .unwrap();
        assert_eq!(rule.fault, Fault::status(429, Some(Duration::from_secs(2))));
        assert_eq!((rule.id, rule.rate), (3, 0.5));
        assert!(parse_rule(r#"{"kind":"stream_cut","after":"1s"}"#, 1).is_ok());
    }

    #[test]
    fn a_long_rule_is_echoed_cut() {
        let long = format!(r#"{{"kind":"hang","x":"{}"}}"#, "a".repeat(100_000));
        let err = parse_rule(&long, 1).unwrap_err();
        assert!(err.len() < 1_000, "{} bytes", err.len());
    }

    fn rule(id: usize, fault: Fault, route: Option<&str>, rate: f64) -> FaultRule {
        FaultRule {
            id,
            fault,
            route: route.map(String::from),
            rate,
            first_attempts: None,
        }
    }

    fn busy() -> Fault {
        Fault::status(503, None)
    }

    #[test]
    fn nothing_is_injected_until_a_rule_is_on() {
        let board = Switchboard::new(1);
        assert_eq!(board.pick("/v1/chat/completions", None), None);
        board.activate(rule(0, Fault::Hang, None, 1.0));
        assert_eq!(board.pick("/v1/chat/completions", None), Some(Fault::Hang));
        assert!(board.deactivate(0));
        assert_eq!(board.pick("/v1/chat/completions", None), None);
    }

    #[test]
    fn a_route_scoped_rule_leaves_other_routes_alone() {
        let board = Switchboard::new(1);
        board.activate(rule(0, busy(), Some("/v1/chat"), 1.0));
        assert_eq!(board.pick("/v1/embeddings", None), None);
        assert_eq!(board.pick("/v1/chat/completions", None), Some(busy()));
    }

    #[test]
    fn a_partial_rate_hits_about_that_share_and_repeats_with_the_seed() {
        let draw = |seed| {
            let board = Switchboard::new(seed);
            board.activate(rule(0, Fault::Hang, None, 0.3));
            (0..1000)
                .map(|_| board.pick("/", None).is_some())
                .collect::<Vec<_>>()
        };
        let hits = draw(7).iter().filter(|hit| **hit).count();
        assert!(
            (230..370).contains(&hits),
            "{hits} hits of 1000 at rate 0.3"
        );
        assert_eq!(draw(7), draw(7));
    }

    #[test]
    fn first_attempts_fails_each_request_n_times_then_lets_it_through() {
        let board = Switchboard::new(1);
        board.activate(FaultRule {
            first_attempts: Some(2),
            ..rule(0, busy(), None, 1.0)
        });
        let tries = |key| {
            (0..4)
                .map(|_| board.pick("/", Some(key)).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(tries("fl-00000001"), [true, true, false, false]);
        assert_eq!(tries("fl-00000002"), [true, true, false, false]);
    }

    #[test]
    fn refuse_is_published_on_the_watch_not_picked() {
        let board = Switchboard::new(1);
        let refusing = board.refusing();
        board.activate(rule(3, Fault::Refuse, None, 1.0));
        assert!(*refusing.borrow());
        assert_eq!(board.pick("/", None), None);
        board.clear();
        assert!(!*refusing.borrow());
    }

    #[test]
    fn faults_read_durations_as_text_or_milliseconds_and_reject_unknown_fields() {
        let delay: Fault = serde_json::from_str(r#"{"kind":"delay","delay":"1500ms"}"#).unwrap();
        assert_eq!(
            delay,
            Fault::Delay {
                delay: Duration::from_millis(1500),
                distribution: Distribution::Fixed
            }
        );
        let delay: Fault = serde_json::from_str(r#"{"kind":"delay","delay":250}"#).unwrap();
        assert_eq!(delay.label(), "delay 250ms");
        let written = serde_json::to_string(&busy()).unwrap();
        assert_eq!(written, r#"{"kind":"status","code":503}"#);
        // (serde cannot deny unknown fields on unit variants such as `hang`; the scenario
        // parser checks each kind's fields itself.)
        assert!(
            serde_json::from_str::<Fault>(r#"{"kind":"delay","delay":"1s","code":1}"#).is_err()
        );
    }

    #[test]
    fn a_lognormal_delay_has_the_delay_as_median_and_a_longer_tail() {
        let board = Switchboard::new(3);
        let mut waits: Vec<Duration> = (0..2001)
            .map(|_| board.sample_delay(Duration::from_millis(100), Distribution::LogNormal))
            .collect();
        waits.sort();
        let median = waits[1000].as_millis();
        assert!((85..=115).contains(&median), "median {median} ms");
        assert!(
            waits[1900] > Duration::from_millis(180),
            "p95 {:?}",
            waits[1900]
        );
    }

    #[test]
    fn a_command_line_fault_reads_its_scope_beside_its_kind() {
        let rule = parse_rule(
            r#"{"kind":"status","code":429,"route":"/v1/chat","rate":0.5}"#,
            4,
        )
        .unwrap();
        assert_eq!(rule.fault, Fault::status(429, None));
        assert_eq!(
            (rule.id, rule.route.as_deref(), rule.rate),
            (4, Some("/v1/chat"), 0.5)
        );
        let error = parse_rule(r#"{"kind":"explode"}"#, 0).unwrap_err();
        assert!(error.contains("kinds: refuse, status"), "{error}");
    }

    #[test]
    fn every_kind_in_the_table_reads_as_that_kind_and_obeys_its_rules() {
        for spec in kinds::KINDS {
            let fault: Fault = toml::from_str(spec.example)
                .unwrap_or_else(|e| panic!("{}'s example: {e}", spec.name));
            assert_eq!(fault.kind(), spec.name);
            assert_eq!(kinds::check(&fault), Ok(()), "{}", spec.name);
            // The table's fakes are those the fault itself says it can be acted out by.
            assert_eq!(fault.supported_by(), spec.fakes, "{}", spec.name);
        }
    }
}
