//! askbot: a small axum chat service, the kind faultline is built to test, written with the
//! usual Rust crates (async-openai, redis-rs, tracing, prometheus, OpenTelemetry) and its own
//! conventions. See README.md.
//!
//! # Layout
//! - `config`: environment variables and the planted defects (`EXAMPLE_DEFECTS`).
//! - `telemetry`: JSON logs, OTLP traces, Prometheus metrics.
//! - `llm`: the LLM call: retries with jitter, per-attempt spans, deadline, circuit breaker.
//! - `tools`: the Redis cache, the weather tool, the tickets API.
//! - `routes`: the HTTP API.
//!
//! Usage: `askbot --listen 127.0.0.1:8080`.

mod config;
mod llm;
mod routes;
mod telemetry;
mod tools;

use std::sync::Arc;

use anyhow::Context;
use axum::routing::{get, post};
use axum::Router;

pub struct App {
    config: config::Config,
    llm: llm::Llm,
    cache: Option<tools::Cache>,
    http: reqwest::Client,
    metrics: Arc<telemetry::Metrics>,
}

fn main() -> anyhow::Result<()> {
    let listen = listen_address()?;
    let config = config::Config::from_env()?;
    let provider = telemetry::init()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(serve(listen, config));
    // Flush the spans still batched, outside the runtime (the exporter's client is blocking).
    drop(runtime);
    if let Some(provider) = provider {
        let _ = provider.shutdown();
    }
    served
}

fn listen_address() -> anyhow::Result<String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--listen"), Some(addr)) => Ok(addr),
        (None, None) => Ok(format!(
            "127.0.0.1:{}",
            std::env::var("PORT").unwrap_or_else(|_| "8080".into())
        )),
        _ => anyhow::bail!("usage: askbot [--listen 127.0.0.1:PORT]"),
    }
}

async fn serve(listen: String, config: config::Config) -> anyhow::Result<()> {
    let metrics = Arc::new(telemetry::Metrics::new());
    let cache = config
        .redis_url
        .as_deref()
        .map(tools::Cache::new)
        .transpose()?;
    let app = Arc::new(App {
        llm: llm::Llm::new(&config, metrics.clone())?,
        cache,
        http: reqwest::Client::new(),
        metrics,
        config,
    });
    let router = Router::new()
        .route("/api/v2/ask", post(routes::ask))
        .route("/api/v2/tickets", post(routes::tickets))
        .route("/metrics", get(routes::metrics))
        .route("/healthz", get(routes::healthz))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            routes::track,
        ))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(event = "listening", addr = %listen, defects = ?app.config.defects, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!(event = "shutdown", "shutting down");
        })
        .await?;
    Ok(())
}
