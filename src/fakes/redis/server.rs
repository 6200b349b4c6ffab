//! Provides [`serve`]: the accept loop of the fake Redis, spawning a task per connection; and
//! the connection itself, which reads requests, asks the switchboard for a fault per command,
//! acts it out, runs the command and journals it.
//!
//! - The listener is bound on loopback with `SO_REUSEADDR`, dropped while the switchboard says
//!   `refuse` (clients get a real ECONNREFUSED; open connections are dropped too) and re-bound
//!   on the same port when the rule goes.
//! - A connection reads whatever is there, answers every complete request in it (pipelining)
//!   and writes the replies in one go: one syscall per batch, not per command.
//! - Stopping (handle dropped or shut down) ends the accept loop and every connection at once,
//!   hung ones included.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::command::{Command, ConnCommand};
use super::db::{Keyspace, DATABASES};
use super::frame::{parse_request, Frame, FrameError};
use crate::fakes::fault::{Fault, Switchboard};
use crate::fakes::journal::{Attempt, Journal};
use crate::fakes::text::last_nonce;

/// The Redis version the fake claims in HELLO and INFO (it speaks 7.2's CLIENT SETINFO).
pub const VERSION: &str = "7.2.4";

/// Redis's `client-query-buffer-limit` default: a client whose unparsed input grows past this
/// is disconnected, so one connection cannot hold more than this much of our memory.
const MAX_QUERY_BUFFER: usize = 1024 * 1024 * 1024;

/// Replies are flushed once this many bytes wait, even mid-batch, so a long pipeline of big
/// replies does not pile up in memory.
const FLUSH_AT: usize = 64 * 1024;

/// How often the sweep frees expired keys nobody reads (Redis runs its cycle at 10 Hz).
const SWEEP_EVERY: Duration = Duration::from_millis(100);

const BACKLOG: u32 = 1024;

/// What every connection of one fake shares.
pub(crate) struct Shared {
    pub keyspace: Arc<Keyspace>,
    pub switchboard: Arc<Switchboard>,
    pub journal: Arc<Journal>,
    /// `requirepass`: `None` lets every client in, as a default Redis does.
    pub password: Option<Bytes>,
    /// Proxy mode: forward every command to this real redis-server instead of answering it.
    pub upstream: Option<SocketAddr>,
    pub started: Instant,
    next_client_id: AtomicU64,
    clients: AtomicUsize,
}

impl Shared {
    pub fn new(
        keyspace: Arc<Keyspace>,
        switchboard: Arc<Switchboard>,
        journal: Arc<Journal>,
        password: Option<Bytes>,
        upstream: Option<SocketAddr>,
    ) -> Self {
        Shared {
            keyspace,
            switchboard,
            journal,
            password,
            upstream,
            started: Instant::now(),
            next_client_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
        }
    }
}

/// A listening socket with `SO_REUSEADDR`, so the port can be bound again right after a
/// `refuse` closed it even though its old connections linger in TIME_WAIT.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accepts connections on `listener` until `stopping` turns true; then waits for them all.
pub(crate) async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut refusing = shared.switchboard.refusing();
    let mut connections = JoinSet::new();
    let mut listener = Some(listener);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(open) = &listener else {
            // Refusing: the port is closed. Wait for the rule to go, then take the port back.
            tokio::select! {
                _ = stopped(&mut stopping) => break,
                _ = until(&mut refusing, false) => {}
                _ = sweep.tick() => { shared.keyspace.sweep(Instant::now()); continue; }
            }
            match rebind(addr, &mut stopping).await {
                Some(reopened) => listener = Some(reopened),
                None => break,
            }
            continue;
        };
        tokio::select! {
            _ = stopped(&mut stopping) => break,
            _ = until(&mut refusing, true) => {
                // Dropping the listener closes the port; connections see the flag themselves.
                listener = None;
                tracing::debug!(fake = "redis", %addr, "refusing connections");
            }
            accepted = open.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(connection(
                        stream,
                        shared.clone(),
                        stopping.clone(),
                        refusing.clone(),
                    ));
                }
                // Per-connection errors (reset before accept, fd limits): keep serving, but
                // do not spin if the error repeats.
                Err(error) => {
                    tracing::warn!(fake = "redis", %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = sweep.tick() => { shared.keyspace.sweep(Instant::now()); }
            // Reap finished connection tasks so the set stays as small as the open connections.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Every connection watches `stopping` too and ends at once.
    while connections.join_next().await.is_some() {}
}

/// Binds `addr` again after a refuse, retrying while the port is briefly unavailable.
async fn rebind(addr: SocketAddr, stopping: &mut watch::Receiver<bool>) -> Option<TcpListener> {
    let mut pause = Duration::from_millis(5);
    loop {
        match bind(addr) {
            Ok(listener) => return Some(listener),
            Err(error) => {
                tracing::debug!(fake = "redis", %addr, %error, "re-binding after refuse failed; retrying");
                tokio::select! {
                    _ = stopped(stopping) => return None,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Resolves once the fake is told to stop (or its handle is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Resolves once the refusing flag equals `wanted`.
async fn until(refusing: &mut watch::Receiver<bool>, wanted: bool) {
    if refusing.wait_for(|now| *now == wanted).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Per-connection state, as Redis keeps it in its `client` struct.
struct Session {
    id: u64,
    resp3: bool,
    db: usize,
    name: Option<Bytes>,
    authenticated: bool,
}

/// Serves one connection until it closes, the fake stops, or a refuse starts; the last two
/// drop it abruptly (a hung command's journal entry records itself as it is dropped).
async fn connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
    mut refusing: watch::Receiver<bool>,
) {
    // Replies are small and latency is what clients measure: do not wait to coalesce writes.
    let _ = stream.set_nodelay(true);
    shared.clients.fetch_add(1, Ordering::Relaxed);
    let session = Session {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        resp3: false,
        db: 0,
        name: None,
        authenticated: shared.password.is_none(),
    };
    let mut conn = Connection {
        stream,
        input: BytesMut::with_capacity(4096),
        output: BytesMut::with_capacity(4096),
        upstream: None,
        session,
        shared: shared.clone(),
    };
    tokio::select! {
        result = conn.run() => {
            if let Err(error) = result {
                tracing::debug!(fake = "redis", %error, "connection ended with an error");
            }
        }
        _ = stopped(&mut stopping) => {}
        _ = until(&mut refusing, true) => {}
    }
    shared.clients.fetch_sub(1, Ordering::Relaxed);
}

struct Connection {
    stream: TcpStream,
    /// Proxy mode: this client's own connection to the real server (so SELECT, AUTH, HELLO and
    /// CLIENT SETNAME keep their per-connection meaning), opened at the first command.
    upstream: Option<Upstream>,
    input: BytesMut,
    output: BytesMut,
    session: Session,
    shared: Arc<Shared>,
}

/// A proxied connection's link to the real server.
struct Upstream {
    stream: TcpStream,
    buf: BytesMut,
}

/// What a command leaves the connection to do.
enum Next {
    Continue,
    /// QUIT, a protocol error or a `drop` fault: flush what is owed and close (FIN).
    Close,
    /// A `hang` fault: flush earlier replies, then never answer again.
    Hang(Entry),
    /// A `reset` fault: send the first part of this reply, then RST.
    Reset(Entry, Bytes),
}

impl Connection {
    async fn run(&mut self) -> std::io::Result<()> {
        loop {
            loop {
                let args = match parse_request(&self.input) {
                    Ok((args, used)) => {
                        self.input.advance(used);
                        args
                    }
                    Err(FrameError::Incomplete) => break,
                    Err(FrameError::Protocol(message)) => {
                        // Redis answers a protocol error, then closes the connection.
                        Frame::error(format!("ERR {message}"))
                            .encode(&mut self.output, self.session.resp3);
                        self.flush().await?;
                        return Ok(());
                    }
                };
                if args.is_empty() {
                    continue;
                }
                match self.command(args).await? {
                    Next::Continue if self.output.len() >= FLUSH_AT => self.flush().await?,
                    Next::Continue => {}
                    Next::Close => {
                        self.flush().await?;
                        return Ok(());
                    }
                    Next::Hang(entry) => {
                        self.flush().await?;
                        self.hang().await;
                        drop(entry);
                        return Ok(());
                    }
                    Next::Reset(entry, partial) => {
                        self.flush().await?;
                        self.stream.write_all(&partial).await?;
                        // SO_LINGER 0: closing sends RST instead of FIN.
                        self.stream.set_zero_linger()?;
                        drop(entry);
                        return Ok(());
                    }
                }
            }
            self.flush().await?;
            if self.input.len() >= MAX_QUERY_BUFFER {
                // As Redis does: no reply, the client is just closed.
                tracing::warn!(
                    fake = "redis",
                    "closing a client past the query buffer limit"
                );
                return Ok(());
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Ok(());
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }

    /// Never answers again; reads and discards until the client goes, so a client that gave
    /// up does not leave a task behind for the rest of the run.
    async fn hang(&mut self) {
        let mut sink = [0u8; 4096];
        while let Ok(n) = self.stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    }

    /// One command: pick a fault, act it out, run the command, journal it.
    async fn command(&mut self, args: Vec<Bytes>) -> std::io::Result<Next> {
        let arrival = Instant::now();
        let shared = self.shared.clone();
        let parsed = Command::parse(&args);
        let route = route_of(&args[0]);
        let key = correlation_key(&args, matches!(parsed, Ok(Command::Data(_))));
        let fault = shared.switchboard.pick(&route, key.as_deref());
        let mut entry = Entry {
            journal: shared.journal.clone(),
            arrival,
            attempt: Attempt {
                at_ms: shared.journal.offset_ms(arrival),
                fake: "redis".into(),
                route,
                key,
                fault: fault.as_ref().map(Fault::label),
                status: None,
                duration_ms: 0.0,
                input_tokens: None,
                output_tokens: None,
                retry_count: None,
                chunks_sent: None,
                api_key: None,
                exchange: None,
            },
        };
        match fault {
            Some(Fault::Hang) => return Ok(Next::Hang(entry)),
            Some(Fault::Drop) => return Ok(Next::Close),
            Some(Fault::RedisError { reply }) => {
                let reply = Frame::error(reply.trim_start_matches('-').to_owned());
                entry.finish(&reply);
                reply.encode(&mut self.output, self.session.resp3);
                return Ok(Next::Continue);
            }
            Some(Fault::Delay {
                delay,
                distribution,
            }) => {
                // Earlier pipelined replies are not held back by this command's delay.
                self.flush().await?;
                tokio::time::sleep(shared.switchboard.sample_delay(delay, distribution)).await;
            }
            // `pick` never returns Refuse (the accept loop acts it out); HTTP-only faults were
            // refused by the scenario parser: answer normally.
            _ => {}
        }
        let reset = matches!(fault, Some(Fault::Reset));
        let (reply, next) = match (shared.upstream, parsed) {
            (Some(addr), _) => match self.forward(addr, &args).await {
                Ok(reply) => {
                    // Track HELLO's switch so faults' own replies use the client's protocol.
                    if args[0].eq_ignore_ascii_case(b"hello") && matches!(reply, Frame::Map(_)) {
                        self.session.resp3 = args.get(1).is_some_and(|v| &v[..] == b"3");
                    }
                    let quit = args[0].eq_ignore_ascii_case(b"quit");
                    (reply, if quit { Next::Close } else { Next::Continue })
                }
                Err(error) => {
                    // The real server is gone: answer as a proxy would, then close, so the
                    // client reconnects (and meets the real server's state) next time.
                    tracing::debug!(fake = "redis", %addr, %error, "upstream failed");
                    self.upstream = None;
                    let message = format!("ERR faultline proxy: upstream {addr}: {error}");
                    (Frame::error(message), Next::Close)
                }
            },
            (None, Err(message)) => (Frame::error(message), Next::Continue),
            (None, Ok(command)) => self.execute(command),
        };
        if reset {
            let bytes = reply.to_bytes(self.session.resp3);
            // Half the reply (at least one byte): the client sees a reply cut by a reset.
            let cut = bytes.slice(..bytes.len().div_ceil(2));
            return Ok(Next::Reset(entry, cut));
        }
        entry.finish(&reply);
        reply.encode(&mut self.output, self.session.resp3);
        Ok(next)
    }

    /// Proxy mode: sends the request to this connection's upstream and reads its one reply.
    /// (Commands that answer more than once, SUBSCRIBE and MONITOR, are not proxied faithfully.)
    async fn forward(&mut self, addr: SocketAddr, args: &[Bytes]) -> std::io::Result<Frame> {
        if self.upstream.is_none() {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            self.upstream = Some(Upstream {
                stream,
                buf: BytesMut::with_capacity(4096),
            });
        }
        let upstream = self.upstream.as_mut().expect("just connected");
        let request = Frame::Array(args.iter().cloned().map(Frame::Bulk).collect());
        upstream.stream.write_all(&request.to_bytes(false)).await?;
        loop {
            match Frame::parse(&upstream.buf) {
                Ok((frame, used)) => {
                    upstream.buf.advance(used);
                    return Ok(frame);
                }
                Err(FrameError::Incomplete) => {}
                Err(FrameError::Protocol(message)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        message,
                    ))
                }
            }
            if upstream.buf.len() >= MAX_QUERY_BUFFER {
                return Err(std::io::Error::other("upstream reply too large"));
            }
            if upstream.stream.read_buf(&mut upstream.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn execute(&mut self, command: Command) -> (Frame, Next) {
        let session = &mut self.session;
        let shared = &self.shared;
        let conn = match command {
            Command::Conn(conn) => conn,
            Command::Data(_) if !session.authenticated => {
                return (
                    Frame::error("NOAUTH Authentication required."),
                    Next::Continue,
                )
            }
            Command::Data(data) => {
                let mut db = shared.keyspace.db(session.db);
                return (data.apply(&mut db, Instant::now()), Next::Continue);
            }
        };
        let open = matches!(
            conn,
            ConnCommand::Auth { .. } | ConnCommand::Hello { .. } | ConnCommand::Quit
        );
        if !session.authenticated && !open {
            return (
                Frame::error("NOAUTH Authentication required."),
                Next::Continue,
            );
        }
        let reply = match conn {
            ConnCommand::Ping(None) => Frame::Simple("PONG".into()),
            ConnCommand::Ping(Some(text)) | ConnCommand::Echo(text) => Frame::Bulk(text),
            ConnCommand::Quit => return (Frame::ok(), Next::Close),
            ConnCommand::Auth { user, password } => match (&shared.password, user) {
                (None, None) => Frame::error(
                    "ERR AUTH <password> called without any password configured for the \
                     default user. Are you sure your configuration is correct?",
                ),
                (wanted, user) => {
                    if check_credentials(wanted, user.as_deref(), &password) {
                        session.authenticated = true;
                        Frame::ok()
                    } else {
                        Frame::error(WRONGPASS)
                    }
                }
            },
            ConnCommand::Hello {
                proto,
                auth,
                setname,
            } => {
                if let Some((user, password)) = auth {
                    if !check_credentials(&shared.password, Some(&user), &password) {
                        return (Frame::error(WRONGPASS), Next::Continue);
                    }
                    session.authenticated = true;
                }
                if !session.authenticated {
                    return (
                        Frame::error(
                            "NOAUTH HELLO must be called with the client already authenticated, \
                             otherwise the HELLO <proto> AUTH <user> <pass> option can be used to \
                             authenticate the client and select the RESP protocol version at the \
                             same time",
                        ),
                        Next::Continue,
                    );
                }
                if let Some(name) = setname {
                    if let Err(error) = set_name(session, name) {
                        return (error, Next::Continue);
                    }
                }
                if let Some(proto) = proto {
                    // The reply is already in the new protocol, as in Redis.
                    session.resp3 = proto == 3;
                }
                let text = |s: &str| Frame::bulk(Bytes::copy_from_slice(s.as_bytes()));
                Frame::Map(vec![
                    (text("server"), text("redis")),
                    (text("version"), text(VERSION)),
                    (
                        text("proto"),
                        Frame::Integer(if session.resp3 { 3 } else { 2 }),
                    ),
                    (text("id"), Frame::Integer(session.id as i64)),
                    (text("mode"), text("standalone")),
                    (text("role"), text("master")),
                    (text("modules"), Frame::Array(Vec::new())),
                ])
            }
            ConnCommand::Select(index) => {
                session.db = index;
                Frame::ok()
            }
            ConnCommand::ClientSetName(name) => match set_name(session, name) {
                Ok(()) => Frame::ok(),
                Err(error) => error,
            },
            ConnCommand::ClientGetName => session.name.clone().map_or(Frame::Null, Frame::Bulk),
            ConnCommand::ClientId => Frame::Integer(session.id as i64),
            ConnCommand::ClientSetInfo | ConnCommand::ConfigSet => Frame::ok(),
            ConnCommand::CommandDocs => Frame::Array(Vec::new()),
            ConnCommand::CommandCount => Frame::Integer(0),
            ConnCommand::ConfigGet(patterns) => Frame::Map(config_get(&patterns)),
            ConnCommand::Info => Frame::Verbatim("txt".into(), self.info()),
        };
        (reply, Next::Continue)
    }

    /// A minimal INFO: the fields clients and dashboards look at.
    fn info(&self) -> Bytes {
        let shared = &self.shared;
        let mut keyspace = String::new();
        for index in 0..DATABASES {
            let db = shared.keyspace.db(index);
            if !db.is_empty() {
                keyspace.push_str(&format!(
                    "db{index}:keys={},expires={},avg_ttl=0\r\n",
                    db.len(),
                    db.expires()
                ));
            }
        }
        Bytes::from(format!(
            "# Server\r\nredis_version:{VERSION}\r\nredis_mode:standalone\r\n\
             executable:faultline\r\nuptime_in_seconds:{}\r\n\r\n\
             # Clients\r\nconnected_clients:{}\r\n\r\n\
             # Persistence\r\nloading:0\r\n\r\n\
             # Replication\r\nrole:master\r\n\r\n\
             # Keyspace\r\n{keyspace}",
            shared.started.elapsed().as_secs(),
            shared.clients.load(Ordering::Relaxed),
        ))
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The `default` user, with `requirepass` if one is set; any password when none is (nopass).
fn check_credentials(wanted: &Option<Bytes>, user: Option<&[u8]>, password: &[u8]) -> bool {
    let user_ok = user.is_none_or(|user| user == b"default");
    user_ok && wanted.as_deref().is_none_or(|wanted| wanted == password)
}

fn set_name(session: &mut Session, name: Bytes) -> Result<(), Frame> {
    if name.iter().any(|b| !(b'!'..=b'~').contains(b)) {
        return Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    session.name = (!name.is_empty()).then_some(name);
    Ok(())
}

/// The configuration a client may ask about (redis-benchmark reads `save` and `appendonly`).
fn config_get(patterns: &[Bytes]) -> Vec<(Frame, Frame)> {
    const KNOWN: &[(&str, &str)] = &[
        ("save", ""),
        ("appendonly", "no"),
        ("databases", "16"),
        ("maxmemory", "0"),
        ("maxmemory-policy", "noeviction"),
        ("timeout", "0"),
    ];
    KNOWN
        .iter()
        .filter(|(name, _)| {
            patterns
                .iter()
                .any(|p| &p[..] == b"*" || p.eq_ignore_ascii_case(name.as_bytes()))
        })
        .map(|(name, value)| {
            (
                Frame::bulk(Bytes::from_static(name.as_bytes())),
                Frame::bulk(Bytes::from_static(value.as_bytes())),
            )
        })
        .collect()
}

/// The route a fault rule matches and the journal shows: the command name, upper-cased,
/// bounded so a garbage "command" cannot bloat the journal.
fn route_of(name: &[u8]) -> String {
    String::from_utf8_lossy(&name[..name.len().min(64)]).to_ascii_uppercase()
}

/// The correlation key of a command: the last `fl-xxxxxxxx` nonce in any argument (key or
/// value), else the key itself for keyspace commands.
fn correlation_key(args: &[Bytes], keyed: bool) -> Option<String> {
    if let Some(nonce) = args[1..].iter().rev().find_map(|arg| last_nonce(arg)) {
        return Some(nonce.to_owned());
    }
    let key = args.get(1).filter(|_| keyed)?;
    Some(String::from_utf8_lossy(&key[..key.len().min(200)]).into_owned())
}

/// The journal entry of one command in flight. Records itself on drop, so a command that never
/// got a reply (hang, reset, drop, shutdown) is journaled too, with `status: None`.
struct Entry {
    journal: Arc<Journal>,
    arrival: Instant,
    attempt: Attempt,
}

impl Entry {
    /// Notes the reply's outcome as a status (see the module docs of `fakes::redis`).
    fn finish(&mut self, reply: &Frame) {
        self.attempt.status = Some(match reply {
            Frame::Error(_) => 500,
            Frame::Null | Frame::NullArray => 404,
            _ => 200,
        });
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut attempt = std::mem::replace(
            &mut self.attempt,
            Attempt {
                at_ms: 0.0,
                fake: String::new(),
                route: String::new(),
                key: None,
                fault: None,
                status: None,
                duration_ms: 0.0,
                input_tokens: None,
                output_tokens: None,
                retry_count: None,
                chunks_sent: None,
                api_key: None,
                exchange: None,
            },
        );
        attempt.duration_ms = self.arrival.elapsed().as_secs_f64() * 1000.0;
        self.journal.record(attempt);
    }
}
