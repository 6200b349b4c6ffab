//! The service's log schema, from the lines it wrote while answering one probe request: the
//! JSON line that carries the request id faultline sent, and in it the fields for the request
//! id, the input and output tokens (equal to the usage the fake LLM reported), the level and
//! the message. Fields are named by dotted paths (`req.id`, `fields.message`), as `[logs]`
//! reads them.

use serde_json::{Map, Value};

use super::Found;
use crate::evidence::{LogLine, LogStream};

/// The `[logs]` fields found (each `Err` says why not and what to do).
#[derive(Clone, Debug)]
pub struct Schema {
    /// Where the line was: stdout, stderr, the log file.
    pub stream: LogStream,
    /// The line, shortened, for the draft's comment.
    pub example: String,
    pub request_id_field: Found<String>,
    pub input_tokens_field: Result<Found<String>, String>,
    pub output_tokens_field: Result<Found<String>, String>,
    pub level_field: Result<Found<String>, String>,
    pub message_field: Result<Found<String>, String>,
}

/// Level field names, most usual first (`log.level`: Elastic's ECS).
const LEVEL_FIELDS: &[&str] = &[
    "level",
    "severity",
    "lvl",
    "levelname",
    "log.level",
    "loglevel",
    "@l",
    "severity_text",
];
/// Message field names, most usual first (`fields.message`: Rust tracing's JSON).
const MESSAGE_FIELDS: &[&str] = &[
    "msg",
    "message",
    "fields.message",
    "event",
    "@m",
    "text",
    "body",
];

/// Finds the schema in `lines`: the JSON line with `request_id` that holds the most of what
/// faultline reads. `Err` says what was seen instead.
pub fn find(
    lines: &[LogLine],
    request_id: &str,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
) -> Result<Schema, String> {
    let with_id: Vec<&LogLine> = lines
        .iter()
        .filter(|line| line.text.contains(request_id))
        .collect();
    if with_id.is_empty() {
        return Err(format!(
            "none of the {} lines the service wrote carries the x-request-id faultline sent \
             ({request_id}); the logs.* checks need one JSON line per request with its id",
            lines.len()
        ));
    }
    let mut best: Option<(usize, Schema)> = None;
    for line in &with_id {
        let Some(fields) = json_object(&line.text) else {
            continue;
        };
        let Some(id_path) = path_of(&fields, &|v| v.as_str() == Some(request_id)) else {
            continue;
        };
        let tokens = |expected: Option<u64>, what: &str, hints: &[&str]| match expected {
            // Another field may hold the same number (a latency, a count): one named like
            // tokens wins.
            Some(n) => preferred(paths_of(&fields, &|v| v.as_u64() == Some(n)), hints)
                .map(|path| {
                    Found::new(
                        path.clone(),
                        format!("{path} held {n}, the {what} tokens the fake LLM reported"),
                    )
                })
                .ok_or_else(|| {
                    format!(
                        "no field of the line held {n}, the {what} tokens the fake LLM reported"
                    )
                }),
            None => Err(format!(
                "the fake LLM reported no {what} token count to look for"
            )),
        };
        let schema = Schema {
            stream: line.stream,
            example: shorten(&line.text),
            request_id_field: Found::new(
                id_path.clone(),
                format!("{id_path} held the x-request-id faultline sent"),
            ),
            input_tokens_field: tokens(input_tokens, "input", &["input", "prompt"]),
            output_tokens_field: tokens(output_tokens, "output", &["output", "completion"]),
            level_field: named(&fields, LEVEL_FIELDS, "level"),
            message_field: named(&fields, MESSAGE_FIELDS, "message"),
        };
        let score = [
            schema.input_tokens_field.is_ok(),
            schema.output_tokens_field.is_ok(),
            schema.level_field.is_ok(),
            schema.message_field.is_ok(),
        ]
        .iter()
        .filter(|ok| **ok)
        .count();
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, schema));
        }
    }
    best.map(|(_, schema)| schema).ok_or_else(|| {
        format!(
            "{} line(s) carry the request id, but none is a JSON object with it in a field: \
             e.g. {}",
            with_id.len(),
            shorten(&with_id[0].text)
        )
    })
}

/// The line as a JSON object; a prefix before the first `{` (a timestamp, a logger name) is
/// allowed, as some log setups print one.
fn json_object(text: &str) -> Option<Map<String, Value>> {
    let start = text.find('{')?;
    match serde_json::from_str::<Value>(&text[start..]).ok()? {
        Value::Object(fields) => Some(fields),
        _ => None,
    }
}

/// The dotted path of the first field (depth first) whose value `accept`s.
fn path_of(fields: &Map<String, Value>, accept: &dyn Fn(&Value) -> bool) -> Option<String> {
    for (key, value) in fields {
        if accept(value) {
            return Some(key.clone());
        }
    }
    for (key, value) in fields {
        if let Value::Object(inner) = value {
            if let Some(path) = path_of(inner, accept) {
                return Some(format!("{key}.{path}"));
            }
        }
    }
    None
}

/// Every dotted path (shallow first) whose value `accept`s.
fn paths_of(fields: &Map<String, Value>, accept: &dyn Fn(&Value) -> bool) -> Vec<String> {
    let mut paths: Vec<String> = fields
        .iter()
        .filter(|(_, value)| accept(value))
        .map(|(key, _)| key.clone())
        .collect();
    for (key, value) in fields {
        if let Value::Object(inner) = value {
            paths.extend(
                paths_of(inner, accept)
                    .into_iter()
                    .map(|path| format!("{key}.{path}")),
            );
        }
    }
    paths
}

/// The first path naming one of `hints`, or with `token` in it, else the first.
fn preferred(paths: Vec<String>, hints: &[&str]) -> Option<String> {
    let named = |path: &String, words: &[&str]| {
        let path = path.to_ascii_lowercase();
        words.iter().any(|w| path.contains(w))
    };
    paths
        .iter()
        .find(|p| named(p, hints))
        .or_else(|| paths.iter().find(|p| named(p, &["token"])))
        .or(paths.first())
        .cloned()
}

fn get<'a>(fields: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    // A key with a dot in it (`log.level` as one key) first, then the nested path.
    if let Some(value) = fields.get(path) {
        return Some(value);
    }
    let (head, rest) = path.split_once('.')?;
    match fields.get(head)? {
        Value::Object(inner) => get(inner, rest),
        _ => None,
    }
}

fn named(fields: &Map<String, Value>, names: &[&str], what: &str) -> Result<Found<String>, String> {
    names
        .iter()
        .find_map(|name| {
            let value = get(fields, name)?;
            (value.is_string() || value.is_number()).then(|| {
                Found::new(
                    name.to_string(),
                    format!(
                        "{name} = {} on the line, a usual name for the {what}",
                        value
                    ),
                )
            })
        })
        .ok_or_else(|| {
            format!(
                "no field with a usual {what} name ({}) on the line",
                names.join(", ")
            )
        })
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            at_ms: 0.0,
            stream: LogStream::Stderr,
            text: text.into(),
        }
    }

    #[test]
    fn nested_fields_are_found_on_the_line_with_the_tokens() {
        let lines = [
            line("INFO: started"),
            line(r#"{"severity":"DEBUG","text":"calling","req":{"id":"flreq-1"}}"#),
            line(
                r#"{"severity":"INFO","text":"answered","req":{"id":"flreq-1"},"usage":{"prompt":12,"completion":30}}"#,
            ),
            line(
                r#"{"severity":"INFO","req":{"id":"flreq-2"},"usage":{"prompt":12,"completion":30}}"#,
            ),
        ];
        let schema = find(&lines, "flreq-1", Some(12), Some(30)).unwrap();
        assert_eq!(schema.request_id_field.value, "req.id");
        assert_eq!(schema.input_tokens_field.unwrap().value, "usage.prompt");
        assert_eq!(
            schema.output_tokens_field.unwrap().value,
            "usage.completion"
        );
        assert_eq!(schema.level_field.unwrap().value, "severity");
        assert_eq!(schema.message_field.unwrap().value, "text");
    }

    #[test]
    fn pino_and_tracing_lines_are_read() {
        let pino = line(
            r#"{"level":30,"time":1,"latencyMs":5,"reqId":"flreq-3","inputTokens":5,"outputTokens":9,"msg":"done"}"#,
        );
        let schema = find(&[pino], "flreq-3", Some(5), Some(9)).unwrap();
        assert_eq!(schema.request_id_field.value, "reqId");
        assert_eq!(schema.input_tokens_field.unwrap().value, "inputTokens");
        assert_eq!(schema.level_field.unwrap().value, "level");
        let tracing = line(
            r#"{"timestamp":"t","level":"INFO","fields":{"message":"answered","request_id":"flreq-4","input_tokens":5,"output_tokens":9},"target":"app"}"#,
        );
        let schema = find(&[tracing], "flreq-4", Some(5), Some(9)).unwrap();
        assert_eq!(schema.request_id_field.value, "fields.request_id");
        assert_eq!(
            schema.input_tokens_field.unwrap().value,
            "fields.input_tokens"
        );
        assert_eq!(schema.message_field.unwrap().value, "fields.message");
    }

    #[test]
    fn what_is_missing_is_said() {
        let err = find(&[line("plain text flreq-5")], "flreq-5", None, None).unwrap_err();
        assert!(err.contains("none is a JSON object"), "{err}");
        let err = find(&[line("{}")], "flreq-6", None, None).unwrap_err();
        assert!(err.contains("none of the 1 lines"), "{err}");
        let schema = find(&[line(r#"{"id":"flreq-7"}"#)], "flreq-7", Some(3), None).unwrap();
        assert!(schema.input_tokens_field.unwrap_err().contains("held 3"));
        assert!(schema.level_field.is_err());
    }
}
