//! The OTLP collector fake: an OTLP/HTTP receiver on loopback that keeps the spans a target
//! exports, so checks can see what its traces show (`traces.per_request`). A target finds it
//! through `OTEL_EXPORTER_OTLP_ENDPOINT = "{otlp}"`; the official exporters then post to
//! `{otlp}/v1/traces`.
//!
//! - `POST /v1/traces`: `ExportTraceServiceRequest` as `application/x-protobuf` (the default
//!   of the official Python, JS and Go exporters) or `application/json` (OTLP/JSON: hex ids,
//!   lowerCamelCase keys, 64-bit integers as strings), gzip-compressed or not. Spans go into a
//!   bounded [`SpanJournal`]; the answer is the spec's `ExportTraceServiceResponse` in the
//!   request's encoding (empty on full success, `partialSuccess` naming spans with bad ids).
//! - `POST /v1/metrics`, `POST /v1/logs`: accepted and answered with success; only checked to
//!   be readable in their encoding, not kept.
//! - A body that cannot be read gets 400 with a `google.rpc.Status` saying why; an unknown
//!   content type 415; any other path 404.
//!
//! It runs on the same serving loop as the other HTTP fakes, so the control API can inject
//! faults into it too (an exporter that meets a 503 should retry, not crash the service); the
//! attempts it journals stay out of the run's upstream attempts, which are the calls users
//! wait on.

mod json;
mod proto;

use crate::sync::LockExt;
use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use prost::Message;

use serde_json::{json, Value};

use super::fault::Switchboard;
use super::http::{self, Reply, Request, Responder};
use super::journal::{Journal, Spooler};
use super::{FakeError, FakeHandle};

pub use crate::evidence::{SpanRecord, SpanStatus};
pub use proto::{
    any_value, AnyValue, ExportTraceServiceRequest, KeyValue, Resource, ResourceSpans, ScopeSpans,
    Span as ProtoSpan, Status as ProtoStatus,
};

/// A decompressed body above this is refused: a gzip bomb must not grow the fake.
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

impl SpanStatus {
    fn from_code(code: i64) -> SpanStatus {
        match code {
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }
}

/// Longest attribute value (or span name) kept, in bytes; longer ones are cut and counted.
/// Trace checks read ids, routes and counts, never a 10 MB prompt.
pub const MAX_ATTRIBUTE_BYTES: usize = 4 * 1024;
/// Most attributes kept per span (the OpenTelemetry SDKs' default span limit).
pub const MAX_ATTRIBUTES: usize = 128;
/// Most bytes of spans kept (roughly: names, ids and attribute text); past it the oldest go.
pub const MAX_JOURNAL_BYTES: usize = 64 * 1024 * 1024;

/// A bounded record of the spans received, like [`Journal`] for attempts: past `capacity`
/// spans or [`MAX_JOURNAL_BYTES`] the oldest go and [`SpanJournal::dropped`] counts them;
/// attribute values are cut at [`MAX_ATTRIBUTE_BYTES`] ([`SpanJournal::cut`]); the counters
/// are exact.
pub struct SpanJournal {
    epoch: Instant,
    capacity: usize,
    entries: Mutex<(VecDeque<(usize, SpanRecord)>, usize)>,
    received: AtomicU64,
    dropped: AtomicU64,
    cut: AtomicU64,
    exports: AtomicU64,
    /// Where every span also goes, for the run's evidence (see `fakes::journal`).
    spooler: Option<Arc<Spooler<SpanRecord>>>,
}

/// Cuts `text` to at most `max` bytes on a character boundary; true when it did.
fn cut_text(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    true
}

/// Bounds one span's names and attributes; returns its approximate size and the cuts made.
fn bound_span(span: &mut SpanRecord) -> (usize, u64) {
    let mut cuts = u64::from(cut_text(&mut span.name, MAX_ATTRIBUTE_BYTES));
    if let Some(service) = &mut span.service {
        cuts += u64::from(cut_text(service, MAX_ATTRIBUTE_BYTES));
    }
    if span.attributes.len() > MAX_ATTRIBUTES {
        cuts += (span.attributes.len() - MAX_ATTRIBUTES) as u64;
        let extra: Vec<String> = span
            .attributes
            .keys()
            .skip(MAX_ATTRIBUTES)
            .cloned()
            .collect();
        for key in extra {
            span.attributes.remove(&key);
        }
    }
    let mut size = 128 + span.name.len() + span.service.as_ref().map_or(0, String::len);
    let keys: Vec<String> = span.attributes.keys().cloned().collect();
    for key in keys {
        let Some(value) = span.attributes.get_mut(&key) else {
            continue;
        };
        match value {
            Value::String(text) => cuts += u64::from(cut_text(text, MAX_ATTRIBUTE_BYTES)),
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
            _ => {
                let mut text = value.to_string();
                if cut_text(&mut text, MAX_ATTRIBUTE_BYTES) {
                    cuts += 1;
                    *value = Value::String(text);
                }
            }
        }
        size += key.len().min(MAX_ATTRIBUTE_BYTES)
            + 16
            + match value {
                Value::String(text) => text.len(),
                _ => 16,
            };
    }
    // Keys are cut too: a 10 MB key is as heavy as a 10 MB value.
    let long_keys: Vec<String> = span
        .attributes
        .keys()
        .filter(|k| k.len() > MAX_ATTRIBUTE_BYTES)
        .cloned()
        .collect();
    for key in long_keys {
        if let Some(value) = span.attributes.remove(&key) {
            let mut short = key;
            cut_text(&mut short, MAX_ATTRIBUTE_BYTES);
            span.attributes.insert(short, value);
            cuts += 1;
        }
    }
    (size, cuts)
}

impl SpanJournal {
    /// A journal whose `at_ms` offsets count from `epoch` (the run's start).
    pub fn new(epoch: Instant, capacity: usize) -> Self {
        SpanJournal {
            epoch,
            capacity: capacity.max(1),
            entries: Mutex::new((VecDeque::new(), 0)),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            exports: AtomicU64::new(0),
            spooler: None,
        }
    }

    /// A journal that also streams every span into `spooler`: the ring then only serves the
    /// control API.
    pub fn spooling(epoch: Instant, capacity: usize, spooler: Arc<Spooler<SpanRecord>>) -> Self {
        SpanJournal {
            spooler: Some(spooler),
            ..SpanJournal::new(epoch, capacity)
        }
    }

    /// Keeps one export's spans, stamped with its arrival time.
    fn record(&self, arrived: Instant, spans: Vec<SpanRecord>) {
        let at_ms = arrived.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0;
        self.exports.fetch_add(1, Ordering::Relaxed);
        self.received
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        let mut guard = self.entries.locked();
        let (entries, bytes) = &mut *guard;
        for mut span in spans {
            span.at_ms = at_ms;
            let (size, cuts) = bound_span(&mut span);
            self.cut.fetch_add(cuts, Ordering::Relaxed);
            if let Some(spooler) = self.spooler.as_ref().filter(|s| s.is_on()) {
                spooler.push(span.clone());
            }
            while !entries.is_empty()
                && (entries.len() >= self.capacity || *bytes + size > MAX_JOURNAL_BYTES)
            {
                if let Some((old, _)) = entries.pop_front() {
                    *bytes -= old;
                }
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            *bytes += size;
            entries.push_back((size, span));
        }
    }

    /// A copy of the spans kept now, in arrival order.
    pub fn snapshot(&self) -> Vec<SpanRecord> {
        let guard = self.entries.locked();
        guard.0.iter().map(|(_, span)| span.clone()).collect()
    }

    /// Attribute values, keys and names cut at [`MAX_ATTRIBUTE_BYTES`] (and attributes past
    /// [`MAX_ATTRIBUTES`] left out).
    pub fn cut(&self) -> u64 {
        self.cut.load(Ordering::Relaxed)
    }

    /// Approximate bytes of the spans kept now (at most [`MAX_JOURNAL_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.entries.locked().1
    }

    /// Spans received in all, kept or not.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// How many of the oldest spans were pushed out by the bound.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Trace export requests accepted.
    pub fn exports(&self) -> u64 {
        self.exports.load(Ordering::Relaxed)
    }

    /// Waits until no export has arrived for `quiet` (or `limit` passed), so spans a target
    /// flushed while stopping are in before they are read.
    pub async fn settle(&self, quiet: Duration, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut last = self.exports();
        while Instant::now() < deadline {
            tokio::time::sleep(quiet).await;
            let now = self.exports();
            if now == last {
                return;
            }
            last = now;
        }
    }
}

/// The two encodings OTLP/HTTP allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    fn of(request: &Request) -> Option<Encoding> {
        let content_type = request.header("content-type").unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Encoding::Json),
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Protobuf => "application/x-protobuf",
        }
    }
}

/// What one `/v1/traces` body held.
#[derive(Debug)]
struct Decoded {
    spans: Vec<SpanRecord>,
    /// Spans refused for ids of the wrong length (the spec's partial success).
    rejected: u64,
}

/// The body, gunzipped if `content-encoding` says so.
fn inflate(request: &Request) -> Result<Bytes, String> {
    match request
        .header("content-encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => Ok(request.body.clone()),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&request.body[..])
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("the gzip body could not be inflated: {e}"))?;
            if out.len() as u64 > MAX_INFLATED {
                return Err(format!(
                    "the gzip body inflates past {MAX_INFLATED} bytes; send smaller batches"
                ));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(format!(
            "content-encoding `{other}` is not supported; send gzip or no compression"
        )),
    }
}

/// Decodes an export body as the collector does (`protobuf`, else OTLP/JSON) into the spans
/// it would keep: the entry point of the decoders' fuzz test (tests/fuzz_parsers.rs).
pub fn decode_export(body: &[u8], protobuf: bool) -> Result<Vec<SpanRecord>, String> {
    let encoding = if protobuf {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    decode_traces(body, encoding).map(|decoded| decoded.spans)
}

fn decode_traces(body: &[u8], encoding: Encoding) -> Result<Decoded, String> {
    match encoding {
        Encoding::Json => json::decode_traces(body),
        Encoding::Protobuf => {
            let request = ExportTraceServiceRequest::decode(body).map_err(|e| {
                format!("the body is not a protobuf ExportTraceServiceRequest: {e}")
            })?;
            Ok(from_proto(request))
        }
    }
}

/// Hex of an id of `len` bytes; `None` when it has another length (all-zero ids included,
/// which the spec calls invalid).
fn hex_id(bytes: &[u8], len: usize) -> Option<String> {
    (bytes.len() == len && bytes.iter().any(|b| *b != 0))
        .then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn from_proto(request: ExportTraceServiceRequest) -> Decoded {
    let mut decoded = Decoded {
        spans: Vec::new(),
        rejected: 0,
    };
    for resource_spans in request.resource_spans {
        let service = resource_spans.resource.as_ref().and_then(|r| {
            r.attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
        });
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            let (Some(trace_id), Some(span_id)) =
                (hex_id(&span.trace_id, 16), hex_id(&span.span_id, 8))
            else {
                decoded.rejected += 1;
                continue;
            };
            decoded.spans.push(SpanRecord {
                at_ms: 0.0,
                trace_id,
                span_id,
                parent_id: hex_id(&span.parent_span_id, 8),
                name: span.name,
                service: service.clone(),
                start_unix_nano: span.start_time_unix_nano,
                end_unix_nano: span.end_time_unix_nano,
                status: SpanStatus::from_code(span.status.map_or(0, |s| s.code as i64)),
                attributes: span
                    .attributes
                    .into_iter()
                    .filter_map(|kv| Some((kv.key, proto_value(kv.value?)?)))
                    .collect(),
            });
        }
    }
    decoded
}

fn proto_value(value: AnyValue) -> Option<Value> {
    use any_value::Value as V;
    Some(match value.value? {
        V::StringValue(s) => json!(s),
        V::BoolValue(b) => json!(b),
        V::IntValue(i) => json!(i),
        V::DoubleValue(d) => json!(d),
        V::BytesValue(b) => json!(b.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        V::ArrayValue(a) => {
            json!(Value::Array(a.values.into_iter().filter_map(proto_value).collect()).to_string())
        }
        V::KvlistValue(kv) => json!(Value::Object(
            kv.values
                .into_iter()
                .filter_map(|kv| Some((kv.key, proto_value(kv.value?)?)))
                .collect()
        )
        .to_string()),
    })
}

/// The responder behind the collector fake.
struct Collector {
    spans: Arc<SpanJournal>,
}

impl Collector {
    fn export(&self, request: &Request, signal: Signal) -> Reply {
        let Some(encoding) = Encoding::of(request) else {
            return failure(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content-type `{}` is not an OTLP encoding; send application/x-protobuf or \
                     application/json",
                    request.header("content-type").unwrap_or("")
                ),
            );
        };
        let body = match inflate(request) {
            Ok(body) => body,
            Err(message) => return failure(encoding, StatusCode::BAD_REQUEST, message),
        };
        let rejected = match signal {
            Signal::Traces => match decode_traces(&body, encoding) {
                Ok(decoded) => {
                    self.spans.record(request.arrival, decoded.spans);
                    decoded.rejected
                }
                Err(message) => return failure(encoding, StatusCode::BAD_REQUEST, message),
            },
            // Accepted without being kept: only checked to be readable.
            Signal::Other(what) => {
                let readable = match encoding {
                    Encoding::Json => serde_json::from_slice::<Value>(&body)
                        .map(|v| v.is_object())
                        .unwrap_or(false),
                    Encoding::Protobuf => {
                        prost::encoding::decode_varint(&mut &body[..]).is_ok() || body.is_empty()
                    }
                };
                if !readable {
                    return failure(
                        encoding,
                        StatusCode::BAD_REQUEST,
                        format!("the body is not a readable OTLP {what} export"),
                    );
                }
                0
            }
        };
        success(encoding, rejected)
    }
}

#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Other(&'static str),
}

/// The spec's success answer: an empty export response, or a partial success naming the
/// spans refused.
fn success(encoding: Encoding, rejected: u64) -> Reply {
    let partial = (rejected > 0).then(|| proto::PartialSuccess {
        rejected: rejected as i64,
        error_message: format!(
            "{rejected} spans had a trace id that is not 16 bytes or a span id that is not 8"
        ),
    });
    let body = match encoding {
        Encoding::Protobuf => Bytes::from(
            proto::ExportResponse {
                partial_success: partial,
            }
            .encode_to_vec(),
        ),
        Encoding::Json => Bytes::from(
            match partial {
                Some(p) => json!({"partialSuccess": {"rejectedSpans": p.rejected.to_string(),
                                                      "errorMessage": p.error_message}}),
                None => json!({}),
            }
            .to_string(),
        ),
    };
    reply(encoding, StatusCode::OK, body)
}

/// A failed export: `google.rpc.Status` in the request's encoding.
fn failure(encoding: Encoding, status: StatusCode, message: String) -> Reply {
    // 3 INVALID_ARGUMENT for bad bodies, 14 UNAVAILABLE for injected outages.
    let code = if status.is_client_error() { 3 } else { 14 };
    let body = match encoding {
        Encoding::Protobuf => Bytes::from(proto::RpcStatus { code, message }.encode_to_vec()),
        Encoding::Json => Bytes::from(json!({"code": code, "message": message}).to_string()),
    };
    reply(encoding, status, body)
}

fn reply(encoding: Encoding, status: StatusCode, body: Bytes) -> Reply {
    let mut reply = Reply::json(status, &Value::Null);
    reply.headers.clear();
    reply.body = body;
    reply.with_header("content-type", encoding.content_type())
}

impl Responder for Collector {
    fn answer(&self, request: &Request) -> Reply {
        let signal = match request.uri.path() {
            "/v1/traces" => Signal::Traces,
            "/v1/metrics" => Signal::Other("metrics"),
            "/v1/logs" => Signal::Other("logs"),
            path => {
                return failure(
                    Encoding::Json,
                    StatusCode::NOT_FOUND,
                    format!("no OTLP route {path}; POST /v1/traces, /v1/metrics or /v1/logs"),
                )
            }
        };
        if request.method != Method::POST {
            return failure(
                Encoding::Json,
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} {}: OTLP exports are POSTed",
                    request.method, request.uri
                ),
            );
        }
        self.export(request, signal)
    }

    fn fault_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        let encoding = Encoding::of(request).unwrap_or(Encoding::Json);
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
        failure(encoding, status, reason).with_retry_after(retry_after)
    }
}

/// Starts the collector fake on `addr` (port 0 for any free one); spans go to `spans`, the
/// export attempts themselves to `journal`.
pub async fn start_on(
    addr: SocketAddr,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
    spans: Arc<SpanJournal>,
) -> Result<FakeHandle, FakeError> {
    http::serve_on(addr, "otlp", Collector { spans }, switchboard, journal).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto_span(trace: u8, span: u8, parent: Option<u8>) -> ProtoSpan {
        ProtoSpan {
            trace_id: vec![trace; 16],
            span_id: vec![span; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: "llm_attempt".into(),
            kind: 3,
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            attributes: vec![
                KeyValue {
                    key: "request.id".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("r-1".into())),
                    }),
                },
                KeyValue {
                    key: "http.request.resend_count".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(2)),
                    }),
                },
            ],
            status: Some(ProtoStatus {
                message: String::new(),
                code: 2,
            }),
        }
    }

    #[test]
    fn protobuf_spans_keep_ids_parent_status_and_attributes() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("svc".into())),
                        }),
                    }],
                }),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![proto_span(1, 2, Some(3)), proto_span(0, 2, None)],
                }],
            }],
        };
        let decoded = decode_traces(&request.encode_to_vec(), Encoding::Protobuf).unwrap();
        assert_eq!(decoded.rejected, 1, "an all-zero trace id is invalid");
        let span = &decoded.spans[0];
        assert_eq!(span.trace_id, "01".repeat(16));
        assert_eq!(span.parent_id.as_deref(), Some("0303030303030303"));
        assert_eq!(span.service.as_deref(), Some("svc"));
        assert_eq!(span.status, SpanStatus::Error);
        assert_eq!(span.attribute_text("request.id").as_deref(), Some("r-1"));
        assert_eq!(span.attributes["http.request.resend_count"], json!(2));
    }

    #[test]
    fn a_full_journal_drops_the_oldest_and_counts_exactly() {
        let journal = SpanJournal::new(Instant::now(), 2);
        let decoded = from_proto(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: (1..=3).map(|i| proto_span(1, i, None)).collect(),
                }],
            }],
        });
        journal.record(Instant::now(), decoded.spans);
        assert_eq!(journal.received(), 3);
        assert_eq!(journal.dropped(), 1);
        assert_eq!(journal.exports(), 1);
        let kept: Vec<String> = journal.snapshot().into_iter().map(|s| s.span_id).collect();
        assert_eq!(kept, ["02".repeat(8), "03".repeat(8)]);
    }

    #[test]
    fn huge_attributes_are_cut_and_the_journal_is_bounded_by_bytes() {
        let journal = SpanJournal::new(Instant::now(), 1_000_000);
        let huge = "x".repeat(10 * 1024 * 1024);
        for _ in 0..20 {
            let mut decoded = from_proto(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: None,
                    scope_spans: vec![ScopeSpans {
                        scope: None,
                        spans: vec![proto_span(1, 1, None)],
                    }],
                }],
            });
            decoded.spans[0]
                .attributes
                .insert("prompt".into(), Value::String(huge.clone()));
            journal.record(Instant::now(), decoded.spans);
        }
        assert_eq!(journal.cut(), 20);
        let kept = journal.snapshot();
        assert_eq!(kept.len(), 20);
        assert!(kept[0].attribute_text("prompt").unwrap().len() <= MAX_ATTRIBUTE_BYTES + 3);
        assert!(journal.bytes() < 20 * (MAX_ATTRIBUTE_BYTES + 1024));
    }

    #[test]
    fn the_journal_drops_the_oldest_spans_past_its_byte_bound() {
        let journal = SpanJournal::new(Instant::now(), usize::MAX);
        let value = "y".repeat(MAX_ATTRIBUTE_BYTES);
        let per_span = MAX_ATTRIBUTE_BYTES + 100;
        let spans = MAX_JOURNAL_BYTES / per_span + 100;
        for _ in 0..spans / 100 + 1 {
            let mut decoded = from_proto(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: None,
                    scope_spans: vec![ScopeSpans {
                        scope: None,
                        spans: (1..=100).map(|i| proto_span(1, i, None)).collect(),
                    }],
                }],
            });
            for span in &mut decoded.spans {
                span.attributes
                    .insert("v".into(), Value::String(value.clone()));
            }
            journal.record(Instant::now(), decoded.spans);
        }
        assert!(journal.bytes() <= MAX_JOURNAL_BYTES);
        assert!(journal.dropped() > 0);
        assert_eq!(
            journal.dropped() + journal.snapshot().len() as u64,
            journal.received()
        );
    }

    #[test]
    fn a_body_that_is_no_protobuf_export_is_an_error() {
        let err = decode_traces(b"\xff\xff\xff\xff", Encoding::Protobuf).err();
        assert!(err
            .unwrap()
            .contains("not a protobuf ExportTraceServiceRequest"));
    }
}
