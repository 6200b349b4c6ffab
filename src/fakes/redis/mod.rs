//! The fake Redis: a RESP2/RESP3 server that ordinary clients (redis-rs, redis-py, ioredis,
//! redis-cli, redis-benchmark) use unchanged, for the commands caches and sessions use, with
//! the shared fault model acted out per command and a journal of every command.
//!
//! # Layout
//! - `frame`: the wire format (parse requests and replies, encode RESP2 or RESP3).
//! - `command`: requests as values, with Redis's own error replies; keyspace commands' effects.
//! - `db`: the keyspace (strings, hashes, lists; lazy expiry plus a periodic sweep).
//! - `server`: accept loop (closed while refusing), connections, faults, journal.
//! - `upstash`: the same keyspace over the Upstash REST API.
//! - `standalone`: `faultline fake redis`.
//!
//! # Proxy mode
//! With [`RedisOptions::upstream`], the fake answers nothing itself: each command goes to a real
//! redis-server over the client's own upstream connection and the real reply comes back, so
//! teams get real Redis semantics with the same faults and journal in between.
//!
//! # Faults
//! Rules match on the upper-cased command name (`route = "GET"`; no route: every command,
//! HELLO and AUTH included, as a loading Redis answers everything with `-LOADING`):
//! `refuse` closes the port, `hang` stops answering on that connection, `delay` waits before
//! running the command, `reset` sends half the reply then an RST, `drop` closes the connection
//! without a reply, `redis_error` answers `-<reply>` (`LOADING …`, `OOM …`, `READONLY …`,
//! `MISCONF …`, `BUSY …`) without running the command.
//!
//! # Journal
//! One [`Attempt`](crate::evidence::Attempt) per command: `route` is the command name,
//! `key` the `fl-xxxxxxxx` nonce found in any argument, else the Redis key (first argument of
//! keyspace commands). The outcome is the `status`, mapped as an HTTP-minded reader expects:
//! `200` a normal reply (or a hit), `404` a nil reply (GET/HGET/GETEX of a missing key, a SET
//! NX that did not set: a cache miss), `500` an error reply (injected or not), `None` no reply
//! at all (hang, reset, drop).

pub mod command;
pub mod db;
pub mod frame;
mod server;
pub mod standalone;
mod upstash;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::fault::Switchboard;
use super::journal::Journal;
use super::{FakeError, FakeHandle};
pub use db::Keyspace;
pub use server::VERSION;
pub use upstash::start_upstash;

/// How to start the fake Redis.
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// Loopback port; 0 picks a free one (what tests and runs want).
    pub port: u16,
    /// `requirepass`: when set, clients must AUTH (or HELLO … AUTH) as `default` first.
    pub password: Option<String>,
    /// Proxy mode: `redis://host:port` (or `host:port`) of a real redis-server. Every command
    /// is forwarded to it (one upstream connection per client connection) and its replies
    /// passed back, with the same faults and journal; `password` is then unused (clients'
    /// AUTH goes to the real server).
    pub upstream: Option<String>,
    /// The keyspace to serve; `None` makes a fresh one. Pass the same `Arc` to
    /// [`start_upstash`] to serve it over REST too.
    pub keyspace: Option<Arc<Keyspace>>,
}

/// Starts the fake Redis on `127.0.0.1:<port>`. Its [`FakeHandle::base_url`] is
/// `redis://127.0.0.1:PORT`.
pub async fn start(
    options: RedisOptions,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let wanted = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let bind_error = |source| FakeError::Bind {
        name: "redis".into(),
        addr: wanted,
        source,
    };
    let upstream = match &options.upstream {
        None => None,
        Some(url) => Some(
            resolve_upstream(url)
                .await
                .map_err(|source| FakeError::Bind {
                    name: "redis".into(),
                    addr: wanted,
                    source,
                })?,
        ),
    };
    let listener = server::bind(wanted).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let shared = Arc::new(server::Shared::new(
        options.keyspace.unwrap_or_default(),
        switchboard.clone(),
        journal.clone(),
        options.password.map(Bytes::from),
        upstream,
    ));
    let (stop, stopping) = watch::channel(false);
    let task = tokio::spawn(server::serve(listener, addr, shared, stopping));
    Ok(FakeHandle::new("redis", addr, switchboard, journal, stop, task).with_scheme("redis"))
}

/// The address of `redis://host:port` (credentials and a `/db` suffix are not supported: the
/// client's own AUTH and SELECT go through).
async fn resolve_upstream(url: &str) -> std::io::Result<SocketAddr> {
    let invalid = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("upstream `{url}` {why}; write it as redis://127.0.0.1:6379"),
        )
    };
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    if rest.contains('@') || rest.contains('/') {
        return Err(invalid("has credentials or a path"));
    }
    let host_port = if rest.contains(':') {
        rest.to_string()
    } else {
        format!("{rest}:6379")
    };
    let first = tokio::net::lookup_host(host_port).await?.next();
    first.ok_or_else(|| invalid("does not resolve"))
}
