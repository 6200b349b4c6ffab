//! Tool calls for agents: when a request offers tools, whether this turn calls one, and with
//! which arguments. Shared by both providers (OpenAI `tools[].function`, Anthropic `tools[]`).
//!
//! A turn calls a tool when `tool_choice` demands one, or when the latest user message names a
//! tool (a word of its name other than verbs like `get`, e.g. "weather" for `get_weather`),
//! unless the conversation already ends with a tool result. `tool_loop` calls a tool on every
//! turn. Arguments are filled from the tool's JSON schema and the prompt, deterministically.

use serde_json::{json, Map, Value};

use crate::fakes::text::{hash, without_nonces, words};

/// Name words too generic to say a prompt asks for the tool.
const VERBS: &[&str] = &[
    "get", "set", "fetch", "find", "lookup", "look", "up", "search", "list", "create", "read",
    "call", "run", "do", "make", "tool", "api", "query",
];

/// One tool a request offers, read from either provider's shape.
pub(super) struct Tool<'a> {
    pub name: &'a str,
    /// The JSON schema of the arguments (`parameters` / `input_schema`).
    pub schema: Option<&'a Value>,
}

/// The tools of a request: OpenAI's `{"type":"function","function":{name, parameters}}` or
/// Anthropic's `{name, input_schema}`.
pub(super) fn offered(body: &Map<String, Value>) -> Vec<Tool<'_>> {
    let Some(Value::Array(tools)) = body.get("tools") else {
        return Vec::new();
    };
    tools
        .iter()
        .filter_map(|tool| {
            let function = tool.get("function").unwrap_or(tool);
            Some(Tool {
                name: function.get("name")?.as_str()?,
                schema: function
                    .get("parameters")
                    .or_else(|| function.get("input_schema")),
            })
        })
        .collect()
}

/// The tool this turn calls, if any. `forced` (tool_loop) calls one whatever was said.
pub(super) fn choose<'t, 'a>(
    body: &Map<String, Value>,
    tools: &'t [Tool<'a>],
    prompt: &str,
    after_tool_result: bool,
    forced: bool,
) -> Option<&'t Tool<'a>> {
    if tools.is_empty() {
        return None;
    }
    if forced {
        return tools.first();
    }
    let choice = body.get("tool_choice");
    let named = choice
        .and_then(|c| c.get("function").unwrap_or(c).get("name"))
        .and_then(Value::as_str);
    if let Some(name) = named {
        return tools.iter().find(|tool| tool.name == name);
    }
    let mode = choice
        .and_then(|c| c.as_str().or_else(|| c.get("type")?.as_str()))
        .unwrap_or("auto");
    match mode {
        "none" => None,
        "required" | "any" if !after_tool_result => tools.first(),
        _ if after_tool_result => None,
        _ => {
            let said: Vec<String> = words(prompt).collect();
            tools.iter().find(|tool| {
                words(tool.name)
                    .flat_map(|w| w.split('_').map(str::to_owned).collect::<Vec<_>>())
                    .filter(|w| !VERBS.contains(&w.as_str()) && w.len() > 2)
                    .any(|w| said.iter().any(|s| *s == w || s.trim_end_matches('s') == w))
            })
        }
    }
}

/// Arguments for `tool` from its schema: each required property (or the first, if none is
/// required) gets a value of its type; place-like strings take a capitalised word of the
/// prompt, other strings the prompt itself.
pub(super) fn arguments(tool: &Tool, prompt: &str) -> Value {
    let prompt = without_nonces(prompt);
    let prompt = prompt.trim().trim_end_matches(['[', ']', ' ']);
    let properties = tool
        .schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    let Some(properties) = properties else {
        return json!({});
    };
    let required: Vec<&str> = tool
        .schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut args = Map::new();
    for (name, schema) in properties {
        let wanted = if required.is_empty() {
            args.is_empty()
        } else {
            required.contains(&name.as_str())
        };
        if !wanted {
            continue;
        }
        let value = if let Some(first) = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            first.clone()
        } else {
            match schema.get("type").and_then(Value::as_str) {
                Some("integer") => json!(1),
                Some("number") => json!(1.0),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ if is_place(name) => json!(place_in(prompt)),
                _ => json!(prompt),
            }
        };
        args.insert(name.clone(), value);
    }
    Value::Object(args)
}

/// A tool-call id that repeats with the seed and the request: `call_…` / `toolu_…`.
pub(super) fn call_id(prefix: &str, seed: u64, prompt: &str, turn: usize) -> String {
    let h = hash(seed ^ turn as u64, &without_nonces(prompt));
    format!("{prefix}{h:016x}")
}

fn is_place(name: &str) -> bool {
    ["city", "location", "place", "town", "country", "region"]
        .iter()
        .any(|p| name.to_lowercase().contains(p))
}

/// The last capitalised word of the prompt that does not start a sentence, else `Paris`.
fn place_in(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    words
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| *i > 0 && !words[i - 1].ends_with(['.', '?', '!']))
        .map(|(_, w)| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .find(|w| w.chars().next().is_some_and(char::is_uppercase) && *w != "I")
        .unwrap_or("Paris")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather_body() -> Map<String, Value> {
        json!({"tools": [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}
        }}]}).as_object().unwrap().clone()
    }

    #[test]
    fn a_prompt_naming_the_tool_calls_it_with_the_place_it_mentions() {
        let body = weather_body();
        let tools = offered(&body);
        let tool = choose(
            &body,
            &tools,
            "What's the weather in Lyon today?",
            false,
            false,
        );
        assert_eq!(tool.unwrap().name, "get_weather");
        assert_eq!(
            arguments(
                tool.unwrap(),
                "What's the weather in Lyon today? [fl-00000001]"
            ),
            json!({"city": "Lyon"})
        );
        assert!(choose(&body, &tools, "tell me a joke", false, false).is_none());
        assert!(choose(&body, &tools, "weather?", true, false).is_none());
        assert!(choose(&body, &tools, "weather?", true, true).is_some());
    }
}
