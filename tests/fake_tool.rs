//! Conformance of the weather tool fake over real sockets: its JSON, its errors, faults,
//! the journal, and HTTP/1.1 keep-alive (including connections dropped by `refuse`).

mod common;
use common::client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::fault::{Fault, FaultRule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::tool;
use faultline::fakes::FakeHandle;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start_weather() -> FakeHandle {
    tool::start_weather(
        Arc::new(Switchboard::new(7)),
        Arc::new(Journal::new(Instant::now(), 1000)),
    )
    .await
    .expect("weather fake starts")
}

async fn weather(fake: &FakeHandle, query: &str) -> reqwest::Response {
    client()
        .get(format!("{}/weather{query}", fake.base_url()))
        .send()
        .await
        .expect("weather request is answered")
}

#[tokio::test]
async fn weather_answers_json_the_same_for_a_city_each_time() {
    let fake = start_weather().await;

    let first = weather(&fake, "?city=Paris").await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/json");
    let first: Value = first.json().await.unwrap();
    let again: Value = weather(&fake, "?city=Paris").await.json().await.unwrap();

    assert_eq!(first["city"], "Paris");
    assert!(first["temperature_c"].is_f64());
    assert!(!first["condition"].as_str().unwrap().is_empty());
    assert!(first["observed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["temperature_c"], again["temperature_c"]);
    assert_eq!(first["condition"], again["condition"]);
}

#[tokio::test]
async fn a_percent_encoded_city_is_decoded() {
    let fake = start_weather().await;

    let body: Value = weather(&fake, "?city=S%C3%A3o%20Paulo")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(body["city"], "São Paulo");
}

#[tokio::test]
async fn a_missing_city_gets_a_400_json_error() {
    let fake = start_weather().await;

    let response = weather(&fake, "").await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("city"));
}

#[tokio::test]
async fn a_503_fault_answers_a_json_error_with_retry_after() {
    let fake = start_weather().await;
    fake.switchboard().activate(FaultRule {
        id: 1,
        fault: Fault::status(503, Some(Duration::from_secs(2))),
        route: Some("/weather".into()),
        rate: 1.0,
        first_attempts: None,
    });

    let response = weather(&fake, "?city=Paris").await;

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "service unavailable");
}

#[tokio::test]
async fn the_journal_records_each_weather_attempt_with_its_key() {
    let fake = start_weather().await;

    weather(&fake, "?city=Paris&trace=fl-abcdef01").await;
    client()
        .get(format!("{}/weather?city=Oslo", fake.base_url()))
        .header("x-request-id", "req-oslo")
        .send()
        .await
        .unwrap();
    weather(&fake, "").await;

    let attempts = fake.journal().snapshot();
    assert_eq!(attempts.len(), 3);
    assert!(attempts
        .iter()
        .all(|a| a.fake == "weather" && a.route == "/weather"));
    assert_eq!(attempts[0].key.as_deref(), Some("fl-abcdef01"));
    assert_eq!(attempts[0].status, Some(200));
    assert_eq!(attempts[0].fault, None);
    assert_eq!(attempts[1].key.as_deref(), Some("req-oslo"));
    assert_eq!(attempts[2].key, None);
    assert_eq!(attempts[2].status, Some(400));
}

/// Sends one GET on an open connection and reads one whole response (head and body).
async fn roundtrip(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nhost: fake\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed mid-response");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|line| {
                    line.to_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("content-length");
            if received.len() >= head_end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test]
async fn a_keep_alive_connection_serves_several_requests_until_a_refuse_drops_it() {
    let fake = start_weather().await;
    let addr: SocketAddr = fake.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();

    let first = roundtrip(&mut stream, "/weather?city=Oslo").await;
    let second = roundtrip(&mut stream, "/weather?city=Rome").await;
    assert!(first.starts_with("HTTP/1.1 200") && first.contains("Oslo"));
    assert!(second.starts_with("HTTP/1.1 200") && second.contains("Rome"));

    fake.switchboard().activate(FaultRule {
        id: 9,
        fault: Fault::Refuse,
        route: None,
        rate: 1.0,
        first_attempts: None,
    });
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf))
        .await
        .expect("the open connection is dropped promptly");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}
