//! Honest metrics (`metrics.truth`): the target's own metrics agree with what the fakes saw.
//!
//! The lesson's table: `llm_errors_total` (provider outages), `tokens_input`/`tokens_output`
//! (cost forecasting), `cache_hit_ratio`, `agent_steps_count` (runaway loops), served from
//! "a /admin/metrics JSON endpoint". A dashboard that reads zero errors during an outage is
//! worse than none, so each figure is compared with ground truth: the fakes' journals and the
//! client's records, between two snapshots of the target's metrics.
//!
//! Each figure says what it counts. LLM errors count failed **calls** by default (calls that
//! still failed after the SDK's own retries, as services instrument the SDK call), or failed
//! **attempts** (`counts = "attempts"`); [`truth`] says how calls are rebuilt from the fake
//! LLM's journal. Figures are read by JSON pointer or Prometheus series selector ([`body`]);
//! the defaults also read the OpenTelemetry GenAI names.
//!
//! The run snapshots the metrics after its warm-up requests, before the load, and again after
//! it; counters are compared as the change between the two against what the fakes saw in
//! between (a target attached to has counted earlier traffic too). A ratio cannot be
//! differenced: the cache hit ratio is compared whole, against every lookup the fake Redis saw,
//! only when this run started the target (its counters began with the fakes' journals).
//!
//! Nothing about configuration fails this check: a figure the service does not have (no such
//! field or family), or one that counts the other way than described, is left out with the
//! reason; the probe before the load says so first (see `crate::probe`). Only a figure read and
//! found off the truth, or a metrics body that no longer parses, fails.

mod body;
mod truth;

pub use body::{Body, Unread, DEFAULT_FALLBACKS};

use truth::LlmFailures;

use super::common::{bounded, gap_about, not_applicable, pending};
use super::sla::format_ratio;
use super::{Outcome, Verdict};
use crate::evidence::FakeName;
use crate::evidence::{Attempt, Evidence, FlowKind};
use crate::scenario::profile::Counts;
use crate::scenario::MetricsExpectations;

/// What became of one figure.
enum Reading {
    /// Read, and compared with the truth.
    Compared {
        reported: f64,
        truth: f64,
        /// What the truth is, in words (`3 failed calls`).
        truth_text: String,
        /// `true` for 0..1 ratios, compared by absolute difference rather than relative.
        ratio: bool,
    },
    /// Not judged, and why: the service does not have it, or it counts another way.
    LeftOut(String),
    /// The body could not be read: the service's metrics endpoint is broken.
    Broken(String),
}

/// One figure: its name, the selector it was read by, and what became of it.
struct Comparison {
    name: &'static str,
    figure: String,
    reading: Reading,
}

fn agrees(reported: f64, truth: f64, ratio: bool, tolerance: f64) -> bool {
    let diff = (reported - truth).abs();
    if ratio {
        diff <= tolerance
    } else {
        // Counts may be off by one: an attempt in flight when the snapshot was read.
        diff <= (tolerance * truth).max(1.0)
    }
}

impl Comparison {
    fn wrong(&self, tolerance: f64) -> bool {
        match &self.reading {
            Reading::Compared {
                reported,
                truth,
                ratio,
                ..
            } => !agrees(*reported, *truth, *ratio, tolerance),
            Reading::LeftOut(_) => false,
            Reading::Broken(_) => true,
        }
    }

    fn describe(&self, tolerance: f64) -> String {
        match &self.reading {
            Reading::Compared {
                reported,
                truth_text,
                ratio,
                ..
            } => format!(
                "{} ({}): target says {}, ground truth {truth_text}{}",
                self.name,
                self.figure,
                if *ratio {
                    format!("{reported:.3}")
                } else {
                    format!("{reported:.0}")
                },
                if self.wrong(tolerance) {
                    " — disagrees"
                } else {
                    ""
                }
            ),
            Reading::LeftOut(why) => format!("{} ({}): left out: {why}", self.name, self.figure),
            Reading::Broken(why) => format!("{} ({}): {why} — disagrees", self.name, self.figure),
        }
    }
}

/// The attempts among `seen` that retry the one before them: the same client request, fake and
/// route, after a failed attempt.
fn retry_attempts(seen: &[&Attempt]) -> std::collections::HashSet<*const Attempt> {
    let mut last: std::collections::HashMap<(&str, &str, &str), &Attempt> =
        std::collections::HashMap::new();
    let mut ordered: Vec<&Attempt> = seen.to_vec();
    ordered.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let mut retries = std::collections::HashSet::new();
    for a in ordered {
        let Some(key) = a.key.as_deref() else {
            continue;
        };
        if let Some(before) = last.insert((key, a.fake.as_str(), a.route.as_str()), a) {
            if super::common::attempt_failed(before) {
                retries.insert(a as *const Attempt);
            }
        }
    }
    retries
}

/// `metrics.truth`: LLM errors, tokens, cache hit ratio and agent steps match ground truth.
pub fn check_truth(evidence: &Evidence, expect: &MetricsExpectations) -> Verdict {
    let mut v = pending(
        "metrics.truth",
        format!(
            "the target's metrics agree with what the fakes saw (within {}, counts ±1)",
            format_ratio(expect.tolerance)
        ),
        "figures",
        Some(0.0),
    );
    let Some(snapshot) = evidence.metrics.last() else {
        let why = gap_about(evidence, "metric").unwrap_or("the target's metrics were not read");
        return not_applicable(
            v,
            format!("no metrics snapshot ({why}), so metrics could not be checked."),
        );
    };
    if evidence.attempts_dropped > 0 {
        return not_applicable(
            v,
            format!(
                "the fakes' journals dropped {} attempts, so ground truth is partial and metrics \
                    could not be checked.",
                evidence.attempts_dropped
            ),
        );
    }
    let comparisons = compare_all(evidence, expect);
    if comparisons.is_empty() {
        return not_applicable(
            v,
            "the run gave no ground truth for any configured metric (no LLM attempts, usage, \
                cache markers or agent requests), so metrics could not be checked.",
        );
    }
    v.evidence = bounded(
        comparisons
            .iter()
            .map(|c| c.describe(expect.tolerance))
            .collect(),
    );
    let judged: Vec<&Comparison> = comparisons
        .iter()
        .filter(|c| !matches!(c.reading, Reading::LeftOut(_)))
        .collect();
    if judged.is_empty() {
        return not_applicable(
            v,
            "every figure with ground truth was left out (the service does not have it, or it \
                counts another way than described; see the evidence), so metrics could not be \
                checked.",
        );
    }
    let left_out = comparisons.len() - judged.len();
    let left_out = if left_out > 0 {
        format!("; {left_out} left out, see the evidence")
    } else {
        String::new()
    };
    let wrong: Vec<&str> = judged
        .iter()
        .filter(|c| c.wrong(expect.tolerance))
        .map(|c| c.name)
        .collect();
    v.figure = Some(wrong.len() as f64);
    if wrong.is_empty() {
        v.outcome = Outcome::Pass;
        let before = evidence
            .metrics
            .first()
            .filter(|b| evidence.metrics.len() > 1 && b.at_ms < snapshot.at_ms);
        let when = match before {
            Some(b) => format!(
                "change between the snapshots at {} and {}",
                super::sla::format_ms(b.at_ms),
                super::sla::format_ms(snapshot.at_ms)
            ),
            None => format!("snapshot at {}", super::sla::format_ms(snapshot.at_ms)),
        };
        v.summary = format!(
            "all {} metrics compared agree with ground truth ({when}{left_out}).",
            judged.len(),
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {} metrics disagree with ground truth ({}{left_out}): dashboards and alerts \
                built on them would miss what users went through.",
            wrong.len(),
            judged.len(),
            wrong.join(", ")
        );
    }
    v
}

/// Every configured figure that has ground truth in this run, read and compared.
fn compare_all(evidence: &Evidence, expect: &MetricsExpectations) -> Vec<Comparison> {
    let Some(snapshot) = evidence.metrics.last() else {
        return Vec::new();
    };
    let body = Body::of(snapshot);
    // An earlier snapshot: the target's counts before the run's load (see the module docs).
    let before = evidence
        .metrics
        .first()
        .filter(|first| evidence.metrics.len() > 1 && first.at_ms < snapshot.at_ms);
    let before_body = before.map(Body::of);
    let since_ms = before.map_or(f64::NEG_INFINITY, |b| b.at_ms);
    // What the target could have counted between the snapshots.
    let seen: Vec<_> = evidence
        .attempts
        .iter()
        .filter(|a| a.at_ms <= snapshot.at_ms && a.at_ms > since_ms)
        .collect();
    let llm = || seen.iter().filter(|a| a.fake == FakeName::Llm);
    let chat = || llm().filter(|a| a.route.starts_with(&expect.tokens_route));

    let mut out = Vec::new();
    let read = |figure: &str| -> Result<f64, Unread> {
        let now = body.read(figure)?;
        Ok(match &before_body {
            // A counter the target did not have yet counts from zero.
            Some(b) => now - b.read(figure).unwrap_or(0.0),
            None => now,
        })
    };
    let compare = |name, figure: &str, truth: Option<(f64, String)>, ratio: bool| {
        let (false, Some((truth, truth_text))) = (figure.is_empty(), truth) else {
            return None;
        };
        let reading = match if ratio {
            body.read(figure)
        } else {
            read(figure)
        } {
            Ok(reported) => Reading::Compared {
                reported,
                truth,
                truth_text,
                ratio,
            },
            Err(Unread::Missing(why)) => Reading::LeftOut(format!(
                "{why} (ground truth {truth_text}; if the service has this figure, set its \
                    selector in [metrics] of faultline.toml, or \"\" when it has none)"
            )),
            Err(Unread::Broken(why)) => Reading::Broken(why),
        };
        Some(Comparison {
            name,
            figure: figure.to_string(),
            reading,
        })
    };

    if llm().next().is_some() {
        let failures = LlmFailures::count(llm());
        let (truth, other, other_name) = match expect.llm_errors_counts {
            Counts::Calls => (failures.calls, failures.attempts, Counts::Attempts),
            Counts::Attempts => (failures.attempts, failures.calls, Counts::Calls),
        };
        let text = format!(
            "{truth} failed {} ({} failed calls of {} failed attempts; {})",
            expect.llm_errors_counts.name(),
            failures.calls,
            failures.attempts,
            failures.how()
        );
        let errors = compare(
            "LLM errors",
            &expect.llm_errors,
            Some((truth as f64, text)),
            false,
        );
        // A counter that matches the other way of counting, and not the one described, is
        // honest but described wrong: that is the configuration's doing, not a lie.
        if let Some(mut last) = errors {
            if let Reading::Compared { reported, .. } = last.reading {
                if other != truth
                    && !agrees(reported, truth as f64, false, expect.tolerance)
                    && agrees(reported, other as f64, false, expect.tolerance)
                {
                    last.reading = Reading::LeftOut(format!(
                        "the target says {reported:.0}, which is the {other} failed {}, not the \
                            {truth} failed {} it is described as counting; describe it as it is: \
                            llm_errors = {{ selector = \"{}\", counts = \"{}\" }} in [metrics] of \
                            faultline.toml",
                        other_name.name(),
                        expect.llm_errors_counts.name(),
                        expect.llm_errors,
                        other_name.name()
                    ));
                }
            }
            out.push(last);
        }
    }
    let tokens_in: Option<u64> = chat().filter_map(|a| a.input_tokens).reduce(|a, b| a + b);
    let tokens_out: Option<u64> = chat().filter_map(|a| a.output_tokens).reduce(|a, b| a + b);
    let tokens = |n: Option<u64>| n.map(|n| (n as f64, format!("{n}")));
    out.extend(compare(
        "tokens in",
        &expect.tokens_input,
        tokens(tokens_in),
        false,
    ));
    out.extend(compare(
        "tokens out",
        &expect.tokens_output,
        tokens(tokens_out),
        false,
    ));
    // A ratio is compared whole, so only when the journals cover the target's whole life.
    if evidence.target_started || before.is_none() {
        let ratio = cache_hit_ratio(evidence, snapshot.at_ms);
        out.extend(compare(
            "cache hit ratio",
            &expect.cache_hit_ratio,
            ratio.map(|r| (r, format!("{r:.3}"))),
            true,
        ));
    }
    // Agent steps are known only for agent requests: their LLM calls plus their tool calls.
    // A retry is the same step again, and an MCP session's own requests (initialize,
    // tools/list) are no tool calls.
    let agents: Vec<_> = evidence
        .records
        .iter()
        .filter(|r| r.kind == FlowKind::Agent)
        .collect();
    let retries = retry_attempts(&seen.iter().collect::<Vec<_>>());
    let steps = seen
        .iter()
        .filter(|a| {
            (a.fake == FakeName::Llm && a.route.starts_with(&expect.tokens_route))
                || !(a.fake == FakeName::Llm || a.fake == FakeName::Redis)
        })
        .filter(|a| match &a.exchange {
            Some(crate::evidence::Exchange::Mcp { method, .. }) => method == "tools/call",
            _ => true,
        })
        .filter(|a| !retries.contains(&(*a as *const Attempt)))
        .filter(|a| agents.iter().any(|r| super::common::belongs(a, r)))
        .count();
    out.extend(compare(
        "agent steps",
        &expect.agent_steps,
        (!agents.is_empty() && steps > 0).then(|| (steps as f64, steps.to_string())),
        false,
    ));
    out
}

/// The cache hit ratio is hits per lookup. The fake Redis saw every lookup that reached it
/// (GET: 200 a hit, 404 a miss), which is the ground truth; without it, the answers' own cache
/// markers are the best there is.
fn cache_hit_ratio(evidence: &Evidence, until_ms: f64) -> Option<f64> {
    let lookups: Vec<bool> = evidence
        .attempts
        .iter()
        .filter(|a| a.fake == FakeName::Redis && a.route == "GET" && a.at_ms <= until_ms)
        .filter_map(|a| match a.status {
            Some(200) => Some(true),
            Some(404) => Some(false),
            _ => None,
        })
        .collect();
    let marked: Vec<bool> = if lookups.is_empty() {
        evidence
            .records
            .iter()
            .filter(|r| r.at_ms <= until_ms)
            .filter_map(|r| r.cache_hit)
            .collect()
    } else {
        lookups
    };
    (!marked.is_empty()).then(|| marked.iter().filter(|h| **h).count() as f64 / marked.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::{MetricsFormat, MetricsSnapshot, Phase};
    use serde_json::{json, Value};

    const CHAT: &str = "/v1/chat/completions";

    /// Four requests with a chat attempt each (10 in / 5 out) and two cache hits of four
    /// markers. Their failures: n1's chat got a 503 its retry got through (a failed attempt,
    /// not a failed call); n2's embeddings call hung (a failed call); n3 made a chat call that
    /// failed on all three of its SDK attempts before a new call succeeded. So 2 failed calls,
    /// 5 failed attempts.
    fn evidence(body: Value) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 4, Some(200), 100.0)
            .build();
        for (i, r) in e.records.to_vec().iter().enumerate() {
            let mut a = attempt(r.at_ms + 50.0, "llm", CHAT, &r.nonce, Some(200), 10.0);
            a.input_tokens = Some(10);
            a.output_tokens = Some(5);
            a.retry_count = (r.nonce == "n3").then_some(0);
            e.attempts.push(a);
            e.records.edit(|rs| rs[i].cache_hit = Some(i % 2 == 0));
        }
        let n = |nonce: &str| e.records.iter().find(|r| r.nonce == nonce).unwrap().at_ms;
        let (n1, n2, n3) = (n("n1"), n("n2"), n("n3"));
        e.attempts
            .push(attempt(n1 + 1.0, "llm", CHAT, "n1", Some(503), 1.0));
        e.attempts
            .push(attempt(n2 + 1.0, "llm", "/v1/embeddings", "n2", None, 1.0));
        for retry in 0..3 {
            let mut a = attempt(n3 + 1.0 + retry as f64, "llm", CHAT, "n3", Some(503), 1.0);
            a.retry_count = Some(retry);
            e.attempts.push(a);
        }
        e.metrics.push(MetricsSnapshot {
            at_ms: 30_000.0,
            body,
            format: MetricsFormat::Json,
        });
        e
    }

    fn truthful() -> Value {
        json!({"llm_errors_total": 2, "tokens_input": 40, "tokens_output": 20,
               "cache_hit_ratio": 0.5, "agent_steps_count": 0})
    }

    #[test]
    fn metrics_that_match_the_fakes_pass() {
        let v = check_truth(&evidence(truthful()), &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.evidence.len(), 4, "agent steps have no ground truth here");
        assert_eq!(
            v.evidence[0],
            "LLM errors (/llm_errors_total): target says 2, ground truth 2 failed calls (2 \
             failed calls of 5 failed attempts; calls told apart by the SDK's retry count where \
             sent)"
        );
    }

    #[test]
    fn metrics_that_miss_errors_fail_naming_them() {
        let mut body = truthful();
        body["llm_errors_total"] = json!(0);
        body["tokens_input"] = json!(41);
        let v = check_truth(&evidence(body), &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(1.0), "41 vs 40 is within a count of one");
        assert!(
            v.summary
                .starts_with("1 of 4 metrics disagree with ground truth (LLM errors)"),
            "{}",
            v.summary
        );
        assert!(v.evidence[0].ends_with("— disagrees"));
    }

    /// The false alarm a new user met in `flaky`: a service that counts its SDK calls saw
    /// twelve failed attempts, every one retried through, and rightly counted no error.
    #[test]
    fn a_service_counting_calls_that_were_retried_through_says_zero_and_passes() {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Fault, 12, Some(200), 100.0)
            .build();
        for r in e.records.to_vec() {
            for (retry, status) in [(0, 503), (1, 200)] {
                let mut a = attempt(
                    r.at_ms + retry as f64,
                    "llm",
                    CHAT,
                    &r.nonce,
                    Some(status),
                    1.0,
                );
                a.retry_count = Some(retry);
                e.attempts.push(a);
            }
        }
        e.metrics.push(MetricsSnapshot {
            at_ms: 30_000.0,
            body: json!({"llm_errors_total": 0}),
            format: MetricsFormat::Json,
        });
        let v = check_truth(&e, &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(
            v.evidence[0].contains(
                "target says 0, ground truth 0 failed calls (0 failed calls \
                                    of 12 failed attempts"
            ),
            "{:?}",
            v.evidence
        );
        // Judged by attempts, the same service would be off by twelve.
        let attempts = MetricsExpectations {
            llm_errors_counts: Counts::Attempts,
            ..MetricsExpectations::default()
        };
        let v = check_truth(&e, &attempts);
        assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
    }

    #[test]
    fn a_counter_of_attempts_described_as_calls_is_left_out_with_the_fix() {
        let mut body = truthful();
        body["llm_errors_total"] = json!(5);
        let v = check_truth(&evidence(body.clone()), &MetricsExpectations::default());
        // Honest, but described wrong: not judged, and not a fail.
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(v.summary.contains("1 left out"), "{}", v.summary);
        assert!(
            v.evidence[0].contains("which is the 5 failed attempts, not the 2 failed calls")
                && v.evidence[0].contains("counts = \"attempts\""),
            "{}",
            v.evidence[0]
        );
        // Described as it is, it is judged and agrees.
        let attempts = MetricsExpectations {
            llm_errors_counts: Counts::Attempts,
            ..MetricsExpectations::default()
        };
        let v = check_truth(&evidence(body.clone()), &attempts);
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(v.evidence[0].contains("ground truth 5 failed attempts"));
        // A count that is neither fails.
        body["llm_errors_total"] = json!(9);
        let v = check_truth(&evidence(body), &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
    }

    #[test]
    fn a_figure_the_service_does_not_have_is_left_out_not_failed() {
        let mut body = truthful();
        body.as_object_mut().unwrap().remove("cache_hit_ratio");
        let v = check_truth(&evidence(body.clone()), &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(
            v.evidence[3].starts_with(
                "cache hit ratio (/cache_hit_ratio): left out: not in the \
                                       metrics body (ground truth 0.500;"
            ),
            "{}",
            v.evidence[3]
        );
        let expect = MetricsExpectations {
            cache_hit_ratio: String::new(),
            ..MetricsExpectations::default()
        };
        let v = check_truth(&evidence(body), &expect);
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.evidence.len(), 3);
        // With nothing left to judge, the check is not applicable, never a pass.
        let v = check_truth(&evidence(json!({})), &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
    }

    #[test]
    fn a_target_running_before_the_run_is_judged_on_the_change_between_snapshots() {
        // The target had counted 100 errors and 1000 tokens before the run's traffic.
        let mut e = evidence(truthful());
        e.metrics.insert(
            0,
            MetricsSnapshot {
                at_ms: -10.0,
                body: json!({"llm_errors_total": 100, "tokens_input": 1000,
                             "tokens_output": 500, "cache_hit_ratio": 0.9}),
                format: MetricsFormat::Json,
            },
        );
        e.metrics[1].body = json!({"llm_errors_total": 102, "tokens_input": 1040,
                                   "tokens_output": 520, "cache_hit_ratio": 0.7});
        let v = check_truth(&e, &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.evidence.len(), 3, "a ratio cannot be differenced: {v:#?}");

        // Counting the errors twice shows in the change too.
        e.metrics[1].body["llm_errors_total"] = json!(109);
        let v = check_truth(&e, &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        // Read as totals (no earlier snapshot), the same body would be far off.
        e.metrics.remove(0);
        assert_eq!(
            check_truth(&e, &MetricsExpectations::default()).outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn a_target_this_run_started_has_its_ratio_compared_whole() {
        // The snapshot after the warm-up, then the one after the load.
        let mut e = evidence(truthful());
        e.target_started = true;
        e.metrics.insert(
            0,
            MetricsSnapshot {
                at_ms: -10.0,
                body: json!({"llm_errors_total": 0, "tokens_input": 0, "tokens_output": 0,
                             "cache_hit_ratio": 0.0}),
                format: MetricsFormat::Json,
            },
        );
        let v = check_truth(&e, &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(v.evidence[3].starts_with("cache hit ratio"), "{v:#?}");
        e.metrics[1].body["cache_hit_ratio"] = json!(0.9);
        assert_eq!(
            check_truth(&e, &MetricsExpectations::default()).outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn no_snapshot_is_not_applicable_with_the_gap() {
        let mut e = evidence(truthful());
        e.metrics.clear();
        e.gaps
            .push("metrics not read: the target has no metrics path".into());
        let v = check_truth(&e, &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(
            v.summary.contains("the target has no metrics path"),
            "{}",
            v.summary
        );
    }

    /// The same truthful figures as [`truthful`], in Prometheus text with labelled tokens.
    fn prometheus(input: u64) -> Value {
        json!(format!(
            "# TYPE llm_errors_total counter\nllm_errors_total 2\n\
             llm_tokens_total{{direction=\"input\",model=\"a\"}} {}\n\
             llm_tokens_total{{direction=\"input\",model=\"b\"}} 10\n\
             llm_tokens_total{{direction=\"output\"}} 20\n\
             cache_hit_ratio 0.5\nagent_steps_count_total 0\n",
            input - 10
        ))
    }

    fn prometheus_evidence(input: u64) -> Evidence {
        let mut e = evidence(prometheus(input));
        e.metrics[0].format = MetricsFormat::Prometheus;
        e
    }

    fn selectors() -> MetricsExpectations {
        MetricsExpectations {
            llm_errors: "llm_errors_total".into(),
            tokens_input: r#"llm_tokens_total{direction="input"}"#.into(),
            tokens_output: r#"llm_tokens_total{direction="output"}"#.into(),
            ..MetricsExpectations::default()
        }
    }

    #[test]
    fn prometheus_series_are_summed_and_compared() {
        let v = check_truth(&prometheus_evidence(40), &selectors());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert!(v.evidence[1].contains("target says 40, ground truth 40"));
        let v = check_truth(&prometheus_evidence(80), &selectors());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.contains("(tokens in)"), "{}", v.summary);
    }

    #[test]
    fn default_pointers_read_prometheus_names_with_or_without_total() {
        let mut e = prometheus_evidence(40);
        e.metrics[0].body = json!(
            "llm_errors_total 2\ntokens_input_total 40\ntokens_output_total 20\n\
             cache_hit_ratio 0.5\n"
        );
        let v = check_truth(&e, &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
    }

    #[test]
    fn a_figure_in_the_wrong_format_is_left_out_and_a_broken_body_fails() {
        let v = check_truth(&evidence(truthful()), &selectors());
        assert!(v.evidence[0].contains("left out"), "{:?}", v.evidence);
        assert!(v.evidence[0].contains("answered JSON"), "{:?}", v.evidence);
        let mut e = prometheus_evidence(40);
        e.metrics[0].body = json!("llm_errors_total two\n");
        let v = check_truth(&e, &selectors());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.evidence[0].contains("not Prometheus text (line 1: `two` is not a number"),
            "{:?}",
            v.evidence
        );
    }
}
