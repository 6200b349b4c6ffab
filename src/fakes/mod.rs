//! Fault-injecting fakes of what a chat backend depends on. Every fake has the same shape:
//! started on a loopback listener with a [`fault::Switchboard`] (what to inject now) and a
//! [`journal::Journal`] (what it saw), it returns a [`FakeHandle`]; dropping or shutting down
//! the handle stops it.

pub mod fault;
pub mod journal;
pub mod llm;
pub mod tool;

use std::net::SocketAddr;
use std::sync::Arc;

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
}

/// A running fake. STUB: the fakes module fills this in.
pub struct FakeHandle {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) switchboard: Arc<Switchboard>,
    pub(crate) journal: Arc<Journal>,
}

impl FakeHandle {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn switchboard(&self) -> &Arc<Switchboard> {
        &self.switchboard
    }
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }
    /// Stops accepting, ends open connections (hung ones included) and waits for its tasks.
    pub async fn shutdown(self) {
        todo!()
    }
}
