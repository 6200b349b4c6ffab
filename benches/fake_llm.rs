//! Throughput and memory of the fake LLM against two baselines, with one load generator:
//!
//! 1. non-streaming chat completions per second: the fake (journal on, a fault rule on that
//!    never matches, so the switchboard is consulted on every request) vs a plain axum handler
//!    returning the same body vs wiremock's `MockServer` (request recording off) serving it;
//! 2. resident memory of the whole process before and after `FAULTLINE_BENCH_REQUESTS`
//!    requests to the fake (default 1,000,000), with the journal at the capacity runs use;
//! 3. concurrent SSE streams of 100 tokens at 20 ms inter-token delay: the fake (slow_stream
//!    fault) vs a minimal axum SSE handler, inter-token lateness p99 at the client.
//!
//! Everything on 127.0.0.1, clients and servers in one process and runtime (so each server
//! competes with the same client for the same cores). Run:
//!
//!     cargo bench --bench fake_llm
//!     FAULTLINE_BENCH_SECS=5 FAULTLINE_BENCH_REQUESTS=1000000 FAULTLINE_BENCH_STREAMS=1000 cargo bench --bench fake_llm

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use bytes::Bytes;
use faultline::fakes::fault::{parse_rule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::llm::{self, LlmOptions};

const KEY: &str = "sk-bench";
/// In-flight requests of the load generator.
const CONCURRENCY: usize = 64;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn request_body() -> Bytes {
    Bytes::from(
        serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [{ "role": "user", "content": "What's the weather in Paris? [fl-1a2b3c4d]" }],
        })
        .to_string(),
    )
}

/// Sends chat requests with `CONCURRENCY` workers until `duration` passes or `max` are done.
/// Returns (completed, failed, elapsed).
async fn load(url: &str, duration: Duration, max: u64) -> (u64, u64, Duration) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let body = request_body();
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let end = started + duration;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.to_owned(), body.clone());
            let (done, failed) = (done.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < end && done.load(Ordering::Relaxed) < max {
                    let sent = client
                        .post(&url)
                        .bearer_auth(KEY)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    (
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed(),
    )
}

async fn start_fake(capacity: usize) -> faultline::fakes::FakeHandle {
    let board = Arc::new(Switchboard::new(1));
    // A rule that is on but matches no route: the hot path still walks the switchboard.
    board.activate(parse_rule(r#"{"kind":"hang","route":"/never"}"#, 1).unwrap());
    llm::start(
        LlmOptions {
            api_key: KEY.into(),
            seed: 1,
        },
        board,
        Arc::new(Journal::new(Instant::now(), capacity)),
    )
    .await
    .unwrap()
}

async fn start_axum(body: Bytes) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body).into_response() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn start_wiremock(body: Bytes) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    let server = wiremock::MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    wiremock::Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_raw(body.to_vec(), "application/json"),
        )
        .mount(&server)
        .await;
    server
}

/// Runs `streams` concurrent SSE requests and returns (completed, lateness p99 in ms, events).
/// Lateness: how much later than 20 ms after the previous event each event arrived.
async fn stream_load(url: &str, body: Bytes, streams: usize) -> (usize, f64, u64) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(streams)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.to_owned(), body.clone());
            tokio::spawn(async move {
                let mut response = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .ok()?;
                let mut late = Vec::with_capacity(128);
                let mut last: Option<Instant> = None;
                let mut events = 0u64;
                let mut buffered = Vec::new();
                while let Ok(Some(chunk)) = response.chunk().await {
                    let now = Instant::now();
                    buffered.extend_from_slice(&chunk);
                    let frames = buffered.windows(2).filter(|w| w == b"\n\n").count() as u64;
                    if frames > events {
                        if let Some(previous) = last {
                            let gap = now.duration_since(previous).as_secs_f64() * 1000.0;
                            late.push((gap - 20.0).max(0.0));
                        }
                        last = Some(now);
                        events = frames;
                    }
                    if buffered.len() > 1 << 16 {
                        buffered.drain(..buffered.len() - 2);
                        events = 0;
                    }
                }
                Some((late, events))
            })
        })
        .collect();
    let mut lateness = Vec::new();
    let (mut completed, mut events) = (0, 0);
    for task in tasks {
        if let Ok(Some((late, n))) = task.await {
            completed += 1;
            events += n;
            lateness.extend(late);
        }
    }
    lateness.sort_by(f64::total_cmp);
    let p99 = lateness
        .get((lateness.len() as f64 * 0.99) as usize)
        .copied()
        .unwrap_or(f64::NAN);
    (completed, p99, events)
}

async fn start_axum_sse() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            let stream = futures::stream::unfold(0u32, |i| async move {
                if i > 100 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                let frame = if i == 100 {
                    Bytes::from_static(b"data: [DONE]\n\n")
                } else {
                    Bytes::from(format!("data: {{\"token\":{i}}}\n\n"))
                };
                Some((Ok::<_, std::io::Error>(frame), i + 1))
            });
            (
                [("content-type", "text/event-stream")],
                axum::body::Body::from_stream(stream),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (scripts/test) runs this binary
    // without it, and a load run has no place in the test suite.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("fake_llm bench: skipped (run it with cargo bench --bench fake_llm)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let secs = Duration::from_secs(env_or("FAULTLINE_BENCH_SECS", 5));
        let requests = env_or("FAULTLINE_BENCH_REQUESTS", 1_000_000);
        let streams = env_or("FAULTLINE_BENCH_STREAMS", 1000) as usize;
        println!(
            "faultline fake llm bench: {} cores, {CONCURRENCY} in flight, {secs:?} per server",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );

        let fake = start_fake(200_000).await;
        let fake_url = format!("{}/v1/chat/completions", fake.base_url());
        let sample = reqwest::Client::new()
            .post(&fake_url)
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(request_body())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let axum_url = format!("http://{}/v1/chat/completions", start_axum(sample.clone()).await);
        let wiremock = start_wiremock(sample.clone()).await;
        let wiremock_url = format!("{}/v1/chat/completions", wiremock.uri());

        println!("\n| server (non-streaming chat, {} B body) | req/s | failed |", sample.len());
        println!("|---|---:|---:|");
        let mut rates = Vec::new();
        for (name, url) in [
            ("faultline fake llm", &fake_url),
            ("plain axum handler", &axum_url),
            ("wiremock MockServer", &wiremock_url),
        ] {
            load(url, Duration::from_secs(1), u64::MAX).await; // warm up
            let (done, failed, took) = load(url, secs, u64::MAX).await;
            let rate = done as f64 / took.as_secs_f64();
            rates.push(rate);
            println!("| {name} | {rate:.0} | {failed} |");
        }
        println!(
            "\nfake / axum = {:.2}x (goal >= 0.7x); fake / wiremock = {:.2}x (goal >= 3x)",
            rates[0] / rates[1],
            rates[0] / rates[2]
        );
        drop(wiremock);

        let memory_fake = start_fake(200_000).await;
        let url = format!("{}/v1/chat/completions", memory_fake.base_url());
        load(&url, Duration::from_secs(1), 20_000).await;
        let before = rss_mib();
        let (done, failed, took) = load(&url, Duration::from_secs(3600), requests).await;
        let after = rss_mib();
        println!(
            "\nmemory: {done} requests ({failed} failed) in {:.1}s to the fake (journal capacity 200k): \
             RSS {before:.1} MiB -> {after:.1} MiB ({:+.1} MiB; goal within 50 MB)",
            took.as_secs_f64(),
            after - before
        );
        memory_fake.shutdown().await;

        let sse_fake = start_fake(200_000).await;
        sse_fake.switchboard().activate(
            parse_rule(r#"{"kind":"slow_stream","first_token":"20ms","inter_token":"20ms"}"#, 2).unwrap(),
        );
        // mocks/answers.toml answers "essay" with exactly 100 words: 100 content chunks.
        let sse_body = Bytes::from(
            serde_json::json!({ "model": "m", "stream": true,
                "messages": [{ "role": "user", "content": "Write an essay" }] })
            .to_string(),
        );
        let axum_sse = format!("http://{}/v1/chat/completions", start_axum_sse().await);
        println!("\n| SSE, {streams} concurrent streams, 20 ms inter-token | streams done | events | lateness p99 ms | RSS MiB after |");
        println!("|---|---:|---:|---:|---:|");
        for (name, url) in [
            ("minimal axum SSE (100 tokens)", axum_sse.clone()),
            ("faultline fake llm slow_stream", format!("{}/v1/chat/completions", sse_fake.base_url())),
        ] {
            let before = rss_mib();
            let (done, p99, events) = stream_load(&url, sse_body.clone(), streams).await;
            println!(
                "| {name} | {done} | {events} | {p99:.1} | {:.1} (was {before:.1}) |",
                rss_mib()
            );
        }
    });
}
