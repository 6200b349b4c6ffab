//! The table of fault kinds (`faultline::fakes::fault::kinds`) is the one list: every kind in
//! it parses from a scenario file on each fake it names and is refused on the others, and the
//! README's table is the table's own rendering.

use faultline::fakes::fault::kinds::{self, KINDS};
use faultline::scenario::parse_scenario;

/// A one-window scenario aiming `example` at `fake`.
fn scenario(fake: &str, example: &str) -> String {
    format!(
        r#"name = "kinds"
description = "one fault"

[load]
users = 1
duration = "10s"

[[load.flows]]
name = "ask"
messages = ["hello"]

[[faults]]
fake = "{fake}"
start = "2s"
end = "4s"
{example}
"#
    )
}

#[test]
fn every_kind_parses_from_toml_on_the_fakes_it_names_and_no_other() {
    // Each category of fake by one of its names.
    let fakes = [
        ("llm", "llm"),
        ("tool", "weather"),
        ("redis", "redis"),
        ("mcp", "mcp"),
    ];
    for kind in KINDS {
        for (category, fake) in fakes {
            let parsed = parse_scenario(&scenario(fake, kind.example), "kinds.toml");
            if kind.fakes.contains(&category) {
                let plan = parsed.unwrap_or_else(|e| panic!("{} on {fake}: {e}", kind.name));
                assert_eq!(plan.faults[0].fault.kind(), kind.name);
            } else {
                let err = parsed.expect_err(kind.name).to_string();
                // A setting only another fake reads (MCP's `message`) is refused by name first.
                assert!(
                    err.contains("cannot be acted out") || err.contains("unknown field"),
                    "{}: {err}",
                    kind.name
                );
            }
        }
    }
    assert!(KINDS.len() >= 20, "kinds went missing from the table");
}

#[test]
fn invalid_tool_args_parses_from_toml() {
    let plan = parse_scenario(
        &scenario("llm", r#"kind = "invalid_tool_args""#),
        "kinds.toml",
    )
    .unwrap();
    assert_eq!(
        plan.faults[0].fault,
        faultline::fakes::fault::Fault::InvalidToolArgs
    );
}

#[test]
fn a_missing_setting_is_hinted_from_the_table() {
    let err = parse_scenario(&scenario("llm", r#"kind = "stall""#), "kinds.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs `after_chunks`; add e.g. after_chunks = 5"),
        "{err}"
    );
    let err = parse_scenario(&scenario("llm", r#"kind = "stal""#), "kinds.toml")
        .unwrap_err()
        .to_string();
    for kind in KINDS {
        assert!(err.contains(kind.name), "{} missing from: {err}", kind.name);
    }
}

#[test]
fn the_readme_table_is_the_kinds_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = "<!-- fault-kinds:start -->\n";
    let end = "<!-- fault-kinds:end -->";
    let from = readme
        .find(start)
        .expect("README has the fault-kinds start marker")
        + start.len();
    let to = readme
        .find(end)
        .expect("README has the fault-kinds end marker");
    // `FAULTLINE_BLESS=1 cargo test --test fault_kinds` rewrites the table after a change.
    if std::env::var_os("FAULTLINE_BLESS").is_some() {
        let blessed = format!(
            "{}{}{}",
            &readme[..from],
            kinds::markdown_table(),
            &readme[to..]
        );
        std::fs::write(path, blessed).unwrap();
        return;
    }
    assert_eq!(
        &readme[from..to],
        kinds::markdown_table(),
        "README.md's fault kinds table is stale: run FAULTLINE_BLESS=1 cargo test --test fault_kinds"
    );
}
