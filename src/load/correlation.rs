//! Ids that let fakes' journals be grouped per client request: a request id for the
//! `x-request-id` header and a nonce for the user text, unique within a run, repeatable by seed.

use std::sync::atomic::{AtomicU32, Ordering};

/// Hands out ids for one run.
pub struct Correlation {
    salt: u32,
    next: AtomicU32,
    /// Worker `index` of `count` takes the `index`-th of every `count` ids of the sequence.
    share: super::Share,
}

/// The ids of one client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// `fl-1a2b3c4d`: what fakes look for in prompts (`fl-` and 8 hex digits).
    pub nonce: String,
    /// `flreq-1a2b3c4d`: sent as `x-request-id`.
    pub request_id: String,
}

impl Correlation {
    pub fn new(seed: u64) -> Self {
        Self::for_share(seed, super::Share::WHOLE)
    }

    /// The ids of one worker's share of a distributed run: the `index`-th of every `count`
    /// ids of the run's one sequence, so no two workers ever send the same id.
    pub fn for_share(seed: u64, share: super::Share) -> Self {
        // Mixing the seed in keeps ids of different runs apart in shared logs.
        let salt = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32;
        Correlation {
            salt,
            next: AtomicU32::new(0),
            share,
        }
    }

    /// The next request's ids. XOR with a fixed salt is a bijection, so ids never repeat
    /// within 2^32 requests of the whole run (all workers together).
    pub fn next(&self) -> Ids {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.share.count.max(1) as u32;
        let n = turn
            .wrapping_mul(count)
            .wrapping_add(self.share.index as u32)
            ^ self.salt;
        Ids {
            nonce: format!("fl-{n:08x}"),
            request_id: format!("flreq-{n:08x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_follow_the_seed() {
        let a = Correlation::new(7);
        let first: Vec<Ids> = (0..1000).map(|_| a.next()).collect();
        let mut nonces: Vec<&String> = first.iter().map(|ids| &ids.nonce).collect();
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 1000);
        assert_eq!(Correlation::new(7).next(), first[0]);
        assert!(first[0].nonce.starts_with("fl-") && first[0].nonce.len() == 11);
    }

    #[test]
    fn workers_never_send_the_same_id() {
        let share = |index| Correlation::for_share(7, super::super::Share { index, count: 3 });
        let mut ids: Vec<String> = (0..3)
            .flat_map(|index| {
                let c = share(index);
                (0..500).map(move |_| c.next().request_id)
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1500);
        // Worker 0 of 1 is the one-process sequence.
        let whole = Correlation::new(7);
        assert_eq!(share(0).next(), whole.next());
    }
}
