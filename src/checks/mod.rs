//! Checks: pure functions from [`Evidence`] and [`Expectations`] to [`Verdict`]s.
//! No sockets, no clocks: each family is unit-tested on hand-built evidence.
//!
//! Families, one file each, in report order: [`faults`] (did each fault window meet calls at
//! its fake: without that, every other verdict would judge healthy traffic), [`sla`] (latency and error rate per phase),
//! [`errors`] (honest failures), [`retries`], [`writes`] (idempotent tool writes),
//! [`fallback`] (graceful degradation), [`recovery`], [`logs`], [`metrics`] (metrics against
//! ground truth), [`cost`], [`agent`] (step limits), [`stream`], [`traces`] (the target's
//! exported spans), [`conversation`] (the Responses API's conversation state across retries),
//! [`mcp`] (MCP tool-list changes). Every family runs with its
//! defaults; one whose data the run did not produce says "not applicable" and why, never pass.

pub mod agent;
pub(crate) mod common;
pub mod conversation;
pub mod cost;
pub mod errors;
pub mod fallback;
pub mod faults;
pub mod logs;
pub mod mcp;
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
    let mut verdicts = vec![faults::check_reached(evidence)];
    verdicts.extend(sla::check(evidence, expect));
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
    verdicts.push(conversation::check_retry_state(evidence));
    verdicts.push(mcp::check_list_changed(evidence));
    verdicts.retain(|v| !expect.skips(&v.id));
    // A check the preflight found without a piece it needs is not judged, whatever its data
    // seemed to say: "not applicable" with the preflight's reason, never a silent pass.
    for v in &mut verdicts {
        let reason = evidence
            .gaps
            .iter()
            .find_map(|gap| crate::preflight::blocked_reason(gap, &v.id));
        if let Some(reason) = reason {
            *v = common::not_applicable(v.clone(), reason);
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testing::EvidenceBuilder;
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
                "faults.reached",
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
                "conversation.retry_state",
                "mcp.list_changed",
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
    fn a_check_the_preflight_blocked_is_not_applicable_with_its_reason() {
        // Evidence that would pass fallback.tool if the degraded marker meant anything.
        let mut evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        let why = "no degraded marker in answers; set [api] degraded_pointer";
        evidence
            .gaps
            .push(format!("fallback.tool: not applicable: {why}"));
        let verdicts = evaluate(&evidence, &Expectations::default());
        let tool = verdicts.iter().find(|v| v.id == "fallback.tool").unwrap();
        assert_eq!(tool.outcome, Outcome::NotApplicable);
        assert_eq!(tool.summary, why);
        let honest = verdicts.iter().find(|v| v.id == "errors.honest").unwrap();
        assert!(
            !honest.summary.contains("degraded"),
            "other checks keep their own"
        );
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
