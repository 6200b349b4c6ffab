//! HTTP tool fakes: the APIs a chat backend calls as tools.
//!
//! - `weather`: `GET /weather?city=` with stable, checkable answers.
//! - `tickets`: `POST /tickets` with `Idempotency-Key` (a write) and `GET /tickets/{id}`, plus
//!   a [`TicketLedger`] of every write, from which a check can see duplicate side effects.
//! - `stubs`: user-defined stubs from `mocks/*.toml`, selected with wiremock's matchers.
//! - `standalone`: `faultline fake tool weather|tickets|stubs`.
//!
//! Errors, injected or not, are `{"error": "..."}` with the status, the shape of a typical
//! small JSON API. Faults, journaling and serving come from `fakes::http`, so every fault it
//! can act out applies to every tool fake alike.

pub mod standalone;
pub mod stubs;
pub mod tickets;
pub mod weather;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::http::Reply;

pub use stubs::{start_stubs, start_stubs_on, Stub, StubError, StubSet};
pub use tickets::{
    start_tickets, start_tickets_on, DuplicateWrite, TicketLedger, TicketWrite, WriteOutcome,
};
pub use weather::{start_weather, start_weather_on};

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, &json!({ "error": message }))
}

/// The answer to an injected status fault: the status's reason as the error, and
/// `retry-after` when the fault set one.
fn status_fault_reply(status: StatusCode, retry_after: Option<Duration>) -> Reply {
    let reason = status
        .canonical_reason()
        .map_or_else(|| format!("error {}", status.as_u16()), str::to_lowercase);
    error(status, &reason).with_retry_after(retry_after)
}
