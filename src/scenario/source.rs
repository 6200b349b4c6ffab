//! Where a scenario comes from: a built-in of the catalog, by name, or a file. Outside the
//! parser so that the catalog (which the parser does not need) and the parser do not import
//! each other.

use std::path::Path;

use super::catalog;
use super::model::Plan;
use super::parse::{parse_scenario, ScenarioError};

/// Loads a scenario by built-in name (see [`catalog::BUILT_IN`]) or by path.
///
/// A built-in name wins over a file of the same name in the working directory; write
/// `./outage` to mean the file.
pub fn load_scenario(name_or_path: &str) -> Result<Plan, ScenarioError> {
    if let Some(text) = catalog::get(name_or_path) {
        return parse_scenario(text, &format!("built-in:{name_or_path}"));
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(ScenarioError::Unknown {
            name: name_or_path.to_string(),
            built_ins: catalog::names().into_iter().map(String::from).collect(),
        });
    }
    let text = super::parse::read_text(path, name_or_path)?;
    parse_scenario(&text, name_or_path)
}
