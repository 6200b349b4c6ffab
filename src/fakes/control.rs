//! The control API: switch faults on and off at runtime and read journals, over HTTP on
//! loopback. The timeline can drive fakes through it, and so can a person with curl while a
//! service runs against `faultline fake llm`.
//!
//! - `GET /faults`: the rules on now, per fake: `{"llm": [rule, …], …}`.
//! - `POST /faults/{fake}`: a rule as `--fault` spells it (`{"kind":"status","code":503,
//!   "rate":0.5}`); the server assigns its id and answers 201 with the rule.
//! - `DELETE /faults/{fake}/{id}`: one rule off (204, or 404 if it was not on).
//! - `DELETE /faults`: every rule of every fake off (204).
//! - `GET /journal/{fake}?since_ms=N`: `{"dropped": n, "oldest_ms": t, "attempts": [...]}`,
//!   attempts that arrived at or after N ms (`oldest_ms`: the oldest attempt still kept), each
//!   as [`crate::evidence::Attempt`] serializes (with `retry_count`, the SDK's
//!   `x-stainless-retry-count`, and `chunks_sent` for streams, when known).
//! - `GET /writes/{fake}?since_ms=N`: `{"writes": [...]}`, the writes a tool fake with a
//!   ledger (tickets) received at or after N ms; 404 for a fake without one.
//! - `GET /clock`: `{"now_ms": t}`, the journals' clock now (ms since the fakes started), so a
//!   client on another clock (an attached `faultline scenario`) can align the journals' times.
//! - `GET /journal/otlp?since_ms=N` (when the OTLP collector is served, see [`otlp_routes`]):
//!   `{"received": n, "dropped": n, "exports": n, "oldest_ms": t, "spans": [...]}`, the
//!   spans a target exported.
//!
//! Loopback only: [`serve`] refuses any other address, since whoever reaches it can break the
//! fakes at will. And since a web page the user has open can reach loopback too, every request
//! passes [`refusal`]: one with an `Origin` header (browsers send it on cross-origin requests) is
//! refused (403), as is one whose `Host` is not loopback (DNS rebinding: a page's own name
//! resolved to 127.0.0.1); a body must be `application/json` (a page can send `text/plain`
//! without asking first, not JSON) (415); and with a token (`--control-token`, or
//! `FAULTLINE_CONTROL_TOKEN`), `Authorization: Bearer TOKEN` is required (401).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use super::fault::{parse_rule, Switchboard};
use super::journal::Journal;
use super::tool::WriteLedger;

/// Ids the control API gives rules start here, far above the ids scenario timelines use, so
/// a rule added by hand never replaces one the timeline manages.
const FIRST_ID: usize = 1 << 20;

/// One fake the control API can steer.
#[derive(Clone)]
pub struct ControlledFake {
    /// The name in URLs: `llm`, `weather`, `redis`.
    pub name: String,
    pub switchboard: Arc<Switchboard>,
    pub journal: Arc<Journal>,
}

struct Control {
    fakes: Vec<ControlledFake>,
    /// Tool fakes that keep a ledger of writes, by name (`tickets`).
    ledgers: Vec<(String, Arc<WriteLedger>)>,
    next_id: AtomicUsize,
}

impl Control {
    fn fake(&self, name: &str) -> Option<&ControlledFake> {
        self.fakes.iter().find(|f| f.name == name)
    }

    /// The 404 for a fake name that is not one of ours, naming those that are.
    fn unknown(&self, name: &str) -> Response {
        let known: Vec<&str> = self.fakes.iter().map(|f| f.name.as_str()).collect();
        problem(
            StatusCode::NOT_FOUND,
            format!("no fake named '{name}'; fakes: {}", known.join(", ")),
        )
    }
}

/// The control API's routes over `fakes`.
pub fn router(fakes: Vec<ControlledFake>) -> Router {
    router_with_ledgers(fakes, Vec::new())
}

/// The control API's routes over `fakes`, with `GET /writes/{name}` for each ledger.
pub fn router_with_ledgers(
    fakes: Vec<ControlledFake>,
    ledgers: Vec<(String, Arc<WriteLedger>)>,
) -> Router {
    let control = Arc::new(Control {
        fakes,
        ledgers,
        next_id: AtomicUsize::new(FIRST_ID),
    });
    Router::new()
        .route("/faults", get(list).delete(clear))
        .route("/faults/{fake}", axum::routing::post(add))
        .route("/faults/{fake}/{id}", delete(remove))
        .route("/journal/{fake}", get(journal))
        .route("/writes/{fake}", get(writes))
        .route("/clock", get(clock))
        .with_state(control)
}

/// Serves the control API on `listener` (which must be on loopback) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    fakes: Vec<ControlledFake>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(fakes), shutdown).await
}

/// Serves `router` (from [`router_with_ledgers`], perhaps merged with [`otlp_routes`]) on
/// `listener`, loopback only, until `shutdown`.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_guarded(listener, router, None, shutdown).await
}

/// The control API a standalone fake (`faultline fake llm`, `fake mcp`) serves beside itself,
/// on a loopback port of its own, for that one fake.
pub struct StandaloneControl {
    /// Where it listens: `http://127.0.0.1:PORT`.
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl StandaloneControl {
    /// Binds loopback `port` (0 picks one) and serves `fake`'s rules and journal there,
    /// requiring `token` when given.
    pub async fn start(
        port: u16,
        fake: ControlledFake,
        token: Option<String>,
    ) -> anyhow::Result<StandaloneControl> {
        use anyhow::Context;
        let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("failed to start the control API on {addr}; pick another --control-port")
        })?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_guarded(listener, router(vec![fake]), token, async {
            let _ = stopped.await;
        }));
        Ok(StandaloneControl { url, stop, task })
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The environment variable that holds the control API's token, for both sides.
pub const TOKEN_ENV: &str = "FAULTLINE_CONTROL_TOKEN";

/// The token given on the command line, else in [`TOKEN_ENV`]; `None` when neither is set.
pub fn token_from(flag: Option<String>) -> Option<String> {
    flag.or_else(|| std::env::var(TOKEN_ENV).ok())
        .filter(|token| !token.trim().is_empty())
}

/// As [`serve_router`], requiring `Authorization: Bearer TOKEN` when `token` is set.
pub async fn serve_guarded(
    listener: TcpListener,
    router: Router,
    token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = Arc::new(token);
    let router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let token = token.clone();
            async move {
                match refusal(&request, token.as_deref()) {
                    None => next.run(request).await,
                    Some(refused) => refused,
                }
            }
        },
    ));
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("the control API serves on loopback only, not {addr}; bind 127.0.0.1"),
        ));
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The answer to a request that may not reach the control API (see the module docs); `None`
/// when it may.
pub fn refusal(request: &axum::extract::Request, token: Option<&str>) -> Option<Response> {
    use axum::http::header;
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        return Some(problem(
            StatusCode::FORBIDDEN,
            format!(
                "requests from a web page (Origin: {}) are refused: the control API is for \
                 faultline and for curl on this machine",
                crate::scenario::echo(&String::from_utf8_lossy(origin.as_bytes()))
            ),
        ));
    }
    let host = headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    if let Some(host) = host.filter(|h| !loopback_host(h)) {
        return Some(problem(
            StatusCode::FORBIDDEN,
            format!(
                "Host {} is not this machine: call the control API as 127.0.0.1, localhost or \
                 [::1]",
                crate::scenario::echo(&host)
            ),
        ));
    }
    if let Some(token) = token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token) {
            return Some(problem(
                StatusCode::UNAUTHORIZED,
                format!(
                    "this control API needs its token: send Authorization: Bearer TOKEN (the \
                     token `faultline fakes up` printed; `scenario --attach` reads it from \
                     {TOKEN_ENV} or --fakes-token)"
                ),
            ));
        }
    }
    let has_body = matches!(
        *request.method(),
        axum::http::Method::POST | axum::http::Method::PUT | axum::http::Method::PATCH
    );
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if has_body && !json {
        return Some(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the rule as JSON with Content-Type: application/json (curl: -H \
             'content-type: application/json')"
                .into(),
        ));
    }
    None
}

/// True for `127.x.y.z`, `localhost` or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn problem(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn list(State(control): State<Arc<Control>>) -> Json<Value> {
    let rules: Map<String, Value> = control
        .fakes
        .iter()
        .map(|f| (f.name.clone(), json!(f.switchboard.active())))
        .collect();
    Json(Value::Object(rules))
}

async fn add(
    State(control): State<Arc<Control>>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let Some(fake) = control.fake(&name) else {
        return control.unknown(&name);
    };
    let id = control.next_id.fetch_add(1, Ordering::Relaxed);
    match parse_rule(&body, id) {
        Ok(rule) => {
            fake.switchboard.activate(rule.clone());
            (StatusCode::CREATED, Json(json!(rule))).into_response()
        }
        Err(message) => problem(StatusCode::BAD_REQUEST, message),
    }
}

async fn remove(
    State(control): State<Arc<Control>>,
    Path((name, id)): Path<(String, usize)>,
) -> Response {
    match control.fake(&name) {
        Some(fake) if fake.switchboard.deactivate(id) => StatusCode::NO_CONTENT.into_response(),
        Some(_) => problem(StatusCode::NOT_FOUND, format!("no rule {id} is on")),
        None => control.unknown(&name),
    }
}

async fn clear(State(control): State<Arc<Control>>) -> StatusCode {
    control.fakes.iter().for_each(|f| f.switchboard.clear());
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Since {
    since_ms: Option<f64>,
}

async fn journal(
    State(control): State<Arc<Control>>,
    Path(name): Path<String>,
    Query(since): Query<Since>,
) -> Response {
    let Some(fake) = control.fake(&name) else {
        return control.unknown(&name);
    };
    let since = since.since_ms.unwrap_or(f64::NEG_INFINITY);
    let all = fake.journal.snapshot();
    // With `dropped` > 0, a reader can tell whether its window lost attempts: only if the
    // oldest one kept arrived after the window began.
    let oldest_ms = all.first().map(|a| a.at_ms);
    let attempts: Vec<_> = all.into_iter().filter(|a| a.at_ms >= since).collect();
    Json(json!({
        "dropped": fake.journal.dropped(),
        "oldest_ms": oldest_ms,
        "attempts": attempts,
    }))
    .into_response()
}

async fn writes(
    State(control): State<Arc<Control>>,
    Path(name): Path<String>,
    Query(since): Query<Since>,
) -> Response {
    let Some((_, ledger)) = control.ledgers.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = control.ledgers.iter().map(|(n, _)| n.as_str()).collect();
        return problem(
            StatusCode::NOT_FOUND,
            format!(
                "no fake named '{name}' keeps a ledger of writes; ledgers: {}",
                known.join(", ")
            ),
        );
    };
    let since = since.since_ms.unwrap_or(f64::NEG_INFINITY);
    let writes: Vec<_> = super::set::write_attempts(&name, ledger)
        .into_iter()
        .filter(|w| w.at_ms >= since)
        .collect();
    Json(json!({ "writes": writes })).into_response()
}

/// The journals' clock now. Every fake of a set shares one epoch, so the first one's will do.
async fn clock(State(control): State<Arc<Control>>) -> Response {
    match control.fakes.first() {
        Some(fake) => {
            let now_ms = fake.journal.offset_ms(std::time::Instant::now());
            Json(json!({ "now_ms": now_ms })).into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "no fake to read a clock from".into()),
    }
}

/// `GET /journal/otlp`: the spans the OTLP collector fake kept. A fixed path, so it wins over
/// `/journal/{fake}` (which would list the collector's export attempts instead).
pub fn otlp_routes(spans: Arc<super::otlp::SpanJournal>) -> Router {
    Router::new()
        .route("/journal/otlp", get(otlp_journal))
        .with_state(spans)
}

async fn otlp_journal(
    State(spans): State<Arc<super::otlp::SpanJournal>>,
    Query(since): Query<Since>,
) -> Json<Value> {
    let since = since.since_ms.unwrap_or(f64::NEG_INFINITY);
    let all = spans.snapshot();
    let oldest_ms = all.first().map(|s| s.at_ms);
    let kept: Vec<_> = all.into_iter().filter(|s| s.at_ms >= since).collect();
    Json(json!({
        "received": spans.received(),
        "dropped": spans.dropped(),
        "attributes_cut": spans.cut(),
        "exports": spans.exports(),
        "oldest_ms": oldest_ms,
        "spans": kept,
    }))
}
