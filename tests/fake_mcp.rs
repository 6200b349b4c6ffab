//! The fake MCP server (`faultline fake mcp`, the built binary) against the official SDKs'
//! Streamable HTTP clients, `mcp` for Python (tests/python/mcp_client.py) and
//! `@modelcontextprotocol/sdk` from npm (tests/node/mcp_client.mjs): sessions, tools, and each
//! MCP fault as the SDK sees it. And the transport's refusals over plain HTTP, and the server's
//! place among a run's fakes.

mod common;

use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use common::{client, line_starting, python};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

/// `faultline fake mcp` on ephemeral ports: (child, MCP URL, control URL).
async fn spawn_fake_mcp() -> (tokio::process::Child, String, String) {
    let mut command: tokio::process::Command = std::process::Command::cargo_bin("faultline")
        .unwrap()
        .into();
    let mut child = command
        .args(["fake", "mcp", "--port", "0", "--control-port", "0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("faultline starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = line_starting(&mut lines, "fake mcp listening on").await;
    let url = listening.rsplit(' ').next().unwrap().to_owned();
    let control = line_starting(&mut lines, "control:").await;
    let control = control.split_whitespace().nth(1).unwrap().to_owned();
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url, control)
}

#[tokio::test]
async fn the_official_mcp_sdk_works_against_the_fake_and_meets_each_fault() {
    let python = python();
    let (_child, url, control) = spawn_fake_mcp().await;
    let run = common::python_script("mcp_client.py")
        .args([url, control])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the MCP checks finish within 120 s")
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "MCP SDK checks failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    println!("{stdout}");
}

#[tokio::test]
async fn the_official_typescript_mcp_sdk_works_against_the_fake() {
    let (_child, url, control) = spawn_fake_mcp().await;
    let run = common::node_script("mcp_client.mjs")
        .args([url, control])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the MCP checks finish within 120 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "MCP SDK checks failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("4/4 checks passed"), "{stdout}");
}

#[tokio::test]
async fn the_transport_refuses_what_the_specification_refuses() {
    let (_child, url, _control) = spawn_fake_mcp().await;
    let http = client();
    let post = |body: Value, session: Option<&str>| {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" });

    // No session yet: 400; an unknown one: 404.
    assert_eq!(post(list.clone(), None).await.unwrap().status(), 400);
    assert_eq!(
        post(list.clone(), Some("no-such-session"))
            .await
            .unwrap()
            .status(),
        404
    );
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2099-01-01", "capabilities": {},
                    "clientInfo": { "name": "t", "version": "0" } } });
    let answer = post(init, None).await.unwrap();
    let session = answer.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = answer.json().await.unwrap();
    // A version the server does not speak gets its newest.
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    let notified = post(
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(notified.status(), 202);
    let tools: Value = post(list.clone(), Some(&session))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 3);
    // A method it does not have: JSON-RPC's -32601.
    let unknown: Value = post(
        json!({ "jsonrpc": "2.0", "id": 3, "method": "resources/subscribe" }),
        Some(&session),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(unknown["error"]["code"], -32601);
    // GET has no stream here (405); DELETE ends the session, after which it is unknown.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 405);
    let deleted = http
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(post(list, Some(&session)).await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_runs_fakes_include_the_mcp_server_at_mcp_server_url() {
    use faultline::evidence::FakeName;
    use faultline::fakes::set::FakeSet;
    let fakes = FakeSet::start(7, std::time::Instant::now(), None, None)
        .await
        .expect("the fakes start");
    let env: std::collections::BTreeMap<_, _> = fakes.service_env().into_iter().collect();
    let url = env["MCP_SERVER_URL"].clone();
    assert_eq!(fakes.placeholders(3000)["{mcp}"], url);
    assert!(fakes.boards().contains_key(&FakeName::Mcp));
    let answer = client()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": { "name": "t", "version": "0" } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("mcp-session-id"));
    // The attempt is journaled as the MCP fake's, beside the others'.
    assert!(fakes
        .attempts()
        .iter()
        .any(|a| a.fake == FakeName::Mcp && a.status == Some(200)));
    fakes.shutdown().await;
}
