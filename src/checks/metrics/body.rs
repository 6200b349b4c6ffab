//! Reading a figure from a metrics snapshot: a JSON pointer into a JSON body, or a series
//! selector into Prometheus text, with the defaults' fallbacks to common names.

use serde_json::Value;

use crate::evidence::{MetricsFormat, MetricsSnapshot};
use crate::prometheus::{Exposition, Selector};

/// Why a figure has no value.
#[derive(Clone, Debug, PartialEq)]
pub enum Unread {
    /// The service does not have it (no such field or family), or it is written for the other
    /// format: a gap in the configuration, never a fail.
    Missing(String),
    /// The body itself is broken: the service's metrics endpoint is.
    Broken(String),
}

/// Other names a default figure is read under, in order, when the body does not have the
/// default: OpenTelemetry GenAI semantic conventions as a Prometheus exporter writes them.
/// `gen_ai.client.operation.duration` counts one SDK call (retries included) with `error.type`
/// when it failed; `gen_ai.client.token.usage` sums tokens by `gen_ai.token.type`.
pub const DEFAULT_FALLBACKS: &[(&str, &str)] = &[
    (
        "/llm_errors_total",
        r#"gen_ai_client_operation_duration_seconds_count{error_type!=""}"#,
    ),
    (
        "/tokens_input",
        r#"gen_ai_client_token_usage_sum{gen_ai_token_type="input"}"#,
    ),
    (
        "/tokens_output",
        r#"gen_ai_client_token_usage_sum{gen_ai_token_type="output"}"#,
    ),
];

/// A metrics snapshot, parsed once, that figures are read from.
pub enum Body<'a> {
    Json(&'a Value),
    /// The exposition, or why the text is not Prometheus exposition.
    Prometheus(Result<Exposition, String>),
}

impl<'a> Body<'a> {
    pub fn of(snapshot: &'a MetricsSnapshot) -> Body<'a> {
        match snapshot.format {
            MetricsFormat::Json => Body::Json(&snapshot.body),
            MetricsFormat::Prometheus => Body::Prometheus(
                snapshot
                    .body
                    .as_str()
                    .ok_or_else(|| "the snapshot holds no text".to_string())
                    .and_then(Exposition::parse),
            ),
        }
    }

    /// The figure a JSON pointer or series selector names. Against Prometheus text, a
    /// one-segment pointer reads the metric of that name (or `name_total`), and a default
    /// figure the body lacks is looked for under [`DEFAULT_FALLBACKS`].
    pub fn read(&self, figure: &str) -> Result<f64, Unread> {
        let pointer = figure.starts_with('/');
        match self {
            Body::Json(body) if pointer => number_at(body, figure)
                .ok_or_else(|| Unread::Missing("not in the metrics body".into())),
            Body::Json(_) => Err(Unread::Missing(
                "a Prometheus series, but the metrics endpoint answered JSON (give a JSON \
                 pointer, or set [metrics] format)"
                    .into(),
            )),
            Body::Prometheus(Err(why)) => Err(Unread::Broken(format!(
                "the body is not Prometheus text ({why})"
            ))),
            Body::Prometheus(Ok(exposition)) => {
                let selector = if pointer {
                    let name = &figure[1..];
                    if name.contains('/') {
                        return Err(Unread::Missing(
                            "a JSON pointer, but the metrics endpoint serves Prometheus text \
                             (give a series such as 'llm_errors_total')"
                                .into(),
                        ));
                    }
                    Selector::parse(name)
                } else {
                    Selector::parse(figure)
                };
                let selector = selector.map_err(|(_, why)| Unread::Missing(why))?;
                let fallback = DEFAULT_FALLBACKS
                    .iter()
                    .filter(|(default, _)| *default == figure)
                    .filter_map(|(_, other)| Selector::parse(other).ok());
                std::iter::once(selector)
                    .chain(fallback)
                    .find_map(|s| exposition.read(&s))
                    .ok_or_else(|| {
                        Unread::Missing(format!("no metric family {} in the metrics body", {
                            let name = figure.trim_start_matches('/');
                            name.split('{').next().unwrap_or(name).to_string()
                        }))
                    })
            }
        }
    }

    /// Whether the body could be read at all (JSON, or Prometheus text that parses).
    pub fn broken(&self) -> Option<&str> {
        match self {
            Body::Prometheus(Err(why)) => Some(why),
            _ => None,
        }
    }

    /// The names a reader could have meant: top-level JSON keys, or Prometheus families.
    pub fn names(&self) -> Vec<String> {
        match self {
            Body::Json(Value::Object(map)) => map.keys().map(|k| format!("/{k}")).collect(),
            Body::Json(_) => Vec::new(),
            Body::Prometheus(Ok(exposition)) => exposition.family_names().into_iter().collect(),
            Body::Prometheus(Err(_)) => Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prometheus(text: &str) -> MetricsSnapshot {
        MetricsSnapshot {
            at_ms: 0.0,
            body: json!(text),
            format: MetricsFormat::Prometheus,
        }
    }

    #[test]
    fn default_figures_fall_back_to_the_opentelemetry_genai_names() {
        let snapshot = prometheus(
            "# TYPE gen_ai_client_operation_duration_seconds histogram\n\
             gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"chat\"} 9\n\
             gen_ai_client_operation_duration_seconds_count{error_type=\"timeout\"} 2\n\
             gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\"} 40\n\
             gen_ai_client_token_usage_sum{gen_ai_token_type=\"output\"} 12\n",
        );
        let body = Body::of(&snapshot);
        assert_eq!(body.read("/llm_errors_total"), Ok(2.0));
        assert_eq!(body.read("/tokens_input"), Ok(40.0));
        assert_eq!(body.read("/tokens_output"), Ok(12.0));
        // A figure of the user's own has no fallback.
        assert!(matches!(
            body.read("/cache_hit_ratio"),
            Err(Unread::Missing(_))
        ));
    }

    #[test]
    fn a_missing_figure_is_told_from_a_broken_body() {
        let snapshot = prometheus("llm_errors_total two\n");
        assert!(matches!(
            Body::of(&snapshot).read("llm_errors_total"),
            Err(Unread::Broken(_))
        ));
        let snapshot = prometheus("other_total 1\n");
        assert_eq!(
            Body::of(&snapshot).read("llm_errors_total"),
            Err(Unread::Missing(
                "no metric family llm_errors_total in the metrics body".into()
            ))
        );
    }
}
