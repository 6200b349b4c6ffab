//! STUB: the fake Redis (RESP2/RESP3), built by its own issue.

pub mod standalone;
