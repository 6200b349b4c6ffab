//! The fake MCP tool server: the Model Context Protocol over its Streamable HTTP transport, at
//! `POST /mcp` (JSON-RPC 2.0), so the official MCP SDKs' clients connect to it unchanged.
//!
//! - Each request is journaled with its method, tool and session, whether the tool was on the
//!   list and whether the answer told of a changed list ([`Exchange::Mcp`]).
//! - `initialize` negotiates the protocol version and opens a session (`Mcp-Session-Id`); every
//!   later request must carry it (400 without, 404 for one the server no longer knows, which
//!   tells a client to initialize again). `DELETE /mcp` ends a session. `GET /mcp` answers 405:
//!   notifications travel on the answers to POSTs instead, which the transport allows.
//! - `tools/list` and `tools/call` over three tools (see `catalog`), `ping`, and
//!   `notifications/initialized` (202).
//!
//! Faults: the HTTP ones every fake shares (`status`, `delay`, `hang`, `reset`, `drop`,
//! `refuse`, a broken JSON body), the stream ones on an answer sent as server-sent events
//! (`slow_stream`, `stall`, `stream_cut`), and MCP's own:
//! - `rpc_error`: a JSON-RPC error (HTTP 200) instead of the result;
//! - `tool_error`: a `tools/call` result with `isError: true`;
//! - `session_expired`: the request's session is forgotten and answered 404;
//! - `tools_changed`: while on, the tool list is another one (a tool renamed, one removed, a
//!   schema changed), and each session is told with `notifications/tools/list_changed` ahead
//!   of its next answer, once per change (the list changing back when the fault ends is a
//!   change too); a call to a tool the list no longer has fails as an unknown tool;
//! - `large_result`: a `tools/call` result of `bytes` bytes (default 4 MiB).

mod catalog;
pub mod standalone;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};

use super::fault::{Fault, Switchboard};
use super::http::{self, Reply, Request, Responder, Script};
use super::journal::Journal;
use super::{FakeError, FakeHandle};
use crate::evidence::Exchange;
use crate::sync::LockExt;

/// The protocol versions the fake speaks, newest first; a client asking for another gets the
/// newest, as the specification says.
const VERSIONS: &[&str] = &["2025-06-18", "2025-03-26", "2024-11-05"];
/// Sessions the fake remembers; beyond it the oldest is forgotten (its client gets a 404 and
/// initializes again), so a soak cannot grow the fake without bound.
const SESSION_CAPACITY: usize = 100_000;
/// The size of a `large_result` when the fault names none.
pub const DEFAULT_LARGE_RESULT_BYTES: u64 = 4 * 1024 * 1024;
const SESSION_HEADER: &str = "mcp-session-id";

/// Starts the fake MCP server on `127.0.0.1` at an ephemeral port; clients connect to
/// `{base_url}/mcp`.
pub async fn start(
    seed: u64,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    start_on(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        seed,
        switchboard,
        journal,
    )
    .await
}

/// Like [`start`], on a given loopback address (`faultline fake mcp --port`).
pub async fn start_on(
    addr: SocketAddr,
    seed: u64,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let mcp = Mcp {
        seed,
        sessions: Sessions::default(),
    };
    http::serve_on(addr, "mcp", mcp, switchboard, journal).await
}

struct Mcp {
    seed: u64,
    sessions: Sessions,
}

/// The open sessions, each with the tool list it was last told of.
#[derive(Default)]
struct Sessions {
    inner: Mutex<SessionTable>,
}

#[derive(Default)]
struct SessionTable {
    /// Per session: whether the list it knows is the changed one (`tools_changed`).
    knows_changed: HashMap<String, bool>,
    order: VecDeque<String>,
}

impl Sessions {
    fn open(&self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut table = self.inner.locked();
        if table.order.len() >= SESSION_CAPACITY {
            if let Some(oldest) = table.order.pop_front() {
                table.knows_changed.remove(&oldest);
            }
        }
        table.order.push_back(id.clone());
        table.knows_changed.insert(id.clone(), false);
        id
    }

    fn knows(&self, id: &str) -> bool {
        self.inner.locked().knows_changed.contains_key(id)
    }

    fn close(&self, id: &str) -> bool {
        let mut table = self.inner.locked();
        table.order.retain(|open| open != id);
        table.knows_changed.remove(id).is_some()
    }

    /// Whether session `id` must be told that the list changed: the list is now `changed`
    /// and the session last knew the other one (and marks it told). Both ways: a server
    /// whose list changes back says so too, as the specification asks of every change.
    fn tell_of_change(&self, id: &str, changed: bool) -> bool {
        match self.inner.locked().knows_changed.get_mut(id) {
            Some(knows) if *knows != changed => {
                *knows = changed;
                true
            }
            _ => false,
        }
    }
}

/// A JSON-RPC error object's answer to request `id`.
fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A plain-text HTTP error, as the SDKs' servers send for transport-level refusals.
fn http_error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, &rpc_error(&Value::Null, -32000, message))
}

/// One server-sent event carrying a JSON-RPC message.
fn sse_message(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// The journal's view of a JSON-RPC request: its method, the tool a `tools/call` names and
/// the session; `None` for a body that is no JSON-RPC request.
fn exchange_of(request: &Request) -> Option<Exchange> {
    let message: Value = serde_json::from_slice(&request.body).ok()?;
    let method = message.get("method")?.as_str()?.to_owned();
    let tool = (method == "tools/call")
        .then(|| message.pointer("/params/name")?.as_str().map(str::to_owned))
        .flatten();
    Some(Exchange::Mcp {
        session: request.header(SESSION_HEADER).map(str::to_owned),
        method,
        tool,
        tool_listed: None,
        told_list_changed: false,
    })
}

impl Responder for Mcp {
    fn answer(&self, request: &Request) -> Reply {
        self.respond(request, None)
    }

    fn exchange(&self, request: &Request) -> Option<Exchange> {
        exchange_of(request)
    }

    fn answer_under(&self, request: &Request, fault: &Fault) -> Reply {
        self.respond(request, Some(fault))
    }

    fn fault_reply(
        &self,
        _request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        let message = status.canonical_reason().unwrap_or("error");
        http_error(status, message).with_retry_after(retry_after)
    }
}

impl Mcp {
    fn respond(&self, request: &Request, fault: Option<&Fault>) -> Reply {
        if request.uri.path() != "/mcp" {
            return http_error(StatusCode::NOT_FOUND, "Not Found: the MCP endpoint is /mcp");
        }
        let session = request.header(SESSION_HEADER).map(str::to_owned);
        match request.method {
            Method::POST => {}
            Method::DELETE => {
                return match session {
                    Some(id) if self.sessions.close(&id) => Reply::json(StatusCode::OK, &json!({})),
                    _ => http_error(StatusCode::NOT_FOUND, "Session not found"),
                };
            }
            // No server-initiated stream: notifications ride on the answers to POSTs.
            _ => {
                return http_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
                    .with_header("allow", "POST, DELETE")
            }
        }
        let content_type = request.header("content-type").unwrap_or("");
        if !content_type.starts_with("application/json") {
            return http_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: Content-Type must be application/json",
            );
        }
        let mut exchange = exchange_of(request);
        let message: Value = match serde_json::from_slice(&request.body) {
            Ok(message) => message,
            Err(error) => {
                return Reply::json(
                    StatusCode::BAD_REQUEST,
                    &rpc_error(&Value::Null, -32700, &format!("Parse error: {error}")),
                )
            }
        };
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        let id = message.get("id").cloned();

        // Sessions: everything but initialize needs a live one.
        let session = if method == "initialize" {
            None
        } else {
            match session {
                None => {
                    return http_error(
                        StatusCode::BAD_REQUEST,
                        "Bad Request: No valid session ID provided",
                    )
                }
                Some(sid) if matches!(fault, Some(Fault::SessionExpired)) => {
                    self.sessions.close(&sid);
                    return http_error(StatusCode::NOT_FOUND, "Session not found");
                }
                Some(sid) if !self.sessions.knows(&sid) => {
                    return http_error(StatusCode::NOT_FOUND, "Session not found");
                }
                Some(sid) => Some(sid),
            }
        };
        let Some(id) = id else {
            // A notification (or a response to us): accepted, nothing to answer.
            return Reply {
                status: StatusCode::ACCEPTED,
                headers: Vec::new(),
                body: Bytes::new(),
                usage: None,
                exchange: None,
                stream: None,
            };
        };
        let changed = matches!(fault, Some(Fault::ToolsChanged));
        let notify = session
            .as_deref()
            .is_some_and(|sid| self.sessions.tell_of_change(sid, changed));
        if let Some(Exchange::Mcp {
            tool,
            tool_listed,
            told_list_changed,
            ..
        }) = &mut exchange
        {
            *tool_listed = tool.as_deref().map(|name| catalog::lists(name, changed));
            *told_list_changed = notify;
        }
        let answer = match (method, fault) {
            (_, Some(Fault::RpcError { code, message })) => rpc_error(
                &id,
                code.unwrap_or(-32603),
                message.as_deref().unwrap_or("Internal error"),
            ),
            ("initialize", _) => {
                let asked = message
                    .pointer("/params/protocolVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let version = VERSIONS
                    .iter()
                    .find(|v| **v == asked)
                    .unwrap_or(&VERSIONS[0]);
                rpc_result(
                    &id,
                    json!({
                        "protocolVersion": version,
                        "capabilities": { "tools": { "listChanged": true } },
                        "serverInfo": { "name": "faultline-fake-mcp", "version": env!("CARGO_PKG_VERSION") },
                        "instructions": "faultline's fake MCP server: tools with injected faults.",
                    }),
                )
            }
            ("ping", _) => rpc_result(&id, json!({})),
            ("tools/list", _) => rpc_result(&id, json!({ "tools": catalog::list(changed) })),
            ("tools/call", _) => {
                let name = message
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let arguments = message
                    .pointer("/params/arguments")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                match catalog::call(self.seed, name, &arguments, changed, fault) {
                    Ok(result) => rpc_result(&id, result),
                    Err((code, text)) => rpc_error(&id, code, &text),
                }
            }
            (other, _) => rpc_error(&id, -32601, &format!("Method not found: {other}")),
        };

        let mut reply = match self.stream_of(notify, fault, &answer) {
            Some(script) => {
                let mut reply = Reply::event_stream(StatusCode::OK, script);
                reply
                    .headers
                    .retain(|(name, _)| name != header::CONTENT_TYPE);
                reply.headers.push((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                ));
                reply
            }
            None => Reply::json(StatusCode::OK, &answer),
        };
        if method == "initialize" {
            reply = reply.with_header(SESSION_HEADER, self.sessions.open());
        }
        match exchange {
            Some(exchange) => reply.with_exchange(exchange),
            None => reply,
        }
    }

    /// The answer as server-sent events, when something must travel with it (the list-changed
    /// notification) or a stream fault paces it; `None` for a plain JSON answer.
    fn stream_of(&self, notify: bool, fault: Option<&Fault>, answer: &Value) -> Option<Script> {
        let streamed = matches!(
            fault,
            Some(Fault::SlowStream { .. } | Fault::Stall { .. } | Fault::StreamCut { .. })
        );
        if !notify && !streamed {
            return None;
        }
        let mut script = Script::default();
        if notify {
            script.send(sse_message(
                &json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" }),
            ));
        }
        match fault {
            Some(Fault::SlowStream { first_token, .. }) => script.wait(*first_token),
            Some(Fault::Stall { stall, .. }) => script.wait(*stall),
            Some(Fault::StreamCut { after, .. }) => {
                // The answer never arrives: the stream is cut where it would have been.
                script.cut_after = *after;
                script.cut();
                return Some(script);
            }
            _ => {}
        }
        script.send(sse_message(answer));
        Some(script)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_told_of_each_change_once() {
        let sessions = Sessions::default();
        let id = sessions.open();
        assert!(sessions.knows(&id));
        assert!(!sessions.tell_of_change(&id, false));
        assert!(sessions.tell_of_change(&id, true));
        assert!(!sessions.tell_of_change(&id, true));
        // The list changing back is a change too.
        assert!(sessions.tell_of_change(&id, false));
        assert!(!sessions.tell_of_change(&id, false));
        assert!(sessions.close(&id));
        assert!(!sessions.knows(&id));
        assert!(!sessions.tell_of_change(&id, true));
    }
}
