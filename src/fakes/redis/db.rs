//! The keyspace: 16 numbered databases (as `SELECT` expects) of strings, hashes and lists,
//! with Redis's expiry semantics: a key past its deadline is gone for every command that
//! looks at it (lazy expiry on access), and a periodic sweep ([`Keyspace::sweep`]) frees keys
//! nobody touches again, so memory does not grow with expired keys.
//!
//! One mutex per database: commands are short and the fake serves a few hundred connections
//! at most, so a lock held for one command costs less than sharding would save.

use crate::sync::LockExt;
use std::collections::{BTreeSet, HashMap, VecDeque};

use indexmap::IndexMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// As many databases as Redis has by default (`databases 16`).
pub const DATABASES: usize = 16;

/// Keys freed per database per sweep, so one sweep never holds a lock for long.
const SWEEP_BATCH: usize = 2_000;

/// A value of one of the types the fake supports.
#[derive(Debug, Clone)]
pub enum Value {
    String(Bytes),
    /// Fields in insertion order, as Redis keeps small hashes (listpack encoding), so HGETALL
    /// answers in the same order as a real server.
    Hash(IndexMap<Bytes, Bytes>),
    List(VecDeque<Bytes>),
}

impl Value {
    /// What `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
        }
    }
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

/// One database. Every accessor takes `now`, so expiry is decided against one clock reading
/// per command (and tests can pass any instant).
#[derive(Debug, Default)]
pub struct Db {
    entries: HashMap<Bytes, Entry>,
    /// Deadlines in order, for the sweep: (deadline, key). Kept in step with `entries`.
    expirations: BTreeSet<(Instant, Bytes)>,
}

/// Why a typed access failed.
#[derive(Debug, PartialEq, Eq)]
pub struct WrongType;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

impl Db {
    /// Removes `key` if it expired by `now` (lazy expiry); true if it is live afterwards.
    fn expire_if_due(&mut self, key: &[u8], now: Instant) -> bool {
        let due = match self.entries.get(key) {
            None => return false,
            Some(entry) => entry.expires_at.is_some_and(|at| at <= now),
        };
        if due {
            self.remove(key);
        }
        !due
    }

    /// The live value at `key`.
    pub fn get(&mut self, key: &[u8], now: Instant) -> Option<&Value> {
        if !self.expire_if_due(key, now) {
            return None;
        }
        self.entries.get(key).map(|e| &e.value)
    }

    /// The live value at `key`, mutable.
    pub fn get_mut(&mut self, key: &[u8], now: Instant) -> Option<&mut Value> {
        if !self.expire_if_due(key, now) {
            return None;
        }
        self.entries.get_mut(key).map(|e| &mut e.value)
    }

    pub fn exists(&mut self, key: &[u8], now: Instant) -> bool {
        self.expire_if_due(key, now)
    }

    /// The string at `key`: `Ok(None)` when missing, `Err` when it holds another type.
    pub fn get_string(&mut self, key: &[u8], now: Instant) -> Result<Option<Bytes>, WrongType> {
        match self.get(key, now) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WrongType),
        }
    }

    /// Sets `key`, replacing any value and, unless `keep_ttl`, any deadline.
    pub fn set(&mut self, key: Bytes, value: Value, expires_at: Option<Instant>, keep_ttl: bool) {
        let old_deadline = self.entries.get(&key).and_then(|e| e.expires_at);
        let deadline = if keep_ttl { old_deadline } else { expires_at };
        if old_deadline != deadline {
            if let Some(old) = old_deadline {
                self.expirations.remove(&(old, key.clone()));
            }
            if let Some(at) = deadline {
                self.expirations.insert((at, key.clone()));
            }
        }
        self.entries.insert(
            key,
            Entry {
                value,
                expires_at: deadline,
            },
        );
    }

    /// Inserts `value` at a missing `key` (no deadline) and returns it mutable; for the
    /// commands that create a hash or list on first write.
    pub fn get_or_insert(
        &mut self,
        key: &Bytes,
        now: Instant,
        empty: impl FnOnce() -> Value,
    ) -> &mut Value {
        if !self.expire_if_due(key, now) {
            self.entries.insert(
                key.clone(),
                Entry {
                    value: empty(),
                    expires_at: None,
                },
            );
        }
        &mut self.entries.get_mut(key).expect("just ensured").value
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let entry = self.entries.remove(key)?;
        if let Some(at) = entry.expires_at {
            self.expirations.remove(&(at, Bytes::copy_from_slice(key)));
        }
        Some(entry.value)
    }

    /// Time left before `key` expires: `None` if missing, `Some(None)` if it never expires.
    pub fn ttl(&mut self, key: &[u8], now: Instant) -> Option<Option<Duration>> {
        if !self.expire_if_due(key, now) {
            return None;
        }
        let entry = self.entries.get(key)?;
        Some(entry.expires_at.map(|at| at.saturating_duration_since(now)))
    }

    /// Sets or clears the deadline of a live key; false if the key is missing.
    pub fn set_deadline(&mut self, key: &[u8], deadline: Option<Instant>, now: Instant) -> bool {
        if !self.expire_if_due(key, now) {
            return false;
        }
        let entry = self.entries.get_mut(key).expect("live key");
        let key = Bytes::copy_from_slice(key);
        if let Some(old) = entry.expires_at {
            self.expirations.remove(&(old, key.clone()));
        }
        entry.expires_at = deadline;
        if let Some(at) = deadline {
            self.expirations.insert((at, key));
        }
        true
    }

    /// Removes `key` if it holds an empty hash or list (Redis never keeps empty aggregates).
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        let empty = match self.entries.get(key).map(|e| &e.value) {
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::List(l)) => l.is_empty(),
            _ => false,
        };
        if empty {
            self.remove(key);
        }
    }

    /// Keys, counting ones that expired but were not freed yet (as Redis's DBSIZE does).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keys with a deadline, for INFO's keyspace section.
    pub fn expires(&self) -> usize {
        self.expirations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.expirations.clear();
    }

    /// Frees up to `limit` keys whose deadline passed; returns how many.
    fn sweep(&mut self, now: Instant, limit: usize) -> usize {
        let mut freed = 0;
        while freed < limit {
            let Some((at, _)) = self.expirations.first() else {
                break;
            };
            if *at > now {
                break;
            }
            let (_, key) = self.expirations.pop_first().expect("first exists");
            self.entries.remove(&key);
            freed += 1;
        }
        freed
    }
}

/// The databases of one fake, shared by its connections.
pub struct Keyspace {
    dbs: Vec<Mutex<Db>>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace").finish_non_exhaustive()
    }
}

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace {
            dbs: (0..DATABASES).map(|_| Mutex::new(Db::default())).collect(),
        }
    }
}

impl Keyspace {
    /// Locks database `index` (0..DATABASES; the caller checked it).
    pub fn db(&self, index: usize) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave a Db half-updated in a way that matters
        // for a fake; keep serving rather than poison every later command.
        self.dbs[index].locked()
    }

    /// One round of the periodic sweep over every database; returns keys freed.
    pub fn sweep(&self, now: Instant) -> usize {
        (0..self.dbs.len())
            .map(|i| self.db(i).sweep(now, SWEEP_BATCH))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn a_key_is_gone_once_its_deadline_passes_even_before_the_sweep() {
        let mut db = Db::default();
        let t0 = Instant::now();
        db.set("k".into(), s("v"), Some(t0 + Duration::from_secs(1)), false);
        assert!(db.exists(b"k", t0));
        assert!(!db.exists(b"k", t0 + Duration::from_secs(1)));
        assert_eq!(db.len(), 0);
        assert!(db.expirations.is_empty());
    }

    #[test]
    fn the_sweep_frees_expired_keys_nobody_reads() {
        let mut db = Db::default();
        let t0 = Instant::now();
        for i in 0..10 {
            db.set(
                format!("k{i}").into(),
                s("v"),
                Some(t0 + Duration::from_millis(i)),
                false,
            );
        }
        db.set("forever".into(), s("v"), None, false);
        assert_eq!(db.sweep(t0 + Duration::from_millis(4), 100), 5);
        assert_eq!(db.len(), 6);
    }

    #[test]
    fn keep_ttl_keeps_the_old_deadline_and_a_plain_set_clears_it() {
        let mut db = Db::default();
        let t0 = Instant::now();
        let at = t0 + Duration::from_secs(10);
        db.set("k".into(), s("a"), Some(at), false);
        db.set("k".into(), s("b"), None, true);
        assert_eq!(db.ttl(b"k", t0), Some(Some(Duration::from_secs(10))));
        db.set("k".into(), s("c"), None, false);
        assert_eq!(db.ttl(b"k", t0), Some(None));
        assert!(db.expirations.is_empty());
    }
}
