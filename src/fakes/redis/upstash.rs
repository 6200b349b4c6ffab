//! Redis over HTTP, as serverless apps reach it: the Upstash REST API that `@upstash/redis`
//! speaks, over the same keyspace as the RESP fake.
//!
//! - `POST /` with a JSON command array (`["SET", "k", "v", "EX", 100]`) answers
//!   `{"result": …}`, or `{"error": "ERR …"}` with status 400;
//! - `POST /pipeline` with an array of command arrays answers an array of those objects;
//! - `POST /multi-exec` does the same atomically (one lock over the whole batch);
//! - `Authorization: Bearer <token>` is required; without it: 401 `{"error": "Unauthorized"}`.
//!
//! Replies are RESP2-shaped JSON (HGETALL is a flat array), as Upstash answers. Serving, faults
//! (status, delay, hang, refuse, …) and journaling come from `fakes::http`; its journal's
//! route is the path, not the command.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};

use super::command::{Command, ConnCommand};
use super::db::Keyspace;
use super::frame::Frame;
use crate::fakes::fault::Switchboard;
use crate::fakes::http::{self, Reply, Request, Responder};
use crate::fakes::journal::Journal;
use crate::fakes::{FakeError, FakeHandle};

/// Starts the REST API on `127.0.0.1` at an ephemeral port, over `keyspace` (share it with
/// [`super::start`] through [`super::RedisOptions::keyspace`]).
pub async fn start_upstash(
    token: String,
    keyspace: Arc<Keyspace>,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    http::serve("upstash", Upstash { token, keyspace }, switchboard, journal).await
}

struct Upstash {
    token: String,
    keyspace: Arc<Keyspace>,
}

impl Responder for Upstash {
    fn answer(&self, request: &Request) -> Reply {
        let bearer = request
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "));
        if bearer != Some(self.token.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        if request.method != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("ERR invalid JSON: {e}")),
        };
        match request.uri.path() {
            "/" => match args(&body) {
                Ok(args) => {
                    let outcome = self.run(&args);
                    let status = if outcome.get("error").is_some() {
                        StatusCode::BAD_REQUEST
                    } else {
                        StatusCode::OK
                    };
                    Reply::json(status, &outcome)
                }
                Err(message) => error(StatusCode::BAD_REQUEST, &message),
            },
            path @ ("/pipeline" | "/multi-exec") => {
                let Some(commands) = body.as_array() else {
                    return error(StatusCode::BAD_REQUEST, "ERR expected an array of commands");
                };
                let parsed: Result<Vec<Vec<Bytes>>, String> = commands.iter().map(args).collect();
                let parsed = match parsed {
                    Ok(parsed) => parsed,
                    Err(message) => return error(StatusCode::BAD_REQUEST, &message),
                };
                let outcomes: Vec<Value> = if path == "/multi-exec" {
                    // One lock for the whole batch: no other client's command runs in between.
                    let mut db = self.keyspace.db(0);
                    parsed
                        .iter()
                        .map(|args| outcome(run_locked(&mut db, args)))
                        .collect()
                } else {
                    parsed.iter().map(|args| self.run(args)).collect()
                };
                Reply::json(StatusCode::OK, &Value::Array(outcomes))
            }
            path => error(StatusCode::NOT_FOUND, &format!("ERR no route {path}")),
        }
    }

    fn fault_reply(
        &self,
        _request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        let reason = status.canonical_reason().unwrap_or("error");
        error(status, reason).with_retry_after(retry_after)
    }
}

impl Upstash {
    fn run(&self, args: &[Bytes]) -> Value {
        outcome(run_locked(&mut self.keyspace.db(0), args))
    }
}

/// One command on database 0 (the REST API has no SELECT).
fn run_locked(db: &mut super::db::Db, args: &[Bytes]) -> Frame {
    if args.is_empty() {
        return Frame::error("ERR empty command");
    }
    match Command::parse(args) {
        Err(message) => Frame::error(message),
        Ok(Command::Data(data)) => data.apply(db, Instant::now()),
        Ok(Command::Conn(ConnCommand::Ping(None))) => Frame::Simple("PONG".into()),
        Ok(Command::Conn(ConnCommand::Ping(Some(text)) | ConnCommand::Echo(text))) => {
            Frame::Bulk(text)
        }
        Ok(Command::Conn(_)) => Frame::error("ERR command is not available over REST"),
    }
}

/// A JSON command array as arguments: strings as they are, numbers and booleans as text.
fn args(command: &Value) -> Result<Vec<Bytes>, String> {
    let Some(items) = command.as_array() else {
        return Err("ERR a command is a JSON array like [\"GET\", \"key\"]".into());
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(Bytes::from(s.clone())),
            Value::Number(n) => Ok(Bytes::from(n.to_string())),
            Value::Bool(b) => Ok(Bytes::from(b.to_string())),
            other => Err(format!("ERR unsupported argument {other}")),
        })
        .collect()
}

fn outcome(frame: Frame) -> Value {
    match frame {
        Frame::Error(message) => json!({ "error": message }),
        frame => json!({ "result": to_json(frame) }),
    }
}

fn to_json(frame: Frame) -> Value {
    match frame {
        Frame::Simple(s) | Frame::BigNumber(s) => Value::String(s),
        Frame::Error(e) => Value::String(e),
        Frame::Integer(n) => json!(n),
        Frame::Bulk(b) | Frame::Verbatim(_, b) => {
            Value::String(String::from_utf8_lossy(&b).into_owned())
        }
        Frame::Null | Frame::NullArray => Value::Null,
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            Value::Array(items.into_iter().map(to_json).collect())
        }
        Frame::Map(pairs) => Value::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [to_json(k), to_json(v)])
                .collect(),
        ),
        Frame::Double(x) => json!(x),
        Frame::Boolean(b) => json!(b),
    }
}

fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, &json!({ "error": message }))
}
