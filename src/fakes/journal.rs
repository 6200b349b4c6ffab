//! A bounded, timestamped record of the attempts a fake saw. Fakes record, they don't judge:
//! checks read journals later (through `Evidence`) to count retries, gaps and amplification.
//!
//! Bounded so a long soak cannot grow memory without limit: past `capacity` the oldest entries
//! go and [`Journal::dropped`] counts them, so a report can say the journal is partial.
//!
//! Entries are kept compact (80 bytes, no heap for the usual case) and expanded into
//! [`Attempt`]s only when read: fake, route and fault label are small indexes into a per-journal
//! table of names (a fake sees a handful of routes and labels; past [`NAMES_LIMIT`] distinct
//! ones, new names are recorded as [`TOO_MANY_NAMES`] so the table stays bounded too), a
//! correlation nonce (`fl-` and 8 hex digits) is its 32-bit value, times are microseconds.
//! At the 200k entries runs keep, that is 16 MB instead of the 60 MB strings took.
//!
//! The ring is what the control API's `/journal` serves (the latest attempts, bounded). A run's
//! evidence does not come from it: a journal given a [`Spooler`] also streams every attempt
//! into a compressed [`AttemptStore`] as it ends (one spool for all of a run's fakes), with the
//! spool's cap and counted cuts, so evidence holds every attempt however long the run while
//! memory holds one chunk.

use crate::sync::LockExt;
use crate::sync::RwLockExt;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use crate::evidence::{ApiKeySent, Attempt, Exchange};
use crate::evidence::{Spool, Spooled};

/// Where fakes stream what they saw for a run's evidence: a [`Spool`] shared by the fakes'
/// tasks, or nothing (`faultline fakes up`, whose runs read the bounded rings through the
/// control API instead).
pub struct Spooler<T> {
    spool: Mutex<Option<Spool<T>>>,
}

impl<T: Spooled> Spooler<T> {
    /// A spooler streaming into a fresh spool.
    pub fn new() -> Arc<Self> {
        Arc::new(Spooler {
            spool: Mutex::new(Some(Spool::new())),
        })
    }

    /// Streams `item` (nothing when spooling is off).
    pub fn push(&self, item: T) {
        if let Some(spool) = self.spool.locked().as_mut() {
            spool.push(item);
        }
    }

    /// Whether items are streamed at all (so callers can skip building them).
    pub fn is_on(&self) -> bool {
        self.spool.locked().is_some()
    }

    /// What was streamed so far; streaming goes on into a fresh spool.
    pub fn take(&self) -> Spool<T> {
        let mut slot = self.spool.locked();
        match slot.as_mut() {
            Some(spool) => std::mem::take(spool),
            None => Spool::new(),
        }
    }

    /// A copy of what was streamed so far (a pass over it); streaming goes on.
    pub fn copy(&self) -> Spool<T> {
        self.spool
            .locked()
            .as_ref()
            .map(Spool::clone)
            .unwrap_or_default()
    }

    /// Stops streaming and frees what was streamed.
    pub fn switch_off(&self) {
        self.spool.locked().take();
    }
}

/// The attempts of a run's fakes, streamed.
pub type AttemptSpooler = Spooler<Attempt>;

/// Packed into one byte for the ring (0: not recorded).
fn pack_api_key(class: Option<ApiKeySent>) -> u8 {
    match class {
        None => 0,
        Some(ApiKeySent::Given) => 1,
        Some(ApiKeySent::Other) => 2,
        Some(ApiKeySent::None) => 3,
    }
}

fn unpack_api_key(byte: u8) -> Option<ApiKeySent> {
    match byte {
        1 => Some(ApiKeySent::Given),
        2 => Some(ApiKeySent::Other),
        3 => Some(ApiKeySent::None),
        _ => None,
    }
}

/// Distinct fake names, routes and fault labels one journal keeps.
pub const NAMES_LIMIT: usize = 4096;

/// What a name past [`NAMES_LIMIT`] is recorded as.
pub const TOO_MANY_NAMES: &str = "(more distinct routes than the journal keeps)";

/// An index into a journal's table of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Name(u16);

/// A correlation key, compact: a nonce as its value, anything else as its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Key {
    #[default]
    None,
    /// `fl-` and these 8 hex digits.
    Nonce(u32),
    Text(Box<str>),
}

impl Key {
    pub fn of(key: Option<&str>) -> Key {
        let Some(key) = key else {
            return Key::None;
        };
        let nonce = key
            .strip_prefix("fl-")
            .filter(|hex| {
                hex.len() == 8
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .and_then(|hex| u32::from_str_radix(hex, 16).ok());
        match nonce {
            Some(value) => Key::Nonce(value),
            None => Key::Text(key.into()),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Key::None => None,
            Key::Nonce(value) => Some(format!("fl-{value:08x}")),
            Key::Text(text) => Some(text.to_string()),
        }
    }
}

/// One attempt being recorded: filled in by the fake while it answers, then handed to
/// [`Journal::finish`].
#[derive(Debug)]
pub(crate) struct Record {
    pub arrival: Instant,
    pub key: Key,
    pub fault: Option<Name>,
    pub status: Option<u16>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub retry_count: Option<u32>,
    pub chunks_sent: Option<u32>,
    pub api_key: Option<ApiKeySent>,
    pub exchange: Option<Exchange>,
    fake: Name,
    route: Name,
}

/// What the ring keeps per attempt.
struct Entry {
    at_us: u64,
    duration_us: u64,
    key: Key,
    /// [`NO_TOKENS`] when the answer told none: a sentinel rather than an `Option`, which
    /// leaves room for `exchange` within 80 bytes.
    input_tokens: u32,
    output_tokens: u32,
    /// Boxed: only the attempts of a few APIs have one.
    exchange: Option<Box<Exchange>>,
    chunks_sent: Option<u32>,
    retry_count: Option<u16>,
    /// 0 when no answer was sent (no HTTP status is 0), so the entry stays 80 bytes.
    status: u16,
    /// packed by [`pack_api_key`].
    api_key: u8,
    fake: Name,
    route: Name,
    fault: Option<Name>,
}

/// The table of names, append-only and bounded.
#[derive(Default)]
struct Names {
    index: HashMap<Box<str>, Name>,
    texts: Vec<Box<str>>,
}

/// A bounded journal shared by one fake's connection tasks.
pub struct Journal {
    epoch: Instant,
    capacity: usize,
    entries: Mutex<VecDeque<Entry>>,
    names: RwLock<Names>,
    dropped: AtomicU64,
    /// Where every attempt also goes, for the run's evidence.
    spooler: Option<Arc<AttemptSpooler>>,
}

fn micros(ms: f64) -> u64 {
    (ms * 1000.0).round().max(0.0) as u64
}

/// An entry's token count when the answer told none.
const NO_TOKENS: u32 = u32::MAX;

/// A token count as an entry keeps it (counts past `u32::MAX - 1` are clamped).
fn narrow(value: Option<u64>) -> u32 {
    value.map_or(NO_TOKENS, |v| {
        u32::try_from(v).unwrap_or(NO_TOKENS - 1).min(NO_TOKENS - 1)
    })
}

fn widen(value: u32) -> Option<u64> {
    (value != NO_TOKENS).then_some(u64::from(value))
}

impl Journal {
    /// A journal whose `at_ms` offsets count from `epoch` (the run's start).
    pub fn new(epoch: Instant, capacity: usize) -> Self {
        let journal = Journal {
            epoch,
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
            names: RwLock::new(Names::default()),
            dropped: AtomicU64::new(0),
            spooler: None,
        };
        // Index 0 is the overflow name, so it exists whatever comes later.
        journal.name(TOO_MANY_NAMES);
        journal
    }

    /// A journal that also streams every attempt into `spooler` (see the module docs).
    pub fn spooling(epoch: Instant, capacity: usize, spooler: Arc<AttemptSpooler>) -> Self {
        Journal {
            spooler: Some(spooler),
            ..Journal::new(epoch, capacity)
        }
    }

    /// Milliseconds since the journal's epoch: what `at_ms` should hold for an attempt arriving now.
    pub fn offset_ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0
    }

    /// The index of `text` in the table of names, adding it if there is room.
    pub(crate) fn name(&self, text: &str) -> Name {
        if let Some(name) = self.names.read_locked().index.get(text) {
            return *name;
        }
        let mut names = self.names.write_locked();
        if let Some(name) = names.index.get(text) {
            return *name;
        }
        if names.texts.len() >= NAMES_LIMIT {
            return Name(0);
        }
        let name = Name(names.texts.len() as u16);
        names.texts.push(text.into());
        names.index.insert(text.into(), name);
        name
    }

    /// Starts the record of an attempt to `route` of `fake` arriving at `arrival`.
    pub(crate) fn begin(&self, fake: &str, route: &str, arrival: Instant) -> Record {
        Record {
            arrival,
            key: Key::None,
            fault: None,
            status: None,
            input_tokens: None,
            output_tokens: None,
            retry_count: None,
            chunks_sent: None,
            api_key: None,
            exchange: None,
            fake: self.name(fake),
            route: self.name(route),
        }
    }

    /// Keeps `record`, which ended now.
    pub(crate) fn finish(&self, record: Record) {
        let entry = Entry {
            at_us: record
                .arrival
                .saturating_duration_since(self.epoch)
                .as_micros() as u64,
            duration_us: record.arrival.elapsed().as_micros() as u64,
            key: record.key,
            input_tokens: narrow(record.input_tokens),
            output_tokens: narrow(record.output_tokens),
            exchange: record.exchange.map(Box::new),
            chunks_sent: record.chunks_sent,
            retry_count: record
                .retry_count
                .map(|n| u16::try_from(n).unwrap_or(u16::MAX)),
            status: record.status.unwrap_or(0),
            api_key: pack_api_key(record.api_key),
            fake: record.fake,
            route: record.route,
            fault: record.fault,
        };
        self.push(entry);
    }

    /// Keeps an attempt a fake built whole (the Redis fake, tests).
    pub fn record(&self, attempt: Attempt) {
        let entry = Entry {
            at_us: micros(attempt.at_ms),
            duration_us: micros(attempt.duration_ms),
            key: Key::of(attempt.key.as_deref()),
            input_tokens: narrow(attempt.input_tokens),
            output_tokens: narrow(attempt.output_tokens),
            exchange: attempt.exchange.map(Box::new),
            chunks_sent: attempt.chunks_sent,
            retry_count: attempt
                .retry_count
                .map(|n| u16::try_from(n).unwrap_or(u16::MAX)),
            status: attempt.status.unwrap_or(0),
            api_key: pack_api_key(attempt.api_key),
            fake: self.name(&attempt.fake),
            route: self.name(&attempt.route),
            fault: attempt.fault.as_deref().map(|f| self.name(f)),
        };
        self.push(entry);
    }

    fn push(&self, entry: Entry) {
        if let Some(spooler) = self.spooler.as_ref().filter(|s| s.is_on()) {
            let attempt = self.expand(&entry, &self.names.read_locked());
            spooler.push(attempt);
        }
        let mut entries = self.entries.locked();
        if entries.len() == self.capacity {
            entries.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        entries.push_back(entry);
    }

    /// An entry as an [`Attempt`].
    fn expand(&self, entry: &Entry, names: &Names) -> Attempt {
        let text = |name: Name| names.texts[usize::from(name.0)].to_string();
        Attempt {
            at_ms: entry.at_us as f64 / 1000.0,
            fake: text(entry.fake),
            route: text(entry.route),
            key: entry.key.text(),
            fault: entry.fault.map(text),
            status: (entry.status != 0).then_some(entry.status),
            duration_ms: entry.duration_us as f64 / 1000.0,
            input_tokens: widen(entry.input_tokens),
            output_tokens: widen(entry.output_tokens),
            retry_count: entry.retry_count.map(u32::from),
            chunks_sent: entry.chunks_sent,
            api_key: unpack_api_key(entry.api_key),
            exchange: entry.exchange.as_deref().cloned(),
        }
    }

    /// A copy of what is in the journal's ring now, oldest first.
    pub fn snapshot(&self) -> Vec<Attempt> {
        let names = self.names.read_locked();
        self.entries
            .locked()
            .iter()
            .map(|entry| self.expand(entry, &names))
            .collect()
    }

    /// Attempts kept now.
    pub fn len(&self) -> usize {
        self.entries.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of the oldest attempts were pushed out by the bound.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(at_ms: f64) -> Attempt {
        Attempt {
            at_ms,
            fake: "llm".into(),
            route: "/v1/chat/completions".into(),
            key: None,
            fault: None,
            status: Some(200),
            duration_ms: 1.0,
            input_tokens: None,
            output_tokens: None,
            retry_count: None,
            chunks_sent: None,
            api_key: None,
            exchange: None,
        }
    }

    #[test]
    fn the_oldest_attempts_go_first_when_the_journal_is_full() {
        let journal = Journal::new(Instant::now(), 2);
        for at in [1.0, 2.0, 3.0] {
            journal.record(attempt(at));
        }
        let kept: Vec<f64> = journal.snapshot().iter().map(|a| a.at_ms).collect();
        assert_eq!(kept, vec![2.0, 3.0]);
        assert_eq!(journal.dropped(), 1);
    }

    #[test]
    fn an_attempt_reads_back_as_recorded() {
        let journal = Journal::new(Instant::now(), 10);
        let full = Attempt {
            at_ms: 12.345,
            fake: "redis".into(),
            route: "GET".into(),
            key: Some("fl-00c0ffee".into()),
            fault: Some("delay 2s".into()),
            status: None,
            duration_ms: 2000.5,
            input_tokens: Some(12),
            output_tokens: Some(34),
            retry_count: Some(2),
            chunks_sent: Some(7),
            api_key: Some(ApiKeySent::Other),
            exchange: None,
        };
        let other_key = Attempt {
            key: Some("req-7".into()),
            ..attempt(1.0)
        };
        journal.record(full.clone());
        journal.record(other_key.clone());
        assert_eq!(journal.snapshot(), vec![full, other_key]);
    }

    #[test]
    fn only_exact_nonces_are_packed() {
        assert_eq!(Key::of(Some("fl-0000ab01")), Key::Nonce(0xab01));
        assert_eq!(
            Key::of(Some("fl-0000AB01")),
            Key::Text("fl-0000AB01".into())
        );
        assert_eq!(
            Key::of(Some("fl-+0000ab0")),
            Key::Text("fl-+0000ab0".into())
        );
        assert_eq!(Key::of(None), Key::None);
    }

    #[test]
    fn past_the_name_limit_new_routes_are_recorded_as_overflow() {
        let journal = Journal::new(Instant::now(), 10);
        journal.record(attempt(1.0));
        for i in 0..NAMES_LIMIT + 5 {
            journal.name(&format!("/r{i}"));
        }
        journal.record(Attempt {
            route: "/brand-new".into(),
            ..attempt(2.0)
        });
        let routes: Vec<String> = journal.snapshot().into_iter().map(|a| a.route).collect();
        assert_eq!(routes, ["/v1/chat/completions", TOO_MANY_NAMES]);
    }

    #[test]
    fn a_spooling_journal_streams_every_attempt_past_its_ring() {
        let spooler = AttemptSpooler::new();
        let journal = Journal::spooling(Instant::now(), 2, spooler.clone());
        for at in [1.0, 2.0, 3.0] {
            journal.record(attempt(at));
        }
        // The ring keeps the latest two (for the control API); the spool keeps all three.
        assert_eq!(journal.len(), 2);
        let spooled: crate::evidence::AttemptStore = spooler.take();
        let times: Vec<f64> = spooled.iter().map(|a| a.at_ms).collect();
        assert_eq!(times, vec![1.0, 2.0, 3.0]);
        assert_eq!(spooled.to_vec()[0], attempt(1.0));
        // Switched off (`fakes up`), nothing more is kept.
        spooler.switch_off();
        journal.record(attempt(4.0));
        assert!(spooler.take().is_empty());
    }

    #[test]
    fn an_entry_stays_small() {
        assert!(
            std::mem::size_of::<Entry>() <= 80,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }
}
