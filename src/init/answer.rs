//! Where things are in one answer of the service: the request id faultline sent (a header or
//! a JSON pointer), the LLM's answer text, a degraded marker, a cache marker, an error message.
//! Pure functions over a status, headers and a JSON body, so every rule is tested without a
//! socket.

use serde_json::Value;

use super::Found;

/// One answer, as read off the wire.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    /// Lowercase names, in the order sent.
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub body: String,
    /// The body as JSON, when it is JSON.
    pub json: Option<Value>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_sse(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }
}

/// Where an answer keeps what faultline reads in it.
#[derive(Clone, Debug, Default)]
pub struct Located {
    pub request_id_header: Option<Found<String>>,
    pub request_id_pointer: Option<Found<String>>,
    /// A header that looks like a request id but holds the service's own value.
    pub own_id_header: Option<String>,
    pub answer_pointer: Option<Found<String>>,
    pub degraded_pointer: Option<Found<String>>,
    pub cache_hit_pointer: Option<Found<String>>,
}

/// Header names that carry a request id by convention, most usual first.
const ID_HEADERS: &[&str] = &[
    "x-request-id",
    "x-correlation-id",
    "request-id",
    "x-amzn-requestid",
    "x-trace-id",
];

/// Finds, in a successful answer to a request sent with `request_id`, where it keeps the id,
/// the answer text (`is_answer` says whether a string is the fake LLM's answer) and markers.
pub fn locate(reply: &Reply, request_id: &str, is_answer: impl Fn(&str) -> bool) -> Located {
    let mut located = Located::default();
    // x-request-id first when several headers echo the id.
    let echoed = reply
        .headers
        .iter()
        .filter(|(_, value)| value == request_id)
        .map(|(name, _)| name.as_str())
        .min_by_key(|name| ID_HEADERS.iter().position(|h| h == name).unwrap_or(99));
    if let Some(name) = echoed {
        located.request_id_header = Some(Found::new(
            name.to_string(),
            format!("the answer's {name} header held the x-request-id faultline sent"),
        ));
    } else {
        located.own_id_header = ID_HEADERS
            .iter()
            .find(|h| reply.header(h).is_some())
            .map(|h| h.to_string());
    }
    let Some(json) = &reply.json else {
        return located;
    };
    if let Some(pointer) = find(json, &|_, value| value.as_str() == Some(request_id)) {
        located.request_id_pointer = Some(Found::new(
            pointer.clone(),
            format!("the JSON answer held the x-request-id faultline sent at {pointer}"),
        ));
    }
    let answer = find(json, &|_, value| value.as_str().is_some_and(&is_answer));
    located.answer_pointer = match answer {
        Some(pointer) => Some(Found::new(
            pointer.clone(),
            format!("the fake LLM's answer text was at {pointer}"),
        )),
        None => longest_text(json, request_id).map(|pointer| {
            Found::guess(
                pointer.clone(),
                format!(
                    "a guess: the longest text in the answer, at {pointer}; the fake LLM's \
                     words were not found in it verbatim"
                ),
            )
        }),
    };
    // `degraded` itself before a `banner` that may say why.
    located.degraded_pointer = DEGRADED_WORDS
        .iter()
        .find_map(|word| {
            find(json, &|key, value| {
                key.to_ascii_lowercase().contains(word)
                    && (value.is_boolean() || value.is_null() || value.is_string())
            })
        })
        .map(|pointer| {
            let value = pointer_value(json, &pointer);
            Found::guess(
                pointer.clone(),
                format!(
                "a guess by its name: {pointer} was {value} on a healthy answer; check that it \
                 turns true (or a non-empty banner) when a tool is down"
            ),
            )
        });
    located.cache_hit_pointer = find(json, &|key, value| is_cache_key(key) && value.is_boolean())
        .map(|pointer| {
            Found::guess(
                pointer.clone(),
                format!("a guess by its name: {pointer} was false on a fresh question"),
            )
        });
    located
}

/// Where an error answer keeps its message for users: a string field named like one, best a
/// sentence.
pub fn error_message(json: &Value) -> Option<String> {
    let named = |key: &str| {
        matches!(
            key.to_ascii_lowercase().as_str(),
            "error"
                | "message"
                | "detail"
                | "error_message"
                | "errormessage"
                | "msg"
                | "reason"
                | "description"
                | "title"
        )
    };
    let sentence = find(json, &|key, value| {
        named(key) && value.as_str().is_some_and(|text| text.contains(' '))
    });
    sentence.or_else(|| find(json, &|key, value| named(key) && value.is_string()))
}

/// Words that name a degraded marker, in order of preference.
const DEGRADED_WORDS: &[&str] = &[
    "degraded", "fallback", "partial", "banner", "notice", "warning",
];

/// Keys that usually hold the user's question, most usual first.
const QUESTION_KEYS: &[&str] = &[
    "message", "text", "question", "prompt", "content", "query", "input", "q",
];

/// Body templates an error answer asks for, most explicit first: a JSON example in its message
/// (`Please send {"query": {"text": "..."}}`), the fields FastAPI/pydantic (`detail[].loc`),
/// zod (`issues[].path`), serde (`query: missing field `text``) or Ajv (`must have required
/// property 'prompt'`) say are missing. Each has `{message}` where the question goes.
pub fn body_hints(reply: &Reply) -> Vec<Value> {
    let mut hints: Vec<Value> = Vec::new();
    let mut push = |hint: Option<Value>| {
        if let Some(hint) = hint {
            if !hints.contains(&hint) {
                hints.push(hint);
            }
        }
    };
    let texts: Vec<String> = match &reply.json {
        Some(json) => strings(json),
        None => vec![reply.body.clone()],
    };
    for text in &texts {
        for example in embedded_objects(text) {
            push(as_template(example));
        }
    }
    if let Some(json) = &reply.json {
        // FastAPI/pydantic: {"detail": [{"loc": ["body", "query", "text"], ...}]}; zod:
        // {"issues": [{"path": ["prompt"], ...}]}.
        for (list, key, skip) in [
            ("/detail", "loc", 1),
            ("/issues", "path", 0),
            ("/errors", "path", 0),
        ] {
            for item in json
                .pointer(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let path: Vec<&str> = item
                    .get(key)
                    .and_then(Value::as_array)
                    .map(|p| p.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let from_body = skip == 0 || path.first() == Some(&"body");
                if from_body && path.len() > skip {
                    push(Some(nested(&path[skip..])));
                }
            }
        }
    }
    for text in &texts {
        for found in MISSING_FIELD.captures_iter(text) {
            let mut path: Vec<&str> = found
                .get(1)
                .map(|p| p.as_str().split('.').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            let field = found.get(2).or(found.get(3)).expect("one field group");
            path.push(field.as_str());
            push(Some(nested(&path)));
        }
    }
    hints.truncate(3);
    hints
}

/// serde's `query: missing field `text`` (with serde_path_to_error's path), Ajv's `must have
/// required property 'prompt'`.
static MISSING_FIELD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?:([\w.]+): )?missing field `(\w+)`|required property '(\w+)'")
        .expect("a valid pattern")
});

/// `{"a": {"b": "{message}"}}` for the path `a.b`.
fn nested(path: &[&str]) -> Value {
    path.iter()
        .rev()
        .fold(Value::String("{message}".into()), |inner, key| {
            let mut object = serde_json::Map::new();
            object.insert(key.to_string(), inner);
            Value::Object(object)
        })
}

/// Every string in a JSON value.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(fields) => fields.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// JSON objects written inside a text (an example in an error message).
fn embedded_objects(text: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find('{') {
        let at = from + offset;
        let mut stream = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value @ Value::Object(_))) => {
                from = at + stream.byte_offset();
                found.push(value);
            }
            _ => from = at + 1,
        }
    }
    found
}

/// An example body as a template: its question-like string (or its first string) becomes
/// `{message}`. `None` when it has no string to put the question in.
fn as_template(mut example: Value) -> Option<Value> {
    let pointer = QUESTION_KEYS
        .iter()
        .find_map(|key| find(&example, &|k, v| k == *key && v.is_string()))
        .or_else(|| find(&example, &|_, v| v.is_string()))?;
    *example.pointer_mut(&pointer)? = Value::String("{message}".into());
    Some(example)
}

/// A body template as the draft's comments show it: `{"query": {"text": …}}`.
pub fn show_body(template: &Value) -> String {
    template.to_string().replace("\"{message}\"", "…")
}

/// Whether an answer carries `request_id` anywhere faultline reads it: a header, a JSON string.
pub fn carries(reply: &Reply, request_id: &str) -> bool {
    reply.headers.iter().any(|(_, v)| v == request_id)
        || reply
            .json
            .as_ref()
            .is_some_and(|json| find(json, &|_, v| v.as_str() == Some(request_id)).is_some())
}

/// Headers that hold an id of the service's own (not the one faultline sent).
pub fn own_id_headers(reply: &Reply) -> Vec<String> {
    ID_HEADERS
        .iter()
        .filter(|h| reply.header(h).is_some())
        .map(|h| h.to_string())
        .collect()
}

fn is_cache_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace(['_', '-'], "");
    key.contains("cachehit") || key == "cached" || key == "fromcache"
}

/// The first value (depth first, in the answer's order) for which `accept(key, value)` holds,
/// as a JSON pointer. Array items have their index as key.
pub fn find(value: &Value, accept: &dyn Fn(&str, &Value) -> bool) -> Option<String> {
    fn walk(
        value: &Value,
        at: &str,
        accept: &dyn Fn(&str, &Value) -> bool,
        depth: usize,
    ) -> Option<String> {
        if depth > 16 {
            return None;
        }
        let children: Vec<(String, &Value)> = match value {
            Value::Object(fields) => fields.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => return None,
        };
        for (key, child) in &children {
            let pointer = format!("{at}/{}", escape(key));
            if accept(key, child) {
                return Some(pointer);
            }
        }
        children.iter().find_map(|(key, child)| {
            walk(child, &format!("{at}/{}", escape(key)), accept, depth + 1)
        })
    }
    walk(value, "", accept, 0)
}

/// A JSON pointer's token: `~` and `/` escaped (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn pointer_value(json: &Value, pointer: &str) -> String {
    json.pointer(pointer)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// The longest string of at least 20 characters that is not the request id.
fn longest_text(json: &Value, request_id: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    fn walk(value: &Value, at: &str, request_id: &str, best: &mut Option<(usize, String)>) {
        match value {
            Value::String(text)
                if text.len() >= 20
                    && text != request_id
                    && best.as_ref().is_none_or(|(len, _)| text.len() > *len) =>
            {
                *best = Some((text.len(), at.to_string()));
            }
            Value::Object(fields) => {
                for (key, child) in fields {
                    walk(child, &format!("{at}/{}", escape(key)), request_id, best);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), request_id, best);
                }
            }
            _ => {}
        }
    }
    walk(json, "", request_id, &mut best);
    best.map(|(_, pointer)| pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(headers: &[(&str, &str)], body: Value) -> Reply {
        Reply {
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            content_type: "application/json".into(),
            body: body.to_string(),
            json: Some(body),
        }
    }

    #[test]
    fn a_nested_answer_is_located_field_by_field() {
        let r = reply(
            &[("x-correlation-id", "flreq-1"), ("x-other", "y")],
            json!({"data": {"reply": "Hello from the fake", "fallbackUsed": false},
                   "meta": {"traceId": "flreq-1", "cached": false}}),
        );
        let found = locate(&r, "flreq-1", |text| text.starts_with("Hello"));
        assert_eq!(found.request_id_header.unwrap().value, "x-correlation-id");
        assert_eq!(found.request_id_pointer.unwrap().value, "/meta/traceId");
        let answer = found.answer_pointer.unwrap();
        assert_eq!(answer.value, "/data/reply");
        assert!(!answer.guess);
        let degraded = found.degraded_pointer.unwrap();
        assert_eq!(degraded.value, "/data/fallbackUsed");
        assert!(degraded.guess);
        assert_eq!(found.cache_hit_pointer.unwrap().value, "/meta/cached");
    }

    #[test]
    fn a_degraded_flag_wins_over_a_banner() {
        let r = reply(
            &[],
            json!({"banner": null, "degraded": false, "answer": "x"}),
        );
        let found = locate(&r, "id", |_| false);
        assert_eq!(found.degraded_pointer.unwrap().value, "/degraded");
        let r = reply(&[], json!({"reply": "x", "notice": null}));
        let found = locate(&r, "id", |_| false);
        assert_eq!(found.degraded_pointer.unwrap().value, "/notice");
    }

    #[test]
    fn a_service_that_answers_its_own_id_is_named() {
        let r = reply(
            &[("x-request-id", "abc")],
            json!({"answer": "a long enough answer here"}),
        );
        let found = locate(&r, "flreq-1", |_| false);
        assert!(found.request_id_header.is_none() && found.request_id_pointer.is_none());
        assert_eq!(found.own_id_header.as_deref(), Some("x-request-id"));
        // Not the fake's words verbatim: the longest text, named a guess.
        let answer = found.answer_pointer.unwrap();
        assert_eq!(answer.value, "/answer");
        assert!(answer.guess);
    }

    fn error(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: "application/json".into(),
            body: body.into(),
            json: serde_json::from_str(body).ok(),
        }
    }

    #[test]
    fn an_error_answer_says_which_body_it_wants() {
        // An example in the message, escaped inside the JSON.
        let r = error(
            400,
            r#"{"error": {"code": "bad_request", "message": "Please send a JSON body like {\"query\": {\"text\": \"your question\"}}."}}"#,
        );
        assert_eq!(body_hints(&r), [json!({"query": {"text": "{message}"}})]);
        // FastAPI/pydantic.
        let r = error(
            422,
            r#"{"detail": [{"type": "missing", "loc": ["body", "ask", "q"], "msg": "Field required"}]}"#,
        );
        assert_eq!(body_hints(&r), [json!({"ask": {"q": "{message}"}})]);
        // serde (with serde_path_to_error's path), plain text.
        let r = error(422, "Failed to deserialize the JSON body into the target type: input: missing field `content` at line 1 column 20");
        assert_eq!(body_hints(&r), [json!({"input": {"content": "{message}"}})]);
        // Ajv.
        let r = error(
            400,
            r#"{"message": "body must have required property 'utterance'"}"#,
        );
        assert_eq!(body_hints(&r), [json!({"utterance": "{message}"})]);
        // An example with other fields keeps them; the question goes in the question-like one.
        let r = error(
            400,
            r#"{"error": "expected {\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"}"#,
        );
        assert_eq!(
            body_hints(&r),
            [json!({"model": "m", "messages": [{"role": "user", "content": "{message}"}]})]
        );
        assert!(body_hints(&error(400, r#"{"error": "bad request"}"#)).is_empty());
        assert_eq!(
            show_body(&json!({"query": {"text": "{message}"}})),
            r#"{"query":{"text":…}}"#
        );
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        let value = json!({"a/b": {"c~d": "flreq-9"}});
        assert_eq!(
            find(&value, &|_, v| v == "flreq-9").as_deref(),
            Some("/a~1b/c~0d")
        );
        assert_eq!(value.pointer("/a~1b/c~0d").unwrap(), "flreq-9");
    }

    #[test]
    fn an_error_message_is_a_sentence_in_a_field_named_like_one() {
        let body = json!({"code": "E1", "problem": {"title": "x", "detail": "The assistant is unavailable."}});
        assert_eq!(error_message(&body).as_deref(), Some("/problem/detail"));
        assert_eq!(
            error_message(&json!({"error": {"message": "Try again later."}})).as_deref(),
            Some("/error/message")
        );
        assert_eq!(error_message(&json!({"ok": false})), None);
    }
}
