//! `faultline init`: run on real services, the draft it writes names what each one does (and
//! what it could not find), is accepted by `faultline validate`, and carries each example
//! service through `scenario outage --quick` after only the edits its own TODOs ask for.
//!
//! The services: tests/python/init_target.py (standard library only), whose every name is
//! unusual, and its `--bare` form, which has nothing init could find; and the three example
//! services under examples/.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serial_test::serial;

mod common;
use common::{fakes_up, free_base, free_port, Reaped};

/// A folder holding only the test service, so the source scan sees it alone.
fn service_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/init_target.py"),
        dir.path().join("init_target.py"),
    )
    .unwrap();
    dir
}

/// The Python of the provisioned .venv, first on PATH (the example needs its packages).
fn path_with_venv() -> String {
    let bin = common::python().parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn faultline(args: &[&str]) -> Command {
    let mut command = Command::cargo_bin("faultline").unwrap();
    command
        .args(args)
        .env("PATH", path_with_venv())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY");
    command
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs init with `args`, writing to `out`; returns the draft and it parsed.
fn init(args: &[&str], out: &Path) -> (String, toml::Table) {
    let output = faultline(&["init"])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let draft = std::fs::read_to_string(out).unwrap();
    let table: toml::Table = toml::from_str(&draft).unwrap_or_else(|e| panic!("{e}\n{draft}"));
    (draft, table)
}

/// `faultline validate outage --config` on the draft, profile sections included.
fn validate(draft: &str, dir: &Path) -> String {
    let config = dir.join("validated.toml");
    std::fs::write(&config, draft).unwrap();
    let output = faultline(&["validate", "outage", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}\n{draft}", text(&output));
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// The draft's comments as prose: each run of comment lines joined into one line, so a
/// phrase can be found wherever the writer wrapped it.
fn prose(draft: &str) -> String {
    let mut out = String::new();
    for line in draft.lines() {
        match line.strip_prefix("# ") {
            Some(comment) => {
                out.push_str(comment);
                out.push(' ');
            }
            None => out.push('\n'),
        }
    }
    out
}

fn get<'a>(table: &'a toml::Table, path: &str) -> &'a toml::Value {
    let mut value = None;
    let mut at = table;
    for (i, key) in path.split('.').enumerate() {
        let found = at
            .get(key)
            .unwrap_or_else(|| panic!("no {path} in {table:#?}"));
        if i + 1 == path.split('.').count() {
            value = Some(found);
        } else {
            at = found.as_table().unwrap();
        }
    }
    value.unwrap()
}

fn str_at<'a>(table: &'a toml::Table, path: &str) -> &'a str {
    get(table, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string"))
}

#[test]
fn init_finds_what_a_service_with_unusual_names_does() {
    let dir = service_dir();
    let out = dir.path().join("faultline.toml");
    let (draft, table) = init(
        &[
            "--command",
            "python3 init_target.py",
            "--cwd",
            dir.path().to_str().unwrap(),
        ],
        &out,
    );

    // Started without {port}: it read HTTP_PORT, which the source scan found.
    assert_eq!(str_at(&table, "target.cwd"), ".");
    assert_eq!(str_at(&table, "target.ready_path"), "/ready");
    for (name, value) in [
        ("ASSISTANT_LLM_URL", "{llm}/v1"),
        ("ASSISTANT_LLM_TOKEN", "{llm_key}"),
        ("HTTP_PORT", "{port}"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "{otlp}/v1/traces"),
    ] {
        assert_eq!(
            str_at(&table, &format!("target.env.{name}")),
            value,
            "{draft}"
        );
    }
    let script = std::fs::read_to_string(dir.path().join("init_target.py")).unwrap();
    let line_of = |text: &str| script.lines().position(|l| l.contains(text)).unwrap() + 1;
    let url_at = line_of("environ.get(\"ASSISTANT_LLM_URL\"");
    assert!(
        draft.contains(&format!(
            "# read at init_target.py:{url_at}: os.environ.get\nASSISTANT_LLM_URL"
        )),
        "{draft}"
    );
    let style_at = line_of("environ.get(\"GREETING_STYLE\"");
    assert!(
        draft.contains(&format!("GREETING_STYLE (init_target.py:{style_at})")),
        "{draft}"
    );
    assert!(!table["target"]["env"]
        .as_table()
        .unwrap()
        .contains_key("GREETING_STYLE"));

    // The body its own 422 asked for, and the header it reads the request id from.
    assert_eq!(str_at(&table, "api.chat.path"), "/v2/ask");
    assert_eq!(
        get(&table, "api.chat.body").to_string(),
        "{ ask = { question = \"{message}\" } }"
    );
    assert_eq!(
        get(&table, "api.headers").to_string(),
        "{ x-correlation-id = \"{request_id}\" }"
    );
    assert!(
        prose(&draft).contains(
            "answered 200 to {\"ask\":{\"question\":…}} (the shape its 422 answer asked for); \
             the fake LLM saw the question"
        ),
        "{draft}"
    );
    assert_eq!(str_at(&table, "api.request_id_header"), "x-correlation-id");
    assert_eq!(str_at(&table, "api.request_id_pointer"), "/meta/traceId");
    assert_eq!(str_at(&table, "api.answer_pointer"), "/data/reply");
    assert_eq!(str_at(&table, "api.degraded_pointer"), "/data/fallbackUsed");
    assert_eq!(str_at(&table, "api.error_pointer"), "/problem/detail");

    assert_eq!(str_at(&table, "logs.request_id_field"), "req.id");
    assert_eq!(str_at(&table, "logs.input_tokens_field"), "usage.prompt");
    assert_eq!(
        str_at(&table, "logs.output_tokens_field"),
        "usage.completion"
    );
    assert_eq!(str_at(&table, "logs.level_field"), "severity");
    assert_eq!(str_at(&table, "logs.message_field"), "text");

    assert_eq!(str_at(&table, "metrics.path"), "/metrics");
    assert_eq!(str_at(&table, "metrics.format"), "prometheus");
    assert_eq!(
        str_at(&table, "metrics.tokens_input"),
        "gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\"}"
    );
    assert_eq!(
        str_at(&table, "metrics.tokens_output"),
        "gen_ai_client_token_usage_sum{gen_ai_token_type=\"output\"}"
    );
    // Its failure counter rose by one per failed attempt, and init told it from a call count.
    assert_eq!(
        str_at(&table, "metrics.llm_errors.selector"),
        "assistant_upstream_failures_total"
    );
    assert_eq!(str_at(&table, "metrics.llm_errors.counts"), "attempts");
    assert!(
        prose(&draft).contains(
            "rose by 2 when one request failed after 2 LLM attempt(s): it counts attempts"
        ),
        "{draft}"
    );
    assert!(
        prose(&draft).contains("as the fake LLM's usage said"),
        "{draft}"
    );
    assert_eq!(str_at(&table, "metrics.cache_hit_ratio"), "");

    assert_eq!(
        str_at(&table, "traces.request_id_attribute"),
        "app.request_id"
    );
    assert_eq!(str_at(&table, "traces.llm_span_attribute"), "gen_ai.system");

    // What it could not find is named: an address with no fake, figures it has not.
    let todos: Vec<&str> = draft.lines().filter(|l| l.starts_with("# TODO:")).collect();
    assert!(
        todos.iter().any(|t| t.contains("ARCHIVE_DB_URL")),
        "{todos:?}"
    );
    assert!(
        todos.iter().any(|t| t.contains("cache_hit_ratio")),
        "{todos:?}"
    );
    assert_eq!(todos.len(), 3, "{todos:?}");

    validate(&draft, dir.path());
}

#[test]
fn init_names_everything_it_could_not_find() {
    let dir = service_dir();
    let out = dir.path().join("bare.toml");
    let (draft, table) = init(
        &[
            "--command",
            "python3 init_target.py --bare",
            "--cwd",
            dir.path().to_str().unwrap(),
        ],
        &out,
    );
    // The chat route is still found, and so is where its answer text is.
    assert_eq!(str_at(&table, "api.chat.path"), "/api/chat");
    assert_eq!(str_at(&table, "api.answer_pointer"), "/text");
    let todos = prose(&draft);
    for named in [
        "TODO: ready_path: no 2xx from GET /healthz: 404",
        "neither in a header nor in its JSON (its x-correlation-id header held an id of its own)",
        "TODO: degraded_pointer",
        "TODO: error_pointer: with the fake LLM failing, the service answered 500 without JSON",
        "TODO: [logs]: none of the",
        "TODO: [metrics]: no metrics endpoint answered (GET /metrics: 404",
        "TODO: [traces]: no span reached the OTLP collector fake",
    ] {
        assert!(todos.contains(named), "no `{named}` in:\n{draft}");
    }
    // Left out rather than guessed: the parser's defaults and the TODOs stand.
    for section in ["logs", "metrics", "traces"] {
        assert!(!table.contains_key(section), "{draft}");
    }
    assert!(!table["target"]
        .as_table()
        .unwrap()
        .contains_key("ready_path"));
    validate(&draft, dir.path());
}

#[test]
#[serial]
fn the_python_example_passes_outage_from_its_init_draft_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faultline.toml");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python-fastapi");
    let (draft, table) = init(
        &[
            "--command",
            "python -m uvicorn app:app --host 127.0.0.1 --port {port} --log-level warning",
            "--cwd",
            example.to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(str_at(&table, "api.chat.path"), "/api/chat");
    assert_eq!(str_at(&table, "target.env.OPENAI_BASE_URL"), "{llm}/v1");
    assert_eq!(str_at(&table, "logs.request_id_field"), "requestId");
    assert_eq!(
        str_at(&table, "traces.llm_span_attribute"),
        "gen_ai.operation.name"
    );
    // A cache would answer repeated questions during the outage: left out, and said why.
    assert!(draft.contains("# REDIS_URL = \"{redis}\""), "{draft}");

    // The bar: `scenario outage --quick` passes on the draft after the edits its comments ask
    // for, no others: a shorter LLM timeout and breaker cool-down (the example's README lists
    // them, with these values).
    let prose = prose(&draft);
    for asked in [
        "TODO: LLM_TIMEOUT_S (read at app.py:",
        "TODO: CIRCUIT_COOLDOWN_S (read at app.py:",
    ] {
        assert!(prose.contains(asked), "no `{asked}` in:\n{draft}");
    }
    let edited = draft.replacen(
        "[target.env]\n",
        "[target.env]\nLLM_TIMEOUT_S = \"2\"\nCIRCUIT_COOLDOWN_S = \"0.5\"\n",
        1,
    );
    assert_ne!(edited, draft);
    validate(&edited, dir.path());
    passes_outage_quick(dir.path(), &draft);
}

/// `scenario outage --quick` on the draft [`validate`] wrote into `dir` exits 0.
fn passes_outage_quick(dir: &Path, draft: &str) {
    let config = dir.join("validated.toml");
    let report = dir.join("report");
    let output = faultline(&["scenario", "outage", "--quick", "--quiet", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}\n{draft}", text(&output));
}

/// The Node and Rust examples (built by scripts/provision/example-node.sh and example-rust.sh)
/// pass outage --quick on their drafts with no edit at all: their TODOs are all "if" (the
/// defaults of their timeouts and breakers already fit), and the figures they lack
/// (cache_hit_ratio, agent_steps) are drafted as "". Their routes, log fields and metric names
/// differ from each other's and from the defaults, so the draft must have found each.
#[test]
#[serial]
fn the_node_and_rust_examples_pass_outage_from_their_init_drafts_unedited() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (example, command, built, route, request_id_field) in [
        (
            "examples/node-express",
            "node dist/server.js",
            "dist/server.js",
            "/v1/chat",
            "reqId",
        ),
        (
            "examples/rust-axum",
            "target/debug/askbot --listen 127.0.0.1:{port}",
            "target/debug/askbot",
            "/api/v2/ask",
            "correlation_id",
        ),
    ] {
        let folder = root.join(example);
        assert!(
            folder.join(built).exists(),
            "{example}/{built} is missing: run scripts/test, which builds it"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("faultline.toml");
        let (draft, table) = init(
            &["--command", command, "--cwd", folder.to_str().unwrap()],
            &out,
        );
        assert_eq!(str_at(&table, "api.chat.path"), route, "{draft}");
        assert_eq!(
            str_at(&table, "logs.request_id_field"),
            request_id_field,
            "{draft}"
        );
        assert_eq!(str_at(&table, "metrics.format"), "prometheus", "{draft}");
        validate(&draft, dir.path());
        passes_outage_quick(dir.path(), &draft);
    }
}

#[test]
#[serial]
fn init_probes_a_service_started_by_hand_through_fakes_up() {
    let base = free_base();
    let (_up, env) = fakes_up(base);
    let value = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let port = free_port();
    let dir = service_dir();
    // Started by hand, its own names given the addresses `fakes up` printed.
    let _service = Reaped(
        Command::new(common::python())
            .arg(dir.path().join("init_target.py"))
            .env("HTTP_PORT", port.to_string())
            .env("ASSISTANT_LLM_URL", value("OPENAI_BASE_URL"))
            .env("ASSISTANT_LLM_TOKEN", value("OPENAI_API_KEY"))
            .env(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("{}/v1/traces", value("OTEL_EXPORTER_OTLP_ENDPOINT")),
            )
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the service never listened");
        std::thread::sleep(Duration::from_millis(50));
    }

    let url = format!("http://127.0.0.1:{port}");
    let control = format!("http://127.0.0.1:{}", base + 9);
    let out = dir.path().join("attached.toml");
    let (draft, table) = init(
        &[
            "--url",
            &url,
            "--fakes",
            &control,
            "--cwd",
            dir.path().to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(str_at(&table, "target.url"), url);
    assert!(!table["target"].as_table().unwrap().contains_key("command"));
    assert_eq!(
        get(&table, "api.headers").to_string(),
        "{ x-correlation-id = \"{request_id}\" }"
    );
    // Confirmed through the fakes' journals, read over the control API.
    assert_eq!(str_at(&table, "api.chat.path"), "/v2/ask");
    assert!(
        prose(&draft).contains("the fake LLM saw the question"),
        "{draft}"
    );
    assert_eq!(str_at(&table, "metrics.llm_errors.counts"), "attempts");
    assert_eq!(
        str_at(&table, "traces.request_id_attribute"),
        "app.request_id"
    );
    // Its output is not init's to read: the logs TODO says where to look instead.
    assert!(prose(&draft).contains("set [target] log_file"), "{draft}");
    validate(&draft, dir.path());
}

#[test]
fn bad_input_gets_a_clear_error_naming_the_flag_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("faultline.toml");
    std::fs::write(&taken, "# mine\n").unwrap();
    let out = dir.path().join("new.toml");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![], vec!["--command", "--url"]),
        (vec!["--comand", "x"], vec!["--comand"]),
        (
            vec!["--command", "", "--out", out],
            vec!["--command is empty"],
        ),
        (
            vec!["--command", "python 'open", "--out", out],
            vec!["--command", "quote"],
        ),
        (
            vec!["--url", "http://10.1.2.3:80", "--out", out],
            vec!["--url", "not on this machine", "127.0.0.1"],
        ),
        (
            // A host is resolved before it is trusted: one that looks loopback but is not.
            vec!["--url", "http://127.0.0.1.example.com:80", "--out", out],
            vec!["--url", "does not resolve", "127.0.0.1"],
        ),
        (
            vec!["--command", "true", "--url", "http://127.0.0.1:1"],
            vec!["--command", "--url"],
        ),
        (
            vec!["--command", "true", "--cwd", "/no/such/dir", "--out", out],
            vec!["--cwd", "no such folder"],
        ),
        (
            vec!["--command", "true", "--ready-timeout", "soon", "--out", out],
            vec!["--ready-timeout"],
        ),
        (
            vec!["--command", "sh -c 'echo boom >&2; exit 3'", "--out", out],
            vec!["--command", "exited before it answered HTTP", "boom"],
        ),
    ];
    for (args, expected) in cases {
        let output = faultline(&["init"]).args(&args).output().unwrap();
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {shown}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for words in expected {
            assert!(stderr.contains(words), "{args:?}: no `{words}` in {shown}");
        }
        assert!(!Path::new(out).exists(), "{args:?} wrote a draft");
    }
    // An existing file is kept unless --force.
    let output = faultline(&["init", "--command", "true", "--out"])
        .arg(&taken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "# mine\n");
}

#[test]
fn a_command_that_never_listens_is_stopped_and_reaped_at_its_timeout() {
    // A sleep with an argument no other process has, to find it afterwards.
    let marker = format!("{}.{}", 600 + std::process::id() % 100, std::process::id());
    // An empty folder to scan: this test is about the timeout, not the source scan.
    let cwd = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = faultline(&["init", "--command"])
        .arg(format!("sleep {marker}"))
        .args(["--ready-timeout", "1s", "--out", "-", "--cwd"])
        .arg(cwd.path())
        .output()
        .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for words in ["--command", "{port}", "--ready-timeout", "within 1s"] {
        assert!(stderr.contains(words), "no `{words}` in {shown}");
    }
    assert!(output.stdout.is_empty(), "a draft was printed: {shown}");
    // Bounded: the timeout, the stop's grace for a process that takes SIGTERM at once, and
    // the fakes' start (a loaded 2-core machine can be slow).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !running(&format!("sleep {marker}")),
        "the command outlived init"
    );
}

/// Whether a process with exactly this command line runs.
fn running(command_line: &str) -> bool {
    let wanted: Vec<u8> = command_line.replace(' ', "\0").into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .any(|cmdline| cmdline.strip_suffix(b"\0").unwrap_or(&cmdline) == wanted.as_slice())
}
