//! The official SDKs' own retry policies, driven through the fake LLM and judged by the real
//! `retries.*` checks. tests/python/retry_policies.py (the `openai` and `anthropic` packages
//! from the .venv, which scripts/provision/python.sh installs) and tests/node/retry_policies.mjs
//! (the `openai` npm package in tests/node, which scripts/provision/node.sh installs) make calls
//! with each SDK's default retry settings while the fake fails their first attempts; the waits
//! the fake saw must pass every check. The openai SDK made into a flawed policy (no retries,
//! a fixed delay, an immediate retry) must fail the check made for it.
//!
//! Each test starts its own fake, and the tests run side by side: a few seconds each, most of
//! it the SDKs' own backoff (0.5 s, then 1 s).

mod common;

use std::time::Duration;

use common::{controlled_llm, ControlledLlm};
use faultline::checks::{retries, Outcome, Verdict};
use faultline::evidence::{Evidence, Record};
use faultline::scenario::RetryExpectations;

const KEY: &str = "sk-faultline-retries";

/// One case a script ran: its name and the nonces of its calls.
#[derive(serde::Deserialize)]
struct Case {
    case: String,
    keys: Vec<String>,
}

/// Runs a script to its end (within 60 s) and reads the cases it printed.
async fn run(mut command: tokio::process::Command) -> Vec<Case> {
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the SDK script finishes within 60 s")
        .expect("the SDK script starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the SDK script failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The `retries.*` verdicts on what the fake saw of `case`'s calls, with default limits.
fn judge(fake: &ControlledLlm, case: &Case) -> Vec<Verdict> {
    let attempts: Vec<_> = fake
        .journal
        .snapshot()
        .into_iter()
        .filter(|a| a.key.as_ref().is_some_and(|k| case.keys.contains(k)))
        .collect();
    let records: Vec<Record> = case
        .keys
        .iter()
        .map(|key| Record {
            at_ms: attempts
                .iter()
                .filter(|a| a.key.as_deref() == Some(key))
                .map(|a| a.at_ms)
                .fold(f64::INFINITY, f64::min),
            flow: "ask".into(),
            request_id: key.clone(),
            nonce: key.clone(),
            status: Some(200),
            ..Record::default()
        })
        .collect();
    let end = attempts
        .iter()
        .map(|a| a.at_ms + a.duration_ms)
        .fold(0.0, f64::max);
    let evidence = Evidence {
        records: records.into(),
        attempts: attempts.into(),
        // Room after the last attempt, so that no failure counts as cut off by the run's end.
        duration_ms: end + 5_000.0,
        ..Evidence::default()
    };
    retries::check(&evidence, &RetryExpectations::default())
}

fn verdict<'a>(verdicts: &'a [Verdict], id: &str) -> &'a Verdict {
    verdicts.iter().find(|v| v.id == id).expect(id)
}

/// Every case of a default client: every check it gives data to passes, none fails.
fn assert_default_policy_passes(sdk: &str, fake: &ControlledLlm, cases: &[Case]) {
    let judged = [
        (
            "fail-twice",
            ["retries.backoff", "retries.jitter"].as_slice(),
        ),
        ("fail-twice", &["retries.attempts", "retries.retryable"]),
        ("rate-limited", &["retries.retry_after"]),
        ("rejected", &["retries.non_retryable"]),
    ];
    for (name, ids) in judged {
        let case = cases
            .iter()
            .find(|c| c.case == name)
            .unwrap_or_else(|| panic!("{sdk}: no case {name}"));
        let verdicts = judge(fake, case);
        for v in &verdicts {
            assert_ne!(v.outcome, Outcome::Fail, "{sdk} {name}: {v:#?}");
        }
        for id in ids {
            let v = verdict(&verdicts, id);
            assert_eq!(v.outcome, Outcome::Pass, "{sdk} {name}: {v:#?}");
            println!("{sdk} {name}: {id}: {}", v.summary);
        }
    }
}

#[tokio::test]
async fn openai_python_default_retries_pass_every_retry_check() {
    let fake = controlled_llm(KEY, 13).await;
    let mut script = common::python_script("retry_policies.py");
    script.args([&fake.handle.base_url(), &fake.control_url, KEY, "openai"]);
    let cases = run(script).await;
    assert_default_policy_passes("openai-python", &fake, &cases);
}

#[tokio::test]
async fn anthropic_python_default_retries_pass_every_retry_check() {
    let fake = controlled_llm(KEY, 13).await;
    let mut script = common::python_script("retry_policies.py");
    script.args([&fake.handle.base_url(), &fake.control_url, KEY, "anthropic"]);
    let cases = run(script).await;
    assert_default_policy_passes("anthropic-python", &fake, &cases);
}

#[tokio::test]
async fn openai_node_default_retries_pass_every_retry_check() {
    let fake = controlled_llm(KEY, 13).await;
    let mut script = common::node_script("retry_policies.mjs");
    script.args([&fake.handle.base_url(), &fake.control_url, KEY]);
    let cases = run(script).await;
    assert_default_policy_passes("openai-node", &fake, &cases);
}

#[tokio::test]
async fn the_openai_sdk_made_into_a_flawed_policy_fails_the_check_for_it() {
    let fake = controlled_llm(KEY, 13).await;
    let mut script = common::python_script("retry_policies.py");
    script.args([
        &fake.handle.base_url(),
        &fake.control_url,
        KEY,
        "openai-flawed",
    ]);
    let cases = run(script).await;
    // A fixed delay is held to `retries.backoff` only: on a loaded machine its waits can spread
    // past 10 ms (22 ms seen with six threads of one process waking together), which no spread
    // rule can tell from a narrow jitter (see `NOISE_MS` in src/checks/retries/waits.rs).
    let failing = [
        ("no-retries", ["retries.retryable"].as_slice()),
        ("fixed", &["retries.backoff"]),
        ("immediate", &["retries.backoff", "retries.jitter"]),
    ];
    for (name, ids) in failing {
        let case = cases.iter().find(|c| c.case == name).expect(name);
        let verdicts = judge(&fake, case);
        for id in ids {
            let v = verdict(&verdicts, id);
            assert_eq!(v.outcome, Outcome::Fail, "{name}: {v:#?}");
            println!("{name}: {id}: {}", v.summary);
        }
    }
}
