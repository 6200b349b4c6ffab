//! Stubs from TOML served by the stubs fake over real sockets with reqwest: each kind of
//! matcher, first-match order, the 404 that lists the stubs tried, responses (status, headers,
//! body, json, delay), file errors with line:column, and the faults `fakes::http` acts out today.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::fault::{Fault, FaultRule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::tool::{self, StubSet};
use faultline::fakes::FakeHandle;
use serde_json::{json, Value};

const STUBS: &str = r#"
[[stub]]
name = "search with a query"
method = "GET"
path = "/search"
query = { q = "rust lang", page = "2" }
[stub.response]
json = { hits = 2 }

[[stub]]
name = "any search"
method = "GET"
path = "/search"
[stub.response]
json = { hits = 0 }

[[stub]]
name = "authorised order"
method = "GET"
path_regex = "^/orders/[0-9]+$"
headers = { x-api-key = "k1", accept = "application/json, text/plain" }
[stub.response]
status = 200
headers = { x-source = "stub", cache-control = "no-store" }
json = { id = 42, status = "shipped" }

[[stub]]
name = "any order"
path_regex = "^/orders/"
[stub.response]
status = 401
body = "who are you?"

[[stub]]
name = "exact refund"
method = "POST"
path = "/refunds"
body_json = { order_id = 42, amount = 10 }
[stub.response]
status = 201
json = { id = "re_exact" }

[[stub]]
name = "partial refund"
method = "POST"
path = "/refunds"
body_partial_json = { order_id = 42 }
[stub.response]
status = 202
json = { id = "re_partial" }

[[stub]]
name = "note mentioning urgent"
method = "POST"
path = "/notes"
body_contains = "URGENT"
[stub.response]
body = "escalated"

[[stub]]
name = "slow"
path = "/slow"
[stub.response]
body = "finally"
delay = "300ms"
"#;

async fn start() -> FakeHandle {
    let stubs = StubSet::parse(STUBS, "test.toml").expect("the test stubs parse");
    tool::start_stubs(
        stubs,
        Arc::new(Switchboard::new(7)),
        Arc::new(Journal::new(Instant::now(), 1000)),
    )
    .await
    .expect("stubs fake starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(fake: &FakeHandle, target: &str) -> reqwest::Response {
    client()
        .get(format!("{}{target}", fake.base_url()))
        .send()
        .await
        .expect("answered")
}

async fn post(fake: &FakeHandle, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    client()
        .post(format!("{}{path}", fake.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answered")
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn a_stub_matches_by_query_params_and_the_first_match_wins() {
    let fake = start().await;

    let with_query = get(&fake, "/search?page=2&q=rust%20lang&extra=1").await;
    let other_query = get(&fake, "/search?q=rust&page=2").await;

    assert_eq!(with_query.headers()["content-type"], "application/json");
    assert_eq!(json_of(with_query).await, json!({ "hits": 2 }));
    assert_eq!(json_of(other_query).await, json!({ "hits": 0 }));
}

#[tokio::test]
async fn a_stub_matches_by_header_and_answers_its_status_headers_and_json() {
    let fake = start().await;

    let authorised = client()
        .get(format!("{}/orders/42", fake.base_url()))
        .header("x-api-key", "k1")
        .header("accept", "application/json,text/plain")
        .send()
        .await
        .unwrap();
    let anonymous = get(&fake, "/orders/42").await;

    assert_eq!(authorised.status(), 200);
    assert_eq!(authorised.headers()["x-source"], "stub");
    assert_eq!(authorised.headers()["cache-control"], "no-store");
    assert_eq!(json_of(authorised).await["status"], "shipped");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(anonymous.text().await.unwrap(), "who are you?");
}

#[tokio::test]
async fn a_stub_matches_by_path_regex_so_other_paths_fall_through() {
    let fake = start().await;

    let not_a_number = client()
        .get(format!("{}/orders/abc", fake.base_url()))
        .header("x-api-key", "k1")
        .send()
        .await
        .unwrap();

    // `^/orders/[0-9]+$` does not match, so the later catch-all answers.
    assert_eq!(not_a_number.status(), 401);
}

#[tokio::test]
async fn a_stub_matches_by_method() {
    let fake = start().await;

    let posted = post(&fake, "/search", "{}").await;

    assert_eq!(posted.status(), 404);
}

#[tokio::test]
async fn an_exact_json_body_beats_a_partial_one_only_when_it_is_exact() {
    let fake = start().await;

    // Key order and whitespace do not matter to an exact JSON match.
    let exact = post(&fake, "/refunds", r#"{ "amount": 10, "order_id": 42 }"#).await;
    let more = post(
        &fake,
        "/refunds",
        r#"{"order_id":42,"amount":10,"reason":"late"}"#,
    )
    .await;
    let other = post(&fake, "/refunds", r#"{"order_id":7}"#).await;

    assert_eq!(exact.status(), 201);
    assert_eq!(json_of(exact).await["id"], "re_exact");
    assert_eq!(more.status(), 202);
    assert_eq!(json_of(more).await["id"], "re_partial");
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn a_stub_matches_by_body_substring() {
    let fake = start().await;

    let urgent = post(&fake, "/notes", "this is URGENT, please").await;
    let calm = post(&fake, "/notes", "whenever you can").await;

    assert_eq!(urgent.text().await.unwrap(), "escalated");
    assert_eq!(calm.status(), 404);
}

#[tokio::test]
async fn no_match_answers_404_listing_the_stubs_tried_in_order() {
    let fake = start().await;

    let response = get(&fake, "/nowhere?x=1").await;

    assert_eq!(response.status(), 404);
    let body = json_of(response).await;
    assert_eq!(body["error"], "no stub matched GET /nowhere?x=1");
    let tried: Vec<&str> = body["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        tried,
        [
            "search with a query",
            "any search",
            "authorised order",
            "any order",
            "exact refund",
            "partial refund",
            "note mentioning urgent",
            "slow"
        ]
    );
}

#[tokio::test]
async fn a_stub_delay_holds_the_answer_back() {
    let fake = start().await;

    let started = Instant::now();
    let response = get(&fake, "/slow").await;

    assert_eq!(response.text().await.unwrap(), "finally");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_stub_file_that_does_not_parse_is_an_error_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "[[stub]]\nname = \"ok\"\npath = \"/a\"\n\n[[stub]]\npath_regex = \"/b(\"\n",
    )
    .unwrap();

    let error = StubSet::load(&file).unwrap_err().to_string();

    let expected = format!("{}:6:14: invalid path_regex", file.display());
    assert!(error.starts_with(&expected), "{error}");
}

#[tokio::test]
async fn a_missing_stub_file_is_an_error_naming_it() {
    let error = StubSet::load("mocks/does-not-exist.toml")
        .unwrap_err()
        .to_string();

    assert!(
        error.starts_with("could not read stub file mocks/does-not-exist.toml"),
        "{error}"
    );
}

#[tokio::test]
async fn the_example_stub_file_loads() {
    let stubs = StubSet::load("mocks/stubs.example.toml").expect("the example parses");

    assert!(stubs.stubs().len() >= 3);
}

fn rule(fault: Fault) -> FaultRule {
    FaultRule {
        id: 1,
        fault,
        route: Some("/search".into()),
        rate: 1.0,
        first_attempts: None,
    }
}

#[tokio::test]
async fn a_503_fault_answers_a_json_error_with_retry_after_instead_of_the_stub() {
    let fake = start().await;
    fake.switchboard()
        .activate(rule(Fault::status(503, Some(Duration::from_secs(1)))));

    let faulted = get(&fake, "/search").await;
    let other_route = client()
        .get(format!("{}/orders/1", fake.base_url()))
        .header("x-api-key", "k1")
        .header("accept", "application/json, text/plain")
        .send()
        .await
        .unwrap();

    assert_eq!(faulted.status(), 503);
    assert_eq!(faulted.headers()["retry-after"], "1");
    assert_eq!(json_of(faulted).await["error"], "service unavailable");
    assert_eq!(other_route.status(), 200);
}

#[tokio::test]
async fn a_429_fault_answers_too_many_requests_with_retry_after() {
    let fake = start().await;
    fake.switchboard()
        .activate(rule(Fault::status(429, Some(Duration::from_secs(3)))));

    let response = get(&fake, "/search").await;

    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
}

#[tokio::test]
async fn a_delay_fault_delays_the_stub_answer() {
    let fake = start().await;
    fake.switchboard().activate(rule(Fault::Delay {
        delay: Duration::from_millis(300),
        distribution: Default::default(),
    }));

    let started = Instant::now();
    let response = get(&fake, "/search").await;

    assert_eq!(json_of(response).await, json!({ "hits": 0 }));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_hang_fault_never_answers_and_is_journaled_without_status() {
    let fake = start().await;
    fake.switchboard().activate(rule(Fault::Hang));

    let result = client()
        .get(format!("{}/search?trace=fl-12345678", fake.base_url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;

    assert!(result.unwrap_err().is_timeout());
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.journal().snapshot().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = fake.journal().snapshot();
    assert_eq!(attempts[0].fake, "stubs");
    assert_eq!(attempts[0].key.as_deref(), Some("fl-12345678"));
    assert_eq!(
        (attempts[0].fault.as_deref(), attempts[0].status),
        (Some("hang"), None)
    );
}

#[tokio::test]
async fn a_refuse_fault_refuses_connections_until_it_is_lifted() {
    let fake = start().await;
    fake.switchboard().activate(FaultRule {
        route: None,
        ..rule(Fault::Refuse)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let refused = client()
        .get(format!("{}/search", fake.base_url()))
        .send()
        .await;

    assert!(refused.unwrap_err().is_connect());
    fake.switchboard().clear();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client()
            .get(format!("{}/search", fake.base_url()))
            .send()
            .await
        {
            Ok(response) => break assert_eq!(response.status(), 200),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("the port never reopened: {error}"),
        }
    }
}
