//! Fault-injecting fakes of what a chat backend depends on. Every fake has the same shape:
//! started on a loopback listener with a [`fault::Switchboard`] (what to inject now) and a
//! [`journal::Journal`] (what it saw), it returns a [`FakeHandle`]; dropping or shutting down
//! the handle stops it.
//!
//! # Layout
//! - `fault`, `journal`: the shared contracts (fault model, record of attempts).
//! - `http`: the one HTTP serving loop every HTTP fake runs on: accept loop with `refuse`,
//!   per-attempt faults and journaling, shutdown that ends hung connections.
//! - `text`: word splitting, stable hashing and the token approximation the fakes share.
//! - `llm`: the OpenAI-compatible fake (chat completions, embeddings, models).
//! - `tool`: HTTP tool fakes (weather, tickets, stubs from `mocks/*.toml`) and the ledger of
//!   writes the write tools keep for `writes.idempotent`.
//! - `otlp`: an OTLP/HTTP collector that keeps the spans a target exports.
//! - `set`, `up`, `control`: the fakes of one run, `faultline fakes up`, and the control API.
//! - `remote`, `driver`: a client of that control API, and [`driver::Fakes`], the one type a
//!   run drives its fakes through whether it started them or attached to `fakes up`.

pub mod control;
pub mod driver;
pub mod fault;
pub mod journal;
pub mod llm;
pub mod mcp;
pub mod otlp;
pub mod redis;
pub mod remote;
pub mod set;
pub mod standalone;
pub mod tool;
pub mod up;

pub mod http;
pub(crate) mod text;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use fault::Switchboard;
use journal::Journal;

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("failed to start fake {name} on {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// `[fakes.llm] replay` named a recording that cannot be replayed.
    #[error("the fake LLM cannot replay: {0}")]
    Replay(String),
}

/// How long [`FakeHandle::shutdown`] waits for the fake's tasks before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

/// A running fake. Dropping it stops the fake too (without waiting), as wiremock's
/// `MockServer` does; [`FakeHandle::shutdown`] stops it and waits.
pub struct FakeHandle {
    name: String,
    addr: SocketAddr,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
    /// `true` tells the accept loop and every connection to stop; sent on shutdown and on drop.
    stop: watch::Sender<bool>,
    /// URL scheme of [`FakeHandle::base_url`]: `http` unless the fake speaks something else.
    scheme: &'static str,
    /// The accept loop, which owns the connection tasks and waits for them when stopping.
    server: Option<JoinHandle<()>>,
}

impl FakeHandle {
    pub(crate) fn new(
        name: &str,
        addr: SocketAddr,
        switchboard: Arc<Switchboard>,
        journal: Arc<Journal>,
        stop: watch::Sender<bool>,
        server: JoinHandle<()>,
    ) -> Self {
        FakeHandle {
            name: name.to_owned(),
            addr,
            switchboard,
            journal,
            stop,
            scheme: "http",
            server: Some(server),
        }
    }

    /// The same handle with another URL scheme (`redis` for the fake Redis).
    pub(crate) fn with_scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT` (`redis://127.0.0.1:PORT` for the fake Redis)
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
    pub fn switchboard(&self) -> &Arc<Switchboard> {
        &self.switchboard
    }
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }
    /// Stops accepting, ends open connections (hung ones included) and waits for its tasks.
    /// Bounded: connections are dropped, not drained, and a task still running after
    /// `SHUTDOWN_GRACE` is aborted, so this returns in well under a second.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
            {
                tracing::warn!(fake = %self.name, "fake did not stop in time; aborting it");
                // Aborting the accept loop drops its JoinSet, which aborts the connections.
                server.abort();
            }
        }
    }
}

impl Drop for FakeHandle {
    fn drop(&mut self) {
        // Receivers see this even if the handle was dropped outside a runtime.
        self.stop.send_replace(true);
    }
}
