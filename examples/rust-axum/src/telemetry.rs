//! Logs, traces and metrics: `tracing` events as JSON lines on stdout, the same spans exported
//! over OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and `prometheus`
//! counters served at `GET /metrics`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Sets up logging and tracing. Call before the async runtime starts: the OTLP exporter's
/// blocking HTTP client must not be built (or dropped) inside it.
pub fn init() -> anyhow::Result<Option<SdkTracerProvider>> {
    // One flat JSON object per event: fields at the top level, beside "level" and "message".
    let json = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_filter(EnvFilter::try_from_env("ASKBOT_LOG").unwrap_or_else(|_| "info".into()));
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            // The exporter reads the endpoint (and the processor OTEL_BSP_*) from the environment.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?;
            let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "askbot".into());
            Some(
                SdkTracerProvider::builder()
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name(service)
                            .build(),
                    )
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
        _ => None,
    };
    // Only spans reach the exporter: the request's and each LLM attempt's.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("askbot"))
            .with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_span()))
    });
    tracing_subscriber::registry().with(json).with(otel).init();
    Ok(provider)
}

/// The service's counters.
pub struct Metrics {
    pub registry: Registry,
    /// Every upstream attempt at the LLM that failed, retries included (faultline:
    /// counts = "attempts").
    pub llm_attempt_failures: IntCounter,
    /// Tokens the provider reported, by kind ("prompt", "completion").
    pub tokens: IntCounterVec,
    pub requests: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let llm_attempt_failures = IntCounter::new(
            "askbot_llm_attempt_failures_total",
            "LLM attempts that failed (an error status, no answer, or an unreadable answer), retries included",
        )
        .expect("valid metric");
        let tokens = IntCounterVec::new(
            Opts::new(
                "askbot_llm_tokens_total",
                "Tokens the LLM provider reported",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let requests = IntCounterVec::new(
            Opts::new(
                "askbot_requests_total",
                "Requests answered, by route and status",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        for kind in ["prompt", "completion"] {
            tokens.with_label_values(&[kind]);
        }
        for metric in [
            Box::new(llm_attempt_failures.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tokens.clone()),
            Box::new(requests.clone()),
        ] {
            registry.register(metric).expect("unique metric");
        }
        Metrics {
            registry,
            llm_attempt_failures,
            tokens,
            requests,
        }
    }

    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
