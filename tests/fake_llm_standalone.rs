//! `faultline fake llm` end to end: the built binary on port 0 prints its real addresses,
//! serves with the faults it was given, is steered through its control API, and on Ctrl-C
//! prints a summary of what it saw. Also the control API in-process.

mod common;

use common::{client, get_json, line_starting, spawn_fake_llm};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::control::{self, ControlledFake};
use faultline::fakes::fault::Switchboard;
use faultline::fakes::journal::Journal;
use faultline::fakes::llm::{self, LlmOptions};
use serde_json::{json, Value};

#[tokio::test]
async fn the_standalone_fake_prints_its_port_serves_faults_and_summarises_on_ctrl_c() {
    let mut fake = spawn_fake_llm(&[
        "--api-key",
        "sk-standalone",
        "--seed",
        "3",
        "--fault",
        r#"{"kind":"status","code":503}"#,
    ])
    .await;
    let (base, control) = (fake.base.clone(), fake.control.clone());
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );
    assert!(fake.key_line.ends_with("sk-standalone"));

    let chat = || {
        client()
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth("sk-standalone")
            .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
    };
    assert_eq!(chat().await.unwrap().status(), 503);
    let cleared = client()
        .delete(format!("{control}/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert_eq!(chat().await.unwrap().status(), 200);
    let journal = get_json(&format!("{control}/journal/llm")).await;
    assert_eq!(journal["attempts"].as_array().unwrap().len(), 2);

    // SAFETY: signalling our own child by its pid.
    let pid = fake.child.id().expect("still running") as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let summary = line_starting(&mut fake.lines, "fake llm:").await;
    let status = tokio::time::timeout(Duration::from_secs(10), fake.child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();

    assert!(status.success(), "{status:?}");
    assert!(summary.contains("2 attempts"), "{summary}");
    assert!(
        summary.contains("200: 1") && summary.contains("503: 1"),
        "{summary}"
    );
}

#[tokio::test]
async fn the_control_api_adds_lists_removes_and_clears_rules_and_reads_the_journal() {
    let board = Arc::new(Switchboard::new(1));
    let journal = Arc::new(Journal::new(Instant::now(), 100));
    let fake = llm::start(
        LlmOptions {
            api_key: "k".into(),
            seed: 1,
        },
        board.clone(),
        journal.clone(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fakes = vec![ControlledFake {
        name: "llm".into(),
        switchboard: board.clone(),
        journal,
    }];
    tokio::spawn(control::serve(listener, fakes, std::future::pending()));
    let http = client();

    let added = http
        .post(format!("{url}/faults/llm"))
        .header("content-type", "application/json")
        .body(r#"{"kind":"status","code":429,"retry_after":"1s","route":"/v1/chat"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let rule: Value = added.json().await.unwrap();
    let id = rule["id"].as_u64().unwrap();
    let listed: Value = http
        .get(format!("{url}/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["llm"][0]["fault"]["code"], 429);
    let chat = http
        .post(format!("{}/v1/chat/completions", fake.base_url()))
        .bearer_auth("k")
        .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 429);

    let bad = http
        .post(format!("{url}/faults/llm"))
        .header("content-type", "application/json")
        .body(r#"{"kind":"explode"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // The scenario parser's rules hold here too (issue 16 item 12): each was accepted (201)
    // before, or wrapped (`retry_after` of 584942418 years).
    for loose in [
        r#"{"kind":"hang","boom":1}"#,
        r#"{"kind":"status","code":0}"#,
        r#"{"kind":"status","code":99}"#,
        r#"{"kind":"slow_stream","first_token":"1s","inter_token":"1ms","jitter":-3}"#,
        r#"{"kind":"slow_stream","first_token":"1s","inter_token":"1ms","jitter":5}"#,
        r#"{"kind":"stream_cut"}"#,
        r#"{"kind":"status","code":429,"retry_after":"584942418y"}"#,
    ] {
        let refused = http
            .post(format!("{url}/faults/llm"))
            .header("content-type", "application/json")
            .body(loose)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{loose}");
    }
    let unknown = http
        .post(format!("{url}/faults/nope"))
        .header("content-type", "application/json")
        .body(r#"{"kind":"hang"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let removed = http
        .delete(format!("{url}/faults/llm/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert!(board.active().is_empty());
    let again = http
        .delete(format!("{url}/faults/llm/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    let all = get_json(&format!("{url}/journal/llm?since_ms=0")).await;
    assert_eq!(all["attempts"][0]["status"], 429);
    let none = get_json(&format!("{url}/journal/llm?since_ms=1e12")).await;
    assert_eq!(none["attempts"], json!([]));
}
