//! The tickets fake: a write API with idempotency keys, as support desks and payment APIs have.
//! Its shape is the service's ([`WriteSchema`], from `[tools.tickets]` in `faultline.toml` or
//! `faultline fake tool tickets` flags); by default any JSON object posted to `/tickets` is a
//! write.
//!
//! - `POST {path}` with a JSON object and an optional idempotency key header (default
//!   `Idempotency-Key`) answers 201 with the object, plus `id` (`tkt_…`), `status` (`open`
//!   unless the write set one) and `created_at`. A repeat with the same key and the same write
//!   answers the same ticket (201 again, with `idempotent-replayed: true`, as Stripe does) and
//!   creates nothing; the same key with another write is a 400, as in Stripe. A write without a
//!   key always creates a ticket. What counts as "the same write", and what links a write to
//!   a client request, is `ledger`'s to say (see its module docs).
//! - A body that is not a JSON object, or that lacks a `required` field (absent, `null` or an
//!   empty string; a dotted name reaches into objects), is a 400 `{"error": "..."}` naming it.
//! - `GET {path}/{id}` answers the ticket, or 404.
//!
//! The journal (from `fakes::http`) has no room for idempotency keys, so this fake keeps a
//! [`WriteLedger`]: one record per write that reached the fake's logic (answered normally or
//! with an injected status). A hung write never reaches it; the journal has it.
//!
//! Bounded: the fake keeps the newest `TICKETS_LIMIT` tickets; the ledger has its own bounds.

use crate::sync::LockExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::ledger::{self, Answer, Decision, Seen, WriteLedger, WriteOutcome};
use super::{error, status_fault_reply};
use crate::fakes::fault::Switchboard;
use crate::fakes::http::{self, Reply, Request, Responder};
use crate::fakes::journal::Journal;
use crate::fakes::text::hash;
use crate::fakes::{FakeError, FakeHandle};

/// Tickets kept; past this the oldest are forgotten.
const TICKETS_LIMIT: usize = 10_000;

/// The shape of a write tool's API: where writes go, what they must carry, and which header
/// holds their idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WriteSchema {
    /// The write route (`POST`); tickets are read at `{path}/{id}`.
    pub path: String,
    /// Fields a write must carry (a dotted name reaches into objects); none by default.
    pub required: Vec<String>,
    /// The header that carries the idempotency key.
    pub idempotency_header: String,
}

impl Default for WriteSchema {
    fn default() -> Self {
        WriteSchema {
            path: "/tickets".into(),
            required: Vec::new(),
            idempotency_header: "Idempotency-Key".into(),
        }
    }
}

impl WriteSchema {
    /// The first required field `payload` lacks: absent, `null` or an empty string.
    pub fn missing<'a>(&'a self, payload: &Map<String, Value>) -> Option<&'a str> {
        self.required.iter().map(String::as_str).find(|field| {
            let mut parts = field.split('.');
            let first = parts.next().and_then(|name| payload.get(name));
            let found = parts.try_fold(first, |value, name| Some(value?.get(name)));
            match found.flatten() {
                None | Some(Value::Null) => true,
                Some(Value::String(text)) => text.trim().is_empty(),
                Some(_) => false,
            }
        })
    }
}

/// Starts the tickets fake on `127.0.0.1` at an ephemeral port with the default schema. The
/// ledger is returned beside the handle because the handle is the same for every fake; keep
/// the `Arc` to read writes.
pub async fn start_tickets(
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<(FakeHandle, Arc<WriteLedger>), FakeError> {
    start_tickets_on(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        WriteSchema::default(),
        switchboard,
        journal,
    )
    .await
}

/// Like [`start_tickets`], on a given loopback address and with the service's schema.
pub async fn start_tickets_on(
    addr: std::net::SocketAddr,
    schema: WriteSchema,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<(FakeHandle, Arc<WriteLedger>), FakeError> {
    let ledger = Arc::new(WriteLedger::default());
    let tickets = Tickets {
        item_prefix: format!("{}/", schema.path.trim_end_matches('/')),
        schema,
        ledger: ledger.clone(),
        store: Mutex::default(),
        journal: journal.clone(),
    };
    let handle = http::serve_on(addr, "tickets", tickets, switchboard, journal).await?;
    Ok((handle, ledger))
}

struct Tickets {
    schema: WriteSchema,
    /// `{path}/`, where single tickets are read.
    item_prefix: String,
    ledger: Arc<WriteLedger>,
    store: Mutex<Store>,
    /// For `at_ms` offsets on the journal's clock.
    journal: Arc<Journal>,
}

/// The tickets held, with their creation order for forgetting the oldest.
#[derive(Default)]
struct Store {
    tickets: HashMap<String, Bytes>,
    order: VecDeque<String>,
    next: u64,
}

impl Store {
    /// Creates a ticket from `payload`; its answer.
    fn create(&mut self, mut payload: Map<String, Value>) -> Answer {
        self.next += 1;
        let id = format!("tkt_{:016x}", hash(self.next, "ticket"));
        let mut ticket = Map::new();
        ticket.insert("id".into(), json!(id));
        payload.remove("id");
        let status = payload.remove("status").unwrap_or_else(|| json!("open"));
        ticket.append(&mut payload);
        ticket.insert("status".into(), status);
        ticket.insert("created_at".into(), json!(now_rfc3339()));
        let body = Bytes::from(Value::Object(ticket).to_string());
        if self.order.len() == TICKETS_LIMIT {
            if let Some(old) = self.order.pop_front() {
                self.tickets.remove(&old);
            }
        }
        self.order.push_back(id.clone());
        self.tickets.insert(id.clone(), body.clone());
        Answer {
            status: StatusCode::CREATED,
            body,
            id: Some(id),
        }
    }
}

impl Responder for Tickets {
    fn answer(&self, request: &Request) -> Reply {
        let path = request.uri.path();
        if path == self.schema.path {
            return match request.method {
                Method::POST => self.create(request),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            };
        }
        let Some(id) = path.strip_prefix(&self.item_prefix) else {
            return error(StatusCode::NOT_FOUND, &format!("no route {path}"));
        };
        if request.method != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        match self.store.locked().tickets.get(id) {
            Some(ticket) => Reply::json_body(StatusCode::OK, ticket.to_vec()),
            None => error(StatusCode::NOT_FOUND, &format!("no ticket {id}")),
        }
    }

    fn fault_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        // A faulted write created nothing, but a check needs to see it was tried (and with
        // which key) to tell a retry from a duplicate.
        if self.is_write(request) {
            self.ledger
                .refused(self.seen(request), WriteOutcome::Faulted, status);
        }
        status_fault_reply(status, retry_after)
    }

    fn fallback_key(&self, request: &Request) -> Option<String> {
        self.is_write(request)
            .then(|| ledger::fallback_key(request))
    }
}

impl Tickets {
    fn is_write(&self, request: &Request) -> bool {
        request.method == Method::POST && request.uri.path() == self.schema.path
    }

    fn seen(&self, request: &Request) -> Seen {
        let at_ms = self.journal.offset_ms(request.arrival);
        Seen::of(request, at_ms, &self.schema.idempotency_header)
    }

    fn create(&self, request: &Request) -> Reply {
        let seen = self.seen(request);
        let payload = match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(payload)) => payload,
            _ => return self.invalid(seen, "expected a JSON object".into()),
        };
        if let Some(field) = self.schema.missing(&payload) {
            let message = format!(
                "missing required field '{field}' (required: {})",
                self.schema.required.join(", ")
            );
            return self.invalid(seen, message);
        }
        let decision = self
            .ledger
            .write(seen, || self.store.locked().create(payload));
        match decision {
            Decision::Created(answer) => Reply::json_body(answer.status, answer.body.to_vec()),
            Decision::Replayed(answer) => Reply::json_body(answer.status, answer.body.to_vec())
                .with_header("idempotent-replayed", "true"),
            Decision::Refused { key, first } => error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "keys for idempotent requests can only be used with the same parameters \
                     they were first used with; key '{key}' was used for ticket {}",
                    first.as_deref().unwrap_or("(unknown)")
                ),
            ),
        }
    }

    fn invalid(&self, seen: Seen, message: String) -> Reply {
        let status = StatusCode::BAD_REQUEST;
        self.ledger.refused(seen, WriteOutcome::Invalid, status);
        error(status, &message)
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(required: &[&str]) -> WriteSchema {
        WriteSchema {
            required: required.iter().map(|f| f.to_string()).collect(),
            ..WriteSchema::default()
        }
    }

    fn object(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_required_field_is_missing_when_absent_null_or_blank() {
        let schema = schema(&["subject", "user"]);
        assert_eq!(
            schema.missing(&object(r#"{"subject":"s","user":"u"}"#)),
            None
        );
        assert_eq!(schema.missing(&object(r#"{"subject":"s"}"#)), Some("user"));
        assert_eq!(
            schema.missing(&object(r#"{"subject":null,"user":"u"}"#)),
            Some("subject")
        );
        assert_eq!(
            schema.missing(&object(r#"{"subject":" ","user":"u"}"#)),
            Some("subject")
        );
        assert_eq!(schema.missing(&object(r#"{"subject":0,"user":[]}"#)), None);
    }

    #[test]
    fn a_dotted_field_reaches_into_objects() {
        let schema = schema(&["customer.email"]);
        assert_eq!(
            schema.missing(&object(r#"{"customer":{"email":"a@b"}}"#)),
            None
        );
        assert_eq!(
            schema.missing(&object(r#"{"customer":{}}"#)),
            Some("customer.email")
        );
        assert_eq!(
            schema.missing(&object(r#"{"customer":"x"}"#)),
            Some("customer.email")
        );
    }

    #[test]
    fn a_ticket_echoes_the_write_with_the_fakes_id_and_a_default_status() {
        let mut store = Store::default();
        let answer = store.create(object(r#"{"id":"mine","subject":"s","user":"u"}"#));
        let ticket: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(ticket["id"], answer.id.unwrap().as_str());
        assert_eq!(
            (ticket["subject"].as_str(), ticket["user"].as_str()),
            (Some("s"), Some("u"))
        );
        assert_eq!(ticket["status"], "open");
        let answer = store.create(object(r#"{"status":"pending"}"#));
        let ticket: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(ticket["status"], "pending");
    }

    #[test]
    fn the_oldest_ticket_is_forgotten_past_the_bound() {
        let mut store = Store::default();
        let first = store.create(Map::new()).id.unwrap();
        for _ in 0..TICKETS_LIMIT {
            store.create(Map::new());
        }
        assert_eq!(store.tickets.len(), TICKETS_LIMIT);
        assert!(!store.tickets.contains_key(&first));
    }
}
