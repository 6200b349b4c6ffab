//! Scenario text → [`Plan`], with errors that point at the spot to fix.
//!
//! Parsing runs in three steps, each reporting `origin:line:column: message`:
//! 1. TOML syntax ([`toml::de::DeTable::parse`]);
//! 2. shape: serde into the `raw` structs, which deny unknown fields; serde's messages are
//!    reworded to name the field, its table and an example of a good value;
//! 3. meaning (`build`): ranges, durations, fault kinds, placeholders, defaults.
//!
//! [`load_scenario`] picks a built-in by name or reads a file. Nothing here panics on any input:
//! every check returns a [`ScenarioError`].

mod api;
mod profile;
mod raw;
mod tools;

pub use profile::MetricsEndpoint;
pub use tools::Tools;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::catalog;
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
    })
}

/// Reads a `faultline.toml`.
pub fn load_config(path: &Path) -> Result<Config, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_config(&text, &path.display().to_string(), dir)
}

/// Loads a scenario by built-in name (see [`catalog::BUILT_IN`]) or by path.
///
/// A built-in name wins over a file of the same name in the working directory; write
/// `./outage` to mean the file.
pub fn load_scenario(name_or_path: &str) -> Result<Plan, ScenarioError> {
    if let Some(text) = catalog::get(name_or_path) {
        return parse_scenario(text, &format!("built-in:{name_or_path}"));
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(ScenarioError::Unknown {
            name: name_or_path.to_string(),
            built_ins: catalog::names().into_iter().map(String::from).collect(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: name_or_path.to_string(),
        source,
    })?;
    parse_scenario(&text, name_or_path)
}

/// The text being parsed and its name, to turn byte spans into `origin:line:column` errors.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    fn error_at(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_column(self.text, offset);
        ScenarioError::Invalid {
            origin: self.origin.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    fn error<T>(&self, at: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.error_at(at.span().start, message)
    }

    fn syntax_error(&self, e: &toml::de::Error) -> ScenarioError {
        let span = e.span().unwrap_or(0..0);
        let message = match e.message() {
            "duplicate key" => format!(
                "duplicate key `{}`: a key or table may appear only once",
                self.snippet(&span)
            ),
            other => format!("invalid TOML: {other}"),
        };
        self.error_at(span.start, message)
    }

    /// Rewords a serde error: names the field and its table, and says what a good value is.
    fn shape_error(&self, e: &toml::de::Error) -> ScenarioError {
        let span = e.span().unwrap_or(0..0);
        let keys = error_keys(e);
        let message = e.message();
        let text = if let Some(rest) = message.strip_prefix("unknown field `") {
            // serde: "unknown field `usres`, expected one of `users`, `duration`, ..."
            let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = backticked(expected);
            let mut text = format!(
                "unknown field `{field}` {}, expected one of {}",
                table_name(&keys),
                expected.join(", ")
            );
            if let Some(close) = closest(field, expected.iter().map(String::as_str)) {
                text.push_str(&format!("; did you mean `{close}`?"));
            }
            text
        } else if let Some(rest) = message.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            let mut text = format!("missing field `{field}` {}", table_name(&keys));
            if let Some(hint) = example(&keys, field) {
                text.push_str(&format!("; add it, e.g. {hint}"));
            }
            text
        } else {
            // A wrong type or value: the keys end with the field itself.
            let (leaf, table) = match keys.split_last() {
                Some((leaf, table)) => (leaf.as_str(), table),
                None => ("", &keys[..]),
            };
            let mut text = if leaf.is_empty() {
                plain_types(message)
            } else {
                format!("`{leaf}` {}: {}", table_name(table), plain_types(message))
            };
            if let Some(hint) = example(table, leaf) {
                text.push_str(&format!("; write e.g. {hint}"));
            }
            text
        };
        self.error_at(span.start, text)
    }

    fn snippet(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }
}

/// 1-based line and column (in characters) of a byte offset; clamps offsets past the end.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The key path toml attached to a serde error (`load.flows.weight`), split into keys.
///
/// toml keeps the path private but prints it as a last `in `…`` line when the error has no
/// source text, which is the case for a `Deserializer` built from a parsed table.
fn error_keys(e: &toml::de::Error) -> Vec<String> {
    let shown = e.to_string();
    shown
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("in `"))
        .and_then(|line| line.strip_suffix('`'))
        .filter(|_| shown.lines().count() > 1)
        .map(|path| path.split('.').map(String::from).collect())
        .unwrap_or_default()
}

/// Tables that are arrays of tables in the file format, shown as `[[...]]`.
const ARRAY_TABLES: &[&str] = &["load.flows", "faults"];

/// `in [load]`, `in [[load.flows]]`, `at the top level`.
fn table_name(keys: &[String]) -> String {
    if keys.is_empty() {
        return "at the top level".into();
    }
    let path = keys.join(".");
    if ARRAY_TABLES.contains(&path.as_str()) {
        format!("in [[{path}]]")
    } else {
        format!("in [{path}]")
    }
}

/// The `…`-quoted words of a serde "expected" list.
fn backticked(list: &str) -> Vec<String> {
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// Serde names Rust types ("expected usize", "expected struct RawLoad"); say it in TOML words.
fn plain_types(message: &str) -> String {
    let mut text = message.to_string();
    for (rust, toml) in [
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: table"),
    ] {
        text = text.replace(rust, toml);
    }
    if let Some(at) = text.find("expected struct Raw") {
        text.replace_range(at.., "expected a table");
    }
    text
}

/// An example of a good value for field `leaf` of table `table`, for error messages.
fn example(table: &[String], leaf: &str) -> Option<&'static str> {
    let table: Vec<&str> = table.iter().map(String::as_str).collect();
    match (table.as_slice(), leaf) {
        (["target", "env"], _) => {
            return Some(r#"LLM_TIMEOUT_MS = "4000" (env values are strings)"#)
        }
        (["load", "flows"], "name") => return Some(r#"name = "ask" (a string)"#),
        _ => {}
    }
    Some(match leaf {
        "name" => r#"name = "outage" (a string)"#,
        "description" => r#"description = "what the scenario does""#,
        "seed" => "seed = 7",
        "load" => r#"[load] with users, duration and [[load.flows]]"#,
        "users" => "users = 4 (at least 1)",
        "weight" => "weight = 3 (at least 1)",
        "duration" => r#"duration = "60s""#,
        "think_time" => r#"think_time = "250ms""#,
        "request_timeout" => r#"request_timeout = "30s""#,
        "ready_timeout" => r#"ready_timeout = "20s""#,
        "start" => r#"start = "20s""#,
        "end" => r#"end = "30s""#,
        "retry_after" => r#"retry_after = "1s""#,
        "delay" => r#"delay = "2s""#,
        "p95" => r#"p95 = "1500ms""#,
        "within" => r#"within = "15s""#,
        "quick_scale" => "quick_scale = 0.25 (more than 0, at most 1)",
        "rate" => "rate = 0.5 (more than 0, at most 1)",
        "error_rate" => "error_rate = 0.05 (from 0 to 1)",
        "flows" => {
            r#"a [[load.flows]] table with name = "ask" and messages = ["How do I reset my password?"]"#
        }
        "messages" => r#"messages = ["How do I reset my password?"]"#,
        "command" => r#"command = ["python", "app.py"]"#,
        "flaws" => r#"flaws = ["no-retry"]"#,
        "env" => r#"env = { LLM_TIMEOUT_MS = "4000" }"#,
        "ready_path" => r#"ready_path = "/healthz""#,
        "metrics_path" => r#"metrics_path = "/admin/metrics""#,
        "metrics_format" => r#"metrics_format = "prometheus" (or "json")"#,
        "route" => r#"route = "/v1/chat/completions""#,
        "fake" => r#"fake = "llm" (one of llm, weather, redis)"#,
        "kind" => r#"kind = "status" (one of refuse, status, delay, hang)"#,
        "code" => "code = 503 (an HTTP status, 100 to 599)",
        "allowed_statuses" => "allowed_statuses = [502, 503, 504]",
        "target" => r#"[target] with env = { ... }"#,
        "faults" => r#"[[faults]] tables with fake, start, end and kind"#,
        "expect" => "[expect.baseline] with p95 and error_rate",
        "baseline" | "fault" | "recovery" => {
            r#"p95 = "1500ms" and error_rate = 0.05 in that table"#
        }
        "errors" => "[expect.errors] with allowed_statuses and within",
        _ => return None,
    })
}

/// The candidate nearest to `word` by edit distance, when it is near enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().max(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Durations above this are refused: no run lasts a year, and the cap keeps later arithmetic
/// on them (quick scaling, phase maths in f64) far from overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The reference target's `--flaw` names, as its command line spells them.
pub fn known_flaws() -> Vec<String> {
    use clap::ValueEnum;
    crate::flaws::Flaw::value_variants()
        .iter()
        .filter_map(|flaw| flaw.to_possible_value())
        .map(|value| value.get_name().to_string())
        .collect()
}

pub fn is_known_flaw(name: &str) -> bool {
    use clap::ValueEnum;
    crate::flaws::Flaw::from_str(name, false).is_ok()
}

/// Placeholders a target env value may use; the runner replaces them with the fakes' addresses
/// (`{port}`: the port faultline chose for the target to listen on).
pub const PLACEHOLDERS: &[&str] = &[
    "llm",
    "llm_key",
    "tool.weather",
    "tool.tickets",
    "redis",
    "otlp",
    "port",
];

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
    let users = *raw.users.get_ref();
    let users = usize::try_from(users)
        .ok()
        .filter(|u| *u >= 1)
        .ok_or_else(|| {
            src.error(
                &raw.users,
                format!("`users` in [load] is {users}; it must be at least 1, e.g. users = 4"),
            )
        })?;
    let duration = positive_duration(&raw.duration, "`duration` in [load]", src)?;
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
        users,
        duration,
        think_time,
        request_timeout,
        quick_scale,
        flows,
        secrets,
    })
}

fn build_target(raw: Option<RawTarget>, src: &Source) -> Result<TargetSpec, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(TargetSpec::reference(BTreeMap::new(), Vec::new()));
    };

    let command =
        match &raw.command {
            Some(command) => {
                let words = command.get_ref();
                match words.first() {
                    None => {
                        return Err(src.error(
                            command,
                            "`command` in [target] is empty; give the program and its arguments, \
                         e.g. command = [\"python\", \"app.py\"], or remove it to test the \
                         reference target",
                        ))
                    }
                    Some(program) if program.get_ref().trim().is_empty() => return Err(src.error(
                        program,
                        "the program in `command` in [target] is empty; name the program to run",
                    )),
                    Some(_) => Some(words.iter().map(|w| w.get_ref().clone()).collect()),
                }
            }
            None => None,
        };

    let url = match &raw.url {
        Some(url) if command.is_some() => {
            return Err(src.error(
                url,
                "`url` and `command` in [target] are exclusive: `command` starts the target, \
                 `url` attaches to one already running; keep one",
            ))
        }
        Some(url) => Some(loopback_url(url, src)?),
        None => None,
    };
    let cwd = match &raw.cwd {
        Some(cwd) if command.is_none() => {
            return Err(src.error(
                cwd,
                "`cwd` in [target] is the working directory of `command`, and there is no \
                 `command`; remove `cwd` or add `command`",
            ))
        }
        Some(cwd) => Some(std::path::PathBuf::from(cwd.get_ref())),
        None => None,
    };
    let log_file = raw
        .log_file
        .as_ref()
        .map(|f| std::path::PathBuf::from(f.get_ref()));

    let mut flaws = Vec::new();
    if let Some(given) = &raw.flaws {
        if command.is_some() || url.is_some() {
            return Err(src.error(
                given,
                "`flaws` in [target] switches flaws of the reference target, but `command` runs \
                 another program; remove `flaws`, or remove `command` to test the reference target",
            ));
        }
        for flaw in given.get_ref() {
            if !is_known_flaw(flaw.get_ref()) {
                return Err(src.error(
                    flaw,
                    format!(
                        "unknown flaw `{}` in `flaws` in [target]; known flaws: {}",
                        flaw.get_ref(),
                        known_flaws().join(", ")
                    ),
                ));
            }
            flaws.push(flaw.get_ref().clone());
        }
    }

    let mut env = BTreeMap::new();
    for (key, value) in &raw.env {
        let name = key.get_ref();
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(src.error(
                key,
                format!(
                    "env variable name `{name}` in [target] is not valid; use a name without \
                     `=`, e.g. LLM_TIMEOUT_MS"
                ),
            ));
        }
        if value.get_ref().contains('\0') {
            return Err(src.error(
                value,
                format!("env `{name}` in [target] contains a NUL character; remove it"),
            ));
        }
        check_placeholders(name, value, src)?;
        env.insert(name.clone(), value.get_ref().clone());
    }

    let ready_path = match &raw.ready_path {
        Some(path) => url_path(path, "`ready_path` in [target]", src)?,
        None => "/healthz".to_string(),
    };
    let ready_timeout = match &raw.ready_timeout {
        Some(text) => positive_duration(text, "`ready_timeout` in [target]", src)?,
        None => Duration::from_secs(20),
    };
    let metrics_path = match &raw.metrics_path {
        Some(path) => Some(url_path(path, "`metrics_path` in [target]", src)?),
        // The reference target serves its metrics there; another program has none unless told.
        None if command.is_none() && url.is_none() => Some("/admin/metrics".to_string()),
        None => None,
    };

    let metrics_format = raw
        .metrics_format
        .as_ref()
        .map(|text| profile::metrics_format(text, "`metrics_format` in [target]", src))
        .transpose()?;
    if let (Some(text), None) = (&raw.metrics_format, &metrics_path) {
        return Err(src.error(
            text,
            "`metrics_format` in [target] needs `metrics_path` (where the metrics are served)",
        ));
    }

    let mut target = TargetSpec::reference(env, flaws);
    target.command = command;
    target.url = url;
    target.cwd = cwd;
    target.log_file = log_file;
    target.ready_path = ready_path;
    target.ready_timeout = ready_timeout;
    target.metrics_path = metrics_path;
    target.metrics_format = metrics_format;
    Ok(target)
}

/// Every `{name}` in an env value must be one the runner knows how to fill in. Braces around
/// anything other than a plain name (JSON, say) are left alone.
fn check_placeholders(key: &str, value: &Text, src: &Source) -> Result<(), ScenarioError> {
    let text = value.get_ref();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(after.len());
        let name = &after[..len];
        if !name.is_empty() && after[len..].starts_with('}') && !PLACEHOLDERS.contains(&name) {
            let placeholder = format!("{{{name}}}");
            // Point at the placeholder itself when the source spells it the same way.
            let span = value.span();
            let offset = src
                .text
                .get(span.clone())
                .and_then(|raw| raw.find(&placeholder))
                .map_or(span.start, |at| span.start + at);
            let known: Vec<String> = PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
            let mut message = format!(
                "unknown placeholder `{placeholder}` in env `{key}` in [target]; known \
                 placeholders: {}",
                known.join(", ")
            );
            if let Some(close) = closest(name, PLACEHOLDERS.iter().copied()) {
                message.push_str(&format!("; did you mean `{{{close}}}`?"));
            }
            return Err(src.error_at(offset, message));
        }
        rest = after;
    }
    Ok(())
}

fn build_fault(
    raw: RawFault,
    number: usize,
    run_time: Duration,
    src: &Source,
) -> Result<FaultWindow, ScenarioError> {
    let table = format!("in [[faults]] #{number}");

    let fake = FakeName::ALL
        .into_iter()
        .find(|f| f.as_str() == raw.fake.get_ref())
        .ok_or_else(|| {
            let names: Vec<&str> = FakeName::ALL.iter().map(|f| f.as_str()).collect();
            src.error(
                &raw.fake,
                format!(
                    "unknown fake `{}` {table}; expected one of {}",
                    raw.fake.get_ref(),
                    names.join(", ")
                ),
            )
        })?;

    let route = match &raw.route {
        // Redis has commands where HTTP fakes have routes: `route = "GET"`.
        Some(route) if fake == FakeName::Redis => Some(redis_command(route, &table, src)?),
        Some(route) => Some(url_path(route, &format!("`route` {table}"), src)?),
        None => None,
    };

    let start = duration(&raw.start, &format!("`start` {table}"), src)?;
    let end = duration(&raw.end, &format!("`end` {table}"), src)?;
    if end <= start {
        return Err(src.error(
            &raw.end,
            format!(
                "`end` {table} ({}) must be after `start` ({}); the window would be empty",
                raw.end.get_ref(),
                raw.start.get_ref()
            ),
        ));
    }
    if end > run_time {
        return Err(src.error(
            &raw.end,
            format!(
                "`end` {table} ({}) is after the run ends (load duration {}); end the fault \
                 earlier or make [load] duration longer",
                raw.end.get_ref(),
                humantime::format_duration(run_time)
            ),
        ));
    }

    let rate = match &raw.rate {
        Some(rate) => {
            let value = *rate.get_ref();
            if !(value > 0.0 && value <= 1.0) {
                return Err(src.error(
                    rate,
                    format!(
                        "`rate` {table} is {value}; it must be more than 0 and at most 1, \
                         e.g. rate = 0.5"
                    ),
                ));
            }
            value
        }
        None => 1.0,
    };

    let first_attempts = match &raw.first_attempts {
        Some(n) => Some(whole_number(
            n,
            &format!("`first_attempts` {table}"),
            1,
            1000,
            "first_attempts = 1",
            src,
        )? as u32),
        None => None,
    };

    let kind = raw.kind.get_ref().as_str();
    let Some((required, optional)) = kind_settings(kind) else {
        let mut message = format!(
            "unknown fault kind `{kind}` {table}; expected one of {}",
            Fault::KINDS.join(", ")
        );
        if let Some(close) = closest(kind, Fault::KINDS.iter().copied()) {
            message.push_str(&format!("; did you mean `{close}`?"));
        }
        return Err(src.error(&raw.kind, message));
    };
    // Each kind reads its own settings; any other one given is a mistake worth reporting.
    for (field, at) in raw.kind_fields() {
        if !required.contains(&field) && !optional.contains(&field) {
            let takes: Vec<String> = required
                .iter()
                .chain(optional)
                .map(|f| format!("`{f}`"))
                .collect();
            let takes = if takes.is_empty() {
                "no settings".to_string()
            } else {
                takes.join(", ")
            };
            return Err(src.error_at(
                at,
                format!(
                    "`{field}` {table} is not a setting of kind = \"{kind}\", which takes \
                     {takes}; remove `{field}` or change `kind`"
                ),
            ));
        }
    }
    let given: Vec<&str> = raw.kind_fields().iter().map(|(field, _)| *field).collect();
    if let Some(missing) = required.iter().find(|field| !given.contains(field)) {
        return Err(src.error(
            &raw.kind,
            format!(
                "kind = \"{kind}\" {table} needs `{missing}`; add e.g. {}",
                example_setting(missing)
            ),
        ));
    }
    if kind == "refuse" {
        // A refuse closes the fake's whole port whenever it is on (see fakes::fault), so a
        // route, a rate or a per-request count would be silently ignored: say so instead.
        let scoped = [
            ("route", raw.route.as_ref().map(|r| r.span())),
            ("rate", raw.rate.as_ref().map(|r| r.span())),
            (
                "first_attempts",
                raw.first_attempts.as_ref().map(|r| r.span()),
            ),
        ];
        for (field, span) in scoped {
            if let Some(span) = span {
                return Err(src.error_at(
                    span.start,
                    format!(
                        "`{field}` {table} does not apply to kind = \"refuse\", which closes \
                         the fake's port for every route and request; remove `{field}`"
                    ),
                ));
            }
        }
    }

    let fault = build_fault_kind(kind, &raw, &table, src)?;
    if !fault.supported_by().contains(&fake.category()) {
        return Err(src.error(
            &raw.kind,
            format!(
                "kind = \"{kind}\" {table} cannot be acted out by fake `{}`; it works on: {}",
                fake.as_str(),
                fault.supported_by().join(", ")
            ),
        ));
    }

    Ok(FaultWindow {
        fake,
        route,
        start,
        end,
        rate,
        first_attempts,
        fault,
    })
}

/// The settings each fault kind requires and those it may take.
fn kind_settings(kind: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match kind {
        "refuse" | "hang" | "reset" | "drop" | "tool_loop" | "invalid_tool_args" => (&[], &[]),
        "status" => (
            &["code"],
            &[
                "retry_after",
                "retry_after_ms",
                "should_retry",
                "error_code",
            ],
        ),
        "delay" => (&["delay"], &["distribution"]),
        "slow_stream" => (&["first_token", "inter_token"], &["jitter"]),
        "stall" => (&["after_chunks", "stall"], &[]),
        "stream_cut" => (&[], &["after_chunks", "after"]),
        "malformed" => (&["what"], &[]),
        "finish_reason" => (&["reason"], &[]),
        "rate_limit" => (&[], &["requests_per_minute", "tokens_per_minute"]),
        "redis_error" => (&["reply"], &[]),
        _ => return None,
    })
}

/// A good value for a setting, for "add e.g. …" hints.
fn example_setting(field: &str) -> &'static str {
    match field {
        "code" => "code = 503",
        "delay" => "delay = \"2s\"",
        "first_token" => "first_token = \"1500ms\"",
        "inter_token" => "inter_token = \"80ms\"",
        "after_chunks" => "after_chunks = 5",
        "stall" => "stall = \"3s\"",
        "what" => "what = \"truncated_json\"",
        "reason" => "reason = \"length\"",
        "reply" => "reply = \"LOADING Redis is loading the dataset in memory\"",
        _ => "the setting",
    }
}

/// The fault a `[[faults]]` table describes, its settings already checked against its kind.
fn build_fault_kind(
    kind: &str,
    raw: &RawFault,
    table: &str,
    src: &Source,
) -> Result<Fault, ScenarioError> {
    let what = |field: &str| format!("`{field}` {table}");
    let opt_dur = |field: &Option<Text>, name: &str| -> Result<Option<Duration>, ScenarioError> {
        field
            .as_ref()
            .map(|t| duration(t, &what(name), src))
            .transpose()
    };
    let pos_dur = |field: &Option<Text>, name: &str| -> Result<Duration, ScenarioError> {
        // Required settings were checked above, so `field` is present here.
        match field {
            Some(t) => positive_duration(t, &what(name), src),
            None => Err(src.error(&raw.kind, format!("{} is missing", what(name)))),
        }
    };
    let choice =
        |field: &Option<Text>, name: &str, choices: &[&str]| -> Result<String, ScenarioError> {
            let Some(t) = field else {
                return Err(src.error(&raw.kind, format!("{} is missing", what(name))));
            };
            if choices.contains(&t.get_ref().as_str()) {
                Ok(t.get_ref().clone())
            } else {
                Err(src.error(
                    t,
                    format!(
                        "{} is \"{}\"; expected one of {}",
                        what(name),
                        t.get_ref(),
                        choices.join(", ")
                    ),
                ))
            }
        };
    let plain = |name: &str| -> serde_json::Value { serde_json::Value::String(name.to_string()) };
    Ok(match kind {
        "refuse" => Fault::Refuse,
        "hang" => Fault::Hang,
        "reset" => Fault::Reset,
        "drop" => Fault::Drop,
        "tool_loop" => Fault::ToolLoop,
        "invalid_tool_args" => Fault::InvalidToolArgs,
        "status" => {
            let code = raw.code.as_ref().expect("required setting checked above");
            let code = whole_number(code, &what("code"), 100, 599, "code = 503", src)? as u16;
            Fault::Status {
                code,
                retry_after: opt_dur(&raw.retry_after, "retry_after")?,
                retry_after_ms: raw.retry_after_ms.as_ref().is_none_or(|b| *b.get_ref()),
                should_retry: raw.should_retry.as_ref().map(|b| *b.get_ref()),
                error_code: raw.error_code.as_ref().map(|t| t.get_ref().clone()),
            }
        }
        "delay" => {
            let distribution = match &raw.distribution {
                Some(_) => {
                    let name = choice(
                        &raw.distribution,
                        "distribution",
                        &["fixed", "uniform", "log_normal"],
                    )?;
                    serde_json::from_value(plain(&name)).expect("checked against the names above")
                }
                None => Default::default(),
            };
            Fault::Delay {
                delay: pos_dur(&raw.delay, "delay")?,
                distribution,
            }
        }
        "slow_stream" => {
            let jitter = match &raw.jitter {
                Some(j) if !(0.0..=1.0).contains(j.get_ref()) => {
                    return Err(src.error(
                        j,
                        format!(
                            "{} is {}; it must be from 0 to 1, e.g. jitter = 0.2",
                            what("jitter"),
                            j.get_ref()
                        ),
                    ))
                }
                Some(j) => *j.get_ref(),
                None => 0.0,
            };
            Fault::SlowStream {
                first_token: duration(
                    raw.first_token.as_ref().expect("required"),
                    &what("first_token"),
                    src,
                )?,
                inter_token: duration(
                    raw.inter_token.as_ref().expect("required"),
                    &what("inter_token"),
                    src,
                )?,
                jitter,
            }
        }
        "stall" => Fault::Stall {
            after_chunks: whole_number(
                raw.after_chunks.as_ref().expect("required"),
                &what("after_chunks"),
                0,
                100_000,
                "after_chunks = 5",
                src,
            )? as u32,
            stall: pos_dur(&raw.stall, "stall")?,
        },
        "stream_cut" => {
            let after_chunks = match &raw.after_chunks {
                Some(n) => Some(whole_number(
                    n,
                    &what("after_chunks"),
                    0,
                    100_000,
                    "after_chunks = 5",
                    src,
                )? as u32),
                None => None,
            };
            let after = opt_dur(&raw.after, "after")?;
            if after_chunks.is_none() && after.is_none() {
                return Err(src.error(
                    &raw.kind,
                    format!(
                        "kind = \"stream_cut\" {table} needs `after_chunks` or `after` (when to \
                         cut the stream); add e.g. after_chunks = 5"
                    ),
                ));
            }
            Fault::StreamCut {
                after_chunks,
                after,
            }
        }
        "malformed" => {
            let names = [
                "invalid_json",
                "truncated_json",
                "wrong_content_type",
                "empty_choices",
                "error_frame",
                "no_done",
                "no_usage",
            ];
            let name = choice(&raw.what, "what", &names)?;
            Fault::Malformed {
                what: serde_json::from_value(plain(&name))
                    .expect("checked against the names above"),
            }
        }
        "finish_reason" => {
            let name = choice(&raw.reason, "reason", &["length", "content_filter"])?;
            Fault::FinishReason {
                reason: serde_json::from_value(plain(&name))
                    .expect("checked against the names above"),
            }
        }
        "rate_limit" => {
            let per_minute =
                |field: &Option<Spanned<i64>>, name: &str| -> Result<Option<u32>, ScenarioError> {
                    field
                        .as_ref()
                        .map(|n| {
                            whole_number(
                                n,
                                &what(name),
                                1,
                                100_000_000,
                                "requests_per_minute = 60",
                                src,
                            )
                            .map(|n| n as u32)
                        })
                        .transpose()
                };
            let requests_per_minute = per_minute(&raw.requests_per_minute, "requests_per_minute")?;
            let tokens_per_minute = per_minute(&raw.tokens_per_minute, "tokens_per_minute")?;
            if requests_per_minute.is_none() && tokens_per_minute.is_none() {
                return Err(src.error(
                    &raw.kind,
                    format!(
                        "kind = \"rate_limit\" {table} needs `requests_per_minute` or \
                         `tokens_per_minute`; add e.g. requests_per_minute = 60"
                    ),
                ));
            }
            Fault::RateLimit {
                requests_per_minute,
                tokens_per_minute,
            }
        }
        "redis_error" => {
            let reply = raw.reply.as_ref().expect("required");
            let text = reply.get_ref().trim();
            let kind_word = text.split_whitespace().next().unwrap_or("");
            if kind_word.is_empty()
                || kind_word.chars().any(|c| !c.is_ascii_uppercase())
                || text.contains(['\r', '\n'])
            {
                return Err(src.error(
                    reply,
                    format!(
                        "{} is \"{text}\"; a Redis error reply starts with its kind in capitals \
                         and is one line, e.g. \"LOADING Redis is loading the dataset in memory\"",
                        what("reply")
                    ),
                ));
            }
            Fault::RedisError {
                reply: text.to_string(),
            }
        }
        other => unreachable!("kind_settings knows `{other}` but build_fault_kind does not"),
    })
}

/// A whole number within `min..=max`; `example` shows a good one.
fn whole_number(
    value: &Spanned<i64>,
    what: &str,
    min: i64,
    max: i64,
    example: &str,
    src: &Source,
) -> Result<i64, ScenarioError> {
    let n = *value.get_ref();
    if n < min || n > max {
        return Err(src.error(
            value,
            format!("{what} is {n}; it must be from {min} to {max}, e.g. {example}"),
        ));
    }
    Ok(n)
}

fn build_expect(raw: Option<raw::RawExpect>, src: &Source) -> Result<Expectations, ScenarioError> {
    let mut expect = Expectations::default();
    let Some(raw) = raw else {
        return Ok(expect);
    };
    // [expect.recovery] holds the recovery phase's limits and the recovery check's settings.
    let recovery_limits = raw.recovery.as_ref().map(|r| RawPhaseLimits {
        p95: r.p95.clone(),
        error_rate: r.error_rate.clone(),
    });
    for (phase, limits) in [
        (Phase::Baseline, raw.baseline),
        (Phase::Fault, raw.fault),
        (Phase::Recovery, recovery_limits),
    ] {
        if let Some(limits) = limits {
            expect
                .phases
                .insert(phase, build_limits(limits, phase, src)?);
        }
    }
    if let Some(errors) = raw.errors {
        expect.errors = build_errors(errors, src)?;
    }
    if let Some(r) = raw.recovery {
        build_recovery(&r, &mut expect.recovery, src)?;
    }
    if let Some(r) = raw.retries {
        build_retries(&r, &mut expect.retries, src)?;
    }
    if let Some(r) = raw.writes {
        if let Some(n) = &r.max_duplicates {
            let what = "`max_duplicates` in [expect.writes]";
            expect.writes.max_duplicates =
                whole_number(n, what, 0, 1_000_000, "max_duplicates = 0", src)? as u32;
        }
    }
    if let Some(r) = raw.fallback {
        let table = "in [expect.fallback]";
        if let Some(flows) = &r.tool_flows {
            expect.fallback.tool_flows = flows.iter().map(|f| f.get_ref().clone()).collect();
        }
        if let Some(v) = &r.tool_success_rate {
            expect.fallback.tool_success_rate =
                share(v, &format!("`tool_success_rate` {table}"), "0.95", src)?;
        }
        if let Some(v) = &r.redis_success_rate {
            expect.fallback.redis_success_rate =
                share(v, &format!("`redis_success_rate` {table}"), "0.95", src)?;
        }
    }
    // Log fields, metric figures and trace attributes are service-profile keys: kept as set
    // explicitly (see scenario::profile), applied over the defaults at the end.
    let mut explicit = crate::scenario::ServiceProfile::default();
    if let Some(r) = raw.logs {
        explicit.logs = profile::expect_logs(&r, &mut expect.logs, src)?;
    }
    if let Some(r) = raw.metrics {
        explicit.metrics = profile::expect_metrics(&r, &mut expect.metrics, src)?;
    }
    if let Some(r) = raw.cost {
        if let Some(v) = &r.ratio {
            expect.cost.ratio = positive(v, "`ratio` in [expect.cost]", "ratio = 2.0", src)?;
        }
        if let Some(t) = &r.tokens_route {
            expect.cost.tokens_route = url_path(t, "`tokens_route` in [expect.cost]", src)?;
        }
    }
    if let Some(r) = raw.agent {
        if let Some(n) = &r.max_llm_calls {
            let what = "`max_llm_calls` in [expect.agent]";
            expect.agent.max_llm_calls =
                whole_number(n, what, 1, 1_000_000, "max_llm_calls = 8", src)? as u32;
        }
        if let Some(t) = &r.llm_route {
            expect.agent.llm_route = url_path(t, "`llm_route` in [expect.agent]", src)?;
        }
    }
    if let Some(r) = raw.stream {
        if let Some(t) = &r.first_token_p95 {
            expect.stream.first_token_p95 =
                positive_duration(t, "`first_token_p95` in [expect.stream]", src)?;
        }
        if let Some(t) = &r.inter_token_p95 {
            expect.stream.inter_token_p95 =
                positive_duration(t, "`inter_token_p95` in [expect.stream]", src)?;
        }
    }
    if let Some(r) = raw.traces {
        explicit.traces = profile::expect_traces(&r, &mut expect.traces, src)?;
    }
    explicit.apply(&mut expect);
    if let Some(skip) = raw.skip {
        for name in &skip {
            let family = name.get_ref().split('.').next().unwrap_or("");
            if !Expectations::FAMILIES.contains(&family) {
                let mut message = format!(
                    "`skip` in [expect] names \"{}\", which is no check; name a family ({}) or \
                     a verdict id such as \"retries.backoff\"",
                    name.get_ref(),
                    Expectations::FAMILIES.join(", ")
                );
                if let Some(close) = closest(family, Expectations::FAMILIES.into_iter()) {
                    message.push_str(&format!("; did you mean `{close}`?"));
                }
                return Err(src.error(name, message));
            }
            expect.skip.push(name.get_ref().clone());
        }
    }
    Ok(expect)
}

fn build_recovery(
    r: &raw::RawRecovery,
    e: &mut crate::scenario::RecoveryExpectations,
    src: &Source,
) -> Result<(), ScenarioError> {
    let what = |field: &str| format!("`{field}` in [expect.recovery]");
    if let Some(t) = &r.within {
        e.within = positive_duration(t, &what("within"), src)?;
    }
    if let Some(t) = &r.window {
        e.window = positive_duration(t, &what("window"), src)?;
    }
    if let Some(n) = &r.windows {
        e.windows = whole_number(n, &what("windows"), 1, 1000, "windows = 3", src)? as u32;
    }
    if let Some(v) = &r.success_tolerance {
        e.success_tolerance = share(v, &what("success_tolerance"), "0.05", src)?;
    }
    if let Some(v) = &r.p95_factor {
        e.p95_factor = positive(v, &what("p95_factor"), "p95_factor = 1.5", src)?;
    }
    if let Some(t) = &r.mitigate_within {
        e.mitigate_within = positive_duration(t, &what("mitigate_within"), src)?;
    }
    if let Some(t) = &r.fast_fail {
        e.fast_fail = positive_duration(t, &what("fast_fail"), src)?;
    }
    if let Some(t) = &r.long_outage {
        e.long_outage = positive_duration(t, &what("long_outage"), src)?;
    }
    Ok(())
}

fn build_retries(
    r: &raw::RawRetries,
    e: &mut crate::scenario::RetryExpectations,
    src: &Source,
) -> Result<(), ScenarioError> {
    let what = |field: &str| format!("`{field}` in [expect.retries]");
    if let Some(n) = &r.max_attempts {
        e.max_attempts =
            whole_number(n, &what("max_attempts"), 1, 1000, "max_attempts = 4", src)? as u32;
    }
    if let Some(v) = &r.amplification {
        e.amplification = positive(v, &what("amplification"), "amplification = 3", src)?;
    }
    if let Some(v) = &r.min_growth {
        e.min_growth = positive(v, &what("min_growth"), "min_growth = 1.3", src)?;
    }
    if let Some(v) = &r.min_jitter {
        e.min_jitter = share(v, &what("min_jitter"), "0.1", src)?;
    }
    if let Some(list) = &r.non_retryable {
        e.non_retryable = status_list(list, &what("non_retryable"), src)?;
    }
    if let Some(list) = &r.retryable {
        e.retryable = status_list(list, &what("retryable"), src)?;
    }
    if let Some(v) = &r.max_unretried {
        e.max_unretried = share(v, &what("max_unretried"), "0.5", src)?;
    }
    Ok(())
}

/// A share from 0 to 1; `example` is a good value.
fn share(
    value: &Spanned<f64>,
    what: &str,
    example: &str,
    src: &Source,
) -> Result<f64, ScenarioError> {
    let v = *value.get_ref();
    if !(0.0..=1.0).contains(&v) {
        return Err(src.error(
            value,
            format!("{what} is {v}; it is a share, from 0 to 1, e.g. {example}"),
        ));
    }
    Ok(v)
}

/// A finite number above zero.
fn positive(
    value: &Spanned<f64>,
    what: &str,
    example: &str,
    src: &Source,
) -> Result<f64, ScenarioError> {
    let v = *value.get_ref();
    if !(v.is_finite() && v > 0.0) {
        return Err(src.error(
            value,
            format!("{what} is {v}; it must be more than 0, e.g. {example}"),
        ));
    }
    Ok(v)
}

/// A list of HTTP statuses.
fn status_list(list: &[Spanned<i64>], what: &str, src: &Source) -> Result<Vec<u16>, ScenarioError> {
    list.iter()
        .map(|status| {
            let value = *status.get_ref();
            u16::try_from(value)
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    src.error(
                        status,
                        format!(
                            "{what} holds {value}; each must be an HTTP status from 100 to 599, \
                             e.g. [400, 401]"
                        ),
                    )
                })
        })
        .collect()
}

fn build_limits(
    raw: RawPhaseLimits,
    phase: Phase,
    src: &Source,
) -> Result<PhaseLimits, ScenarioError> {
    let table = format!("in [expect.{phase}]");
    let p95 = match &raw.p95 {
        Some(text) => Some(positive_duration(text, &format!("`p95` {table}"), src)?),
        None => None,
    };
    let error_rate = match &raw.error_rate {
        Some(rate) => {
            let value = *rate.get_ref();
            if !(0.0..=1.0).contains(&value) {
                return Err(src.error(
                    rate,
                    format!(
                        "`error_rate` {table} is {value}; it is a share of requests, from 0 to \
                         1, e.g. error_rate = 0.05"
                    ),
                ));
            }
            Some(value)
        }
        None => None,
    };
    Ok(PhaseLimits { p95, error_rate })
}

fn build_errors(raw: RawErrors, src: &Source) -> Result<ErrorExpectations, ScenarioError> {
    let defaults = ErrorExpectations::default();
    let allowed_statuses = match &raw.allowed_statuses {
        Some(statuses) => statuses
            .iter()
            .map(|status| {
                let value = *status.get_ref();
                u16::try_from(value)
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| {
                        src.error(
                            status,
                            format!(
                                "`allowed_statuses` in [expect.errors] holds {value}; each must \
                                 be an HTTP status from 100 to 599, e.g. [502, 503, 504]"
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => defaults.allowed_statuses,
    };
    let within = match &raw.within {
        Some(text) => positive_duration(text, "`within` in [expect.errors]", src)?,
        None => defaults.within,
    };
    Ok(ErrorExpectations {
        allowed_statuses,
        within,
        message_pointer: None,
    })
}

/// A humantime duration (`"250ms"`, `"1m 30s"`); `what` names the field in errors.
fn duration(text: &Text, what: &str, src: &Source) -> Result<Duration, ScenarioError> {
    let written = text.get_ref();
    let parsed = humantime::parse_duration(written.trim()).map_err(|e| {
        src.error(
            text,
            format!(
                "{what} is not a duration: \"{written}\" ({e}); expected a duration like \"30s\" \
                 or \"250ms\""
            ),
        )
    })?;
    if parsed > MAX_DURATION {
        return Err(src.error(
            text,
            format!("{what} is \"{written}\", longer than a year; use a shorter duration"),
        ));
    }
    Ok(parsed)
}

/// A duration that must be more than zero.
fn positive_duration(text: &Text, what: &str, src: &Source) -> Result<Duration, ScenarioError> {
    let parsed = duration(text, what, src)?;
    if parsed.is_zero() {
        return Err(src.error(
            text,
            format!("{what} is zero; it must be more than zero, e.g. \"30s\" or \"250ms\"",),
        ));
    }
    Ok(parsed)
}

fn optional_duration(
    text: Option<Text>,
    what: &str,
    src: &Source,
) -> Result<Option<Duration>, ScenarioError> {
    text.map(|t| duration(&t, what, src)).transpose()
}

/// A target URL to attach to: `http://` on a loopback address (faultline sends load to this
/// machine only), without a trailing slash.
fn loopback_url(text: &Text, src: &Source) -> Result<String, ScenarioError> {
    loopback(text.get_ref()).map_err(|why| src.error(text, format!("`url` in [target] {why}")))
}

/// A URL faultline may send load to: `http://` on a loopback address (127.0.0.0/8, localhost
/// or [::1]), returned without a trailing slash; else why not.
pub fn loopback(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', '?']).next().unwrap_or(""))
        .map(|authority| match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or("").to_string(),
            None => authority.split(':').next().unwrap_or("").to_string(),
        });
    let loopback = match host.as_deref() {
        Some("localhost") => true,
        Some(host) => host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false),
        None => false,
    };
    if loopback {
        Ok(url.to_string())
    } else {
        Err(format!(
            "is \"{url}\"; faultline sends load only to this machine: use http:// with \
             127.0.0.1, localhost or [::1], e.g. \"http://127.0.0.1:3000\""
        ))
    }
}

/// `[fakes]`: a Redis upstream must be a redis:// URL on this machine.
fn build_fakes(raw: Option<raw::RawFakes>, src: &Source) -> Result<FakeOptions, ScenarioError> {
    let upstream = raw.and_then(|f| f.redis).and_then(|r| r.upstream);
    let redis_upstream = match upstream {
        None => None,
        Some(text) => {
            let as_http = text.get_ref().replacen("redis://", "http://", 1);
            if !text.get_ref().starts_with("redis://") || loopback(&as_http).is_err() {
                return Err(src.error(
                    &text,
                    format!(
                        "`upstream` in [fakes.redis] is \"{}\"; give a real redis-server on this \
                         machine, e.g. upstream = \"redis://127.0.0.1:6379\"",
                        text.get_ref()
                    ),
                ));
            }
            Some(text.into_inner())
        }
    };
    Ok(FakeOptions {
        redis_upstream,
        ..FakeOptions::default()
    })
}

/// A Redis command name as a fault's route (`GET`, `set`), upper-cased as Redis spells it.
fn redis_command(text: &Text, table: &str, src: &Source) -> Result<String, ScenarioError> {
    let command = text.get_ref().trim();
    if command.is_empty() || !command.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(src.error(
            text,
            format!(
                "`route` {table} is \"{command}\"; for fake = \"redis\" the route is a command \
                 name, e.g. route = \"GET\""
            ),
        ));
    }
    Ok(command.to_ascii_uppercase())
}

/// An HTTP path: must start with `/`.
fn url_path(text: &Text, what: &str, src: &Source) -> Result<String, ScenarioError> {
    let path = text.get_ref();
    if !path.starts_with('/') {
        return Err(src.error(
            text,
            format!(
                "{what} is \"{path}\"; a path must start with \"/\", e.g. \"/{}\"",
                path.trim_start_matches('/')
            ),
        ));
    }
    Ok(path.clone())
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
