//! The fake MCP server's tools: three, with JSON schemas, answered deterministically from the
//! seed; and the list they become while `tools_changed` is on (`get_weather` renamed
//! `get_forecast` with a new required argument, `search_docs` gone), so a client that keeps
//! calling the old list meets "Unknown tool".

use serde_json::{json, Value};

use crate::fakes::fault::Fault;
use crate::fakes::text::hash;

/// JSON-RPC's "invalid params", which MCP servers answer an unknown tool or bad arguments with.
const INVALID_PARAMS: i64 = -32602;

fn weather_schema(extra: Option<(&str, Value)>) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": { "city": { "type": "string", "description": "City name" } },
        "required": ["city"],
    });
    if let Some((name, property)) = extra {
        schema["properties"][name] = property;
        schema["required"]
            .as_array_mut()
            .expect("an array")
            .push(json!(name));
    }
    schema
}

/// The tools the server lists (`changed`: the list while `tools_changed` is on).
pub(super) fn list(changed: bool) -> Value {
    let ticket = json!({
        "name": "create_ticket",
        "description": "Open a support ticket",
        "inputSchema": {
            "type": "object",
            "properties": { "subject": { "type": "string" }, "body": { "type": "string" } },
            "required": ["subject"],
        },
    });
    if changed {
        json!([
            {
                "name": "get_forecast",
                "description": "Weather forecast for a city (replaces get_weather)",
                "inputSchema": weather_schema(Some(("days", json!({ "type": "integer", "minimum": 1 })))),
            },
            ticket,
        ])
    } else {
        json!([
            {
                "name": "get_weather",
                "description": "Current weather in a city",
                "inputSchema": weather_schema(None),
            },
            {
                "name": "search_docs",
                "description": "Search the product documentation",
                "inputSchema": {
                    "type": "object",
                    "properties": { "query": { "type": "string" } },
                    "required": ["query"],
                },
            },
            ticket,
        ])
    }
}

/// Whether tool `name` is on the list (`changed`: the list while `tools_changed` is on).
pub(super) fn lists(name: &str, changed: bool) -> bool {
    list(changed)
        .as_array()
        .is_some_and(|tools| tools.iter().any(|tool| tool["name"] == name))
}

fn text_result(text: String) -> Value {
    json!({ "content": [{ "type": "text", "text": text }], "isError": false })
}

/// The result of calling tool `name`, or the JSON-RPC error (code, message) the call earns.
pub(super) fn call(
    seed: u64,
    name: &str,
    arguments: &Value,
    changed: bool,
    fault: Option<&Fault>,
) -> Result<Value, (i64, String)> {
    let tools = list(changed);
    let tool = tools
        .as_array()
        .expect("an array")
        .iter()
        .find(|tool| tool["name"] == name)
        .ok_or_else(|| (INVALID_PARAMS, format!("Unknown tool: {name}")))?;
    for required in tool["inputSchema"]["required"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let field = required.as_str().unwrap_or_default();
        if arguments.get(field).is_none() {
            return Err((
                INVALID_PARAMS,
                format!("Invalid arguments for tool {name}: '{field}' is a required property"),
            ));
        }
    }
    match fault {
        Some(Fault::ToolError) => {
            return Ok(json!({
                "content": [{ "type": "text",
                              "text": format!("Error executing tool {name}: the upstream service is unavailable") }],
                "isError": true,
            }))
        }
        Some(Fault::LargeResult { bytes }) => {
            let size = bytes.unwrap_or(super::DEFAULT_LARGE_RESULT_BYTES) as usize;
            return Ok(text_result("x".repeat(size)));
        }
        _ => {}
    }
    let arg = |field: &str| arguments.get(field).and_then(Value::as_str).unwrap_or("");
    let draw = |salt: &str| hash(seed, &format!("{name}:{salt}:{arguments}"));
    let text = match name {
        "get_weather" | "get_forecast" => {
            let temp = (draw("temp") % 35) as i64 - 5;
            let conditions =
                ["sunny", "cloudy", "rain", "wind", "snow"][(draw("sky") % 5) as usize];
            json!({ "city": arg("city"), "temp_c": temp, "conditions": conditions }).to_string()
        }
        "search_docs" => format!(
            "3 results for \"{}\": Getting started; Rate limits; Error handling",
            arg("query")
        ),
        _ => format!(
            "Created ticket T-{:06} \"{}\"",
            draw("id") % 1_000_000,
            arg("subject")
        ),
    };
    Ok(text_result(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changed_list_drops_a_tool_and_renames_another() {
        let names = |changed| -> Vec<String> {
            list(changed)
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names(false),
            ["get_weather", "search_docs", "create_ticket"]
        );
        assert_eq!(names(true), ["get_forecast", "create_ticket"]);
        let old = call(1, "get_weather", &json!({ "city": "Lyon" }), true, None);
        assert_eq!(old.unwrap_err().1, "Unknown tool: get_weather");
    }

    #[test]
    fn a_call_checks_required_arguments_and_answers_deterministically() {
        let args = json!({ "city": "Lyon" });
        assert_eq!(
            call(7, "get_weather", &args, false, None),
            call(7, "get_weather", &args, false, None)
        );
        let missing = call(7, "get_weather", &json!({}), false, None).unwrap_err();
        assert!(
            missing.1.contains("'city' is a required property"),
            "{missing:?}"
        );
        let failed = call(7, "get_weather", &args, false, Some(&Fault::ToolError)).unwrap();
        assert_eq!(failed["isError"], true);
        let large = call(
            7,
            "search_docs",
            &json!({ "query": "q" }),
            false,
            Some(&Fault::LargeResult { bytes: Some(1000) }),
        )
        .unwrap();
        assert_eq!(large["content"][0]["text"].as_str().unwrap().len(), 1000);
    }
}
