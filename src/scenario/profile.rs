//! The service profile: how a service speaks, as `faultline.toml` describes it once (`[logs]`,
//! `[metrics]`, `[traces]`), and the same keys a scenario may set in `[expect.logs|metrics|
//! traces]`.
//!
//! Precedence, key by key: a key the scenario file sets explicitly wins; then the profile;
//! then the built-in default. So the parser keeps what each file set (an `Option` per key,
//! with where it was written) apart from the resolved values the checks read in
//! [`Expectations`]: a scenario's explicit keys are applied when it is parsed, and
//! `Plan::with_config` applies the profile's under them (see [`ServiceProfile::or`]). Where a
//! key was written travels with it, so a probe that finds it wrong can say which line to fix.

use serde::Serialize;

use super::model::Expectations;

/// A setting and where it was written (`faultline.toml:12:20`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Written<T> {
    pub value: T,
    pub at: String,
}

/// The profile keys set explicitly, by one file or by the scenario and the profile merged.
/// A key left `None` keeps the value underneath (the profile's, else the built-in default).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceProfile {
    pub logs: LogProfile,
    pub metrics: MetricsProfile,
    pub traces: TracesProfile,
    /// The file whose `[api]` describes the service's answers; `None`: the reference
    /// target's API (the defaults).
    pub api_source: Option<String>,
}

/// The service's log schema: JSON field names (a dotted path reaches into objects).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogProfile {
    pub request_id_field: Option<Written<String>>,
    pub input_tokens_field: Option<Written<String>>,
    pub output_tokens_field: Option<Written<String>>,
    pub level_field: Option<Written<String>>,
    pub message_field: Option<Written<String>>,
}

/// The service's metric figures: a selector each (a Prometheus series selector or a JSON
/// pointer; `""` when the service does not have the figure).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricsProfile {
    pub llm_errors: Option<Written<ErrorFigure>>,
    pub tokens_input: Option<Written<String>>,
    pub tokens_output: Option<Written<String>>,
    pub cache_hit_ratio: Option<Written<String>>,
    pub agent_steps: Option<Written<String>>,
}

/// The span attributes the service's traces use.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TracesProfile {
    pub request_id_attribute: Option<Written<String>>,
    pub llm_span_attribute: Option<Written<String>>,
}

/// The LLM-errors figure: where it is and what it counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorFigure {
    pub selector: String,
    pub counts: Counts,
}

/// What an LLM-errors counter counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counts {
    /// LLM calls that still failed after the SDK's own retries: how services instrument the
    /// SDK call (a counter around `client.chat.completions.create`), and the OpenTelemetry
    /// GenAI `gen_ai.client.operation.duration` with `error.type`.
    #[default]
    Calls,
    /// Every failed upstream attempt, retries included (an HTTP-client hook).
    Attempts,
}

impl Counts {
    pub fn name(self) -> &'static str {
        match self {
            Counts::Calls => "calls",
            Counts::Attempts => "attempts",
        }
    }
}

/// `upper` where it has the key, else `lower`.
fn either<T: Clone>(upper: &Option<T>, lower: &Option<T>) -> Option<T> {
    upper.clone().or_else(|| lower.clone())
}

/// Writes `setting` into `slot` when it is set.
fn put<T: Clone>(setting: &Option<Written<T>>, slot: &mut T) {
    if let Some(written) = setting {
        *slot = written.value.clone();
    }
}

impl ServiceProfile {
    /// Every key `self` sets, and `under`'s where `self` leaves one out.
    pub fn or(&self, under: &ServiceProfile) -> ServiceProfile {
        let (l, ul) = (&self.logs, &under.logs);
        let (m, um) = (&self.metrics, &under.metrics);
        let (t, ut) = (&self.traces, &under.traces);
        ServiceProfile {
            logs: LogProfile {
                request_id_field: either(&l.request_id_field, &ul.request_id_field),
                input_tokens_field: either(&l.input_tokens_field, &ul.input_tokens_field),
                output_tokens_field: either(&l.output_tokens_field, &ul.output_tokens_field),
                level_field: either(&l.level_field, &ul.level_field),
                message_field: either(&l.message_field, &ul.message_field),
            },
            metrics: MetricsProfile {
                llm_errors: either(&m.llm_errors, &um.llm_errors),
                tokens_input: either(&m.tokens_input, &um.tokens_input),
                tokens_output: either(&m.tokens_output, &um.tokens_output),
                cache_hit_ratio: either(&m.cache_hit_ratio, &um.cache_hit_ratio),
                agent_steps: either(&m.agent_steps, &um.agent_steps),
            },
            traces: TracesProfile {
                request_id_attribute: either(&t.request_id_attribute, &ut.request_id_attribute),
                llm_span_attribute: either(&t.llm_span_attribute, &ut.llm_span_attribute),
            },
            api_source: either(&self.api_source, &under.api_source),
        }
    }

    /// Writes every key this profile sets into `expect`, and remembers them (with where they
    /// were written) in `expect.profile`.
    pub fn apply(&self, expect: &mut Expectations) {
        let (l, logs) = (&self.logs, &mut expect.logs);
        put(&l.request_id_field, &mut logs.request_id_field);
        put(&l.input_tokens_field, &mut logs.input_tokens_field);
        put(&l.output_tokens_field, &mut logs.output_tokens_field);
        if let Some(field) = &l.level_field {
            logs.level_field = Some(field.value.clone());
        }
        if let Some(field) = &l.message_field {
            logs.message_field = Some(field.value.clone());
        }
        let (m, metrics) = (&self.metrics, &mut expect.metrics);
        if let Some(figure) = &m.llm_errors {
            metrics.llm_errors = figure.value.selector.clone();
            metrics.llm_errors_counts = figure.value.counts;
        }
        put(&m.tokens_input, &mut metrics.tokens_input);
        put(&m.tokens_output, &mut metrics.tokens_output);
        put(&m.cache_hit_ratio, &mut metrics.cache_hit_ratio);
        put(&m.agent_steps, &mut metrics.agent_steps);
        let (t, traces) = (&self.traces, &mut expect.traces);
        put(&t.request_id_attribute, &mut traces.request_id_attribute);
        put(&t.llm_span_attribute, &mut traces.llm_span_attribute);
        expect.profile = self.clone();
    }

    /// Each key set, as `[section] key = value  (where)`, for `faultline validate`.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = |section: &str, key: &str, value: String, at: &str| {
            lines.push(format!("[{section}] {key} = {value}  ({at})"));
        };
        let text = |s: &str| format!("{s:?}");
        for (key, setting) in [
            ("request_id_field", &self.logs.request_id_field),
            ("input_tokens_field", &self.logs.input_tokens_field),
            ("output_tokens_field", &self.logs.output_tokens_field),
            ("level_field", &self.logs.level_field),
            ("message_field", &self.logs.message_field),
        ] {
            if let Some(w) = setting {
                line("logs", key, text(&w.value), &w.at);
            }
        }
        if let Some(w) = &self.metrics.llm_errors {
            let value = format!(
                "{{ selector = {}, counts = \"{}\" }}",
                text(&w.value.selector),
                w.value.counts.name()
            );
            line("metrics", "llm_errors", value, &w.at);
        }
        for (key, setting) in [
            ("tokens_input", &self.metrics.tokens_input),
            ("tokens_output", &self.metrics.tokens_output),
            ("cache_hit_ratio", &self.metrics.cache_hit_ratio),
            ("agent_steps", &self.metrics.agent_steps),
        ] {
            if let Some(w) = setting {
                line("metrics", key, text(&w.value), &w.at);
            }
        }
        for (key, setting) in [
            ("request_id_attribute", &self.traces.request_id_attribute),
            ("llm_span_attribute", &self.traces.llm_span_attribute),
        ] {
            if let Some(w) = setting {
                line("traces", key, text(&w.value), &w.at);
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(value: &str, at: &str) -> Option<Written<String>> {
        Some(Written {
            value: value.into(),
            at: at.into(),
        })
    }

    #[test]
    fn the_scenario_wins_then_the_profile_then_the_default() {
        let scenario = ServiceProfile {
            logs: LogProfile {
                request_id_field: written("rid", "s.toml:3:1"),
                ..LogProfile::default()
            },
            ..ServiceProfile::default()
        };
        let profile = ServiceProfile {
            logs: LogProfile {
                request_id_field: written("req_id", "faultline.toml:2:1"),
                input_tokens_field: written("usage.in", "faultline.toml:3:1"),
                ..LogProfile::default()
            },
            ..ServiceProfile::default()
        };
        let mut expect = Expectations::default();
        scenario.or(&profile).apply(&mut expect);
        assert_eq!(expect.logs.request_id_field, "rid");
        assert_eq!(expect.logs.input_tokens_field, "usage.in");
        // Neither set it: the built-in default.
        assert_eq!(expect.logs.output_tokens_field, "outputTokens");
        assert_eq!(
            expect.profile.logs.request_id_field.as_ref().unwrap().at,
            "s.toml:3:1"
        );
        assert_eq!(expect.profile.lines().len(), 2);
    }

    #[test]
    fn an_error_figure_brings_what_it_counts() {
        let profile = ServiceProfile {
            metrics: MetricsProfile {
                llm_errors: Some(Written {
                    value: ErrorFigure {
                        selector: "llm_failures_total".into(),
                        counts: Counts::Attempts,
                    },
                    at: "faultline.toml:9:14".into(),
                }),
                ..MetricsProfile::default()
            },
            ..ServiceProfile::default()
        };
        let mut expect = Expectations::default();
        assert_eq!(expect.metrics.llm_errors_counts, Counts::Calls);
        profile.apply(&mut expect);
        assert_eq!(expect.metrics.llm_errors, "llm_failures_total");
        assert_eq!(expect.metrics.llm_errors_counts, Counts::Attempts);
        assert_eq!(
            profile.lines(),
            ["[metrics] llm_errors = { selector = \"llm_failures_total\", counts = \"attempts\" }  \
              (faultline.toml:9:14)"]
        );
    }
}
