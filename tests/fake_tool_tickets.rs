//! The tickets tool fake over real sockets with reqwest: creating and reading tickets of any
//! shape, the service's schema (route, required fields, idempotency header), idempotency keys,
//! the ledger that shows them (and duplicate side effects), every fault `fakes::http` acts out
//! (status with retry-after, delay, hang, refuse), and `writes.idempotent` judging a service
//! whose writes are `{"subject", "user"}` with a timestamp.

mod common;
use common::client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::fakes::fault::{Fault, FaultRule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::tool::{self, WriteLedger, WriteOutcome, WriteSchema};
use faultline::fakes::FakeHandle;
use serde_json::{json, Value};

async fn start() -> (FakeHandle, Arc<WriteLedger>) {
    tool::start_tickets(
        Arc::new(Switchboard::new(7)),
        Arc::new(Journal::new(Instant::now(), 1000)),
    )
    .await
    .expect("tickets fake starts")
}

fn ticket(nonce: &str) -> Value {
    json!({
        "subject": "Refund for order 42",
        "body": format!("The parcel never arrived. [{nonce}]"),
        "priority": "high",
    })
}

/// POSTs `payload` to /tickets with `key` as Idempotency-Key (none if `None`).
async fn post(fake: &FakeHandle, payload: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}/tickets", fake.base_url()))
        .json(payload);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("the write is answered")
}

fn rule(fault: Fault) -> FaultRule {
    FaultRule {
        id: 1,
        fault,
        route: Some("/tickets".into()),
        rate: 1.0,
        first_attempts: None,
    }
}

#[tokio::test]
async fn a_new_ticket_is_created_open_and_can_be_read_back() {
    let (fake, ledger) = start().await;

    let created = post(&fake, &ticket("fl-00000001"), Some("key-1")).await;

    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["content-type"], "application/json");
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("tkt_"), "{id}");
    assert_eq!(created["subject"], "Refund for order 42");
    assert_eq!(created["status"], "open");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let read = client()
        .get(format!("{}/tickets/{id}", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<Value>().await.unwrap(), created);
    assert_eq!(ledger.created(), 1);
}

#[tokio::test]
async fn an_unknown_ticket_is_a_404() {
    let (fake, _ledger) = start().await;

    let response = client()
        .get(format!("{}/tickets/tkt_nope", fake.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("tkt_nope"));
}

#[tokio::test]
async fn a_repeat_with_the_same_key_answers_the_same_ticket_and_creates_nothing() {
    let (fake, ledger) = start().await;
    let payload = ticket("fl-00000002");

    let first: Value = post(&fake, &payload, Some("key-2"))
        .await
        .json()
        .await
        .unwrap();
    let again = post(&fake, &payload, Some("key-2")).await;

    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(ledger.created(), 1);
    let outcomes: Vec<_> = ledger.writes().iter().map(|w| w.outcome).collect();
    assert_eq!(outcomes, [WriteOutcome::Created, WriteOutcome::Replayed]);
    assert!(ledger.duplicate_writes().is_empty());
}

#[tokio::test]
async fn a_repeat_with_a_new_key_creates_a_second_ticket_reported_as_a_duplicate_write() {
    let (fake, ledger) = start().await;
    let payload = ticket("fl-00000003");

    let first: Value = post(&fake, &payload, Some("key-a"))
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post(&fake, &payload, Some("key-b"))
        .await
        .json()
        .await
        .unwrap();

    assert_ne!(first["id"], second["id"]);
    assert_eq!(ledger.created(), 2);
    let duplicates = ledger.duplicate_writes();
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert_eq!(
        duplicates[0].ids,
        [
            first["id"].as_str().map(String::from),
            second["id"].as_str().map(String::from)
        ]
    );
    assert_eq!(
        duplicates[0].idempotency_keys,
        [Some("key-a".to_string()), Some("key-b".to_string())]
    );
    assert_eq!(duplicates[0].keys, vec![Some("fl-00000003".to_string()); 2]);
    let flags: Vec<bool> = ledger.writes().iter().map(|w| w.duplicate).collect();
    assert_eq!(flags, [false, true]);
}

#[tokio::test]
async fn writes_without_a_key_each_create_a_ticket_and_count_as_duplicates() {
    let (fake, ledger) = start().await;
    let payload = ticket("fl-00000004");

    let first = post(&fake, &payload, None).await;
    let second = post(&fake, &payload, None).await;

    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (201, 201)
    );
    assert_eq!(ledger.created(), 2);
    let duplicates = ledger.duplicate_writes();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].idempotency_keys, [None, None]);
}

#[tokio::test]
async fn different_payloads_without_keys_are_not_duplicates() {
    let (fake, ledger) = start().await;

    post(&fake, &ticket("fl-00000005"), None).await;
    post(&fake, &ticket("fl-00000006"), None).await;

    assert_eq!(ledger.created(), 2);
    assert!(ledger.duplicate_writes().is_empty());
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_refused_with_400() {
    let (fake, ledger) = start().await;

    post(&fake, &ticket("fl-00000007"), Some("key-7")).await;
    let reused = post(&fake, &ticket("fl-00000008"), Some("key-7")).await;

    assert_eq!(reused.status(), 400);
    let body: Value = reused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("key-7"), "{body}");
    assert_eq!(ledger.created(), 1);
    assert_eq!(ledger.writes()[1].outcome, WriteOutcome::KeyReused);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused_with_400_and_ledgered() {
    let (fake, ledger) = start().await;

    let array = post(&fake, &json!(["subject"]), Some("k")).await;
    let not_json = client()
        .post(format!("{}/tickets", fake.base_url()))
        .body("subject=x")
        .send()
        .await
        .unwrap();

    assert_eq!(
        (array.status().as_u16(), not_json.status().as_u16()),
        (400, 400)
    );
    let body: Value = array.json().await.unwrap();
    assert_eq!(body["error"], "expected a JSON object");
    assert_eq!(ledger.created(), 0);
    let outcomes: Vec<_> = ledger.writes().iter().map(|w| w.outcome).collect();
    assert_eq!(outcomes, [WriteOutcome::Invalid, WriteOutcome::Invalid]);
}

#[tokio::test]
async fn the_ledger_shows_each_write_with_its_nonce_and_idempotency_key() {
    let (fake, ledger) = start().await;

    post(&fake, &ticket("fl-0000000a"), Some("key-a")).await;
    post(&fake, &ticket("fl-0000000b"), None).await;

    let writes = ledger.writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].key.as_deref(), Some("fl-0000000a"));
    assert_eq!(writes[0].idempotency_key.as_deref(), Some("key-a"));
    assert_eq!(writes[1].key.as_deref(), Some("fl-0000000b"));
    assert_eq!(writes[1].idempotency_key, None);
    assert_ne!(writes[0].payload_hash, writes[1].payload_hash);
    assert!(writes[0].id.as_deref().unwrap().starts_with("tkt_"));
    assert!(writes[0].at_ms <= writes[1].at_ms);
    // The journal groups the same attempts under the same keys, on the same clock.
    let attempts = fake.journal().snapshot();
    let keys: Vec<_> = attempts.iter().map(|a| a.key.as_deref()).collect();
    assert_eq!(keys, [Some("fl-0000000a"), Some("fl-0000000b")]);
    assert_eq!(attempts[0].fake, "tickets");
    assert_eq!(attempts[0].status, Some(201));
}

#[tokio::test]
async fn a_503_fault_answers_retry_after_creates_nothing_and_is_ledgered_as_faulted() {
    let (fake, ledger) = start().await;
    fake.switchboard()
        .activate(rule(Fault::status(503, Some(Duration::from_secs(2)))));

    let response = post(&fake, &ticket("fl-0000000c"), Some("key-c")).await;

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "service unavailable");
    assert_eq!(ledger.created(), 0);
    let writes = ledger.writes();
    assert_eq!(writes[0].outcome, WriteOutcome::Faulted);
    assert_eq!(writes[0].idempotency_key.as_deref(), Some("key-c"));
    assert_eq!(writes[0].status, 503);
    let attempts = fake.journal().snapshot();
    assert_eq!(
        attempts[0].fault.as_deref(),
        Some("status 503 retry-after 2s")
    );
}

#[tokio::test]
async fn a_429_fault_answers_too_many_requests_with_retry_after() {
    let (fake, _ledger) = start().await;
    fake.switchboard()
        .activate(rule(Fault::status(429, Some(Duration::from_millis(1500)))));

    let response = post(&fake, &ticket("fl-0000000d"), Some("key-d")).await;

    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too many requests");
}

#[tokio::test]
async fn a_retry_with_the_same_key_after_a_first_attempt_fault_creates_one_ticket() {
    let (fake, ledger) = start().await;
    fake.switchboard().activate(FaultRule {
        first_attempts: Some(1),
        ..rule(Fault::status(503, None))
    });
    let payload = ticket("fl-0000000e");

    let first = post(&fake, &payload, Some("key-e")).await;
    let retry = post(&fake, &payload, Some("key-e")).await;

    assert_eq!(
        (first.status().as_u16(), retry.status().as_u16()),
        (503, 201)
    );
    assert_eq!(ledger.created(), 1);
    assert!(ledger.duplicate_writes().is_empty());
    let outcomes: Vec<_> = ledger.writes().iter().map(|w| w.outcome).collect();
    assert_eq!(outcomes, [WriteOutcome::Faulted, WriteOutcome::Created]);
}

#[tokio::test]
async fn a_delay_fault_slows_the_write_which_still_creates_a_ticket() {
    let (fake, ledger) = start().await;
    fake.switchboard().activate(rule(Fault::Delay {
        delay: Duration::from_millis(300),
        distribution: Default::default(),
    }));

    let started = Instant::now();
    let response = post(&fake, &ticket("fl-0000000f"), Some("key-f")).await;

    assert_eq!(response.status(), 201);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(ledger.created(), 1);
    let attempts = fake.journal().snapshot();
    assert_eq!(attempts[0].fault.as_deref(), Some("delay 300ms"));
}

#[tokio::test]
async fn a_hang_fault_never_answers_and_the_journal_records_no_status() {
    let (fake, ledger) = start().await;
    fake.switchboard().activate(rule(Fault::Hang));

    let result = client()
        .post(format!("{}/tickets", fake.base_url()))
        .header("Idempotency-Key", "key-h")
        .json(&ticket("fl-00000010"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;

    assert!(result.unwrap_err().is_timeout());
    assert_eq!(ledger.created(), 0);
    // The attempt is journaled once the fake notices the client left; give it time.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.journal().snapshot().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = fake.journal().snapshot();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].fault.as_deref(), Some("hang"));
    assert_eq!(attempts[0].status, None);
    assert_eq!(attempts[0].key.as_deref(), Some("fl-00000010"));
}

#[tokio::test]
async fn a_refuse_fault_closes_the_port_until_it_is_lifted() {
    let (fake, ledger) = start().await;
    fake.switchboard().activate(FaultRule {
        route: None,
        ..rule(Fault::Refuse)
    });
    // The accept loop closes the port when it sees the flag; give it a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let refused = client()
        .post(format!("{}/tickets", fake.base_url()))
        .json(&ticket("fl-00000011"))
        .send()
        .await;

    assert!(refused.unwrap_err().is_connect());
    fake.switchboard().deactivate(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let answered = loop {
        let attempt = client()
            .post(format!("{}/tickets", fake.base_url()))
            .json(&ticket("fl-00000011"))
            .send()
            .await;
        match attempt {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("the port never reopened: {error}"),
        }
    };
    assert_eq!(answered.status(), 201);
    assert_eq!(ledger.created(), 1);
}

// ---- Writes of the service's shape ----

async fn start_shaped(schema: WriteSchema) -> (FakeHandle, Arc<WriteLedger>) {
    tool::start_tickets_on(
        "127.0.0.1:0".parse().unwrap(),
        schema,
        Arc::new(Switchboard::new(7)),
        Arc::new(Journal::new(Instant::now(), 1000)),
    )
    .await
    .expect("tickets fake starts")
}

fn helpdesk() -> WriteSchema {
    WriteSchema {
        path: "/v1/tickets".into(),
        required: vec!["subject".into(), "user".into()],
        idempotency_header: "X-Idempotency-Key".into(),
    }
}

#[tokio::test]
async fn by_default_any_json_object_is_a_write_and_is_echoed_back() {
    let (fake, ledger) = start().await;

    let created = post(
        &fake,
        &json!({ "subject": "Refund please", "user": "u_42", "tags": ["billing"] }),
        Some("k-any"),
    )
    .await;

    assert_eq!(created.status(), 201);
    let ticket: Value = created.json().await.unwrap();
    assert!(ticket["id"].as_str().unwrap().starts_with("tkt_"));
    assert_eq!(ticket["subject"], "Refund please");
    assert_eq!(ticket["user"], "u_42");
    assert_eq!(ticket["tags"], json!(["billing"]));
    assert_eq!(ticket["status"], "open");
    assert_eq!(ledger.created(), 1);
}

#[tokio::test]
async fn a_shaped_fake_writes_at_its_path_and_names_a_missing_required_field() {
    let (fake, ledger) = start_shaped(helpdesk()).await;
    let url = format!("{}/v1/tickets", fake.base_url());

    let missing = client()
        .post(&url)
        .json(&json!({ "subject": "Refund please" }))
        .send()
        .await
        .unwrap();
    let elsewhere = client()
        .post(format!("{}/tickets", fake.base_url()))
        .json(&json!({ "subject": "s", "user": "u" }))
        .send()
        .await
        .unwrap();
    let created = client()
        .post(&url)
        .json(&json!({ "subject": "Refund please", "user": "u_42" }))
        .send()
        .await
        .unwrap();

    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(
        body["error"],
        "missing required field 'user' (required: subject, user)"
    );
    assert_eq!(elsewhere.status(), 404);
    assert_eq!(created.status(), 201);
    let ticket: Value = created.json().await.unwrap();
    let read = client()
        .get(format!("{url}/{}", ticket["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(read.json::<Value>().await.unwrap(), ticket);
    let outcomes: Vec<_> = ledger.writes().iter().map(|w| w.outcome).collect();
    assert_eq!(outcomes, [WriteOutcome::Invalid, WriteOutcome::Created]);
}

/// One write as a service stamps it: the same subject and user, a fresh timestamp and event id.
fn stamped(subject: &str) -> Value {
    json!({
        "subject": subject,
        "user": "u_42",
        "sent_at": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        "event_id": uuid::Uuid::new_v4().to_string(),
    })
}

#[tokio::test]
async fn the_custom_idempotency_header_replays_a_retry_whose_timestamp_changed() {
    let (fake, ledger) = start_shaped(helpdesk()).await;
    let url = format!("{}/v1/tickets", fake.base_url());
    let send = |payload: Value, key: &'static str| {
        client()
            .post(&url)
            .header("X-Idempotency-Key", key)
            .json(&payload)
            .send()
    };

    let first: Value = send(stamped("Refund please"), "k-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let retry = send(stamped("Refund please"), "k-1").await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap()["id"], first["id"]);
    let reused = send(stamped("Another subject"), "k-1").await.unwrap();
    assert_eq!(reused.status(), 400);

    let outcomes: Vec<_> = ledger.writes().iter().map(|w| w.outcome).collect();
    assert_eq!(
        outcomes,
        [
            WriteOutcome::Created,
            WriteOutcome::Replayed,
            WriteOutcome::KeyReused
        ]
    );
    assert_eq!(ledger.created(), 1);
}

#[tokio::test]
async fn an_unlinked_write_is_one_request_to_first_attempts_even_with_a_fresh_timestamp() {
    let (fake, ledger) = start().await;
    fake.switchboard().activate(FaultRule {
        first_attempts: Some(1),
        ..rule(Fault::status(503, None))
    });

    let first = post(&fake, &stamped("Printer on fire"), None).await;
    let retry = post(&fake, &stamped("Printer on fire"), None).await;
    let other = post(&fake, &stamped("Coffee machine broken"), None).await;

    assert_eq!(
        [first.status(), retry.status(), other.status()].map(|s| s.as_u16()),
        [503, 201, 503]
    );
    let writes = ledger.writes();
    assert!(writes.iter().all(|w| w.key.is_none()), "{writes:?}");
    let keys: Vec<String> = fake
        .journal()
        .snapshot()
        .into_iter()
        .map(|a| a.key.unwrap_or_default())
        .collect();
    assert!(keys[0].starts_with("write-"), "{keys:?}");
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[0], keys[2]);
}

// ---- writes.idempotent on a service whose writes are {"subject", "user"} ----

/// How a service picks the idempotency key of each try of one write.
#[derive(Clone, Copy)]
enum Keys {
    /// One key per write, kept on every retry.
    Stable,
    /// A new key on every try.
    Fresh,
    /// No key.
    None,
}

/// What a service does for one client request: POSTs `{"subject", "user", "sent_at",
/// "event_id"}` (no nonce: the subject is its own summary) with the client's `x-request-id`
/// forwarded, and retries a 5xx up to twice.
async fn service_write(fake: &FakeHandle, request_id: &str, subject: &str, keys: Keys) -> u16 {
    let stable = uuid::Uuid::new_v4().to_string();
    let mut status = 0;
    for _ in 0..3 {
        let mut request = client()
            .post(format!("{}/tickets", fake.base_url()))
            .header("x-request-id", request_id)
            .json(&stamped(subject));
        request = match keys {
            Keys::Stable => request.header("Idempotency-Key", &stable),
            Keys::Fresh => request.header("Idempotency-Key", uuid::Uuid::new_v4().to_string()),
            Keys::None => request,
        };
        status = request.send().await.unwrap().status().as_u16();
        if status < 500 {
            break;
        }
    }
    status
}

/// `tool-writes` in small: the first try of every write gets a 503; four client requests.
async fn judged(keys: Keys, forward_request_id: bool) -> faultline::checks::Verdict {
    use faultline::evidence::{Evidence, Record};
    let (fake, ledger) = start().await;
    fake.switchboard().activate(FaultRule {
        first_attempts: Some(1),
        ..rule(Fault::status(503, None))
    });
    let mut records = Vec::new();
    for n in 1..=4u32 {
        let request_id = format!("flreq-{n:08x}");
        let forwarded = if forward_request_id {
            request_id.clone()
        } else {
            format!("svc-{}", uuid::Uuid::new_v4())
        };
        let status = service_write(&fake, &forwarded, &format!("Issue number {n}"), keys).await;
        records.push(Record {
            request_id,
            nonce: format!("fl-{n:08x}"),
            status: Some(status),
            ..Record::default()
        });
    }
    let evidence = Evidence {
        records: records.into(),
        writes: faultline::fakes::set::write_attempts("tickets", &ledger).into(),
        ..Evidence::default()
    };
    faultline::checks::writes::check_idempotent(&evidence, &Default::default())
}

#[tokio::test]
async fn a_subject_user_writer_that_retries_under_one_key_passes_writes_idempotent() {
    let verdict = judged(Keys::Stable, true).await;
    assert_eq!(
        verdict.outcome,
        faultline::checks::Outcome::Pass,
        "{verdict:#?}"
    );
    assert!(
        verdict
            .summary
            .starts_with("8 writes for 4 requests, 4 of them retried"),
        "{}",
        verdict.summary
    );
}

#[tokio::test]
async fn a_subject_user_writer_that_retries_under_a_fresh_key_or_none_fails_writes_idempotent() {
    for keys in [Keys::Fresh, Keys::None] {
        let verdict = judged(keys, true).await;
        assert_eq!(
            verdict.outcome,
            faultline::checks::Outcome::Fail,
            "{verdict:#?}"
        );
        assert_eq!(verdict.figure, Some(4.0), "{verdict:#?}");
        assert!(
            verdict.evidence[0].starts_with("flreq-00000001 at tickets: retried"),
            "{:?}",
            verdict.evidence
        );
    }
}

#[tokio::test]
async fn writes_the_check_cannot_tie_to_a_client_request_are_not_applicable_not_passed() {
    let verdict = judged(Keys::Fresh, false).await;
    assert_eq!(
        verdict.outcome,
        faultline::checks::Outcome::NotApplicable,
        "{verdict:#?}"
    );
    assert!(
        verdict.summary.contains("forward x-request-id"),
        "{}",
        verdict.summary
    );
}
