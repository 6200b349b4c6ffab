//! `faultline record --upstream URL`: a loopback proxy in front of an LLM API (any the fake LLM
//! speaks) that forwards each request unchanged, streams each answer back as it arrives, and
//! appends the exchange, with when each chunk of the answer came, to a recording the fake LLM
//! can replay (`faultline fake llm --replay FILE`). `format` owns the file.
//!
//! The file is bounded (`--max-bytes`): an exchange that would pass the cap is counted and
//! left out, never half-written, and the proxy goes on forwarding. Each line is written whole,
//! so Ctrl-C (or a kill) never leaves a broken line; on Ctrl-C answers still streaming get a
//! few seconds to end and be recorded.

pub mod format;

use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Response, StatusCode};
use bytes::Bytes;

use crate::sync::LockExt;
use format::{Chunk, Exchange};

/// Request bodies above this are refused with 413, as the fakes refuse them.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
/// After Ctrl-C, how long answers still streaming may take to end and be recorded.
const DRAIN: Duration = Duration::from_secs(5);
/// How long connecting to the upstream may take (it is on this machine).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `faultline record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The API to record, on this machine (e.g. http://127.0.0.1:8080, a fake LLM or a local
    /// gateway); requests are forwarded to it with their path and query unchanged.
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// Loopback port to listen on (0 picks a free one). Point the SDK here instead.
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// The recording; exchanges are appended to it (created if missing).
    #[arg(long, value_name = "FILE", default_value = "faultline-recording.jsonl")]
    pub out: PathBuf,
    /// The file's size cap in bytes: exchanges that would pass it are left out (and counted).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_bytes: u64,
}

/// Headers that describe one connection, not the message: neither forwarded nor recorded.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Where exchanges go: the file, its size so far, and what was left out.
struct Recorder {
    file: Mutex<std::fs::File>,
    written: Mutex<u64>,
    max_bytes: u64,
    recorded: AtomicUsize,
    dropped: AtomicUsize,
    in_flight: AtomicUsize,
}

impl Recorder {
    /// Appends `exchange` as one line, unless it would pass the cap.
    fn append(&self, exchange: &Exchange) {
        let mut line = match serde_json::to_vec(exchange) {
            Ok(line) => line,
            Err(error) => {
                tracing::warn!(%error, "could not serialize an exchange; left out");
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        line.push(b'\n');
        let mut written = self.written.locked();
        if *written + line.len() as u64 > self.max_bytes {
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!(
                    "faultline record: the recording reached --max-bytes {}; further exchanges \
                     are forwarded but not recorded",
                    self.max_bytes
                );
            }
            return;
        }
        use std::io::Write;
        let mut file = self.file.locked();
        // One write per line: the file never holds half an exchange.
        match file.write_all(&line).and_then(|()| file.flush()) {
            Ok(()) => {
                *written += line.len() as u64;
                self.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                eprintln!("faultline record: could not write the recording: {error}");
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    recorder: Recorder,
}

/// Runs the proxy until Ctrl-C, then prints what was recorded.
pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let upstream = crate::loopback::check(&args.upstream, "http")
        .map_err(|why| anyhow::anyhow!("--upstream URL {why}"))?;
    if args.max_bytes == 0 {
        anyhow::bail!("--max-bytes is 0; give the recording's size cap in bytes, e.g. 67108864");
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)
        .with_context(|| format!("cannot open --out {} for appending", args.out.display()))?;
    let existing = file.metadata().map(|m| m.len()).unwrap_or(0);
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("could not build the HTTP client")?;
    let proxy = Arc::new(Proxy {
        upstream: upstream.clone(),
        client,
        recorder: Recorder {
            file: Mutex::new(file),
            written: Mutex::new(existing),
            max_bytes: args.max_bytes,
            recorded: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
        },
    });
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on 127.0.0.1:{}; pick another --port",
                    args.port
                )
            })?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    println!("recording on http://{addr} -> {upstream}");
    println!("  writing {}", args.out.display());
    println!("  OPENAI_BASE_URL=http://{addr}/v1");
    println!("  ANTHROPIC_BASE_URL=http://{addr}");
    println!("Ctrl-C to stop");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    tokio::signal::ctrl_c()
        .await
        .context("failed to listen for Ctrl-C")?;
    let _ = stop.send(());
    // Answers still streaming may end (and be recorded) for a while; then we go regardless.
    let deadline = tokio::time::Instant::now() + DRAIN;
    while proxy.recorder.in_flight.load(Ordering::Acquire) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.abort();
    let recorder = &proxy.recorder;
    let unfinished = recorder.in_flight.load(Ordering::Acquire);
    println!(
        "recorded {} exchanges to {}; {} left out (--max-bytes {}); {unfinished} still \
         unanswered or streaming at Ctrl-C, not recorded",
        recorder.recorded.load(Ordering::Relaxed),
        args.out.display(),
        recorder.dropped.load(Ordering::Relaxed),
        args.max_bytes,
    );
    Ok(())
}

/// Forwards one request and streams its answer back, recording it on the side.
async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response<Body> {
    let arrival = Instant::now();
    // Counted from arrival to the answer's last byte, whether it ends, fails or is dropped.
    let in_flight = InFlight::enter(proxy.clone());
    let (head, body) = request.into_parts();
    let path = head
        .uri
        .path_and_query()
        .map_or_else(|| head.uri.path().to_owned(), |p| p.as_str().to_owned());
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(error) => {
            return failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("faultline record could not read the request body: {error}"),
            )
        }
    };
    let header_pairs = || {
        head.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
    };
    let secrets = format::secrets_in(header_pairs(), &path);
    let mut exchange = Exchange {
        v: format::VERSION,
        method: head.method.to_string(),
        path: format::redact_path(&path),
        fingerprint: format::fingerprint(head.method.as_str(), &path, &body),
        status: 0,
        headers: Vec::new(),
        request_headers: format::redact_headers(header_pairs()),
        chunks: Vec::new(),
        cut: false,
    };

    let mut outgoing = proxy
        .client
        .request(head.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &head.headers {
        if !is_hop_by_hop(name.as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let mut answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(error) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "faultline record could not reach the upstream {}: {error}",
                    proxy.upstream
                ),
            )
        }
    };
    exchange.status = answer.status().as_u16();
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if is_hop_by_hop(name.as_str()) {
            continue;
        }
        response = response.header(name, value);
        let kept = if format::is_secret_header(name.as_str()) {
            format::REDACTED.to_owned()
        } else {
            // A header that echoes the request's credential loses it too.
            String::from_utf8_lossy(&format::scrub(value.as_bytes(), &secrets)).into_owned()
        };
        exchange.headers.push((name.as_str().to_owned(), kept));
    }

    // The body goes to the client chunk by chunk as it arrives; the copy for the file is
    // dropped (and counted) once it alone would pass the file's cap, to bound memory.
    let (to_client, from_upstream) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let recording = proxy.clone();
    tokio::spawn(async move {
        let mut kept_bytes: u64 = 0;
        let mut too_large = false;
        let mut client_gone = false;
        loop {
            match answer.chunk().await {
                Ok(Some(chunk)) => {
                    let ms = arrival.elapsed().as_millis() as u64;
                    kept_bytes += chunk.len() as u64;
                    too_large |= kept_bytes > recording.recorder.max_bytes;
                    if !too_large {
                        let scrubbed = format::scrub(&chunk, &secrets);
                        exchange.chunks.push(Chunk::new(ms, &scrubbed));
                    } else {
                        exchange.chunks.clear();
                    }
                    // A client that went away does not stop the recording of the answer.
                    client_gone = client_gone || to_client.send(Ok(chunk)).await.is_err();
                }
                Ok(None) => break,
                Err(error) => {
                    exchange.cut = true;
                    let _ = to_client
                        .send(Err(std::io::Error::other(format!(
                            "the upstream broke off the answer: {error}"
                        ))))
                        .await;
                    break;
                }
            }
        }
        drop(to_client);
        if too_large {
            recording.recorder.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            recording.recorder.append(&exchange);
        }
        drop(in_flight);
    });
    let stream = futures::stream::unfold(from_upstream, |mut from| async move {
        from.recv().await.map(|item| (item, from))
    });
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|error| {
            failure(
                StatusCode::BAD_GATEWAY,
                &format!("faultline record could not pass on the upstream's answer: {error}"),
            )
        })
}

/// One exchange between its request's arrival and its answer's end (or its drop).
struct InFlight(Arc<Proxy>);

impl InFlight {
    fn enter(proxy: Arc<Proxy>) -> InFlight {
        proxy.recorder.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(proxy)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.recorder.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The proxy's own error, in OpenAI's shape (the most common one SDKs read), naming
/// faultline so it is not mistaken for the upstream's.
fn failure(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "error": { "message": message, "type": "faultline_record", "param": null, "code": null }
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        HeaderName::from_static("content-type"),
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}
