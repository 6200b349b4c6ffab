//! `POST /api/agent` {message, user?}: the model may call tools (`get_weather`,
//! `create_ticket`); the service runs them, feeds the results back and asks again, for at most
//! `AGENT_MAX_STEPS` model calls. At the limit it stops and says so honestly (200, degraded,
//! `stopReason: "step_limit"`) rather than looping on: a runaway loop costs money per step.
//! Each model call and tool call counts in `agent_steps_count`.
//!
//! With `MCP_SERVER_URL` the tools are the MCP server's, listed (from the client's cache) at
//! each step, so a changed list reaches the model at the next step. With `LLM_API=responses`
//! the steps are Responses API turns, each continuing from the last (`previous_response_id`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::config::LlmApi;
use super::flaws::Flaw;
use super::request::{error_response, request_id_from, with_request_id, Failure, RequestLog};
use super::responses_api::{flat_tools, Turn};
use super::tickets::idempotency_key;
use super::App;

pub const ROUTE: &str = "/api/agent";
const BAD_REQUEST: &str = "Please send a JSON body with a non-empty \"message\".";
/// Under `unbounded-agent`: no limit in spirit, but the loop must end some time.
const UNBOUNDED_STEPS: u32 = 50;
pub const BANNER_STEP_LIMIT: &str = "stopped at the step limit";

#[derive(Deserialize)]
struct AgentRequest {
    message: String,
    #[serde(default)]
    user: Option<String>,
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }},
        {"type": "function", "function": {
            "name": "create_ticket",
            "description": "Open a support ticket.",
            "parameters": {"type": "object", "properties": {
                "subject": {"type": "string"}, "body": {"type": "string"},
            }, "required": ["subject", "body"]},
        }},
    ])
}

pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (request_id, given) = request_id_from(&headers);
    let mut log = RequestLog::new(app.clone(), ROUTE, request_id.clone());
    let response = match run(&app, &body, given, &mut log).await {
        Ok(answer) => {
            log.finish(200, None);
            Json(answer).into_response()
        }
        Err(failure) => {
            log.finish(failure.status().as_u16(), Some(failure.kind()));
            error_response(&app, &request_id, &failure)
        }
    };
    with_request_id(&app, &request_id, response)
}

async fn run(
    app: &App,
    body: &[u8],
    client_gave_id: bool,
    log: &mut RequestLog,
) -> Result<Value, Failure> {
    let request: AgentRequest =
        serde_json::from_slice(body).map_err(|_| Failure::BadRequest(BAD_REQUEST))?;
    if request.message.trim().is_empty() {
        return Err(Failure::BadRequest(BAD_REQUEST));
    }
    log.user_id = request.user.as_deref().map(|u| app.pseudonyms.user_id(u));
    if app.flaws.has(Flaw::LeakSecrets) {
        log.leaked_message = Some(request.message.clone());
    }
    let request_id = log.request_id.clone();
    let max_steps = if app.flaws.has(Flaw::UnboundedAgent) {
        UNBOUNDED_STEPS
    } else {
        app.config.agent_max_steps
    };
    let instructions = format!(
        "You are the help-desk agent for {}. Use the tools when the user needs live weather or \
         a support ticket; then answer briefly.",
        app.product
    );
    if app.llm.api == LlmApi::Responses {
        return run_responses(
            app,
            &instructions,
            &request.message,
            max_steps,
            client_gave_id,
            log,
        )
        .await;
    }
    let mut messages = vec![
        json!({"role": "system", "content": instructions}),
        // Verbatim: faultline finds its correlation nonce here.
        json!({"role": "user", "content": request.message}),
    ];
    for step in 1..=max_steps {
        log.agent_steps = Some(step);
        app.metrics.count_agent_step();
        let tools = offered_tools(app, log).await;
        let mut span = log.trace.span("llm_call");
        span.set("agent.step", step as u64);
        let reply = app
            .llm
            .complete(
                &Value::from(messages.clone()),
                Some(&tools),
                Some(&request_id),
                &mut log.stats,
            )
            .await;
        if reply.is_err() {
            span.fail();
        }
        span.end();
        let reply = reply.map_err(Failure::Llm)?;
        let calls: Vec<Value> = reply["tool_calls"].as_array().cloned().unwrap_or_default();
        if calls.is_empty() {
            return Ok(json!({
                "answer": reply["content"].as_str().unwrap_or_default(),
                "requestId": request_id,
                "steps": step,
                "degraded": log.degraded,
                "banner": log.degraded.then_some(super::chat::BANNER_LIVE_DATA_UNAVAILABLE),
            }));
        }
        messages.push(reply.clone());
        for call in calls {
            let id = call["id"].as_str().unwrap_or("call").to_string();
            let name = call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            // Arguments arrive as a JSON string; a model may send garbage.
            let args: Value = call["function"]["arguments"]
                .as_str()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or(Value::Null);
            app.metrics.count_agent_step();
            app.log.info(
                "agent_tool_call",
                json!({"requestId": request_id, "step": step, "tool": name, "arguments": args}),
            );
            let result = run_tool(app, log, &name, &args, &id, client_gave_id).await;
            messages
                .push(json!({"role": "tool", "tool_call_id": id, "content": result.to_string()}));
        }
    }
    Ok(step_limit(app, log, max_steps))
}

/// The agent's loop over the Responses API: the first turn sends the instructions and the
/// user's message, each later one only the tool results, continuing from the last response.
async fn run_responses(
    app: &App,
    instructions: &str,
    message: &str,
    max_steps: u32,
    client_gave_id: bool,
    log: &mut RequestLog,
) -> Result<Value, Failure> {
    let request_id = log.request_id.clone();
    let tools = flat_tools(&offered_tools(app, log).await);
    // Verbatim: faultline finds its correlation nonce here.
    let input = json!([{"role": "user", "content": message}]);
    let mut turn = Turn::first(instructions, input, Some(&tools));
    for step in 1..=max_steps {
        log.agent_steps = Some(step);
        app.metrics.count_agent_step();
        let mut span = log.trace.span("llm_call");
        span.set("agent.step", step as u64);
        let reply = app
            .llm
            .respond(&turn, Some(&request_id), &mut log.stats)
            .await;
        if reply.is_err() {
            span.fail();
        }
        span.end();
        let reply = reply.map_err(Failure::Llm)?;
        if reply.calls.is_empty() {
            return Ok(json!({
                "answer": reply.text,
                "requestId": request_id,
                "steps": step,
                "degraded": log.degraded,
                "banner": log.degraded.then_some(super::chat::BANNER_LIVE_DATA_UNAVAILABLE),
            }));
        }
        let mut outputs = Vec::new();
        for call in &reply.calls {
            app.metrics.count_agent_step();
            app.log.info(
                "agent_tool_call",
                json!({"requestId": request_id, "step": step, "tool": call.name, "arguments": call.arguments}),
            );
            let result = run_tool(
                app,
                log,
                &call.name,
                &call.arguments,
                &call.call_id,
                client_gave_id,
            )
            .await;
            outputs.push(json!({
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": result.to_string(),
            }));
        }
        // The tools as they are now: a list that changed reaches the model at this turn.
        let tools = flat_tools(&offered_tools(app, log).await);
        turn = turn
            .follow_up(&reply, Value::from(outputs))
            .with_tools(Some(&tools));
    }
    Ok(step_limit(app, log, max_steps))
}

/// The tools to offer at this step: the MCP server's when configured (an empty list, and a
/// degraded answer, when it cannot be listed), else the built-in two.
async fn offered_tools(app: &App, log: &mut RequestLog) -> Value {
    let Some(mcp) = &app.mcp else {
        return tools();
    };
    match mcp.tools(&log.request_id).await {
        Ok(tools) => tools,
        Err(err) => {
            app.log.warn(
                "tool_unavailable",
                json!({"requestId": log.request_id, "tool": "mcp", "reason": err.kind()}),
            );
            log.degraded = true;
            json!([])
        }
    }
}

/// The honest answer at the step limit.
fn step_limit(app: &App, log: &mut RequestLog, max_steps: u32) -> Value {
    let request_id = log.request_id.clone();
    app.log.warn(
        "agent_step_limit",
        json!({"requestId": request_id, "maxSteps": max_steps}),
    );
    log.degraded = true;
    json!({
        "answer": format!(
            "I could not finish this within {max_steps} steps, so I stopped. \
             Please rephrase or split the request."),
        "requestId": request_id,
        "steps": max_steps,
        "stopReason": "step_limit",
        "degraded": true,
        "banner": BANNER_STEP_LIMIT,
    })
}

/// Runs one tool call; failures become a result the model can read, not a failed request.
async fn run_tool(
    app: &App,
    log: &mut RequestLog,
    name: &str,
    args: &Value,
    call_id: &str,
    client_gave_id: bool,
) -> Value {
    let request_id = log.request_id.clone();
    if let Some(mcp) = &app.mcp {
        let mut span = log.trace.span("tool_mcp");
        span.set("tool.name", name.to_string());
        let called = mcp.call(name, args, &request_id).await;
        if called.is_err() {
            span.fail();
        }
        span.end();
        return match called {
            Ok(text) => Value::String(text),
            Err(err) => {
                app.log.warn(
                    "tool_unavailable",
                    json!({"requestId": request_id, "tool": name, "reason": err.kind()}),
                );
                log.degraded = true;
                json!({"error": format!("the tool failed ({err}); say so")})
            }
        };
    }
    match name {
        "get_weather" => {
            let city = args["city"].as_str().unwrap_or("London");
            let mut span = log.trace.span("tool_weather");
            let fetched = app.weather.fetch(city, Some(&request_id)).await;
            if fetched.is_err() {
                span.fail();
            }
            span.end();
            match fetched {
                Ok(data) => data,
                Err(err) => {
                    app.log.warn(
                        "tool_unavailable",
                        json!({"requestId": request_id, "tool": "weather", "reason": err.kind()}),
                    );
                    log.degraded = true;
                    json!({"error": "live weather data is unavailable; say so"})
                }
            }
        }
        "create_ticket" => {
            let subject = args["subject"].as_str().unwrap_or("Support request");
            let body = args["body"].as_str().unwrap_or("");
            // Scoped by the call id: one request may create several tickets, each once.
            let key = idempotency_key(&request_id, client_gave_id, call_id);
            let mut span = log.trace.span("tool_tickets");
            let created = app.tickets.create(subject, body, &key, &request_id).await;
            if created.is_err() {
                span.fail();
            }
            span.end();
            match created {
                Ok(ticket) => ticket,
                Err(err) => {
                    app.log.warn(
                        "tool_unavailable",
                        json!({"requestId": request_id, "tool": "tickets", "reason": err.kind()}),
                    );
                    json!({"error": "the ticket could not be created; tell the user"})
                }
            }
        }
        other => json!({"error": format!("unknown tool {other:?}")}),
    }
}
