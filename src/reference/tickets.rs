//! `POST /api/tickets` {subject, body}: a write through the tickets tool,
//! `POST {TICKETS_API_URL}/tickets` with an `Idempotency-Key` header.
//!
//! The key is one per client request: derived (UUID v5) from the client's `x-request-id` when
//! it sent one, so a client retrying its own request cannot create a duplicate either; a fresh
//! UUID otherwise. Attempts that may not have reached the tool or may have failed before
//! writing (5xx, refused or reset connections, timeouts) are retried, always with that same
//! key; 4xx answers are not. The `retry-writes` flaw sends a new key on each retry instead.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use super::log::Logger;
use super::request::{error_response, request_id_from, with_request_id, Failure, RequestLog};
use super::tool::ToolError;
use super::App;

pub const ROUTE: &str = "/api/tickets";
const BAD_REQUEST: &str = "Please send a JSON body with a non-empty \"subject\" and \"body\".";
/// Attempts per ticket write, the first included.
const MAX_ATTEMPTS: u32 = 3;
/// Namespace for keys derived from request ids (any fixed UUID; this one is random).
const KEY_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6d1f_3a2c_9b7e_4f10_8c55_2e0a_71b4_d903);

/// The idempotency key for a write: stable for a client-given request id (plus `scope`, to
/// tell apart several writes of one request), random otherwise.
pub fn idempotency_key(request_id: &str, client_gave_id: bool, scope: &str) -> String {
    if client_gave_id {
        uuid::Uuid::new_v5(&KEY_NAMESPACE, format!("{request_id}:{scope}").as_bytes()).to_string()
    } else {
        uuid::Uuid::new_v4().to_string()
    }
}

pub struct TicketsTool {
    http: reqwest::Client,
    base_url: Option<String>,
    timeout: Duration,
    /// The `retry-writes` flaw.
    new_key_per_retry: bool,
    log: Logger,
}

impl TicketsTool {
    pub fn new(
        base_url: Option<String>,
        timeout: Duration,
        new_key_per_retry: bool,
        log: Logger,
    ) -> Self {
        TicketsTool {
            http: reqwest::Client::new(),
            base_url,
            timeout,
            new_key_per_retry,
            log,
        }
    }

    pub fn configured(&self) -> bool {
        self.base_url.is_some()
    }

    /// Creates a ticket; the tool's JSON answer on success.
    pub async fn create(
        &self,
        subject: &str,
        body: &str,
        key: &str,
        request_id: &str,
    ) -> Result<Value, ToolError> {
        let base = self.base_url.as_deref().ok_or(ToolError::NotConfigured)?;
        let url = format!("{base}/tickets");
        let payload = json!({"subject": subject, "body": body});
        let mut attempt = 1;
        loop {
            let key_now = if self.new_key_per_retry && attempt > 1 {
                uuid::Uuid::new_v4().to_string()
            } else {
                key.to_string()
            };
            let exchange = async {
                let response = self
                    .http
                    .post(&url)
                    .header("idempotency-key", &key_now)
                    .header("x-request-id", request_id)
                    .json(&payload)
                    .send()
                    .await?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, bytes))
            };
            let err = match tokio::time::timeout(self.timeout, exchange).await {
                Err(_) => ToolError::Timeout,
                Ok(Err(e)) => ToolError::Unreachable(e.to_string()),
                Ok(Ok((status, bytes))) if (200..300).contains(&status) => {
                    return match serde_json::from_slice::<Value>(&bytes) {
                        Ok(value @ Value::Object(_)) => Ok(value),
                        _ => Err(ToolError::Malformed),
                    };
                }
                Ok(Ok((status, _))) => ToolError::Status(status),
            };
            let retryable = match &err {
                ToolError::Status(status) => *status >= 500,
                ToolError::Timeout | ToolError::Unreachable(_) => true,
                _ => false,
            };
            if !retryable || attempt >= MAX_ATTEMPTS {
                return Err(err);
            }
            let wait = Duration::from_millis(rand::rng().random_range(0..=50u64 << attempt));
            self.log.warn(
                "tickets_retry",
                json!({
                    "requestId": request_id,
                    "attempt": attempt,
                    "reason": err.kind(),
                    "idempotencyKey": key_now,
                    "waitMs": wait.as_millis() as u64,
                }),
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[derive(Deserialize)]
struct TicketRequest {
    subject: String,
    body: String,
}

pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (request_id, given) = request_id_from(&headers);
    let mut log = RequestLog::new(app.clone(), ROUTE, request_id.clone());
    let response = match create(&app, &body, given, &mut log).await {
        Ok(answer) => {
            log.finish(201, None);
            (StatusCode::CREATED, Json(answer)).into_response()
        }
        Err(failure) => {
            log.finish(failure.status().as_u16(), Some(failure.kind()));
            error_response(&app, &request_id, &failure)
        }
    };
    with_request_id(&app, &request_id, response)
}

async fn create(
    app: &App,
    body: &[u8],
    client_gave_id: bool,
    log: &mut RequestLog,
) -> Result<Value, Failure> {
    let request: TicketRequest =
        serde_json::from_slice(body).map_err(|_| Failure::BadRequest(BAD_REQUEST))?;
    if request.subject.trim().is_empty() || request.body.trim().is_empty() {
        return Err(Failure::BadRequest(BAD_REQUEST));
    }
    if !app.tickets.configured() {
        return Err(Failure::TicketsNotConfigured);
    }
    let key = idempotency_key(&log.request_id, client_gave_id, "ticket");
    let mut span = log.trace.span("tool_tickets");
    let created = app
        .tickets
        .create(&request.subject, &request.body, &key, &log.request_id)
        .await;
    if created.is_err() {
        span.fail();
    }
    span.end();
    let created = created.map_err(|err| {
        app.log.warn(
            "tool_unavailable",
            json!({"requestId": log.request_id, "tool": "tickets", "reason": err.kind()}),
        );
        Failure::Tickets(err)
    })?;
    let ticket_id = created
        .get("id")
        .or_else(|| created.get("ticketId"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(json!({
        "ticketId": ticket_id,
        "requestId": log.request_id,
        "idempotencyKey": key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_a_client_id_are_stable_and_scoped() {
        let a = idempotency_key("req-1", true, "ticket");
        assert_eq!(a, idempotency_key("req-1", true, "ticket"));
        assert_ne!(a, idempotency_key("req-2", true, "ticket"));
        assert_ne!(a, idempotency_key("req-1", true, "call_2"));
        assert_ne!(
            idempotency_key("req-1", false, "ticket"),
            idempotency_key("req-1", false, "ticket")
        );
    }
}
