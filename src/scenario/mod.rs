//! Scenario files: the model ([`model`]), parsing with file:line:column errors ([`parse`]),
//! and the built-in catalog compiled into the binary ([`catalog`]).

pub mod api;
pub mod catalog;
pub mod config;
pub mod model;
pub mod parse;
pub mod profile;

pub use config::Config;

/// Longest echo of user input in an error message: enough to recognise it, never megabytes.
pub const ECHO_CHARS: usize = 120;

/// `text` for quoting in an error: whole when short, else its start and its length.
pub fn echo(text: &str) -> String {
    let count = text.chars().count();
    if count <= ECHO_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(ECHO_CHARS).collect();
    format!("{head}… ({count} characters)")
}
pub use model::*;
pub use parse::{load_config, load_scenario, parse_config, parse_scenario, ScenarioError};
pub use profile::ServiceProfile;
