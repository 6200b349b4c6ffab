//! Idempotent writes (`writes.idempotent`): a tool write (creating a ticket) that the target
//! retries must carry the same `Idempotency-Key` every time, and must not create its side
//! effect twice.
//!
//! The lesson: "Tool writes: no automatic retry without idempotency keys." A retried read costs
//! tokens; a retried write files the user's ticket twice. The tool fakes record every write
//! with its key and whether it created something (see [`crate::evidence::WriteAttempt`]).

use std::collections::BTreeMap;

use super::common::{bounded, not_applicable, pending};
use super::sla::format_ms;
use super::{Outcome, Verdict};
use crate::evidence::{Evidence, WriteAttempt};
use crate::scenario::WriteExpectations;

/// `writes.idempotent`: no client request's write was retried under a missing or changed
/// idempotency key, or created its side effect more than once.
pub fn check_idempotent(evidence: &Evidence, expect: &WriteExpectations) -> Verdict {
    let limit = expect.max_duplicates as f64;
    let mut v = pending(
        "writes.idempotent",
        "a retried write keeps its Idempotency-Key and creates its side effect once".into(),
        "requests",
        Some(limit),
    );
    if evidence.writes.is_empty() {
        return not_applicable(
            v,
            "the tool fakes received no writes, so idempotency could not be judged.",
        );
    }
    // One group per client request; a write the fake could not link is grouped by payload, so
    // the same ticket sent twice under no key is still seen as one write done twice.
    let request_of: BTreeMap<&str, &str> = evidence
        .records
        .iter()
        .map(|r| (r.nonce.as_str(), r.request_id.as_str()))
        .collect();
    let mut groups: BTreeMap<String, Vec<&WriteAttempt>> = BTreeMap::new();
    for w in &evidence.writes {
        let group = match w.key.as_deref() {
            Some(key) => request_of.get(key).copied().unwrap_or(key).to_string(),
            None => format!("unlinked write {:016x}", w.payload_hash),
        };
        groups.entry(group).or_default().push(w);
    }

    let mut broken = Vec::new();
    let mut retried = 0;
    for (who, writes) in &groups {
        if writes.len() > 1 {
            retried += 1;
        }
        let mut why = Vec::new();
        let keys: Vec<Option<&str>> = writes
            .iter()
            .map(|w| w.idempotency_key.as_deref())
            .collect();
        if writes.len() > 1 {
            if keys.iter().any(Option::is_none) {
                why.push("retried without an Idempotency-Key".to_string());
            } else if keys.windows(2).any(|k| k[0] != k[1]) {
                why.push("retried under a different Idempotency-Key".to_string());
            }
        }
        // The same payload created twice for one request is a duplicate side effect.
        let mut created: BTreeMap<u64, usize> = BTreeMap::new();
        for w in writes.iter().filter(|w| w.side_effect) {
            *created.entry(w.payload_hash).or_default() += 1;
        }
        if let Some(n) = created.values().copied().max().filter(|&n| n > 1) {
            why.push(format!("created its side effect {n} times"));
        }
        if !why.is_empty() {
            let tries: Vec<String> = writes
                .iter()
                .map(|w| {
                    format!(
                        "{} key={} {}",
                        format_ms(w.at_ms),
                        w.idempotency_key.as_deref().unwrap_or("none"),
                        if w.side_effect { "created" } else { "replayed" }
                    )
                })
                .collect();
            broken.push(format!(
                "{who} at {}: {} | {}",
                writes[0].fake,
                why.join("; "),
                tries.join(", ")
            ));
        }
    }

    v.figure = Some(broken.len() as f64);
    let seen = format!(
        "{} writes for {} requests, {retried} of them retried",
        evidence.writes.len(),
        groups.len()
    );
    if broken.len() as f64 <= limit {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "{seen}; {} broke idempotency (limit {}).",
            broken.len(),
            expect.max_duplicates
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{seen}; {} requests' writes were repeated without a stable Idempotency-Key or \
             took effect twice (limit {}): the user's ticket was filed more than once.",
            broken.len(),
            expect.max_duplicates
        );
    }
    v.evidence = bounded(broken);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::sla::tests::EvidenceBuilder;
    use crate::evidence::Phase;

    fn write(key: &str, idem: Option<&str>, side_effect: bool) -> WriteAttempt {
        WriteAttempt {
            at_ms: 11_000.0,
            fake: "tickets".into(),
            key: Some(key.into()),
            idempotency_key: idem.map(String::from),
            payload_hash: 7,
            side_effect,
        }
    }

    fn evidence(writes: Vec<WriteAttempt>) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 2, Some(200), 300.0)
            .build();
        e.writes = writes;
        e
    }

    #[test]
    fn a_write_retried_under_the_same_key_and_replayed_passes() {
        let e = evidence(vec![
            write("n1", Some("idem-1"), true),
            write("n1", Some("idem-1"), false),
            write("n2", Some("idem-2"), true),
        ]);
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
        assert!(v
            .summary
            .starts_with("3 writes for 2 requests, 1 of them retried"));
    }

    #[test]
    fn a_write_retried_without_a_key_that_lands_twice_fails() {
        let e = evidence(vec![write("n1", None, true), write("n1", None, true)]);
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(1.0));
        assert!(
            v.evidence[0].starts_with(
                "req-1 at tickets: retried without an Idempotency-Key; created its side effect 2 times"
            ),
            "{:?}",
            v.evidence
        );
    }

    #[test]
    fn a_retry_under_a_new_key_fails_even_if_the_fake_caught_it() {
        let e = evidence(vec![
            write("n1", Some("a"), true),
            write("n1", Some("b"), false),
        ]);
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.evidence[0].contains("different Idempotency-Key"));
    }

    #[test]
    fn no_writes_is_not_applicable() {
        let v = check_idempotent(&evidence(vec![]), &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("no writes"));
    }
}
