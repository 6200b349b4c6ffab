//! Structured logging for the reference target: one JSON object per line, written whole.
//!
//! Owns the [`LogSink`] seam (stdout in the binary, a channel in tests), the per-request line
//! ([`RequestLine`]) and the pseudonymous user id. Never given the API key or user text unless
//! the `leak-secrets` flaw asks for it; as a second line of defence, string fields of event
//! lines are masked ([`mask_secrets`]): card-number-like digit runs and `password: …` values,
//! since tool arguments and upstream errors can carry user text we did not choose to log.

use crate::sync::LockExt;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;

use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where finished log lines go. Each call gets one complete line without its newline.
pub trait LogSink: Send + Sync + 'static {
    fn write_line(&self, line: &str);
}

/// Writes to stdout. The mutex keeps lines from interleaving; the flush matters because stdout
/// is a pipe to faultline, and a block-buffered pipe would hold lines back until exit.
#[derive(Default)]
pub struct StdoutSink {
    lock: Mutex<()>,
}

impl LogSink for StdoutSink {
    fn write_line(&self, line: &str) {
        let _guard = self.lock.locked();
        let mut out = std::io::stdout().lock();
        // A closed pipe must not take the service down with it: drop the line.
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    }
}

/// For tests: each line becomes a message.
impl LogSink for tokio::sync::mpsc::UnboundedSender<String> {
    fn write_line(&self, line: &str) {
        let _ = self.send(line.to_string());
    }
}

/// The log line written when an `/api/chat` request ends (field names as the lesson has them).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestLine {
    pub level: &'static str,
    pub ts: String,
    pub request_id: String,
    pub route: &'static str,
    /// Whether the answer was streamed (SSE).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    pub model: String,
    pub status: u16,
    pub latency_ms: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_hit: bool,
    pub degraded: bool,
    pub llm_attempts: u32,
    /// LLM calls made by an `/api/agent` request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_steps: Option<u32>,
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// Only under the `leak-secrets` flaw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Only under the `leak-secrets` flaw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Writes lines to the sink, stamping level and time.
#[derive(Clone)]
pub struct Logger {
    sink: Arc<dyn LogSink>,
    /// Off only under `leak-secrets`, whose point is to leak.
    mask: bool,
}

impl Logger {
    pub fn new(sink: Arc<dyn LogSink>) -> Self {
        Logger { sink, mask: true }
    }

    /// A logger that writes string fields as they are (the `leak-secrets` flaw).
    pub fn unmasked(sink: Arc<dyn LogSink>) -> Self {
        Logger { sink, mask: false }
    }

    pub fn request(&self, line: &RequestLine) {
        if let Ok(text) = serde_json::to_string(line) {
            self.sink.write_line(&text);
        }
    }

    /// A line that is not a request summary: `event` says what happened, `fields` the details.
    pub fn event(&self, level: &'static str, event: &str, fields: Value) {
        // Level, time and event first, so a person reading the raw stream sees them first.
        let mut line = format!(
            "{{\"level\":{},\"ts\":{},\"event\":{}",
            Value::from(level),
            Value::from(now_rfc3339()),
            Value::from(event)
        );
        if let Value::Object(map) = fields {
            for (key, mut value) in map {
                if self.mask {
                    mask_value(&key, &mut value);
                }
                line.push(',');
                line.push_str(&Value::from(key).to_string());
                line.push(':');
                line.push_str(&value.to_string());
            }
        }
        line.push('}');
        self.sink.write_line(&line);
    }

    pub fn info(&self, event: &str, fields: Value) {
        self.event("info", event, fields);
    }

    pub fn warn(&self, event: &str, fields: Value) {
        self.event("warn", event, fields);
    }

    pub fn error(&self, event: &str, fields: Value) {
        self.event("error", event, fields);
    }
}

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Turns user names into stable-per-process pseudonyms. SipHash under a random key is a keyed
/// PRF: the id cannot be reversed by hashing guessed names, and means nothing after a restart.
pub struct Pseudonymizer {
    key: RandomState,
}

impl Default for Pseudonymizer {
    fn default() -> Self {
        Pseudonymizer {
            key: RandomState::new(),
        }
    }
}

impl Pseudonymizer {
    pub fn user_id(&self, user: &str) -> String {
        format!("u_{:016x}", self.key.hash_one(user))
    }
}

/// Ids and times are not user text, and a UUID segment can look like a card number.
fn is_id_key(key: &str) -> bool {
    key == "ts" || key.ends_with("Id") || key.ends_with("id") || key.ends_with("Key")
}

fn mask_value(key: &str, value: &mut Value) {
    match value {
        Value::String(text) if !is_id_key(key) => {
            if let std::borrow::Cow::Owned(masked) = mask_secrets(text) {
                *text = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_value(key, v)),
        Value::Object(map) => map.iter_mut().for_each(|(k, v)| mask_value(k, v)),
        _ => {}
    }
}

static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("static regex"));
static PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(password|passwd|pwd|pass)(\\?["']?\s*[:=]\s*\\?["']?)([^\s"'\\,;}]+)"#)
        .expect("static regex")
});

/// Replaces card-number-like digit runs (13-19 digits, spaces or dashes allowed between them,
/// passing the Luhn check) with `[card]` and the value after `password:` / `password=` with
/// `[redacted]`. Borrowed when nothing matched.
pub fn mask_secrets(text: &str) -> std::borrow::Cow<'_, str> {
    let cards = CARD.replace_all(text, |caps: &regex::Captures| {
        let digits: Vec<u32> = caps[0].chars().filter_map(|c| c.to_digit(10)).collect();
        if luhn(&digits) {
            "[card]".to_string()
        } else {
            caps[0].to_string()
        }
    });
    match PASSWORD.replace_all(&cards, "$1$2[redacted]") {
        std::borrow::Cow::Borrowed(_) => cards,
        std::borrow::Cow::Owned(masked) => std::borrow::Cow::Owned(masked),
    }
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Keeps an empty map from being written as `null` by callers that have no fields.
pub fn no_fields() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_lines_are_json_with_level_first() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let logger = Logger::new(Arc::new(tx));
        logger.warn("tool_unavailable", json!({"tool": "weather", "n": 1}));
        let line = rx.try_recv().unwrap();
        assert!(line.starts_with("{\"level\":\"warn\""), "{line}");
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], "tool_unavailable");
        assert_eq!(value["tool"], "weather");
        assert_eq!(value["n"], 1);
    }

    #[test]
    fn card_numbers_and_passwords_are_masked() {
        assert_eq!(
            mask_secrets("card 4111 1111 1111 1111, ok"),
            "card [card], ok"
        );
        assert_eq!(mask_secrets("4111-1111-1111-1111"), "[card]");
        assert_eq!(
            mask_secrets("password: hunter2 and more"),
            "password: [redacted] and more"
        );
        assert_eq!(
            mask_secrets("{\"Password\"=\"s3cret\"}"),
            "{\"Password\"=\"[redacted]\"}"
        );
        // Not a card: fails Luhn; too short.
        assert_eq!(mask_secrets("order 1234567890123"), "order 1234567890123");
        assert_eq!(mask_secrets("latency 1840"), "latency 1840");
    }

    #[test]
    fn event_fields_are_masked_but_ids_are_not() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let logger = Logger::new(Arc::new(tx));
        logger.info(
            "x",
            json!({"requestId": "4111111111111111", "args": {"body": "pay with 4111111111111111"}}),
        );
        let line = rx.try_recv().unwrap();
        assert!(
            line.contains("\"requestId\":\"4111111111111111\""),
            "{line}"
        );
        assert!(line.contains("pay with [card]"), "{line}");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        Logger::unmasked(Arc::new(tx)).info("x", json!({"m": "4111111111111111"}));
        assert!(rx.try_recv().unwrap().contains("4111111111111111"));
    }

    #[test]
    fn user_ids_are_stable_pseudonyms() {
        let p = Pseudonymizer::default();
        let a = p.user_id("alice@example.com");
        assert_eq!(a, p.user_id("alice@example.com"));
        assert_ne!(a, p.user_id("bob@example.com"));
        assert!(!a.contains("alice"));
        assert!(a.starts_with("u_") && a.len() == 18, "{a}");
    }
}
