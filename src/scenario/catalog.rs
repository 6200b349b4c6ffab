//! The built-in scenarios: TOML files under `scenarios/`, compiled into the binary so
//! `faultline scenario outage` works from any directory.

use super::parse::parse_scenario;

/// (name, TOML text) of every built-in scenario; the first is the default.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("outage", include_str!("../../scenarios/outage.toml")),
    ("baseline", include_str!("../../scenarios/baseline.toml")),
    (
        "rate-limit",
        include_str!("../../scenarios/rate-limit.toml"),
    ),
    (
        "llm-timeout",
        include_str!("../../scenarios/llm-timeout.toml"),
    ),
    ("slow-llm", include_str!("../../scenarios/slow-llm.toml")),
    ("flaky", include_str!("../../scenarios/flaky.toml")),
    ("tool-down", include_str!("../../scenarios/tool-down.toml")),
    (
        "tool-writes",
        include_str!("../../scenarios/tool-writes.toml"),
    ),
    (
        "stream-cut",
        include_str!("../../scenarios/stream-cut.toml"),
    ),
    ("malformed", include_str!("../../scenarios/malformed.toml")),
    (
        "runaway-agent",
        include_str!("../../scenarios/runaway-agent.toml"),
    ),
    (
        "redis-down",
        include_str!("../../scenarios/redis-down.toml"),
    ),
    ("brownout", include_str!("../../scenarios/brownout.toml")),
    (
        "slow-stream",
        include_str!("../../scenarios/slow-stream.toml"),
    ),
    ("mcp-agent", include_str!("../../scenarios/mcp-agent.toml")),
    (
        "bedrock-throttle",
        include_str!("../../scenarios/bedrock-throttle.toml"),
    ),
];

/// The TOML text of the built-in scenario `name`.
pub fn get(name: &str) -> Option<&'static str> {
    BUILT_IN
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, text)| *text)
}

/// The built-in scenario names, in catalog order.
pub fn names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(name, _)| *name).collect()
}

/// (name, description) of every built-in scenario, for `faultline list`.
pub fn list() -> Vec<(String, String)> {
    BUILT_IN
        .iter()
        .map(|(name, text)| {
            // Tests keep every built-in valid; should one break, list it rather than panic.
            let description = match parse_scenario(text, &format!("built-in:{name}")) {
                Ok(plan) => plan.description,
                Err(e) => format!("(invalid: {e})"),
            };
            (name.to_string(), description)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_parses_under_its_own_name() {
        for (name, text) in BUILT_IN {
            let plan =
                parse_scenario(text, &format!("built-in:{name}")).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(plan.name, *name);
            assert!(!plan.description.is_empty(), "{name} has no description");
        }
    }

    #[test]
    fn list_gives_names_and_descriptions_in_catalog_order() {
        let listed = list();
        assert_eq!(listed.len(), BUILT_IN.len());
        assert_eq!(listed[0].0, "outage");
        assert!(listed.iter().all(|(_, d)| !d.starts_with("(invalid")));
    }
}
