//! The service's metrics: where it serves them, in which format, and which series holds each
//! figure `metrics.truth` reads (LLM errors and what they count, input and output tokens, the
//! cache hit ratio, agent steps).
//!
//! A figure is first proposed by its name (and label values such as `input`/`output`), after
//! common conventions: `llm_tokens_total{direction="input"}`, `*_prompt_tokens_total`, the
//! OpenTelemetry GenAI names (`gen_ai_client_token_usage_sum{gen_ai_token_type="input"}`,
//! failed operations as `gen_ai_client_operation_duration_count{error_type!=""}`). It is then
//! checked against what the probes did: one answered request must raise the token series by
//! the usage the fake LLM reported, and one failed request must raise the error series by one
//! (it counts calls) or by the attempts the fake saw (it counts attempts).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::Found;
use crate::evidence::MetricsFormat;
use crate::prometheus::{self, Sample, Selector};

/// Where services usually serve metrics.
pub const PATHS: &[&str] = &[
    "/metrics",
    "/admin/metrics",
    "/metrics.json",
    "/actuator/prometheus",
];

/// One read of the metrics endpoint, as series (Prometheus) or numeric leaves (JSON).
#[derive(Clone, Debug)]
pub enum Snapshot {
    Prometheus(Vec<Sample>),
    /// JSON pointer → value, for every number in the body.
    Json(BTreeMap<String, f64>),
}

impl Snapshot {
    pub fn format(&self) -> MetricsFormat {
        match self {
            Snapshot::Prometheus(_) => MetricsFormat::Prometheus,
            Snapshot::Json(_) => MetricsFormat::Json,
        }
    }

    /// Series (or numbers) it holds.
    pub fn len(&self) -> usize {
        match self {
            Snapshot::Prometheus(samples) => samples.len(),
            Snapshot::Json(leaves) => leaves.len(),
        }
    }

    /// The figure a selector reads: the sum of the matching series, or the number at a pointer.
    fn value(&self, selector: &str) -> Option<f64> {
        match self {
            Snapshot::Prometheus(samples) => Selector::parse(selector).ok()?.sum(samples),
            Snapshot::Json(leaves) => leaves.get(selector).copied(),
        }
    }

    /// Each series (or number) with its name, label values and the selector that reads it
    /// alone, for matching by name.
    fn series(&self) -> Vec<Series> {
        match self {
            Snapshot::Prometheus(samples) => samples
                .iter()
                .map(|sample| Series {
                    name: sample.name.to_ascii_lowercase(),
                    labels: sample.labels.clone(),
                    json: false,
                })
                .collect(),
            Snapshot::Json(leaves) => leaves
                .keys()
                .map(|pointer| Series {
                    name: pointer.to_ascii_lowercase(),
                    labels: BTreeMap::new(),
                    json: true,
                })
                .collect(),
        }
    }
}

/// The metrics endpoint as found.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub path: String,
    /// How it was found: which paths were tried and what answered.
    pub how: String,
}

/// Reads the first of [`PATHS`] that answers 2xx with metrics in a format faultline reads.
pub async fn find(client: &reqwest::Client, base: &str) -> Result<(Endpoint, Snapshot), String> {
    let mut tried = Vec::new();
    for path in PATHS {
        match read(client, base, path).await {
            Ok((snapshot, content_type)) => {
                let format = match snapshot.format() {
                    MetricsFormat::Prometheus => "Prometheus text",
                    MetricsFormat::Json => "JSON",
                };
                let mut how = format!(
                    "GET {path} answered 200 with {format} ({content_type}), {} series",
                    snapshot.len()
                );
                if !tried.is_empty() {
                    how = format!("{how}; before it: {}", tried.join(", "));
                }
                return Ok((
                    Endpoint {
                        path: path.to_string(),
                        how,
                    },
                    snapshot,
                ));
            }
            Err(why) => tried.push(format!("GET {path}: {why}")),
        }
    }
    Err(tried.join(", "))
}

/// One read of `path`: the snapshot and the content type it came with.
pub async fn read(
    client: &reqwest::Client,
    base: &str,
    path: &str,
) -> Result<(Snapshot, String), String> {
    let response = client
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| super::probe::error_kind(&e))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(status.to_string());
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type")
        .to_string();
    let body = response
        .text()
        .await
        .map_err(|e| super::probe::error_kind(&e))?;
    parse(&body).map(|snapshot| (snapshot, content_type))
}

/// Reads a body as JSON (an object with numbers) or as Prometheus text (at least one sample).
pub fn parse(body: &str) -> Result<Snapshot, String> {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        let mut leaves = BTreeMap::new();
        flatten(&json, "", &mut leaves);
        return if leaves.is_empty() {
            Err("200, but JSON without numbers".into())
        } else {
            Ok(Snapshot::Json(leaves))
        };
    }
    match prometheus::parse_exposition(body) {
        Ok(samples) if !samples.is_empty() => Ok(Snapshot::Prometheus(samples)),
        Ok(_) => Err("200, but no metrics in the body".into()),
        Err(why) => Err(format!("200, but neither JSON nor Prometheus text ({why})")),
    }
}

fn flatten(value: &Value, at: &str, out: &mut BTreeMap<String, f64>) {
    match value {
        Value::Number(n) => {
            if let Some(n) = n.as_f64() {
                out.insert(at.to_string(), n);
            }
        }
        Value::Object(fields) => {
            for (key, child) in fields {
                let key = key.replace('~', "~0").replace('/', "~1");
                flatten(child, &format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

struct Series {
    /// Lowercase name (or pointer).
    name: String,
    labels: BTreeMap<String, String>,
    json: bool,
}

impl Series {
    fn words(&self) -> Vec<String> {
        self.name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The selector for this series with only the labels whose value is one of `values`.
    fn selector(&self, values: &[&str]) -> String {
        if self.json {
            return self.name_as_written();
        }
        let kept: Vec<String> = self
            .labels
            .iter()
            .filter(|(_, v)| values.contains(&v.to_ascii_lowercase().as_str()))
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        if kept.is_empty() {
            self.name.clone()
        } else {
            format!("{}{{{}}}", self.name, kept.join(","))
        }
    }

    fn name_as_written(&self) -> String {
        self.name.clone()
    }

    /// A histogram's bucket or a summary's quantile: never a figure by itself.
    fn is_distribution_part(&self) -> bool {
        self.name.ends_with("_bucket") || self.labels.contains_key("quantile")
    }
}

/// What the probes did, for checking proposals against: tokens the fake LLM reported for one
/// answered request, and attempts it saw for one failed request.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// LLM attempts the fake saw (and failed) for the one failed request.
    pub failed_attempts: Option<usize>,
}

/// Snapshots around the probes: before the answered request, after it, after the failed one.
#[derive(Clone, Debug)]
pub struct Readings {
    pub before: Snapshot,
    pub after_answer: Option<Snapshot>,
    pub after_failure: Option<Snapshot>,
}

/// Whether LLM errors count calls or attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counts {
    Calls,
    Attempts,
}

impl Counts {
    pub fn as_str(self) -> &'static str {
        match self {
            Counts::Calls => "calls",
            Counts::Attempts => "attempts",
        }
    }
}

/// A figure's selector (`Err`: why none was proposed, and what to do).
pub type Figure = Result<Found<String>, String>;

/// The selectors proposed for `metrics.truth`'s figures.
#[derive(Clone, Debug)]
pub struct Proposal {
    pub llm_errors: Figure,
    pub llm_errors_counts: Option<Found<Counts>>,
    pub tokens_input: Figure,
    pub tokens_output: Figure,
    pub cache_hit_ratio: Figure,
    pub agent_steps: Figure,
}

/// Label values that name a token direction.
const INPUT: &[&str] = &["input", "prompt", "in"];
const OUTPUT: &[&str] = &["output", "completion", "out"];

/// Proposes a selector per figure from the series' names, checked against what the probes did.
pub fn propose(readings: &Readings, observed: &Observed) -> Proposal {
    let series = readings.before.series();
    let tokens = |direction: &[&str], other: &[&str], expected: Option<u64>, what: &str| {
        let candidates = by_name(&series, |s| {
            let words = s.words();
            let tokens = words.iter().any(|w| w.starts_with("token"));
            let named = |set: &[&str]| {
                words.iter().any(|w| set.contains(&w.as_str()))
                    || s.labels
                        .values()
                        .any(|v| set.contains(&v.to_ascii_lowercase().as_str()))
            };
            tokens
                && named(direction)
                && !named(other)
                && !s.name.ends_with("_count")
                && !s.is_distribution_part()
        })
        .into_iter()
        .map(|s| s.selector(direction))
        .collect::<Vec<_>>();
        checked_by_delta(
            candidates,
            &readings.before,
            readings.after_answer.as_ref(),
            expected,
            what,
            &series,
        )
    };
    let tokens_input = tokens(INPUT, OUTPUT, observed.input_tokens, "input tokens");
    let tokens_output = tokens(OUTPUT, INPUT, observed.output_tokens, "output tokens");
    let (llm_errors, llm_errors_counts) = llm_errors(&series, readings, observed);
    let cache_hit_ratio = named_only(&series, "cache hit ratio", |words| {
        words.iter().any(|w| w == "cache")
            && words.iter().any(|w| w.starts_with("hit"))
            && words.iter().any(|w| w == "ratio" || w == "rate")
    });
    let agent_steps = named_only(&series, "agent steps", |words| {
        words.iter().any(|w| w == "agent") && words.iter().any(|w| w.starts_with("step"))
    });
    Proposal {
        llm_errors,
        llm_errors_counts,
        tokens_input,
        tokens_output,
        cache_hit_ratio,
        agent_steps,
    }
}

fn by_name(series: &[Series], accept: impl Fn(&Series) -> bool) -> Vec<&Series> {
    series.iter().filter(|s| accept(s)).collect()
}

/// The first candidate whose change over the answered request is `expected`; else the first
/// candidate, as a guess; else a series found by that change alone.
fn checked_by_delta(
    mut candidates: Vec<String>,
    before: &Snapshot,
    after: Option<&Snapshot>,
    expected: Option<u64>,
    what: &str,
    series: &[Series],
) -> Figure {
    candidates.dedup();
    let delta = |selector: &str| -> Option<f64> {
        Some(after?.value(selector)? - before.value(selector).unwrap_or(0.0))
    };
    let (Some(_), Some(expected)) = (after, expected) else {
        return match candidates.first() {
            Some(selector) => Ok(Found::guess(
                selector.clone(),
                "a guess by its name: no answered request to check it against".into(),
            )),
            None => Err(format!(
                "no series is named like {what} (tried names with `token` and input/output, \
                 prompt/completion in the name or a label)"
            )),
        };
    };
    let expected_f = expected as f64;
    if let Some(selector) = candidates
        .iter()
        .find(|s| delta(s).is_some_and(|d| (d - expected_f).abs() < 0.5))
    {
        return Ok(Found::new(
            selector.clone(),
            format!(
                "named like {what}; rose by {expected} with one answered request, as the fake \
                 LLM's usage said"
            ),
        ));
    }
    if let Some(selector) = candidates.first() {
        let rose = delta(selector).map_or("no change".into(), |d| format!("rose by {d}"));
        return Ok(Found::guess(
            selector.clone(),
            format!(
                "a guess by its name: it {rose} with one answered request, where the fake LLM's \
                 usage said {expected}; check what it counts"
            ),
        ));
    }
    // Nothing named like it: a series that rose by exactly the usage, if only one did.
    let matching: Vec<String> = series
        .iter()
        .filter(|s| !s.is_distribution_part())
        .map(|s| s.selector(&[]))
        .filter(|s| delta(s).is_some_and(|d| (d - expected_f).abs() < 0.5))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    match matching.as_slice() {
        [only] if expected > 0 => Ok(Found::guess(
            only.clone(),
            format!(
                "a guess by value alone: no series is named like {what}, but this one rose by \
                 {expected} with one answered request, as the fake LLM's usage said"
            ),
        )),
        _ => Err(format!(
            "no series is named like {what}, and none rose by the {expected} the fake LLM \
             reported for one answered request"
        )),
    }
}

fn named_only(series: &[Series], what: &str, accept: impl Fn(&[String]) -> bool) -> Figure {
    series
        .iter()
        .filter(|s| !s.is_distribution_part() && accept(&s.words()))
        .map(|s| s.selector(&[]))
        .next()
        .map(|selector| {
            Found::guess(
                selector,
                format!("a guess by its name; the probes did not exercise the {what}"),
            )
        })
        .ok_or_else(|| format!("no series is named like the {what}"))
}

/// The LLM errors figure, and whether it counts calls or attempts, from the failed request.
fn llm_errors(
    series: &[Series],
    readings: &Readings,
    observed: &Observed,
) -> (Figure, Option<Found<Counts>>) {
    let llm_words = [
        "llm",
        "openai",
        "anthropic",
        "gen",
        "genai",
        "model",
        "upstream",
        "provider",
        "completion",
        "completions",
        "chat",
        "ai",
        "inference",
    ];
    let mut candidates: Vec<String> = Vec::new();
    for s in series.iter().filter(|s| !s.is_distribution_part()) {
        let words = s.words();
        // OpenTelemetry GenAI: failed operations carry `error.type`.
        if s.name == "gen_ai_client_operation_duration_count" && s.labels.contains_key("error_type")
        {
            candidates.push(format!("{}{{error_type!=\"\"}}", s.name));
            continue;
        }
        let failing = words
            .iter()
            .any(|w| w.starts_with("error") || w.starts_with("fail") || w.starts_with("exception"));
        let llm_named = words.iter().any(|w| llm_words.contains(&w.as_str()));
        let llm_label = s.labels.values().any(|v| {
            let v = v.to_ascii_lowercase();
            llm_words.contains(&v.as_str()) || v.contains("openai") || v.contains("llm")
        });
        if failing && !s.name.ends_with("_sum") && (llm_named || llm_label) {
            let llm_values: Vec<String> = s
                .labels
                .values()
                .filter(|v| {
                    let v = v.to_ascii_lowercase();
                    llm_words.contains(&v.as_str())
                })
                .cloned()
                .collect();
            let values: Vec<&str> = llm_values.iter().map(String::as_str).collect();
            let selector = if llm_named {
                s.selector(&[])
            } else {
                s.selector(&values)
            };
            candidates.push(selector);
        }
    }
    candidates.dedup();
    let Some(selector) = candidates.first().cloned() else {
        return (
            Err(
                "no series is named like LLM errors (tried names with error/fail and \
                 llm/openai/upstream/provider, and OpenTelemetry's \
                 gen_ai_client_operation_duration_count with error_type)"
                    .into(),
            ),
            None,
        );
    };
    let (Some(after), Some(attempts)) = (&readings.after_failure, observed.failed_attempts) else {
        return (
            Ok(Found::guess(
                selector,
                "a guess by its name: no failed request to check it against".into(),
            )),
            None,
        );
    };
    // The failure probe came after the answered one: measure from the snapshot just before it.
    let before = readings.after_answer.as_ref().unwrap_or(&readings.before);
    let rose = after.value(&selector).unwrap_or(0.0) - before.value(&selector).unwrap_or(0.0);
    let rose_text =
        format!("rose by {rose} when one request failed after {attempts} LLM attempt(s)");
    if rose < 0.5 {
        return (
            Ok(Found::guess(
                selector,
                format!(
                    "a guess by its name: it did not change when one request failed after \
                     {attempts} LLM attempt(s); check what it counts"
                ),
            )),
            None,
        );
    }
    let counts = if (rose - 1.0).abs() < 0.5 && attempts > 1 {
        Found::new(Counts::Calls, format!("{rose_text}: it counts calls"))
    } else if (rose - attempts as f64).abs() < 0.5 && attempts > 1 {
        Found::new(Counts::Attempts, format!("{rose_text}: it counts attempts"))
    } else if attempts <= 1 {
        Found::guess(
            Counts::Calls,
            format!(
                "{rose_text}, so calls and attempts look the same here; calls is the usual \
                 instrumentation (a guess)"
            ),
        )
    } else {
        Found::guess(
            Counts::Calls,
            format!("{rose_text}: neither 1 (calls) nor {attempts} (attempts); a guess"),
        )
    };
    (
        Ok(Found::new(
            selector,
            format!("named like LLM errors; {rose_text}"),
        )),
        Some(counts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prom(text: &str) -> Snapshot {
        parse(text).unwrap()
    }

    #[test]
    fn the_format_is_told_by_the_body() {
        assert!(matches!(prom("x_total 1\n"), Snapshot::Prometheus(_)));
        match prom(r#"{"tokens": {"input": 3}, "name": "x"}"#) {
            Snapshot::Json(leaves) => assert_eq!(leaves["/tokens/input"], 3.0),
            other => panic!("{other:?}"),
        }
        assert!(parse("<html>hi</html>").is_err());
    }

    #[test]
    fn otel_genai_names_are_confirmed_by_the_probes() {
        let before = prom(
            "gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\",model=\"m\"} 10\n\
             gen_ai_client_token_usage_sum{gen_ai_token_type=\"output\",model=\"m\"} 20\n\
             gen_ai_client_token_usage_count{gen_ai_token_type=\"input\",model=\"m\"} 1\n\
             assistant_upstream_failures_total 0\n",
        );
        let after_answer = prom(
            "gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\",model=\"m\"} 17\n\
             gen_ai_client_token_usage_sum{gen_ai_token_type=\"output\",model=\"m\"} 31\n\
             gen_ai_client_token_usage_count{gen_ai_token_type=\"input\",model=\"m\"} 2\n\
             assistant_upstream_failures_total 0\n",
        );
        let after_failure = prom("assistant_upstream_failures_total 3\n");
        let proposal = propose(
            &Readings {
                before,
                after_answer: Some(after_answer),
                after_failure: Some(after_failure),
            },
            &Observed {
                input_tokens: Some(7),
                output_tokens: Some(11),
                failed_attempts: Some(3),
            },
        );
        let input = proposal.tokens_input.unwrap();
        assert_eq!(
            input.value,
            "gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\"}"
        );
        assert!(!input.guess, "{}", input.how);
        assert!(!proposal.tokens_output.unwrap().guess);
        assert_eq!(
            proposal.llm_errors.unwrap().value,
            "assistant_upstream_failures_total"
        );
        let counts = proposal.llm_errors_counts.unwrap();
        assert_eq!(counts.value, Counts::Attempts);
        assert!(!counts.guess);
        assert!(proposal.cache_hit_ratio.is_err());
        assert!(proposal.agent_steps.is_err());
    }

    #[test]
    fn a_counter_of_failed_calls_counts_calls_and_a_wrong_figure_stays_a_guess() {
        let text = |errors: u32, input: u32| {
            format!(
                "llm_errors_total {errors}\nllm_tokens_total{{direction=\"input\"}} {input}\n\
                 llm_tokens_total{{direction=\"output\"}} 5\ncache_hit_ratio 0.5\n"
            )
        };
        let proposal = propose(
            &Readings {
                before: prom(&text(0, 0)),
                after_answer: Some(prom(&text(0, 14))),
                after_failure: Some(prom(&text(1, 14))),
            },
            &Observed {
                input_tokens: Some(7),
                output_tokens: Some(5),
                failed_attempts: Some(2),
            },
        );
        assert_eq!(proposal.llm_errors_counts.unwrap().value, Counts::Calls);
        // Doubled input tokens: proposed by name, but named a guess with both figures.
        let input = proposal.tokens_input.unwrap();
        assert!(input.guess);
        assert!(
            input.how.contains("rose by 14") && input.how.contains("said 7"),
            "{}",
            input.how
        );
        assert_eq!(proposal.cache_hit_ratio.unwrap().value, "cache_hit_ratio");
    }

    #[test]
    fn json_metrics_are_read_by_pointer() {
        let before = prom(r#"{"llm_errors_total": 0, "tokens_input": 0, "tokens_output": 0}"#);
        let after = prom(r#"{"llm_errors_total": 0, "tokens_input": 9, "tokens_output": 4}"#);
        let proposal = propose(
            &Readings {
                before,
                after_answer: Some(after),
                after_failure: None,
            },
            &Observed {
                input_tokens: Some(9),
                output_tokens: Some(4),
                failed_attempts: None,
            },
        );
        assert_eq!(proposal.tokens_input.unwrap().value, "/tokens_input");
        assert_eq!(proposal.tokens_output.unwrap().value, "/tokens_output");
        assert!(proposal.llm_errors.unwrap().guess);
    }
}
