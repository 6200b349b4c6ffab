//! Scenario files end to end: every built-in parses, a full example becomes the expected
//! `Plan`, and each kind of mistake is reported at its `origin:line:column` with the field named.

use std::collections::BTreeMap;
use std::time::Duration;

use faultline::evidence::Phase;
use faultline::fakes::fault::Fault;
use faultline::scenario::catalog;
use faultline::scenario::{
    load_scenario, parse_scenario, ErrorExpectations, Expectations, FakeName, FaultWindow, Flow,
    Load, PhaseLimits, Plan, ScenarioError, TargetSpec,
};

/// A valid scenario using every field; error cases below break it one line at a time.
const FULL: &str = r#"name = "full"
description = "Every field set."
seed = 42

[load]
users = 2
duration = "1m 30s"
think_time = "100ms"
request_timeout = "10s"
quick_scale = 0.5

[[load.flows]]
name = "ask"
weight = 3
messages = ["How do I reset my password?", "What plans do you offer?"]

[[load.flows]]
name = "weather"
messages = ["What's the weather in Paris today?"]

[target]
flaws = ["no-retry"]
env = { OPENAI_BASE_URL = "{llm}/v1", OPENAI_API_KEY = "{llm_key}", WEATHER_URL = "{tool.weather}", REDIS_URL = "{redis}" }
ready_path = "/ready"
ready_timeout = "5s"

[[faults]]
fake = "llm"
route = "/v1/chat/completions"
start = "20s"
end = "30s"
rate = 0.5
kind = "status"
code = 429
retry_after = "2s"

[[faults]]
fake = "weather"
start = "30s"
end = "40s"
kind = "delay"
delay = "3s"

[[faults]]
fake = "redis"
start = "40s"
end = "50s"
kind = "refuse"

[[faults]]
fake = "llm"
start = "50s"
end = "1m 30s"
kind = "hang"

[expect.baseline]
p95 = "1s"
error_rate = 0.01

[expect.fault]
p95 = "8s"

[expect.errors]
allowed_statuses = [502, 503]
within = "10s"
"#;

fn full_plan() -> Plan {
    Plan {
        name: "full".into(),
        description: "Every field set.".into(),
        source: "full.toml".into(),
        seed: 42,
        quick: false,
        load: Load {
            executor: Default::default(),
            users: 2,
            duration: Duration::from_secs(90),
            think_time: Duration::from_millis(100),
            request_timeout: Duration::from_secs(10),
            quick_scale: 0.5,
            secrets: Vec::new(),
            flows: vec![
                Flow {
                    name: "ask".into(),
                    weight: 3,
                    messages: vec![
                        "How do I reset my password?".into(),
                        "What plans do you offer?".into(),
                    ],
                    kind: Default::default(),
                    request: Default::default(),
                },
                Flow {
                    name: "weather".into(),
                    weight: 1,
                    messages: vec!["What's the weather in Paris today?".into()],
                    kind: Default::default(),
                    request: Default::default(),
                },
            ],
        },
        target: TargetSpec {
            ready_path: "/ready".into(),
            ready_timeout: Duration::from_secs(5),
            ..TargetSpec::reference(
                BTreeMap::from([
                    ("OPENAI_BASE_URL".into(), "{llm}/v1".into()),
                    ("OPENAI_API_KEY".into(), "{llm_key}".into()),
                    ("WEATHER_URL".into(), "{tool.weather}".into()),
                    ("REDIS_URL".into(), "{redis}".into()),
                ]),
                vec!["no-retry".into()],
            )
        },
        api: Default::default(),
        fakes: Default::default(),
        faults: vec![
            FaultWindow {
                fake: FakeName::Llm,
                route: Some("/v1/chat/completions".into()),
                start: Duration::from_secs(20),
                end: Duration::from_secs(30),
                rate: 0.5,
                first_attempts: None,
                fault: Fault::status(429, Some(Duration::from_secs(2))),
            },
            FaultWindow {
                fake: FakeName::Weather,
                route: None,
                start: Duration::from_secs(30),
                end: Duration::from_secs(40),
                rate: 1.0,
                first_attempts: None,
                fault: Fault::Delay {
                    delay: Duration::from_secs(3),
                    distribution: Default::default(),
                },
            },
            FaultWindow {
                fake: FakeName::Redis,
                route: None,
                start: Duration::from_secs(40),
                end: Duration::from_secs(50),
                rate: 1.0,
                first_attempts: None,
                fault: Fault::Refuse,
            },
            FaultWindow {
                fake: FakeName::Llm,
                route: None,
                start: Duration::from_secs(50),
                end: Duration::from_secs(90),
                rate: 1.0,
                first_attempts: None,
                fault: Fault::Hang,
            },
        ],
        expect: Expectations {
            phases: BTreeMap::from([
                (
                    Phase::Baseline,
                    PhaseLimits {
                        p95: Some(Duration::from_secs(1)),
                        error_rate: Some(0.01),
                    },
                ),
                (
                    Phase::Fault,
                    PhaseLimits {
                        p95: Some(Duration::from_secs(8)),
                        error_rate: None,
                    },
                ),
            ]),
            errors: ErrorExpectations {
                allowed_statuses: vec![502, 503],
                within: Duration::from_secs(10),
                message_pointer: None,
            },
            ..Expectations::default()
        },
    }
}

/// FULL with the first occurrence of `from` replaced by `to` (which must exist).
fn full_with(from: &str, to: &str) -> String {
    assert!(FULL.contains(from), "FULL has no {from:?}");
    FULL.replacen(from, to, 1)
}

/// The error parsing `text` gives, as displayed.
fn error_of(text: &str) -> String {
    match parse_scenario(text, "s.toml") {
        Ok(plan) => panic!("expected an error, got {plan:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts the error starts with `s.toml:line:col:` and mentions every word in `words`.
fn assert_error(text: &str, line: usize, column: usize, words: &[&str]) {
    let message = error_of(text);
    let at = format!("s.toml:{line}:{column}: ");
    assert!(message.starts_with(&at), "expected {at:?} in: {message}");
    for word in words {
        assert!(message.contains(word), "expected {word:?} in: {message}");
    }
}

// ---- valid files ---------------------------------------------------------------------------

#[test]
fn every_built_in_parses() {
    for (name, text) in catalog::BUILT_IN {
        let plan = parse_scenario(text, name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.name, *name);
    }
}

#[test]
fn a_full_example_becomes_the_expected_plan() {
    let plan = parse_scenario(FULL, "full.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan, full_plan());
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let text = r#"
name = "tiny"
[load]
users = 1
duration = "10s"
[[load.flows]]
name = "ask"
messages = ["hi"]
"#;
    let plan = parse_scenario(text, "tiny.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.seed, 1);
    assert_eq!(plan.description, "");
    assert_eq!(plan.source, "tiny.toml");
    assert!(!plan.quick);
    assert_eq!(plan.load.think_time, Duration::from_millis(250));
    assert_eq!(plan.load.request_timeout, Duration::from_secs(30));
    assert_eq!(plan.load.quick_scale, 0.25);
    assert_eq!(plan.load.flows[0].weight, 1);
    assert_eq!(plan.target.command, None);
    assert_eq!(plan.target.ready_path, "/healthz");
    assert_eq!(plan.target.ready_timeout, Duration::from_secs(20));
    assert_eq!(plan.target.metrics_path.as_deref(), Some("/admin/metrics"));
    assert!(plan.faults.is_empty());
    assert!(plan.expect.phases.is_empty());
    assert_eq!(plan.expect.errors, ErrorExpectations::default());
}

#[test]
fn a_command_target_has_no_metrics_path_unless_given() {
    let text = full_with(
        r#"flaws = ["no-retry"]"#,
        r#"command = ["python", "app.py"]"#,
    );
    let plan = parse_scenario(&text, "s.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plan.target.command,
        Some(vec!["python".to_string(), "app.py".to_string()])
    );
    assert_eq!(plan.target.metrics_path, None);
    assert!(plan.target.flaws.is_empty());

    let text = full_with(
        r#"flaws = ["no-retry"]"#,
        "command = [\"node\", \"server.js\"]\nmetrics_path = \"/metrics\"",
    );
    let plan = parse_scenario(&text, "s.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.target.metrics_path.as_deref(), Some("/metrics"));
}

#[test]
fn integers_are_accepted_where_numbers_are_expected() {
    let text = full_with("rate = 0.5", "rate = 1");
    let plan = parse_scenario(&text, "s.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.faults[0].rate, 1.0);
}

// ---- loading -------------------------------------------------------------------------------

#[test]
fn load_scenario_finds_the_outage_built_in() {
    let plan = load_scenario("outage").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.name, "outage");
    assert_eq!(plan.source, "built-in:outage");
    assert_eq!(plan.load.users, 4);
    assert_eq!(plan.load.duration, Duration::from_secs(60));
    assert_eq!(
        plan.faults
            .iter()
            .map(|f| f.fault.label())
            .collect::<Vec<_>>(),
        ["status 503 retry-after 1s", "hang"]
    );
    assert_eq!(plan.target.env["LLM_TIMEOUT_MS"], "2500");
    assert_eq!(plan.expect.phases.len(), 3);
    assert_eq!(plan.expect.phases[&Phase::Fault].error_rate, None);
    assert_eq!(plan.expect.errors.within, Duration::from_secs(9));
}

#[test]
fn quick_outage_runs_for_fifteen_seconds() {
    let plan = load_scenario("outage")
        .unwrap_or_else(|e| panic!("{e}"))
        .quick();
    assert!(plan.quick);
    assert_eq!(plan.load.duration, Duration::from_secs(15));
    assert_eq!(plan.faults[0].start, Duration::from_secs(5));
    assert_eq!(plan.faults[1].end, Duration::from_secs(10));
}

#[test]
fn an_unknown_name_lists_the_built_ins() {
    let err = load_scenario("nope").unwrap_err();
    assert!(matches!(err, ScenarioError::Unknown { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("`nope`"), "{message}");
    for (name, _) in catalog::BUILT_IN {
        assert!(message.contains(name), "{message}");
    }
}

#[test]
fn a_path_that_exists_is_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, FULL).unwrap();
    let path = path.to_str().unwrap();

    let plan = load_scenario(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.name, "full");
    assert_eq!(plan.source, path);
}

#[test]
fn errors_in_a_file_on_disk_name_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, full_with("users = 2", "usres = 2")).unwrap();
    let path = path.to_str().unwrap();

    let message = load_scenario(path).unwrap_err().to_string();
    assert!(message.starts_with(&format!("{path}:6:1: ")), "{message}");
}

#[test]
fn catalog_list_describes_each_built_in() {
    let listed = catalog::list();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..2], ["outage", "baseline"]);
    assert_eq!(names.len(), 16, "{names:?}");
    assert!(names.contains(&"brownout") && names.contains(&"slow-stream"));
    assert!(listed[0].1.contains("503"), "{:?}", listed[0]);
    assert!(listed
        .iter()
        .all(|(_, description)| !description.is_empty() && !description.starts_with("(invalid")));
}

// ---- errors: syntax and shape --------------------------------------------------------------

#[test]
fn a_syntax_error_points_at_the_bad_token() {
    assert_error(
        &full_with("users = 2", "users = 2 3"),
        6,
        9,
        &["invalid TOML"],
    );
}

#[test]
fn a_duplicate_table_is_named() {
    let text = format!("{FULL}\n[load]\nusers = 1\n");
    let message = error_of(&text);
    assert!(message.contains("duplicate key `load`"), "{message}");
}

#[test]
fn an_unknown_top_level_field_is_named_with_the_fields_expected() {
    assert_error(
        &full_with("seed = 42", "sede = 42"),
        3,
        1,
        &[
            "unknown field `sede` at the top level",
            "seed",
            "did you mean `seed`",
        ],
    );
}

#[test]
fn an_unknown_field_in_load_reads_like_the_docs_say() {
    let message = error_of(&full_with("users = 2", "usres = 2"));
    assert!(
        message.starts_with(
            "s.toml:6:1: unknown field `usres` in [load], expected one of executor, users, \
             rate, start_rate, start_users, max_in_flight, arrivals, stages, duration, \
             think_time, request_timeout, quick_scale, secrets, flows; did you mean `users`?"
        ),
        "{message}"
    );
}

#[test]
fn an_unknown_field_in_a_flow_names_the_flow_table() {
    assert_error(
        &full_with("weight = 3", "wieght = 3"),
        14,
        1,
        &["`wieght` in [[load.flows]]", "did you mean `weight`"],
    );
}

#[test]
fn an_unknown_field_in_a_fault_names_the_faults_table() {
    assert_error(
        &full_with("rate = 0.5", "ratio = 0.5"),
        32,
        1,
        &["`ratio` in [[faults]]", "rate"],
    );
}

#[test]
fn an_unknown_field_in_expect_is_named() {
    assert_error(
        &full_with("p95 = \"8s\"", "p59 = \"8s\""),
        61,
        1,
        &["`p59` in [expect.fault]", "did you mean `p95`"],
    );
    assert_error(
        &full_with("[expect.fault]", "[expect.fualt]"),
        60,
        9,
        &["`fualt` in [expect]", "did you mean `fault`"],
    );
}

#[test]
fn a_wrong_type_names_the_field_and_an_example() {
    assert_error(
        &full_with("users = 2", "users = \"two\""),
        6,
        9,
        &["`users` in [load]", "expected a whole number", "users = 4"],
    );
    assert_error(
        &full_with("duration = \"1m 30s\"", "duration = 90"),
        7,
        12,
        &["`duration` in [load]", "expected a string", "\"60s\""],
    );
}

#[test]
fn a_missing_field_is_named_at_its_table() {
    let text = full_with("name = \"weather\"\n", "");
    assert_error(&text, 17, 1, &["missing field `name` in [[load.flows]]"]);
}

// ---- errors: meaning -----------------------------------------------------------------------

#[test]
fn a_bad_duration_says_what_a_duration_looks_like() {
    assert_error(
        &full_with("think_time = \"100ms\"", "think_time = \"100 parsecs\""),
        8,
        14,
        &[
            "`think_time` in [load]",
            "expected a duration like \"30s\" or \"250ms\"",
        ],
    );
}

#[test]
fn a_fault_that_ends_before_it_starts_is_refused() {
    assert_error(
        &full_with("end = \"30s\"", "end = \"20s\""),
        31,
        7,
        &["`end` in [[faults]] #1", "after `start`"],
    );
}

#[test]
fn a_fault_that_outlasts_the_run_is_refused() {
    assert_error(
        &full_with("end = \"1m 30s\"", "end = \"2m\""),
        53,
        7,
        &["`end` in [[faults]] #4", "after the run ends"],
    );
}

#[test]
fn a_code_on_a_hang_is_a_mistake() {
    let text = full_with("kind = \"hang\"", "kind = \"hang\"\ncode = 503");
    assert_error(
        &text,
        55,
        8,
        &["`code`", "not a setting of kind = \"hang\"", "no settings"],
    );
}

#[test]
fn a_status_fault_needs_a_code() {
    let text = full_with("code = 429\n", "");
    assert_error(
        &text,
        33,
        8,
        &["kind = \"status\"", "needs `code`", "code = 503"],
    );
}

#[test]
fn a_delay_fault_needs_a_delay() {
    let text = full_with("delay = \"3s\"\n", "");
    assert_error(&text, 41, 8, &["needs `delay`"]);
}

#[test]
fn an_out_of_range_status_code_is_refused() {
    assert_error(
        &full_with("code = 429", "code = 42"),
        34,
        8,
        &["`code`", "100 to 599"],
    );
}

#[test]
fn an_unknown_kind_lists_the_valid_kinds() {
    assert_error(
        &full_with("kind = \"hang\"", "kind = \"hung\""),
        54,
        8,
        &["unknown fault kind `hung`", "refuse, status, delay, hang"],
    );
}

#[test]
fn an_unknown_fake_lists_the_valid_fakes() {
    assert_error(
        &full_with("fake = \"redis\"", "fake = \"postgres\""),
        45,
        8,
        &["unknown fake `postgres`", "llm, weather, tickets, redis"],
    );
}

#[test]
fn a_rate_out_of_range_is_refused() {
    assert_error(
        &full_with("rate = 0.5", "rate = 1.5"),
        32,
        8,
        &["`rate`", "at most 1"],
    );
    assert_error(&full_with("rate = 0.5", "rate = 0"), 32, 8, &["`rate`"]);
    assert_error(&full_with("rate = 0.5", "rate = nan"), 32, 8, &["`rate`"]);
}

#[test]
fn a_route_must_be_a_path() {
    assert_error(
        &full_with("route = \"/v1/chat/completions\"", "route = \"v1/chat\""),
        29,
        9,
        &["`route`", "start with \"/\""],
    );
}

#[test]
fn a_refuse_fault_takes_no_route_or_rate() {
    let text = full_with("kind = \"refuse\"", "kind = \"refuse\"\nrate = 0.5");
    assert_error(&text, 49, 8, &["`rate`", "refuse"]);
}

#[test]
fn an_unknown_placeholder_is_pointed_at() {
    let text = full_with("{tool.weather}", "{tool.wether}");
    assert_error(
        &text,
        23,
        84,
        &[
            "unknown placeholder `{tool.wether}`",
            "WEATHER_URL",
            "{tool.weather}",
        ],
    );
}

#[test]
fn flaws_with_a_command_are_refused() {
    let text = full_with(
        r#"flaws = ["no-retry"]"#,
        "command = [\"python\", \"app.py\"]\nflaws = [\"no-retry\"]",
    );
    assert_error(&text, 23, 9, &["`flaws`", "`command`"]);
}

#[test]
fn zero_users_are_refused() {
    assert_error(
        &full_with("users = 2", "users = 0"),
        6,
        9,
        &["`users`", "at least 1"],
    );
    assert_error(
        &full_with("users = 2", "users = -3"),
        6,
        9,
        &["`users`", "at least 1"],
    );
}

#[test]
fn empty_flows_are_refused() {
    let start = FULL.find("[[load.flows]]").unwrap();
    let end = FULL.find("[target]").unwrap();
    let text = format!("{}flows = []\n\n{}", &FULL[..start], &FULL[end..]);
    assert_error(&text, 12, 9, &["`flows` in [load] is empty"]);
}

#[test]
fn a_flow_without_messages_is_refused() {
    let text = full_with(
        r#"messages = ["What's the weather in Paris today?"]"#,
        "messages = []",
    );
    assert_error(&text, 19, 12, &["`messages` of flow `weather` is empty"]);
}

#[test]
fn duplicate_flow_names_are_refused() {
    let text = full_with("name = \"weather\"", "name = \"ask\"");
    assert_error(&text, 18, 8, &["flow name `ask`", "line 13"]);
}

#[test]
fn an_error_rate_out_of_range_is_refused() {
    assert_error(
        &full_with("error_rate = 0.01", "error_rate = 2"),
        58,
        14,
        &["`error_rate` in [expect.baseline]", "from 0 to 1"],
    );
}

#[test]
fn an_allowed_status_out_of_range_is_refused() {
    assert_error(
        &full_with(
            "allowed_statuses = [502, 503]",
            "allowed_statuses = [502, 5030]",
        ),
        64,
        26,
        &["`allowed_statuses`", "5030"],
    );
}

#[test]
fn a_zero_run_time_is_refused() {
    assert_error(
        &full_with("duration = \"1m 30s\"", "duration = \"0s\""),
        7,
        12,
        &["`duration` in [load] is zero"],
    );
}

#[test]
fn a_quick_scale_out_of_range_is_refused() {
    assert_error(
        &full_with("quick_scale = 0.5", "quick_scale = 0"),
        10,
        15,
        &["`quick_scale`"],
    );
}

// ---- never panic ---------------------------------------------------------------------------

#[test]
fn odd_inputs_give_errors_not_panics() {
    let inputs = [
        "",
        "\n\n\n",
        "[",
        "name = ",
        "é = 1",
        "name = \"x\"\nload = 3\n",
        "name = \"x\"\n[load]\nusers = 99999999999999999999\n",
        "name = \"x\"\n[load]\nusers = 1\nduration = \"99999999999999999999999y\"\n",
        "name = \"x\"\n[[load]]\n",
        "name = \"x\"\nfaults = 1\n",
        "name = \"x\"\n[expect]\nbaseline = []\n",
        "\u{feff}name = \"x\"",
        "name = \"x\"\r\n[load]\r\nusers = 0\r\n",
    ];
    for input in inputs {
        assert!(parse_scenario(input, "odd").is_err(), "{input:?} parsed");
    }
    // Every prefix of a valid file, cut at any character, is handled.
    for (at, _) in FULL.char_indices() {
        let _ = parse_scenario(&FULL[..at], "cut");
    }
}

/// A scenario with one fault table (on `fake`) made of `lines`, at line 12.
fn with_fault(fake: &str, lines: &str) -> String {
    format!(
        "name = \"f\"\n[load]\nusers = 1\nduration = \"60s\"\n[[load.flows]]\nname = \"ask\"\n\
         messages = [\"hi\"]\n\n[[faults]]\nfake = \"{fake}\"\nstart = \"1s\"\nend = \"2s\"\n{lines}\n"
    )
}

#[test]
fn every_fault_kind_parses_with_its_settings() {
    let cases = [
        ("llm", "kind = \"reset\"", "reset"),
        ("llm", "kind = \"drop\"", "drop"),
        ("llm", "kind = \"slow_stream\"\nfirst_token = \"1s\"\ninter_token = \"80ms\"\njitter = 0.2", "slow_stream first 1s then 80ms"),
        ("llm", "kind = \"stall\"\nafter_chunks = 3\nstall = \"2s\"", "stall 2s after 3 chunks"),
        ("llm", "kind = \"stream_cut\"\nafter_chunks = 5", "stream_cut after 5 chunks"),
        ("llm", "kind = \"malformed\"\nwhat = \"truncated_json\"", "malformed truncated_json"),
        ("llm", "kind = \"finish_reason\"\nreason = \"content_filter\"", "finish_reason content_filter"),
        ("llm", "kind = \"tool_loop\"", "tool_loop"),
        ("llm", "kind = \"rate_limit\"\nrequests_per_minute = 60", "rate_limit 60 rpm"),
        ("llm", "kind = \"delay\"\ndelay = \"1s\"\ndistribution = \"log_normal\"", "delay 1s log_normal"),
        ("llm", "kind = \"status\"\ncode = 429\nretry_after = \"2s\"\nshould_retry = false\nerror_code = \"insufficient_quota\"", "status 429 retry-after 2s"),
        ("redis", "kind = \"redis_error\"\nreply = \"LOADING Redis is loading the dataset in memory\"", "redis_error LOADING"),
        ("tickets", "kind = \"malformed\"\nwhat = \"invalid_json\"", "malformed invalid_json"),
    ];
    for (fake, lines, label) in cases {
        let plan = parse_scenario(&with_fault(fake, lines), "s.toml")
            .unwrap_or_else(|e| panic!("{lines}: {e}"));
        assert_eq!(plan.faults[0].fault.label(), label);
    }
}

#[test]
fn first_attempts_limits_a_fault_to_the_first_tries_of_each_request() {
    let text = with_fault("llm", "kind = \"status\"\ncode = 503\nfirst_attempts = 1");
    let plan = parse_scenario(&text, "s.toml").unwrap();
    assert_eq!(plan.faults[0].first_attempts, Some(1));
    let text = with_fault("llm", "kind = \"status\"\ncode = 503\nfirst_attempts = 0");
    assert_error(&text, 15, 18, &["`first_attempts`", "from 1 to 1000"]);
}

#[test]
fn a_fault_the_fake_cannot_act_out_is_refused() {
    let text = with_fault("llm", "kind = \"redis_error\"\nreply = \"LOADING x\"");
    assert_error(
        &text,
        13,
        8,
        &["cannot be acted out by fake `llm`", "redis"],
    );
    let text = with_fault("redis", "kind = \"status\"\ncode = 503");
    assert_error(&text, 13, 8, &["fake `redis`", "llm, tool"]);
}

#[test]
fn a_stream_cut_needs_to_know_when_to_cut() {
    let text = with_fault("llm", "kind = \"stream_cut\"");
    assert_error(&text, 13, 8, &["`after_chunks` or `after`"]);
}

#[test]
fn a_bad_choice_lists_the_choices() {
    let text = with_fault("llm", "kind = \"malformed\"\nwhat = \"garbage\"");
    assert_error(&text, 14, 8, &["\"garbage\"", "invalid_json", "no_usage"]);
}

#[test]
fn a_redis_route_is_a_command() {
    let text = with_fault("redis", "kind = \"hang\"\nroute = \"get\"");
    assert_eq!(
        parse_scenario(&text, "s.toml").unwrap().faults[0]
            .route
            .as_deref(),
        Some("GET")
    );
    let text = with_fault("redis", "kind = \"hang\"\nroute = \"/x\"");
    assert_error(&text, 14, 9, &["command name"]);
}

/// A scenario with a `[target]`/`[api]` tail appended.
fn with_tail(tail: &str) -> String {
    format!(
        "name = \"t\"\n[load]\nusers = 1\nduration = \"10s\"\n[[load.flows]]\nname = \"ask\"\n\
         messages = [\"hi\"]\n{tail}"
    )
}

#[test]
fn an_api_table_describes_requests_and_where_answers_keep_their_markers() {
    let text = with_tail(
        "kind = \"stream\"\npath = \"/v1/ask\"\n\n[api]\nheaders = { Authorization = \"Bearer t\" }\n\
         request_id_pointer = \"/meta/id\"\ndegraded_pointer = \"\"\n\n[api.stream]\nmethod = \"post\"\n\
         body = { q = \"{message}\", stream = true }\n",
    );
    let plan = parse_scenario(&text, "s.toml").unwrap();
    let flow = &plan.load.flows[0];
    assert_eq!(flow.kind, faultline::evidence::FlowKind::Stream);
    let request = plan.api.request_for(flow.kind, &flow.request);
    assert_eq!(request.path, "/v1/ask");
    assert_eq!(request.method, "POST");
    assert_eq!(request.headers["authorization"], "Bearer t");
    assert_eq!(request.body["q"], "{message}");
    assert_eq!(
        plan.api.response.request_id_pointer.as_deref(),
        Some("/meta/id")
    );
    assert_eq!(plan.api.response.degraded_pointer, None);
}

#[test]
fn a_body_without_the_message_is_refused() {
    let text = with_tail("\n[api.chat]\nbody = { q = \"hello\" }\n");
    assert_error(&text, 10, 8, &["no \"{message}\"", "correlation nonce"]);
}

#[test]
fn a_pointer_must_start_with_a_slash() {
    let text = with_tail("\n[api]\nerror_pointer = \"error\"\n");
    assert_error(&text, 10, 17, &["JSON pointer", "\"/error\""]);
}

#[test]
fn an_attached_target_must_be_on_this_machine() {
    let plan = parse_scenario(
        &with_tail("[target]\nurl = \"http://127.0.0.1:3000/\"\n"),
        "s.toml",
    )
    .unwrap();
    assert_eq!(plan.target.url.as_deref(), Some("http://127.0.0.1:3000"));
    assert_eq!(plan.target.metrics_path, None);
    let text = with_tail("[target]\nurl = \"http://10.0.0.5:3000\"\n");
    assert_error(&text, 9, 7, &["only to this machine", "127.0.0.1"]);
    let text = with_tail("[target]\nurl = \"http://[::1]:3000\"\n");
    assert!(parse_scenario(&text, "s.toml").is_ok());
}

#[test]
fn url_and_command_are_exclusive() {
    let text = with_tail("[target]\ncommand = [\"x\"]\nurl = \"http://localhost:1\"\n");
    assert_error(&text, 10, 7, &["exclusive"]);
}

#[test]
fn a_config_gives_a_reference_scenario_the_users_target_and_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = faultline::scenario::parse_config(
        "[target]\ncommand = [\"python\", \"app.py\"]\ncwd = \"svc\"\nenv = { A = \"1\" }\n\n[api.chat]\npath = \"/chat\"\n",
        "faultline.toml",
        dir.path(),
    )
    .unwrap();
    let plan = load_scenario("outage")
        .unwrap()
        .with_config(&config)
        .unwrap();
    assert_eq!(
        plan.target.command.as_deref(),
        Some(&["python".to_string(), "app.py".to_string()][..])
    );
    assert_eq!(plan.target.cwd, Some(dir.path().join("svc")));
    assert_eq!(plan.target.env["A"], "1");
    // The scenario's own env rides along where the config is silent.
    assert_eq!(plan.target.env["LLM_TIMEOUT_MS"], "2500");
    assert_eq!(plan.api.chat.path, "/chat");
}

#[test]
fn a_config_error_names_the_config_file() {
    let error = faultline::scenario::parse_config(
        "[target]\ncomand = []\n",
        "faultline.toml",
        std::path::Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(error.starts_with("faultline.toml:2:1:"), "{error}");
    assert!(error.contains("comand"), "{error}");
}

// ---- check-family expectations ---------------------------------------------------------------

/// The smallest valid scenario: seven lines, so a table appended to it starts on line 8.
const MINI: &str = r#"name = "x"
[load]
users = 1
duration = "10s"
[[load.flows]]
name = "ask"
messages = ["hi"]
"#;

#[test]
fn every_check_family_gets_defaults_without_expect() {
    let plan = parse_scenario(MINI, "s.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.expect, Expectations::default());
    assert_eq!(plan.expect.retries.max_attempts, 5);
    assert_eq!(plan.expect.recovery.windows, 3);
    assert_eq!(plan.expect.logs.request_id_field, "requestId");
    assert_eq!(plan.expect.metrics.llm_errors, "/llm_errors_total");
    assert!(plan.expect.skip.is_empty());
}

#[test]
fn every_check_family_table_is_read() {
    let text = format!(
        "{MINI}{}",
        r#"[expect]
skip = ["cost", "retries.jitter"]
[expect.retries]
max_attempts = 3
amplification = 2.5
min_growth = 1.5
min_jitter = 0.2
non_retryable = [400]
retryable = [429, 503]
max_unretried = 0.1
[expect.writes]
max_duplicates = 0
[expect.fallback]
tool_flows = ["weather"]
tool_success_rate = 0.9
redis_success_rate = 0.99
[expect.recovery]
p95 = "2s"
within = "5s"
window = "500ms"
windows = 4
success_tolerance = 0.1
p95_factor = 2
mitigate_within = "3s"
fast_fail = "300ms"
long_outage = "20s"
[expect.logs]
request_id_field = "request_id"
input_tokens_field = "prompt_tokens"
output_tokens_field = "completion_tokens"
tokens_route = "/v1/messages"
tokens_tolerance = 0
[expect.metrics]
llm_errors = "/llm/errors"
tokens_input = "/tokens/in"
tokens_output = "/tokens/out"
cache_hit_ratio = ""
agent_steps = "/agent/steps"
tokens_route = "/v1/messages"
tolerance = 0.1
[expect.cost]
ratio = 1.5
tokens_route = "/v1/messages"
[expect.agent]
max_llm_calls = 5
llm_route = "/v1/messages"
[expect.stream]
first_token_p95 = "1500ms"
inter_token_p95 = "200ms"
"#
    );
    let e = parse_scenario(&text, "s.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .expect;
    assert_eq!(e.skip, ["cost", "retries.jitter"]);
    assert_eq!(e.retries.max_attempts, 3);
    assert_eq!(e.retries.amplification, 2.5);
    assert_eq!(e.retries.min_growth, 1.5);
    assert_eq!(e.retries.min_jitter, 0.2);
    assert_eq!(e.retries.non_retryable, [400]);
    assert_eq!(e.retries.retryable, [429, 503]);
    assert_eq!(e.retries.max_unretried, 0.1);
    assert_eq!(e.writes.max_duplicates, 0);
    assert_eq!(e.fallback.tool_flows, ["weather"]);
    assert_eq!(e.fallback.tool_success_rate, 0.9);
    assert_eq!(e.fallback.redis_success_rate, 0.99);
    // [expect.recovery] holds both the phase's limits and the recovery check's settings.
    assert_eq!(e.phases[&Phase::Recovery].p95, Some(Duration::from_secs(2)));
    assert_eq!(e.recovery.within, Duration::from_secs(5));
    assert_eq!(e.recovery.window, Duration::from_millis(500));
    assert_eq!(e.recovery.windows, 4);
    assert_eq!(e.recovery.success_tolerance, 0.1);
    assert_eq!(e.recovery.p95_factor, 2.0);
    assert_eq!(e.recovery.mitigate_within, Duration::from_secs(3));
    assert_eq!(e.recovery.fast_fail, Duration::from_millis(300));
    assert_eq!(e.recovery.long_outage, Duration::from_secs(20));
    assert_eq!(e.logs.request_id_field, "request_id");
    assert_eq!(e.logs.input_tokens_field, "prompt_tokens");
    assert_eq!(e.logs.output_tokens_field, "completion_tokens");
    assert_eq!(e.logs.tokens_route, "/v1/messages");
    assert_eq!(e.logs.tokens_tolerance, 0.0);
    assert_eq!(e.metrics.llm_errors, "/llm/errors");
    assert_eq!(e.metrics.tokens_input, "/tokens/in");
    assert_eq!(e.metrics.tokens_output, "/tokens/out");
    assert_eq!(e.metrics.cache_hit_ratio, "");
    assert_eq!(e.metrics.agent_steps, "/agent/steps");
    assert_eq!(e.metrics.tokens_route, "/v1/messages");
    assert_eq!(e.metrics.tolerance, 0.1);
    assert_eq!(e.cost.ratio, 1.5);
    assert_eq!(e.cost.tokens_route, "/v1/messages");
    assert_eq!(e.agent.max_llm_calls, 5);
    assert_eq!(e.agent.llm_route, "/v1/messages");
    assert_eq!(e.stream.first_token_p95, Duration::from_millis(1500));
    assert_eq!(e.stream.inter_token_p95, Duration::from_millis(200));
}

/// `table` appended to MINI: its first line is line 8 of the file.
fn mini_with(table: &str) -> String {
    format!("{MINI}{table}")
}

#[test]
fn bad_values_in_check_family_tables_are_pointed_at() {
    let cases: [(&str, usize, usize, &[&str]); 12] = [
        (
            "[expect.retries]\nmax_attempts = 0\n",
            9,
            16,
            &["`max_attempts` in [expect.retries] is 0", "from 1 to 1000"],
        ),
        (
            "[expect.retries]\nnon_retryable = [400, 4010]\n",
            9,
            23,
            &["`non_retryable` in [expect.retries] holds 4010"],
        ),
        (
            "[expect.writes]\nmax_duplicates = -1\n",
            9,
            18,
            &["`max_duplicates` in [expect.writes] is -1"],
        ),
        (
            "[expect.fallback]\nredis_success_rate = 1.5\n",
            9,
            22,
            &[
                "`redis_success_rate` in [expect.fallback] is 1.5",
                "from 0 to 1",
            ],
        ),
        (
            "[expect.recovery]\nwindows = 0\n",
            9,
            11,
            &["`windows` in [expect.recovery] is 0"],
        ),
        (
            "[expect.recovery]\nwithin = \"soon\"\n",
            9,
            10,
            &["`within` in [expect.recovery] is not a duration"],
        ),
        (
            "[expect.logs]\ntokens_route = \"v1/chat/completions\"\n",
            9,
            16,
            &["`tokens_route` in [expect.logs]", "must start with \"/\""],
        ),
        (
            // Not a JSON pointer, so a Prometheus series; the space is where it goes wrong.
            "[expect.metrics]\nllm_errors = \"llm errors_total\"\n",
            9,
            19,
            &[
                "`llm_errors` in [expect.metrics]",
                "unexpected `errors_total`",
                "Prometheus series",
                "JSON pointer",
            ],
        ),
        (
            "[expect.cost]\nratio = 0\n",
            9,
            9,
            &["`ratio` in [expect.cost] is 0", "more than 0"],
        ),
        (
            "[expect.agent]\nmax_llm_calls = 0\n",
            9,
            17,
            &["`max_llm_calls` in [expect.agent] is 0"],
        ),
        (
            "[expect.stream]\nfirst_token_p95 = \"0s\"\n",
            9,
            19,
            &["`first_token_p95` in [expect.stream] is zero"],
        ),
        (
            "[expect]\nskip = [\"cost\", \"retires\"]\n",
            9,
            17,
            &[
                "`skip` in [expect] names \"retires\"",
                "did you mean `retries`",
            ],
        ),
    ];
    for (table, line, column, words) in cases {
        assert_error(&mini_with(table), line, column, words);
    }
}

#[test]
fn unknown_keys_in_check_family_tables_are_named() {
    assert_error(
        &mini_with("[expect.stream]\nfirst_token = \"1s\"\n"),
        9,
        1,
        &[
            "unknown field `first_token` in [expect.stream]",
            "did you mean `first_token_p95`",
        ],
    );
    assert_error(
        &mini_with("[expect.retries]\nmax_attempt = 3\n"),
        9,
        1,
        &[
            "unknown field `max_attempt` in [expect.retries]",
            "did you mean `max_attempts`",
        ],
    );
    assert_error(
        &mini_with("[expect.retires]\nmax_attempts = 3\n"),
        8,
        9,
        &[
            "unknown field `retires` in [expect]",
            "did you mean `retries`",
        ],
    );
}

#[test]
fn a_scenario_that_describes_its_own_api_keeps_it_over_the_config() {
    let config = faultline::scenario::parse_config(
        "[api.chat]\npath = \"/from-config\"\n",
        "faultline.toml",
        std::path::Path::new("."),
    )
    .unwrap();
    let own = with_tail("\n[api.chat]\npath = \"/from-scenario\"\n");
    let plan = parse_scenario(&own, "s.toml")
        .unwrap()
        .with_config(&config)
        .unwrap();
    assert_eq!(plan.api.chat.path, "/from-scenario");
    let plain = parse_scenario(&with_tail(""), "s.toml")
        .unwrap()
        .with_config(&config)
        .unwrap();
    assert_eq!(plain.api.chat.path, "/from-config");
}

#[test]
fn mcp_faults_parse_from_scenario_files_and_mcp_only_kinds_stay_on_the_mcp_fake() {
    let mcp = full_with(
        "[[faults]]\nfake = \"weather\"",
        "[[faults]]\nfake = \"mcp\"\nstart = \"1s\"\nend = \"2s\"\nkind = \"rpc_error\"\ncode = -32001\nmessage = \"overloaded\"\n\n\
         [[faults]]\nfake = \"mcp\"\nstart = \"2s\"\nend = \"3s\"\nkind = \"large_result\"\nbytes = 1000\n\n\
         [[faults]]\nfake = \"mcp\"\nstart = \"3s\"\nend = \"4s\"\nkind = \"tools_changed\"\n\n\
         [[faults]]\nfake = \"weather\"",
    );
    let plan = parse_scenario(&mcp, "s.toml").unwrap_or_else(|e| panic!("{e}"));
    let on_mcp: Vec<&Fault> = plan
        .faults
        .iter()
        .filter(|w| w.fake == FakeName::Mcp)
        .map(|w| &w.fault)
        .collect();
    assert_eq!(
        on_mcp,
        [
            &Fault::RpcError {
                code: Some(-32001),
                message: Some("overloaded".into())
            },
            &Fault::LargeResult { bytes: Some(1000) },
            &Fault::ToolsChanged,
        ]
    );
    // An MCP fault on the LLM, and an LLM fault on the MCP server, are refused where written.
    let wrong = full_with(
        "[[faults]]\nfake = \"weather\"",
        "[[faults]]\nfake = \"llm\"\nstart = \"1s\"\nend = \"2s\"\nkind = \"session_expired\"\n\n[[faults]]\nfake = \"weather\"",
    );
    let message = error_of(&wrong);
    assert!(
        message.contains("session_expired") && message.contains("mcp"),
        "{message}"
    );
    let zero = full_with(
        "[[faults]]\nfake = \"weather\"",
        "[[faults]]\nfake = \"mcp\"\nstart = \"1s\"\nend = \"2s\"\nkind = \"large_result\"\nbytes = 0\n\n[[faults]]\nfake = \"weather\"",
    );
    let message = error_of(&zero);
    assert!(
        message.contains("`bytes`") && message.contains("from 1"),
        "{message}"
    );
}
