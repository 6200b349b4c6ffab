//! STUB: built-in scenarios.
/// (name, TOML text) of every built-in scenario.
pub const BUILT_IN: &[(&str, &str)] = &[];
