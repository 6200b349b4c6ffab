//! The metrics endpoint, read after the warm-ups: it must answer in its format, and every
//! figure the user configured must name a metric family (or JSON field) that exists. The same
//! read is the run's first snapshot, so `metrics.truth` judges the load's change and the
//! warm-ups' tokens are not counted.
//!
//! A label mismatch on an existing family is not a gap: client libraries add a labelled
//! series on its first use. A Prometheus family absent after the warm-ups is a gap only when
//! the warm-ups should have made it appear (tokens, after a warm-up that used some); an error
//! counter may first appear with the first error (the Rust `prometheus` crate writes nothing
//! for a family until then), so it is noted and judged at the end if it appears.

use std::time::Duration;

use super::warm_up::WarmUp;
use super::{setting, Finding};
use crate::checks::metrics::{Body, Unread, DEFAULT_FALLBACKS};
use crate::evidence::{MetricsFormat, MetricsSnapshot};
use crate::preflight::{Lack, Need};
use crate::scenario::profile::Written;
use crate::scenario::Plan;

/// Reads the metrics endpoint once, in the configured format or the one its content type
/// says; an error says what came back instead.
pub async fn fetch(base_url: &str, plan: &Plan, at_ms: f64) -> Result<MetricsSnapshot, String> {
    let path = plan
        .target
        .metrics_path
        .as_ref()
        .ok_or("the service has no metrics path")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("{base_url}{path}"))
        .send()
        .await
        .map_err(|e| format!("GET {path} got no answer ({e})"))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let format = plan.target.metrics_format.unwrap_or(
        // Prometheus serves text/plain (0.0.4) or application/openmetrics-text.
        if content_type.starts_with("text/plain") || content_type.contains("openmetrics") {
            MetricsFormat::Prometheus
        } else {
            MetricsFormat::Json
        },
    );
    let text = response
        .text()
        .await
        .map_err(|e| format!("GET {path}: the body could not be read ({e})"))?;
    if !status.is_success() {
        return Err(format!(
            "GET {path} answered {status}: {}",
            crate::checks::sla::excerpt(&text)
        ));
    }
    let body = match format {
        MetricsFormat::Json => serde_json::from_str(&text).map_err(|e| {
            format!(
                "GET {path} answered {content_type:?}, not JSON ({e}): {}; set [metrics] \
                 format = \"prometheus\" if it is Prometheus text",
                crate::checks::sla::excerpt(&text)
            )
        })?,
        MetricsFormat::Prometheus => serde_json::Value::String(text),
    };
    Ok(MetricsSnapshot {
        at_ms,
        body,
        format,
    })
}

/// Findings about the endpoint and the configured figures, and notes about default figures
/// the service does not have (left out, never a fail).
pub fn judge(
    plan: &Plan,
    snapshot: &Result<MetricsSnapshot, String>,
    warm_ups: &[WarmUp],
) -> (Vec<Finding>, Vec<Need>) {
    let Some(path) = &plan.target.metrics_path else {
        return (Vec::new(), Vec::new());
    };
    let endpoint = format!("[metrics] path = \"{path}\"");
    let snapshot = match snapshot {
        Ok(snapshot) => snapshot,
        Err(why) => {
            return (
                vec![Finding {
                    setting: endpoint,
                    saw: why.clone(),
                    fix: "point [metrics] path at where the service serves its metrics, or \
                          remove it (and [target] metrics_path) if it has none"
                        .into(),
                    blocks: vec!["metrics.truth"],
                    narrows: Vec::new(),
                }],
                Vec::new(),
            )
        }
    };
    let body = Body::of(snapshot);
    if let Some(why) = body.broken() {
        return (
            vec![Finding {
                setting: format!("[metrics] format = \"{}\"", snapshot.format.name()),
                saw: format!("GET {path} answered text that is not Prometheus exposition ({why})"),
                fix: "set [metrics] format to what the endpoint serves (\"json\" or \
                      \"prometheus\")"
                    .into(),
                blocks: vec!["metrics.truth"],
                narrows: Vec::new(),
            }],
            Vec::new(),
        );
    }
    let expect = &plan.expect.metrics;
    let written = &plan.expect.profile.metrics;
    let used_tokens = warm_ups
        .iter()
        .any(|w| w.llm_usage(&expect.tokens_route).is_some());
    let errors_at = written.llm_errors.as_ref().map(|w| Written {
        value: w.value.selector.clone(),
        at: w.at.clone(),
    });
    let figures = [
        ("llm_errors", &expect.llm_errors, errors_at.as_ref(), false),
        (
            "tokens_input",
            &expect.tokens_input,
            written.tokens_input.as_ref(),
            true,
        ),
        (
            "tokens_output",
            &expect.tokens_output,
            written.tokens_output.as_ref(),
            true,
        ),
        (
            "cache_hit_ratio",
            &expect.cache_hit_ratio,
            written.cache_hit_ratio.as_ref(),
            false,
        ),
        (
            "agent_steps",
            &expect.agent_steps,
            written.agent_steps.as_ref(),
            false,
        ),
    ];
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut readable = 0;
    let names = body.names();
    for (key, figure, at, tokens) in figures {
        if figure.is_empty() {
            continue;
        }
        let why = match body.read(figure) {
            Ok(_) => {
                readable += 1;
                continue;
            }
            Err(Unread::Missing(why) | Unread::Broken(why)) => why,
        };
        let near = near_names(figure, &names);
        match at {
            // A default the service does not have: left out, and said so.
            None => {
                let also = DEFAULT_FALLBACKS
                    .iter()
                    .filter(|(default, _)| default == figure)
                    .map(|(_, other)| format!(" nor {other}"))
                    .collect::<String>();
                notes.push(Need {
                    checks: vec!["metrics.truth".into()],
                    missing: format!(
                        "the service's metrics have no {key} figure (the default {figure}{also}), \
                         so it is left out"
                    ),
                    fix: format!(
                        "if it has one, set [metrics] {key} = \"...\" in faultline.toml{near}; \
                         \"\" says it has none"
                    ),
                    lack: Lack::Partial,
                });
            }
            // Absent families of counters may appear at their first use.
            Some(_) if snapshot.format == MetricsFormat::Prometheus && !(tokens && used_tokens) => {
                notes.push(Need {
                    checks: vec!["metrics.truth".into()],
                    missing: format!(
                        "[metrics] {key} = {figure:?}: {why} yet; a counter may appear at its \
                         first use, so it is judged at the end if it does, else left out"
                    ),
                    fix: format!("check the name{near}"),
                    lack: Lack::Partial,
                });
            }
            Some(at) => findings.push(Finding {
                setting: setting("metrics", key, figure, Some(at)),
                saw: format!(
                    "GET {path} after the warm-up requests: {why}{}",
                    if tokens && used_tokens {
                        " (the warm-ups used tokens, so a token counter should be there)"
                    } else {
                        ""
                    }
                ),
                fix: format!("name a figure the service has{near}, or \"\" if it has none"),
                blocks: Vec::new(),
                narrows: vec!["metrics.truth"],
            }),
        }
    }
    // Nothing left to compare: the whole check is not applicable, not narrowed.
    if readable == 0 {
        for finding in &mut findings {
            finding.blocks = std::mem::take(&mut finding.narrows);
        }
    }
    (findings, notes)
}

/// `; it has chat_tokens_total, …` with the names nearest to the figure's, for fixes.
fn near_names(figure: &str, names: &[String]) -> String {
    let wanted = figure
        .trim_start_matches('/')
        .split('{')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let words: Vec<&str> = wanted.split('_').filter(|w| w.len() > 2).collect();
    let mut near: Vec<&String> = names
        .iter()
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            words.iter().any(|w| n.contains(w))
        })
        .take(6)
        .collect();
    if near.is_empty() {
        near = names.iter().take(6).collect();
    }
    if near.is_empty() {
        String::new()
    } else {
        let list: Vec<&str> = near.iter().map(|s| s.as_str()).collect();
        format!(
            " (it has {}{})",
            list.join(", "),
            if names.len() > near.len() {
                ", …"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::profile::Written;
    use serde_json::json;

    fn plan() -> Plan {
        let mut plan = crate::scenario::load_scenario("flaky").unwrap();
        plan.target.metrics_path = Some("/metrics".into());
        plan
    }

    fn explicit(plan: &mut Plan, tokens_input: &str) {
        plan.expect.metrics.tokens_input = tokens_input.into();
        plan.expect.profile.metrics.tokens_input = Some(Written {
            value: tokens_input.into(),
            at: "faultline.toml:9:16".into(),
        });
    }

    fn snapshot(text: &str) -> Result<MetricsSnapshot, String> {
        Ok(MetricsSnapshot {
            at_ms: 0.0,
            body: json!(text),
            format: MetricsFormat::Prometheus,
        })
    }

    /// A warm-up that used tokens (or not).
    fn warm_up(tokens: bool) -> WarmUp {
        let mut warm_up = crate::probe::warm_up::tests::warm_up(200, "{}", 200);
        if !tokens {
            warm_up.upstream[0].input_tokens = None;
            warm_up.upstream[0].output_tokens = None;
        }
        warm_up
    }

    const BODY: &str = "# TYPE chat_tokens_total counter\nchat_tokens_total{kind=\"prompt\"} 30\n";

    #[test]
    fn a_configured_figure_the_service_lacks_is_a_finding_naming_what_it_has() {
        let mut plan = plan();
        explicit(&mut plan, r#"llm_tokens_total{direction="input"}"#);
        let (findings, _) = judge(&plan, &snapshot(BODY), &[warm_up(true)]);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let finding = &findings[0];
        assert_eq!(
            finding.setting,
            r#"[metrics] tokens_input = "llm_tokens_total{direction=\"input\"}" (faultline.toml:9:16)"#
        );
        assert!(
            finding.fix.contains("it has chat_tokens_total"),
            "{}",
            finding.fix
        );
        // Nothing else could be read: the whole check is not applicable if the run goes on.
        assert_eq!(finding.blocks, ["metrics.truth"]);
        // A label that matches no series of an existing family yet is not a gap.
        explicit(&mut plan, r#"chat_tokens_total{kind="cached"}"#);
        let (findings, _) = judge(&plan, &snapshot(BODY), &[warm_up(true)]);
        assert_eq!(findings, []);
    }

    #[test]
    fn a_family_that_may_appear_at_its_first_use_or_a_default_is_a_note() {
        // No tokens used in the warm-ups: a token counter need not exist yet.
        let mut plan = plan();
        explicit(&mut plan, "llm_tokens_total");
        let (findings, notes) = judge(&plan, &snapshot(BODY), &[warm_up(false)]);
        assert_eq!(findings, []);
        assert!(
            notes.iter().any(|n| n.missing.contains("first use")),
            "{notes:#?}"
        );
        // Defaults the service does not have are left out, said so.
        assert!(
            notes.iter().any(|n| n
                .missing
                .contains("no cache_hit_ratio figure (the default /cache_hit_ratio)")),
            "{notes:#?}"
        );
        assert!(notes.iter().all(|n| n.lack == Lack::Partial));
    }

    #[test]
    fn an_endpoint_that_does_not_answer_blocks_metrics_truth() {
        let (findings, _) = judge(
            &plan(),
            &Err("GET /metrics answered 404 Not Found: nope".into()),
            &[],
        );
        assert_eq!(findings[0].setting, r#"[metrics] path = "/metrics""#);
        assert_eq!(findings[0].blocks, ["metrics.truth"]);
    }
}
