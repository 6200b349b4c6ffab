//! Checks: pure functions from [`Evidence`] and [`Expectations`] to [`Verdict`]s.
//! No sockets, no clocks: each family is unit-tested on hand-built evidence.
//!
//! Families, one file each, in report order: [`sla`] (latency and error rate per phase),
//! [`errors`] (honest failures), [`retries`], [`writes`] (idempotent tool writes),
//! [`fallback`] (graceful degradation), [`recovery`], [`logs`], [`metrics`] (metrics against
//! ground truth), [`cost`], [`agent`] (step limits), [`stream`], [`traces`] (the target's
//! exported spans). Every family runs with its
//! defaults; one whose data the run did not produce says "not applicable" and why, never pass.

pub mod agent;
mod common;
pub mod cost;
pub mod errors;
pub mod fallback;
pub mod logs;
pub mod metrics;
pub mod recovery;
pub mod retries;
pub mod sla;
pub mod stream;
pub mod traces;
pub mod verdict;
pub mod writes;

pub use verdict::{Outcome, Verdict};

use crate::evidence::Evidence;
use crate::scenario::Expectations;

/// Every check the expectations ask for, in report order, less those `skip` names.
pub fn evaluate(evidence: &Evidence, expect: &Expectations) -> Vec<Verdict> {
    let mut verdicts = sla::check(evidence, expect);
    verdicts.push(errors::check_honest(evidence, &expect.errors));
    verdicts.extend(retries::check(evidence, &expect.retries));
    verdicts.push(writes::check_idempotent(evidence, &expect.writes));
    verdicts.extend(fallback::check(evidence, &expect.fallback));
    verdicts.extend(recovery::check(evidence, &expect.recovery));
    verdicts.extend(logs::check(evidence, &expect.logs));
    verdicts.push(metrics::check_truth(evidence, &expect.metrics));
    verdicts.push(cost::check(evidence, &expect.cost));
    verdicts.push(agent::check(evidence, &expect.agent));
    verdicts.extend(stream::check(evidence, &expect.stream));
    verdicts.push(traces::check_per_request(evidence, &expect.traces));
    verdicts.retain(|v| !expect.skips(&v.id));
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::sla::tests::EvidenceBuilder;
    use crate::evidence::Phase;

    #[test]
    fn every_family_reports_in_a_stable_order_and_skip_leaves_checks_out() {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        let ids: Vec<String> = evaluate(&evidence, &Expectations::default())
            .into_iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(
            ids,
            [
                "errors.honest",
                "retries.attempts",
                "retries.retryable",
                "retries.backoff",
                "retries.jitter",
                "retries.retry_after",
                "retries.non_retryable",
                "retries.amplification",
                "writes.idempotent",
                "fallback.tool",
                "fallback.redis",
                "recovery.time",
                "recovery.mitigation",
                "recovery.fast_fail",
                "logs.one_line_per_request",
                "logs.request_id",
                "logs.tokens",
                "logs.no_secrets",
                "metrics.truth",
                "cost.per_answer",
                "agent.steps",
                "stream.first_token",
                "stream.inter_token",
                "stream.ends_clearly",
                "traces.per_request",
            ]
        );

        let expect = Expectations {
            skip: vec![
                "retries".into(),
                "logs.tokens".into(),
                "stream.first".into(),
            ],
            ..Expectations::default()
        };
        let ids: Vec<String> = evaluate(&evidence, &expect)
            .into_iter()
            .map(|v| v.id)
            .collect();
        assert!(!ids.iter().any(|id| id.starts_with("retries.")));
        assert!(!ids.contains(&"logs.tokens".to_string()));
        assert!(ids.contains(&"logs.request_id".to_string()));
        // A prefix that is not a whole id segment skips nothing.
        assert!(ids.contains(&"stream.first_token".to_string()));
    }

    #[test]
    fn evidence_with_nothing_to_judge_passes_no_check() {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        for v in evaluate(&evidence, &Expectations::default()) {
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
            assert!(!v.summary.is_empty(), "{} says why", v.id);
        }
    }
}
