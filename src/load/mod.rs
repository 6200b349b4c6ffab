//! STUB: Goose load.
