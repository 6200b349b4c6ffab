//! Scenario files: the model ([`model`]), parsing with file:line:column errors ([`parse`]),
//! and the built-in catalog compiled into the binary ([`catalog`]).

pub mod api;
pub mod catalog;
pub mod config;
pub mod model;
pub mod parse;
pub mod profile;
pub mod source;

pub use config::Config;

/// Longest echo of user input in an error message: enough to recognise it, never megabytes.
pub const ECHO_CHARS: usize = 120;

/// Unquoted text of an error message, cut only when absurdly long (a message is a few lines).
pub fn echo_tail(text: &str) -> String {
    const MESSAGE_CHARS: usize = 2_000;
    if text.chars().count() <= MESSAGE_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MESSAGE_CHARS).collect();
    format!("{head}… (cut)")
}

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
pub use parse::{load_config, parse_config, parse_scenario, ScenarioError};
pub use profile::ServiceProfile;
pub use source::load_scenario;
