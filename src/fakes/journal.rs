//! A bounded, timestamped record of the attempts a fake saw. Fakes record, they don't judge:
//! checks read journals later (through `Evidence`) to count retries, gaps and amplification.
//!
//! Bounded so a long soak cannot grow memory without limit: past `capacity` the oldest entries
//! go and [`Journal::dropped`] counts them, so a report can say the journal is partial.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One upstream attempt as a fake saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Milliseconds from the run's start to when the attempt arrived.
    pub at_ms: f64,
    /// Which fake: `llm`, `weather`, `redis`.
    pub fake: String,
    /// Route (`/v1/chat/completions`) or, for Redis, the command.
    pub route: String,
    /// Correlation key: the nonce found in the prompt or query, else a propagated request id.
    pub key: Option<String>,
    /// The fault applied, as [`crate::fakes::fault::Fault::label`] writes it.
    pub fault: Option<String>,
    /// Status answered; `None` when no answer was sent (hang, dropped).
    pub status: Option<u16>,
    /// Milliseconds from arrival to the end of the answer (or to giving up).
    pub duration_ms: f64,
    /// Token usage reported in the answer, when the fake answered with `usage`.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// A bounded journal shared by one fake's connection tasks.
pub struct Journal {
    epoch: Instant,
    capacity: usize,
    entries: Mutex<VecDeque<Attempt>>,
    dropped: AtomicU64,
}

impl Journal {
    /// A journal whose `at_ms` offsets count from `epoch` (the run's start).
    pub fn new(epoch: Instant, capacity: usize) -> Self {
        Journal {
            epoch,
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
        }
    }

    /// Milliseconds since the journal's epoch: what `at_ms` should hold for an attempt arriving now.
    pub fn offset_ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0
    }

    pub fn record(&self, attempt: Attempt) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() == self.capacity {
            entries.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        entries.push_back(attempt);
    }

    /// A copy of what is in the journal now, oldest first.
    pub fn snapshot(&self) -> Vec<Attempt> {
        self.entries.lock().unwrap().iter().cloned().collect()
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
}
