//! The reference target: `faultline reference-target`, a small RAG chat service for a fictional
//! help desk that follows every practice faultline checks, with `--flaw` switches that each
//! break one (negative controls: a check that cannot fail them proves nothing).
//!
//! # Layout
//! - this file: [`ReferenceArgs`], [`serve`] / [`serve_with`] / [`Server`], routes, readiness
//!   (the corpus is embedded once at startup; `/healthz` answers 503 until then), shutdown.
//! - `config`: [`Config`], from environment variables only.
//! - `request`: request ids, the one log line per request, failures and honest error bodies.
//! - `chat`: `POST /api/chat` (cache → embed → retrieve → weather → LLM → cache).
//! - `stream`: the SSE relay for `"stream": true`.
//! - `agent`: `POST /api/agent`, the bounded tool-calling loop.
//! - `tickets`: `POST /api/tickets` and the tickets tool (idempotency keys, safe retries).
//! - `llm_client`: embeddings and chat completions (plain, tools, streamed) with timeouts,
//!   retries with backoff, the retry budget and the circuit breaker.
//! - `responses_api`: OpenAI's Responses API (`LLM_API=responses`), turns chained by
//!   `previous_response_id`; `bedrock`: Bedrock's Converse (`LLM_API=bedrock`). Both retry
//!   through `llm_client`'s loop.
//! - `mcp`: the agent's MCP client (`MCP_SERVER_URL`), one session, tools listed again on
//!   `notifications/tools/list_changed`.
//! - `circuit`: the circuit breaker and the retry budget.
//! - `cache`: the Redis answer cache (redis-rs), bounded and skippable.
//! - `rag`: the corpus and cosine top-k retrieval.
//! - `tool`: the weather tool call.
//! - `metrics`: `GET /admin/metrics` (JSON) and `GET /metrics` (Prometheus text).
//! - `otel`: spans exported as OTLP/HTTP JSON.
//! - `log`: JSON log lines, masking, and the [`LogSink`] seam.
//! - `crate::flaws`: [`Flaw`], the vocabulary shared with scenarios (it lives outside this
//!   module so that parsing a scenario needs nothing of the reference target).

mod agent;
mod bedrock;
mod cache;
mod chat;
mod circuit;
mod config;
use crate::flaws;
mod llm_client;
mod llm_error;
mod log;
mod mcp;
mod metrics;
mod otel;
mod rag;
mod request;
mod responses_api;
mod stream;
mod tickets;
mod tool;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use cache::cache_key;
pub use chat::BANNER_LIVE_DATA_UNAVAILABLE;
pub use config::{Config, ConfigError, ENV_VARS};
pub use flaws::{Flaw, Flaws};
pub use llm_client::RetryPolicy;
pub use log::{mask_secrets, LogSink, StdoutSink};
pub use request::sanitize_request_id;

use cache::Cache;
use circuit::CircuitBreaker;
use llm_client::{CallStats, LlmClient, Traffic};
use log::{Logger, Pseudonymizer};
use mcp::McpClient;
use metrics::Metrics;
use otel::Tracer;
use rag::{Corpus, Index};
use tickets::TicketsTool;
use tool::WeatherTool;

/// How long shutdown waits for requests in flight before abandoning them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Embedding attempts per corpus chunk at startup (each itself retried by the LLM client).
const INDEX_TRIES: u32 = 5;

/// Run the reference chat service. Configured by environment variables only: PORT,
/// OPENAI_BASE_URL and OPENAI_API_KEY (required), LLM_MODEL, WEATHER_API_URL, TICKETS_API_URL,
/// REDIS_URL, REDIS_TIMEOUT_MS, CACHE_TTL_SECS, LLM_TIMEOUT_MS, TOOL_TIMEOUT_MS,
/// LLM_MAX_RETRIES, RETRY_BUDGET_RATIO, RETRY_BUDGET_MIN, CIRCUIT_FAILURE_THRESHOLD,
/// CIRCUIT_COOLDOWN_MS, AGENT_MAX_STEPS, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_BSP_SCHEDULE_DELAY,
/// OTEL_SERVICE_NAME, FAULTLINE_CORPUS, LLM_API, AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
/// AWS_BEARER_TOKEN_BEDROCK, MCP_SERVER_URL.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ReferenceArgs {
    /// Break one practice on purpose (repeatable), to prove faultline's checks catch it.
    #[arg(long = "flaw", value_enum)]
    pub flaws: Vec<Flaw>,
    /// Print each flaw with the practice it breaks, and exit.
    #[arg(long)]
    pub list_flaws: bool,
}

/// Each flaw with the practice it breaks, one per line (`--list-flaws`).
pub fn flaw_list() -> String {
    flaws::list()
}

/// Runs the reference target configured from the environment until SIGTERM or SIGINT.
pub async fn serve(args: ReferenceArgs) -> anyhow::Result<()> {
    if args.list_flaws {
        print!("{}", flaws::list());
        return Ok(());
    }
    let config = Config::from_env()?;
    serve_with(config, args.flaws, shutdown_signal()).await
}

/// Runs the reference target until `shutdown` completes.
pub async fn serve_with(
    config: Config,
    flaws: Vec<Flaw>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::bind(config, flaws).await?.run(shutdown).await
}

/// State shared by every handler.
pub(crate) struct App {
    config: Config,
    flaws: Flaws,
    product: String,
    llm: LlmClient,
    weather: WeatherTool,
    tickets: TicketsTool,
    /// The agent's tools come from this MCP server when MCP_SERVER_URL is set.
    mcp: Option<McpClient>,
    /// `None` without REDIS_URL.
    cache: Option<Cache>,
    breaker: Arc<CircuitBreaker>,
    tracer: Tracer,
    /// Set once the corpus is embedded; until then the service is not ready.
    index: OnceLock<Index>,
    metrics: Arc<Metrics>,
    log: Logger,
    pseudonyms: Pseudonymizer,
}

impl App {
    fn weather_configured(&self) -> bool {
        self.config.weather_api_url.is_some()
    }
}

/// A bound, not yet running target: bind first, so callers (tests) can learn the port.
pub struct Server {
    listener: TcpListener,
    app: Arc<App>,
    corpus: Corpus,
}

impl Server {
    /// Loads the corpus and binds `127.0.0.1:PORT`.
    pub async fn bind(config: Config, flaws: Vec<Flaw>) -> anyhow::Result<Server> {
        let corpus = Corpus::load(config.corpus_path.as_deref())?;
        let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (PORT={})", config.port))?;
        let flaws = Flaws::new(flaws);
        let log = if flaws.has(Flaw::LeakSecrets) {
            Logger::unmasked(config.log_sink.clone())
        } else {
            Logger::new(config.log_sink.clone())
        };
        let metrics = Arc::new(Metrics::new(flaws.has(Flaw::LyingMetrics)));
        let breaker = Arc::new(
            CircuitBreaker::new(
                "chat",
                (!flaws.has(Flaw::NoCircuitBreaker)).then_some(config.circuit_failure_threshold),
                config.circuit_cooldown,
                log.clone(),
            )
            .restarting_cooldown_on_reject(flaws.has(Flaw::StuckBreaker)),
        );
        let cache = match &config.redis_url {
            None => None,
            Some(url) => Some(
                Cache::new(url, config.cache_ttl, config.redis_timeout)
                    .map_err(|e| anyhow::anyhow!("REDIS_URL is not a usable Redis URL: {e}"))?,
            ),
        };
        let tracer = match &config.otlp_endpoint {
            Some(endpoint) => Tracer::start(
                endpoint,
                &config.service_name,
                config.otlp_interval,
                log.clone(),
            ),
            None => Tracer::disabled(),
        };
        let app = App {
            llm: LlmClient::new(
                &config,
                &flaws,
                metrics.clone(),
                log.clone(),
                breaker.clone(),
            ),
            weather: WeatherTool::new(config.weather_api_url.clone(), config.tool_timeout),
            tickets: TicketsTool::new(
                config.tickets_api_url.clone(),
                config.tool_timeout,
                flaws.has(Flaw::RetryWrites),
                log.clone(),
            ),
            mcp: config.mcp_server_url.clone().map(|url| {
                McpClient::new(
                    url,
                    config.tool_timeout,
                    flaws.has(Flaw::IgnoreListChanged),
                    log.clone(),
                )
            }),
            cache,
            breaker,
            tracer,
            product: corpus.product.clone(),
            index: OnceLock::new(),
            pseudonyms: Pseudonymizer::default(),
            config,
            flaws,
            metrics,
            log,
        };
        Ok(Server {
            listener,
            app: Arc::new(app),
            corpus,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting and gives requests in flight
    /// [`SHUTDOWN_GRACE`] to finish. Fails if the corpus cannot be indexed.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            listener,
            app,
            corpus,
        } = self;
        log_startup(&app, listener.local_addr()?);

        // A watch rather than `shutdown` itself: `run` must see the signal too, to start the
        // grace timer, while axum stops accepting on its copy.
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut axum_stop = stop_rx.clone();
        let serving = axum::serve(listener, router(app.clone()))
            .with_graceful_shutdown(async move {
                let _ = axum_stop.wait_for(|stop| *stop).await;
            })
            .into_future();
        tokio::pin!(serving);
        tokio::pin!(shutdown);

        // Indexing runs beside the server (so `/healthz` can say 503 meanwhile) and only
        // finishes the select when it fails.
        let indexing = async {
            match index_corpus(&app, corpus).await {
                Ok(()) => std::future::pending().await,
                Err(err) => err,
            }
        };

        tokio::select! {
            result = &mut serving => {
                return result.context("the HTTP server stopped unexpectedly");
            }
            () = &mut shutdown => {
                app.log.info("shutdown", json!({"graceMs": SHUTDOWN_GRACE.as_millis() as u64}));
            }
            err = indexing => {
                app.log.error("index_failed", json!({"reason": err.to_string()}));
                let _ = stop_tx.send(true);
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut serving).await;
                return Err(err);
            }
        }

        let _ = stop_tx.send(true);
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut serving).await {
            Ok(result) => result.context("the HTTP server failed while shutting down")?,
            Err(_) => app.log.warn(
                "shutdown_abandoned_requests",
                json!({"graceMs": SHUTDOWN_GRACE.as_millis() as u64}),
            ),
        }
        // The last requests' spans, before the process goes.
        app.tracer.flush(Duration::from_secs(2)).await;
        app.log.info("stopped", log::no_fields());
        Ok(())
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(chat::ROUTE, post(chat::handle))
        .route(agent::ROUTE, post(agent::handle))
        .route(tickets::ROUTE, post(tickets::handle))
        .route("/admin/metrics", get(admin_metrics))
        .route("/metrics", get(prometheus_metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(app)
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.index.get() {
        Some(index) => Json(json!({"status": "ok", "chunks": index.len()})).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
            .into_response(),
    }
}

async fn admin_metrics(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.metrics.snapshot(app.breaker.state()))
}

async fn prometheus_metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.prometheus(app.breaker.state()),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "Not found."}))).into_response()
}

/// Embeds every chunk (one call each, the simplest request any OpenAI-compatible provider
/// accepts), retrying each a few times, then marks the service ready.
async fn index_corpus(app: &App, corpus: Corpus) -> anyhow::Result<()> {
    let mut entries = Vec::with_capacity(corpus.chunks.len());
    for chunk in corpus.chunks {
        let text = format!("{}: {}", chunk.title, chunk.text);
        let mut tries = 0;
        let vector = loop {
            tries += 1;
            let mut stats = CallStats::default();
            match app
                .llm
                .embed(&text, Some("startup-index"), Traffic::Startup, &mut stats)
                .await
            {
                Ok(vector) => break vector,
                Err(err) if tries < INDEX_TRIES => {
                    let wait = Duration::from_millis(500 * 2u64.pow(tries - 1))
                        .min(Duration::from_secs(4));
                    app.log.warn(
                        "index_retry",
                        json!({"chunk": chunk.id, "try": tries, "reason": err.kind(), "waitMs": wait.as_millis() as u64}),
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(err) => anyhow::bail!(
                    "indexing the corpus failed: chunk {:?} could not be embedded in {tries} tries \
                     (last: {}); check OPENAI_BASE_URL and OPENAI_API_KEY",
                    chunk.id,
                    err.kind()
                ),
            }
        };
        entries.push((chunk, vector));
    }
    let index = Index::new(entries);
    let chunks = index.len();
    let _ = app.index.set(index);
    app.log.info("ready", json!({"chunks": chunks}));
    Ok(())
}

fn log_startup(app: &App, addr: SocketAddr) {
    let c = &app.config;
    app.log.info(
        "starting",
        json!({
            "addr": addr.to_string(),
            "model": c.model,
            "llmTimeoutMs": c.llm_timeout.as_millis() as u64,
            "toolTimeoutMs": c.tool_timeout.as_millis() as u64,
            "llmMaxRetries": c.llm_max_retries,
            "weather": if c.weather_api_url.is_some() { "configured" } else { "not configured: weather questions answer degraded" },
            "tickets": if c.tickets_api_url.is_some() { "configured" } else { "not configured: /api/tickets answers 503" },
            "agentMaxSteps": c.agent_max_steps,
            "llmApi": format!("{:?}", c.llm_api),
            "mcp": if c.mcp_server_url.is_some() { "configured: the agent's tools are the MCP server's" } else { "off" },
            "circuitFailureThreshold": c.circuit_failure_threshold,
            "circuitCooldownMs": c.circuit_cooldown.as_millis() as u64,
            "otlp": c.otlp_endpoint.as_deref().unwrap_or("off"),
        }),
    );
    if c.redis_url.is_some() {
        app.log.info(
            "cache_enabled",
            json!({"ttlSecs": c.cache_ttl.as_secs(), "timeoutMs": c.redis_timeout.as_millis() as u64}),
        );
    } else {
        app.log
            .info("cache_disabled", json!({"reason": "REDIS_URL is not set"}));
    }
    if !app.flaws.is_empty() {
        let names: Vec<&str> = app.flaws.iter().map(Flaw::name).collect();
        app.log.warn("flaws_enabled", json!({"flaws": names}));
    }
}

/// SIGTERM (how supervisors stop us) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            // No handler, no SIGTERM to wait for: SIGINT still works.
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
