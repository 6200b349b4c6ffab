//! Idempotent writes (`writes.idempotent`): a tool write (creating a ticket) that the target
//! retries must carry the same idempotency key every time, and must not create its side
//! effect twice.
//!
//! The lesson: "Tool writes: no automatic retry without idempotency keys." A retried read costs
//! tokens; a retried write files the user's ticket twice. The tool fakes record every write
//! with its key, its identity and whether it created something (see
//! [`crate::evidence::WriteAttempt`]; `fakes::tool::ledger` says what links a write to a client
//! request and what makes two writes the same).
//!
//! Writes are judged per client request and per write: the writes of one request with the same
//! identity are one write and its retries. Whatever the body's shape, that is what is compared.
//! Not judged, and said so: writes that carry neither faultline's nonce nor a request id of
//! this run (nothing tells a retry from another user's request), and writes the fake refused
//! as invalid (400: they created nothing, and a schema mismatch is configuration).

use std::collections::{BTreeMap, BTreeSet};

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
    // A nonce or a request id of this run names its client request.
    // Writes come one per write flow's request or retry (a few per cent of a run's requests),
    // read back from their stream and grouped per request in memory for this check.
    let writes = evidence.writes.to_vec();
    let request_of = super::common::request_ids_of_keys(
        evidence,
        writes.iter().filter_map(|w| w.key.as_deref()),
    );
    let refused = |w: &WriteAttempt| w.status == 400 && !w.side_effect;
    let invalid = writes.iter().filter(|w| refused(w)).count();
    let mut unlinked = 0;
    let mut groups: BTreeMap<(&str, u64), Vec<&WriteAttempt>> = BTreeMap::new();
    for w in writes.iter().filter(|w| !refused(w)) {
        match w.key.as_deref().and_then(|key| request_of.get(key)) {
            Some(request) => groups
                .entry((request.as_str(), w.payload_hash))
                .or_default()
                .push(w),
            None => unlinked += 1,
        }
    }
    if groups.is_empty() {
        let why = if unlinked == 0 {
            format!(
                "the tool fakes refused all {invalid} writes as invalid (400: not a JSON object, \
                 or a required field missing), so nothing was created to judge; check \
                 [tools.tickets] required in faultline.toml against what the service sends."
            )
        } else {
            format!(
                "none of the {unlinked} writes could be tied to a client request: they carried \
                 neither the nonce faultline puts in each message ([fl-…]) nor the x-request-id \
                 it sends, so a retry cannot be told from another user's request. Put the \
                 user's message into the write, or forward x-request-id to the tool."
            )
        };
        return not_applicable(v, &why);
    }

    let mut broken = Vec::new();
    let mut broken_requests = BTreeSet::new();
    let mut retried = BTreeSet::new();
    for ((request, _), writes) in &groups {
        if writes.len() > 1 {
            retried.insert(*request);
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
        let created = writes.iter().filter(|w| w.side_effect).count();
        if created > 1 {
            why.push(format!("created its side effect {created} times"));
        }
        if !why.is_empty() {
            broken_requests.insert(*request);
            let tries: Vec<String> = writes
                .iter()
                .map(|w| {
                    format!(
                        "{} key={} {}",
                        format_ms(w.at_ms),
                        w.idempotency_key.as_deref().unwrap_or("none"),
                        match (w.side_effect, w.status) {
                            (true, _) => "created".to_string(),
                            (false, status) if status >= 400 => status.to_string(),
                            (false, _) => "replayed".to_string(),
                        }
                    )
                })
                .collect();
            broken.push(format!(
                "{request} at {}: {} | {}",
                writes[0].fake,
                why.join("; "),
                tries.join(", ")
            ));
        }
    }

    let requests: BTreeSet<&str> = groups.keys().map(|(request, _)| *request).collect();
    let judged: usize = groups.values().map(Vec::len).sum();
    let mut seen = format!(
        "{judged} writes for {} requests, {} of them retried",
        requests.len(),
        retried.len()
    );
    if unlinked > 0 {
        seen.push_str(&format!(
            " ({unlinked} more writes carried no nonce or request id of this run and were not \
             judged)"
        ));
    }
    if invalid > 0 {
        seen.push_str(&format!(" ({invalid} refused as invalid, not judged)"));
    }
    let figure = broken_requests.len();
    v.figure = Some(figure as f64);
    if figure as f64 <= limit {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "{seen}; {figure} broke idempotency (limit {}).",
            expect.max_duplicates
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{seen}; {figure} requests' writes were repeated without a stable Idempotency-Key \
             or took effect twice (limit {}): the user's ticket was filed more than once.",
            expect.max_duplicates
        );
    }
    v.evidence = bounded(broken);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::Phase;

    fn write(key: &str, idem: Option<&str>, side_effect: bool) -> WriteAttempt {
        WriteAttempt {
            at_ms: 11_000.0,
            fake: "tickets".into(),
            key: Some(key.into()),
            idempotency_key: idem.map(String::from),
            payload_hash: 7,
            side_effect,
            status: if side_effect { 201 } else { 503 },
        }
    }

    fn evidence(writes: Vec<WriteAttempt>) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 2, Some(200), 300.0)
            .build();
        e.writes = writes.into();
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
    fn a_request_id_links_a_write_as_well_as_the_nonce() {
        let e = evidence(vec![
            write("req-1", Some("a"), false),
            write("n1", Some("b"), true),
        ]);
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(v.evidence[0].starts_with("req-1 at tickets: retried under a different"));
    }

    #[test]
    fn two_different_writes_of_one_request_are_not_a_retry() {
        let mut other = write("n1", Some("b"), true);
        other.payload_hash = 8;
        let e = evidence(vec![write("n1", Some("a"), true), other]);
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(v
            .summary
            .starts_with("2 writes for 1 requests, 0 of them retried"));
    }

    #[test]
    fn writes_tied_to_no_request_of_the_run_are_named_not_judged() {
        let e = evidence(vec![
            write("someone-elses-id", None, true),
            write("someone-elses-id", None, true),
        ]);
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("x-request-id"), "{}", v.summary);

        let mut e = e;
        e.writes.push(write("n2", Some("k"), true));
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass);
        assert!(
            v.summary.contains("2 more writes carried no nonce"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn writes_refused_as_invalid_are_configuration_not_a_verdict() {
        let mut refused = write("n1", None, false);
        refused.status = 400;
        let e = evidence(vec![refused.clone(), refused]);
        let v = check_idempotent(&e, &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(
            v.summary.contains("[tools.tickets] required"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn no_writes_is_not_applicable() {
        let v = check_idempotent(&evidence(vec![]), &WriteExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("no writes"));
    }
}
