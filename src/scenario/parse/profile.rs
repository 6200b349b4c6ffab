//! The service profile's keys: `[logs]`, `[metrics]`, `[traces]` of a `faultline.toml`, and
//! the same keys in a scenario's `[expect.logs|metrics|traces]` (which also hold limits:
//! tolerances, routes). Both go through one validator per key, so an error reads the same in
//! either file, at its file:line:column, naming the table it is in.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::raw::{RawLogs, RawMetrics, RawTraces, Text};
use super::{closest, share, url_path, ScenarioError, Source};
use crate::evidence::MetricsFormat;
use crate::scenario::model::{LogExpectations, MetricsExpectations, TracesExpectations};
use crate::scenario::profile::{
    Counts, ErrorFigure, LogProfile, MetricsProfile, TracesProfile, Written,
};

/// `[logs]` in faultline.toml: the service's log schema and where its logs are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfileLogs {
    pub request_id_field: Option<Text>,
    pub input_tokens_field: Option<Text>,
    pub output_tokens_field: Option<Text>,
    pub level_field: Option<Text>,
    pub message_field: Option<Text>,
    /// Same as `[target] log_file`.
    pub file: Option<Text>,
}

/// `[metrics]` in faultline.toml: where the metrics are, and one selector per figure.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfileMetrics {
    pub path: Option<Text>,
    pub format: Option<Text>,
    pub llm_errors: Option<Spanned<toml::Value>>,
    pub tokens_input: Option<Text>,
    pub tokens_output: Option<Text>,
    pub cache_hit_ratio: Option<Text>,
    pub agent_steps: Option<Text>,
}

/// `[traces]` in faultline.toml: the span attributes the service's traces use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfileTraces {
    pub request_id_attribute: Option<Text>,
    pub llm_span_attribute: Option<Text>,
}

/// Where a service serves its metrics (`[metrics] path`, `format`).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsEndpoint {
    pub path: Written<String>,
    pub format: Option<MetricsFormat>,
}

impl Source<'_> {
    /// `origin:line:column` of a span's start, for settings that remember where they were
    /// written.
    pub(super) fn at<T>(&self, value: &Spanned<T>) -> String {
        let (line, column) = super::line_column(self.text, value.span().start);
        format!("{}:{line}:{column}", self.origin)
    }

    fn written<S, T>(&self, text: &Spanned<S>, value: T) -> Written<T> {
        Written {
            value,
            at: self.at(text),
        }
    }
}

/// A JSON field of a log line: a name, or a dotted path (`usage.in`) into nested objects.
fn log_field(
    text: &Text,
    key: &str,
    table: &str,
    src: &Source,
) -> Result<Written<String>, ScenarioError> {
    let field = text.get_ref().trim();
    if field.is_empty() || field.split('.').any(str::is_empty) {
        return Err(src.error(
            text,
            format!(
                "`{key}` in {table} is \"{}\"; name a JSON field of the service's log lines, e.g. \
                 \"requestId\", or a dotted path into an object, e.g. \"req.id\"",
                text.get_ref()
            ),
        ));
    }
    Ok(src.written(text, field.to_string()))
}

/// A span attribute key (`request.id`): no spaces.
fn attribute(
    text: &Text,
    key: &str,
    table: &str,
    example: &str,
    src: &Source,
) -> Result<Written<String>, ScenarioError> {
    let name = text.get_ref().trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(src.error(
            text,
            format!(
                "`{key}` in {table} is \"{}\"; give a span attribute key without spaces, e.g. \
                 \"{example}\"",
                text.get_ref()
            ),
        ));
    }
    Ok(src.written(text, name.to_string()))
}

/// A metric figure: `""` (the service does not have it), a JSON pointer (`/tokens_input`), or
/// a Prometheus series selector. `offset` is where the figure's text starts in the file, when
/// it is spelled there as written (no escapes), to point inside it.
fn selector(
    figure: &str,
    span: std::ops::Range<usize>,
    key: &str,
    table: &str,
    src: &Source,
) -> Result<(), ScenarioError> {
    if figure.is_empty() || figure.starts_with('/') {
        return Ok(());
    }
    let Err((at, why)) = crate::prometheus::Selector::parse(figure) else {
        return Ok(());
    };
    let offset = src
        .text
        .get(span.clone())
        .and_then(|raw| raw.find(figure))
        .map_or(span.start, |start| span.start + start + at);
    Err(src.error_at(
        offset,
        format!(
            "`{key}` in {table} is \"{figure}\": {why}; a figure is a Prometheus series such as \
             'llm_tokens_total{{direction=\"input\"}}', a JSON pointer such as \"/{key}\", or \"\" \
             when the service does not have it"
        ),
    ))
}

fn figure(
    text: &Text,
    key: &str,
    table: &str,
    src: &Source,
) -> Result<Written<String>, ScenarioError> {
    let value = text.get_ref().trim();
    selector(value, text.span(), key, table, src)?;
    Ok(src.written(text, value.to_string()))
}

/// `llm_errors`: a selector as a string (counting calls), or `{ selector = "...", counts =
/// "calls" | "attempts" }`.
fn error_figure(
    value: &Spanned<toml::Value>,
    table: &str,
    src: &Source,
) -> Result<Written<ErrorFigure>, ScenarioError> {
    let span = value.span();
    // Inner keys have no spans of their own: point at the key's text inside the table.
    let point = |needle: &str| {
        src.text
            .get(span.clone())
            .and_then(|raw| raw.find(needle))
            .map_or(span.start, |at| span.start + at)
    };
    let example = "llm_errors = { selector = \"llm_errors_total\", counts = \"calls\" }";
    let (selector_text, counts) = match value.get_ref() {
        toml::Value::String(text) => (text.trim().to_string(), Counts::Calls),
        toml::Value::Table(fields) => {
            const KEYS: [&str; 2] = ["selector", "counts"];
            if let Some(unknown) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
                let mut message = format!(
                    "unknown key `{unknown}` in `llm_errors` in {table}, expected selector or \
                     counts"
                );
                if let Some(close) = closest(unknown, KEYS.into_iter()) {
                    message.push_str(&format!("; did you mean `{close}`?"));
                }
                return Err(src.error_at(point(unknown), message));
            }
            let Some(toml::Value::String(selector)) = fields.get("selector") else {
                return Err(src.error_at(
                    point("selector"),
                    format!(
                        "`llm_errors` in {table} needs `selector` as a string; write e.g. \
                         {example}"
                    ),
                ));
            };
            let counts = match fields.get("counts") {
                None => Counts::Calls,
                Some(toml::Value::String(c)) if c == "calls" => Counts::Calls,
                Some(toml::Value::String(c)) if c == "attempts" => Counts::Attempts,
                Some(other) => {
                    return Err(src.error_at(
                        point("counts"),
                        format!(
                            "`counts` of `llm_errors` in {table} is {other}; use \"calls\" (LLM \
                             calls that still failed after the SDK's own retries) or \
                             \"attempts\" (every failed upstream attempt, retries included)"
                        ),
                    ))
                }
            };
            (selector.trim().to_string(), counts)
        }
        other => {
            return Err(src.error(
                value,
                format!(
                    "`llm_errors` in {table} is {other}, neither a string nor a table; give a \
                     selector, e.g. llm_errors = \"llm_errors_total\", or a table: {example}"
                ),
            ))
        }
    };
    selector(&selector_text, span, "llm_errors", table, src)?;
    Ok(src.written(
        value,
        ErrorFigure {
            selector: selector_text,
            counts,
        },
    ))
}

/// One optional key through its validator.
fn each<R, T>(
    raw: &Option<R>,
    build: impl FnOnce(&R) -> Result<T, ScenarioError>,
) -> Result<Option<T>, ScenarioError> {
    raw.as_ref().map(build).transpose()
}

#[allow(clippy::too_many_arguments)]
fn log_profile(
    request_id: &Option<Text>,
    input: &Option<Text>,
    output: &Option<Text>,
    level: &Option<Text>,
    message: &Option<Text>,
    table: &str,
    src: &Source,
) -> Result<LogProfile, ScenarioError> {
    let field = |key: &'static str| move |t: &Text| log_field(t, key, table, src);
    Ok(LogProfile {
        request_id_field: each(request_id, field("request_id_field"))?,
        input_tokens_field: each(input, field("input_tokens_field"))?,
        output_tokens_field: each(output, field("output_tokens_field"))?,
        level_field: each(level, field("level_field"))?,
        message_field: each(message, field("message_field"))?,
    })
}

#[allow(clippy::too_many_arguments)]
fn metrics_profile(
    llm_errors: &Option<Spanned<toml::Value>>,
    tokens_input: &Option<Text>,
    tokens_output: &Option<Text>,
    cache_hit_ratio: &Option<Text>,
    agent_steps: &Option<Text>,
    table: &str,
    src: &Source,
) -> Result<MetricsProfile, ScenarioError> {
    let plain = |key: &'static str| move |t: &Text| figure(t, key, table, src);
    Ok(MetricsProfile {
        llm_errors: each(llm_errors, |v| error_figure(v, table, src))?,
        tokens_input: each(tokens_input, plain("tokens_input"))?,
        tokens_output: each(tokens_output, plain("tokens_output"))?,
        cache_hit_ratio: each(cache_hit_ratio, plain("cache_hit_ratio"))?,
        agent_steps: each(agent_steps, plain("agent_steps"))?,
    })
}

fn traces_profile(
    request_id: &Option<Text>,
    llm_span: &Option<Text>,
    table: &str,
    src: &Source,
) -> Result<TracesProfile, ScenarioError> {
    Ok(TracesProfile {
        request_id_attribute: each(request_id, |t| {
            attribute(t, "request_id_attribute", table, "request.id", src)
        })?,
        llm_span_attribute: each(llm_span, |t| {
            attribute(t, "llm_span_attribute", table, "gen_ai.operation.name", src)
        })?,
    })
}

/// faultline.toml's `[logs]`: the log schema, and the log file if it names one.
pub(super) fn config_logs(
    raw: &RawProfileLogs,
    src: &Source,
) -> Result<(LogProfile, Option<String>), ScenarioError> {
    let profile = log_profile(
        &raw.request_id_field,
        &raw.input_tokens_field,
        &raw.output_tokens_field,
        &raw.level_field,
        &raw.message_field,
        "[logs]",
        src,
    )?;
    let file = match &raw.file {
        Some(file) if file.get_ref().trim().is_empty() => {
            return Err(src.error(
                file,
                "`file` in [logs] is empty; give the file the service writes JSON lines to, \
                 e.g. file = \"logs/app.log\", or remove it to read its stdout and stderr",
            ))
        }
        Some(file) => Some(file.get_ref().trim().to_string()),
        None => None,
    };
    Ok((profile, file))
}

/// faultline.toml's `[metrics]`: the figures, and the endpoint if it names one.
pub(super) fn config_metrics(
    raw: &RawProfileMetrics,
    src: &Source,
) -> Result<(MetricsProfile, Option<MetricsEndpoint>), ScenarioError> {
    let profile = metrics_profile(
        &raw.llm_errors,
        &raw.tokens_input,
        &raw.tokens_output,
        &raw.cache_hit_ratio,
        &raw.agent_steps,
        "[metrics]",
        src,
    )?;
    let format = each(&raw.format, |text| {
        metrics_format(text, "`format` in [metrics]", src)
    })?;
    let endpoint = match (&raw.path, format) {
        (Some(path), format) => Some(MetricsEndpoint {
            path: src.written(path, url_path(path, "`path` in [metrics]", src)?),
            format,
        }),
        (None, Some(_)) => {
            let text = raw.format.as_ref().expect("format was given");
            return Err(src.error(
                text,
                "`format` in [metrics] needs `path` (where the service serves its metrics), \
                 e.g. path = \"/metrics\"",
            ));
        }
        (None, None) => None,
    };
    Ok((profile, endpoint))
}

/// faultline.toml's `[traces]`.
pub(super) fn config_traces(
    raw: &RawProfileTraces,
    src: &Source,
) -> Result<TracesProfile, ScenarioError> {
    traces_profile(
        &raw.request_id_attribute,
        &raw.llm_span_attribute,
        "[traces]",
        src,
    )
}

/// `"prometheus"` or `"json"`; `what` names the key in errors.
pub(super) fn metrics_format(
    text: &Text,
    what: &str,
    src: &Source,
) -> Result<MetricsFormat, ScenarioError> {
    match text.get_ref().trim() {
        "json" => Ok(MetricsFormat::Json),
        "prometheus" => Ok(MetricsFormat::Prometheus),
        other => Err(src.error(
            text,
            format!(
                "{what} is \"{other}\"; use \"prometheus\" (the text exposition format) or \
                 \"json\", or leave it out to go by the answer's content type"
            ),
        )),
    }
}

/// A scenario's `[expect.logs]`: its profile keys, and its limits written into `e`.
pub(super) fn expect_logs(
    r: &RawLogs,
    e: &mut LogExpectations,
    src: &Source,
) -> Result<LogProfile, ScenarioError> {
    let what = |field: &str| format!("`{field}` in [expect.logs]");
    if let Some(t) = &r.tokens_route {
        e.tokens_route = url_path(t, &what("tokens_route"), src)?;
    }
    if let Some(v) = &r.tokens_tolerance {
        e.tokens_tolerance = share(v, &what("tokens_tolerance"), "0.02", src)?;
    }
    log_profile(
        &r.request_id_field,
        &r.input_tokens_field,
        &r.output_tokens_field,
        &r.level_field,
        &r.message_field,
        "[expect.logs]",
        src,
    )
}

/// A scenario's `[expect.metrics]`: its figures, and its limits written into `e`.
pub(super) fn expect_metrics(
    r: &RawMetrics,
    e: &mut MetricsExpectations,
    src: &Source,
) -> Result<MetricsProfile, ScenarioError> {
    let what = |field: &str| format!("`{field}` in [expect.metrics]");
    if let Some(t) = &r.tokens_route {
        e.tokens_route = url_path(t, &what("tokens_route"), src)?;
    }
    if let Some(v) = &r.tolerance {
        e.tolerance = share(v, &what("tolerance"), "0.05", src)?;
    }
    metrics_profile(
        &r.llm_errors,
        &r.tokens_input,
        &r.tokens_output,
        &r.cache_hit_ratio,
        &r.agent_steps,
        "[expect.metrics]",
        src,
    )
}

/// A scenario's `[expect.traces]`: its attributes, and its limit written into `e`.
pub(super) fn expect_traces(
    r: &RawTraces,
    e: &mut TracesExpectations,
    src: &Source,
) -> Result<TracesProfile, ScenarioError> {
    if let Some(v) = &r.max_untraced {
        e.max_untraced = share(v, "`max_untraced` in [expect.traces]", "0.0", src)?;
    }
    traces_profile(
        &r.request_id_attribute,
        &r.llm_span_attribute,
        "[expect.traces]",
        src,
    )
}
