//! The OTLP collector fake over real HTTP: OTLP/JSON as the reference target sends it,
//! protobuf (gzip) built from the prost messages, bad bodies, and the official OpenTelemetry
//! Python exporter pointed at `{otlp}` through OTEL_EXPORTER_OTLP_ENDPOINT, read back through
//! the control API's `GET /journal/otlp`.
//!
//! The Python interpreter is `FAULTLINE_PYTHON`, else `<repo>/.venv/bin/python` (provisioned
//! by scripts/provision/python.sh from tests/python/requirements-otlp.txt).

mod common;

use common::{client, get_json};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::fault::Switchboard;
use faultline::fakes::journal::Journal;
use faultline::fakes::otlp::{
    self, any_value, AnyValue, ExportTraceServiceRequest, KeyValue, ProtoSpan, ResourceSpans,
    ScopeSpans, SpanJournal, SpanStatus,
};
use faultline::fakes::set::FakeSet;
use faultline::fakes::FakeHandle;
use prost::Message;
use serde_json::{json, Value};

async fn collector() -> (FakeHandle, Arc<SpanJournal>) {
    let epoch = Instant::now();
    let spans = Arc::new(SpanJournal::new(epoch, 1000));
    let fake = otlp::start_on(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Switchboard::new(1)),
        Arc::new(Journal::new(epoch, 1000)),
        spans.clone(),
    )
    .await
    .expect("the collector starts");
    (fake, spans)
}

#[tokio::test]
async fn json_traces_as_the_reference_target_sends_them_are_kept() {
    let (fake, spans) = collector().await;
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ref"}}]},
        "scopeSpans": [{"scope": {"name": "faultline.reference"}, "spans": [
            {"traceId": "ab".repeat(16), "spanId": "01".repeat(8), "name": "/api/chat",
             "kind": 2, "startTimeUnixNano": "100", "endTimeUnixNano": "200",
             "attributes": [{"key": "request.id", "value": {"stringValue": "req-9"}},
                            {"key": "http.status_code", "value": {"intValue": "200"}}],
             "status": {"code": 1}},
            {"traceId": "ab".repeat(16), "spanId": "02".repeat(8), "parentSpanId": "01".repeat(8),
             "name": "llm_attempt", "startTimeUnixNano": "110", "endTimeUnixNano": "150",
             "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]}
        ]}]
    }]});
    let response = client()
        .post(format!("{}/v1/traces", fake.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));

    let kept = spans.snapshot();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].service.as_deref(), Some("ref"));
    assert_eq!(
        kept[0].attribute_text("request.id").as_deref(),
        Some("req-9")
    );
    assert_eq!(kept[0].attributes["http.status_code"], json!(200));
    assert_eq!(kept[0].status, SpanStatus::Ok);
    assert_eq!(kept[1].parent_id.as_deref(), Some(kept[0].span_id.as_str()));
    assert_eq!((kept[1].start_unix_nano, kept[1].end_unix_nano), (110, 150));
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

fn protobuf_export(span_ids: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: span_ids
                    .iter()
                    .map(|id| ProtoSpan {
                        trace_id: vec![7; 16],
                        // A span id of 7 bytes is invalid: the spec's partial success.
                        span_id: vec![*id; if *id == 0xee { 7 } else { 8 }],
                        name: "embed".into(),
                        start_time_unix_nano: 5,
                        end_time_unix_nano: 9,
                        attributes: vec![string_attr("request.id", "req-1")],
                        ..ProtoSpan::default()
                    })
                    .collect(),
            }],
        }],
    }
}

#[tokio::test]
async fn gzipped_protobuf_is_kept_and_answered_in_protobuf_with_partial_success() {
    let (fake, spans) = collector().await;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&protobuf_export(&[1, 2, 0xee]).encode_to_vec())
        .unwrap();
    let response = client()
        .post(format!("{}/v1/traces", fake.base_url()))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gzip.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let bytes = response.bytes().await.unwrap();
    // ExportTraceServiceResponse { partial_success { rejected_spans: 1, error_message } }:
    // field 1 (a message) holding field 1 (varint 1) first.
    assert_eq!(&bytes[..1], &[0x0a], "{bytes:?}");
    assert_eq!(&bytes[2..4], &[0x08, 0x01], "{bytes:?}");

    let ids: Vec<String> = spans.snapshot().into_iter().map(|s| s.span_id).collect();
    assert_eq!(ids, ["01".repeat(8), "02".repeat(8)]);
    assert_eq!(spans.received(), 2);
}

#[tokio::test]
async fn bad_bodies_get_a_400_saying_why_and_metrics_and_logs_are_accepted() {
    let (fake, spans) = collector().await;
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        client()
            .post(format!("{}{path}", fake.base_url()))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = post("/v1/traces", "application/json", b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["message"].as_str().unwrap().contains("not JSON"),
        "{problem}"
    );
    let response = post("/v1/traces", "application/x-protobuf", vec![0xff; 6])
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = post("/v1/traces", "text/plain", b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = client()
        .post(format!("{}/v1/traces", fake.base_url()))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(b"not gzip".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    for path in ["/v1/metrics", "/v1/logs"] {
        let response = post(
            path,
            "application/json",
            br#"{"resourceMetrics": []}"#.to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    assert_eq!(
        post("/v2/traces", "application/json", b"{}".to_vec())
            .await
            .unwrap()
            .status(),
        404
    );
    assert!(spans.snapshot().is_empty());
}

#[tokio::test]
async fn the_official_python_exporter_sends_spans_to_otlp_and_the_control_api_shows_them() {
    let fakes = FakeSet::start(3, Instant::now(), None, None).await.unwrap();
    let endpoint = fakes.placeholders(0)["{otlp}"].clone();
    assert!(
        fakes
            .service_env()
            .contains(&("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone())),
        "fakes env names the collector"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    let routes = faultline::fakes::control::router(fakes.controlled()).merge(
        faultline::fakes::control::otlp_routes(fakes.span_journal().clone()),
    );
    tokio::spawn(faultline::fakes::control::serve_router(
        listener,
        routes,
        std::future::pending(),
    ));

    let run = common::python_script("otlp_exporter.py")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the exporter finishes within 120 s")
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let journal = get_json(&format!("{control_url}/journal/otlp")).await;
    assert_eq!(journal["received"], 3, "{journal:#}");
    assert_eq!(journal["dropped"], 0);
    let spans = journal["spans"].as_array().unwrap();
    let root = spans
        .iter()
        .find(|s| s["parent_id"].is_null())
        .expect("a root span");
    assert_eq!(root["name"], "POST /api/chat");
    assert_eq!(root["service"], "py-otlp-test");
    assert_eq!(root["attributes"]["request.id"], "py-req-1");
    let attempts: Vec<&Value> = spans
        .iter()
        .filter(|s| s["attributes"]["gen_ai.operation.name"] == "chat")
        .collect();
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        assert_eq!(attempt["trace_id"], root["trace_id"]);
        assert_eq!(attempt["parent_id"], root["span_id"]);
    }
    assert_eq!(attempts[0]["status"], "error");
    assert_eq!(attempts[1]["attributes"]["http.request.resend_count"], 1);
    // The exports are not upstream attempts: they stay out of the run's evidence of calls.
    assert!(fakes.attempts().is_empty());
    fakes.shutdown().await;
}
