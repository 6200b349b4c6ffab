//! The `[target]` section: the service under test, its command or URL, env placeholders and
//! the reference target's flaws.

use super::*;

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
    "mcp",
    "port",
];

pub(super) fn build_target(
    raw: Option<RawTarget>,
    src: &Source,
) -> Result<TargetSpec, ScenarioError> {
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
pub(super) fn check_placeholders(
    key: &str,
    value: &Text,
    src: &Source,
) -> Result<(), ScenarioError> {
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
