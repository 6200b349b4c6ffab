//! Scenario text → [`Plan`], with errors that point at the spot to fix.
//!
//! Parsing runs in three steps, each reporting `origin:line:column: message`:
//! 1. TOML syntax ([`toml::de::DeTable::parse`]);
//! 2. shape: serde into the `raw` structs, which deny unknown fields; serde's messages are
//!    reworded to name the field, its table and an example of a good value;
//! 3. meaning (`build`): ranges, durations, fault kinds, placeholders, defaults.
//!
//! The section builders live beside this file, one per section (`target`, `faults`,
//! `expect`, `fakes`), with `diagnostics` and `values` shared by them; `[load]` is built here.
//! [`super::load_scenario`] (in `source`) picks a built-in by name or reads a file. Nothing
//! here panics on any input: every check returns a [`ScenarioError`].

mod api;
mod diagnostics;
pub(crate) use diagnostics::read_text;
mod expect;
mod fakes;
mod faults;
mod load;
mod profile;
mod raw;
mod target;
mod tools;
mod values;

pub use load::{machine_user_limit, MAX_RATE};
pub use profile::MetricsEndpoint;
pub use tools::Tools;

pub use crate::input::{line_column, loopback};
use diagnostics::*;
use expect::*;
use fakes::*;
use faults::*;
use target::*;
pub use target::{is_known_flaw, known_flaws};
use values::*;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::config::Config;
use super::model::{
    ErrorExpectations, Expectations, FakeName, FakeOptions, FaultWindow, Flow, Load, PhaseLimits,
    Plan, TargetSpec,
};
use crate::evidence::Phase;
use crate::fakes::fault::Fault;
use raw::{RawErrors, RawFault, RawLoad, RawPhaseLimits, RawScenario, RawTarget, Text};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not a valid scenario; `line` and `column` (1-based) point at the culprit.
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file exists (or was named) but could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Neither a built-in name nor an existing file.
    #[error(
        "no built-in scenario or file named `{name}`; built-in scenarios: {}; \
         or give the path of a scenario .toml file",
        built_ins.join(", ")
    )]
    Unknown {
        name: String,
        built_ins: Vec<String>,
    },
}

impl ScenarioError {
    /// `(line, column)` of an [`ScenarioError::Invalid`] error, 1-based.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ScenarioError::Invalid { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// Parses scenario text; `origin` names it in errors (a path, or `built-in:outage`).
pub fn parse_scenario(text: &str, origin: &str) -> Result<Plan, ScenarioError> {
    let src = Source { text, origin };
    let table = toml::de::DeTable::parse(text).map_err(|e| src.syntax_error(&e))?;
    let raw = RawScenario::deserialize(toml::de::Deserializer::from(table))
        .map_err(|e| src.shape_error(&e))?;
    build(raw, &src)
}

/// Parses a `faultline.toml`: a user's target, its API and its service profile (`[logs]`,
/// `[metrics]`, `[traces]`). Relative `cwd`, `log_file` and `[logs] file` are taken from
/// `dir`, the file's folder.
pub fn parse_config(text: &str, origin: &str, dir: &Path) -> Result<Config, ScenarioError> {
    let src = Source { text, origin };
    let table = toml::de::DeTable::parse(text).map_err(|e| src.syntax_error(&e))?;
    if let Some((key, _)) = table
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "expect")
    {
        return Err(src.error_at(
            key.span().start,
            "[expect] belongs in a scenario file; faultline.toml describes the service: put its \
             log field names in [logs], its metric selectors in [metrics], its span attributes \
             in [traces] (every scenario then uses them); limits stay in the scenario",
        ));
    }
    let raw = raw::RawConfig::deserialize(toml::de::Deserializer::from(table))
        .map_err(|e| src.shape_error(&e))?;
    let target = match raw.target {
        Some(target) => {
            let mut target = build_target(Some(target), &src)?;
            target.cwd = target.cwd.map(|cwd| dir.join(cwd));
            target.log_file = target.log_file.map(|file| dir.join(file));
            Some(target)
        }
        None => None,
    };
    let api = raw
        .api
        .map(|api| api::build_api(Some(api), &src))
        .transpose()?;
    let mut service = crate::scenario::ServiceProfile::default();
    let mut log_file = None;
    if let Some(logs) = &raw.logs {
        let (fields, file) = profile::config_logs(logs, &src)?;
        service.logs = fields;
        log_file = file.map(|file| dir.join(file));
    }
    let mut metrics = None;
    if let Some(raw_metrics) = &raw.metrics {
        let (figures, endpoint) = profile::config_metrics(raw_metrics, &src)?;
        service.metrics = figures;
        metrics = endpoint;
    }
    if let Some(traces) = &raw.traces {
        service.traces = profile::config_traces(traces, &src)?;
    }
    Ok(Config {
        source: origin.to_string(),
        target,
        api,
        profile: service,
        metrics,
        log_file,
        tools: tools::build_tools(raw.tools, &src)?,
        network_allow: build_network(raw.network, &src)?,
    })
}

/// `[network] allow`: CIDR ranges (`10.0.0.0/8`, `fd00::/8`) a distributed run's workers may
/// send load to besides loopback.
fn build_network(
    raw: Option<raw::RawNetwork>,
    src: &Source,
) -> Result<Vec<ipnet::IpNet>, ScenarioError> {
    let Some(allow) = raw.and_then(|network| network.allow) else {
        return Ok(Vec::new());
    };
    allow
        .get_ref()
        .iter()
        .map(|range| {
            let text = range.get_ref().trim();
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    src.error(
                        range,
                        format!(
                            "[network] allow: \"{}\" is not an address range; write one in CIDR \
                             form, like \"10.0.0.0/8\" or \"fd00::/8\"",
                            crate::scenario::echo(text)
                        ),
                    )
                })
        })
        .collect()
}

/// Reads a `faultline.toml`.
pub fn load_config(path: &Path) -> Result<Config, ScenarioError> {
    let text = diagnostics::read_text(path, &path.display().to_string())?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_config(&text, &path.display().to_string(), dir)
}

/// Turns the raw file into a [`Plan`], checking what serde cannot.
fn build(raw: RawScenario, src: &Source) -> Result<Plan, ScenarioError> {
    if raw.name.get_ref().trim().is_empty() {
        return Err(src.error(&raw.name, "`name` is empty; give the scenario a name"));
    }
    let load = build_load(raw.load, src)?;
    let target = build_target(raw.target, src)?;
    let api = api::build_api(raw.api, src)?;
    let fakes = build_fakes(raw.fakes, src)?;
    let faults = raw
        .faults
        .into_iter()
        .enumerate()
        .map(|(i, fault)| build_fault(fault, i + 1, load.duration, src))
        .collect::<Result<Vec<_>, _>>()?;
    let mut expect = build_expect(raw.expect, src)?;
    if api != super::api::Api::default() {
        expect.profile.api_source = Some(src.origin.to_string());
    }
    Ok(Plan {
        name: raw.name.into_inner(),
        description: raw.description,
        source: src.origin.to_string(),
        seed: raw.seed.unwrap_or(1),
        quick: false,
        load,
        target,
        api,
        fakes,
        faults,
        expect,
    })
}

fn build_load(raw: RawLoad, src: &Source) -> Result<Load, ScenarioError> {
    let duration = positive_duration(&raw.duration, "`duration` in [load]", src)?;
    let (executor, users) = load::executor(&raw, duration, src)?;
    let think_time = optional_duration(raw.think_time, "`think_time` in [load]", src)?
        .unwrap_or(Duration::from_millis(250));
    let request_timeout = match &raw.request_timeout {
        Some(text) => positive_duration(text, "`request_timeout` in [load]", src)?,
        None => Duration::from_secs(30),
    };
    let quick_scale = match &raw.quick_scale {
        Some(scale) => {
            let value = *scale.get_ref();
            // Written so NaN fails too.
            if !(value > 0.0 && value <= 1.0) {
                return Err(src.error(
                    scale,
                    format!(
                        "`quick_scale` in [load] is {value}; it must be more than 0 and at \
                         most 1, e.g. quick_scale = 0.25"
                    ),
                ));
            }
            value
        }
        None => 0.25,
    };

    let flows_span = raw.flows.span();
    let raw_flows = raw.flows.into_inner();
    if raw_flows.is_empty() {
        return Err(src.error_at(
            flows_span.start,
            "`flows` in [load] is empty; add at least one [[load.flows]] table with name and \
             messages",
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut flows = Vec::with_capacity(raw_flows.len());
    for flow in raw_flows {
        let name = flow.name.get_ref().trim();
        if name.is_empty() {
            return Err(src.error(
                &flow.name,
                "`name` in [[load.flows]] is empty; give the flow a name, e.g. name = \"ask\"",
            ));
        }
        if let Some(first) = seen.get(name) {
            let (line, _) = line_column(src.text, *first);
            return Err(src.error(
                &flow.name,
                format!(
                    "flow name `{name}` in [[load.flows]] is already used on line {line}; \
                     give each flow its own name"
                ),
            ));
        }
        seen.insert(name.to_string(), flow.name.span().start);
        let weight = match &flow.weight {
            Some(w) => u32::try_from(*w.get_ref())
                .ok()
                .filter(|w| *w >= 1)
                .ok_or_else(|| {
                    src.error(
                        w,
                        format!(
                            "`weight` of flow `{name}` is {}; it must be at least 1 (and fit \
                             in 32 bits), e.g. weight = 3",
                            w.get_ref(),
                        ),
                    )
                })?,
            None => 1,
        };
        if flow.messages.get_ref().is_empty() {
            return Err(src.error(
                &flow.messages,
                format!(
                    "`messages` of flow `{name}` is empty; give at least one question, e.g. \
                     messages = [\"How do I reset my password?\"]"
                ),
            ));
        }
        let mut messages = Vec::with_capacity(flow.messages.get_ref().len());
        for message in flow.messages.get_ref() {
            if message.get_ref().trim().is_empty() {
                return Err(src.error(
                    message,
                    format!("a message of flow `{name}` is empty; write the question a user asks"),
                ));
            }
            messages.push(message.get_ref().clone());
        }
        let (kind, request) = api::flow_request(&flow, name, src)?;
        flows.push(Flow {
            name: name.to_string(),
            weight,
            messages,
            kind,
            request,
        });
    }

    let mut secrets = Vec::with_capacity(raw.secrets.len());
    for secret in &raw.secrets {
        let text = secret.get_ref();
        let in_a_message = flows
            .iter()
            .any(|f| f.messages.iter().any(|m| m.contains(text.as_str())));
        if text.trim().len() < 6 || !in_a_message {
            return Err(src.error(
                secret,
                format!(
                    "secret \"{text}\" in [load] secrets must be at least 6 characters and \
                     appear in a flow's messages, where users type it; plant it in a message"
                ),
            ));
        }
        secrets.push(text.clone());
    }

    Ok(Load {
        executor,
        users,
        duration,
        think_time,
        request_timeout,
        quick_scale,
        flows,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column: the `=` at byte 10 is column 4.
        assert_eq!(line_column(text, 10), (2, 4));
        // Past the end and inside a character are clamped, not a panic.
        assert_eq!(line_column(text, 1000), (3, 1));
        assert_eq!(line_column(text, 8), (2, 2));
    }

    #[test]
    fn closest_suggests_near_typos_only() {
        let fields = ["users", "duration", "think_time"];
        assert_eq!(closest("usres", fields.iter().copied()), Some("users"));
        assert_eq!(closest("durtion", fields.iter().copied()), Some("duration"));
        assert_eq!(closest("colour", fields.iter().copied()), None);
    }

    #[test]
    fn plain_types_speaks_toml() {
        assert_eq!(
            plain_types("invalid type: string \"x\", expected struct RawLoad"),
            "invalid type: string \"x\", expected a table"
        );
        assert_eq!(
            plain_types("invalid type: sequence, expected f64"),
            "invalid type: array, expected a number"
        );
    }

    #[test]
    fn error_keys_reads_the_path_toml_attached() {
        let text = "name = \"x\"\n[load]\nusers = \"four\"\n";
        let table = toml::de::DeTable::parse(text).unwrap();
        let err = RawScenario::deserialize(toml::de::Deserializer::from(table)).unwrap_err();
        assert_eq!(error_keys(&err), vec!["load", "users"]);
    }

    #[test]
    fn braces_that_are_not_placeholders_are_left_alone() {
        let text = "v = '{\"a\": 1} {} {llm}/v1'";
        let src = Source { text, origin: "t" };
        let value = Spanned::new(4..text.len(), "{\"a\": 1} {} {llm}/v1".to_string());
        assert!(check_placeholders("V", &value, &src).is_ok());
    }

    #[test]
    fn an_unknown_placeholder_is_pointed_at_inside_the_value() {
        let text = "v = \"{llm}/{tool.wether}\"";
        let src = Source { text, origin: "t" };
        let value = Spanned::new(4..text.len(), "{llm}/{tool.wether}".to_string());
        let err = check_placeholders("V", &value, &src).unwrap_err();
        assert_eq!(err.position(), Some((1, 12)));
        assert!(err.to_string().contains("did you mean `{tool.weather}`"));
    }
}
