//! Honest metrics (`metrics.truth`): the target's own metrics agree with what the fakes saw.
//!
//! The lesson's table: `llm_errors_total` (provider outages), `tokens_input`/`tokens_output`
//! (cost forecasting), `cache_hit_ratio`, `agent_steps_count` (runaway loops), served from
//! "a /admin/metrics JSON endpoint". A dashboard that reads zero errors during an outage is
//! worse than none, so each figure is compared with ground truth: the fakes' journals and the
//! client's records, up to the moment of the target's last snapshot.
//!
//! Figures are read from a JSON body by JSON pointer (`/llm_errors_total`), or from Prometheus
//! text by series selector (`llm_tokens_total{direction="input"}`, summed over the matching
//! series). A one-segment pointer against Prometheus text reads the metric of that name, or
//! `name_total` (the counter convention), so the defaults work for either format.
//!
//! A target that was running before the run (attached) has counted earlier traffic too: the
//! run then reads its metrics once before the load as well, and counters are compared as the
//! change between the two snapshots against what the fakes saw in between. A ratio cannot be
//! differenced, so the cache hit ratio is left out of that comparison.

use serde_json::Value;

use super::common::{attempt_failed, bounded, gap_about, not_applicable, pending};
use super::sla::format_ratio;
use super::{Outcome, Verdict};
use crate::evidence::{Evidence, FlowKind, MetricsFormat, MetricsSnapshot};
use crate::prometheus::{parse_exposition, Sample, Selector};
use crate::scenario::MetricsExpectations;

/// One figure compared: what the target says and what really happened.
struct Comparison {
    name: &'static str,
    pointer: String,
    /// What the target says, or why it could not be read.
    reported: Result<f64, String>,
    truth: f64,
    /// `true` for 0..1 ratios, compared by absolute difference rather than relative.
    ratio: bool,
}

impl Comparison {
    fn agrees(&self, tolerance: f64) -> bool {
        let Ok(reported) = self.reported else {
            return false;
        };
        let diff = (reported - self.truth).abs();
        if self.ratio {
            diff <= tolerance
        } else {
            // Counts may be off by one: an attempt in flight when the snapshot was read.
            diff <= (tolerance * self.truth).max(1.0)
        }
    }

    fn describe(&self, tolerance: f64) -> String {
        let show = |x: f64| {
            if self.ratio {
                format!("{x:.3}")
            } else {
                format!("{x:.0}")
            }
        };
        match &self.reported {
            Ok(r) => format!(
                "{} ({}): target says {}, ground truth {}{}",
                self.name,
                self.pointer,
                show(*r),
                show(self.truth),
                if self.agrees(tolerance) {
                    ""
                } else {
                    " — disagrees"
                }
            ),
            Err(why) => format!(
                "{} ({}): {why}, ground truth {} (set it in [expect.metrics], or \"\" to leave \
                 it out)",
                self.name,
                self.pointer,
                show(self.truth)
            ),
        }
    }
}

/// A metrics snapshot, parsed once, that figures are read from.
enum Body<'a> {
    Json(&'a Value),
    /// The samples, or why the text is not Prometheus exposition.
    Prometheus(Result<Vec<Sample>, String>),
}

impl<'a> Body<'a> {
    fn of(snapshot: &'a MetricsSnapshot) -> Body<'a> {
        match snapshot.format {
            MetricsFormat::Json => Body::Json(&snapshot.body),
            MetricsFormat::Prometheus => Body::Prometheus(
                snapshot
                    .body
                    .as_str()
                    .ok_or_else(|| "the snapshot holds no text".to_string())
                    .and_then(parse_exposition),
            ),
        }
    }

    /// The figure a JSON pointer or series selector names.
    fn read(&self, figure: &str) -> Result<f64, String> {
        let pointer = figure.starts_with('/');
        match self {
            Body::Json(body) if pointer => {
                number_at(body, figure).ok_or_else(|| "not in the metrics body".to_string())
            }
            Body::Json(_) => Err(
                "a Prometheus series, but the metrics endpoint answered JSON (give a JSON \
                 pointer, or set metrics_format)"
                    .into(),
            ),
            Body::Prometheus(Err(why)) => Err(format!("the body is not Prometheus text ({why})")),
            Body::Prometheus(Ok(samples)) if pointer => {
                let name = &figure[1..];
                if name.contains('/') {
                    return Err(
                        "a JSON pointer, but the metrics endpoint serves Prometheus text (give a \
                         series such as 'llm_errors_total')"
                            .into(),
                    );
                }
                [name.to_string(), format!("{name}_total")]
                    .iter()
                    .find_map(|n| Selector::parse(n).ok()?.sum(samples))
                    .ok_or_else(|| format!("no series {name} or {name}_total in the metrics body"))
            }
            Body::Prometheus(Ok(samples)) => {
                let selector = Selector::parse(figure).map_err(|(_, why)| why)?;
                selector
                    .sum(samples)
                    .ok_or_else(|| "no series in the metrics body matches".to_string())
            }
        }
    }
}

fn number_at(body: &Value, pointer: &str) -> Option<f64> {
    match body.pointer(pointer)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
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
    let body = Body::of(snapshot);
    // An earlier snapshot: the target's counts before the run's traffic (see the module docs).
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
    let llm = || seen.iter().filter(|a| a.fake == "llm");
    let chat = || llm().filter(|a| a.route.starts_with(&expect.tokens_route));

    let mut comparisons = Vec::new();
    let mut compare = |name, pointer: &str, truth: Option<f64>, ratio| {
        if ratio && before.is_some() {
            return;
        }
        if let (false, Some(truth)) = (pointer.is_empty(), truth) {
            let reported = match &before_body {
                // A counter the target did not have yet counts from zero.
                Some(b) => body
                    .read(pointer)
                    .map(|now| now - b.read(pointer).unwrap_or(0.0)),
                None => body.read(pointer),
            };
            comparisons.push(Comparison {
                name,
                pointer: pointer.to_string(),
                reported,
                truth,
                ratio,
            });
        }
    };
    let any_llm = llm().next().is_some();
    compare(
        "LLM errors",
        &expect.llm_errors,
        any_llm.then(|| llm().filter(|a| attempt_failed(a)).count() as f64),
        false,
    );
    let tokens_in: Option<u64> = chat().filter_map(|a| a.input_tokens).reduce(|a, b| a + b);
    let tokens_out: Option<u64> = chat().filter_map(|a| a.output_tokens).reduce(|a, b| a + b);
    compare(
        "tokens in",
        &expect.tokens_input,
        tokens_in.map(|n| n as f64),
        false,
    );
    compare(
        "tokens out",
        &expect.tokens_output,
        tokens_out.map(|n| n as f64),
        false,
    );
    // The cache hit ratio is hits per lookup. The fake Redis saw every lookup that reached it
    // (GET: 200 a hit, 404 a miss), which is the ground truth; without it, the answers' own
    // cache markers are the best there is.
    let lookups: Vec<bool> = evidence
        .attempts
        .iter()
        .filter(|a| a.fake == "redis" && a.route == "GET" && a.at_ms <= snapshot.at_ms)
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
            .filter(|r| r.at_ms <= snapshot.at_ms)
            .filter_map(|r| r.cache_hit)
            .collect()
    } else {
        lookups
    };
    compare(
        "cache hit ratio",
        &expect.cache_hit_ratio,
        (!marked.is_empty())
            .then(|| marked.iter().filter(|h| **h).count() as f64 / marked.len() as f64),
        true,
    );
    // Agent steps are known only for agent requests: their LLM calls plus their tool calls.
    let agents: Vec<_> = evidence
        .records
        .iter()
        .filter(|r| r.kind == FlowKind::Agent)
        .collect();
    let steps = seen
        .iter()
        .filter(|a| {
            (a.fake == "llm" && a.route.starts_with(&expect.tokens_route))
                || !matches!(a.fake.as_str(), "llm" | "redis")
        })
        .filter(|a| agents.iter().any(|r| super::common::belongs(a, r)))
        .count();
    compare(
        "agent steps",
        &expect.agent_steps,
        (!agents.is_empty() && steps > 0).then_some(steps as f64),
        false,
    );

    if comparisons.is_empty() {
        return not_applicable(
            v,
            "the run gave no ground truth for any configured metric (no LLM attempts, usage, \
             cache markers or agent requests), so metrics could not be checked.",
        );
    }
    let wrong = comparisons
        .iter()
        .filter(|c| !c.agrees(expect.tolerance))
        .count();
    v.figure = Some(wrong as f64);
    v.evidence = bounded(
        comparisons
            .iter()
            .map(|c| c.describe(expect.tolerance))
            .collect(),
    );
    if wrong == 0 {
        v.outcome = Outcome::Pass;
        let when = match before {
            Some(b) => format!(
                "change between the snapshots at {} and {}",
                super::sla::format_ms(b.at_ms),
                super::sla::format_ms(snapshot.at_ms)
            ),
            None => format!("snapshot at {}", super::sla::format_ms(snapshot.at_ms)),
        };
        v.summary = format!(
            "all {} metrics compared agree with ground truth ({when}).",
            comparisons.len(),
        );
    } else {
        v.outcome = Outcome::Fail;
        let names: Vec<&str> = comparisons
            .iter()
            .filter(|c| !c.agrees(expect.tolerance))
            .map(|c| c.name)
            .collect();
        v.summary = format!(
            "{wrong} of {} metrics disagree with ground truth ({}): dashboards and alerts built \
             on them would miss what users went through.",
            comparisons.len(),
            names.join(", ")
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::checks::sla::tests::EvidenceBuilder;
    use crate::evidence::{MetricsSnapshot, Phase};
    use serde_json::json;

    const CHAT: &str = "/v1/chat/completions";

    /// Four requests: chat attempts of 10 in / 5 out, one 503 before a success, and an
    /// embeddings attempt that timed out; two cache hits of four markers.
    fn evidence(body: Value) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 4, Some(200), 100.0)
            .build();
        for (i, r) in e.records.clone().iter().enumerate() {
            let mut a = attempt(r.at_ms, "llm", CHAT, &r.nonce, Some(200), 10.0);
            a.input_tokens = Some(10);
            a.output_tokens = Some(5);
            e.attempts.push(a);
            e.records[i].cache_hit = Some(i % 2 == 0);
        }
        e.attempts
            .push(attempt(1.0, "llm", CHAT, "n1", Some(503), 1.0));
        e.attempts
            .push(attempt(2.0, "llm", "/v1/embeddings", "n1", None, 1.0));
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
            "LLM errors (/llm_errors_total): target says 2, ground truth 2"
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

    #[test]
    fn a_missing_metric_fails_unless_left_out() {
        let mut body = truthful();
        body.as_object_mut().unwrap().remove("cache_hit_ratio");
        let v = check_truth(&evidence(body.clone()), &MetricsExpectations::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.evidence[3].contains("not in the metrics body"));
        let expect = MetricsExpectations {
            cache_hit_ratio: String::new(),
            ..MetricsExpectations::default()
        };
        assert_eq!(check_truth(&evidence(body), &expect).outcome, Outcome::Pass);
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
        e.metrics[1].body["llm_errors_total"] = json!(104);
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
    fn a_figure_in_the_wrong_format_or_a_broken_body_says_why() {
        let v = check_truth(&evidence(truthful()), &selectors());
        assert_eq!(v.outcome, Outcome::Fail);
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
