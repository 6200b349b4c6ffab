//! The token cost of faults (`cost.per_answer`): tokens spent per successful answer in the
//! fault phase, as a multiple of the baseline's.
//!
//! The lesson tracks `tokens_input`/`tokens_output` "for cost forecasting", and accepts a
//! higher cost only "briefly". Retries that re-send a long prompt, or an agent loop that
//! re-plans after every tool error, can multiply what each answer costs; this makes it a gate.
//! Tokens come from the provider's `usage` in the LLM fake's journal, linked to client requests.

use super::common::{attempts_per_record, not_applicable, pending};
use super::{Outcome, Verdict};
use crate::evidence::FakeName;
use crate::evidence::{Evidence, Phase};
use crate::scenario::CostExpectations;

/// Tokens and successful answers of one phase's requests.
struct Spend {
    tokens: u64,
    answers: usize,
    requests: usize,
}

fn spend(evidence: &Evidence, phase: Phase, expect: &CostExpectations) -> Spend {
    let linked = attempts_per_record(evidence);
    let mut s = Spend {
        tokens: 0,
        answers: 0,
        requests: 0,
    };
    for r in evidence.records_in(phase) {
        s.requests += 1;
        if r.succeeded() {
            s.answers += 1;
        }
        s.tokens += linked
            .of(&r)
            .into_iter()
            .filter(|a| a.fake == FakeName::Llm && a.route.starts_with(&expect.tokens_route))
            .map(|a| a.input_tokens.unwrap_or(0) + a.output_tokens.unwrap_or(0))
            .sum::<u64>();
    }
    s
}

/// `cost.per_answer`: fault-phase tokens per successful answer ≤ `ratio` × the baseline's.
pub fn check(evidence: &Evidence, expect: &CostExpectations) -> Verdict {
    let mut v = pending(
        "cost.per_answer",
        format!(
            "tokens per successful answer under faults stay within {}x the baseline's",
            expect.ratio
        ),
        "times",
        Some(expect.ratio),
    );
    let base = spend(evidence, Phase::Baseline, expect);
    let fault = spend(evidence, Phase::Fault, expect);
    if base.answers == 0 || base.tokens == 0 {
        return not_applicable(
            v,
            format!(
                "the baseline had no successful answer with provider usage on {} linked to it, \
                 so there is no normal cost to compare with.",
                expect.tokens_route
            ),
        );
    }
    if fault.requests == 0 {
        return not_applicable(
            v,
            "no request was sent in the fault phase, so its cost could not be judged.",
        );
    }
    let base_per = base.tokens as f64 / base.answers as f64;
    let line = |name: &str, s: &Spend| {
        format!(
            "{name}: {} tokens for {} successful answers of {} requests",
            s.tokens, s.answers, s.requests
        )
    };
    v.evidence = vec![line("baseline", &base), line("fault", &fault)];
    if fault.answers == 0 {
        if fault.tokens == 0 {
            return not_applicable(
                v,
                "no request succeeded or spent tokens in the fault phase, so its cost could not \
                 be judged.",
            );
        }
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "the fault phase spent {} tokens and answered nobody: every token was waste.",
            fault.tokens
        );
        return v;
    }
    let fault_per = fault.tokens as f64 / fault.answers as f64;
    let ratio = fault_per / base_per;
    v.figure = Some((ratio * 100.0).round() / 100.0);
    let seen = format!(
        "a successful answer cost {fault_per:.0} tokens under faults against {base_per:.0} in \
         the baseline ({ratio:.2}x)"
    );
    if ratio <= expect.ratio {
        v.outcome = Outcome::Pass;
        v.summary = format!("{seen}, within the {}x limit.", expect.ratio);
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{seen}, over the {}x limit: retries or re-planning multiplied what each answer costs.",
            expect.ratio
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::evidence::testing::EvidenceBuilder;

    /// Baseline answers cost 100 tokens; fault-phase answers `fault_tokens` each.
    fn evidence(fault_tokens: u64, fault_status: u16) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 4, Some(200), 100.0)
            .records(Phase::Fault, 4, Some(fault_status), 100.0)
            .build();
        for r in e.records.to_vec() {
            let tokens = if r.at_ms < 10_000.0 {
                100
            } else {
                fault_tokens
            };
            let mut a = attempt(
                r.at_ms,
                "llm",
                "/v1/chat/completions",
                &r.nonce,
                Some(200),
                5.0,
            );
            a.input_tokens = Some(tokens - 20);
            a.output_tokens = Some(20);
            e.attempts.push(a);
        }
        e
    }

    #[test]
    fn a_small_rise_in_cost_passes() {
        let v = check(&evidence(150, 200), &CostExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(1.5));
    }

    #[test]
    fn tripled_cost_per_answer_fails() {
        let v = check(&evidence(300, 200), &CostExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(3.0));
        assert!(
            v.summary
                .contains("cost 300 tokens under faults against 100"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn tokens_spent_with_no_answer_fail() {
        let v = check(&evidence(100, 503), &CostExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.contains("answered nobody"));
    }

    #[test]
    fn without_usage_cost_is_not_applicable() {
        let mut e = evidence(100, 200);
        e.attempts.clear();
        let v = check(&e, &CostExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("no normal cost"));
    }
}
