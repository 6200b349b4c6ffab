//! The service profile in faultline.toml (`[logs]`, `[metrics]`, `[traces]`): what it parses
//! into, its precedence (a scenario's explicit `[expect.*]` key, then the profile, then the
//! default), and each kind of mistake reported at its file:line:column with the fix.

use std::path::Path;

use faultline::evidence::MetricsFormat;
use faultline::scenario::profile::Counts;
use faultline::scenario::{load_scenario, parse_config, parse_scenario, Config, ScenarioError};

/// A profile of a service with its own names for everything.
const PROFILE: &str = r#"[target]
command = ["python", "app.py", "--port", "{port}"]
env = { OPENAI_BASE_URL = "{llm}/v1" }

[logs]
request_id_field = "req_id"
input_tokens_field = "usage.in"
output_tokens_field = "usage.out"
level_field = "severity"
message_field = "msg"
file = "logs/app.log"

[metrics]
path = "/metrics"
format = "prometheus"
llm_errors = { selector = "chat_llm_failures_total", counts = "attempts" }
tokens_input = 'chat_tokens_total{kind="prompt"}'
tokens_output = 'chat_tokens_total{kind="completion"}'
cache_hit_ratio = ""

[traces]
request_id_attribute = "http.request_id"

[tools.tickets]
path = "/tickets"
required = ["subject", "user"]
"#;

/// The least a scenario holds: one user asking one question.
const MINIMAL: &str = r#"name = "mine"
[load]
users = 1
duration = "10s"
[[load.flows]]
name = "ask"
messages = ["Hello?"]
"#;

fn config(text: &str) -> Result<Config, ScenarioError> {
    parse_config(text, "faultline.toml", Path::new("/srv/chat"))
}

fn error(text: &str) -> (usize, usize, String) {
    let err = config(text).unwrap_err();
    let (line, column) = err.position().expect("a positioned error");
    (line, column, err.to_string())
}

#[test]
fn a_profile_describes_logs_metrics_and_traces_with_where_each_key_was_written() {
    let config = config(PROFILE).unwrap();
    let logs = &config.profile.logs;
    assert_eq!(logs.request_id_field.as_ref().unwrap().value, "req_id");
    assert_eq!(
        logs.request_id_field.as_ref().unwrap().at,
        "faultline.toml:6:20"
    );
    assert_eq!(logs.input_tokens_field.as_ref().unwrap().value, "usage.in");
    assert_eq!(
        config.log_file.as_deref(),
        Some(Path::new("/srv/chat/logs/app.log"))
    );
    let metrics = config.metrics.as_ref().unwrap();
    assert_eq!(metrics.path.value, "/metrics");
    assert_eq!(metrics.format, Some(MetricsFormat::Prometheus));
    let errors = config.profile.metrics.llm_errors.as_ref().unwrap();
    assert_eq!(errors.value.selector, "chat_llm_failures_total");
    assert_eq!(errors.value.counts, Counts::Attempts);
    assert_eq!(
        config
            .profile
            .metrics
            .cache_hit_ratio
            .as_ref()
            .unwrap()
            .value,
        ""
    );
    assert!(config.profile.metrics.agent_steps.is_none());
    assert_eq!(
        config
            .profile
            .traces
            .request_id_attribute
            .as_ref()
            .unwrap()
            .value,
        "http.request_id"
    );
    assert!(
        config.tools.tickets.is_some(),
        "[tools.*] is read beside the profile's tables"
    );
}

#[test]
fn every_built_in_scenario_takes_the_profile_over_its_defaults() {
    let config = config(PROFILE).unwrap();
    for name in faultline::scenario::catalog::names() {
        let plan = load_scenario(name).unwrap().with_config(&config).unwrap();
        let expect = plan.expectations();
        assert_eq!(expect.logs.request_id_field, "req_id", "{name}");
        assert_eq!(expect.logs.output_tokens_field, "usage.out", "{name}");
        assert_eq!(expect.logs.level_field.as_deref(), Some("severity"));
        // The level field reaches the check that looks for a logged warning.
        assert_eq!(expect.fallback.level_field.as_deref(), Some("severity"));
        assert_eq!(expect.metrics.llm_errors, "chat_llm_failures_total");
        assert_eq!(expect.metrics.llm_errors_counts, Counts::Attempts);
        assert_eq!(expect.metrics.cache_hit_ratio, "", "{name}");
        // Not in the profile: the built-in default.
        assert_eq!(expect.metrics.agent_steps, "/agent_steps_count", "{name}");
        assert_eq!(expect.traces.request_id_attribute, "http.request_id");
        assert_eq!(expect.traces.llm_span_attribute, "gen_ai.operation.name");
        assert_eq!(plan.target.metrics_path.as_deref(), Some("/metrics"));
        assert_eq!(plan.target.metrics_format, Some(MetricsFormat::Prometheus));
        assert_eq!(
            plan.target.log_file.as_deref(),
            Some(Path::new("/srv/chat/logs/app.log"))
        );
    }
}

#[test]
fn a_key_the_scenario_sets_explicitly_wins_over_the_profile() {
    let scenario = format!(
        r#"{MINIMAL}
[expect.logs]
request_id_field = "rid"
tokens_tolerance = 0.1

[expect.metrics]
llm_errors = "llm_errors_total"
"#
    );
    let plan = parse_scenario(&scenario, "mine.toml").unwrap();
    let plan = plan.with_config(&config(PROFILE).unwrap()).unwrap();
    let expect = plan.expectations();
    assert_eq!(expect.logs.request_id_field, "rid", "the scenario's own");
    assert_eq!(expect.logs.input_tokens_field, "usage.in", "the profile's");
    assert_eq!(expect.logs.tokens_tolerance, 0.1);
    // A plain selector counts calls, whatever the profile's figure counted.
    assert_eq!(expect.metrics.llm_errors, "llm_errors_total");
    assert_eq!(expect.metrics.llm_errors_counts, Counts::Calls);
    assert_eq!(
        expect.metrics.tokens_input,
        r#"chat_tokens_total{kind="prompt"}"#
    );
    // Where each came from, for `faultline validate` and the probe's messages.
    let profile = &expect.profile;
    assert_eq!(
        profile.logs.request_id_field.as_ref().unwrap().at,
        "mine.toml:10:20"
    );
    assert_eq!(
        profile.logs.input_tokens_field.as_ref().unwrap().at,
        "faultline.toml:7:22"
    );
    assert_eq!(
        profile.metrics.llm_errors.as_ref().unwrap().at,
        "mine.toml:14:14"
    );
}

#[test]
fn the_target_metrics_path_still_works_and_the_metrics_table_wins() {
    let old =
        "[target]\ncommand = [\"app\"]\nmetrics_path = \"/stats\"\nmetrics_format = \"json\"\n";
    let plan = load_scenario("outage")
        .unwrap()
        .with_config(&config(old).unwrap())
        .unwrap();
    assert_eq!(plan.target.metrics_path.as_deref(), Some("/stats"));
    assert_eq!(plan.target.metrics_format, Some(MetricsFormat::Json));
    let both = format!("{old}\n[metrics]\npath = \"/metrics\"\n");
    let plan = load_scenario("outage")
        .unwrap()
        .with_config(&config(&both).unwrap())
        .unwrap();
    assert_eq!(plan.target.metrics_path.as_deref(), Some("/metrics"));
    // The format named with the old path does not carry over to the new one.
    assert_eq!(plan.target.metrics_format, None);
}

#[test]
fn expect_in_a_profile_says_where_the_service_keys_go() {
    let (line, column, message) = error(
        "[target]\nurl = \"http://127.0.0.1:3000\"\n\n[expect.logs]\nrequest_id_field = \"rid\"\n",
    );
    assert_eq!((line, column), (4, 2));
    assert!(
        message.contains("[expect] belongs in a scenario file"),
        "{message}"
    );
    assert!(message.contains("[logs]"), "{message}");
}

#[test]
fn unknown_keys_in_profile_tables_suggest_the_closest() {
    let (line, column, message) = error("[logs]\nrequest_id_feild = \"rid\"\n");
    assert_eq!((line, column), (2, 1));
    assert!(
        message.contains("unknown field `request_id_feild` in [logs]"),
        "{message}"
    );
    assert!(
        message.contains("did you mean `request_id_field`?"),
        "{message}"
    );

    let (line, _, message) = error("[metrics]\npath = \"/metrics\"\ntoken_input = \"x\"\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("did you mean `tokens_input`?"),
        "{message}"
    );

    let (line, column, message) =
        error("[metrics]\nllm_errors = { selector = \"x_total\", count = \"calls\" }\n");
    assert_eq!((line, column), (2, 38));
    assert!(
        message.contains("unknown key `count` in `llm_errors` in [metrics]"),
        "{message}"
    );
    assert!(message.contains("did you mean `counts`?"), "{message}");
}

#[test]
fn bad_values_in_profile_tables_say_where_and_what_to_write() {
    let (line, column, message) =
        error("[metrics]\nllm_errors = { selector = \"x_total\", counts = \"retries\" }\n");
    assert_eq!((line, column), (2, 38));
    assert!(message.contains("use \"calls\""), "{message}");

    let (line, column, message) = error("[metrics]\ntokens_input = 'tokens{kind=prompt}'\n");
    assert_eq!((line, column), (2, 29), "points inside the selector");
    assert!(
        message.contains("expected a label value in double quotes"),
        "{message}"
    );

    let (_, _, message) = error("[metrics]\nformat = \"prometheus\"\n");
    assert!(
        message.contains("`format` in [metrics] needs `path`"),
        "{message}"
    );

    let (_, _, message) = error("[metrics]\npath = \"metrics\"\n");
    assert!(message.contains("must start with \"/\""), "{message}");

    let (line, column, message) = error("[logs]\ninput_tokens_field = \"usage..in\"\n");
    assert_eq!((line, column), (2, 22));
    assert!(
        message.contains("a dotted path into an object"),
        "{message}"
    );

    let (_, _, message) = error("[traces]\nrequest_id_attribute = \"request id\"\n");
    assert!(message.contains("without spaces"), "{message}");

    let (_, _, message) = error("[metrics]\nllm_errors = 3\n");
    assert!(
        message.contains("`llm_errors` in [metrics] is 3, neither a string nor a table"),
        "{message}"
    );
}

#[test]
fn a_scenario_may_describe_what_its_error_figure_counts_too() {
    let scenario = format!(
        "{MINIMAL}[expect.metrics]\nllm_errors = {{ selector = \"/errors\", counts = \"attempts\" }}\n"
    );
    let plan = parse_scenario(&scenario, "mine.toml").unwrap();
    assert_eq!(plan.expect.metrics.llm_errors, "/errors");
    assert_eq!(plan.expect.metrics.llm_errors_counts, Counts::Attempts);
    let bad = scenario.replace("counts = \"attempts\"", "counts = 2");
    let err = parse_scenario(&bad, "mine.toml").unwrap_err();
    assert_eq!(err.position().map(|p| p.0), Some(9));
    assert!(err.to_string().contains("[expect.metrics]"), "{err}");
}
