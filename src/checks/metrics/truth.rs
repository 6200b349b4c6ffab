//! Ground truth for `metrics.truth`: what the fakes saw between two snapshots, counted the way
//! each figure counts.
//!
//! **Failed LLM calls.** A service's `llm_errors` counter usually wraps the SDK call
//! (`client.chat.completions.create`): a call retried through by the SDK is not an error, a
//! call that still failed after the SDK's retries is one. The fake LLM sees attempts, not
//! calls, so calls are rebuilt from its journal: attempts are grouped per client request (the
//! nonce in the prompt) and per route, in arrival order, and cut into calls:
//! - by the SDK's retry count when the attempt carries one (`x-stainless-retry-count`, sent by
//!   the official OpenAI and Anthropic SDKs: 0 starts a call, 1, 2… are its retries);
//! - without it, a call ends at its first answered attempt, so consecutive failures are one
//!   call's retries.
//!
//! A call failed when its last attempt did. Without the header, a service that, after a call
//! failed for good, makes another call on the same route for the same request (an app-level
//! retry around the SDK) has the two counted as one: the count is then a lower bound, by at
//! most one per such request. The comparison's tolerance (a share, and at least one) covers a
//! call still in flight when the snapshot was read, not that; such services send the SDK's
//! header, or are described with `counts = "attempts"`.
//!
//! **Failed attempts**: every attempt that failed (`counts = "attempts"`).

use std::collections::BTreeMap;

use crate::checks::common::attempt_failed;
use crate::evidence::Attempt;
use crate::evidence::FakeName;

/// Failed LLM calls and attempts among some attempts, and how the calls were told apart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmFailures {
    pub calls: usize,
    pub attempts: usize,
    /// Attempts that carried the SDK's retry count.
    pub counted_by_sdk: usize,
    /// Attempts in all.
    pub seen: usize,
}

impl LlmFailures {
    /// Counts the LLM fake's attempts among `attempts` (any order).
    pub fn count<'a>(attempts: impl Iterator<Item = &'a Attempt>) -> LlmFailures {
        let mut groups: BTreeMap<(&str, &str), Vec<&Attempt>> = BTreeMap::new();
        for a in attempts.filter(|a| a.fake == FakeName::Llm) {
            groups
                .entry((a.key.as_deref().unwrap_or(""), a.route.as_str()))
                .or_default()
                .push(a);
        }
        let mut out = LlmFailures::default();
        for group in groups.values_mut() {
            group.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
            // Whether the call under way so far ended in a failure; `None` before the first.
            let mut last_failed: Option<bool> = None;
            for a in group.iter() {
                let starts_call = match a.retry_count {
                    Some(n) => n == 0,
                    None => last_failed != Some(true),
                };
                if starts_call && last_failed == Some(true) {
                    out.calls += 1;
                }
                let failed = attempt_failed(a);
                last_failed = Some(failed);
                out.attempts += usize::from(failed);
                out.counted_by_sdk += usize::from(a.retry_count.is_some());
                out.seen += 1;
            }
            if last_failed == Some(true) {
                out.calls += 1;
            }
        }
        out
    }

    /// How calls were told apart, in a few words for the evidence.
    pub fn how(&self) -> &'static str {
        if self.seen > 0 && self.counted_by_sdk == self.seen {
            "calls told apart by the SDK's retry count"
        } else if self.counted_by_sdk == 0 {
            "no SDK retry count: consecutive failures taken as one call's retries"
        } else {
            "calls told apart by the SDK's retry count where sent"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;

    const CHAT: &str = "/v1/chat/completions";

    fn tried(key: &str, at: f64, status: Option<u16>, retry: Option<u32>) -> Attempt {
        let mut a = attempt(at, "llm", CHAT, key, status, 1.0);
        a.retry_count = retry;
        a
    }

    #[test]
    fn calls_retried_through_are_not_failed_calls() {
        // Twelve failed attempts, all retried through by the SDK: "target says 0" is right.
        let mut attempts = Vec::new();
        for r in 0..4 {
            let key = format!("n{r}");
            for (i, status) in [Some(503), Some(503), Some(503), Some(200)]
                .iter()
                .enumerate()
            {
                attempts.push(tried(&key, (r * 10 + i) as f64, *status, Some(i as u32)));
            }
        }
        let counted = LlmFailures::count(attempts.iter());
        assert_eq!((counted.calls, counted.attempts), (0, 12));
        assert_eq!(counted.how(), "calls told apart by the SDK's retry count");
    }

    #[test]
    fn the_sdk_retry_count_cuts_calls_that_failed_for_good() {
        // One request: a call that failed after its retries, then a call that succeeded.
        let attempts = [
            tried("n1", 1.0, Some(503), Some(0)),
            tried("n1", 2.0, Some(503), Some(1)),
            tried("n1", 3.0, None, Some(2)),
            tried("n1", 4.0, Some(200), Some(0)),
            // Another request whose only call failed without retries (a 400).
            tried("n2", 1.5, Some(400), Some(0)),
        ];
        let counted = LlmFailures::count(attempts.iter());
        assert_eq!((counted.calls, counted.attempts), (2, 4));
    }

    #[test]
    fn without_the_header_consecutive_failures_are_one_call() {
        let attempts = [
            tried("n1", 1.0, Some(200), None),
            tried("n1", 2.0, Some(503), None),
            tried("n1", 3.0, Some(503), None),
            tried("n2", 1.0, Some(503), None),
            tried("n2", 2.0, Some(200), None),
        ];
        let counted = LlmFailures::count(attempts.iter());
        // n1: a call that succeeded, then one that failed after a retry; n2 retried through.
        assert_eq!((counted.calls, counted.attempts), (1, 3));
        assert!(counted.how().starts_with("no SDK retry count"));
        // Other routes are other calls: an embeddings failure is a failed call of its own.
        let mut embed = tried("n2", 0.5, Some(500), None);
        embed.route = "/v1/embeddings".into();
        let with_embed: Vec<_> = attempts.iter().chain([&embed]).collect();
        assert_eq!(LlmFailures::count(with_embed.into_iter()).calls, 2);
    }
}
