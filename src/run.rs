//! STUB: the orchestrator.
