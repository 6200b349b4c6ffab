//! The control API: switch faults on and off at runtime and read journals, over HTTP on
//! loopback. The timeline can drive fakes through it, and so can a person with curl while a
//! service runs against `faultline fake llm`.
//!
//! - `GET /faults`: the rules on now, per fake: `{"llm": [rule, …], …}`.
//! - `POST /faults/{fake}`: a rule as `--fault` spells it (`{"kind":"status","code":503,
//!   "rate":0.5}`); the server assigns its id and answers 201 with the rule.
//! - `DELETE /faults/{fake}/{id}`: one rule off (204, or 404 if it was not on).
//! - `DELETE /faults`: every rule of every fake off (204).
//! - `GET /journal/{fake}?since_ms=N`: `{"dropped": n, "attempts": [...]}`, attempts that
//!   arrived at or after N ms, each as [`crate::fakes::journal::Attempt`] serializes (with
//!   `retry_count`, the SDK's `x-stainless-retry-count`, and `chunks_sent` for streams, when
//!   known).
//!
//! Loopback only: [`serve`] refuses any other address, since whoever reaches it can break the
//! fakes at will.

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
    let control = Arc::new(Control {
        fakes,
        next_id: AtomicUsize::new(FIRST_ID),
    });
    Router::new()
        .route("/faults", get(list).delete(clear))
        .route("/faults/{fake}", axum::routing::post(add))
        .route("/faults/{fake}/{id}", delete(remove))
        .route("/journal/{fake}", get(journal))
        .with_state(control)
}

/// Serves the control API on `listener` (which must be on loopback) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    fakes: Vec<ControlledFake>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("the control API serves on loopback only, not {addr}; bind 127.0.0.1"),
        ));
    }
    axum::serve(listener, router(fakes))
        .with_graceful_shutdown(shutdown)
        .await
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
    let attempts: Vec<_> = fake
        .journal
        .snapshot()
        .into_iter()
        .filter(|a| a.at_ms >= since)
        .collect();
    Json(json!({ "dropped": fake.journal.dropped(), "attempts": attempts })).into_response()
}
