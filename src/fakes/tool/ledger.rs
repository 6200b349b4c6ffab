//! The ledger of writes a write tool keeps (the tickets fake, and stubs marked `idempotent`):
//! idempotency keys with what they first answered, and one [`WriteRecord`] per write, from
//! which duplicate side effects are seen.
//!
//! # Idempotency, as Stripe and most write APIs do it
//! - A write with an idempotency key never seen creates its side effect, and the key remembers
//!   the write's identity and answer.
//! - The same key with the same identity is a replay: the first answer again, nothing created.
//! - The same key with another identity is refused with 400 (and creates nothing).
//! - A write without a key always creates.
//!
//! # What "the same write" means: the identity
//! A write's identity is a hash of its method, path and payload. A JSON payload is compared
//! with its keys sorted and its *volatile* values masked: strings that are ISO 8601 date-times
//! (`2025-01-31T10:00:00Z`, Python's offset-less `isoformat()` too) or UUIDs (dashed or 32 hex
//! digits), and numbers that read as the current Unix time in seconds or milliseconds (within
//! a day of now). A service that stamps every attempt with `sent_at` or a fresh event id is
//! still sending the same write when it retries: with a stable key that is a replay, without
//! one it is a duplicate. The price: two writes that differ only in such values count as one.
//! A body that is not JSON is compared byte for byte.
//!
//! # What links a write to a client request
//! A write's `key` (its link) is, as in the journal: the last faultline nonce (`fl-` and 8 hex
//! digits) in its body or query, which is there when the service puts the user's message (or
//! the part of it that carries the nonce) into the write; else the `x-request-id` header, which
//! is there when the service forwards the id faultline sent with the client request. A write
//! with neither is unlinked: its duplicates are still counted (by identity alone), but
//! `writes.idempotent` cannot tell a retry from another user's request and leaves it unjudged.
//! For fault picking (`first_attempts`) and the journal, an unlinked write's key is its
//! identity ([`fallback_key`]), so its retries count as one request's.
//!
//! Bounded: the newest `WRITES_LIMIT` records (counting what was forgotten), `KEYS_LIMIT`
//! idempotency keys and `CREATED_LIMIT` (link, identity) counts.

use crate::sync::LockExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::fakes::http::Request;
use crate::fakes::text::{hash, last_nonce};

/// Records kept; past this the oldest go and [`WriteLedger::dropped`] counts them.
const WRITES_LIMIT: usize = 100_000;
/// Idempotency keys remembered; past this the oldest are forgotten (as real APIs expire them).
const KEYS_LIMIT: usize = 10_000;
/// (link, identity) pairs whose creations are counted, for flagging duplicates as they happen.
const CREATED_LIMIT: usize = 100_000;
/// How far from now a number may be and still read as a timestamp of this write.
const TIMESTAMP_WINDOW_S: f64 = 24.0 * 3600.0;

/// What became of one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    /// The write created its side effect.
    Created,
    /// The idempotency key was seen before with the same write: the first answer was replayed
    /// and nothing was created.
    Replayed,
    /// The idempotency key was seen before with another write: refused with 400.
    KeyReused,
    /// The request was not a valid write (not a JSON object, a required field missing):
    /// refused with 400.
    Invalid,
    /// An injected status fault answered instead: nothing was created.
    Faulted,
}

/// One write as the ledger records it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WriteRecord {
    /// Milliseconds from the journal's epoch to the write's arrival (as `Attempt::at_ms`).
    pub at_ms: f64,
    /// The client request it belongs to (see the module docs): a nonce or a request id.
    pub key: Option<String>,
    /// The idempotency key header, if sent.
    pub idempotency_key: Option<String>,
    /// The write's identity (see the module docs).
    pub payload_hash: u64,
    /// What the write created or replayed (a ticket's id), if the fake names it.
    pub id: Option<String>,
    pub outcome: WriteOutcome,
    /// Status answered.
    pub status: u16,
    /// True when this write created its side effect although the same write of the same
    /// client request had created it before: a duplicate side effect.
    pub duplicate: bool,
}

/// One write of one client request that took effect more than once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DuplicateWrite {
    pub payload_hash: u64,
    /// What each creation made (ticket ids), oldest first, where the fake names it.
    pub ids: Vec<Option<String>>,
    /// The idempotency key of each creation, in the same order (`None`: sent none).
    pub idempotency_keys: Vec<Option<String>>,
    /// The link of each creation (the same for all, or `None` for unlinked writes).
    pub keys: Vec<Option<String>>,
    /// When each creation arrived, in the same order.
    pub at_ms: Vec<f64>,
}

/// What a key's first write answered, to replay it.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    pub id: Option<String>,
}

/// What the ledger decided for a write with [`WriteLedger::write`].
pub(crate) enum Decision {
    /// Created; the answer is the one the fake made.
    Created(Answer),
    /// The key's first answer, again.
    Replayed(Answer),
    /// The key was first used for another write (that one's id, if named).
    Refused { key: String, first: Option<String> },
}

/// A write as it arrived, before the ledger decides on it.
pub(crate) struct Seen {
    pub at_ms: f64,
    pub key: Option<String>,
    pub idempotency_key: Option<String>,
    pub identity: u64,
}

impl Seen {
    /// The write `request` makes, with its idempotency key read from `header`.
    pub fn of(request: &Request, at_ms: f64, header: &str) -> Seen {
        Seen {
            at_ms,
            key: link(request),
            idempotency_key: request
                .header(header)
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_owned),
            identity: identity(&request.method, request.uri.path(), &request.body),
        }
    }

    fn record(self, outcome: WriteOutcome, status: StatusCode, id: Option<String>) -> WriteRecord {
        WriteRecord {
            at_ms: self.at_ms,
            key: self.key,
            idempotency_key: self.idempotency_key,
            payload_hash: self.identity,
            id,
            outcome,
            status: status.as_u16(),
            duplicate: false,
        }
    }
}

/// Every write one fake saw. Shared by its connection tasks and whoever reads the evidence.
#[derive(Default)]
pub struct WriteLedger {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    writes: VecDeque<WriteRecord>,
    dropped: u64,
    /// Idempotency key → the identity and answer of its first write.
    keys: HashMap<String, (u64, Answer)>,
    key_order: VecDeque<String>,
    /// Hash of (link, identity) → creations.
    created: HashMap<u64, u32>,
    created_order: VecDeque<u64>,
    /// Writes that created their side effect, over the fake's life.
    creations: u64,
}

impl WriteLedger {
    /// Decides `seen` under one lock, so two concurrent writes under one key cannot both
    /// create: a known key replays or refuses; otherwise `create` makes the side effect and
    /// its answer, which the key (if any) remembers.
    pub(crate) fn write(&self, seen: Seen, create: impl FnOnce() -> Answer) -> Decision {
        let mut state = self.state.locked();
        if let Some(key) = &seen.idempotency_key {
            if let Some((identity, first)) = state.keys.get(key).cloned() {
                let (outcome, decision) = if identity == seen.identity {
                    (WriteOutcome::Replayed, Decision::Replayed(first.clone()))
                } else {
                    let refused = Decision::Refused {
                        key: key.clone(),
                        first: first.id.clone(),
                    };
                    (WriteOutcome::KeyReused, refused)
                };
                let (status, id) = match &decision {
                    Decision::Replayed(answer) => (answer.status, answer.id.clone()),
                    _ => (StatusCode::BAD_REQUEST, None),
                };
                state.push(seen.record(outcome, status, id));
                return decision;
            }
        }
        let answer = create();
        let group = hash(seen.identity, seen.key.as_deref().unwrap_or(""));
        let duplicate = state.count_creation(group);
        if let Some(key) = &seen.idempotency_key {
            state.remember(key.clone(), seen.identity, answer.clone());
        }
        let mut record = seen.record(WriteOutcome::Created, answer.status, answer.id.clone());
        record.duplicate = duplicate;
        state.creations += 1;
        state.push(record);
        Decision::Created(answer)
    }

    /// Records a write that was refused or faulted before the ledger's logic.
    pub(crate) fn refused(&self, seen: Seen, outcome: WriteOutcome, status: StatusCode) {
        self.state.locked().push(seen.record(outcome, status, None));
    }

    /// A copy of the records, oldest first.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.state.locked().writes.iter().cloned().collect()
    }

    /// How many of the oldest records were pushed out by the bound.
    pub fn dropped(&self) -> u64 {
        self.state.locked().dropped
    }

    /// How many writes created their side effect, over the fake's life.
    pub fn created(&self) -> u64 {
        self.state.locked().creations
    }

    /// Writes of one client request that took effect more than once (grouped by link and
    /// identity; unlinked writes by identity alone), in the order of their first creation.
    /// Empty when every write was idempotent. Computed from the records still kept.
    pub fn duplicate_writes(&self) -> Vec<DuplicateWrite> {
        let state = self.state.locked();
        let mut groups: Vec<DuplicateWrite> = Vec::new();
        let mut index: HashMap<(Option<&str>, u64), usize> = HashMap::new();
        for write in &state.writes {
            if write.outcome != WriteOutcome::Created {
                continue;
            }
            let at = *index
                .entry((write.key.as_deref(), write.payload_hash))
                .or_insert_with(|| {
                    groups.push(DuplicateWrite {
                        payload_hash: write.payload_hash,
                        ids: Vec::new(),
                        idempotency_keys: Vec::new(),
                        keys: Vec::new(),
                        at_ms: Vec::new(),
                    });
                    groups.len() - 1
                });
            let group = &mut groups[at];
            group.ids.push(write.id.clone());
            group.idempotency_keys.push(write.idempotency_key.clone());
            group.keys.push(write.key.clone());
            group.at_ms.push(write.at_ms);
        }
        groups.retain(|group| group.ids.len() > 1);
        groups
    }
}

impl State {
    fn push(&mut self, write: WriteRecord) {
        if self.writes.len() == WRITES_LIMIT {
            self.writes.pop_front();
            self.dropped += 1;
        }
        self.writes.push_back(write);
    }

    fn remember(&mut self, key: String, identity: u64, answer: Answer) {
        if self.key_order.len() == KEYS_LIMIT {
            if let Some(old) = self.key_order.pop_front() {
                self.keys.remove(&old);
            }
        }
        self.key_order.push_back(key.clone());
        self.keys.insert(key, (identity, answer));
    }

    /// Counts one creation of `group`; true when it had been created before.
    fn count_creation(&mut self, group: u64) -> bool {
        if !self.created.contains_key(&group) {
            if self.created_order.len() == CREATED_LIMIT {
                if let Some(old) = self.created_order.pop_front() {
                    self.created.remove(&old);
                }
            }
            self.created_order.push_back(group);
        }
        let count = self.created.entry(group).or_insert(0);
        *count += 1;
        *count > 1
    }
}

/// The client request a write belongs to, as the journal finds it: the last nonce in the body
/// or the query, else a propagated `x-request-id`.
pub(crate) fn link(request: &Request) -> Option<String> {
    last_nonce(&request.body)
        .or_else(|| last_nonce(request.uri.query()?.as_bytes()))
        .map(str::to_owned)
        .or_else(|| {
            let id = request.header("x-request-id")?.trim();
            (!id.is_empty()).then(|| id.to_owned())
        })
}

/// The journal's key for an unlinked write: its identity, so `first_attempts` counts its
/// retries as one request's.
pub(crate) fn fallback_key(request: &Request) -> String {
    let identity = identity(&request.method, request.uri.path(), &request.body);
    format!("write-{identity:016x}")
}

/// A write's identity: method, path and payload with volatile values masked (module docs).
pub(crate) fn identity(method: &Method, path: &str, body: &[u8]) -> u64 {
    let payload = match serde_json::from_slice::<Value>(body) {
        Ok(value) => canonical(&value, now_s()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    hash(hash(0, method.as_str()), &format!("{path}\n{payload}"))
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// JSON text with object keys sorted at every level and volatile values replaced by `"~"`.
fn canonical(value: &Value, now_s: f64) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v, now_s)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|v| canonical(v, now_s)).collect();
            format!("[{}]", inner.join(","))
        }
        Value::String(text) if is_volatile_text(text) => "\"~\"".into(),
        Value::Number(number) if number.as_f64().is_some_and(|n| is_now(n, now_s)) => {
            "\"~\"".into()
        }
        other => other.to_string(),
    }
}

/// An ISO 8601 date-time or a UUID.
fn is_volatile_text(text: &str) -> bool {
    static VOLATILE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?x)^(?:
                \d{4}-\d{2}-\d{2}[T\ ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?
              | (?:urn:uuid:)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}
              | [0-9a-fA-F]{32}
            )$",
        )
        .expect("a valid pattern")
    });
    text.len() <= 64 && VOLATILE.is_match(text)
}

/// A Unix time in seconds or milliseconds within a day of `now_s`.
fn is_now(number: f64, now_s: f64) -> bool {
    (number - now_s).abs() <= TIMESTAMP_WINDOW_S
        || (number / 1000.0 - now_s).abs() <= TIMESTAMP_WINDOW_S
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(body: &str) -> u64 {
        identity(&Method::POST, "/tickets", body.as_bytes())
    }

    #[test]
    fn the_identity_ignores_key_order_and_whitespace() {
        let a = r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#;
        let b = r#"{"a":{"x":"s","y":[1,2]},"b":1}"#;
        assert_eq!(id(a), id(b));
        assert_eq!(
            canonical(&serde_json::from_str(b).unwrap(), now_s()),
            r#"{"a":{"x":"s","y":[1,2]},"b":1}"#
        );
    }

    #[test]
    fn timestamps_and_uuids_do_not_make_a_retry_another_write() {
        let now = now_s();
        let first = format!(
            r#"{{"subject":"s","user":"u","sent_at":"2025-01-31T10:00:00.123Z","event":"0b6f7a38-2a5d-4a86-9a38-2b7f0e1c9d11","ts":{now}}}"#
        );
        let retry = format!(
            r#"{{"subject":"s","user":"u","sent_at":"2025-01-31T10:00:02.456789","event":"9f1c2e4d5b6a47389a1b2c3d4e5f6a7b","ts":{}}}"#,
            (now * 1000.0).round()
        );
        assert_eq!(id(&first), id(&retry));
        assert_ne!(id(&first), id(r#"{"subject":"other","user":"u"}"#));
    }

    #[test]
    fn ordinary_values_are_compared_as_they_are() {
        assert_ne!(id(r#"{"order":42}"#), id(r#"{"order":43}"#));
        assert_ne!(
            id(r#"{"when":"2025-01-31"}"#),
            id(r#"{"when":"2025-02-01"}"#)
        );
        assert_ne!(id(r#"{"n":1700000000}"#), id(r#"{"n":1700000001}"#));
        assert_ne!(
            identity(&Method::POST, "/a", b"{}"),
            identity(&Method::POST, "/b", b"{}")
        );
        assert_ne!(id("not json"), id("not json either"));
    }

    fn seen(key: Option<&str>, idem: Option<&str>, identity: u64) -> Seen {
        Seen {
            at_ms: 1.0,
            key: key.map(String::from),
            idempotency_key: idem.map(String::from),
            identity,
        }
    }

    fn answer() -> Answer {
        Answer {
            status: StatusCode::CREATED,
            body: Bytes::from_static(b"{}"),
            id: Some("x".into()),
        }
    }

    #[test]
    fn a_forgotten_key_creates_again_and_the_bounds_hold() {
        let ledger = WriteLedger::default();
        for n in 0..=KEYS_LIMIT {
            ledger.write(seen(None, Some(&format!("k{n}")), n as u64), answer);
        }
        let state = ledger.state.locked();
        assert_eq!(state.keys.len(), KEYS_LIMIT);
        assert!(!state.keys.contains_key("k0"));
        drop(state);
        let again = ledger.write(seen(None, Some("k0"), 0), answer);
        assert!(matches!(again, Decision::Created(_)));
        assert_eq!(ledger.created(), KEYS_LIMIT as u64 + 2);
    }

    #[test]
    fn the_same_write_is_a_duplicate_only_within_one_client_request() {
        let ledger = WriteLedger::default();
        ledger.write(seen(Some("fl-00000001"), None, 7), answer);
        ledger.write(seen(Some("fl-00000002"), None, 7), answer);
        assert!(ledger.duplicate_writes().is_empty());
        ledger.write(seen(Some("fl-00000002"), None, 7), answer);
        let duplicates = ledger.duplicate_writes();
        assert_eq!(duplicates.len(), 1);
        assert_eq!(duplicates[0].keys, vec![Some("fl-00000002".to_string()); 2]);
        let flags: Vec<bool> = ledger.writes().iter().map(|w| w.duplicate).collect();
        assert_eq!(flags, [false, false, true]);
    }
}
