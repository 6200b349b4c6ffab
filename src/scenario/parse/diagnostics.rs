//! Turning byte spans and serde's messages into `origin:line:column: message` errors that
//! name the field, its table, an example of a good value and the closest known word.

use super::*;

/// The text being parsed and its name, to turn byte spans into `origin:line:column` errors.
pub(super) struct Source<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
}

impl Source<'_> {
    pub(super) fn error_at(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_column(self.text, offset);
        ScenarioError::Invalid {
            origin: self.origin.to_string(),
            line,
            column,
            message: cut_echoes(&message.into()),
        }
    }

    pub(super) fn error<T>(&self, at: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.error_at(at.span().start, message)
    }

    pub(super) fn syntax_error(&self, e: &toml::de::Error) -> ScenarioError {
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
    pub(super) fn shape_error(&self, e: &toml::de::Error) -> ScenarioError {
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

    pub(super) fn snippet(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }
}

/// The key path toml attached to a serde error (`load.flows.weight`), split into keys.
///
/// toml keeps the path private but prints it as a last `in `…`` line when the error has no
/// source text, which is the case for a `Deserializer` built from a parsed table.
pub(super) fn error_keys(e: &toml::de::Error) -> Vec<String> {
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
pub(super) const ARRAY_TABLES: &[&str] = &["load.flows", "faults"];

/// `in [load]`, `in [[load.flows]]`, `at the top level`.
pub(super) fn table_name(keys: &[String]) -> String {
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
pub(super) fn backticked(list: &str) -> Vec<String> {
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// Serde names Rust types ("expected usize", "expected struct RawLoad"); say it in TOML words.
pub(super) fn plain_types(message: &str) -> String {
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
pub(super) fn example(table: &[String], leaf: &str) -> Option<&'static str> {
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
pub(super) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().max(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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

/// Reads a file as UTF-8 text; bytes that are not UTF-8 are an error at their line:column.
pub(crate) fn read_text(path: &Path, shown: &str) -> Result<String, ScenarioError> {
    let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read {
        path: shown.to_string(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.as_bytes();
        let at = error.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Columns count characters, as the parser's own errors do.
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        ScenarioError::Invalid {
            origin: shown.to_string(),
            line,
            column,
            message: format!(
                "the file is not UTF-8 text (byte 0x{:02x} here); TOML files are UTF-8: save \
                 it as UTF-8, or write the character as an escape such as \\u00e9",
                bytes[at]
            ),
        }
    })
}

/// Cuts every quoted echo (`"…"` or `` `…` ``) in an error message to a readable length, so
/// a 1 MB value in a file never becomes 1 MB of stderr.
fn cut_echoes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(4096));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        match rest.find(quote) {
            Some(close) => {
                out.push_str(&crate::scenario::echo(&rest[..close]));
                out.push(quote);
                rest = &rest[close + 1..];
            }
            None => {
                out.push_str(&crate::scenario::echo_tail(rest));
                rest = "";
            }
        }
    }
    out.push_str(&crate::scenario::echo_tail(rest));
    out
}
