//! The control API refuses what a web page could send it (issue 16 item 7): a request with an
//! `Origin`, a `Host` that is not loopback (DNS rebinding), a body that is not JSON (a
//! cross-origin `text/plain` POST needs no preflight), and, with a token, a request without it.
//! Over a real socket, with `faultline scenario --attach`'s own client for the token.

use std::sync::Arc;
use std::time::Instant;

use faultline::fakes::control::{self, ControlledFake};
use faultline::fakes::fault::Switchboard;
use faultline::fakes::journal::Journal;
use faultline::fakes::remote::ControlClient;

const RULE: &str = r#"{"kind":"status","code":503}"#;

/// A control API over one fake, with `token`; returns its URL and the fake's switchboard.
async fn control_api(token: Option<&str>) -> (String, Arc<Switchboard>) {
    let board = Arc::new(Switchboard::new(1));
    let fakes = vec![ControlledFake {
        name: "llm".into(),
        switchboard: board.clone(),
        journal: Arc::new(Journal::new(Instant::now(), 100)),
    }];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(control::serve_guarded(
        listener,
        control::router(fakes),
        token.map(String::from),
        std::future::pending(),
    ));
    (url, board)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn a_cross_origin_text_plain_post_switches_nothing_on() {
    let (url, board) = control_api(None).await;
    let plain = http()
        .post(format!("{url}/faults/llm"))
        .header("content-type", "text/plain")
        .body(RULE)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);
    let from_a_page = http()
        .post(format!("{url}/faults/llm"))
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body(RULE)
        .send()
        .await
        .unwrap();
    assert_eq!(from_a_page.status(), 403);
    let rebound = http()
        .get(format!("{url}/journal/llm"))
        .header("host", "evil.example:8409")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    assert!(board.active().is_empty());
    // The same rule, as faultline and curl send it, is accepted.
    let json = http()
        .post(format!("{url}/faults/llm"))
        .header("content-type", "application/json")
        .body(RULE)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 201);
    assert_eq!(board.active().len(), 1);
}

#[tokio::test]
async fn with_a_token_only_a_client_that_sends_it_gets_in() {
    let (url, board) = control_api(Some("s3cret-token")).await;
    let without = http()
        .post(format!("{url}/faults/llm"))
        .header("content-type", "application/json")
        .body(RULE)
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
    assert!(board.active().is_empty());
    let error = ControlClient::connect_with_token(&url, Instant::now(), None)
        .await
        .err()
        .expect("refused without the token");
    assert!(error.contains("--fakes-token"), "{error}");
    let client =
        ControlClient::connect_with_token(&url, Instant::now(), Some("s3cret-token".into()))
            .await
            .unwrap()
            .expect("a control API answers");
    client.clear().await.unwrap();
}
