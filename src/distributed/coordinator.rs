//! The coordinator's side of the protocol: it serves the clock, the plan, heartbeats and
//! results (see [`super::protocol`]), releases the load at one instant for every worker, then
//! waits until each worker has reported or is lost, and hands the run the merged load.
//!
//! The rest of the run (fakes, target, timeline, judging, reports) is [`crate::run`]'s, in
//! this process: only the coordinator switches faults.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{oneshot, watch, Notify};

use super::local::LocalWorkers;
use super::merge::{self, Ending};
use super::protocol::{self, Beat, Clock, Heartbeat, Join, WireLoad, WorkPlan};
use crate::evidence::PhaseSpan;
use crate::load::{self, LoadSpec, Share};
use crate::scenario::Executor;
use crate::sync::LockExt;

/// How long after the plan is served the load starts: workers poll for it every 100 ms and
/// build their HTTP client (tens of milliseconds) before it.
const LEAD: Duration = Duration::from_millis(1000);
/// A worker that has sent no heartbeat for this long is lost. Workers beat every second; five
/// missed beats is far beyond a busy node's scheduling delays.
const LOST_AFTER: Duration = Duration::from_secs(5);
/// How long after the load's end (and its drain) workers have to upload their records.
const UPLOAD_GRACE: Duration = Duration::from_secs(30);
/// Results bodies up to this size: the record store's cap plus room for the header.
const MAX_RESULTS_BYTES: usize =
    (crate::evidence::RecordStore::DEFAULT_CAP_BYTES as usize) + (8 << 20);

/// How a coordinator is set up.
pub struct Setup {
    pub listen: SocketAddr,
    pub token: String,
    pub count: usize,
    /// The largest share of the load the run may lose and still be judged.
    pub max_lost_share: f64,
    /// How long workers have to join once the target is ready.
    pub join_timeout: Duration,
    /// Say on stderr when the load is released.
    pub progress: bool,
}

/// A running coordinator: its HTTP server, and its local workers if it started any.
pub struct Coordinator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    max_lost_share: f64,
    join_timeout: Duration,
    progress: bool,
    local: Mutex<Option<LocalWorkers>>,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct Shared {
    token: String,
    epoch: Instant,
    count: usize,
    state: Mutex<Roster>,
    changed: Notify,
}

#[derive(Default)]
struct Roster {
    plan: Option<WorkPlan>,
    stop: bool,
    slots: Vec<Slot>,
}

#[derive(Default)]
struct Slot {
    joined: bool,
    last_seen: Option<Instant>,
    requests: u64,
    failures: u64,
    reported: Option<(protocol::WorkerResult, bytes::Bytes)>,
    lost: Option<String>,
}

impl Slot {
    fn settled(&self) -> bool {
        self.reported.is_some() || self.lost.is_some()
    }
}

impl Coordinator {
    /// Binds `setup.listen` and serves the protocol until [`Coordinator::shutdown`].
    pub async fn start(setup: Setup) -> Result<Coordinator, String> {
        let listener = tokio::net::TcpListener::bind(setup.listen)
            .await
            .map_err(|e| {
                format!(
                    "the coordinator could not listen on {}: {e}; pass --listen with a free \
                     address",
                    setup.listen
                )
            })?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared {
            token: setup.token,
            epoch: Instant::now(),
            count: setup.count,
            state: Mutex::new(Roster {
                slots: (0..setup.count).map(|_| Slot::default()).collect(),
                ..Roster::default()
            }),
            changed: Notify::new(),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(Coordinator {
            shared,
            addr,
            max_lost_share: setup.max_lost_share,
            join_timeout: setup.join_timeout,
            progress: setup.progress,
            local: Mutex::new(None),
            shutdown: Mutex::new(Some(stop_tx)),
            server: Mutex::new(Some(server)),
        })
    }

    /// Where workers reach it (the address it listens on).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.shared.count
    }

    /// Hands it the worker processes it started on this machine (`scenario --workers N`), so
    /// it sees at once when one exits and reaps them all at the end.
    pub fn adopt(&self, workers: LocalWorkers) {
        *self.local.locked() = Some(workers);
    }

    /// Waits until every worker has joined (or the join timeout passed: those are lost), then
    /// serves the plan with a start a moment ahead; returns that start.
    pub async fn release(
        &self,
        spec: &LoadSpec,
        scenario: &str,
        phases: Vec<PhaseSpan>,
        interrupt: &watch::Receiver<bool>,
    ) -> Result<Instant, String> {
        let deadline = Instant::now() + self.join_timeout;
        loop {
            self.note_exits();
            let notified = self.shared.changed.notified();
            if self
                .shared
                .state
                .locked()
                .slots
                .iter()
                .all(|s| s.joined || s.lost.is_some())
            {
                break;
            }
            if Instant::now() >= deadline {
                let waited = self.join_timeout.as_secs();
                for slot in self.shared.state.locked().slots.iter_mut() {
                    if !slot.joined && slot.lost.is_none() {
                        slot.lost = Some(format!("it never joined in the {waited}s allowed"));
                    }
                }
                break;
            }
            if *interrupt.borrow() {
                return Err("interrupted before the load started; nothing was measured".into());
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
        let start = Instant::now() + LEAD;
        let mut state = self.shared.state.locked();
        if !state.slots.iter().any(|s| s.joined) {
            let why: Vec<String> = state
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.lost.as_ref().map(|w| format!("worker {i}: {w}")))
                .collect();
            return Err(format!(
                "no load worker joined the coordinator at {} ({}); start workers with \
                 `faultline worker --coordinator URL --index I --count {}` and the same token",
                self.url(),
                why.join("; "),
                self.shared.count
            ));
        }
        state.plan = Some(WorkPlan {
            scenario: scenario.to_string(),
            count: self.shared.count,
            start_at_ms: ms_since(self.shared.epoch, start),
            load: WireLoad::of(spec),
            phases,
        });
        if self.progress {
            let joined = state.slots.iter().filter(|s| s.joined).count();
            eprintln!(
                "faultline: the load starts on {joined} workers in {} ms",
                LEAD.as_millis()
            );
        }
        Ok(start)
    }

    /// Waits until every worker has reported or is lost, telling them to stop when `stop`
    /// turns true early (an interrupt), and returns the merged load.
    pub async fn collect(
        &self,
        spec: &LoadSpec,
        load_start: Instant,
        mut stop: watch::Receiver<bool>,
        live: Arc<load::Live>,
    ) -> Result<load::Driven, load::LoadError> {
        let deadline =
            load_start + spec.duration + load::drain_time(spec.request_timeout) + UPLOAD_GRACE;
        loop {
            self.note_exits();
            let notified = self.shared.changed.notified();
            {
                let mut state = self.shared.state.locked();
                if *stop.borrow() {
                    state.stop = true;
                }
                let now = Instant::now();
                let (requests, failures) = state
                    .slots
                    .iter()
                    .fold((0, 0), |(r, f), s| (r + s.requests, f + s.failures));
                live.requests
                    .store(requests, std::sync::atomic::Ordering::Relaxed);
                live.failures
                    .store(failures, std::sync::atomic::Ordering::Relaxed);
                for slot in state.slots.iter_mut().filter(|s| !s.settled()) {
                    let silent = slot.last_seen.is_none_or(|seen| now - seen > LOST_AFTER);
                    if now >= deadline {
                        slot.lost = Some(format!(
                            "it had not reported {}s after the load and its drain ended",
                            UPLOAD_GRACE.as_secs()
                        ));
                    } else if silent && now > load_start {
                        slot.lost = Some(format!(
                            "no heartbeat from it for more than {}s",
                            LOST_AFTER.as_secs()
                        ));
                    }
                }
                if state.slots.iter().all(Slot::settled) {
                    break;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed(), if !*stop.borrow() => {}
            }
        }
        let endings = self
            .shared
            .state
            .locked()
            .slots
            .iter_mut()
            .map(|slot| match slot.reported.take() {
                Some((result, records_gz)) => Ending::Reported {
                    result: Box::new(result),
                    records_gz,
                },
                None => Ending::Lost {
                    why: slot.lost.clone().unwrap_or_default(),
                    sent: slot.requests,
                },
            })
            .collect();
        let shares = shares_of(spec, self.shared.count);
        // Decompressing and re-sealing the records is CPU work: off the runtime's workers.
        let max_lost_share = self.max_lost_share;
        let merged =
            tokio::task::spawn_blocking(move || merge::merge(endings, &shares, max_lost_share))
                .await
                .map_err(|e| load::LoadError::Client(format!("merging the workers' load: {e}")))?;
        let mut stats = merged.stats;
        stats.executor = spec.executor.name().to_string();
        Ok(load::Driven {
            records: merged.records,
            stats,
        })
    }

    /// Marks local workers that exited without reporting as lost, naming how they ended.
    fn note_exits(&self) {
        let mut local = self.local.locked();
        let Some(workers) = local.as_mut() else {
            return;
        };
        let exits = workers.exited();
        drop(local);
        let mut state = self.shared.state.locked();
        let mut changed = false;
        for (index, pid, status) in exits {
            if let Some(slot) = state.slots.get_mut(index) {
                if !slot.settled() {
                    slot.lost = Some(format!(
                        "its process (pid {pid}) exited ({status}) before it reported"
                    ));
                    changed = true;
                }
            }
        }
        if changed {
            self.shared.changed.notify_waiters();
        }
    }

    /// Stops serving, and stops and reaps the local workers (they have normally exited).
    pub async fn shutdown(&self) {
        if let Some(stop) = self.shutdown.locked().take() {
            let _ = stop.send(());
        }
        let server = self.server.locked().take();
        if let Some(server) = server {
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
        let local = self.local.locked().take();
        if let Some(workers) = local {
            workers.reap().await;
        }
    }
}

/// Each worker's part of the load (0..1), as [`Share`] cuts it.
pub fn shares_of(spec: &LoadSpec, count: usize) -> Vec<f64> {
    (0..count)
        .map(|index| {
            let share = Share { index, count };
            match &spec.executor {
                Executor::Closed => {
                    let mine: usize = share.closed_users(&spec.flows, spec.users).iter().sum();
                    mine as f64 / spec.users.max(1) as f64
                }
                Executor::RampingUsers { .. } => {
                    let peak = spec.executor.peak_users().unwrap_or_default();
                    share.users_of(peak) as f64 / peak.max(1) as f64
                }
                _ => 1.0 / count as f64,
            }
        })
        .collect()
}

/// Why `count` workers cannot share this load (closed users fewer than workers), if so.
pub fn cannot_share(executor: &Executor, users: usize, count: usize) -> Option<String> {
    if count == 0 {
        return Some("--workers must be at least 1".into());
    }
    let users = match executor {
        Executor::Closed => users,
        Executor::RampingUsers { .. } => executor.peak_users().unwrap_or_default(),
        _ => return None,
    };
    (users < count).then(|| {
        format!(
            "{users} users cannot be shared by {count} workers (a worker needs at least one \
             user); use at most {users} workers, or more users"
        )
    })
}

fn ms_since(epoch: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(epoch).as_secs_f64() * 1000.0
}

fn router(shared: Arc<Shared>) -> Router {
    let guard = shared.clone();
    Router::new()
        .route("/clock", get(clock))
        .route("/join", post(join))
        .route("/plan", get(plan))
        .route("/heartbeat", post(heartbeat))
        .route("/results/{index}", post(results))
        .layer(DefaultBodyLimit::max(MAX_RESULTS_BYTES))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let guard = guard.clone();
                async move {
                    let authorization = request
                        .headers()
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    if protocol::token_matches(authorization, &guard.token) {
                        next.run(request).await
                    } else {
                        problem(
                            StatusCode::UNAUTHORIZED,
                            format!(
                                "this coordinator needs the run's shared token: send \
                                 Authorization: Bearer TOKEN (workers read it from --token, \
                                 --token-file or {})",
                                protocol::TOKEN_ENV
                            ),
                        )
                    }
                }
            },
        ))
        .with_state(shared)
}

fn problem(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn clock(State(shared): State<Arc<Shared>>) -> Json<Clock> {
    Json(Clock {
        now_ms: ms_since(shared.epoch, Instant::now()),
    })
}

async fn join(State(shared): State<Arc<Shared>>, Json(join): Json<Join>) -> Response {
    if join.count != shared.count || join.index >= shared.count {
        return problem(
            StatusCode::CONFLICT,
            format!(
                "this run has {} workers (--index 0..{}), but a worker joined as index {} of {}; \
                 start it with --count {}",
                shared.count,
                shared.count - 1,
                join.index,
                join.count,
                shared.count
            ),
        );
    }
    let mut state = shared.state.locked();
    let slot = &mut state.slots[join.index];
    if slot.joined || slot.lost.is_some() {
        return problem(
            StatusCode::CONFLICT,
            format!(
                "worker {} has already joined (or was declared lost); each --index runs once",
                join.index
            ),
        );
    }
    slot.joined = true;
    slot.last_seen = Some(Instant::now());
    drop(state);
    shared.changed.notify_waiters();
    Json(json!({})).into_response()
}

async fn plan(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.state.locked().plan {
        Some(plan) => Json(plan.clone()).into_response(),
        None => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the run is not ready yet (the target is starting, or workers are joining): ask \
             again"
                .into(),
        ),
    }
}

async fn heartbeat(State(shared): State<Arc<Shared>>, Json(beat): Json<Heartbeat>) -> Response {
    let mut state = shared.state.locked();
    let stop = state.stop;
    let Some(slot) = state.slots.get_mut(beat.index) else {
        return problem(StatusCode::CONFLICT, format!("no worker {}", beat.index));
    };
    if slot.lost.is_some() {
        // Declared lost: it must stop, its share is already counted as lost.
        return Json(Beat { stop: true }).into_response();
    }
    slot.last_seen = Some(Instant::now());
    slot.requests = beat.requests;
    slot.failures = beat.failures;
    Json(Beat { stop }).into_response()
}

async fn results(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<usize>,
    body: bytes::Bytes,
) -> Response {
    let (result, records) = match protocol::decode_results(&body) {
        Ok(decoded) => decoded,
        Err(why) => return problem(StatusCode::BAD_REQUEST, why),
    };
    if result.index != index {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("results of worker {} sent as worker {index}", result.index),
        );
    }
    let records = body.slice_ref(records);
    let mut state = shared.state.locked();
    let Some(slot) = state.slots.get_mut(index) else {
        return problem(StatusCode::CONFLICT, format!("no worker {index}"));
    };
    if slot.settled() {
        return problem(
            StatusCode::CONFLICT,
            format!("worker {index} has already reported, or was declared lost"),
        );
    }
    slot.requests = result.stats.sent;
    slot.reported = Some((result, records));
    drop(state);
    shared.changed.notify_waiters();
    Json(json!({})).into_response()
}
