//! The tickets fake: a write API with idempotency keys, as support desks and payment APIs have.
//!
//! - `POST /tickets` with a JSON object `{"subject", "body", ...}` and an optional
//!   `Idempotency-Key` header answers 201 `{"id": "tkt_…", "subject", "body", "status": "open",
//!   "created_at"}`. A repeat with the same key answers the same ticket (201 again, with
//!   `idempotent-replayed: true`, as Stripe does) and creates nothing; the same key with another
//!   payload is a 400, as in Stripe. A write without a key always creates a ticket.
//! - `GET /tickets/{id}` answers the ticket, or 404.
//!
//! The journal (from `fakes::http`) has no room for the idempotency key, so this fake keeps its
//! own [`TicketLedger`]: one [`TicketWrite`] per `POST /tickets` that reached the fake's logic
//! (answered normally or with an injected status). A hung write never reaches it; the journal
//! has it. [`TicketLedger::duplicate_writes`] groups the writes that created a ticket by payload:
//! one payload that created more than one ticket is a duplicate side effect, the thing a
//! retrying client without (or with fresh) idempotency keys causes.
//!
//! Bounded: the fake keeps the newest `TICKETS_LIMIT` tickets (and their keys) and the newest
//! `WRITES_LIMIT` ledger entries, counting what it forgot.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use super::{error, status_fault_reply};
use crate::fakes::fault::Switchboard;
use crate::fakes::http::{self, Reply, Request, Responder};
use crate::fakes::journal::Journal;
use crate::fakes::text::{hash, last_nonce};
use crate::fakes::{FakeError, FakeHandle};

/// Tickets (and their idempotency keys) kept; past this the oldest are forgotten.
const TICKETS_LIMIT: usize = 10_000;
/// Ledger entries kept; past this the oldest go and [`TicketLedger::dropped`] counts them.
const WRITES_LIMIT: usize = 100_000;

/// Starts the tickets fake on `127.0.0.1` at an ephemeral port. The ledger is returned beside
/// the handle because the handle is the same for every fake; keep the `Arc` to read writes.
pub async fn start_tickets(
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<(FakeHandle, Arc<TicketLedger>), FakeError> {
    start_tickets_on(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        switchboard,
        journal,
    )
    .await
}

/// Like [`start_tickets`], on a given loopback address.
pub async fn start_tickets_on(
    addr: std::net::SocketAddr,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<(FakeHandle, Arc<TicketLedger>), FakeError> {
    let ledger = Arc::new(TicketLedger::default());
    let tickets = Tickets {
        ledger: ledger.clone(),
        journal: journal.clone(),
    };
    let handle = http::serve_on(addr, "tickets", tickets, switchboard, journal).await?;
    Ok((handle, ledger))
}

/// What became of one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    /// A new ticket was created.
    Created,
    /// The idempotency key was seen before with the same payload: the earlier ticket was
    /// answered and nothing was created.
    Replayed,
    /// The idempotency key was seen before with another payload: refused with 400.
    KeyReused,
    /// The request was invalid (not a JSON object, no subject or body): refused with 400.
    Invalid,
    /// An injected status fault answered instead: nothing was created.
    Faulted,
}

/// One `POST /tickets` as the ledger records it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TicketWrite {
    /// Milliseconds from the journal's epoch to the write's arrival (as `Attempt::at_ms`).
    pub at_ms: f64,
    /// Correlation key, found as the journal finds it: the nonce in the body or query, else
    /// `x-request-id`.
    pub key: Option<String>,
    /// The `Idempotency-Key` header, if sent.
    pub idempotency_key: Option<String>,
    /// Hash of the payload (the JSON body with its keys sorted; the raw bytes if not JSON).
    pub payload_hash: u64,
    /// The ticket created or replayed, if any.
    pub ticket_id: Option<String>,
    pub outcome: WriteOutcome,
    /// Status answered.
    pub status: u16,
    /// True when this write created a ticket although the same payload had already created one:
    /// a duplicate side effect.
    pub duplicate: bool,
}

/// One payload that created more than one ticket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DuplicateWrite {
    pub payload_hash: u64,
    /// Every ticket the payload created, oldest first.
    pub ticket_ids: Vec<String>,
    /// The idempotency key of each of those writes, in the same order (`None`: sent none).
    pub idempotency_keys: Vec<Option<String>>,
    /// The correlation key of each of those writes, in the same order.
    pub keys: Vec<Option<String>>,
    /// When each of those writes arrived, in the same order.
    pub at_ms: Vec<f64>,
}

/// Every write the tickets fake saw, and the tickets it holds. Shared by the fake's
/// connection tasks and whoever reads the evidence.
#[derive(Default)]
pub struct TicketLedger {
    state: Mutex<LedgerState>,
}

#[derive(Default)]
struct LedgerState {
    writes: VecDeque<TicketWrite>,
    dropped: u64,
    tickets: HashMap<String, Ticket>,
    /// Creation order, for forgetting the oldest ticket.
    order: VecDeque<String>,
    /// Idempotency key → (payload hash, ticket id).
    keys: HashMap<String, (u64, String)>,
    /// Payload hash → tickets created with it, to flag duplicates as they happen.
    created_by_payload: HashMap<u64, u32>,
    next: u64,
}

#[derive(Clone)]
struct Ticket {
    id: String,
    /// The JSON answered for the ticket.
    json: Value,
    idempotency_key: Option<String>,
    payload_hash: u64,
}

impl TicketLedger {
    /// A copy of the writes, oldest first.
    pub fn writes(&self) -> Vec<TicketWrite> {
        self.state.lock().unwrap().writes.iter().cloned().collect()
    }

    /// How many of the oldest writes were pushed out by the bound.
    pub fn dropped(&self) -> u64 {
        self.state.lock().unwrap().dropped
    }

    /// How many tickets the fake holds now.
    pub fn tickets(&self) -> usize {
        self.state.lock().unwrap().tickets.len()
    }

    /// Payloads that created more than one ticket (with different or missing idempotency
    /// keys), in the order their first ticket was created. Empty when every write was
    /// idempotent. Computed from the writes still in the ledger.
    pub fn duplicate_writes(&self) -> Vec<DuplicateWrite> {
        let state = self.state.lock().unwrap();
        let mut groups: Vec<DuplicateWrite> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for write in &state.writes {
            let (WriteOutcome::Created, Some(id)) = (write.outcome, &write.ticket_id) else {
                continue;
            };
            let at = *index.entry(write.payload_hash).or_insert_with(|| {
                groups.push(DuplicateWrite {
                    payload_hash: write.payload_hash,
                    ticket_ids: Vec::new(),
                    idempotency_keys: Vec::new(),
                    keys: Vec::new(),
                    at_ms: Vec::new(),
                });
                groups.len() - 1
            });
            let group = &mut groups[at];
            group.ticket_ids.push(id.clone());
            group.idempotency_keys.push(write.idempotency_key.clone());
            group.keys.push(write.key.clone());
            group.at_ms.push(write.at_ms);
        }
        groups.retain(|group| group.ticket_ids.len() > 1);
        groups
    }

    fn record(&self, state: &mut LedgerState, write: TicketWrite) {
        if state.writes.len() == WRITES_LIMIT {
            state.writes.pop_front();
            state.dropped += 1;
        }
        state.writes.push_back(write);
    }
}

impl LedgerState {
    /// Stores a new ticket, forgetting the oldest past the bound. Returns whether the same
    /// payload had created a ticket before (a duplicate side effect).
    fn create(&mut self, ticket: Ticket) -> bool {
        if self.order.len() == TICKETS_LIMIT {
            if let Some(old) = self.order.pop_front() {
                if let Some(old) = self.tickets.remove(&old) {
                    if let Some(key) = &old.idempotency_key {
                        self.keys.remove(key);
                    }
                    if let Some(count) = self.created_by_payload.get_mut(&old.payload_hash) {
                        *count -= 1;
                        if *count == 0 {
                            self.created_by_payload.remove(&old.payload_hash);
                        }
                    }
                }
            }
        }
        let created = self
            .created_by_payload
            .entry(ticket.payload_hash)
            .or_insert(0);
        *created += 1;
        let duplicate = *created > 1;
        if let Some(key) = &ticket.idempotency_key {
            self.keys
                .insert(key.clone(), (ticket.payload_hash, ticket.id.clone()));
        }
        self.order.push_back(ticket.id.clone());
        self.tickets.insert(ticket.id.clone(), ticket);
        duplicate
    }
}

struct Tickets {
    ledger: Arc<TicketLedger>,
    /// For `at_ms` offsets on the journal's clock.
    journal: Arc<Journal>,
}

impl Responder for Tickets {
    fn answer(&self, request: &Request) -> Reply {
        let path = request.uri.path();
        match (&request.method, path) {
            (&Method::POST, "/tickets") => self.create(request),
            (_, "/tickets") => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            (&Method::GET, _) if path.starts_with("/tickets/") => {
                let id = &path["/tickets/".len()..];
                let state = self.ledger.state.lock().unwrap();
                match state.tickets.get(id) {
                    Some(ticket) => Reply::json(StatusCode::OK, &ticket.json),
                    None => error(StatusCode::NOT_FOUND, &format!("no ticket {id}")),
                }
            }
            (_, _) if path.starts_with("/tickets/") => {
                error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            }
            (_, path) => error(StatusCode::NOT_FOUND, &format!("no route {path}")),
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
        if request.method == Method::POST && request.uri.path() == "/tickets" {
            let hash = payload_hash(request);
            let write = self.write(request, hash, None, WriteOutcome::Faulted, status, false);
            let mut state = self.ledger.state.lock().unwrap();
            self.ledger.record(&mut state, write);
        }
        status_fault_reply(status, retry_after)
    }
}

impl Tickets {
    fn create(&self, request: &Request) -> Reply {
        let payload: Option<Value> = serde_json::from_slice(&request.body).ok();
        let payload_hash = match &payload {
            Some(value) => hash(0, &canonical(value)),
            None => payload_hash(request),
        };
        let mut state = self.ledger.state.lock().unwrap();
        let fields = payload.as_ref().and_then(|p| {
            let subject = p.get("subject")?.as_str()?.trim();
            let body = p.get("body")?.as_str()?.trim();
            (!subject.is_empty() && !body.is_empty()).then_some((subject, body))
        });
        let Some((subject, body)) = fields else {
            let status = StatusCode::BAD_REQUEST;
            let write = self.write(
                request,
                payload_hash,
                None,
                WriteOutcome::Invalid,
                status,
                false,
            );
            self.ledger.record(&mut state, write);
            return error(
                status,
                "expected a JSON object with non-empty string fields 'subject' and 'body'",
            );
        };
        let idempotency_key = idempotency_key(request);

        if let Some(key) = &idempotency_key {
            if let Some((earlier_hash, id)) = state.keys.get(key).cloned() {
                if earlier_hash != payload_hash {
                    let status = StatusCode::BAD_REQUEST;
                    let write = self.write(
                        request,
                        payload_hash,
                        None,
                        WriteOutcome::KeyReused,
                        status,
                        false,
                    );
                    self.ledger.record(&mut state, write);
                    return error(
                        status,
                        &format!(
                            "keys for idempotent requests can only be used with the same \
                             parameters they were first used with; key '{key}' was used for \
                             ticket {id}"
                        ),
                    );
                }
                let ticket = state.tickets[&id].json.clone();
                let write = self.write(
                    request,
                    payload_hash,
                    Some(id),
                    WriteOutcome::Replayed,
                    StatusCode::CREATED,
                    false,
                );
                self.ledger.record(&mut state, write);
                return Reply::json(StatusCode::CREATED, &ticket)
                    .with_header("idempotent-replayed", "true");
            }
        }

        state.next += 1;
        let id = format!("tkt_{:016x}", hash(state.next, "ticket"));
        let json = json!({
            "id": id,
            "subject": subject,
            "body": body,
            "status": "open",
            "created_at": now_rfc3339(),
        });
        let duplicate = state.create(Ticket {
            id: id.clone(),
            json: json.clone(),
            idempotency_key,
            payload_hash,
        });
        let write = self.write(
            request,
            payload_hash,
            Some(id),
            WriteOutcome::Created,
            StatusCode::CREATED,
            duplicate,
        );
        self.ledger.record(&mut state, write);
        Reply::json(StatusCode::CREATED, &json)
    }

    fn write(
        &self,
        request: &Request,
        payload_hash: u64,
        ticket_id: Option<String>,
        outcome: WriteOutcome,
        status: StatusCode,
        duplicate: bool,
    ) -> TicketWrite {
        TicketWrite {
            at_ms: self.journal.offset_ms(request.arrival),
            key: correlation_key(request),
            idempotency_key: idempotency_key(request),
            payload_hash,
            ticket_id,
            outcome,
            status: status.as_u16(),
            duplicate,
        }
    }
}

fn idempotency_key(request: &Request) -> Option<String> {
    let key = request.header("idempotency-key")?.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// The same key the journal gives the attempt (`fakes::http` keeps its helper private): the
/// last nonce in the body or the query, else a propagated `x-request-id`.
fn correlation_key(request: &Request) -> Option<String> {
    last_nonce(&request.body)
        .or_else(|| last_nonce(request.uri.query()?.as_bytes()))
        .map(str::to_owned)
        .or_else(|| {
            let id = request.header("x-request-id")?.trim();
            (!id.is_empty()).then(|| id.to_owned())
        })
}

/// A hash of the payload that ignores JSON key order and whitespace, so a client that
/// re-serialises the same ticket differently still counts as writing the same thing.
fn payload_hash(request: &Request) -> u64 {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(value) => hash(0, &canonical(&value)),
        Err(_) => hash(0, &String::from_utf8_lossy(&request.body)),
    }
}

/// JSON text with object keys sorted at every level (whatever map order serde_json was built with).
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
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

    #[test]
    fn the_canonical_form_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&b), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
    }

    #[test]
    fn a_forgotten_ticket_takes_its_key_and_payload_count_with_it() {
        let mut state = LedgerState::default();
        let ticket = |n: usize| Ticket {
            id: format!("tkt_{n}"),
            json: Value::Null,
            idempotency_key: Some(format!("key-{n}")),
            payload_hash: 7,
        };
        for n in 0..TICKETS_LIMIT {
            state.create(ticket(n));
        }
        assert_eq!(state.created_by_payload[&7], TICKETS_LIMIT as u32);
        state.create(ticket(TICKETS_LIMIT));
        assert_eq!(state.tickets.len(), TICKETS_LIMIT);
        assert!(!state.keys.contains_key("key-0"));
        assert!(!state.tickets.contains_key("tkt_0"));
        assert_eq!(state.created_by_payload[&7], TICKETS_LIMIT as u32);
    }
}
