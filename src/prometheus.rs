//! The Prometheus text exposition format (version 0.0.4, which OpenMetrics text also reads as):
//! samples parsed from a `/metrics` body, and series selectors (`name{label="value"}`) that
//! pick and sum some of them, as `[expect.metrics]` figures do.
//!
//! Written here rather than taken from `prometheus-parse`, the one maintained parser crate:
//! it regroups histogram and summary series into one value (so `x_count` or `x_bucket{le=..}`
//! cannot be selected as the exposition writes them), skips lines it cannot read without saying
//! so (a figure would then read as missing, not as a broken body), and brings chrono. The
//! grammar needed is one line: `name{label="value",...} value [timestamp]`.
//!
//! A figure is read from an [`Exposition`], which also knows the families its `# TYPE` and
//! `# HELP` lines declare: client libraries (prometheus_client, prom-client) declare a labelled
//! family before its first sample, so a selector whose labels match no series yet of an existing
//! family reads 0, not "missing". (The Rust `prometheus` crate writes nothing for a family until
//! its first use: such a figure exists only once the service has counted something.)

use std::collections::{BTreeMap, BTreeSet};

/// One sample line: a series and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses an exposition body; an error names the line (1-based) and what is wrong with it.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: String| format!("line {}: {message}: `{line}`", index + 1);
        let mut cursor = Cursor::new(line);
        let name = cursor.name().map_err(|(_, m)| fail(m))?;
        cursor.spaces();
        let labels = if cursor.peek() == Some('{') {
            cursor
                .labels()
                .map_err(|(_, m)| fail(m))?
                .into_iter()
                .map(|m| (m.label, m.value))
                .collect()
        } else {
            BTreeMap::new()
        };
        let mut rest = cursor.rest().split_whitespace();
        let value = rest
            .next()
            .ok_or_else(|| fail("no value after the series".into()))?;
        let value = parse_value(value).ok_or_else(|| fail(format!("`{value}` is not a number")))?;
        if let Some(stamp) = rest.next() {
            stamp
                .parse::<i64>()
                .map_err(|_| fail(format!("`{stamp}` is not a timestamp")))?;
        }
        if rest.next().is_some() {
            return Err(fail("unexpected text after the value".into()));
        }
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(samples)
}

/// Suffixes a sample's name may add to its family's (`x_total` of counter `x`, `x_sum` of
/// histogram `x`).
const SUFFIXES: [&str; 6] = ["_total", "_sum", "_count", "_bucket", "_created", "_info"];

/// A metrics body: its samples, and the families it declares.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Names given by `# TYPE` and `# HELP` lines.
    pub declared: BTreeSet<String>,
}

impl Exposition {
    /// Parses a body as [`parse_exposition`] does, keeping the declared family names too.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let declared = text
            .lines()
            .filter_map(|line| {
                let rest = line.trim().strip_prefix('#')?.trim_start();
                let rest = rest
                    .strip_prefix("TYPE")
                    .or_else(|| rest.strip_prefix("HELP"))?;
                rest.split_whitespace().next().map(String::from)
            })
            .collect();
        Ok(Exposition {
            samples: parse_exposition(text)?,
            declared,
        })
    }

    /// The sample name a selector's name stands for: itself, or `name_total` when only that
    /// is written (a counter named without its suffix).
    fn sample_name<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        let exact = self.samples.iter().any(|s| s.name == name);
        let total = format!("{name}_total");
        if !exact && self.samples.iter().any(|s| s.name == total) {
            total.into()
        } else {
            name.into()
        }
    }

    /// Whether a metric family of this name exists: a sample has it (or `name_total`), or a
    /// `# TYPE`/`# HELP` line declares it (or the family it is a suffixed series of).
    pub fn has_family(&self, name: &str) -> bool {
        let name = self.sample_name(name);
        let base = SUFFIXES
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        self.samples.iter().any(|s| s.name == name)
            || self.declared.contains(name.as_ref())
            || self.declared.contains(base)
    }

    /// The selector's value: the sum of its matching series, 0 when its family exists but no
    /// series of it matches yet; `None` when there is no such family.
    pub fn read(&self, selector: &Selector) -> Option<f64> {
        if !self.has_family(&selector.name) {
            return None;
        }
        let selector = Selector {
            name: self.sample_name(&selector.name).into_owned(),
            matchers: selector.matchers.clone(),
        };
        Some(selector.sum(&self.samples).unwrap_or(0.0))
    }

    /// Every family name the body has (declared or sampled), for messages.
    pub fn family_names(&self) -> BTreeSet<String> {
        self.samples
            .iter()
            .map(|s| s.name.clone())
            .chain(self.declared.iter().cloned())
            .collect()
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// A series selector: a metric name and label matchers, e.g. `llm_tokens_total{direction="input"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

/// `label="value"` (equal) or `label!="value"` (not equal; an absent label counts as "").
#[derive(Clone, Debug, PartialEq)]
pub struct Matcher {
    pub label: String,
    pub value: String,
    pub equal: bool,
}

impl Selector {
    /// Parses a selector; an error carries the byte offset in `text` where it went wrong.
    pub fn parse(text: &str) -> Result<Selector, (usize, String)> {
        let mut cursor = Cursor::new(text);
        cursor.spaces();
        let name = cursor.name()?;
        cursor.spaces();
        let matchers = if cursor.peek() == Some('{') {
            cursor.labels()?
        } else {
            Vec::new()
        };
        cursor.spaces();
        if !cursor.rest().is_empty() {
            return Err((
                cursor.at,
                format!("unexpected `{}` after the series", cursor.rest()),
            ));
        }
        Ok(Selector { name, matchers })
    }

    pub fn matches(&self, sample: &Sample) -> bool {
        sample.name == self.name
            && self.matchers.iter().all(|m| {
                let value = sample.labels.get(&m.label).map_or("", String::as_str);
                (value == m.value) == m.equal
            })
    }

    /// The sum of the matching samples' values; `None` when no series matches.
    pub fn sum(&self, samples: &[Sample]) -> Option<f64> {
        samples
            .iter()
            .filter(|s| self.matches(s))
            .map(|s| s.value)
            .reduce(|a, b| a + b)
    }
}

/// A position in one line or selector, for the small grammar both share.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn spaces(&mut self) {
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.at += 1;
        }
    }

    /// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (colons only in metric names, but
    /// accepting them in labels costs nothing).
    fn name(&mut self) -> Result<String, (usize, String)> {
        let start = self.at;
        while self.peek().is_some_and(|c| {
            c.is_ascii_alphabetic()
                || c == '_'
                || c == ':'
                || (self.at > start && c.is_ascii_digit())
        }) {
            self.at += 1;
        }
        if self.at == start {
            return Err((
                start,
                match self.peek() {
                    Some(c) => format!("expected a metric name, found `{c}`"),
                    None => "expected a metric name".into(),
                },
            ));
        }
        Ok(self.text[start..self.at].to_string())
    }

    /// `{label="value", label!="value"}`, the opening brace next.
    fn labels(&mut self) -> Result<Vec<Matcher>, (usize, String)> {
        self.bump();
        let mut matchers = Vec::new();
        loop {
            self.spaces();
            if self.peek() == Some('}') {
                self.bump();
                return Ok(matchers);
            }
            let label = self.name()?;
            self.spaces();
            let equal = match (self.bump(), self.peek()) {
                (Some('='), Some('~')) | (Some('!'), Some('~')) => {
                    return Err((
                        self.at - 1,
                        "regular-expression matchers (=~, !~) are not supported; use = or !="
                            .into(),
                    ))
                }
                (Some('='), _) => true,
                (Some('!'), Some('=')) => {
                    self.bump();
                    false
                }
                _ => {
                    return Err((
                        self.at.saturating_sub(1),
                        format!("expected `=` or `!=` after label `{label}`"),
                    ))
                }
            };
            self.spaces();
            let value = self.quoted()?;
            matchers.push(Matcher {
                label,
                value,
                equal,
            });
            self.spaces();
            match self.bump() {
                Some(',') => {}
                Some('}') => return Ok(matchers),
                _ => {
                    return Err((
                        self.at.saturating_sub(1),
                        "expected `,` or `}` after a label value".into(),
                    ))
                }
            }
        }
    }

    /// A double-quoted label value with `\\`, `\"` and `\n` escapes.
    fn quoted(&mut self) -> Result<String, (usize, String)> {
        let start = self.at;
        if self.bump() != Some('"') {
            return Err((start, "expected a label value in double quotes".into()));
        }
        let mut value = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(value),
                Some('\\') => match self.bump() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    _ => return Err((self.at - 1, "unknown escape in a label value".into())),
                },
                Some(c) => value.push(c),
                None => return Err((start, "a label value is missing its closing quote".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"# HELP llm_tokens_total Tokens used.
# TYPE llm_tokens_total counter
llm_tokens_total{direction="input",model="a"} 30
llm_tokens_total{model="b", direction="input"} 12 1700000000000
llm_tokens_total{direction="output",model="a"} 7
llm_errors_total 3
lat_count 9
odd{path="a \"quoted\" \\ value"} +Inf
"#;

    #[test]
    fn selectors_sum_the_series_they_match() {
        let samples = parse_exposition(BODY).unwrap();
        assert_eq!(samples.len(), 6);
        let sum = |s: &str| Selector::parse(s).unwrap().sum(&samples);
        assert_eq!(sum(r#"llm_tokens_total{direction="input"}"#), Some(42.0));
        assert_eq!(sum("llm_tokens_total"), Some(49.0));
        assert_eq!(sum(r#"llm_tokens_total{direction!="input"}"#), Some(7.0));
        assert_eq!(sum("llm_errors_total"), Some(3.0));
        assert_eq!(sum("lat_count"), Some(9.0));
        assert_eq!(sum(r#"llm_tokens_total{direction="sideways"}"#), None);
        assert_eq!(samples[5].labels["path"], r#"a "quoted" \ value"#);
    }

    #[test]
    fn bad_selectors_say_where() {
        let err = |s: &str| Selector::parse(s).unwrap_err();
        assert_eq!(err("").1, "expected a metric name");
        assert_eq!(err("1abc").0, 0);
        assert_eq!(
            err(r#"x{a="b""#).1,
            "expected `,` or `}` after a label value"
        );
        let (at, message) = err(r#"x{a=~"b"}"#);
        assert_eq!(at, 3);
        assert!(message.contains("not supported"));
        assert_eq!(
            err(r#"x{a=b}"#),
            (4, "expected a label value in double quotes".into())
        );
        assert_eq!(err("x y").0, 2);
    }

    #[test]
    fn a_declared_family_reads_zero_until_its_series_appear() {
        let body = "# HELP chat_failures_total Failed calls.\n\
                    # TYPE chat_failures_total counter\n\
                    # TYPE gen_ai_client_token_usage histogram\n\
                    gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\"} 40\n\
                    requests_total{route=\"/a\"} 3\n";
        let exposition = Exposition::parse(body).unwrap();
        let read = |s: &str| exposition.read(&Selector::parse(s).unwrap());
        // prom-client and prometheus_client declare a labelled family before its first use.
        assert_eq!(read(r#"chat_failures_total{kind="llm"}"#), Some(0.0));
        assert_eq!(
            read(r#"gen_ai_client_token_usage_sum{gen_ai_token_type="input"}"#),
            Some(40.0)
        );
        assert_eq!(
            read(r#"gen_ai_client_token_usage_sum{gen_ai_token_type="output"}"#),
            Some(0.0)
        );
        // A counter named without its suffix reads its `_total` series.
        assert_eq!(read("requests"), Some(3.0));
        assert_eq!(read("chat_tokens_total"), None);
        assert!(exposition.family_names().contains("requests_total"));
    }

    #[test]
    fn a_broken_body_names_its_line() {
        let err = parse_exposition("ok 1\nbroken{a=\"1\"}\n").unwrap_err();
        assert!(
            err.starts_with("line 2: no value after the series"),
            "{err}"
        );
        let err = parse_exposition("x one\n").unwrap_err();
        assert!(err.contains("`one` is not a number"), "{err}");
    }
}
