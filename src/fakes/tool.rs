//! STUB: HTTP tool fakes (weather).
use std::sync::Arc;

use super::fault::Switchboard;
use super::journal::Journal;
use super::{FakeError, FakeHandle};

pub async fn start_weather(
    _switchboard: Arc<Switchboard>,
    _journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    todo!()
}
