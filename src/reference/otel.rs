//! Spans (embed, retrieve, cache, tool_weather, tool_tickets, llm_call under one root span per
//! request) exported as OTLP/HTTP JSON to `{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces` when that
//! variable is set.
//!
//! Hand-written over the reqwest client the service already has, instead of the
//! `opentelemetry` crates: their OTLP exporter pulls in a second reqwest major version (goose
//! pins 0.13), which builds twice and breaks `GooseUser::set_client_builder`. The wire format
//! is small: resourceSpans → scopeSpans → spans with hex ids and unix-nano times.
//!
//! Finished spans go into a bounded channel with `try_send` (a full channel drops spans, never
//! blocks a request); a background task batches them and posts every `OTEL_BSP_SCHEDULE_DELAY`
//! or every [`BATCH_MAX`] spans, and at once when [`Tracer::flush`] asks (on shutdown, so the
//! last requests' spans are not lost).
//!
//! Each LLM attempt (retries included) becomes an `llm_attempt` span with the GenAI and HTTP
//! semantic-convention attributes `gen_ai.operation.name` and `http.request.resend_count`, so
//! retries show in the trace (see [`Trace::record`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::log::Logger;

/// Spans per export request, at most.
const BATCH_MAX: usize = 512;
/// Spans waiting for export, at most; more are dropped.
const QUEUE_MAX: usize = 8192;

/// One finished span.
#[derive(Debug, Clone)]
struct SpanData {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'static str,
    server: bool,
    start: u64,
    end: u64,
    attributes: Vec<(&'static str, Value)>,
    error: bool,
}

/// What the exporter task is told: a finished span, or to send what it holds now.
enum Message {
    Span(SpanData),
    Flush(oneshot::Sender<()>),
}

/// Hands finished spans to the exporter; a no-op when no endpoint is configured.
#[derive(Clone)]
pub struct Tracer {
    tx: Option<mpsc::Sender<Message>>,
}

impl Tracer {
    pub fn disabled() -> Tracer {
        Tracer { tx: None }
    }

    /// Starts the background exporter (needs a tokio runtime).
    pub fn start(endpoint: &str, service_name: &str, interval: Duration, log: Logger) -> Tracer {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        let url = format!("{endpoint}/v1/traces");
        tokio::spawn(export_loop(
            rx,
            url,
            service_name.to_string(),
            interval,
            log,
        ));
        Tracer { tx: Some(tx) }
    }

    /// Sends the spans waiting for export now and waits (at most `limit`) until the collector
    /// has answered.
    pub async fn flush(&self, limit: Duration) {
        let Some(tx) = &self.tx else {
            return;
        };
        let (done, sent) = oneshot::channel();
        let _ = tokio::time::timeout(limit, async {
            if tx.send(Message::Flush(done)).await.is_ok() {
                let _ = sent.await;
            }
        })
        .await;
    }

    /// A new trace for one request, whose root span is named `name`.
    pub fn trace(&self, name: &'static str) -> Trace {
        let mut rng = rand::rng();
        Trace {
            tracer: self.clone(),
            root: Span {
                tracer: self.clone(),
                data: SpanData {
                    trace_id: rng.random(),
                    span_id: rng.random(),
                    parent: None,
                    name,
                    server: true,
                    start: now_nanos(),
                    end: 0,
                    attributes: vec![],
                    error: false,
                },
                ended: false,
            },
        }
    }
}

/// One request's trace: the root span, and children made with [`Trace::span`]. Dropping it
/// ends the root span.
pub struct Trace {
    tracer: Tracer,
    root: Span,
}

impl Trace {
    pub fn span(&self, name: &'static str) -> Span {
        Span {
            tracer: self.tracer.clone(),
            data: SpanData {
                trace_id: self.root.data.trace_id,
                span_id: rand::rng().random(),
                parent: Some(self.root.data.span_id),
                name,
                server: false,
                start: now_nanos(),
                end: 0,
                attributes: vec![],
                error: false,
            },
            ended: false,
        }
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.root.set(key, value);
    }

    pub fn fail(&mut self) {
        self.root.data.error = true;
    }

    /// A child span that already ended: `start`/`end` in unix nanoseconds. For work timed
    /// where no trace was at hand (LLM attempts inside the client's retry loop).
    pub fn record(
        &self,
        name: &'static str,
        start: u64,
        end: u64,
        attributes: Vec<(&'static str, Value)>,
        error: bool,
    ) {
        let mut span = self.span(name);
        span.data.start = start;
        span.data.attributes = attributes;
        span.data.error = error;
        span.ended = true;
        if let Some(tx) = &self.tracer.tx {
            span.data.end = end.max(start);
            let _ = tx.try_send(Message::Span(span.data.clone()));
        }
    }
}

/// A span in progress; ends when dropped (or at [`Span::end`]).
pub struct Span {
    tracer: Tracer,
    data: SpanData,
    ended: bool,
}

impl Span {
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.data.attributes.push((key, value.into()));
    }

    /// Marks the span failed (status ERROR).
    pub fn fail(&mut self) {
        self.data.error = true;
    }

    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if let Some(tx) = &self.tracer.tx {
            self.data.end = now_nanos().max(self.data.start);
            let _ = tx.try_send(Message::Span(self.data.clone()));
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Now, in unix nanoseconds.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn export_loop(
    mut rx: mpsc::Receiver<Message>,
    url: String,
    service_name: String,
    interval: Duration,
    log: Logger,
) {
    let http = reqwest::Client::new();
    let mut batch: Vec<SpanData> = Vec::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Log a failing collector once per streak of failures, not once per batch.
    let mut failing = false;
    loop {
        let mut flushed = None;
        let closed = tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Span(span)) => {
                    batch.push(span);
                    if batch.len() < BATCH_MAX {
                        continue;
                    }
                    false
                }
                Some(Message::Flush(done)) => {
                    flushed = Some(done);
                    false
                }
                None => true,
            },
            _ = tick.tick() => false,
        };
        if !batch.is_empty() {
            let body = encode(&service_name, &batch);
            batch.clear();
            let sent = http
                .post(&url)
                .json(&body)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => failing = false,
                outcome if !failing => {
                    failing = true;
                    let reason = match outcome {
                        Ok(r) => format!("status {}", r.status().as_u16()),
                        Err(e) => e.to_string(),
                    };
                    log.warn("otlp_export_failed", json!({"url": url, "reason": reason}));
                }
                _ => {}
            }
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// The OTLP/JSON `ExportTraceServiceRequest` for `spans`.
fn encode(service_name: &str, spans: &[SpanData]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": hex(&s.trace_id),
                "spanId": hex(&s.span_id),
                "name": s.name,
                // 2 SERVER for the request, 3 CLIENT for calls out.
                "kind": if s.server { 2 } else { 3 },
                "startTimeUnixNano": s.start.to_string(),
                "endTimeUnixNano": s.end.to_string(),
                "attributes": s.attributes.iter().map(|(k, v)| json!({"key": k, "value": any_value(v)})).collect::<Vec<_>>(),
                "status": {"code": if s.error { 2 } else { 1 }},
            });
            if let Some(parent) = s.parent {
                span["parentSpanId"] = json!(hex(&parent));
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": service_name}},
            ]},
            "scopeSpans": [{
                "scope": {"name": "faultline.reference", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    })
}

fn any_value(v: &Value) -> Value {
    match v {
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_u64() || n.is_i64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        Value::String(s) => json!({"stringValue": s}),
        other => json!({"stringValue": other.to_string()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_follows_the_otlp_json_shape() {
        let span = SpanData {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            name: "embed",
            server: false,
            start: 10,
            end: 20,
            attributes: vec![("http.status_code", json!(200))],
            error: false,
        };
        let body = encode("svc", &[span]);
        let s = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "01".repeat(16));
        assert_eq!(s["spanId"], "02".repeat(8));
        assert_eq!(s["parentSpanId"], "03".repeat(8));
        assert_eq!(s["startTimeUnixNano"], "10");
        assert_eq!(s["attributes"][0]["value"]["intValue"], "200");
        assert_eq!(
            body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
    }
}
