//! What the fakes saw, as evidence: one upstream attempt ([`Attempt`]) and one write to a
//! tool ([`WriteAttempt`]). The fakes produce these; checks and reports read them, and
//! neither needs the other's code.

use serde::{Deserialize, Serialize};

/// One upstream attempt as a fake saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Milliseconds from the run's start to when the attempt arrived.
    pub at_ms: f64,
    /// Which fake: `llm`, `weather`, `redis`.
    pub fake: String,
    /// Route (`/v1/chat/completions`) or, for Redis, the command.
    pub route: String,
    /// Correlation key: the nonce found in the prompt or query, else a propagated request id.
    pub key: Option<String>,
    /// The fault applied, as [`crate::fakes::fault::Fault::label`] writes it.
    pub fault: Option<String>,
    /// Status answered; `None` when no answer was sent (hang, dropped).
    pub status: Option<u16>,
    /// Milliseconds from arrival to the end of the answer (or to giving up).
    pub duration_ms: f64,
    /// Token usage reported in the answer, when the fake answered with `usage`.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The client's own retry number for this attempt, when it says so: the official OpenAI
    /// and Anthropic SDKs send `x-stainless-retry-count` (0 on the first try, 1 on the first
    /// retry, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
    /// For a streamed answer, the events actually sent before it ended or was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_sent: Option<u32>,
    /// Which API key the attempt sent, as a class, never the key itself (the fake LLM only;
    /// `None` for fakes that take no key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeySent>,
    /// What the attempt asked for in its API's own terms, where a check needs more than the
    /// route (the Responses API's conversation state, an MCP request's method and tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
}

/// An attempt in its API's own terms, for the checks of practices only that API has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "api", rename_all = "snake_case")]
pub enum Exchange {
    /// `POST /v1/responses`: the stored response the request continued from, if any.
    Responses {
        previous_response_id: Option<String>,
    },
    /// One JSON-RPC request to an MCP server.
    Mcp {
        /// The `Mcp-Session-Id` it carried (`None` for `initialize`).
        session: Option<String>,
        /// `initialize`, `tools/list`, `tools/call`, …
        method: String,
        /// For `tools/call`: the tool named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool: Option<String>,
        /// For `tools/call` answered by the server: whether the tool was on its list then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_listed: Option<bool>,
        /// The answer told the session that the tool list changed
        /// (`notifications/tools/list_changed` ahead of the result).
        #[serde(default)]
        told_list_changed: bool,
    },
}

/// Which API key an attempt sent, relative to the key faultline gave the service (`{llm_key}`).
///
/// A class rather than the key or a fingerprint of it: a service that reads its key from the
/// environment may send a real provider key, and the journal is served by the control API and
/// written into `evidence.json`. Even a short hash of a real secret is a derivative of it that
/// has no business in a report, and the class answers what a person needs to know: did the
/// service send a key at all, and was it the one it was given?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeySent {
    /// The key faultline gave the service (`{llm_key}`, or the fake's `--api-key`).
    Given,
    /// Some other key (with `faultline fake llm --api-key any`, every key sent).
    Other,
    /// No `Authorization: Bearer` and no `x-api-key` header.
    None,
}

/// One write a tool fake received (e.g. `POST /tickets`), for duplicate side effects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteAttempt {
    pub at_ms: f64,
    /// Which fake: `tickets`.
    pub fake: String,
    /// The client request it belongs to: the nonce found in it, else the `x-request-id` it
    /// carried (see `fakes::tool::ledger`); `None` when unlinked.
    pub key: Option<String>,
    /// The `Idempotency-Key` header sent, if any.
    pub idempotency_key: Option<String>,
    /// The write's identity (method, path and payload, volatile values masked), so the same
    /// write under another key can be spotted.
    pub payload_hash: u64,
    /// True when the fake created something new (a side effect), false for a replay it
    /// recognised by its idempotency key.
    pub side_effect: bool,
    /// The status the fake answered (0 in evidence written before it was recorded).
    #[serde(default)]
    pub status: u16,
}
