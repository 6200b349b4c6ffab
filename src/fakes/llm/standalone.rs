//! `faultline fake llm`: the fake LLM on a fixed loopback port, for a service started by hand.
//! Prints where it listens, the API key and the control API's URL, serves until Ctrl-C, then
//! prints a one-line summary of the journal. With `--replay FILE` it answers from a recording
//! (see `replay`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::replay::start_on;
use super::replay::{OnMiss, Replay, ReplayOptions};
use super::{ApiKey, LlmOptions};
use crate::fakes::control::{self, ControlledFake, StandaloneControl};
use crate::fakes::fault::{parse_rule, Switchboard};
use crate::fakes::journal::{ApiKeySent, Journal};

/// Attempts the standalone fake remembers (the summary counts only what is kept, and says how
/// many were pushed out).
const JOURNAL_CAPACITY: usize = 100_000;

/// Arguments of `faultline fake llm`.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// Loopback port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// A fault rule to switch on from the start, as JSON; repeatable. For example
    /// '{"kind":"status","code":429,"retry_after":"2s","rate":0.3}'.
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<String>,
    /// Seed for answers, embeddings and fault draws: the same seed repeats the same run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The API key clients must send; `any` accepts every key (and none), as other LLM
    /// fakes do. Either way the journal records which key each attempt sent: the given one,
    /// another, or none (a class, never the key).
    #[arg(long, default_value = "sk-faultline")]
    pub api_key: String,
    /// Loopback port of the control API (switch faults, read the journal); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub control_port: u16,
    /// Require this token on the control API (`Authorization: Bearer TOKEN`); default:
    /// $FAULTLINE_CONTROL_TOKEN, else none.
    #[arg(long, value_name = "TOKEN")]
    pub control_token: Option<String>,
    /// Answer from this recording (`faultline record`'s file): a request that matches a
    /// recorded one gets its status, headers and chunks at the recorded timing, faults on top.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
    /// Replay this many times as fast as recorded (0.5: half as fast).
    #[arg(long, default_value_t = 1.0, requires = "replay")]
    pub replay_speed: f64,
    /// What a request the recording does not hold gets: the provider's 404 naming it, or the
    /// generated answer.
    #[arg(long, value_enum, default_value_t = OnMiss::Error, requires = "replay")]
    pub replay_miss: OnMiss,
}

pub async fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let board = Arc::new(Switchboard::new(args.seed));
    for (id, text) in args.faults.iter().enumerate() {
        board.activate(parse_rule(text, id).map_err(anyhow::Error::msg)?);
    }
    let journal = Arc::new(Journal::new(Instant::now(), JOURNAL_CAPACITY));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let api_key = ApiKey::from_flag(&args.api_key);
    if args.api_key.trim().is_empty() {
        anyhow::bail!("--api-key is empty; give the key clients must send, or `any`");
    }
    let replay = match &args.replay {
        None => None,
        Some(path) => {
            let options = ReplayOptions {
                speed: args.replay_speed,
                on_miss: args.replay_miss,
            };
            let replay =
                Replay::load(path, options).map_err(|why| anyhow::anyhow!("--replay: {why}"))?;
            Some(Arc::new(replay))
        }
    };
    let fake = start_on(
        addr,
        LlmOptions {
            api_key: api_key.clone(),
            seed: args.seed,
        },
        replay.clone(),
        board.clone(),
        journal.clone(),
    )
    .await
    .with_context(|| format!("pick another --port than {}", args.port))?;
    let controlled = ControlledFake {
        name: "llm".into(),
        switchboard: board.clone(),
        journal: journal.clone(),
    };
    let token = control::token_from(args.control_token.clone());
    let control = StandaloneControl::start(args.control_port, controlled, token).await?;
    let control_url = control.url.clone();

    let base = fake.base_url();
    println!("fake llm listening on {base}");
    println!("  OPENAI_BASE_URL={base}/v1");
    println!("  ANTHROPIC_BASE_URL={base}");
    match &api_key {
        ApiKey::Only(key) => println!("  api key: {key}"),
        ApiKey::Any { .. } => println!("  api key: any (every key is accepted, and none)"),
    }
    if let (Some(replay), Some(path)) = (&replay, &args.replay) {
        println!(
            "  replaying {}: {} exchanges at {}x, misses get {}",
            path.display(),
            replay.len(),
            args.replay_speed,
            match args.replay_miss {
                OnMiss::Error => "a 404 naming them",
                OnMiss::Generate => "generated answers",
            }
        );
    }
    println!("  control: {control_url}  (GET /faults, POST /faults/llm, GET /journal/llm)");
    for rule in board.active() {
        println!("  fault {}: {}", rule.id, rule.fault.label());
    }
    println!("Ctrl-C to stop");

    tokio::signal::ctrl_c()
        .await
        .context("failed to listen for Ctrl-C")?;
    control.stop().await;
    fake.shutdown().await;
    println!("{}", summary(&journal));
    Ok(())
}

/// `fake llm: 12 attempts (200: 9, 429: 2, no answer: 1), 3 with faults, 0 dropped from the
/// journal`, and a second line when some attempts sent no API key.
fn summary(journal: &Journal) -> String {
    let attempts = journal.snapshot();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for attempt in &attempts {
        let status = attempt
            .status
            .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
        *by_status.entry(status).or_default() += 1;
    }
    let statuses: Vec<String> = by_status
        .iter()
        .map(|(status, n)| format!("{status}: {n}"))
        .collect();
    let faulted = attempts.iter().filter(|a| a.fault.is_some()).count();
    let keyless = attempts
        .iter()
        .filter(|a| a.api_key == Some(ApiKeySent::None))
        .count();
    let mut line = format!(
        "fake llm: {} attempts ({}), {faulted} with faults, {} dropped from the journal",
        attempts.len(),
        statuses.join(", "),
        journal.dropped()
    );
    if keyless > 0 {
        line.push_str(&format!(
            "\nfake llm: {keyless} attempts sent no API key (no Authorization or x-api-key \
             header); a real provider answers them 401"
        ));
    }
    line
}
