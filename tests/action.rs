//! The GitHub Action (action.yml), checked offline: actionlint lints the example workflow that
//! uses it (docs/github-action-example.yml), which checks the inputs it passes against the
//! action's; the action's own scripts take inputs only through env (no `${{ }}` in a `run:`,
//! where an input could inject shell) and pass shellcheck; and its scripts are run as a runner
//! would run them, against the real faultline: the summary lands in `$GITHUB_STEP_SUMMARY` once
//! (faultline appends it itself),
//! the exit code in `$GITHUB_OUTPUT`, and the gate step fails on a failed gate.
//! actionlint and shellcheck come from tests/python/requirements-packaging.txt.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// actionlint on `workflow` in a project holding `action` at its root, as `uses: ./` expects.
fn actionlint(action: &str, workflow: &str) -> Result<(), String> {
    let project = tempfile::tempdir().unwrap();
    // actionlint finds the project (and so `./`) by its .git folder.
    std::fs::create_dir_all(project.path().join(".git")).unwrap();
    std::fs::create_dir_all(project.path().join(".github/workflows")).unwrap();
    std::fs::write(project.path().join("action.yml"), action).unwrap();
    std::fs::write(
        project.path().join(".github/workflows/example.yml"),
        workflow,
    )
    .unwrap();
    let output = Command::new(common::venv_tool("actionlint"))
        .current_dir(project.path())
        .arg("-shellcheck")
        .arg(common::venv_tool("shellcheck"))
        .args(["-pyflakes=", "-oneline", "-no-color"])
        .output()
        .unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn action_text() -> String {
    std::fs::read_to_string(repo().join("action.yml")).unwrap()
}

fn example_workflow() -> String {
    std::fs::read_to_string(repo().join("docs/github-action-example.yml")).unwrap()
}

/// action.yml as JSON.
fn parse_yaml(text: &str) -> Value {
    let mut documents = common::yaml_documents(text);
    assert_eq!(documents.len(), 1, "one YAML document");
    documents.remove(0)
}

/// The composite action's steps that run a script: (name, script).
fn run_steps(action: &Value) -> Vec<(String, String)> {
    action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| {
            let script = step["run"].as_str()?;
            Some((step["name"].as_str()?.to_owned(), script.to_owned()))
        })
        .collect()
}

/// What the action's scripts must be; the problems found, empty when they are.
fn check_scripts(action: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if action["runs"]["using"] != "composite" {
        problems.push("not a composite action".into());
    }
    for step in action["runs"]["steps"].as_array().into_iter().flatten() {
        if step["run"].is_string() && step["shell"] != "bash" {
            problems.push(format!(
                "step {}: a composite run step needs shell: bash",
                step["name"]
            ));
        }
    }
    let inputs: Vec<&String> = action["inputs"].as_object().unwrap().keys().collect();
    let used = regex::Regex::new(r"inputs\.([A-Za-z0-9_-]+)").unwrap();
    for capture in used.captures_iter(&serde_json::to_string(action).unwrap()) {
        if !inputs.iter().any(|i| **i == capture[1]) {
            problems.push(format!("inputs.{} is used but not declared", &capture[1]));
        }
    }
    for (name, script) in run_steps(action) {
        if script.contains("${{") {
            problems.push(format!(
                "step {name:?}: an expression inside run: is pasted into the script before bash \
                 reads it, so an input can inject shell; pass it through env"
            ));
        }
        let output = Command::new(common::venv_tool("shellcheck"))
            .args(["--shell=bash", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(script.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        if !output.status.success() {
            problems.push(format!(
                "step {name:?}: shellcheck: {}",
                String::from_utf8_lossy(&output.stdout)
            ));
        }
    }
    problems
}

#[test]
fn actionlint_passes_the_example_workflow_that_uses_the_action() {
    actionlint(&action_text(), &example_workflow()).unwrap();
}

#[test]
fn actionlint_names_an_input_the_action_does_not_have() {
    let workflow = example_workflow().replace("quick: \"true\"", "quik: \"true\"");
    let error = actionlint(&action_text(), &workflow).unwrap_err();
    assert!(error.contains("\"quik\" is not defined"), "{error}");
}

#[test]
fn the_actions_scripts_take_inputs_through_env_and_pass_shellcheck() {
    let problems = check_scripts(&parse_yaml(&action_text()));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_input_pasted_into_a_script_or_a_shell_mistake_is_named() {
    let cases = [
        (
            "\"$FAULTLINE_VENV/bin/faultline\" --version",
            "faultline ${{ inputs.args }}",
            "inject",
        ),
        (
            "\"${command[@]}\" || status=$?",
            "${command[@]} || status=$?",
            "SC2068",
        ),
        (
            "inputs.artifact-name",
            "inputs.artifact_name",
            "not declared",
        ),
    ];
    for (from, to, named) in cases {
        let text = action_text();
        assert!(
            text.contains(from),
            "action.yml no longer contains {from:?}"
        );
        let problems = check_scripts(&parse_yaml(&text.replacen(from, to, 1))).join("\n");
        assert!(problems.contains(named), "{from:?} -> {to:?}: {problems}");
    }
}

// ---- the scripts run as a runner runs them ----

/// Two seconds of one user against the reference target, no faults: every gate it judges
/// passes, unless a flaw of the reference target is switched on.
const TINY_SCENARIO: &str = r#"name = "tiny"
description = "two seconds of one user, no faults"
seed = 1
[load]
users = 1
duration = "2s"
think_time = "100ms"
[[load.flows]]
name = "ask"
messages = ["How do I reset my password?"]
[expect.baseline]
p95 = "10s"
"#;

struct Runner {
    dir: tempfile::TempDir,
    steps: Vec<(String, String)>,
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tiny.toml"), TINY_SCENARIO).unwrap();
        for file in ["summary", "output"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        Runner {
            steps: run_steps(&parse_yaml(&action_text())),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the step named `name` with bash, the runner's files, and `env` (the step's env
    /// as the action would fill it), faultline's binary on the PATH.
    fn step(&self, name: &str, env: &[(&str, &str)]) -> Output {
        let script = &self
            .steps
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("action.yml has no step {name:?}"))
            .1;
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_faultline")).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // bash -e, as the runner's `shell: bash` is `bash --noprofile --norc -eo pipefail {0}`.
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("GITHUB_STEP_SUMMARY", self.path("summary"))
            .env("GITHUB_OUTPUT", self.path("output"))
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn run_scenario(&self, args: &str, out: &str) -> Output {
        let out = self.path(out);
        self.step(
            "Run the scenario",
            &[
                ("FAULTLINE_SCENARIO", "tiny.toml"),
                ("FAULTLINE_CONFIG", ""),
                ("FAULTLINE_QUICK", "false"),
                ("FAULTLINE_ARGS", args),
                ("FAULTLINE_OUT", out.to_str().unwrap()),
            ],
        )
    }

    fn outputs(&self) -> String {
        std::fs::read_to_string(self.path("output")).unwrap()
    }
}

#[test]
fn a_passing_run_appends_its_summary_and_the_gate_step_passes() {
    let runner = Runner::new();
    let run = runner.run_scenario("--seed '3'", "report");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = std::fs::read_to_string(runner.path("summary")).unwrap();
    let written = std::fs::read_to_string(runner.path("report/summary.md")).unwrap();
    assert_eq!(summary, written);
    assert!(summary.contains("PASS"), "{summary}");
    // `--seed '3'` was split as a shell splits it: the run's seed is 3.
    assert!(summary.contains("seed 3"), "{summary}");
    let outputs = runner.outputs();
    assert!(outputs.contains("exit-code=0\n"), "{outputs}");
    assert!(outputs.contains(&format!("report-dir={}\n", runner.path("report").display())));
    let gate = runner.step("Gate", &[("FAULTLINE_EXIT", "0")]);
    assert!(gate.status.success());
}

#[test]
fn a_failed_gate_still_appends_its_summary_and_fails_the_gate_step() {
    let runner = Runner::new();
    let run = runner.run_scenario("--flaw leak-secrets", "report");
    // The run step itself succeeds, so the upload step still runs; the gate step fails.
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = std::fs::read_to_string(runner.path("summary")).unwrap();
    assert!(
        summary.contains("logs.no_secrets") && summary.contains("FAIL"),
        "{summary}"
    );
    assert!(runner.outputs().contains("exit-code=1\n"));
    let gate = runner.step("Gate", &[("FAULTLINE_EXIT", "1")]);
    assert_eq!(gate.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gate.stdout).contains("::error::faultline: a gate failed"));
    let not_run = runner.step("Gate", &[("FAULTLINE_EXIT", "2")]);
    assert_eq!(not_run.status.code(), Some(2));
}

#[test]
fn bad_inputs_stop_the_run_step_with_what_to_change() {
    let runner = Runner::new();
    let unclosed = runner.run_scenario("--seed '3", "report");
    assert_eq!(unclosed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unclosed.stdout).contains("unclosed quote"));
    let out = runner.path("report");
    let quick = runner.step(
        "Run the scenario",
        &[
            ("FAULTLINE_SCENARIO", "tiny.toml"),
            ("FAULTLINE_CONFIG", ""),
            ("FAULTLINE_QUICK", "yes"),
            ("FAULTLINE_ARGS", ""),
            ("FAULTLINE_OUT", out.to_str().unwrap()),
        ],
    );
    assert_eq!(quick.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&quick.stdout).contains("write 'true' or 'false'"));
    // Nothing ran, so no summary.
    assert_eq!(std::fs::read_to_string(runner.path("summary")).unwrap(), "");
}
