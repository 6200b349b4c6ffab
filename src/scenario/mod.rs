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
pub use model::*;
pub use parse::{load_config, parse_config, parse_scenario, ScenarioError};
pub use profile::ServiceProfile;
pub use source::load_scenario;
