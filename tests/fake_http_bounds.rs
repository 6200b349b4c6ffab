//! The fakes' HTTP engine bounds what a client can hold (issue 16 item 13): a connection that
//! never finishes its headers (slowloris) is closed, and connections past the cap are closed
//! at once, while normal requests keep being answered. Real sockets, raw bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::fault::Switchboard;
use faultline::fakes::http::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
use faultline::fakes::journal::Journal;
use faultline::fakes::llm::{self, LlmOptions};

async fn fake_llm() -> faultline::fakes::FakeHandle {
    llm::start(
        LlmOptions {
            api_key: "k".into(),
            seed: 1,
        },
        Arc::new(Switchboard::new(1)),
        Arc::new(Journal::new(Instant::now(), 100)),
    )
    .await
    .unwrap()
}

/// `GET /v1/models` on a fresh connection answers.
fn models_answer(addr: std::net::SocketAddr) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowloris_connection_is_closed_and_others_are_served() {
    let fake = fake_llm().await;
    let addr = fake.addr();
    let closed_after = tokio::task::spawn_blocking(move || {
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        let started = Instant::now();
        assert!(
            models_answer(addr),
            "a normal request beside it was not answered"
        );
        slow.set_read_timeout(Some(HEADER_READ_TIMEOUT + Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 512];
        // Closed by the fake (0 bytes, a 408, or a reset), not by our read timeout.
        match slow.read(&mut buf) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(
        closed_after < HEADER_READ_TIMEOUT + Duration::from_secs(5),
        "closed only after {closed_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_closed_at_once() {
    // SAFETY: plain syscalls on this process's own limit.
    let room = unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        limit.rlim_cur as usize
    };
    if room < 3 * MAX_CONNECTIONS {
        eprintln!("skipped: {room} file descriptors cannot hold both ends of the cap");
        return;
    }
    let fake = fake_llm().await;
    let addr = fake.addr();
    tokio::task::spawn_blocking(move || {
        let mut held = Vec::with_capacity(MAX_CONNECTIONS);
        for _ in 0..MAX_CONNECTIONS {
            held.push(TcpStream::connect(addr).unwrap());
        }
        // Past the cap: accepted, then closed at once (the fake may need a moment to accept
        // the ones before it).
        let mut over = TcpStream::connect(addr).unwrap();
        over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        match over.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("read {n} bytes from a connection past the cap"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        drop(held);
        // With the idle ones gone, requests are served again.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !models_answer(addr) {
            assert!(Instant::now() < deadline, "not served after the cap freed");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}
