//! OTLP/JSON trace exports, read from a `serde_json::Value` rather than derived structs: the
//! JSON mapping differs from protobuf's usual one (ids are hex, not base64; 64-bit integers may
//! be strings or numbers; enums are integers), and receivers must accept both lowerCamelCase
//! and the proto's snake_case keys, which is simplest to say field by field.

use serde_json::{json, Map, Value};

use super::{Decoded, SpanRecord, SpanStatus};

/// `obj[camel]`, or `obj[snake]` as older senders write it.
fn field<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

/// An array field (absent is empty); anything else there is an error naming `what`.
fn array<'a>(
    obj: &'a Map<String, Value>,
    camel: &str,
    snake: &str,
    what: &str,
) -> Result<&'a [Value], String> {
    match field(obj, camel, snake) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("`{what}` must be an array, not {other}")),
    }
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("each entry of `{what}` must be an object, not {value}"))
}

/// A 64-bit unsigned integer written as a string or a number.
fn uint(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A hex id of `len` bytes, lowercased; `None` when absent, malformed or all zeros.
fn hex_id(value: Option<&Value>, len: usize) -> Option<String> {
    let text = value?.as_str()?;
    (text.len() == len * 2
        && text.bytes().all(|b| b.is_ascii_hexdigit())
        && text.bytes().any(|b| b != b'0'))
    .then(|| text.to_ascii_lowercase())
}

/// An `AnyValue` object as a plain JSON value.
fn any_value(value: &Value) -> Option<Value> {
    let obj = value.as_object()?;
    if let Some(s) = field(obj, "stringValue", "string_value") {
        return s.as_str().map(|s| json!(s));
    }
    if let Some(b) = field(obj, "boolValue", "bool_value") {
        return b.as_bool().map(|b| json!(b));
    }
    if let Some(i) = field(obj, "intValue", "int_value") {
        return match i {
            Value::String(s) => s.parse::<i64>().ok().map(|i| json!(i)),
            Value::Number(n) => n.as_i64().map(|i| json!(i)),
            _ => None,
        };
    }
    if let Some(d) = field(obj, "doubleValue", "double_value") {
        return match d {
            Value::String(s) => s.parse::<f64>().ok().map(|d| json!(d)),
            other => other.as_f64().map(|d| json!(d)),
        };
    }
    if let Some(a) = field(obj, "arrayValue", "array_value") {
        let items: Vec<Value> = a
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(any_value).collect())
            .unwrap_or_default();
        return Some(json!(Value::Array(items).to_string()));
    }
    if let Some(kv) = field(obj, "kvlistValue", "kvlist_value") {
        let map: Map<String, Value> = kv
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(key_value).collect())
            .unwrap_or_default();
        return Some(json!(Value::Object(map).to_string()));
    }
    // Bytes are base64 in OTLP/JSON; kept as that text.
    field(obj, "bytesValue", "bytes_value").cloned()
}

fn key_value(kv: &Value) -> Option<(String, Value)> {
    let key = kv.get("key")?.as_str()?.to_string();
    Some((key, any_value(kv.get("value")?)?))
}

/// An `ExportTraceServiceRequest` in OTLP/JSON.
pub(super) fn decode_traces(body: &[u8]) -> Result<Decoded, String> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let root = root
        .as_object()
        .ok_or("the body must be a JSON object with `resourceSpans`")?;
    let mut decoded = Decoded {
        spans: Vec::new(),
        rejected: 0,
    };
    for resource_spans in array(root, "resourceSpans", "resource_spans", "resourceSpans")? {
        let resource_spans = object(resource_spans, "resourceSpans")?;
        let service = resource_spans
            .get("resource")
            .and_then(|r| r.get("attributes"))
            .and_then(Value::as_array)
            .and_then(|attrs| {
                attrs
                    .iter()
                    .filter_map(key_value)
                    .find(|(k, _)| k == "service.name")
            })
            .and_then(|(_, v)| v.as_str().map(str::to_string));
        for scope in array(resource_spans, "scopeSpans", "scope_spans", "scopeSpans")? {
            let scope = object(scope, "scopeSpans")?;
            for span in array(scope, "spans", "spans", "spans")? {
                let span = object(span, "spans")?;
                let (Some(trace_id), Some(span_id)) = (
                    hex_id(field(span, "traceId", "trace_id"), 16),
                    hex_id(field(span, "spanId", "span_id"), 8),
                ) else {
                    decoded.rejected += 1;
                    continue;
                };
                let attributes = match field(span, "attributes", "attributes") {
                    Some(Value::Array(attrs)) => attrs.iter().filter_map(key_value).collect(),
                    _ => Default::default(),
                };
                let code = span
                    .get("status")
                    .and_then(|s| s.get("code"))
                    .map_or(0, |c| match c {
                        Value::Number(n) => n.as_i64().unwrap_or(0),
                        Value::String(s) if s == "STATUS_CODE_OK" => 1,
                        Value::String(s) if s == "STATUS_CODE_ERROR" => 2,
                        _ => 0,
                    });
                decoded.spans.push(SpanRecord {
                    at_ms: 0.0,
                    trace_id,
                    span_id,
                    parent_id: hex_id(field(span, "parentSpanId", "parent_span_id"), 8),
                    name: span
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    service: service.clone(),
                    start_unix_nano: uint(field(span, "startTimeUnixNano", "start_time_unix_nano"))
                        .unwrap_or(0),
                    end_unix_nano: uint(field(span, "endTimeUnixNano", "end_time_unix_nano"))
                        .unwrap_or(0),
                    status: SpanStatus::from_code(code),
                    attributes,
                });
            }
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_spans_read_hex_ids_string_integers_and_snake_case_keys() {
        let body = json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [{"spans": [
                {"traceId": "0A".repeat(16), "spanId": "0b".repeat(8), "name": "POST /api/chat",
                 "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000500000000u64,
                 "attributes": [{"key": "request.id", "value": {"stringValue": "r-1"}},
                                {"key": "n", "value": {"intValue": "7"}}],
                 "status": {"code": 2}},
                {"trace_id": "0a".repeat(16), "span_id": "0c".repeat(8),
                 "parent_span_id": "0b".repeat(8), "name": "llm"},
                {"traceId": "xyz", "spanId": "0d".repeat(8)}
            ]}]
        }]});
        let decoded = decode_traces(body.to_string().as_bytes()).unwrap();
        assert_eq!(decoded.rejected, 1);
        let [root, child] = &decoded.spans[..] else {
            panic!("{:?}", decoded.spans)
        };
        assert_eq!(root.trace_id, "0a".repeat(16));
        assert_eq!(root.parent_id, None);
        assert_eq!(root.start_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(root.end_unix_nano, 1_700_000_000_500_000_000);
        assert_eq!(root.status, SpanStatus::Error);
        assert_eq!(root.service.as_deref(), Some("svc"));
        assert_eq!(root.attributes["n"], json!(7));
        assert_eq!(child.parent_id.as_deref(), Some(root.span_id.as_str()));
    }

    #[test]
    fn bodies_of_the_wrong_shape_are_refused_with_the_reason() {
        assert!(decode_traces(b"{").unwrap_err().contains("not JSON"));
        assert!(decode_traces(b"[]").unwrap_err().contains("JSON object"));
        assert!(decode_traces(br#"{"resourceSpans": 3}"#)
            .unwrap_err()
            .contains("must be an array"));
        assert!(
            decode_traces(br#"{"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]}"#)
                .unwrap_err()
                .contains("`spans`")
        );
    }
}
