//! Helpers the integration tests share. Each test file that needs them says `mod common;`.

use std::path::PathBuf;

/// The Python with the official SDKs, redis-py and the OpenTelemetry exporter: the one
/// `FAULTLINE_PYTHON` names, else the `.venv` that scripts/test provisions.
pub fn python() -> PathBuf {
    let python = std::env::var_os("FAULTLINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no Python at {}: run scripts/test (it creates .venv with every \
         tests/python/requirements-*.txt installed) or set FAULTLINE_PYTHON",
        python.display()
    );
    python
}
