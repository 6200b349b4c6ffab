//! STUB: target supervision.
