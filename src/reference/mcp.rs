//! The agent's MCP client (`MCP_SERVER_URL`): the Model Context Protocol over Streamable HTTP,
//! one session per process as long-lived services keep it.
//!
//! `initialize` (then `notifications/initialized`) opens the session; `tools/list` fills a
//! cached tool list, which every agent request offers the model; `tools/call` runs a call. An
//! answer may come as JSON or as server-sent events, and may carry notifications ahead of the
//! result: on `notifications/tools/list_changed` the cache is dropped and the next request
//! lists the tools again, as the specification asks (unless `ignore-list-changed`, which keeps
//! offering the old list). A 404 on the session id means the server forgot it: the client
//! initializes again and resends once, as the specification says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::log::Logger;
use super::tool::ToolError;

/// The protocol version asked for (the fake and the SDKs speak it).
const PROTOCOL_VERSION: &str = "2025-06-18";

/// What the client holds between requests.
#[derive(Default)]
struct Session {
    id: Option<String>,
    /// The tools as the server listed them; `None` until listed, or once told they changed.
    tools: Option<Vec<Value>>,
}

pub struct McpClient {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    /// `ignore-list-changed`: the notification is read and dropped.
    ignore_list_changed: bool,
    session: Mutex<Session>,
    next_id: AtomicU64,
    log: Logger,
}

/// The JSON-RPC messages of one answer: its result (or error) and whether a
/// `notifications/tools/list_changed` came with it.
struct Answer {
    outcome: Result<Value, String>,
    list_changed: bool,
}

impl McpClient {
    pub fn new(url: String, timeout: Duration, ignore_list_changed: bool, log: Logger) -> Self {
        McpClient {
            http: reqwest::Client::new(),
            url,
            timeout,
            ignore_list_changed,
            session: Mutex::new(Session::default()),
            next_id: AtomicU64::new(1),
            log,
        }
    }

    /// The tools to offer the model, in chat completions' shape; listed when not cached.
    pub async fn tools(&self, request_id: &str) -> Result<Value, ToolError> {
        let cached = self.session.lock().await.tools.clone();
        let tools = match cached {
            Some(tools) => tools,
            None => {
                let listed = self.request("tools/list", json!({}), request_id).await?;
                let tools = listed["tools"].as_array().cloned().unwrap_or_default();
                self.session.lock().await.tools = Some(tools.clone());
                tools
            }
        };
        Ok(Value::from(
            tools
                .iter()
                .map(|tool| {
                    json!({"type": "function", "function": {
                        "name": tool["name"],
                        "description": tool["description"],
                        "parameters": tool["inputSchema"],
                    }})
                })
                .collect::<Vec<_>>(),
        ))
    }

    /// Calls tool `name`; its text content, or why it failed (an `isError` result too).
    pub async fn call(
        &self,
        name: &str,
        arguments: &Value,
        request_id: &str,
    ) -> Result<String, ToolError> {
        let params = json!({"name": name, "arguments": arguments});
        let result = self.request("tools/call", params, request_id).await?;
        let text: String = result["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| part["text"].as_str())
            .collect();
        if result["isError"] == true {
            return Err(ToolError::Rejected(text));
        }
        Ok(text)
    }

    /// The session's id, initializing first if there is none. The lock is held only for
    /// this, so concurrent requests share one session and never wait on each other's calls.
    async fn session_id(&self, request_id: &str) -> Result<String, ToolError> {
        let mut session = self.session.lock().await;
        if let Some(id) = &session.id {
            return Ok(id.clone());
        }
        let id = self.initialize(request_id).await?;
        *session = Session {
            id: Some(id.clone()),
            tools: None,
        };
        Ok(id)
    }

    /// One JSON-RPC request in the session, initializing again once when the server answers
    /// 404 for a session it forgot.
    async fn request(
        &self,
        method: &str,
        params: Value,
        request_id: &str,
    ) -> Result<Value, ToolError> {
        for _ in 0..2 {
            let id = self.session_id(request_id).await?;
            match self.send(Some(&id), method, &params, request_id).await {
                Err(ToolError::Status(404)) => {
                    let mut session = self.session.lock().await;
                    if session.id.as_deref() == Some(id.as_str()) {
                        *session = Session::default();
                    }
                }
                Err(err) => return Err(err),
                Ok((answer, _)) => {
                    if answer.list_changed {
                        let ignored = self.ignore_list_changed;
                        self.log.info(
                            "mcp_list_changed",
                            json!({"requestId": request_id, "ignored": ignored}),
                        );
                        if !ignored {
                            self.session.lock().await.tools = None;
                        }
                    }
                    return answer.outcome.map_err(ToolError::Rejected);
                }
            }
        }
        Err(ToolError::Status(404))
    }

    /// Opens a session: `initialize`, then `notifications/initialized`; its id.
    async fn initialize(&self, request_id: &str) -> Result<String, ToolError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "faultline-reference", "version": env!("CARGO_PKG_VERSION")},
        });
        let (answer, id) = self.send(None, "initialize", &params, request_id).await?;
        answer.outcome.map_err(ToolError::Rejected)?;
        let id = id.ok_or(ToolError::Malformed)?;
        // The one notification a client owes: the handshake is done.
        let done = self
            .post(
                Some(&id),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                request_id,
            )
            .send();
        let status = tokio::time::timeout(self.timeout, done)
            .await
            .map_err(|_| ToolError::Timeout)?
            .map_err(|e| ToolError::Unreachable(e.to_string()))?
            .status();
        if !status.is_success() {
            return Err(ToolError::Status(status.as_u16()));
        }
        Ok(id)
    }

    fn post(
        &self,
        session: Option<&str>,
        message: &Value,
        request_id: &str,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            // Propagated so the server's (and faultline's) logs join ours.
            .header("x-request-id", request_id)
            .json(message);
        if let Some(id) = session {
            request = request.header("mcp-session-id", id);
        }
        request
    }

    /// Sends one request within the tool timeout; its answer and the session id it gave.
    async fn send(
        &self,
        session: Option<&str>,
        method: &str,
        params: &Value,
        request_id: &str,
    ) -> Result<(Answer, Option<String>), ToolError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let exchange = async {
            let response = self.post(session, &message, request_id).send().await?;
            let status = response.status();
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, session, bytes))
        };
        let (status, session, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ToolError::Timeout)?
            .map_err(|e| ToolError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(ToolError::Status(status.as_u16()));
        }
        Ok((
            read_answer(&bytes, id).ok_or(ToolError::Malformed)?,
            session,
        ))
    }
}

/// The messages of an answer: one JSON body, or server-sent events each carrying one.
fn read_answer(bytes: &[u8], id: u64) -> Option<Answer> {
    let text = String::from_utf8_lossy(bytes);
    let messages: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(message) => vec![message],
        Err(_) => text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect(),
    };
    let list_changed = messages
        .iter()
        .any(|m| m["method"] == "notifications/tools/list_changed");
    let reply = messages.iter().find(|m| m["id"] == id)?;
    let outcome = match (&reply["result"], &reply["error"]) {
        (result, Value::Null) if !result.is_null() => Ok(result.clone()),
        (_, error) => Err(error["message"]
            .as_str()
            .unwrap_or("JSON-RPC error")
            .to_string()),
    };
    Some(Answer {
        outcome,
        list_changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stream_answer_carries_the_notice_ahead_of_the_result() {
        let body = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n\
                    event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}\n\n";
        let answer = read_answer(body.as_bytes(), 7).unwrap();
        assert!(answer.list_changed);
        assert_eq!(answer.outcome.unwrap(), json!({"tools": []}));
    }

    #[test]
    fn a_json_rpc_error_is_the_outcome_and_another_id_is_no_answer() {
        let body =
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Unknown tool: x"}}"#;
        let answer = read_answer(body, 3).unwrap();
        assert!(!answer.list_changed);
        assert_eq!(answer.outcome.unwrap_err(), "Unknown tool: x");
        assert!(read_answer(body, 4).is_none());
    }
}
