//! Record and replay end to end: `faultline record` in front of faultline's own fake LLM
//! records what the official SDKs (openai, anthropic, boto3's Bedrock binary stream) get,
//! with no secret in the file; `faultline fake llm --replay` gives the SDKs the same answers
//! at the recorded pace, with faults on top and a clear miss. Also the bad inputs: a
//! non-loopback upstream, a corrupt recording, the file's size cap.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::{client, line_starting, spawn_fake_llm};
use faultline::fakes::fault::{parse_rule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::llm::{self, replay, LlmOptions};
use faultline::fakes::FakeHandle;
use faultline::record::format;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

const KEY: &str = "sk-record-secret-0123456789";
/// What boto3 signs with in record_replay.py: SigV4 puts the key id and the session token on
/// the wire, and neither may reach the recording.
const AWS_SECRETS: [&str; 2] = ["AKIDRECORDSECRET1", "session-token-secret-42"];
/// The upstream's gap between streamed pieces: long enough to tell a paced replay from one
/// sent at once on a loaded 2-core machine, short enough to keep the test a few seconds.
const INTER_TOKEN_MS: u64 = 100;

/// The fake LLM as the upstream, expecting `KEY`, with `faults` on.
async fn upstream(faults: &[&str]) -> FakeHandle {
    let board = Arc::new(Switchboard::new(7));
    for (id, rule) in faults.iter().enumerate() {
        board.activate(parse_rule(rule, id).unwrap());
    }
    let journal = Arc::new(Journal::new(Instant::now(), 1000));
    let options = LlmOptions {
        api_key: KEY.into(),
        seed: 7,
    };
    llm::start(options, board, journal).await.unwrap()
}

/// `faultline record --upstream URL --port 0 --out FILE ARGS…`, its base URL and its stdout.
async fn spawn_record(
    upstream: &str,
    out: &Path,
    args: &[&str],
) -> (
    tokio::process::Child,
    String,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) {
    let mut command: tokio::process::Command = std::process::Command::cargo_bin("faultline")
        .unwrap()
        .into();
    let mut child = command
        .args(["record", "--upstream", upstream, "--port", "0", "--out"])
        .arg(out)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = line_starting(&mut lines, "recording on").await;
    let base = listening.split_whitespace().nth(2).unwrap().to_owned();
    (child, base, lines)
}

/// Ctrl-C to `child`; its last words (the summary) once it has exited cleanly.
async fn interrupt(
    child: &mut tokio::process::Child,
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> String {
    // SAFETY: signalling our own child by its pid.
    let pid = child.id().expect("still running") as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let summary = line_starting(lines, "recorded").await;
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}");
    summary
}

/// Runs record_replay.py with `args`; its stdout, after asserting it succeeded.
async fn sdk(args: &[&str]) -> String {
    let run = common::python_script("record_replay.py")
        .args(args)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the SDK calls finish within 120 s")
        .expect("the SDK script runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "record_replay.py {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn median(gaps: &Value) -> f64 {
    let mut gaps: Vec<f64> = gaps
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_f64().unwrap())
        .collect();
    assert!(gaps.len() >= 4, "too few pieces to time: {gaps:?}");
    gaps.sort_by(f64::total_cmp);
    gaps[gaps.len() / 2]
}

#[tokio::test]
async fn sdks_get_the_recorded_answers_at_the_recorded_pace_with_faults_on_top() {
    let slow = format!(
        r#"{{"kind":"slow_stream","first_token":"20ms","inter_token":"{INTER_TOKEN_MS}ms","jitter":0}}"#
    );
    let fake = upstream(&[&slow]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("llm.jsonl");

    // Record through the proxy.
    let (mut recorder, proxy, mut lines) = spawn_record(&fake.base_url(), &file, &[]).await;
    let recorded: Value = serde_json::from_str(&sdk(&["talk", &proxy, KEY]).await).unwrap();
    let summary = interrupt(&mut recorder, &mut lines).await;
    assert!(summary.starts_with("recorded 4 exchanges"), "{summary}");

    // The file: four whole exchanges, the binary stream in base64, no secret anywhere.
    let text = std::fs::read_to_string(&file).unwrap();
    let exchanges = format::read(&file).expect("the recording reads back");
    assert_eq!(exchanges.len(), 4, "{text}");
    assert!(
        exchanges
            .iter()
            .any(|e| e.chunks.iter().any(|c| c.base64.is_some())),
        "Bedrock's event stream is binary, so kept as base64"
    );
    for secret in [KEY].iter().chain(AWS_SECRETS.iter()) {
        assert!(!text.contains(secret), "{secret} reached the recording");
    }
    assert!(text.contains(format::REDACTED));

    // Replay with the fake LLM alone (the upstream is gone).
    let told: Vec<(Option<u64>, Option<u64>)> = fake
        .journal()
        .snapshot()
        .iter()
        .map(|a| (a.input_tokens, a.output_tokens))
        .collect();
    fake.shutdown().await;
    let path = file.to_str().unwrap();
    let replay = spawn_fake_llm(&["--replay", path, "--api-key", KEY]).await;
    let replayed: Value = serde_json::from_str(&sdk(&["talk", &replay.base, KEY]).await).unwrap();

    for what in ["plain", "chat", "anthropic", "bedrock"] {
        assert_eq!(replayed[what], recorded[what], "{what} differs in replay");
    }
    // The pace: the median gap between pieces as the SDK saw them. A replay that sent every
    // piece at once would show gaps of ~0; a paced one the recorded gap, give or take a
    // scheduler's delay. Medians, so one piece held up on a busy machine fails nothing.
    for gaps in ["chat_gaps", "anthropic_gaps", "bedrock_gaps"] {
        let (then, now) = (median(&recorded[gaps]), median(&replayed[gaps]));
        assert!(
            then >= 0.75 * INTER_TOKEN_MS as f64,
            "{gaps}: through the recorder the SDK saw a piece every {then} ms, not the \
             upstream's {INTER_TOKEN_MS} ms: the recorder buffers streams"
        );
        assert!(
            now >= 0.75 * then,
            "{gaps}: replayed every {now} ms, recorded every {then} ms"
        );
    }

    // The replay's journal counts the tokens each recorded answer reported, whatever the
    // provider's spelling (a stream's journal entry is written when its body ends).
    let journal = format!("{}/journal/llm", replay.control);
    let deadline = Instant::now() + Duration::from_secs(5);
    let counted = loop {
        let attempts = common::get_json(&journal).await["attempts"].clone();
        let counted: Vec<(Option<u64>, Option<u64>)> = attempts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["input_tokens"].as_u64(), a["output_tokens"].as_u64()))
            .collect();
        if counted.len() >= told.len() || Instant::now() > deadline {
            break counted;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The streamed chat asks for no usage (no `stream_options`), so it was told none.
    let with_usage = told
        .iter()
        .filter(|(i, o)| i.is_some() && o.is_some())
        .count();
    assert_eq!(with_usage, 3, "{told:?}");
    assert_eq!(
        counted, told,
        "tokens journaled in replay vs by the upstream"
    );

    // Faults on top, and a miss, as the SDK sees them.
    let checks = sdk(&["faults", &replay.base, KEY, &replay.control]).await;
    assert!(checks.contains("3/3 checks passed"), "{checks}");
}

/// A chat request the hand-written recordings below answer.
fn again() -> Value {
    json!({ "model": "m", "messages": [{ "role": "user", "content": "again" }] })
}

/// Writes a recording answering [`again`] with each of `words` in turn.
fn write_recording(file: &Path, words: &[&str]) {
    let body_bytes = serde_json::to_vec(&again()).unwrap();
    let fingerprint = format::fingerprint("POST", "/v1/chat/completions", &body_bytes);
    let lines: Vec<String> = words
        .iter()
        .map(|word| {
            let answer = json!({ "choices": [{ "message": { "content": word } }] }).to_string();
            serde_json::to_string(&format::Exchange {
                v: format::VERSION,
                method: "POST".into(),
                path: "/v1/chat/completions".into(),
                fingerprint: fingerprint.clone(),
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                request_headers: vec![],
                chunks: vec![format::Chunk::new(1, answer.as_bytes())],
                cut: false,
            })
            .unwrap()
        })
        .collect();
    std::fs::write(file, lines.join("\n")).unwrap();
}

#[tokio::test]
async fn identical_requests_replay_in_recorded_order_then_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.jsonl");
    write_recording(&file, &["first", "second"]);
    let body = again();
    let recording = replay::Replay::load(&file, replay::ReplayOptions::default()).unwrap();
    let fake = replay::start_on(
        "127.0.0.1:0".parse().unwrap(),
        LlmOptions {
            api_key: KEY.into(),
            seed: 1,
        },
        Some(Arc::new(recording)),
        Arc::new(Switchboard::new(1)),
        Arc::new(Journal::new(Instant::now(), 100)),
    )
    .await
    .unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        // Keys in another order and a `user` tag: the same request for matching.
        let answer: Value = client()
            .post(format!("{}/v1/chat/completions", fake.base_url()))
            .bearer_auth(KEY)
            .json(&json!({ "user": "u-1", "messages": body["messages"], "model": "m" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.push(answer["choices"][0]["message"]["content"].clone());
    }
    assert_eq!(seen, ["first", "second", "first"]);
}

#[tokio::test]
async fn the_recording_is_appended_to_and_capped_and_says_what_it_left_out() {
    let fake = upstream(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capped.jsonl");
    let chat = |proxy: String| async move {
        let reply = client()
            .post(format!("{proxy}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    };

    let (mut first, proxy, mut lines) = spawn_record(&fake.base_url(), &file, &[]).await;
    chat(proxy).await;
    assert!(interrupt(&mut first, &mut lines)
        .await
        .starts_with("recorded 1 exchanges"));
    let one = std::fs::metadata(&file).unwrap().len();

    // Room for half another exchange: the next is forwarded but left out, never half-written.
    let cap = (one + one / 2).to_string();
    let (mut second, proxy, mut lines) =
        spawn_record(&fake.base_url(), &file, &["--max-bytes", &cap]).await;
    chat(proxy).await;
    let summary = interrupt(&mut second, &mut lines).await;
    assert!(
        summary.starts_with("recorded 0 exchanges") && summary.contains("1 left out"),
        "{summary}"
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), one);
    assert_eq!(format::read(&file).unwrap().len(), 1);
}

#[test]
fn an_upstream_off_this_machine_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.jsonl");
    let output = std::process::Command::cargo_bin("faultline")
        .unwrap()
        .args([
            "record",
            "--upstream",
            "http://192.0.2.10:8080",
            "--port",
            "0",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--upstream") && stderr.contains("not on this machine"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn a_corrupt_recording_is_refused_naming_its_line_and_fault() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    let good = r#"{"v":1,"method":"GET","path":"/v1/models","fingerprint":"GET /v1/models 0","status":200,"headers":[],"chunks":[{"ms":1,"text":"{}"}]}"#;
    std::fs::write(&file, format!("{good}\n{}\n", &good[..60])).unwrap();
    let output = assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .args([
            "fake",
            "llm",
            "--port",
            "0",
            "--control-port",
            "0",
            "--replay",
        ])
        .arg(&file)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a corrupt recording was served");
    assert!(
        stderr.contains("line 2") && stderr.contains("not an exchange"),
        "{stderr}"
    );
}

/// A scenario with `[fakes.llm]` lines appended, parsed as if it were the file `origin`.
fn scenario_with(llm: &str, origin: &Path) -> Result<faultline::scenario::Plan, String> {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml"),
    )
    .unwrap();
    faultline::scenario::parse_scenario(
        &format!("{base}\n[fakes.llm]\n{llm}\n"),
        origin.to_str().unwrap(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_scenario_names_its_recording_relative_to_itself_and_bad_ones_at_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("replayed.toml");
    write_recording(&dir.path().join("llm.jsonl"), &["first"]);

    let plan = scenario_with(
        "replay = \"llm.jsonl\"\nreplay_speed = 2.0\nreplay_miss = \"generate\"",
        &origin,
    )
    .unwrap();
    let replay = plan.fakes.llm_replay.expect("the replay is kept");
    assert_eq!(replay.path, dir.path().join("llm.jsonl"));
    assert_eq!(replay.options.speed, 2.0);
    assert_eq!(replay.options.on_miss, replay::OnMiss::Generate);

    let missing = scenario_with("replay = \"nowhere.jsonl\"", &origin).unwrap_err();
    // The line of `replay = …`: the last of the scenario; its value starts at column 10.
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml"),
    )
    .unwrap();
    let line = format!("{base}\n[fakes.llm]\nreplay").lines().count();
    let at = format!("{}:{line}:10: ", origin.display());
    assert!(
        missing.starts_with(&at) && missing.contains("cannot read recording"),
        "{missing} (expected at {at})"
    );
    std::fs::write(dir.path().join("bad.jsonl"), "{\"v\":1}\n").unwrap();
    let corrupt = scenario_with("replay = \"bad.jsonl\"", &origin).unwrap_err();
    assert!(corrupt.contains("line 1: not an exchange"), "{corrupt}");
    let miss =
        scenario_with("replay = \"llm.jsonl\"\nreplay_miss = \"maybe\"", &origin).unwrap_err();
    assert!(
        miss.contains("\"maybe\"") && miss.contains("\"generate\""),
        "{miss}"
    );
    let speed = scenario_with("replay = \"llm.jsonl\"\nreplay_speed = 0.0", &origin).unwrap_err();
    assert!(speed.contains("replay_speed"), "{speed}");
    let alone = scenario_with("replay_speed = 2.0", &origin).unwrap_err();
    assert!(alone.contains("needs `replay`"), "{alone}");
}

#[tokio::test]
async fn a_scenario_runs_fake_llm_answers_from_its_recording() {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("replayed.toml");
    write_recording(&dir.path().join("llm.jsonl"), &["from the recording"]);
    let plan = scenario_with("replay = \"llm.jsonl\"", &origin).unwrap();

    let fakes = faultline::fakes::set::FakeSet::start_with(1, Instant::now(), None, &plan.fakes)
        .await
        .unwrap();
    let env = fakes.service_env();
    let base = &env
        .iter()
        .find(|(name, _)| *name == "OPENAI_BASE_URL")
        .unwrap()
        .1;
    let answer: Value = client()
        .post(format!("{base}/chat/completions"))
        .bearer_auth("any")
        .json(&again())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "from the recording"
    );
}

#[tokio::test]
async fn fakes_up_holds_the_fake_llm_replaying_and_refuses_a_bad_recording() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n").unwrap();
    let base = common::free_base().to_string();
    let refused = assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .args(["fakes", "up", "--base-port", &base, "--llm-replay"])
        .arg(&bad)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("--llm-replay") && stderr.contains("line 1: not an exchange"),
        "{stderr}"
    );

    let good = dir.path().join("good.jsonl");
    write_recording(&good, &["held by fakes up"]);
    let mut up = common::Reaped(
        std::process::Command::cargo_bin("faultline")
            .unwrap()
            .args(["fakes", "up", "--base-port", &base, "--llm-replay"])
            .arg(&good)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Held open to the end: `fakes up` goes on printing, and a closed pipe would kill it.
    let mut stdout = std::io::BufRead::lines(std::io::BufReader::new(up.0.stdout.take().unwrap()));
    let openai = stdout
        .by_ref()
        .map(Result::unwrap)
        .find_map(|line| {
            line.strip_prefix("export OPENAI_BASE_URL=")
                .map(str::to_owned)
        })
        .expect("fakes up prints OPENAI_BASE_URL");
    let answer: Value = client()
        .post(format!("{openai}/chat/completions"))
        .bearer_auth("any")
        .json(&again())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "held by fakes up"
    );
    drop(up);
    drop(stdout);
}

#[tokio::test]
async fn an_upstream_that_is_down_gets_a_502_naming_it_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("down.jsonl");
    let nobody = format!("http://127.0.0.1:{}", common::free_port());
    let (mut recorder, proxy, mut lines) = spawn_record(&nobody, &file, &[]).await;
    let reply = client()
        .post(format!("{proxy}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&again())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 502);
    let body: Value = reply.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("could not reach the upstream") && message.contains(&nobody));
    let summary = interrupt(&mut recorder, &mut lines).await;
    assert!(summary.starts_with("recorded 0 exchanges"), "{summary}");
}
