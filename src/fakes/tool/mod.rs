//! HTTP tool fakes: the APIs a chat backend calls as tools.
//!
//! - `weather`: `GET /weather?city=` with stable, checkable answers.
//! - `tickets`: a write API of the service's shape ([`WriteSchema`]: by default any JSON object
//!   posted to `/tickets`) with idempotency keys, and `GET /tickets/{id}`.
//! - `stubs`: user-defined stubs from `mocks/*.toml`, selected with wiremock's matchers; a stub
//!   marked `idempotent` is a write with idempotency keys, like the tickets fake.
//! - `ledger`: the [`WriteLedger`] of every write those two keep (replays, refusals, duplicate
//!   side effects), what `writes.idempotent` reads; it also says what "the same write" is and
//!   what links a write to a client request.
//! - `standalone`: `faultline fake tool weather|tickets|stubs`.
//!
//! Errors, injected or not, are `{"error": "..."}` with the status, the shape of a typical
//! small JSON API. Faults, journaling and serving come from `fakes::http`, so every fault it
//! can act out applies to every tool fake alike.

pub mod ledger;
pub mod standalone;
pub mod stubs;
pub mod tickets;
pub mod weather;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::http::Reply;

pub use ledger::{DuplicateWrite, WriteLedger, WriteOutcome, WriteRecord};
pub use stubs::{start_stubs, start_stubs_on, Stub, StubError, StubSet};
pub use tickets::{start_tickets, start_tickets_on, WriteSchema};
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
