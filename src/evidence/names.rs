//! The fakes' names, typed: compared as [`FakeName`], written as `llm`, `weather`, `tickets`,
//! `redis`.

use serde::{Deserialize, Serialize};

/// The fakes a fault can be aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FakeName {
    Llm,
    Weather,
    Tickets,
    Redis,
    /// The MCP tool server.
    Mcp,
}

impl FakeName {
    pub const ALL: [FakeName; 5] = [
        FakeName::Llm,
        FakeName::Weather,
        FakeName::Tickets,
        FakeName::Redis,
        FakeName::Mcp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FakeName::Llm => "llm",
            FakeName::Weather => "weather",
            FakeName::Tickets => "tickets",
            FakeName::Redis => "redis",
            FakeName::Mcp => "mcp",
        }
    }

    /// The kind of fake, as [`crate::fakes::fault::Fault::supported_by`] names it: `llm`,
    /// `tool` (the HTTP tool fakes), `redis` or `mcp`.
    pub fn category(self) -> &'static str {
        match self {
            FakeName::Llm => "llm",
            FakeName::Weather | FakeName::Tickets => "tool",
            FakeName::Redis => "redis",
            FakeName::Mcp => "mcp",
        }
    }
}

impl std::fmt::Display for FakeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Evidence written to JSON keeps the fake as text (old runs' files, and fakes such as the
/// OTLP collector that no fault aims at); comparing it with a [`FakeName`] keeps the spelling
/// in one place.
impl PartialEq<FakeName> for String {
    fn eq(&self, name: &FakeName) -> bool {
        self == name.as_str()
    }
}

impl PartialEq<FakeName> for str {
    fn eq(&self, name: &FakeName) -> bool {
        self == name.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_read_from_evidence_compares_with_its_fake() {
        let (llm, redis) = (String::from("llm"), "redis");
        assert!(llm == FakeName::Llm);
        assert!(*redis == FakeName::Redis);
        assert!(llm != FakeName::Redis);
        let names: Vec<String> = FakeName::ALL.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["llm", "weather", "tickets", "redis", "mcp"]);
    }
}
