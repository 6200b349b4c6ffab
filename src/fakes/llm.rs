//! STUB: the OpenAI-compatible fake LLM.
use std::sync::Arc;

use super::fault::Switchboard;
use super::journal::Journal;
use super::{FakeError, FakeHandle};

/// How the fake LLM behaves when no fault is on.
#[derive(Clone, Debug)]
pub struct LlmOptions {
    /// The API key clients must send as `Authorization: Bearer`; others get a 401.
    pub api_key: String,
    /// Seed for generated answers and embeddings.
    pub seed: u64,
}

pub async fn start(
    _options: LlmOptions,
    _switchboard: Arc<Switchboard>,
    _journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    todo!()
}
