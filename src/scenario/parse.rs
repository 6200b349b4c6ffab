//! STUB: scenario parsing.
use std::path::Path;

use super::Plan;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(pub String);

/// Parses scenario text; `origin` names it in errors (a path, or `built-in:outage`).
pub fn parse_scenario(_text: &str, _origin: &str) -> Result<Plan, ScenarioError> {
    todo!()
}

/// Loads a scenario by built-in name or by path.
pub fn load_scenario(_name_or_path: &str) -> Result<Plan, ScenarioError> {
    let _ = Path::new("");
    todo!()
}
