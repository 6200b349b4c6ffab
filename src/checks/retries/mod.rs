//! Retries (`retries.*`): how the target retried its upstream calls, read from the fakes'
//! journals, attempt by attempt, per client request.
//!
//! The lesson: "Idempotent LLM read calls: retry 429/503 with backoff." So a retryable failure
//! is retried (`retries.retryable`), a bounded number of times (`retries.attempts`), after waits
//! that grow (`retries.backoff`) and differ between clients (`retries.jitter`), never sooner
//! than the provider's `retry-after` (`retries.retry_after`); a wrong request (400, 401) is not
//! retried (`retries.non_retryable`); and a fault does not multiply the load on the provider
//! beyond a limit (`retries.amplification`).
//!
//! A *chain* is what one client request sent to one fake and route, cut after each success:
//! an agent that calls the LLM five times in a row, each call answered, makes five chains of
//! one, not one chain of five retries.
//!
//! The limits are derived from real client policies: [`policies`] is the table, with a source
//! for each row; `waits` holds the backoff and jitter statistics and their calibration; the
//! tests in `replay` run every row through these checks.

use std::collections::BTreeMap;

pub mod policies;
#[cfg(test)]
mod replay;
mod waits;

use super::common::{
    attempt_failed, attempts_per_record, bounded, fault_spans, not_applicable, pending,
    retry_after_ms, FaultSpan, LinkedAttempts,
};
use super::sla::format_ms;
use super::{Outcome, Verdict};
use crate::evidence::Attempt;
use crate::evidence::FakeName;
use crate::evidence::{Evidence, Phase, Record};
use crate::scenario::RetryExpectations;

/// Waits at most this much shorter than `retry-after` still count as honouring it (timers and
/// the journal's clock are not exact).
const RETRY_AFTER_SLACK_MS: f64 = 20.0;

/// Attempts of one client request at one fake and route, each after a failure of the previous.
struct Chain<'a> {
    request_id: String,
    attempts: Vec<&'a Attempt>,
}

impl Chain<'_> {
    /// `req-7 llm /v1/chat/completions: 10 s 503, +180 ms 503, +420 ms 200`
    fn describe(&self) -> String {
        let first = self.attempts[0];
        let mut steps = vec![format!("{} {}", format_ms(first.at_ms), status(first))];
        for pair in self.attempts.windows(2) {
            steps.push(format!(
                "+{} {}",
                format_ms(wait_ms(pair[0], pair[1])),
                status(pair[1])
            ));
        }
        format!(
            "{} {} {}: {}",
            self.request_id,
            first.fake,
            first.route,
            steps.join(", ")
        )
    }

    fn helped(&self) -> bool {
        self.attempts.len() > 1 && !attempt_failed(self.attempts[self.attempts.len() - 1])
    }
}

fn status(a: &Attempt) -> String {
    match (a.status, a.fault.as_deref()) {
        (Some(s), Some(f)) => format!("{s} ({f})"),
        (Some(s), None) => s.to_string(),
        (None, Some(f)) => format!("no answer ({f})"),
        (None, None) => "no answer".into(),
    }
}

/// The pause between an attempt's end and the next attempt's start.
fn wait_ms(before: &Attempt, after: &Attempt) -> f64 {
    (after.at_ms - (before.at_ms + before.duration_ms)).max(0.0)
}

/// Every chain of every client request the fakes could name, in first-attempt order, over
/// `attempts` (the evidence's non-Redis attempts, read back from their stream: see
/// [`upstream_attempts`]).
fn chains<'a>(evidence: &Evidence, attempts: &'a [Attempt]) -> Vec<Chain<'a>> {
    let request_of = super::common::request_ids_of_attempt_keys(evidence);
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&Attempt>> = BTreeMap::new();
    for a in attempts {
        if let Some(key) = a.key.as_deref() {
            groups
                .entry((key, a.fake.as_str(), a.route.as_str()))
                .or_default()
                .push(a);
        }
    }
    let mut out = Vec::new();
    for ((key, _, _), mut attempts) in groups {
        attempts.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        let request_id = request_of.get(key).map_or(key, String::as_str).to_string();
        let mut current: Vec<&Attempt> = Vec::new();
        for a in attempts {
            if current.last().is_some_and(|prev| !attempt_failed(prev)) {
                out.push(Chain {
                    request_id: request_id.clone(),
                    attempts: std::mem::take(&mut current),
                });
            }
            current.push(a);
        }
        if !current.is_empty() {
            out.push(Chain {
                request_id,
                attempts: current,
            });
        }
    }
    out.sort_by(|a, b| a.attempts[0].at_ms.total_cmp(&b.attempts[0].at_ms));
    out
}

/// The attempts chains are made of, in memory for the length of the retries checks (chains
/// group them per request, and the stream is in the order attempts ended). Redis is left out:
/// a cache miss is skipped, not retried, and its commands are no calls a user waits on.
fn upstream_attempts(evidence: &Evidence) -> Vec<Attempt> {
    evidence
        .attempts
        .iter()
        .filter(|a| a.fake != "redis" && a.key.is_some())
        .collect()
}

/// All `retries.*` verdicts, in a stable order.
pub fn check(evidence: &Evidence, expect: &RetryExpectations) -> Vec<Verdict> {
    let attempts = upstream_attempts(evidence);
    let chains = chains(evidence, &attempts);
    vec![
        check_attempts(evidence, &chains, expect),
        check_retryable(evidence, &chains, expect),
        waits::check_backoff(&chains, expect),
        waits::check_jitter(&chains, expect),
        check_retry_after(&chains),
        check_non_retryable(&chains, expect),
        check_amplification(evidence, expect),
    ]
}

/// Why no chain could be judged, or `None` when some upstream attempt failed.
fn nothing_failed(evidence: &Evidence, chains: &[Chain]) -> Option<String> {
    if chains.is_empty() {
        return Some(
            if evidence.attempts.iter().all(|a| a.fake == FakeName::Redis) {
                "the LLM and tool fakes saw no upstream attempts, so retries could not be judged."
                    .into()
            } else {
                "the fakes could not link any upstream attempt to a client request (no nonce or \
             request id found), so retries could not be judged."
                    .into()
            },
        );
    }
    if !chains
        .iter()
        .any(|c| c.attempts.iter().any(|a| attempt_failed(a)))
    {
        return Some(
            "no upstream attempt failed during the run, so there was nothing to retry.".into(),
        );
    }
    None
}

/// `retries.attempts`: no client request tries one upstream more than `max_attempts` times.
fn check_attempts(evidence: &Evidence, chains: &[Chain], expect: &RetryExpectations) -> Verdict {
    let limit = expect.max_attempts as f64;
    let mut v = pending(
        "retries.attempts",
        format!(
            "a client request makes at most {} attempts at one upstream",
            expect.max_attempts
        ),
        "attempts",
        Some(limit),
    );
    if let Some(why) = nothing_failed(evidence, chains) {
        return not_applicable(v, why);
    }
    let most = chains.iter().map(|c| c.attempts.len()).max().unwrap_or(0);
    let retried: Vec<&Chain> = chains.iter().filter(|c| c.attempts.len() > 1).collect();
    let helped = retried.iter().filter(|c| c.helped()).count();
    let tally = format!(
        "{} requests were retried: the retry helped {helped} (a later attempt got 2xx), not {}",
        retried.len(),
        retried.len() - helped
    );
    v.figure = Some(most as f64);
    let over: Vec<&Chain> = chains
        .iter()
        .filter(|c| c.attempts.len() > expect.max_attempts as usize)
        .collect();
    if over.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "at most {most} attempts per request at one upstream, within the limit of {}; {tally}.",
            expect.max_attempts
        );
        v.evidence = bounded(retried.iter().map(|c| c.describe()).collect());
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} requests made more than {} attempts at one upstream (up to {most}): retries \
             without a bound pile load on a provider that is already failing; {tally}.",
            over.len(),
            expect.max_attempts
        );
        v.evidence = bounded(over.iter().map(|c| c.describe()).collect());
    }
    v
}

/// `retries.retryable`: a retryable LLM answer (429, 5xx) gets at least one retry.
/// Only the LLM: the lesson asks retries of "idempotent LLM read calls"; a failed tool is
/// better degraded than waited on (see `fallback`). An attempt that got no answer (a timeout)
/// is not judged: retrying it would double a wait the user already sat through, and the
/// lesson answers a timeout with an honest 504 instead.
fn check_retryable(evidence: &Evidence, chains: &[Chain], expect: &RetryExpectations) -> Verdict {
    let mut v = pending(
        "retries.retryable",
        format!(
            "retryable LLM answers ({}) are retried",
            expect
                .retryable
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "ratio",
        Some(expect.max_unretried),
    );
    // A failure right at the run's end may simply have had no time left for its retry.
    let run_end = evidence.duration_ms;
    let retryable = |a: &Attempt| a.status.is_some_and(|s| expect.retryable.contains(&s));
    let judged: Vec<&Chain> = chains
        .iter()
        .filter(|c| c.attempts[0].fake == FakeName::Llm)
        .filter(|c| attempt_failed(c.attempts[0]) && retryable(c.attempts[0]))
        .filter(|c| {
            let first = c.attempts[0];
            c.attempts.len() > 1 || first.at_ms + first.duration_ms + 1000.0 < run_end
        })
        .collect();
    if judged.is_empty() {
        return not_applicable(
            v,
            "no LLM attempt failed with a retryable answer, so retrying could not be judged.",
        );
    }
    // A failure left unretried while the service was spending a retry budget (or its breaker
    // had opened) is the budget at work, not a missing retry: it is excused.
    let spending = budget_spent(chains);
    let (excused, unretried): (Vec<&&Chain>, Vec<&&Chain>) = judged
        .iter()
        .filter(|c| c.attempts.len() == 1)
        .partition(|c| spending.contains(&slice_of(c.attempts[0])));
    let share = unretried.len() as f64 / judged.len() as f64;
    v.figure = Some(share);
    let excused_note = if excused.is_empty() {
        String::new()
    } else {
        format!(
            " ({} more went unretried in seconds when the service was retrying at least {} of \
             its LLM calls: a retry budget or breaker at work, not counted)",
            excused.len(),
            super::sla::format_ratio(BUDGET_FLOOR)
        )
    };
    let counted = format!(
        "{} of {} requests whose LLM call failed retryably were never retried{excused_note}",
        unretried.len(),
        judged.len()
    );
    if share <= expect.max_unretried {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "{counted}, within the {} limit.",
            super::sla::format_ratio(expect.max_unretried)
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{counted} ({}), over the {} limit: a passing 429 or 503 became the user's error.",
            super::sla::format_ratio(share),
            super::sla::format_ratio(expect.max_unretried)
        );
        v.evidence = bounded(unretried.iter().map(|c| c.describe()).collect());
    }
    v
}

/// The share of its LLM calls a service retries, within a slice of the run, from which it is
/// taken to be spending a retry budget. Budgets are a share of requests: 20% in Finagle,
/// Linkerd and Envoy's defaults, 10% in gRPC's retry throttling (`tokenRatio` 0.1); a service
/// at 5% or more is retrying, and what it leaves unretried is its budget's (or its open
/// breaker's) choice. A service that never retries (`no-retry`) spends nothing.
const BUDGET_FLOOR: f64 = 0.05;

/// The slices `BUDGET_FLOOR` is measured over: long enough to hold tens of calls at the
/// built-in scenarios' rates, short enough that a budget spent in one stretch of a fault does
/// not excuse another.
const BUDGET_SLICE_MS: f64 = 5_000.0;

/// The route and slice of the run an attempt belongs to (a budget is judged per route: the
/// embeddings calls a chat request also makes are no retries of its chat call).
fn slice_of(a: &Attempt) -> (&str, i64) {
    (a.route.as_str(), (a.at_ms / BUDGET_SLICE_MS).floor() as i64)
}

/// The slices in which the service retried at least `BUDGET_FLOOR` of its LLM calls.
fn budget_spent<'a>(chains: &[Chain<'a>]) -> std::collections::HashSet<(&'a str, i64)> {
    let mut calls: BTreeMap<(&str, i64), (usize, usize)> = BTreeMap::new();
    for c in chains
        .iter()
        .filter(|c| c.attempts[0].fake == FakeName::Llm)
    {
        let slice = calls.entry(slice_of(c.attempts[0])).or_default();
        slice.0 += 1;
        slice.1 += usize::from(c.attempts.len() > 1);
    }
    calls
        .into_iter()
        .filter(|(_, (n, retried))| *retried as f64 >= BUDGET_FLOOR * *n as f64 && *retried > 0)
        .map(|(slice, _)| slice)
        .collect()
}

/// `retries.retry_after`: a retry waits at least the `retry-after` the provider sent.
fn check_retry_after(chains: &[Chain]) -> Verdict {
    let mut v = pending(
        "retries.retry_after",
        "a retry waits at least the retry-after the provider asked for".into(),
        "retries",
        Some(0.0),
    );
    let mut judged = 0;
    let mut early = Vec::new();
    for c in chains {
        for pair in c.attempts.windows(2) {
            let Some(asked) = pair[0].fault.as_deref().and_then(retry_after_ms) else {
                continue;
            };
            judged += 1;
            let waited = wait_ms(pair[0], pair[1]);
            if waited + RETRY_AFTER_SLACK_MS < asked {
                early.push(format!(
                    "waited {} of the {} asked: {}",
                    format_ms(waited),
                    format_ms(asked),
                    c.describe()
                ));
            }
        }
    }
    if judged == 0 {
        return not_applicable(
            v,
            "no request was retried after an answer carrying retry-after, so honouring it could \
             not be judged.",
        );
    }
    v.figure = Some(early.len() as f64);
    if early.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary =
            format!("all {judged} retries after a retry-after waited at least as long as asked.");
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {judged} retries came sooner than the retry-after the provider sent: an \
             early retry is refused again and counts against the rate limit.",
            early.len()
        );
        v.evidence = bounded(early);
    }
    v
}

/// `retries.non_retryable`: an answer that says the request is wrong (400, 401) is not retried.
fn check_non_retryable(chains: &[Chain], expect: &RetryExpectations) -> Verdict {
    let mut v = pending(
        "retries.non_retryable",
        format!(
            "answers that cannot get better ({}) are not retried",
            expect
                .non_retryable
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "retries",
        Some(0.0),
    );
    let not_retryable = |a: &Attempt| a.status.is_some_and(|s| expect.non_retryable.contains(&s));
    let mut seen = 0;
    let mut retried = Vec::new();
    for c in chains {
        for (i, a) in c.attempts.iter().enumerate() {
            if not_retryable(a) {
                seen += 1;
                if i + 1 < c.attempts.len() {
                    retried.push(c.describe());
                }
            }
        }
    }
    if seen == 0 {
        return not_applicable(
            v,
            "no upstream attempt got a non-retryable answer, so this could not be judged.",
        );
    }
    v.figure = Some(retried.len() as f64);
    if retried.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!("none of the {seen} non-retryable answers was retried.");
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {seen} non-retryable answers were retried: the same wrong request gets the \
             same answer, and the retries only add load and latency.",
            retried.len()
        );
        v.evidence = bounded(retried);
    }
    v
}

/// The client requests sent in `[start_ms, end_ms)` and the attempts on `span`'s fake and
/// route that they made, wherever those landed. The attempts of requests sent before the
/// window are not charged to it: in a short window (brownout's 1.2 s with --quick) that can be
/// ten attempts against one request sent. Unlinked attempts (a target that passes no nonce or
/// id on) are counted by arrival instead.
fn attempts_of_requests_sent(
    evidence: &Evidence,
    linked: &LinkedAttempts,
    span: &FaultSpan,
    start_ms: f64,
    end_ms: f64,
) -> (usize, usize) {
    let sent = |r: &Record| r.at_ms >= start_ms && r.at_ms < end_ms;
    let requests = evidence.records.iter().filter(|r| sent(r)).count();
    let by_request: usize = evidence
        .records
        .iter()
        .filter(|r| sent(r))
        .map(|r| linked.of(&r).iter().filter(|a| span.covers(a)).count())
        .sum();
    if by_request > 0 {
        return (requests, by_request);
    }
    let by_arrival = evidence
        .attempts
        .iter()
        .filter(|a| span.covers(a) && a.at_ms >= start_ms && a.at_ms < end_ms)
        .count();
    (requests, by_arrival)
}

/// A multiple as reports show it: two decimals.
fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        x
    }
}

/// `retries.amplification`: upstream attempts per client request while a fault is on, as a
/// multiple of the baseline's (so a flow that always makes two calls is not counted twice).
fn check_amplification(evidence: &Evidence, expect: &RetryExpectations) -> Verdict {
    let mut v = pending(
        "retries.amplification",
        format!(
            "a fault multiplies upstream attempts per client request at most {}x",
            expect.amplification
        ),
        "times",
        Some(expect.amplification),
    );
    let spans = fault_spans(evidence);
    if spans.is_empty() {
        return not_applicable(
            v,
            "no fault was injected, so amplification could not be judged.",
        );
    }
    let baseline = evidence.phases.iter().find(|p| p.phase == Phase::Baseline);
    let linked = attempts_per_record(evidence);
    let mut worst: Option<(f64, String)> = None;
    let mut lines = Vec::new();
    for span in &spans {
        let (requests, attempts) =
            attempts_of_requests_sent(evidence, &linked, span, span.start_ms, span.end_ms);
        if requests == 0 {
            continue;
        }
        let per_request = attempts as f64 / requests as f64;
        // The baseline is measured the same way, by the requests sent in it: counting the
        // attempts that arrived in it instead leaves out those of its last requests, which a
        // loaded machine answers after the phase ends (a third of a 3 s --quick baseline with
        // 1 s answers), and a baseline that looks smaller makes every window look amplified.
        let usual = baseline.and_then(|b| {
            let (requests, attempts) =
                attempts_of_requests_sent(evidence, &linked, span, b.start_ms, b.end_ms);
            (requests > 0 && attempts > 0).then(|| attempts as f64 / requests as f64)
        });
        if attempts == 0 && usual.is_none() {
            continue;
        }
        let factor = usual.map_or(per_request, |u| per_request / u);
        let line = match usual {
            Some(u) => format!(
                "{}: {attempts} attempts for {requests} requests ({per_request:.2} each, \
                 baseline {u:.2}): {factor:.2}x",
                span.describe()
            ),
            None => format!(
                "{}: {attempts} attempts for {requests} requests: {factor:.2}x (no baseline)",
                span.describe()
            ),
        };
        lines.push(line.clone());
        if worst.as_ref().is_none_or(|(w, _)| factor > *w) {
            worst = Some((factor, line));
        }
    }
    let Some((factor, line)) = worst else {
        return not_applicable(
            v,
            "no client request was sent while a fault was on, or the faulted fakes saw no \
             attempts, so amplification could not be judged.",
        );
    };
    v.figure = Some(round2(factor));
    v.evidence = bounded(lines);
    let partial = if evidence.attempts_dropped > 0 {
        format!(
            " (the journals dropped {} old attempts, so counts may be low)",
            evidence.attempts_dropped
        )
    } else {
        String::new()
    };
    if factor <= expect.amplification {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "upstream attempts per request rose at most {factor:.2}x under faults, within the \
             {}x limit{partial}.",
            expect.amplification
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "upstream attempts per request rose {factor:.2}x under a fault, over the {}x \
             limit{partial}: retries multiplied the load on a failing provider ({line}).",
            expect.amplification
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::{attempt, window};
    use crate::evidence::testing::EvidenceBuilder;

    const CHAT: &str = "/v1/chat/completions";

    fn verdict<'a>(verdicts: &'a [Verdict], id: &str) -> &'a Verdict {
        verdicts.iter().find(|v| v.id == id).expect(id)
    }

    /// Ten requests in the fault phase, each retried with `waits` (ms) after 503s of 10 ms;
    /// `end` is the last attempt's status.
    fn retried(waits: &[&[f64]], end: Option<u16>) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 10, Some(200), 100.0)
            .records(Phase::Fault, waits.len(), Some(200), 500.0)
            .build();
        e.timeline = window("llm", "status 503", 10_000.0, 20_000.0);
        for r in &e.records.to_vec() {
            e.attempts
                .push(attempt(r.at_ms, "llm", CHAT, &r.nonce, Some(200), 50.0));
        }
        e.attempts.retain(|a| a.at_ms < 10_000.0);
        let fault_records: Vec<_> = e.records.iter().filter(|r| r.at_ms >= 10_000.0).collect();
        for (r, waits) in fault_records.iter().zip(waits) {
            let mut at = r.at_ms;
            let mut a = attempt(at, "llm", CHAT, &r.nonce, Some(503), 10.0);
            a.fault = Some("status 503".into());
            e.attempts.push(a);
            for (i, w) in waits.iter().enumerate() {
                at += 10.0 + w;
                let last = i + 1 == waits.len();
                let status = if last { end } else { Some(503) };
                let mut a = attempt(at, "llm", CHAT, &r.nonce, status, 10.0);
                if !last {
                    a.fault = Some("status 503".into());
                }
                e.attempts.push(a);
            }
        }
        e
    }

    fn jittered() -> Vec<&'static [f64]> {
        vec![
            &[90.0, 300.0],
            &[150.0, 380.0],
            &[40.0, 250.0],
            &[190.0, 120.0],
            &[110.0, 330.0],
            &[60.0, 390.0],
            &[170.0, 200.0],
        ]
    }

    #[test]
    fn bounded_growing_jittered_retries_pass_and_count_what_helped() {
        let verdicts = check(
            &retried(&jittered(), Some(200)),
            &RetryExpectations::default(),
        );
        for id in [
            "retries.attempts",
            "retries.retryable",
            "retries.backoff",
            "retries.jitter",
            "retries.amplification",
        ] {
            assert_eq!(
                verdict(&verdicts, id).outcome,
                Outcome::Pass,
                "{:#?}",
                verdict(&verdicts, id)
            );
        }
        let attempts = verdict(&verdicts, "retries.attempts");
        assert_eq!(attempts.figure, Some(3.0));
        assert!(
            attempts
                .summary
                .contains("7 requests were retried: the retry helped 7"),
            "{}",
            attempts.summary
        );
        assert!(
            attempts.evidence[0].contains("+90 ms 503"),
            "{:?}",
            attempts.evidence
        );
        // 3 attempts in the window per request vs 1 in the baseline.
        assert_eq!(
            verdict(&verdicts, "retries.amplification").figure,
            Some(3.0)
        );
        assert_eq!(
            verdict(&verdicts, "retries.retry_after").outcome,
            Outcome::NotApplicable
        );
        assert_eq!(
            verdict(&verdicts, "retries.non_retryable").outcome,
            Outcome::NotApplicable
        );
    }

    #[test]
    fn a_baseline_answered_after_it_ended_is_not_taken_for_amplification() {
        // On a loaded machine the last baseline requests reach the provider after the phase
        // ended: counted by arrival, half the baseline's requests had no attempt (0.5 each)
        // and the fault's 3 attempts per request looked like 6x.
        let mut e = retried(&jittered(), Some(200));
        e.attempts.update(|a| {
            if a.at_ms >= 5_000.0 && a.at_ms < 10_000.0 {
                a.at_ms += 5_500.0;
            }
        });
        let verdicts = check(&e, &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.amplification");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(3.0));
    }

    #[test]
    fn too_many_attempts_fail_and_amplify() {
        let storm: Vec<&[f64]> = vec![&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]; 6];
        let verdicts = check(&retried(&storm, None), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.attempts");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(7.0));
        assert!(
            v.summary.contains("6 requests made more than 5 attempts"),
            "{}",
            v.summary
        );
        assert!(v.summary.contains("the retry helped 0"), "{}", v.summary);
        let v = verdict(&verdicts, "retries.amplification");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert_eq!(v.figure, Some(7.0));
    }

    #[test]
    fn constant_waits_fail_backoff_and_identical_waits_fail_jitter() {
        let flat: Vec<&[f64]> = vec![&[200.0, 200.0]; 6];
        let verdicts = check(&retried(&flat, Some(200)), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.backoff");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert_eq!(v.figure, Some(1.0));
        assert!(
            v.summary
                .contains("from 200 ms before retry 1 to 200 ms before retry 2"),
            "{}",
            v.summary
        );
        let v = verdict(&verdicts, "retries.jitter");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(0.0));
        assert!(v.summary.contains("retry together"));
    }

    #[test]
    fn immediate_retries_fail_backoff_even_when_their_noise_grows() {
        // 2 ms then 6 ms: three times the wait, but no retry waited at all.
        let storm: Vec<&[f64]> = vec![
            &[2.0, 6.0],
            &[1.0, 5.0],
            &[3.0, 7.0],
            &[2.0, 6.0],
            &[1.0, 5.0],
            &[3.0, 7.0],
        ];
        let verdicts = check(&retried(&storm, Some(200)), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.backoff");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(v.summary.contains("fired at once"), "{}", v.summary);
        assert!(
            v.figure.unwrap() > 2.0,
            "the growth is still reported: {v:#?}"
        );
    }

    #[test]
    fn immediate_retries_fail_jitter_however_their_noise_spreads() {
        let storm: Vec<&[f64]> = vec![&[2.0], &[9.0], &[4.0], &[11.0], &[3.0], &[6.0]];
        let verdicts = check(&retried(&storm, Some(200)), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.jitter");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(v.summary.contains("fired at once"), "{}", v.summary);
    }

    #[test]
    fn failures_never_retried_fail_retryable() {
        let none: Vec<&[f64]> = vec![&[]; 5];
        let verdicts = check(&retried(&none, None), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.retryable");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert_eq!(v.figure, Some(1.0));
        assert!(v.summary.contains("5 of 5 requests"), "{}", v.summary);
        assert_eq!(
            verdict(&verdicts, "retries.backoff").outcome,
            Outcome::NotApplicable
        );
    }

    #[test]
    fn failures_a_spent_retry_budget_left_unretried_are_excused_not_counted() {
        // 40 requests fail retryably in the window; the service retries every fifth (20%, a
        // retry budget's share) and leaves 32 unretried.
        let waits: Vec<&[f64]> = (0..40)
            .map(|i| if i % 5 == 0 { &[150.0][..] } else { &[][..] })
            .collect();
        let verdicts = check(&retried(&waits, Some(200)), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.retryable");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(
            v.summary.contains("32 more went unretried"),
            "{}",
            v.summary
        );
        // The same failures with no retry at all: nothing is spent, every one counts.
        let none: Vec<&[f64]> = vec![&[]; 40];
        let verdicts = check(&retried(&none, None), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.retryable");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(v.summary.starts_with("40 of 40"), "{}", v.summary);
    }

    fn after_retry_after(wait: f64) -> Evidence {
        let mut e = retried(&[&[wait]], Some(200));
        e.attempts.edit(|items| {
            for a in items.iter_mut() {
                if a.status == Some(503) {
                    a.status = Some(429);
                    a.fault = Some("status 429 retry-after 1s".into());
                }
            }
        });
        e
    }

    #[test]
    fn a_retry_sooner_than_retry_after_fails_and_a_patient_one_passes() {
        let verdicts = check(&after_retry_after(1_000.0), &RetryExpectations::default());
        assert_eq!(
            verdict(&verdicts, "retries.retry_after").outcome,
            Outcome::Pass
        );
        let verdicts = check(&after_retry_after(200.0), &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.retry_after");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(1.0));
        assert!(
            v.evidence[0].starts_with("waited 200 ms of the 1 s asked: req-11 llm"),
            "{:?}",
            v.evidence
        );
    }

    #[test]
    fn retrying_a_400_fails_and_accepting_it_passes() {
        let mut e = retried(&[&[100.0]], Some(400));
        e.attempts.edit(|items| {
            for a in items.iter_mut() {
                if a.status == Some(503) {
                    a.status = Some(400);
                }
            }
        });
        let verdicts = check(&e, &RetryExpectations::default());
        let v = verdict(&verdicts, "retries.non_retryable");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.summary
                .starts_with("1 of 2 non-retryable answers were retried"),
            "{}",
            v.summary
        );

        let mut e = retried(&[&[]], None);
        e.attempts.edit(|items| {
            for a in items.iter_mut() {
                if a.status == Some(503) {
                    a.status = Some(401);
                }
            }
        });
        let verdicts = check(&e, &RetryExpectations::default());
        assert_eq!(
            verdict(&verdicts, "retries.non_retryable").outcome,
            Outcome::Pass
        );
    }

    #[test]
    fn without_attempts_or_failures_every_retry_check_is_not_applicable() {
        let e = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        for v in check(&e, &RetryExpectations::default()) {
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
            assert!(!v.summary.is_empty());
        }
    }

    #[test]
    fn a_failed_redis_command_is_not_a_retry_to_judge() {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 6, Some(200), 100.0)
            .build();
        for r in e.records.to_vec() {
            e.attempts
                .push(attempt(r.at_ms, "redis", "GET", &r.nonce, None, 1.0));
        }
        for v in check(&e, &RetryExpectations::default()) {
            assert_ne!(v.outcome, Outcome::Fail, "{v:#?}");
        }
    }

    #[test]
    fn an_agent_calling_the_llm_in_a_row_is_not_retrying() {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 1, Some(200), 900.0)
            .build();
        let n = e.records.to_vec()[0].nonce.clone();
        for i in 0..6 {
            e.attempts.push(attempt(
                10_000.0 + i as f64 * 100.0,
                "llm",
                CHAT,
                &n,
                Some(200),
                50.0,
            ));
        }
        e.attempts.edit(|attempts| attempts[2].status = Some(503));
        let v = verdict(
            &check(&e, &RetryExpectations::default()),
            "retries.attempts",
        )
        .clone();
        assert_eq!(v.figure, Some(2.0), "{v:#?}");
    }
}
