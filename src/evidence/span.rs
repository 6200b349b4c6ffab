//! One span the target exported, as the OTLP collector fake received it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One span as the collector received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// Milliseconds from the run's start to when the export carrying it arrived.
    pub at_ms: f64,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id; `None` for a root span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub name: String,
    /// The resource's `service.name`, if it set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub status: SpanStatus,
    /// String, integer, float and boolean attributes as JSON values; arrays, maps and bytes
    /// as their JSON (or hex) text.
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
}

impl SpanRecord {
    /// The attribute `key` as text (numbers and booleans written out), if the span has it.
    pub fn attribute_text(&self, key: &str) -> Option<String> {
        match self.attributes.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// A span's status code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error,
}
