//! The HTTP serving loop every HTTP fake runs on, so faults and journaling behave the same in
//! each. A fake supplies a [`Responder`] (its normal answers and its provider-shaped error for
//! a status fault); this module owns the rest:
//!
//! - the listener, bound on `127.0.0.1:0`, closed while the switchboard says `refuse` (so
//!   clients see a real "connection refused") and re-bound on the same port afterwards;
//! - one task per connection (hyper HTTP/1.1 with keep-alive), dropped abruptly on shutdown or
//!   refuse, which is also what ends hung requests; at most [`MAX_CONNECTIONS`] open, and each
//!   closed when a request's headers take longer than [`HEADER_READ_TIMEOUT`] (slowloris);
//! - per attempt: read the body, find the correlation key, ask the switchboard for a fault,
//!   act it out, and record the attempt in the journal when it ends, however it ends (for a
//!   streamed body: when the last byte is sent or the stream is cut, with the events sent),
//!   with the client's `x-stainless-retry-count` (what the official SDKs number retries by).
//!
//! Faults acted out here, the same for every HTTP fake: `status` (with `retry-after`,
//! `retry-after-ms`, `x-should-retry` and the provider's error code), `delay` (sampled from
//! its distribution), `hang`, `reset` (a real TCP RST: `SO_LINGER` 0, then close), `drop`
//! (close without a response) and `malformed` `invalid_json` / `truncated_json` /
//! `wrong_content_type` on any JSON reply. Every other fault is handed to the responder
//! ([`Responder::answer_under`]): only it knows what a slow or cut stream of its protocol is.
//!
//! A manual accept loop rather than `axum::serve`, because `refuse` needs the listener dropped
//! and re-bound, and shutdown must not wait for hung connections to drain.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

mod play;

use super::fault::{Fault, Malformation, Switchboard};
use super::journal::{ApiKeySent, Exchange, Journal, Key, Record};
use super::text::last_nonce;
use super::{FakeError, FakeHandle};
use play::play;

/// Request bodies above this are refused with 413 (embedding batches can be large; a runaway
/// client should not grow the fake without bound).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Backlog of the listening socket.
const BACKLOG: u32 = 1024;
/// A client has this long to send a request's headers once the connection waits for one
/// (idle keep-alive included): a slowloris connection is closed, and real clients, which send
/// headers at once and reconnect when an idle connection closes, never notice.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per fake; more are closed as soon as accepted (and counted in a warning),
/// so idle connections cannot take every file descriptor. Load tests drive a few hundred users.
pub const MAX_CONNECTIONS: usize = 4096;

/// One request as a responder sees it: the head and the whole body, already read.
pub(crate) struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived, for processing-time headers.
    pub arrival: Instant,
}

impl Request {
    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.uri.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

/// Token usage an answer reported, for the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
}

/// What a responder answers: status, extra headers, a body and, for LLM answers, the usage.
pub(crate) struct Reply {
    pub status: StatusCode,
    /// A list rather than a `HeaderMap`, so a `Reply` stays small enough to pass around in
    /// `Result`s; names are never repeated by the fakes.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub usage: Option<Usage>,
    /// What the request asked for in its API's terms, as the answer settled it (an MCP
    /// call's tool, whether the list-changed notice went out); overrides
    /// [`Responder::exchange`]. Boxed to keep `Reply` small.
    pub exchange: Option<Box<Exchange>>,
    /// A body sent piece by piece (server-sent events); when set, `body` is ignored.
    /// Boxed so a `Reply` stays small enough for `Result<_, Reply>` (clippy's large-err).
    pub stream: Option<Box<Script>>,
}

/// A body sent piece by piece, with waits between the pieces, possibly cut short. Built whole
/// when the request is answered (so every random draw happens in request order, keeping runs
/// repeatable) and played out by the serving loop.
///
/// Pieces can be rendered late ([`Step::Render`]): a long stream then holds its text once
/// instead of every frame's bytes for its whole life (a 100-token chat stream's frames are
/// ~21 KB), and a burst of new streams does not serialize every frame up front.
#[derive(Debug, Default)]
pub(crate) struct Script {
    pub steps: Vec<Step>,
    /// Cut the connection this long after the head was sent, wherever the script is then.
    pub cut_after: Option<Duration>,
    /// Renders the [`Step::Render`] pieces.
    pub render: Option<Render>,
}

/// How a script renders piece `i` when its turn comes.
pub(crate) struct Render(pub Box<dyn Fn(u32) -> Bytes + Send + Sync>);

impl std::fmt::Debug for Render {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Render")
    }
}

/// One step of a script; 24 bytes, as a long stream holds two per event.
#[derive(Debug)]
pub(crate) enum Step {
    Send(Box<Bytes>),
    /// Send what the script's renderer makes of this index.
    Render(u32),
    Wait(Duration),
    /// Close the connection mid-body: the client sees an incomplete chunked body.
    Cut,
}

impl Script {
    /// Pieces sent so far are counted by the caller; this just appends.
    pub fn send(&mut self, piece: impl Into<Bytes>) {
        self.steps.push(Step::Send(Box::new(piece.into())));
    }

    pub fn wait(&mut self, wait: Duration) {
        if !wait.is_zero() {
            self.steps.push(Step::Wait(wait));
        }
    }

    pub fn cut(&mut self) {
        self.steps.push(Step::Cut);
    }
}

/// Room for the headers a fake's answer usually carries (the LLM's: content type, request
/// id, processing time, six rate-limit headers), so adding them never reallocates.
const HEADERS: usize = 12;

fn json_headers() -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::with_capacity(HEADERS);
    headers.push((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    headers
}

impl Reply {
    /// A JSON reply (`content-type: application/json`).
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Reply {
            status,
            headers: json_headers(),
            body: Bytes::from(value.to_string()),
            usage: None,
            exchange: None,
            stream: None,
        }
    }

    /// A JSON reply whose body is already serialized.
    pub fn json_body(status: StatusCode, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: json_headers(),
            body: Bytes::from(body),
            usage: None,
            exchange: None,
            stream: None,
        }
    }

    /// A `text/event-stream` reply played from `script`.
    pub fn event_stream(status: StatusCode, script: Script) -> Self {
        Reply {
            status,
            headers: {
                let mut headers = Vec::with_capacity(HEADERS);
                headers.push((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream; charset=utf-8"),
                ));
                headers.push((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
                headers
            },
            body: Bytes::new(),
            usage: None,
            exchange: None,
            stream: Some(Box::new(script)),
        }
    }

    /// Adds a header; values the fakes build are always valid, so a bad one is a bug.
    pub fn with_header(mut self, name: impl Name, value: impl ToString) -> Self {
        let value = HeaderValue::from_str(&value.to_string()).expect("valid header value");
        self.headers.push((name.header_name(), value));
        self
    }

    /// Adds a header whose value is ready.
    pub fn with_value(mut self, name: impl Name, value: HeaderValue) -> Self {
        self.headers.push((name.header_name(), value));
        self
    }

    /// Adds a header with text the fake built, without copying it again.
    pub fn with_text(self, name: impl Name, value: String) -> Self {
        let value = HeaderValue::from_maybe_shared(Bytes::from(value)).expect("valid header value");
        self.with_value(name, value)
    }

    /// Adds a header with a number for its value.
    pub fn with_number(mut self, name: impl Name, value: u64) -> Self {
        self.headers
            .push((name.header_name(), HeaderValue::from(value)));
        self
    }

    /// Adds `retry-after` (whole seconds, rounded up as HTTP requires) when there is a delay.
    pub fn with_retry_after(self, retry_after: Option<Duration>) -> Self {
        match retry_after {
            Some(after) => {
                let secs = after.as_millis().div_ceil(1000);
                self.with_header("retry-after", secs)
            }
            None => self,
        }
    }

    pub fn with_exchange(mut self, exchange: Exchange) -> Self {
        self.exchange = Some(Box::new(exchange));
        self
    }

    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self.headers.iter().find(|(n, _)| n == name)?;
        value.to_str().ok()
    }

    /// Replaces (or adds) header `name`.
    fn set_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
    }

    /// Breaks a whole JSON body as `what` says; streamed bodies and other malformations are
    /// the responder's to break.
    fn malform(&mut self, what: Malformation) {
        let is_json = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        if self.stream.is_some() || !is_json {
            return;
        }
        match what {
            // What a proxy's error page in front of the API looks like.
            Malformation::InvalidJson => {
                // The usage in the body never reaches the client: the journal must not claim it.
                self.usage = None;
                self.body = Bytes::from_static(
                    b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>",
                );
            }
            Malformation::TruncatedJson => {
                self.usage = None;
                let half = self.body.len() / 2;
                self.body.truncate(half.max(1).min(self.body.len()));
            }
            Malformation::WrongContentType => self.set_header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            _ => {}
        }
    }
}

/// A header's name: a lowercase literal, or a `HeaderName` constant for the headers on every
/// answer (a literal is checked each time it is used; a constant was checked when compiled).
pub(crate) trait Name {
    fn header_name(self) -> HeaderName;
}

impl Name for &'static str {
    fn header_name(self) -> HeaderName {
        HeaderName::from_static(self)
    }
}

impl Name for HeaderName {
    fn header_name(self) -> HeaderName {
        self
    }
}

/// The part of a fake that differs between fakes: what it answers.
pub(crate) trait Responder: Send + Sync + 'static {
    /// The normal answer (including the fake's own 4xx for bad requests).
    fn answer(&self, request: &Request) -> Reply;
    /// The provider-shaped error for an injected status fault. `status` is always a valid
    /// error code (3xx..=9xx; success codes get the normal answer, 1xx become 500);
    /// `retry_after` is the fault's, if it set one.
    fn fault_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply;

    /// The error for a status fault that names the provider's error code (`insufficient_quota`,
    /// `context_length_exceeded`). By default the code is ignored.
    fn status_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
        error_code: Option<&str>,
    ) -> Reply {
        let _ = error_code;
        self.fault_reply(request, status, retry_after)
    }

    /// The answer while `fault` is on, for the faults this module does not act out itself
    /// (slow or cut streams, broken streams, agents' tool faults, rate limits) and for
    /// `malformed` before this module breaks a JSON body. By default: the normal answer.
    fn answer_under(&self, request: &Request, fault: &Fault) -> Reply {
        let _ = fault;
        self.answer(request)
    }

    /// The correlation key of a request that carries no nonce and no `x-request-id`, if the
    /// fake can tell one (a write tool: the payload's identity), so `first_attempts` and the
    /// journal still see its retries as one request's. By default: none.
    fn fallback_key(&self, request: &Request) -> Option<String> {
        let _ = request;
        None
    }

    /// Which API key the request sent, for fakes that take one (the LLM).
    fn api_key_sent(&self, request: &Request) -> Option<ApiKeySent> {
        let _ = request;
        None
    }

    /// What the request asks for in its API's terms, for the journal, whatever fault then
    /// answers it (a retry's checks compare the failed attempt's request with the next one).
    /// By default: nothing beyond the route.
    fn exchange(&self, request: &Request) -> Option<Exchange> {
        let _ = request;
        None
    }
}

/// Binds `127.0.0.1:0`, starts the accept loop for `responder` and returns its handle.
pub(crate) async fn serve<R: Responder>(
    name: &'static str,
    responder: R,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let wanted = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    serve_on(wanted, name, responder, switchboard, journal).await
}

/// Like [`serve`], on a given address (a standalone fake's `--port`).
pub(crate) async fn serve_on<R: Responder>(
    wanted: SocketAddr,
    name: &'static str,
    responder: R,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let listener = bind(wanted).map_err(|source| FakeError::Bind {
        name: name.to_owned(),
        addr: wanted,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| FakeError::Bind {
        name: name.to_owned(),
        addr: wanted,
        source,
    })?;
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        name,
        responder,
        switchboard: switchboard.clone(),
        journal: journal.clone(),
    });
    let server = tokio::spawn(accept_loop(listener, addr, shared, stopping));
    Ok(FakeHandle::new(
        name,
        addr,
        switchboard,
        journal,
        stop,
        server,
    ))
}

/// A listening socket with `SO_REUSEADDR`, so the port can be bound again right after a
/// `refuse` closed it even though its old connections linger in TIME_WAIT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// What every connection task of one fake shares.
struct Shared<R> {
    name: &'static str,
    responder: R,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
}

async fn accept_loop<R: Responder>(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared<R>>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut refusing = shared.switchboard.refusing();
    let mut connections = JoinSet::new();
    let mut turned_away: u64 = 0;
    let mut listener = Some(listener);
    loop {
        let Some(open) = &listener else {
            // Refusing: the port is closed. Wait for the rule to go, then take the port back.
            tokio::select! {
                _ = stopped(&mut stopping) => break,
                _ = until(&mut refusing, false) => {}
            }
            match rebind(addr, &mut stopping, shared.name).await {
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
                tracing::debug!(fake = shared.name, %addr, "refusing connections");
            }
            accepted = open.accept() => match accepted {
                Ok((stream, _peer)) if connections.len() >= MAX_CONNECTIONS => {
                    drop(stream);
                    turned_away += 1;
                    if turned_away.is_power_of_two() {
                        tracing::warn!(
                            fake = shared.name,
                            turned_away,
                            "{MAX_CONNECTIONS} connections open: closing new ones"
                        );
                    }
                }
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
                    tracing::warn!(fake = shared.name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connection tasks so the set stays as small as the open connections.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Every connection watches `stopping` too and ends at once; wait for them so `shutdown`
    // returns only when nothing of this fake is left running.
    while connections.join_next().await.is_some() {}
}

/// Binds `addr` again after a refuse, retrying while the port is briefly unavailable.
/// `None` when the fake is stopped meanwhile.
async fn rebind(
    addr: SocketAddr,
    stopping: &mut watch::Receiver<bool>,
    name: &str,
) -> Option<TcpListener> {
    let mut pause = Duration::from_millis(5);
    let mut warned = false;
    loop {
        match bind(addr) {
            Ok(listener) => {
                tracing::debug!(fake = name, %addr, "accepting connections again");
                return Some(listener);
            }
            Err(error) => {
                // Keep trying rather than give up: a fake that lost its port is useless.
                if !warned {
                    tracing::warn!(fake = name, %addr, %error, "re-binding after refuse failed; retrying");
                    warned = true;
                }
                tokio::select! {
                    _ = stopped(stopping) => return None,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Serves one connection until it closes, the fake stops, or a refuse starts. The last two
/// drop the connection abruptly, ending any request in flight (hung ones included); each
/// request in flight records itself in the journal as it is dropped.
async fn connection<R: Responder>(
    stream: TcpStream,
    shared: Arc<Shared<R>>,
    mut stopping: watch::Receiver<bool>,
    mut refusing: watch::Receiver<bool>,
) {
    // Answers are small and latency is what is measured: do not wait to coalesce writes.
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Kill {
        fd: stream.as_raw_fd(),
        now: Notify::new(),
    });
    let service = {
        let kill = kill.clone();
        service_fn(move |request| {
            let (shared, kill) = (shared.clone(), kill.clone());
            async move { Ok::<_, Infallible>(shared.attempt(request, kill).await) }
        })
    };
    let serving = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    // The connection is served in a task of its own, and this one only waits for the three
    // ways it is ended from outside: a stream wakes its task for every chunk, and a `select!`
    // over serving and these signals would re-poll three `Notify` waiters each time.
    let mut serving = tokio::spawn(async move {
        if let Err(error) = serving.await {
            tracing::debug!(%error, "connection ended with an error");
        }
    });
    // Should this task be dropped (its fake's tasks aborted), the connection goes with it.
    let _guard = AbortOnDrop(serving.abort_handle());
    tokio::select! {
        _ = &mut serving => return,
        _ = stopped(&mut stopping) => {}
        _ = until(&mut refusing, true) => {}
        _ = kill.now.notified() => {}
    }
    // Aborting drops the connection and with it the socket: a close, or a reset if
    // `Kill::reset` set a zero linger first. Waiting for it keeps `shutdown` returning only
    // once nothing of the fake is left running.
    serving.abort();
    let _ = serving.await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How an attempt ends its whole connection (`reset`, `drop`). The fd stays valid while the
/// connection task runs, which is as long as any attempt on it can.
struct Kill {
    fd: RawFd,
    now: Notify,
}

impl Kill {
    /// Close without a response: the client sees the connection end (EOF, no status line).
    fn close(&self) {
        self.now.notify_one();
    }

    /// A zero linger makes `close` send RST and discard unsent data: a real "connection reset
    /// by peer", not an orderly FIN.
    fn reset(&self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `fd` is the open socket of this connection (see the struct doc); the option
        // value is a valid `linger` of the size passed.
        let done = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        if done != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "SO_LINGER failed; closing instead of resetting");
        }
        self.now.notify_one();
    }
}

impl<R: Responder> Shared<R> {
    /// One attempt: read, correlate, pick a fault, act it out, answer. Recorded when the
    /// answer's body has been sent or the attempt is dropped (client gone, shutdown, refuse).
    async fn attempt(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        kill: Arc<Kill>,
    ) -> Response<Body> {
        let arrival = Instant::now();
        let (head, body) = request.into_parts();
        let mut record = self.journal.begin(self.name, head.uri.path(), arrival);
        record.retry_count = sdk_retry_count(&head.headers);
        let mut entry = Entry {
            journal: self.journal.clone(),
            record: Some(record),
        };
        let body = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
            Ok(body) => body,
            Err(error) => {
                let reply = Reply::json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &serde_json::json!({ "error": format!("could not read the request body: {error}") }),
                );
                return entry.finish(reply);
            }
        };
        let request = Request {
            method: head.method,
            uri: head.uri,
            headers: head.headers,
            body,
            arrival,
        };
        let found = correlation_key(&request.body, &request.uri, &request.headers);
        let fallback = found
            .is_none()
            .then(|| self.responder.fallback_key(&request));
        let key = found.or(fallback.as_ref().and_then(Option::as_deref));
        let fault = self.switchboard.pick(request.uri.path(), key);
        let record = entry.record();
        record.key = Key::of(key);
        record.api_key = self.responder.api_key_sent(&request);
        record.exchange = self.responder.exchange(&request);
        record.fault = fault
            .as_ref()
            .map(|fault| self.journal.name(&fault.label()));

        let Some(fault) = fault else {
            return entry.finish(self.responder.answer(&request));
        };
        let reply =
            match fault {
                Fault::Status {
                    code,
                    retry_after,
                    retry_after_ms,
                    should_retry,
                    ref error_code,
                } => {
                    let mut reply =
                        match StatusCode::from_u16(code) {
                            // A "fault" with a success code is no error to shape: answer normally.
                            Ok(status) if status.is_success() => self.responder.answer(&request),
                            // hyper treats 1xx as interim answers; a fault must be a final one.
                            Ok(status) if !status.is_informational() => self
                                .responder
                                .status_reply(&request, status, retry_after, error_code.as_deref()),
                            _ => self.responder.status_reply(
                                &request,
                                StatusCode::INTERNAL_SERVER_ERROR,
                                retry_after,
                                error_code.as_deref(),
                            ),
                        };
                    // The retry hints are the fault's, the same for every fake: the official SDKs
                    // read `retry-after-ms` before `retry-after`, and obey `x-should-retry` over
                    // the status.
                    match retry_after {
                        Some(after) if retry_after_ms => reply.set_header(
                            HeaderName::from_static("retry-after-ms"),
                            HeaderValue::from(after.as_millis() as u64),
                        ),
                        _ => reply.headers.retain(|(name, _)| name != "retry-after-ms"),
                    }
                    if let Some(retry) = should_retry {
                        reply.set_header(
                            HeaderName::from_static("x-should-retry"),
                            HeaderValue::from_static(if retry { "true" } else { "false" }),
                        );
                    }
                    reply
                }
                Fault::Delay {
                    delay,
                    distribution,
                } => {
                    let delay = self.switchboard.sample_delay(delay, distribution);
                    tokio::time::sleep(delay).await;
                    self.responder.answer(&request)
                }
                // Never answer: this future is dropped when the client goes or the fake stops,
                // and `entry` then records the attempt with no status.
                Fault::Hang => std::future::pending().await,
                // The connection task drops the socket; this future goes with it, unanswered.
                Fault::Reset => {
                    kill.reset();
                    std::future::pending().await
                }
                Fault::Drop => {
                    kill.close();
                    std::future::pending().await
                }
                Fault::Malformed { what } => {
                    let mut reply = self.responder.answer_under(&request, &fault);
                    reply.malform(what);
                    reply
                }
                // `pick` never returns `Refuse`; the accept loop acts it out. The rest only the
                // responder knows how to act out (or answers normally if it cannot).
                ref other => self.responder.answer_under(&request, other),
            };
        entry.finish(reply)
    }
}

/// The journal entry of one attempt in flight. Records itself on drop, so an attempt that
/// never answers (hang, client gone, shutdown) is still journaled, with `status: None`; a
/// streamed answer carries its entry in the body and records when the body ends.
struct Entry {
    journal: Arc<Journal>,
    /// Taken when the entry records itself.
    record: Option<Record>,
}

impl Entry {
    fn record(&mut self) -> &mut Record {
        self.record.as_mut().expect("recorded only on drop")
    }

    fn finish(mut self, reply: Reply) -> Response<Body> {
        let record = self.record();
        record.status = Some(reply.status.as_u16());
        // A stream that is cut never delivers its closing usage chunk.
        let cut = reply.stream.as_ref().is_some_and(|script| {
            script.cut_after.is_some() || script.steps.iter().any(|s| matches!(s, Step::Cut))
        });
        if let (Some(usage), false) = (reply.usage, cut) {
            record.input_tokens = Some(usage.input);
            record.output_tokens = Some(usage.output);
        }
        if reply.stream.is_some() {
            record.chunks_sent = Some(0);
        }
        if let Some(exchange) = reply.exchange {
            record.exchange = Some(*exchange);
        }
        let body = match reply.stream {
            None => Body::from(reply.body),
            Some(script) => Body::from_stream(play(*script, self)),
        };
        let mut headers = HeaderMap::with_capacity(reply.headers.len());
        for (name, value) in reply.headers {
            headers.append(name, value);
        }
        let mut response = Response::new(body);
        *response.status_mut() = reply.status;
        *response.headers_mut() = headers;
        response
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.journal.finish(record);
        }
    }
}

/// The client's own retry number, where its SDK sends one: `x-stainless-retry-count` (the
/// OpenAI and Anthropic SDKs: 0 on the first try) or the AWS SDKs' `amz-sdk-request:
/// attempt=N; max=M` (1 on the first try).
fn sdk_retry_count(headers: &HeaderMap) -> Option<u32> {
    let text = |name: &str| headers.get(name)?.to_str().ok();
    if let Some(count) = text("x-stainless-retry-count") {
        return count.trim().parse().ok();
    }
    text("amz-sdk-request")?
        .split(';')
        .find_map(|part| part.trim().strip_prefix("attempt="))?
        .parse::<u32>()
        .ok()?
        .checked_sub(1)
}

/// The correlation key of a request: the last `fl-xxxxxxxx` nonce in the body (prompt,
/// embedding input) or the query string, else a propagated `x-request-id` header.
fn correlation_key<'a>(body: &'a [u8], uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    last_nonce(body)
        .or_else(|| last_nonce(uri.query()?.as_bytes()))
        .or_else(|| {
            let id = headers.get("x-request-id")?.to_str().ok()?.trim();
            (!id.is_empty()).then_some(id)
        })
}

/// Resolves once the fake is told to stop (or its handle is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the sender (inside the handle) is gone: that is a stop too.
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Resolves once the refusing flag equals `wanted`.
async fn until(refusing: &mut watch::Receiver<bool>, wanted: bool) {
    if refusing.wait_for(|now| *now == wanted).await.is_err() {
        // The switchboard is gone (it cannot be while `Shared` holds it): never flip.
        std::future::pending::<()>().await;
    }
}

/// Decodes `%XX` escapes and `+` (form encoding for a space); invalid escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_escapes_plus_and_bad_escapes() {
        assert_eq!(percent_decode("S%C3%A3o+Paulo"), "São Paulo");
        assert_eq!(percent_decode("New%20York"), "New York");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("a%4"), "a%4");
    }

    #[test]
    fn the_retry_count_is_read_from_either_sdk_family() {
        let headers = |name: &'static str, value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(name, HeaderValue::from_static(value));
            map
        };
        assert_eq!(
            sdk_retry_count(&headers("x-stainless-retry-count", "2")),
            Some(2)
        );
        assert_eq!(
            sdk_retry_count(&headers("amz-sdk-request", "attempt=1; max=3")),
            Some(0)
        );
        assert_eq!(
            sdk_retry_count(&headers("amz-sdk-request", "attempt=3; max=3")),
            Some(2)
        );
        assert_eq!(sdk_retry_count(&headers("amz-sdk-request", "max=3")), None);
        assert_eq!(sdk_retry_count(&HeaderMap::new()), None);
    }

    #[test]
    fn the_key_prefers_the_nonce_and_falls_back_to_the_request_id() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req-7"));
        let uri: Uri = "/weather?city=Paris&q=%5Bfl-0123abcd%5D".parse().unwrap();
        assert_eq!(correlation_key(b"", &uri, &headers), Some("fl-0123abcd"));
        assert_eq!(
            correlation_key(br#"{"input":"[fl-99999999]"}"#, &uri, &headers),
            Some("fl-99999999")
        );
        let plain: Uri = "/weather?city=Paris".parse().unwrap();
        assert_eq!(correlation_key(b"", &plain, &headers), Some("req-7"));
        assert_eq!(correlation_key(b"", &plain, &HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let reply = Reply::json(StatusCode::TOO_MANY_REQUESTS, &serde_json::json!({}))
            .with_retry_after(Some(Duration::from_millis(1200)));
        assert_eq!(reply.header("retry-after").unwrap(), "2");
        let reply = Reply::json(StatusCode::TOO_MANY_REQUESTS, &serde_json::json!({}))
            .with_retry_after(Some(Duration::from_secs(3)));
        assert_eq!(reply.header("retry-after").unwrap(), "3");
    }
}
