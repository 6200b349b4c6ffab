//! The fake Redis over real loopback sockets: raw RESP (as mini-redis's tests/server.rs does),
//! redis-rs as an application would use it, each fault as the client sees it, the journal, a
//! differential run against a real redis-server, and redis-py driven from a Python script.

mod common;

use common::python;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use faultline::fakes::fault::{Fault, FaultRule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::redis::frame::{Frame, FrameError};
use faultline::fakes::redis::{start, start_upstash, Keyspace, RedisOptions};
use faultline::fakes::FakeHandle;
use redis::AsyncCommands;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start_fake() -> FakeHandle {
    start_fake_with(RedisOptions::default()).await
}

async fn start_fake_with(options: RedisOptions) -> FakeHandle {
    start(
        options,
        Arc::new(Switchboard::new(7)),
        Arc::new(Journal::new(Instant::now(), 10_000)),
    )
    .await
    .expect("fake redis starts")
}

fn rule(id: usize, fault: Fault, route: Option<&str>) -> FaultRule {
    FaultRule {
        id,
        fault,
        route: route.map(String::from),
        rate: 1.0,
        first_attempts: None,
    }
}

fn loading() -> Fault {
    Fault::RedisError {
        reply: "LOADING Redis is loading the dataset in memory".into(),
    }
}

/// A raw RESP client: writes commands as multibulk arrays, reads whole reply frames.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.stream.write_all(out.as_bytes()).await.unwrap();
    }

    /// The next reply's raw bytes; `None` if the server closed the connection first.
    async fn reply_bytes(&mut self) -> Option<Vec<u8>> {
        loop {
            match Frame::parse(&self.buf) {
                Ok((_, used)) => {
                    let bytes = self.buf[..used].to_vec();
                    self.buf.advance(used);
                    return Some(bytes);
                }
                Err(FrameError::Incomplete) => {}
                Err(FrameError::Protocol(error)) => panic!("bad reply: {error}"),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    async fn reply(&mut self) -> Frame {
        let bytes = self.reply_bytes().await.expect("a reply");
        Frame::parse(&bytes).unwrap().0
    }

    async fn call(&mut self, args: &[&str]) -> Frame {
        self.send(args).await;
        self.reply().await
    }
}

fn error(text: &str) -> Frame {
    Frame::Error(text.into())
}

#[tokio::test]
async fn raw_resp_set_then_get_answers_ok_then_the_value() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;

    raw.stream
        .write_all(b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n")
        .await
        .unwrap();
    assert_eq!(raw.reply_bytes().await.unwrap(), b"+OK\r\n");
    raw.stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n")
        .await
        .unwrap();
    assert_eq!(raw.reply_bytes().await.unwrap(), b"$5\r\nworld\r\n");
    raw.stream.write_all(b"GET nope\r\n").await.unwrap();
    assert_eq!(raw.reply_bytes().await.unwrap(), b"$-1\r\n");
}

#[tokio::test]
async fn pipelined_commands_split_across_writes_are_answered_in_order() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;
    let pipeline = b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n";

    // One byte at a time: the server must wait for whole frames, never misparse a partial one.
    for byte in pipeline {
        raw.stream.write_all(&[*byte]).await.unwrap();
    }

    assert_eq!(raw.reply().await, Frame::Simple("PONG".into()));
    assert_eq!(raw.reply().await, Frame::ok());
    assert_eq!(raw.reply().await, Frame::Integer(2));
}

#[tokio::test]
async fn hello_3_switches_the_connection_to_resp3_maps_and_nulls() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;

    raw.send(&["HELLO", "3"]).await;
    let hello = raw.reply_bytes().await.unwrap();
    raw.send(&["HSET", "h", "f", "v"]).await;
    raw.reply().await;
    raw.send(&["HGETALL", "h"]).await;
    let map = raw.reply_bytes().await.unwrap();
    raw.send(&["GET", "missing"]).await;
    let null = raw.reply_bytes().await.unwrap();

    assert!(hello.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"));
    assert_eq!(map, b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(null, b"_\r\n");
}

#[tokio::test]
async fn unknown_commands_wrong_arity_and_wrong_types_answer_as_redis_does() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;

    assert_eq!(
        raw.call(&["FOO", "a", "b"]).await,
        error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        raw.call(&["get"]).await,
        error("ERR wrong number of arguments for 'get' command")
    );
    raw.call(&["LPUSH", "list", "x"]).await;
    assert_eq!(
        raw.call(&["GET", "list"]).await,
        error("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    // The connection survives every one of those errors.
    assert_eq!(raw.call(&["PING"]).await, Frame::Simple("PONG".into()));
}

#[tokio::test]
async fn a_protocol_error_is_answered_then_the_connection_closes() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;

    raw.stream
        .write_all(b"*1\r\n$999999999999\r\n")
        .await
        .unwrap();

    assert_eq!(
        raw.reply().await,
        error("ERR Protocol error: invalid bulk length")
    );
    assert_eq!(raw.reply_bytes().await, None);
}

#[tokio::test]
async fn random_bytes_never_take_the_server_down() {
    let fake = start_fake().await;
    let mut state = 0x2545f4914f6cdd1du64;
    for _ in 0..50 {
        let mut raw = Raw::connect(fake.addr()).await;
        let garbage: Vec<u8> = (0..256)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"*$\r\n0123456789-abc "[(state % 19) as usize]
            })
            .collect();
        raw.stream.write_all(&garbage).await.unwrap();
        let _ = raw.stream.shutdown().await;
        while raw.reply_bytes().await.is_some() {}
    }
    let mut raw = Raw::connect(fake.addr()).await;
    assert_eq!(raw.call(&["PING"]).await, Frame::Simple("PONG".into()));
}

#[tokio::test]
async fn requirepass_turns_clients_away_until_they_auth() {
    let fake = start_fake_with(RedisOptions {
        password: Some("s3cret".into()),
        ..RedisOptions::default()
    })
    .await;
    let mut raw = Raw::connect(fake.addr()).await;

    assert_eq!(
        raw.call(&["GET", "k"]).await,
        error("NOAUTH Authentication required.")
    );
    assert_eq!(
        raw.call(&["AUTH", "wrong"]).await,
        error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(raw.call(&["AUTH", "s3cret"]).await, Frame::ok());
    assert_eq!(raw.call(&["GET", "k"]).await, Frame::Null);

    let url = format!("redis://:s3cret@{}", fake.addr());
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("redis-rs authenticates");
    let _: () = con.set("k", "v").await.unwrap();
}

async fn redis_rs(fake: &FakeHandle) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    redis::Client::open(fake.base_url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("redis-rs connects")
}

#[tokio::test]
async fn redis_rs_caches_with_a_ttl_and_the_entry_expires() {
    let fake = start_fake().await;
    assert!(fake.base_url().starts_with("redis://127.0.0.1:"));
    let mut con = redis_rs(&fake).await;

    let _: () = con.set_ex("answer:fl-0000abcd", "42", 100).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("lived")
        .arg("PX")
        .arg(150)
        .query_async(&mut con)
        .await
        .unwrap();
    let cached: Option<String> = con.get("answer:fl-0000abcd").await.unwrap();
    let ttl: i64 = con.ttl("answer:fl-0000abcd").await.unwrap();
    let before: Option<String> = con.get("short").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Option<String> = con.get("short").await.unwrap();
    let missing: Option<String> = con.get("never-set").await.unwrap();
    let _: () = con.hset("session", "user", "ada").await.unwrap();
    let user: String = con.hget("session", "user").await.unwrap();

    assert_eq!(cached.as_deref(), Some("42"));
    assert_eq!(ttl, 100);
    assert_eq!(before.as_deref(), Some("lived"));
    assert_eq!(after, None);
    assert_eq!(missing, None);
    assert_eq!(user, "ada");
}

#[tokio::test]
async fn refuse_is_a_connection_refusal_in_redis_rs_and_the_port_comes_back() {
    let fake = start_fake().await;
    let client = redis::Client::open(fake.base_url()).unwrap();

    fake.switchboard().activate(rule(0, Fault::Refuse, None));
    let _refused = common::eventually(
        "the port to refuse (a connection refusal)",
        Duration::from_secs(5),
        || async {
            // A connection accepted just before the switch is reset rather than refused.
            client
                .get_multiplexed_async_connection()
                .await
                .err()
                .filter(|e| e.is_connection_refusal())
        },
    )
    .await;
    fake.switchboard().clear();
    let mut con = common::eventually("the port to come back", Duration::from_secs(5), || async {
        client.get_multiplexed_async_connection().await.ok()
    })
    .await;
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();

    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn hang_is_a_timeout_in_redis_rs_and_is_journaled_without_a_status() {
    let fake = start_fake().await;
    let mut con = redis_rs(&fake).await;
    fake.switchboard()
        .activate(rule(0, Fault::Hang, Some("GET")));

    let timed_out = con.get::<_, Option<String>>("k").await.unwrap_err();
    drop(con);

    assert!(timed_out.is_timeout(), "{timed_out:?}");
    let hung = common::eventually(
        "the hung GET to be journaled once the client goes",
        Duration::from_secs(5),
        || async {
            fake.journal()
                .snapshot()
                .into_iter()
                .find(|a| a.route == "GET")
        },
    )
    .await;
    assert_eq!((hung.status, hung.fault.as_deref()), (None, Some("hang")));
    assert!(hung.duration_ms >= 400.0, "{}", hung.duration_ms);
}

#[tokio::test]
async fn loading_is_a_busy_loading_server_error_in_redis_rs() {
    let fake = start_fake().await;
    let mut con = redis_rs(&fake).await;
    fake.switchboard().activate(rule(0, loading(), Some("GET")));

    let error = con.get::<_, Option<String>>("k").await.unwrap_err();
    let set: Result<(), _> = con.set("k", "v").await;

    assert_eq!(
        error.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
        "{error:?}"
    );
    assert!(set.is_ok(), "only GET is faulted");
}

#[tokio::test]
async fn reset_cuts_the_reply_with_a_tcp_reset() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;
    raw.call(&["SET", "k", "a-long-enough-value"]).await;
    fake.switchboard()
        .activate(rule(0, Fault::Reset, Some("GET")));

    raw.send(&["GET", "k"]).await;
    let mut got = Vec::new();
    let outcome = loop {
        let mut buf = [0u8; 64];
        match raw.stream.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(error) => break Err(error),
        }
    };

    let error = outcome.expect_err("a reset, not an orderly close");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(
        b"$19\r\na-long-enough-value\r\n".starts_with(&got),
        "{got:?}"
    );
}

#[tokio::test]
async fn drop_closes_the_connection_without_a_reply() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;
    fake.switchboard()
        .activate(rule(0, Fault::Drop, Some("GET")));

    raw.send(&["GET", "k"]).await;

    assert_eq!(raw.reply_bytes().await, None);
}

#[tokio::test]
async fn a_delay_holds_the_reply_back() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;
    fake.switchboard().activate(rule(
        0,
        Fault::Delay {
            delay: Duration::from_millis(200),
            distribution: Default::default(),
        },
        Some("PING"),
    ));

    let sent = Instant::now();
    let pong = raw.call(&["PING"]).await;

    assert_eq!(pong, Frame::Simple("PONG".into()));
    assert!(sent.elapsed() >= Duration::from_millis(190));
}

#[tokio::test]
async fn the_journal_shows_command_key_hit_miss_error_and_fault() {
    let fake = start_fake().await;
    let mut raw = Raw::connect(fake.addr()).await;

    raw.call(&["SET", "cache:fl-12345678:q", "v"]).await;
    raw.call(&["GET", "cache:fl-12345678:q"]).await;
    raw.call(&["GET", "plain-key"]).await;
    raw.call(&["GET"]).await;
    fake.switchboard().activate(rule(0, loading(), Some("GET")));
    raw.call(&["get", "plain-key"]).await;

    let seen: Vec<_> = fake
        .journal()
        .snapshot()
        .into_iter()
        .map(|a| (a.route, a.key, a.status, a.fault))
        .collect();
    let key = |k: &str| Some(k.to_string());
    assert_eq!(
        seen,
        vec![
            ("SET".into(), key("fl-12345678"), Some(200), None),
            ("GET".into(), key("fl-12345678"), Some(200), None),
            ("GET".into(), key("plain-key"), Some(404), None),
            ("GET".into(), None, Some(500), None),
            (
                "GET".into(),
                key("plain-key"),
                Some(500),
                Some("redis_error LOADING".into())
            ),
        ]
    );
}

#[tokio::test]
async fn shutdown_ends_hung_connections_promptly() {
    let fake = start_fake().await;
    let addr = fake.addr();
    let mut raw = Raw::connect(addr).await;
    fake.switchboard().activate(rule(0, Fault::Hang, None));
    raw.send(&["PING"]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    fake.shutdown().await;

    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(raw.reply_bytes().await, None);
    assert!(TcpStream::connect(addr).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// Differential: the same script against a real redis-server and against the fake.

/// A redis-server this test started on a free loopback port; killed when dropped.
struct RealRedis {
    child: Child,
    addr: SocketAddr,
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_real_redis() -> RealRedis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot start redis-server ({error}); the differential test needs it: run \
                 scripts/test, which installs it (scripts/provision/redis.sh)"
            )
        });
    let real = RealRedis {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(real.addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {}",
            real.addr
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    real
}

/// The script: every reply must be byte-for-byte the same. `SLEEP ms` pauses instead.
const SCRIPT: &[&[&str]] = &[
    &["FLUSHDB"],
    &["PING"],
    &["PING", "hello"],
    &["PING", "a", "b"],
    &["ECHO", "hi"],
    &["SET", "k", "v"],
    &["GET", "k"],
    &["GET", "missing"],
    &["SET", "k", "v2", "NX"],
    &["SET", "k", "v3", "XX", "GET"],
    &["SET", "fresh", "x", "NX", "GET"],
    &["GET", "k"],
    &["SET", "k", "v", "EX", "0"],
    &["SET", "k", "v", "EX", "soon"],
    &["SET", "k", "v", "NX", "XX"],
    &["SET", "k", "v", "EX"],
    &["SET", "k", "v", "EX", "10", "PX", "100"],
    &["SET", "k", "v", "KEEPTTL", "EX", "10"],
    &["SET", "n", "10"],
    &["INCR", "n"],
    &["INCRBY", "n", "5"],
    &["DECR", "n"],
    &["DECRBY", "n", "20"],
    &["INCRBY", "n", "abc"],
    &["INCR", "k"],
    &["SET", "big", "9223372036854775807"],
    &["INCR", "big"],
    &["SET", "t", "v", "EX", "100"],
    &["TTL", "t"],
    &["SET", "t", "v2", "KEEPTTL"],
    &["TTL", "t"],
    &["TTL", "k"],
    &["TTL", "missing"],
    &["PTTL", "missing"],
    &["PTTL", "k"],
    &["SET", "short", "v", "PX", "100"],
    &["SLEEP", "200"],
    &["GET", "short"],
    &["EXISTS", "short"],
    &["SETEX", "se", "100", "val"],
    &["TTL", "se"],
    &["SETEX", "se", "-1", "val"],
    &["SETEX", "se", "10"],
    &["GETEX", "t", "PERSIST"],
    &["TTL", "t"],
    &["GETEX", "t", "EX", "50"],
    &["TTL", "t"],
    &["GETEX", "t", "EX", "50", "PERSIST"],
    &["GETEX", "missing"],
    &["MSET", "a", "1", "b", "2"],
    &["MGET", "a", "b", "missing"],
    &["MSET", "a"],
    &["MSET", "a", "1", "b"],
    &["DEL", "a", "b", "missing"],
    &["EXISTS", "k", "k", "missing"],
    &["EXPIRE", "k", "100"],
    &["TTL", "k"],
    &["EXPIRE", "k", "50", "GT"],
    &["EXPIRE", "k", "200", "GT"],
    &["EXPIRE", "k", "10", "NX"],
    &["EXPIRE", "k", "10", "XX", "LT"],
    &["TTL", "k"],
    &["EXPIRE", "k", "10", "NX", "XX"],
    &["EXPIRE", "k", "10", "GT", "LT"],
    &["EXPIRE", "k", "10", "FOO"],
    &["EXPIRE", "k", "ten"],
    &["EXPIRE", "missing", "10"],
    &["EXPIRE", "n", "-1"],
    &["EXISTS", "n"],
    &["PEXPIRE", "k", "100"],
    &["SLEEP", "200"],
    &["EXISTS", "k"],
    &["HSET", "h", "f1", "v1", "f2", "v2"],
    &["HSET", "h", "f1", "x", "f3", "v3"],
    &["HSET", "h", "f4"],
    &["HGET", "h", "f1"],
    &["HGET", "h", "nope"],
    &["HGETALL", "h"],
    &["HDEL", "h", "f1", "nope"],
    &["HGETALL", "h"],
    &["HGETALL", "missing"],
    &["HDEL", "h", "f2", "f3"],
    &["EXISTS", "h"],
    &["SET", "s", "str"],
    &["HSET", "s", "f", "v"],
    &["HGET", "s", "f"],
    &["LPUSH", "s", "x"],
    &["RPUSH", "l", "a", "b", "c"],
    &["LPUSH", "l", "z"],
    &["LRANGE", "l", "0", "-1"],
    &["LRANGE", "l", "-2", "10"],
    &["LRANGE", "l", "5", "1"],
    &["LRANGE", "l", "x", "1"],
    &["GET", "l"],
    &["TYPE", "l"],
    &["TYPE", "s"],
    &["TYPE", "missing"],
    &["LTRIM", "l", "1", "2"],
    &["LRANGE", "l", "0", "-1"],
    &["LTRIM", "l", "5", "6"],
    &["EXISTS", "l"],
    &["DBSIZE"],
    &["SELECT", "1"],
    &["GET", "s"],
    &["SELECT", "0"],
    &["SELECT", "16"],
    &["SELECT", "x"],
    &["GET"],
    &["GET", "a", "b"],
    &["FOO", "bar", "baz"],
    &["foo"],
    &["CLIENT", "SETNAME", "worker-1"],
    &["CLIENT", "GETNAME"],
    &["CLIENT", "SETNAME", "has space"],
    &["CLIENT", "NOPE"],
    &["CLIENT", "SETNAME"],
    &["AUTH", "pass"],
    &["AUTH", "a", "b", "c"],
    &["HELLO", "4"],
    &["HELLO", "x"],
    &["HELLO", "2", "BOGUS"],
    &["FLUSHDB", "FOO"],
    &["FLUSHDB", "ASYNC"],
    &["DBSIZE"],
];

async fn run_script(addr: SocketAddr, script: &[&[&str]]) -> Vec<(String, String)> {
    let mut raw = Raw::connect(addr).await;
    let mut replies = Vec::new();
    for command in script {
        if command[0] == "SLEEP" {
            let ms = command[1].parse().unwrap();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            continue;
        }
        raw.send(command).await;
        let reply = raw.reply_bytes().await.expect("a reply");
        replies.push((
            command.join(" "),
            String::from_utf8_lossy(&reply).escape_debug().to_string(),
        ));
    }
    replies
}

/// Raw bytes sent on a connection of their own (protocol errors close it): the whole answer.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    // Requests that do not close the connection end by this timeout; a reply is long in by then.
    let _ = tokio::time::timeout(Duration::from_millis(300), stream.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test]
async fn the_fake_answers_a_command_script_exactly_as_a_real_redis_server_does() {
    let real = start_real_redis().await;
    let fake = start_fake().await;

    let (expected, got) = tokio::join!(
        run_script(real.addr, SCRIPT),
        run_script(fake.addr(), SCRIPT)
    );

    assert_eq!(expected.len(), got.len());
    assert!(expected.len() > 100, "the whole script ran");
    if std::env::var_os("FAULTLINE_SHOW_SCRIPT").is_some() {
        for (command, reply) in &expected {
            eprintln!("{command:40} {reply}");
        }
    }
    let differences: Vec<String> = expected
        .iter()
        .zip(&got)
        .filter(|(e, g)| e != g)
        .map(|((command, e), (_, g))| {
            format!("{command}\n    redis-server: {e}\n    fake:         {g}")
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{} of {} replies differ:\n{}",
        differences.len(),
        expected.len(),
        differences.join("\n")
    );
}

#[tokio::test]
async fn the_fake_answers_resp3_and_protocol_errors_as_a_real_redis_server_does() {
    let real = start_real_redis().await;
    let fake = start_fake().await;
    let resp3: &[&[&str]] = &[
        &["FLUSHDB"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["HGETALL", "h"],
        &["HGETALL", "missing"],
        &["GET", "missing"],
        &["MGET", "h", "missing"],
        &["CLIENT", "GETNAME"],
        &["SET", "k", "v", "NX"],
        &["SET", "k", "v", "NX"],
        &["GET", "h"],
    ];
    let raw_cases: &[&[u8]] = &[
        b"*1\r\n$-5\r\n",
        b"*1\r\n:1\r\n",
        b"*x\r\n",
        b"PING\r\n",
        b"set a \"b c\"\r\nget a\r\n",
        b"set a \"b\r\n",
        b"\r\n*0\r\n*-1\r\nPING\r\n",
    ];

    for (name, addr) in [("redis-server", real.addr), ("fake", fake.addr())] {
        let mut raw = Raw::connect(addr).await;
        raw.send(&["HELLO", "3"]).await;
        let hello = raw.reply().await;
        assert!(matches!(hello, Frame::Map(_)), "{name}: {hello:?}");
    }
    let with_hello = |addr| async move {
        let mut script: Vec<&[&str]> = vec![&["HELLO", "3"]];
        script.extend_from_slice(resp3);
        run_script(addr, &script).await.split_off(1)
    };
    let (expected, got) = tokio::join!(with_hello(real.addr), with_hello(fake.addr()));
    assert_eq!(expected, got);
    for case in raw_cases {
        let expected = raw_exchange(real.addr, case).await;
        let got = raw_exchange(fake.addr(), case).await;
        assert_eq!(
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&got),
            "request {:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[tokio::test]
async fn proxy_mode_passes_real_redis_replies_through_with_faults_in_between() {
    let real = start_real_redis().await;
    let fake = start_fake_with(RedisOptions {
        upstream: Some(format!("redis://{}", real.addr)),
        ..RedisOptions::default()
    })
    .await;
    let mut con = redis_rs(&fake).await;

    let _: () = con.set_ex("k", "value", 100).await.unwrap();
    let hit: Option<String> = con.get("k").await.unwrap();
    let miss: Option<String> = con.get("nope").await.unwrap();
    // STRLEN is not a command the fake knows itself: the real server answers it.
    let len: i64 = redis::cmd("STRLEN")
        .arg("k")
        .query_async(&mut con)
        .await
        .unwrap();
    let stored = Raw::connect(real.addr).await.call(&["GET", "k"]).await;
    fake.switchboard().activate(rule(0, loading(), Some("GET")));
    let loading = con.get::<_, Option<String>>("k").await.unwrap_err();

    assert_eq!(hit.as_deref(), Some("value"));
    assert_eq!(miss, None);
    assert_eq!(len, 5);
    assert_eq!(stored, Frame::bulk(&b"value"[..]));
    assert_eq!(
        loading.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
    );
    let gets: Vec<_> = fake
        .journal()
        .snapshot()
        .into_iter()
        .filter(|a| a.route == "GET")
        .map(|a| a.status)
        .collect();
    assert_eq!(gets, vec![Some(200), Some(404), Some(500)]);
}

#[tokio::test]
async fn the_upstash_rest_api_serves_the_same_keyspace_with_bearer_auth_and_faults() {
    let keyspace = Arc::new(Keyspace::default());
    let journal = Arc::new(Journal::new(Instant::now(), 100));
    let resp = start_fake_with(RedisOptions {
        keyspace: Some(keyspace.clone()),
        ..RedisOptions::default()
    })
    .await;
    let rest = start_upstash(
        "tok".into(),
        keyspace,
        Arc::new(Switchboard::new(1)),
        journal,
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", rest.base_url()))
            .bearer_auth("tok")
            .json(&body)
            .send()
    };
    Raw::connect(resp.addr())
        .await
        .call(&["SET", "from-resp", "1"])
        .await;

    let get = post("/", json!(["GET", "from-resp"])).await.unwrap();
    let (get_status, get_body) = (get.status(), get.json::<serde_json::Value>().await.unwrap());
    let pipeline = post(
        "/pipeline",
        json!([
            ["SET", "n", 1, "EX", 100],
            ["INCR", "n"],
            ["HGET", "n", "f"]
        ]),
    )
    .await
    .unwrap()
    .json::<serde_json::Value>()
    .await
    .unwrap();
    let multi = post(
        "/multi-exec",
        json!([["RPUSH", "l", "a", "b"], ["LRANGE", "l", 0, -1]]),
    )
    .await
    .unwrap()
    .json::<serde_json::Value>()
    .await
    .unwrap();
    let wrong = post("/", json!(["GET"])).await.unwrap();
    let wrong_status = wrong.status();
    let unauthorized = http
        .post(format!("{}/", rest.base_url()))
        .json(&json!(["GET", "k"]))
        .send()
        .await
        .unwrap()
        .status();
    rest.switchboard()
        .activate(rule(0, Fault::status(503, None), None));
    let faulted = post("/", json!(["GET", "n"])).await.unwrap().status();
    let from_rest = Raw::connect(resp.addr()).await.call(&["GET", "n"]).await;

    assert_eq!(
        (get_status.as_u16(), get_body),
        (200, json!({"result": "1"}))
    );
    assert_eq!(
        pipeline,
        json!([
            {"result": "OK"},
            {"result": 2},
            {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"}
        ])
    );
    assert_eq!(multi, json!([{"result": 2}, {"result": ["a", "b"]}]));
    assert_eq!(wrong_status.as_u16(), 400);
    assert_eq!(unauthorized.as_u16(), 401);
    assert_eq!(faulted.as_u16(), 503);
    assert_eq!(from_rest, Frame::bulk(&b"2"[..]));
    assert_eq!(rest.journal().snapshot().len(), 6);
}

// ---------------------------------------------------------------------------------------------
// redis-py

#[tokio::test]
async fn redis_py_caches_and_sees_refused_timeout_and_loading_as_its_own_errors() {
    let python = python();
    let fake = start_fake().await;
    fake.switchboard()
        .activate(rule(0, loading(), Some("LPUSH")));
    fake.switchboard()
        .activate(rule(1, Fault::Hang, Some("LLEN")));
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/redis_client.py");

    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(fake.base_url())
        .arg(format!("redis://{closed}"))
        .output()
        .await
        .expect("python runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "redis-py script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all redis-py checks passed"), "{stdout}");
}

#[tokio::test]
async fn a_scenario_with_a_redis_upstream_runs_its_redis_fake_as_a_proxy() {
    let real = start_real_redis().await;
    let text = format!(
        "name = \"p\"\n[load]\nusers = 1\nduration = \"1s\"\n[[load.flows]]\nname = \"ask\"\n\
         messages = [\"hi\"]\n[fakes.redis]\nupstream = \"redis://{}\"\n",
        real.addr
    );
    let plan = faultline::scenario::parse_scenario(&text, "p.toml").unwrap();
    let fakes = faultline::fakes::set::FakeSet::start(
        1,
        std::time::Instant::now(),
        None,
        plan.fakes.redis_upstream.clone(),
    )
    .await
    .unwrap();
    let redis_url = fakes
        .service_env()
        .into_iter()
        .find(|(name, _)| *name == "REDIS_URL")
        .unwrap()
        .1;
    let client = redis::Client::open(redis_url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();

    let _: () = con.set("through-the-proxy", "yes").await.unwrap();

    let stored = Raw::connect(real.addr)
        .await
        .call(&["GET", "through-the-proxy"])
        .await;
    assert_eq!(stored, Frame::bulk(&b"yes"[..]));
    fakes.shutdown().await;
}

#[test]
fn a_redis_upstream_must_be_a_redis_server_on_this_machine() {
    let text =
        "name = \"p\"\n[load]\nusers = 1\nduration = \"1s\"\n[[load.flows]]\nname = \"ask\"\n\
                messages = [\"hi\"]\n[fakes.redis]\nupstream = \"redis://10.0.0.8:6379\"\n";
    let error = faultline::scenario::parse_scenario(text, "p.toml")
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("p.toml:9:12:"), "{error}");
    assert!(error.contains("on this"), "{error}");
}
