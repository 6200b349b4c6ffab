//! The one table of fault kinds: each kind's name, its settings (required and optional), an
//! example `[[faults]]` table and the fakes that act it out. The scenario parser, its hints,
//! the control API's rule parser, the README's table and the tests all read it, so a new kind
//! is added here once.
//!
//! [`check`] holds the value rules both parsers apply to a fault once it is read (status codes
//! a server may send, jitter a fraction, a cut stream told when to cut, durations bounded).

use std::time::Duration;

use super::Fault;

/// One fault kind, as scenario files and the control API spell it.
#[derive(Debug)]
pub struct KindSpec {
    pub name: &'static str,
    /// What it does, in one line (the README's table).
    pub does: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    /// A whole `[[faults]]` table of this kind (without the window), as TOML.
    pub example: &'static str,
    /// The fakes that act it out: `llm`, `tool` (every HTTP tool fake), `redis`.
    pub fakes: &'static [&'static str],
}

impl KindSpec {
    /// Every setting the kind reads.
    pub fn settings(&self) -> impl Iterator<Item = &'static str> {
        self.required.iter().chain(self.optional).copied()
    }
}

const EVERY: &[&str] = &["llm", "tool", "redis", "mcp"];
const HTTP: &[&str] = &["llm", "tool", "mcp"];
const LLM: &[&str] = &["llm"];
/// Streams: the LLM's SSE and the MCP fake's Streamable HTTP.
const STREAMS: &[&str] = &["llm", "mcp"];
const MCP: &[&str] = &["mcp"];

/// Every fault kind.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "refuse",
        does: "closes the fake's port: connections are refused",
        required: &[],
        optional: &[],
        example: r#"kind = "refuse""#,
        fakes: EVERY,
    },
    KindSpec {
        name: "status",
        does: "answers this HTTP status with the provider's own error body and headers",
        required: &["code"],
        optional: &[
            "retry_after",
            "retry_after_ms",
            "should_retry",
            "error_code",
        ],
        example: r#"kind = "status"
code = 503
retry_after = "2s""#,
        fakes: HTTP,
    },
    KindSpec {
        name: "delay",
        does: "waits, then answers normally",
        required: &["delay"],
        optional: &["distribution"],
        example: r#"kind = "delay"
delay = "2s"
distribution = "log_normal""#,
        fakes: EVERY,
    },
    KindSpec {
        name: "hang",
        does: "accepts the request and never answers",
        required: &[],
        optional: &[],
        example: r#"kind = "hang""#,
        fakes: EVERY,
    },
    KindSpec {
        name: "reset",
        does: "resets the TCP connection instead of answering",
        required: &[],
        optional: &[],
        example: r#"kind = "reset""#,
        fakes: EVERY,
    },
    KindSpec {
        name: "drop",
        does: "closes the connection without a response",
        required: &[],
        optional: &[],
        example: r#"kind = "drop""#,
        fakes: EVERY,
    },
    KindSpec {
        name: "slow_stream",
        does: "streams slowly: a time to first token, then a delay between tokens",
        required: &["first_token", "inter_token"],
        optional: &["jitter"],
        example: r#"kind = "slow_stream"
first_token = "1500ms"
inter_token = "80ms"
jitter = 0.2"#,
        fakes: STREAMS,
    },
    KindSpec {
        name: "stall",
        does: "streams, stalls after some chunks, then goes on",
        required: &["after_chunks", "stall"],
        optional: &[],
        example: r#"kind = "stall"
after_chunks = 5
stall = "3s""#,
        fakes: STREAMS,
    },
    KindSpec {
        name: "stream_cut",
        does: "closes the connection mid-stream after some chunks or some time",
        required: &[],
        optional: &["after_chunks", "after"],
        example: r#"kind = "stream_cut"
after_chunks = 5"#,
        fakes: STREAMS,
    },
    KindSpec {
        name: "malformed",
        does: "answers 200 with a broken body (invalid or truncated JSON, wrong content type) \
               or stream (error frame, no [DONE], no usage, empty choices)",
        required: &["what"],
        optional: &[],
        example: r#"kind = "malformed"
what = "truncated_json""#,
        fakes: HTTP,
    },
    KindSpec {
        name: "finish_reason",
        does: "answers normally but ends with another finish_reason",
        required: &["reason"],
        optional: &[],
        example: r#"kind = "finish_reason"
reason = "length""#,
        fakes: LLM,
    },
    KindSpec {
        name: "tool_loop",
        does: "asks for the same tool call on every turn",
        required: &[],
        optional: &[],
        example: r#"kind = "tool_loop""#,
        fakes: LLM,
    },
    KindSpec {
        name: "invalid_tool_args",
        does: "asks for a tool call whose arguments are not valid JSON",
        required: &[],
        optional: &[],
        example: r#"kind = "invalid_tool_args""#,
        fakes: LLM,
    },
    KindSpec {
        name: "rate_limit",
        does: "per-key request and token buckets: 429s with x-ratelimit-* headers above them",
        required: &[],
        optional: &["requests_per_minute", "tokens_per_minute"],
        example: r#"kind = "rate_limit"
requests_per_minute = 60"#,
        fakes: LLM,
    },
    KindSpec {
        name: "redis_error",
        does: "answers every command with this error reply",
        required: &["reply"],
        optional: &[],
        example: r#"kind = "redis_error"
reply = "LOADING Redis is loading the dataset in memory""#,
        fakes: &["redis"],
    },
    KindSpec {
        name: "rpc_error",
        does: "MCP: a JSON-RPC error (HTTP 200) instead of the result; default code -32603",
        required: &[],
        optional: &["code", "message"],
        example: r#"kind = "rpc_error"
code = -32603
message = "internal error""#,
        fakes: MCP,
    },
    KindSpec {
        name: "tool_error",
        does: "MCP: a `tools/call` result with `isError: true`",
        required: &[],
        optional: &[],
        example: r#"kind = "tool_error""#,
        fakes: MCP,
    },
    KindSpec {
        name: "session_expired",
        does: "MCP: the request's session is forgotten and answered 404",
        required: &[],
        optional: &[],
        example: r#"kind = "session_expired""#,
        fakes: MCP,
    },
    KindSpec {
        name: "tools_changed",
        does: "MCP: the tool list changes and sessions get `notifications/tools/list_changed`",
        required: &[],
        optional: &[],
        example: r#"kind = "tools_changed""#,
        fakes: MCP,
    },
    KindSpec {
        name: "large_result",
        does: "MCP: a `tools/call` result of `bytes` bytes (default 4 MiB)",
        required: &[],
        optional: &["bytes"],
        example: r#"kind = "large_result"
bytes = 4194304"#,
        fakes: MCP,
    },
];

/// The kind named `name`.
pub fn spec(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|kind| kind.name == name)
}

/// Every kind's name, in the table's order.
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|kind| kind.name).collect()
}

/// A good value for a setting, for "add e.g. …" hints: the line of the first example that
/// sets it.
pub fn example_setting(field: &str) -> String {
    KINDS
        .iter()
        .flat_map(|kind| kind.example.lines())
        .find(|line| line.split('=').next().map(str::trim) == Some(field))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{field} = …"))
}

/// Durations above this are refused: no run lasts a year, and the cap keeps arithmetic on
/// them (headers in milliseconds, sleeps) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The value rules every fault obeys, however it was given (scenario file or control API);
/// `Err` says which setting breaks which rule.
pub fn check(fault: &Fault) -> Result<(), String> {
    let bounded = |what: &str, d: &Duration| {
        if *d > MAX_DURATION {
            Err(format!(
                "`{what}` is {}; it must be at most 365 days",
                humantime::format_duration(*d)
            ))
        } else {
            Ok(())
        }
    };
    match fault {
        Fault::Status {
            code, retry_after, ..
        } => {
            if crate::input::http_status(i64::from(*code)).is_none() {
                return Err(format!(
                    "`code` is {code}; it must be an HTTP status from 100 to 599, e.g. 503"
                ));
            }
            if let Some(after) = retry_after {
                bounded("retry_after", after)?;
            }
        }
        Fault::Delay { delay, .. } => bounded("delay", delay)?,
        Fault::SlowStream {
            first_token,
            inter_token,
            jitter,
        } => {
            bounded("first_token", first_token)?;
            bounded("inter_token", inter_token)?;
            if !(0.0..=1.0).contains(jitter) {
                return Err(format!(
                    "`jitter` is {jitter}; it must be from 0 to 1, e.g. 0.2"
                ));
            }
        }
        Fault::Stall { stall, .. } => bounded("stall", stall)?,
        Fault::StreamCut {
            after_chunks,
            after,
        } => {
            if after_chunks.is_none() && after.is_none() {
                return Err(
                    "kind `stream_cut` needs `after_chunks` or `after` (or both), e.g. \
                     after_chunks = 5"
                        .into(),
                );
            }
            if let Some(after) = after {
                bounded("after", after)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The README's table of kinds (between its `fault-kinds` markers; a test keeps it in sync).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| kind | what it does | settings (required in bold) | fakes | example |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for kind in KINDS {
        let settings: Vec<String> = kind
            .required
            .iter()
            .map(|s| format!("**`{s}`**"))
            .chain(kind.optional.iter().map(|s| format!("`{s}`")))
            .collect();
        let example: Vec<&str> = kind.example.lines().collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | `{}` |\n",
            kind.name,
            kind.does,
            if settings.is_empty() {
                "—".to_string()
            } else {
                settings.join(", ")
            },
            kind.fakes.join(", "),
            example.join("`<br>`")
        ));
    }
    out
}
