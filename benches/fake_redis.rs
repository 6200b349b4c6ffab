//! Fake Redis vs a real redis-server, both measured by `redis-benchmark -t get,set` in one run
//! on this machine, and the fake's resident memory over 1,000,000 more commands.
//!
//!     cargo bench --bench fake_redis
//!
//! Both servers run as their own processes (`faultline fake redis`, built in release for the
//! bench, and `redis-server` with persistence off) on free loopback ports. Nothing is asserted:
//! the figures are printed for a person to read (the target is at least 0.5x real Redis).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Requests per redis-benchmark test (GET and SET each), as in the issue.
const REQUESTS: &str = "200000";

/// A child process killed when dropped, so a failed bench leaves no server behind.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            eprintln!("cannot run {program} ({error}): run scripts/test once, which installs redis-server and redis-tools");
            std::process::exit(1)
        })
}

fn start_real() -> Server {
    let port = free_port();
    let p = port.to_string();
    let child = spawn(
        "redis-server",
        &[
            "--port",
            &p,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    );
    wait_listening(port);
    Server { child, port }
}

fn start_fake() -> Server {
    let port = free_port();
    let p = port.to_string();
    let mut child = spawn(
        env!("CARGO_BIN_EXE_faultline"),
        &["fake", "redis", "--port", &p],
    );
    // The fake prints its URL once it listens.
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("redis://"), "fake printed {line:?}");
    wait_listening(port);
    Server { child, port }
}

/// Runs redis-benchmark quietly; returns (test, requests per second) per line it printed.
fn benchmark(port: u16, tests: &str, requests: &str) -> Vec<(String, f64)> {
    let output = Command::new("redis-benchmark")
        .args(["-t", tests, "-n", requests, "-q", "-p", &port.to_string()])
        .output()
        .unwrap_or_else(|error| {
            eprintln!("cannot run redis-benchmark ({error}): run scripts/test once, which installs redis-tools");
            std::process::exit(1)
        });
    let text = String::from_utf8_lossy(&output.stdout);
    // Progress lines end in \r; the results are the lines "SET: 123.45 requests per second, …".
    text.split(['\r', '\n'])
        .filter_map(|line| {
            let (test, rest) = line.split_once(": ")?;
            let rps = rest
                .strip_suffix(" requests per second")
                .or_else(|| rest.split_once(" requests per second,").map(|(rps, _)| rps))?;
            Some((test.to_string(), rps.trim().parse().ok()?))
        })
        .collect()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (scripts/test) runs this binary
    // without it, and a load run has no place in the test suite.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("fake_redis bench: skipped (run it with cargo bench --bench fake_redis)");
        return;
    }
    let real = start_real();
    let fake = start_fake();
    let command = format!("redis-benchmark -t get,set -n {REQUESTS} -q -p PORT");
    println!("throughput: {command}");
    let real_results = benchmark(real.port, "get,set", REQUESTS);
    let fake_results = benchmark(fake.port, "get,set", REQUESTS);
    println!(
        "{:<6} {:>14} {:>14} {:>8}",
        "test", "redis-server", "fake", "ratio"
    );
    for (test, real_rps) in &real_results {
        let fake_rps = fake_results
            .iter()
            .find(|(t, _)| t == test)
            .map_or(0.0, |(_, rps)| *rps);
        println!(
            "{test:<6} {real_rps:>14.0} {fake_rps:>14.0} {:>7.2}x",
            fake_rps / real_rps
        );
    }

    let pid = fake.child.id();
    let before = rss_kib(pid);
    // 500,000 GETs and 500,000 SETs: 1,000,000 commands through the fake.
    benchmark(fake.port, "get,set", "500000");
    let after = rss_kib(pid);
    println!(
        "fake RSS over 1,000,000 more commands (redis-benchmark -t get,set -n 500000): \
         {before} KiB before, {after} KiB after"
    );
}
