//! Bounded agents (`agent.steps`): LLM calls per agent request stay under a step limit.
//!
//! The lesson tracks `agent_steps_count` for "runaway loop detection". A tool-call loop fault
//! makes the fake LLM ask for tools forever; a healthy agent stops at its step limit and
//! answers (or fails honestly) instead of burning tokens until the request times out. Calls are
//! counted from the LLM fake's journal, by the request's nonce, not from the target's word.

use super::common::{attempts_per_record, bounded, not_applicable, pending};
use super::sla::describe_record;
use super::{Outcome, Verdict};
use crate::evidence::FakeName;
use crate::evidence::{Evidence, FlowKind, Record};
use crate::scenario::AgentExpectations;

/// `agent.steps`: no agent request makes more than `max_llm_calls` LLM calls.
pub fn check(evidence: &Evidence, expect: &AgentExpectations) -> Verdict {
    let limit = expect.max_llm_calls as f64;
    let mut v = pending(
        "agent.steps",
        format!(
            "an agent request makes at most {} LLM calls",
            expect.max_llm_calls
        ),
        "calls",
        Some(limit),
    );
    let agents: Vec<Record> = evidence
        .records
        .iter()
        .filter(|r| r.kind == FlowKind::Agent)
        .collect();
    if agents.is_empty() {
        return not_applicable(
            v,
            "no agent requests were sent, so agent steps could not be judged.",
        );
    }
    let linked = attempts_per_record(evidence);
    let calls: Vec<(Record, usize)> = agents
        .into_iter()
        .map(|r| {
            let n = linked
                .of(&r)
                .into_iter()
                .filter(|a| a.fake == FakeName::Llm && a.route.starts_with(&expect.llm_route))
                .count();
            (r, n)
        })
        .collect();
    let most = calls.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if most == 0 {
        return not_applicable(
            v,
            format!(
                "no LLM call on {} could be linked to an agent request, so agent steps could \
                 not be counted.",
                expect.llm_route
            ),
        );
    }
    v.figure = Some(most as f64);
    let mut over: Vec<&(Record, usize)> = calls
        .iter()
        .filter(|(_, n)| *n > expect.max_llm_calls as usize)
        .collect();
    over.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    if over.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "the {} agent requests made at most {most} LLM calls each, within the limit of {}.",
            calls.len(),
            expect.max_llm_calls
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {} agent requests made more than {} LLM calls (up to {most}): a runaway tool \
             loop burns tokens and time without a step limit.",
            over.len(),
            calls.len(),
            expect.max_llm_calls
        );
        v.evidence = bounded(
            over.iter()
                .map(|(r, n)| format!("{}: {n} LLM calls", describe_record(r)))
                .collect(),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::Phase;

    fn evidence(calls: usize) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 2, Some(200), 3_000.0)
            .build();
        e.records.edit(|rs| {
            for r in rs.iter_mut() {
                r.kind = FlowKind::Agent;
            }
        });
        for r in e.records.to_vec() {
            for i in 0..calls {
                let at = r.at_ms + i as f64 * 100.0;
                e.attempts.push(attempt(
                    at,
                    "llm",
                    "/v1/chat/completions",
                    &r.nonce,
                    Some(200),
                    50.0,
                ));
            }
            e.attempts.push(attempt(
                r.at_ms,
                "weather",
                "/v1/forecast",
                &r.nonce,
                Some(200),
                5.0,
            ));
        }
        e
    }

    #[test]
    fn an_agent_within_its_step_limit_passes() {
        let v = check(&evidence(5), &AgentExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(5.0));
    }

    #[test]
    fn a_runaway_agent_fails_naming_the_requests() {
        let v = check(&evidence(30), &AgentExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(30.0));
        assert!(
            v.evidence[0].ends_with(": 30 LLM calls"),
            "{:?}",
            v.evidence
        );
        assert!(v.summary.contains("runaway tool loop"));
    }

    #[test]
    fn without_agent_requests_it_is_not_applicable() {
        let mut e = evidence(30);
        e.records.edit(|rs| {
            for r in rs.iter_mut() {
                r.kind = FlowKind::Chat;
            }
        });
        assert_eq!(
            check(&e, &AgentExpectations::default()).outcome,
            Outcome::NotApplicable
        );
    }
}
