//! Conversation state across retries (`conversation.retry_state`), for OpenAI's Responses
//! API: a retry of a request that made no response resends the same `previous_response_id`.
//!
//! Why: with `previous_response_id` the provider holds the conversation, and each response
//! names the one it continues. An attempt answered 408, 409, 429 or 5xx, or not answered,
//! stored no response, so the conversation has not moved and its retry must continue from the
//! same one. The official SDKs' retries send the identical request again (openai-python and
//! openai-node rebuild the same body for each retry of those failures), so no sane client
//! fails this. A retry naming another response forks the conversation: the model continues
//! from a state the user never saw (or the provider answers 400, `previous_response_not_found`).
//!
//! A retry that names none is not judged a fork: it carries its history itself (the stateless
//! form of the API), which a client may fall back to. Read from the fake LLM's journal only.

use std::collections::BTreeMap;

use super::common::{bounded, not_applicable, pending};
use super::sla::format_ms;
use super::{Outcome, Verdict};
use crate::evidence::{Attempt, Evidence, Exchange};

/// The stored response an attempt continued from, for Responses API attempts only.
fn continued_from(a: &Attempt) -> Option<Option<&str>> {
    match &a.exchange {
        Some(Exchange::Responses {
            previous_response_id,
        }) => Some(previous_response_id.as_deref()),
        _ => None,
    }
}

/// Did the attempt fail in a way that stored no response and that the SDKs retry?
fn made_no_response(a: &Attempt) -> bool {
    match a.status {
        None => true,
        Some(status) => matches!(status, 408 | 409 | 429) || status >= 500,
    }
}

/// `conversation.retry_state`: every retry of a Responses API request resends the
/// `previous_response_id` of the attempt that failed.
pub fn check_retry_state(evidence: &Evidence) -> Verdict {
    let mut v = pending(
        "conversation.retry_state",
        "a retried Responses API request continues from the same previous_response_id".into(),
        "retries",
        Some(0.0),
    );
    // Only the Responses API's continued requests, read out of the journal's stream once.
    let continued: Vec<Attempt> = evidence
        .attempts
        .iter()
        .filter(|a| a.key.is_some() && continued_from(a).is_some())
        .collect();
    let mut per_request: BTreeMap<&str, Vec<&Attempt>> = BTreeMap::new();
    for a in &continued {
        if let (Some(key), Some(_)) = (a.key.as_deref(), continued_from(a)) {
            per_request.entry(key).or_default().push(a);
        }
    }
    if per_request.is_empty() {
        return not_applicable(
            v,
            "no Responses API request (POST /v1/responses) was linked to a client request, so \
             its retries could not be judged.",
        );
    }
    let mut judged = 0usize;
    let mut forks = Vec::new();
    for (key, mut attempts) in per_request {
        attempts.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        for pair in attempts.windows(2) {
            let (failed, retry) = (pair[0], pair[1]);
            if !made_no_response(failed) {
                continue;
            }
            judged += 1;
            let (before, after) = (
                continued_from(failed).flatten(),
                continued_from(retry).flatten(),
            );
            if after.is_some() && after != before {
                forks.push(format!(
                    "{key}: at {} the attempt continuing from {} failed ({}); its retry at {} \
                     continued from {}",
                    format_ms(failed.at_ms),
                    before.unwrap_or("no previous response"),
                    failed
                        .status
                        .map_or("no answer".to_string(), |s| s.to_string()),
                    format_ms(retry.at_ms),
                    after.unwrap_or_default(),
                ));
            }
        }
    }
    if judged == 0 {
        return not_applicable(
            v,
            "no Responses API attempt failed before a retry (408, 409, 429, 5xx or no answer), \
             so what retries continue from could not be judged.",
        );
    }
    v.figure = Some(forks.len() as f64);
    if forks.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "all {judged} retries of failed Responses API attempts continued from the same \
             previous_response_id."
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {judged} retries of failed Responses API attempts continued from another \
             previous_response_id: the failed attempt stored no response, so the retry forks \
             the conversation (the model goes on from a state the user never saw).",
            forks.len()
        );
        v.evidence = bounded(forks);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::Phase;

    fn responses(at: f64, key: &str, status: Option<u16>, previous: Option<&str>) -> Attempt {
        Attempt {
            exchange: Some(Exchange::Responses {
                previous_response_id: previous.map(str::to_owned),
            }),
            ..attempt(at, "llm", "/v1/responses", key, status, 50.0)
        }
    }

    fn evidence(attempts: Vec<Attempt>) -> Evidence {
        let mut evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 2, Some(200), 100.0)
            .build();
        evidence.attempts = attempts.into();
        evidence
    }

    /// An agent request: a first turn, then a follow-up from its response, failed once.
    fn agent(retry_from: Option<&str>) -> Vec<Attempt> {
        vec![
            responses(1000.0, "req-1", Some(200), None),
            responses(1200.0, "req-1", Some(503), Some("resp_a")),
            responses(1500.0, "req-1", Some(200), retry_from),
        ]
    }

    #[test]
    fn a_retry_from_the_same_response_passes() {
        let v = check_retry_state(&evidence(agent(Some("resp_a"))));
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
    }

    #[test]
    fn a_retry_from_another_response_fails_with_both_ids() {
        let v = check_retry_state(&evidence(agent(Some("resp_b"))));
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert_eq!(v.figure, Some(1.0));
        assert!(v.evidence[0].contains("resp_a"), "{:?}", v.evidence);
        assert!(v.evidence[0].contains("resp_b"), "{:?}", v.evidence);
    }

    #[test]
    fn a_first_turn_retried_as_a_follow_up_fails() {
        let attempts = vec![
            responses(1000.0, "n1", Some(429), None),
            responses(1300.0, "n1", Some(200), Some("resp_x")),
        ];
        assert_eq!(
            check_retry_state(&evidence(attempts)).outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn a_stateless_restart_and_turns_after_successes_are_no_forks() {
        // A retry carrying its own history, then a new turn after a success.
        let mut attempts = agent(None);
        attempts.push(responses(2000.0, "req-1", Some(200), Some("resp_c")));
        let v = check_retry_state(&evidence(attempts));
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
    }

    #[test]
    fn a_rejected_request_is_not_a_retry_to_judge() {
        // After a 400 the client may well start over: the request itself was wrong.
        let attempts = vec![
            responses(1000.0, "n1", Some(400), Some("resp_gone")),
            responses(1300.0, "n1", Some(200), Some("resp_other")),
        ];
        let v = check_retry_state(&evidence(attempts));
        assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
    }

    #[test]
    fn without_responses_attempts_it_is_not_applicable() {
        let chat = attempt(1000.0, "llm", "/v1/chat/completions", "n1", Some(503), 5.0);
        let v = check_retry_state(&evidence(vec![chat]));
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("/v1/responses"), "{}", v.summary);
    }
}
