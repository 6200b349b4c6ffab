//! STUB: reports.
