//! The Prometheus text exposition format (version 0.0.4, which OpenMetrics text also reads as):
//! samples parsed from a `/metrics` body, and series selectors (`name{label="value"}`) that
//! pick and sum some of them, as `[expect.metrics]` figures do.
//!
//! Written here rather than taken from `prometheus-parse`, the one maintained parser crate:
//! it regroups histogram and summary series into one value (so `x_count` or `x_bucket{le=..}`
//! cannot be selected as the exposition writes them), skips lines it cannot read without saying
//! so (a figure would then read as missing, not as a broken body), and brings chrono. The
//! grammar needed is one line: `name{label="value",...} value [timestamp]`.

use std::collections::BTreeMap;

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
