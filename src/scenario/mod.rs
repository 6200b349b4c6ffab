//! Scenario files: the model ([`model`]), parsing with file:line:column errors ([`parse`]),
//! and the built-in catalog compiled into the binary ([`catalog`]).

pub mod catalog;
pub mod model;
pub mod parse;

pub use model::*;
pub use parse::{load_scenario, parse_scenario, ScenarioError};
