//! OpenAI's Responses API for the reference target (`LLM_API=responses`): one answer, or an
//! agent's turns, where each follow-up turn sends only its new items (the tool results) and
//! continues from the response before it (`previous_response_id`), as the API intends.
//!
//! Retries go through the same loop as every LLM call (`llm_client`): a retried turn resends
//! the same request, `previous_response_id` included. The failed attempt stored no response,
//! so the conversation has not moved. Under `new-response-id-on-retry` a retried follow-up
//! turn first replays the conversation's first turn and continues from that new response
//! instead: the conversation forks (and its first turn is paid twice).

use serde_json::{json, Value};

use super::llm_client::{CallKind, CallStats, LlmClient, LlmError, Traffic};
use super::llm_error::truncate;

/// One request of a conversation.
pub struct Turn {
    instructions: String,
    input: Value,
    tools: Option<Value>,
    /// The response this turn continues from; `None` for a first turn.
    previous: Option<String>,
    /// The conversation's first turn, for the flaw's replay.
    first: Option<Value>,
}

impl Turn {
    /// A conversation's first turn: `instructions`, the `input` items, maybe `tools`.
    pub fn first(instructions: &str, input: Value, tools: Option<&Value>) -> Turn {
        Turn {
            instructions: instructions.to_string(),
            input,
            tools: tools.cloned(),
            previous: None,
            first: None,
        }
    }

    /// The turn after `previous` (whose answer was `answered`), sending only `input`: the
    /// tools must be offered again (the API keeps the conversation, not the request's tools).
    pub fn follow_up(&self, answered: &Reply, input: Value) -> Turn {
        Turn {
            instructions: self.instructions.clone(),
            input,
            tools: self.tools.clone(),
            previous: Some(answered.id.clone()),
            first: self.first.clone().or_else(|| Some(self.body_for(None))),
        }
    }

    /// With another tool list (the MCP server's changed), from the next request on.
    pub fn with_tools(mut self, tools: Option<&Value>) -> Turn {
        self.tools = tools.cloned();
        self
    }

    fn body_for(&self, model: Option<&str>) -> Value {
        let mut body = json!({
            "instructions": self.instructions,
            "input": self.input,
        });
        if let Some(model) = model {
            body["model"] = json!(model);
        }
        if let Some(tools) = &self.tools {
            body["tools"] = tools.clone();
        }
        if let Some(previous) = &self.previous {
            body["previous_response_id"] = json!(previous);
        }
        body
    }
}

/// What a response said: its id (for the next turn), its text and its function calls.
#[derive(Debug)]
pub struct Reply {
    pub id: String,
    pub text: String,
    pub calls: Vec<FunctionCall>,
}

#[derive(Debug)]
pub struct FunctionCall {
    pub call_id: String,
    pub name: String,
    /// Parsed from the JSON string the model sent; `Null` when it sent garbage.
    pub arguments: Value,
}

impl LlmClient {
    /// One turn, retried as every LLM call is.
    pub async fn respond(
        &self,
        turn: &Turn,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<Reply, LlmError> {
        let body = turn.body_for(Some(&self.model));
        let replay = match (&turn.first, self.replay_on_retry) {
            (Some(first), true) => {
                let mut first = first.clone();
                first["model"] = json!(self.model);
                Some(first)
            }
            _ => None,
        };
        let mut sent = 0u32;
        let answer = self
            .with_retries(
                CallKind::Responses,
                request_id,
                Traffic::User,
                stats,
                |timeout| {
                    let retry = sent > 0;
                    sent += 1;
                    let (body, replay) = (&body, replay.as_ref().filter(|_| retry));
                    async move {
                        let Some(first) = replay else {
                            let request = self.request("responses", body, request_id);
                            return self.exchange(request, timeout).await;
                        };
                        // The flaw: the conversation is replayed from its first turn, and the
                        // retry continues from the replay's new response.
                        let replayed = self
                            .exchange(self.request("responses", first, request_id), timeout)
                            .await?;
                        let mut body = body.clone();
                        body["previous_response_id"] = replayed["id"].clone();
                        self.exchange(self.request("responses", &body, request_id), timeout)
                            .await
                    }
                },
            )
            .await?;
        let usage = &answer["usage"];
        self.count_tokens(
            usage["input_tokens"].as_u64().unwrap_or(0),
            usage["output_tokens"].as_u64().unwrap_or(0),
            stats,
        );
        read_reply(&answer).ok_or_else(|| {
            // Answered, but with nothing usable: the call failed all the same.
            self.metrics.count_llm_error();
            LlmError::Malformed {
                raw: truncate(&answer.to_string()),
            }
        })
    }
}

/// The reply in a `response` object: its id, its `output_text` parts and `function_call`s.
fn read_reply(answer: &Value) -> Option<Reply> {
    let id = answer["id"].as_str()?.to_string();
    let output = answer["output"].as_array()?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in output {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    if part["type"] == "output_text" {
                        text.push_str(part["text"].as_str().unwrap_or_default());
                    }
                }
            }
            Some("function_call") => calls.push(FunctionCall {
                call_id: item["call_id"].as_str()?.to_string(),
                name: item["name"].as_str()?.to_string(),
                arguments: item["arguments"]
                    .as_str()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or(Value::Null),
            }),
            _ => {}
        }
    }
    (!text.is_empty() || !calls.is_empty()).then_some(Reply { id, text, calls })
}

/// Chat-completions tool definitions (`{type, function: {name, …}}`) in the Responses API's
/// flat shape (`{type, name, description, parameters}`).
pub fn flat_tools(tools: &Value) -> Value {
    Value::from(
        tools
            .as_array()
            .into_iter()
            .flatten()
            .map(|tool| {
                let function = &tool["function"];
                json!({
                    "type": "function",
                    "name": function["name"],
                    "description": function["description"],
                    "parameters": function["parameters"],
                })
            })
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follow_up_continues_from_the_reply_and_offers_the_tools_again() {
        let tools = json!([{"type": "function", "name": "get_weather"}]);
        let first = Turn::first(
            "Be brief.",
            json!([{"role": "user", "content": "hi"}]),
            Some(&tools),
        );
        let reply = Reply {
            id: "resp_1".into(),
            text: String::new(),
            calls: Vec::new(),
        };
        let next = first.follow_up(&reply, json!([{"type": "function_call_output"}]));
        let body = next.body_for(Some("m"));
        assert_eq!(body["previous_response_id"], "resp_1");
        assert_eq!(body["tools"], tools);
        assert_eq!(body["instructions"], "Be brief.");
        // The replay the flaw makes is the first turn, which continued from nothing.
        assert!(next
            .first
            .as_ref()
            .unwrap()
            .get("previous_response_id")
            .is_none());
    }

    #[test]
    fn a_reply_reads_text_and_function_calls() {
        let answer = json!({"id": "resp_2", "output": [
            {"type": "function_call", "call_id": "call_1", "name": "get_weather",
             "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "message", "content": [{"type": "output_text", "text": "Done."}]},
        ]});
        let reply = read_reply(&answer).unwrap();
        assert_eq!(reply.id, "resp_2");
        assert_eq!(reply.text, "Done.");
        assert_eq!(reply.calls[0].arguments["city"], "Oslo");
        assert!(read_reply(&json!({"id": "r", "output": []})).is_none());
    }

    #[test]
    fn chat_tools_become_flat_tools() {
        let chat = json!([{"type": "function", "function": {
            "name": "get_weather", "description": "d", "parameters": {"type": "object"}}}]);
        assert_eq!(
            flat_tools(&chat),
            json!([{"type": "function", "name": "get_weather", "description": "d",
                    "parameters": {"type": "object"}}])
        );
    }
}
