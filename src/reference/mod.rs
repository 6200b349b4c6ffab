//! STUB: the reference target.
