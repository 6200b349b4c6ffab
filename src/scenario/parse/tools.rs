//! `[tools.<name>]` of a `faultline.toml`: the shape of the service's write tools, for the
//! tool fakes that stand in for them. Today one: `[tools.tickets]`, the tickets fake at
//! `{tool.tickets}`:
//!
//! ```toml
//! [tools.tickets]
//! path = "/v1/tickets"                # the write route (POST); default "/tickets"
//! required = ["subject", "user"]      # fields a write must carry; default none
//! idempotency_header = "Idempotency-Key"
//! ```
//!
//! A scenario aims its tickets faults at the default route (`route = "/tickets"`); with
//! another `path`, [`Plan::with_tools`] moves those routes onto it, so a built-in scenario
//! faults the service's writes wherever they go.

use std::collections::BTreeMap;

use axum::http::HeaderName;
use serde::Deserialize;
use serde_spanned::Spanned;

use super::raw::Text;
use super::{closest, url_path, ScenarioError, Source};
use crate::fakes::tool::WriteSchema;
use crate::scenario::model::{FakeName, Plan};

/// `[tools]` as written: one table per tool, by name.
pub type RawTools = BTreeMap<Text, RawWriteTool>;

/// `[tools.<name>]` for a write tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWriteTool {
    pub path: Option<Text>,
    pub required: Option<Spanned<Vec<Text>>>,
    pub idempotency_header: Option<Text>,
}

/// What `[tools]` says: the shape of each write tool the service calls, where it set one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tools {
    /// `[tools.tickets]`.
    pub tickets: Option<WriteSchema>,
}

/// The tools whose shape a profile can set.
const WRITE_TOOLS: &[&str] = &["tickets"];
/// Tool fakes that only answer reads, so have no write shape to set.
const READ_TOOLS: &[&str] = &["weather"];

/// `[tools]`, checked.
pub(super) fn build_tools(raw: Option<RawTools>, src: &Source) -> Result<Tools, ScenarioError> {
    let mut tools = Tools::default();
    for (name, raw) in raw.unwrap_or_default() {
        match name.get_ref().as_str() {
            "tickets" => tools.tickets = Some(write_schema(raw, "[tools.tickets]", src)?),
            other if READ_TOOLS.contains(&other) => {
                return Err(src.error(
                    &name,
                    format!(
                        "[tools.{other}]: the {other} fake only answers reads, so it has no \
                         write shape to set; tools with one: {}",
                        WRITE_TOOLS.join(", ")
                    ),
                ))
            }
            other => {
                let mut message = format!(
                    "unknown tool `{other}` in [tools]; tools with a shape to set: {}",
                    WRITE_TOOLS.join(", ")
                );
                if let Some(close) = closest(other, WRITE_TOOLS.iter().copied()) {
                    message.push_str(&format!("; did you mean [tools.{close}]?"));
                }
                return Err(src.error(&name, message));
            }
        }
    }
    Ok(tools)
}

fn write_schema(
    raw: RawWriteTool,
    table: &str,
    src: &Source,
) -> Result<WriteSchema, ScenarioError> {
    let mut schema = WriteSchema::default();
    if let Some(path) = &raw.path {
        let route = url_path(path, &format!("`path` in {table}"), src)?;
        if route.contains(['?', '#']) {
            return Err(src.error(
                path,
                format!(
                    "`path` in {table} is \"{route}\"; give the route alone, without a query, \
                     e.g. \"/v1/tickets\""
                ),
            ));
        }
        schema.path = route;
    }
    if let Some(required) = &raw.required {
        let mut fields: Vec<String> = Vec::new();
        for field in required.get_ref() {
            let name = field.get_ref().trim();
            if name.split('.').any(str::is_empty) {
                return Err(src.error(
                    field,
                    format!(
                        "`required` in {table} holds \"{}\"; give field names (a dotted name \
                         reaches into objects), e.g. required = [\"subject\", \"customer.email\"]",
                        field.get_ref()
                    ),
                ));
            }
            if fields.iter().any(|f| f == name) {
                return Err(src.error(
                    field,
                    format!("`required` in {table} names \"{name}\" twice"),
                ));
            }
            fields.push(name.to_owned());
        }
        schema.required = fields;
    }
    if let Some(header) = &raw.idempotency_header {
        let name = header.get_ref().trim();
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(src.error(
                header,
                format!(
                    "`idempotency_header` in {table} is \"{}\", which is not an HTTP header \
                     name; write e.g. idempotency_header = \"Idempotency-Key\"",
                    header.get_ref()
                ),
            ));
        }
        schema.idempotency_header = name.to_owned();
    }
    Ok(schema)
}

impl Plan {
    /// The plan with the profile's tool shapes: the tickets fake takes the service's schema,
    /// and tickets faults aimed at the default write route move to the service's route.
    pub(crate) fn with_tools(mut self, tools: &Tools) -> Plan {
        let Some(schema) = &tools.tickets else {
            return self;
        };
        let default = WriteSchema::default().path;
        let moved_to = schema.path.trim_end_matches('/');
        for window in &mut self.faults {
            let Some(route) = &window.route else {
                continue;
            };
            if window.fake != FakeName::Tickets || schema.path == default {
                continue;
            }
            if let Some(rest) = route.strip_prefix(&default) {
                let moved = format!("{moved_to}{rest}");
                window.route = Some(if moved.is_empty() { "/".into() } else { moved });
            }
        }
        self.fakes.tickets = schema.clone();
        self
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::scenario::{load_scenario, parse_config, Config};

    fn config(text: &str) -> Result<Config, String> {
        parse_config(text, "faultline.toml", Path::new(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn tools_tickets_sets_the_fakes_schema() {
        let config = config(
            "[tools.tickets]\npath = \"/v1/tickets\"\nrequired = [\"subject\", \"customer.email\"]\n\
             idempotency_header = \"X-Idempotency-Key\"\n",
        )
        .unwrap();
        let schema = config.tools.tickets.unwrap();
        assert_eq!(schema.path, "/v1/tickets");
        assert_eq!(schema.required, ["subject", "customer.email"]);
        assert_eq!(schema.idempotency_header, "X-Idempotency-Key");
        assert_eq!(super::Tools::default(), self::config("").unwrap().tools);
    }

    #[test]
    fn a_misspelt_key_or_tool_is_an_error_where_it_is_with_the_closest_name() {
        let error = config("[tools.tickets]\nrequried = [\"subject\"]\n").unwrap_err();
        assert!(error.starts_with("faultline.toml:2:1: "), "{error}");
        assert!(
            error.contains("unknown field `requried` in [tools.tickets]")
                && error.contains("did you mean `required`?"),
            "{error}"
        );
        let error = config("[tools.ticket]\npath = \"/t\"\n").unwrap_err();
        assert!(
            error.starts_with("faultline.toml:1:8: unknown tool `ticket`"),
            "{error}"
        );
        assert!(error.contains("did you mean [tools.tickets]?"), "{error}");
        let error = config("[tools.weather]\npath = \"/w\"\n").unwrap_err();
        assert!(error.contains("only answers reads"), "{error}");
    }

    #[test]
    fn bad_values_are_errors_at_the_value_saying_what_to_write() {
        for (text, at, says) in [
            ("path = \"tickets\"", "2:8", "a path must start with \"/\""),
            ("path = \"/t?x=1\"", "2:8", "without a query"),
            ("required = [\"a\", \"a\"]", "2:18", "names \"a\" twice"),
            ("required = [\"a.\"]", "2:13", "give field names"),
            (
                "idempotency_header = \"Idem Key\"",
                "2:22",
                "not an HTTP header name",
            ),
            ("required = \"subject\"", "2:12", "expected an array"),
        ] {
            let error = config(&format!("[tools.tickets]\n{text}\n")).unwrap_err();
            assert!(
                error.starts_with(&format!("faultline.toml:{at}: ")) && error.contains(says),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn a_scenarios_tickets_faults_follow_the_services_write_route() {
        let plan = load_scenario("tool-writes").unwrap();
        assert_eq!(plan.faults[0].route.as_deref(), Some("/tickets"));
        let config = config("[tools.tickets]\npath = \"/api/v2/issues\"\n").unwrap();

        let plan = plan.with_config(&config).unwrap();

        assert_eq!(plan.faults[0].route.as_deref(), Some("/api/v2/issues"));
        assert_eq!(plan.fakes.tickets.path, "/api/v2/issues");
        let root = self::config("[tools.tickets]\npath = \"/\"\n").unwrap();
        let plan = load_scenario("tool-writes")
            .unwrap()
            .with_config(&root)
            .unwrap();
        assert_eq!(plan.faults[0].route.as_deref(), Some("/"));
    }
}
