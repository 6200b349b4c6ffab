//! The load engine against wrk, on one fast server, in one run (issue 14 item 6):
//!
//!     cargo bench --bench load
//!
//! The server is `faultline fake tool weather` (its own process, `GET /weather?city=Paris`).
//! One run measures, each for a few seconds with 64 connections or users:
//! - wrk (1 thread, 64 connections): the ceiling of this machine and server;
//! - faultline's own engine with full evidence (every request a [`Record`]): 64 closed users
//!   (`ramping_users`, no think time), and `constant_rate` asked for more than it can send with
//!   `max_in_flight = 64`;
//! - Goose users with full evidence (the `closed` executor, 64 users, no think time);
//! - `constant_rate` at 1,000, 2,000 and 5,000 arrivals/s: achieved vs asked, lateness p99;
//! - a distributed run (issue 18): the same 64 closed users made by `faultline worker`
//!   processes of an in-process coordinator, one worker then two, full evidence uploaded and
//!   merged; prints the ratio of their requests/s.
//!
//! Nothing is asserted: the figures are printed for a person to read (README "Load engine").
//! wrk comes from Debian (scripts/provision/bench-wrk.sh, run by scripts/test).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::evidence::LoadStats;
use faultline::load::{self, Live, LoadSpec};
use faultline::scenario::api::{Api, RequestShape};
use faultline::scenario::{Arrivals, Executor, Flow, UserStage};
use tokio::sync::watch;

const CONNECTIONS: usize = 64;
const SECONDS: u64 = 5;

/// The fake, killed when dropped so a failed bench leaves no server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server() -> (Server, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["fake", "tool", "weather", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("faultline fake tool weather starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the fake never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (Server(child), port)
}

/// wrk's requests per second.
fn wrk(port: u16) -> f64 {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{SECONDS}s"),
            &format!("http://127.0.0.1:{port}/weather?city=Paris"),
        ])
        .output()
        .unwrap_or_else(|error| {
            eprintln!("cannot run wrk ({error}): run scripts/test once, which installs wrk");
            std::process::exit(1)
        });
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output: {text}"))
}

fn spec(port: u16, executor: Executor, users: usize, seconds: u64) -> LoadSpec {
    let api = Api {
        chat: RequestShape {
            method: "GET".into(),
            path: "/weather?city=Paris".into(),
            headers: Default::default(),
            body: serde_json::Value::Null,
        },
        ..Api::default()
    };
    LoadSpec {
        base_url: format!("http://127.0.0.1:{port}"),
        api,
        executor,
        users,
        duration: Duration::from_secs(seconds),
        think_time: Duration::ZERO,
        request_timeout: Duration::from_secs(10),
        flows: vec![Flow {
            name: "weather".into(),
            weight: 1,
            messages: vec!["Paris".into()],
            kind: Default::default(),
            request: Default::default(),
        }],
        seed: 7,
        share: faultline::load::Share::WHOLE,
    }
}

/// Runs the load; returns (requests recorded per second, the load's own account).
async fn drive(spec: &LoadSpec) -> (f64, LoadStats) {
    let (_stop_tx, stop) = watch::channel(false);
    let client = load::client(spec).expect("the load's client builds");
    let started = Instant::now();
    let driven = load::drive(spec, client, started, stop, Arc::new(Live::default()))
        .await
        .expect("the load runs");
    let ok = driven.records.iter().filter(|r| r.succeeded()).count();
    (ok as f64 / spec.duration.as_secs_f64(), driven.stats)
}

/// The same 64 closed users made by `workers` local `faultline worker` processes through an
/// in-process coordinator, records uploaded and merged; returns requests recorded per second.
async fn distributed(port: u16, workers: usize) -> f64 {
    use faultline::distributed::{Coordinator, LocalWorkers, Setup};
    let users = Executor::RampingUsers {
        start_users: CONNECTIONS,
        stages: vec![UserStage {
            users: CONNECTIONS,
            duration: Duration::from_secs(SECONDS),
        }],
    };
    let spec = spec(port, users, 0, SECONDS);
    let coordinator = Coordinator::start(Setup {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: "bench".into(),
        count: workers,
        max_lost_share: 0.0,
        join_timeout: Duration::from_secs(30),
        progress: false,
    })
    .await
    .expect("the coordinator listens");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_faultline"));
    let local = LocalWorkers::spawn(exe, &coordinator.url(), "bench", workers).unwrap();
    coordinator.adopt(local);
    let (_interrupt_tx, interrupt) = watch::channel(false);
    let start = coordinator
        .release(&spec, "bench", Vec::new(), &interrupt)
        .await
        .expect("the workers join");
    let (_stop_tx, stop) = watch::channel(false);
    let driven = coordinator
        .collect(&spec, start, stop, Arc::new(Live::default()))
        .await
        .expect("the workers report");
    coordinator.shutdown().await;
    assert!(
        driven.stats.workers.iter().all(|w| w.lost.is_none()),
        "{:?}",
        driven.stats.workers
    );
    let ok = driven.records.iter().filter(|r| r.succeeded()).count();
    ok as f64 / spec.duration.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (scripts/test) runs this binary
    // without it, and a load run has no place in the test suite.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("load bench: skipped (run it with cargo bench --bench load)");
        return;
    }
    let (_server, port) = start_server();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let wrk_rps = wrk(port);
    println!("wrk -t1 -c{CONNECTIONS}: {wrk_rps:.0} requests/s");

    let users = Executor::RampingUsers {
        start_users: CONNECTIONS,
        stages: vec![UserStage {
            users: CONNECTIONS,
            duration: Duration::from_secs(SECONDS),
        }],
    };
    let (rps, _) = runtime.block_on(drive(&spec(port, users, 0, SECONDS)));
    println!(
        "own engine, {CONNECTIONS} closed users, full evidence: {rps:.0} requests/s = {:.2}x wrk",
        rps / wrk_rps
    );

    let flood = Executor::ConstantRate {
        rate: 50_000.0,
        max_in_flight: CONNECTIONS,
        arrivals: Arrivals::Even,
    };
    let (rps, _) = runtime.block_on(drive(&spec(port, flood, 0, SECONDS)));
    println!(
        "own engine, constant_rate 50k/s, max_in_flight {CONNECTIONS}, full evidence: {rps:.0} \
         requests/s = {:.2}x wrk",
        rps / wrk_rps
    );

    let (rps, _) = runtime.block_on(drive(&spec(port, Executor::Closed, CONNECTIONS, SECONDS)));
    println!(
        "Goose, {CONNECTIONS} closed users, full evidence: {rps:.0} requests/s = {:.2}x wrk",
        rps / wrk_rps
    );

    for rate in [1_000.0, 2_000.0, 5_000.0] {
        let executor = Executor::ConstantRate {
            rate,
            max_in_flight: 1_000,
            arrivals: Arrivals::Even,
        };
        let (_, stats) = runtime.block_on(drive(&spec(port, executor, 0, 3)));
        println!(
            "constant_rate {rate:.0}/s for 3 s: asked {}, sent {} ({:+.2}% of asked), dropped {}, \
             late {}, lateness p99 {:.2} ms",
            stats.asked,
            stats.sent,
            (stats.sent as f64 / (rate * 3.0) - 1.0) * 100.0,
            stats.dropped,
            stats.late,
            stats.lateness_p99_ms,
        );
    }

    let one = runtime.block_on(distributed(port, 1));
    let two = runtime.block_on(distributed(port, 2));
    println!(
        "distributed, {CONNECTIONS} closed users, full evidence: 1 worker {one:.0} requests/s, \
         2 workers {two:.0} requests/s: --workers 2 / 1 worker = {:.2}x",
        two / one
    );
}
