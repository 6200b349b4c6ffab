//! Stubs from TOML served by the stubs fake over real sockets with reqwest: each kind of
//! matcher, first-match order, the 404 that lists the stubs tried, responses (status, headers,
//! body, json, delay), file errors with line:column, and the faults `fakes::http` acts out today.

mod common;
use common::client;

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

// ---- Idempotent stubs: the tickets fake's ledger for any write a stub answers ----

const WRITES: &str = r#"
idempotency_header = "X-Idempotency-Key"

[[stub]]
name = "refund an order"
method = "POST"
path = "/refunds"
idempotent = true
[stub.response]
status = 201
json = { id = "re_1", status = "pending" }

[[stub]]
name = "note (not a ledgered write)"
method = "POST"
path = "/notes"
[stub.response]
body = "noted"
"#;

async fn start_writes() -> (FakeHandle, Arc<tool::WriteLedger>) {
    let stubs = StubSet::parse(WRITES, "writes.toml").expect("the write stubs parse");
    let ledger = stubs.ledger();
    let fake = tool::start_stubs(
        stubs,
        Arc::new(Switchboard::new(7)),
        Arc::new(Journal::new(Instant::now(), 1000)),
    )
    .await
    .expect("stubs fake starts");
    (fake, ledger)
}

async fn refund(fake: &FakeHandle, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}/refunds", fake.base_url()))
        .json(body);
    if let Some(key) = key {
        request = request.header("X-Idempotency-Key", key);
    }
    request.send().await.expect("answered")
}

#[tokio::test]
async fn an_idempotent_stub_replays_a_repeat_and_refuses_its_key_on_another_write() {
    let (fake, ledger) = start_writes().await;
    let order = json!({ "order_id": 42, "amount": 10, "requested_at": "2025-01-31T10:00:00Z" });
    let retried = json!({ "order_id": 42, "amount": 10, "requested_at": "2025-01-31T10:00:03Z" });

    let first = refund(&fake, &order, Some("k-1")).await;
    let again = refund(&fake, &retried, Some("k-1")).await;
    let other = refund(&fake, &json!({ "order_id": 43, "amount": 10 }), Some("k-1")).await;
    let note = post(&fake, "/notes", r#"{"text":"hi"}"#).await;

    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        json_of(again).await,
        json!({ "id": "re_1", "status": "pending" })
    );
    assert_eq!(other.status(), 400);
    assert!(json_of(other).await["error"]
        .as_str()
        .unwrap()
        .contains("k-1"));
    assert_eq!(note.status(), 200);
    let outcomes: Vec<_> = ledger.writes().iter().map(|w| w.outcome).collect();
    assert_eq!(
        outcomes,
        [
            tool::WriteOutcome::Created,
            tool::WriteOutcome::Replayed,
            tool::WriteOutcome::KeyReused
        ]
    );
    assert_eq!(ledger.created(), 1);
}

#[tokio::test]
async fn an_idempotent_stub_counts_one_requests_write_made_twice_as_a_duplicate() {
    let (fake, ledger) = start_writes().await;
    let order = json!({ "order_id": 42, "note": "damaged [fl-0000002a]" });

    refund(&fake, &order, None).await;
    refund(&fake, &order, Some("fresh")).await;
    refund(
        &fake,
        &json!({ "order_id": 42, "note": "[fl-0000002b]" }),
        None,
    )
    .await;

    let duplicates = ledger.duplicate_writes();
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert_eq!(duplicates[0].keys, vec![Some("fl-0000002a".to_string()); 2]);
    assert_eq!(
        duplicates[0].idempotency_keys,
        [None, Some("fresh".to_string())]
    );
}

/// A client request's refund as a service makes it: the nonce in the note, a 5xx retried up
/// to twice, the idempotency key `stable` (or a new one per try when `None`).
async fn refund_with_retries(fake: &FakeHandle, nonce: &str, stable: Option<&str>) -> u16 {
    let mut status = 0;
    for _ in 0..3 {
        let key = stable.map_or_else(|| uuid::Uuid::new_v4().to_string(), String::from);
        let body = json!({ "order_id": 42, "note": format!("parcel lost [{nonce}]") });
        status = refund(fake, &body, Some(&key)).await.status().as_u16();
        if status < 500 {
            break;
        }
    }
    status
}

#[tokio::test]
async fn writes_idempotent_judges_an_idempotent_stub_as_it_judges_the_tickets_fake() {
    use faultline::checks::{writes::check_idempotent, Outcome};
    use faultline::evidence::{Evidence, Record};

    for (stable, expected) in [(true, Outcome::Pass), (false, Outcome::Fail)] {
        let (fake, ledger) = start_writes().await;
        fake.switchboard().activate(FaultRule {
            route: Some("/refunds".into()),
            first_attempts: Some(1),
            ..rule(Fault::status(503, None))
        });
        let mut records = Vec::new();
        for n in 1..=3u32 {
            let nonce = format!("fl-{n:08x}");
            let key = format!("key-{n}");
            let status = refund_with_retries(&fake, &nonce, stable.then_some(&key)).await;
            records.push(Record {
                request_id: format!("flreq-{n:08x}"),
                nonce,
                status: Some(status),
                ..Record::default()
            });
        }
        let evidence = Evidence {
            records: records.into(),
            writes: faultline::fakes::set::write_attempts("stubs", &ledger).into(),
            ..Evidence::default()
        };

        let verdict = check_idempotent(&evidence, &Default::default());

        assert_eq!(verdict.outcome, expected, "{verdict:#?}");
        assert!(
            verdict
                .summary
                .starts_with("6 writes for 3 requests, 3 of them retried"),
            "{}",
            verdict.summary
        );
        if expected == Outcome::Fail {
            assert!(
                verdict.evidence[0]
                    .starts_with("flreq-00000001 at stubs: retried under a different"),
                "{:?}",
                verdict.evidence
            );
        }
    }
}
