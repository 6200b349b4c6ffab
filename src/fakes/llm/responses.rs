//! `POST /v1/responses`, OpenAI's Responses API: the same answers and tool calls as the chat
//! route, in the `response` object's shape (`output` items of type `message` and
//! `function_call`), or streamed as its semantic events, each `event: <type>` with a
//! `sequence_number`: `response.created`, `response.in_progress`, `response.output_item.added`,
//! `response.content_part.added`, `response.output_text.delta`… (or
//! `response.function_call_arguments.delta`…), their `.done` events, and `response.completed`
//! carrying `usage`.
//!
//! Conversation state: every response's id is kept for the length of the run (a bounded
//! ledger), with the ids of the function calls it made. A request naming an unknown
//! `previous_response_id`, or a `function_call_output` for a call that neither that response
//! nor the request's own input made, gets the API's 400, as OpenAI answers it. So a retry that
//! invents a new `previous_response_id` fails the way it would in production.
//!
//! Input tokens: the instructions plus 3 per input item and its text; output tokens: the text's.

use crate::sync::LockExt;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::chat::{content_text, decide, Said};
use super::stream::{event, half_frame, pace, pieces, Frame};
use super::tools;
use super::{context_window, error, parse_body, required_model, unix_now, with_limits};
use super::{told_usage, typed_stream, Provider, Turn};
use crate::evidence::Exchange;
use crate::fakes::fault::Malformation;
use crate::fakes::http::{Reply, Usage};
use crate::fakes::text::approx_tokens;

/// How many responses the ledger remembers: at the built-in scenarios' rates, every response
/// of a run; beyond it the oldest are forgotten, so memory stays bounded on a soak.
const LEDGER_CAPACITY: usize = 200_000;

/// The responses this fake has given, with the call ids each made, oldest first.
#[derive(Default)]
pub(super) struct Ledger {
    inner: Mutex<LedgerInner>,
}

#[derive(Default)]
struct LedgerInner {
    calls: HashMap<String, Vec<String>>,
    order: VecDeque<String>,
}

impl Ledger {
    fn remember(&self, id: &str, calls: Vec<String>) {
        let mut inner = self.inner.locked();
        if inner.order.len() >= LEDGER_CAPACITY {
            if let Some(oldest) = inner.order.pop_front() {
                inner.calls.remove(&oldest);
            }
        }
        inner.order.push_back(id.to_owned());
        inner.calls.insert(id.to_owned(), calls);
    }

    /// The call ids response `id` made, or `None` when it is unknown.
    fn calls_of(&self, id: &str) -> Option<Vec<String>> {
        let inner = self.inner.locked();
        inner.calls.get(id).cloned()
    }
}

/// The journal's view of a request: the stored response it continues from, read whatever
/// fault then answers it (a body that is no JSON object continues from none).
pub(super) fn exchange(body: &[u8]) -> Exchange {
    #[derive(serde::Deserialize)]
    struct Continues {
        previous_response_id: Option<String>,
    }
    Exchange::Responses {
        previous_response_id: serde_json::from_slice::<Continues>(body)
            .ok()
            .and_then(|c| c.previous_response_id),
    }
}

pub(super) fn create(turn: &Turn, ledger: &Ledger) -> Reply {
    match try_create(turn, ledger) {
        Ok(reply) | Err(reply) => reply,
    }
}

/// What the request's `input` says, read from a string or a list of items.
struct Input<'a> {
    items: Vec<&'a Value>,
    text: Option<&'a str>,
}

impl<'a> Input<'a> {
    fn read(body: &'a Map<String, Value>) -> Result<Input<'a>, Reply> {
        match body.get("input") {
            Some(Value::String(text)) => Ok(Input {
                items: Vec::new(),
                text: Some(text),
            }),
            Some(Value::Array(items)) => Ok(Input {
                items: items.iter().collect(),
                text: None,
            }),
            None => Err(super::missing("input")),
            Some(_) => Err(super::invalid(
                "input",
                "expected a string or an array of items.",
            )),
        }
    }

    fn kind(item: &Value) -> &str {
        // A message may leave out `type`; the API reads it as a message.
        item.get("type")
            .and_then(Value::as_str)
            .unwrap_or("message")
    }

    /// The latest user message's text.
    fn prompt(&self) -> String {
        if let Some(text) = self.text {
            return text.to_owned();
        }
        self.items
            .iter()
            .rev()
            .find(|item| {
                Input::kind(item) == "message"
                    && item.get("role").and_then(Value::as_str) == Some("user")
            })
            .map(|item| content_text(item))
            .unwrap_or_default()
    }

    fn after_tool_result(&self) -> bool {
        self.items
            .last()
            .is_some_and(|item| Input::kind(item) == "function_call_output")
    }

    fn tokens(&self) -> u64 {
        match self.text {
            Some(text) => 3 + approx_tokens(text),
            None => self
                .items
                .iter()
                .map(|item| {
                    let text = match Input::kind(item) {
                        "function_call_output" => {
                            item.get("output").map(Value::to_string).unwrap_or_default()
                        }
                        "function_call" => item
                            .get("arguments")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        _ => content_text(item),
                    };
                    3 + approx_tokens(&text)
                })
                .sum(),
        }
    }

    /// The call ids of `function_call` items the input carries itself (stateless use).
    fn own_calls(&self) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(|item| Input::kind(item) == "function_call")
            .filter_map(|item| item.get("call_id").and_then(Value::as_str))
    }

    /// The call ids the input answers with `function_call_output` items.
    fn answered_calls(&self) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(|item| Input::kind(item) == "function_call_output")
            .filter_map(|item| item.get("call_id").and_then(Value::as_str))
    }
}

fn try_create(turn: &Turn, ledger: &Ledger) -> Result<Reply, Reply> {
    let body = parse_body(turn.request)?;
    let model = required_model(&body)?;
    let input = Input::read(&body)?;
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let max_output_tokens = body.get("max_output_tokens").and_then(Value::as_u64);
    let previous = body.get("previous_response_id").and_then(Value::as_str);

    // The conversation state the request leans on must exist, as on the real API.
    let earlier_calls = match previous {
        Some(id) => ledger.calls_of(id).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("Previous response with id '{id}' not found."),
                "invalid_request_error",
                Some("previous_response_id"),
                Some("previous_response_not_found"),
            )
        })?,
        None => Vec::new(),
    };
    let own: Vec<&str> = input.own_calls().collect();
    if let Some(orphan) = input
        .answered_calls()
        .find(|call| !own.contains(call) && !earlier_calls.iter().any(|c| c == call))
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("No tool call found for function call output with call_id {orphan}."),
            "invalid_request_error",
            Some("input"),
            None,
        ));
    }

    let instructions = body.get("instructions").and_then(Value::as_str);
    let input_tokens = instructions.map_or(0, approx_tokens) + input.tokens();
    let wanted = input_tokens + max_output_tokens.unwrap_or(0);
    let window = context_window(model);
    if wanted > window {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Your input exceeds the context window of this model ({window} tokens; the \
                 request needs {wanted}). Please adjust your input and try again."
            ),
            "invalid_request_error",
            Some("input"),
            Some("context_length_exceeded"),
        ));
    }
    let limits = turn.admit(Provider::OpenAi, model, wanted)?;

    let tools = tools::offered(&body);
    let prompt = input.prompt();
    let said = decide(
        turn,
        &body,
        &tools,
        &prompt,
        input.after_tool_result(),
        max_output_tokens,
        "call_",
    );
    let output_tokens = said.tokens();
    let id = super::fresh_id("resp_");
    ledger.remember(
        &id,
        match &said {
            Said::Call { id, .. } => vec![id.clone()],
            Said::Text { .. } => Vec::new(),
        },
    );
    let malformed = turn.malformation();
    let shape = Shape {
        id: &id,
        model,
        created_at: unix_now(),
        body: &body,
        usage: json!({
            "input_tokens": input_tokens,
            "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": output_tokens,
            "output_tokens_details": { "reasoning_tokens": 0 },
            "total_tokens": input_tokens + output_tokens,
        }),
    };
    let item_id = match &said {
        Said::Text { .. } => super::fresh_id("msg_"),
        Said::Call { .. } => super::fresh_id("fc_"),
    };
    let empty = malformed == Some(Malformation::EmptyChoices);
    let reply = if streaming {
        let frames = events(&shape, &said, &item_id, malformed);
        let script = pace(
            frames.into_iter().map(Frame::from).collect(),
            turn.fault,
            turn.board,
        );
        let reply = Reply::event_stream(StatusCode::OK, script);
        typed_stream(reply, "text/event-stream; charset=utf-8", malformed)
    } else {
        let output = if empty {
            Vec::new()
        } else {
            vec![item(&said, &item_id, true)]
        };
        Reply::json(StatusCode::OK, &shape.response(&said, output, true))
    };
    let reply = with_limits(Provider::OpenAi, reply, &limits);
    let usage = Usage {
        input: input_tokens,
        output: output_tokens,
    };
    Ok(told_usage(reply, streaming, malformed, usage))
}

/// What every snapshot of one response shares.
struct Shape<'a> {
    id: &'a str,
    model: &'a str,
    created_at: u64,
    body: &'a Map<String, Value>,
    usage: Value,
}

impl Shape<'_> {
    /// The `response` object: in progress (no output, no usage) or finished with `output`.
    fn response(&self, said: &Said, output: Vec<Value>, finished: bool) -> Value {
        let echo = |field: &str, default: Value| self.body.get(field).cloned().unwrap_or(default);
        // A cut answer is `incomplete`, with the reason the chat route gives as finish_reason.
        let incomplete = match said {
            Said::Text { finish_reason, .. } if finished && *finish_reason != "stop" => {
                Some(match *finish_reason {
                    "length" => "max_output_tokens",
                    other => other,
                })
            }
            _ => None,
        };
        let status = match (finished, incomplete) {
            (false, _) => "in_progress",
            (true, Some(_)) => "incomplete",
            (true, None) => "completed",
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": incomplete.map(|reason| json!({ "reason": reason })),
            "instructions": echo("instructions", Value::Null),
            "max_output_tokens": echo("max_output_tokens", Value::Null),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": echo("parallel_tool_calls", Value::Bool(true)),
            "previous_response_id": echo("previous_response_id", Value::Null),
            "reasoning": { "effort": null, "summary": null },
            "store": echo("store", Value::Bool(true)),
            "temperature": echo("temperature", json!(1.0)),
            "text": { "format": { "type": "text" } },
            "tool_choice": echo("tool_choice", json!("auto")),
            "tools": echo("tools", json!([])),
            "top_p": echo("top_p", json!(1.0)),
            "truncation": "disabled",
            "usage": if finished { self.usage.clone() } else { Value::Null },
            "user": null,
            "metadata": echo("metadata", json!({})),
        })
    }
}

/// The output item of `said`: a `message` with one `output_text` part, or a `function_call`.
fn item(said: &Said, item_id: &str, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    match said {
        Said::Text { content, .. } => {
            let parts = if done {
                json!([{ "type": "output_text", "text": content, "annotations": [] }])
            } else {
                json!([])
            };
            json!({ "id": item_id, "type": "message", "status": status, "role": "assistant",
                    "content": parts })
        }
        Said::Call {
            id,
            name,
            arguments,
        } => json!({ "id": item_id, "type": "function_call", "status": status, "call_id": id,
                    "name": name, "arguments": if done { arguments.as_str() } else { "" } }),
    }
}

/// The stream's events, numbered, each broken as `malformed` says.
fn events(
    shape: &Shape,
    said: &Said,
    item_id: &str,
    malformed: Option<Malformation>,
) -> Vec<Bytes> {
    let mut sequence = 0u64;
    let mut frames = Vec::new();
    let mut push = |frames: &mut Vec<Bytes>, mut payload: Value| {
        let name = payload["type"].as_str().unwrap_or("error").to_owned();
        payload["sequence_number"] = json!(sequence);
        sequence += 1;
        frames.push(event(&name, &payload));
    };
    let empty = malformed == Some(Malformation::EmptyChoices);
    let in_progress = shape.response(said, Vec::new(), false);
    push(
        &mut frames,
        json!({ "type": "response.created", "response": in_progress }),
    );
    push(
        &mut frames,
        json!({ "type": "response.in_progress", "response": in_progress }),
    );
    if !empty {
        push(
            &mut frames,
            json!({ "type": "response.output_item.added", "output_index": 0,
                    "item": item(said, item_id, false) }),
        );
        match said {
            Said::Text { content, .. } => {
                let at = json!({ "item_id": item_id, "output_index": 0, "content_index": 0 });
                let with = |kind: &str, extra: Value| {
                    let mut payload = at.clone();
                    payload["type"] = json!(kind);
                    for (key, value) in extra.as_object().into_iter().flatten() {
                        payload[key] = value.clone();
                    }
                    payload
                };
                push(
                    &mut frames,
                    with(
                        "response.content_part.added",
                        json!({ "part": { "type": "output_text", "text": "", "annotations": [] } }),
                    ),
                );
                for piece in pieces(content) {
                    push(
                        &mut frames,
                        with(
                            "response.output_text.delta",
                            json!({ "delta": piece, "logprobs": [] }),
                        ),
                    );
                }
                push(
                    &mut frames,
                    with(
                        "response.output_text.done",
                        json!({ "text": content, "logprobs": [] }),
                    ),
                );
                push(
                    &mut frames,
                    with(
                        "response.content_part.done",
                        json!({ "part": { "type": "output_text", "text": content, "annotations": [] } }),
                    ),
                );
            }
            Said::Call { arguments, .. } => {
                // Arguments arrive in small fragments, as OpenAI streams them.
                let chars: Vec<char> = arguments.chars().collect();
                for part in chars.chunks(8) {
                    push(
                        &mut frames,
                        json!({ "type": "response.function_call_arguments.delta",
                                "item_id": item_id, "output_index": 0,
                                "delta": part.iter().collect::<String>() }),
                    );
                }
                push(
                    &mut frames,
                    json!({ "type": "response.function_call_arguments.done",
                            "item_id": item_id, "output_index": 0, "arguments": arguments }),
                );
            }
        }
        push(
            &mut frames,
            json!({ "type": "response.output_item.done", "output_index": 0,
                    "item": item(said, item_id, true) }),
        );
    }
    let content_frames = frames.len();
    if malformed != Some(Malformation::NoDone) {
        let output = if empty {
            Vec::new()
        } else {
            vec![item(said, item_id, true)]
        };
        let mut done = shape.response(said, output, true);
        if malformed == Some(Malformation::NoUsage) {
            done["usage"] = Value::Null;
        }
        let kind = if done["status"] == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        push(&mut frames, json!({ "type": kind, "response": done }));
    }
    // Past the two opening events, so a broken frame lands among the content.
    let middle = (content_frames / 2)
        .max(2)
        .min(frames.len().saturating_sub(1));
    match malformed {
        // The API's mid-stream failure: an `error` event after the 200 and some output,
        // then the end, with no `response.completed`.
        Some(Malformation::ErrorFrame) => {
            frames.truncate(middle);
            push(
                &mut frames,
                json!({ "type": "error", "code": "server_error",
                        "message": "The server had an error while processing your request. Sorry about that!",
                        "param": null }),
            );
        }
        Some(Malformation::InvalidJson) => {
            frames[middle] = Bytes::from_static(
                b"event: response.output_text.delta\ndata: {\"delta\": oops}\n\n",
            );
        }
        Some(Malformation::TruncatedJson) => frames[middle] = half_frame(&frames[middle]),
        _ => {}
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_reads_the_previous_response_id_of_any_body() {
        let continued = exchange(br#"{"model":"m","input":"hi","previous_response_id":"resp_1"}"#);
        assert_eq!(
            continued,
            Exchange::Responses {
                previous_response_id: Some("resp_1".into())
            }
        );
        for fresh in [&br#"{"model":"m","input":"hi"}"#[..], b"not json"] {
            assert_eq!(
                exchange(fresh),
                Exchange::Responses {
                    previous_response_id: None
                }
            );
        }
    }

    #[test]
    fn the_ledger_forgets_the_oldest_response_beyond_its_capacity() {
        let ledger = Ledger::default();
        for n in 0..=LEDGER_CAPACITY {
            ledger.remember(&format!("resp_{n}"), vec![format!("call_{n}")]);
        }
        assert_eq!(ledger.calls_of("resp_0"), None);
        assert_eq!(ledger.calls_of("resp_1"), Some(vec!["call_1".to_owned()]));
        assert_eq!(
            ledger.calls_of(&format!("resp_{LEDGER_CAPACITY}")),
            Some(vec![format!("call_{LEDGER_CAPACITY}")])
        );
    }
}
