//! `faultline fake tool weather|tickets|stubs`: one tool fake on a loopback port, for a
//! service started by hand. Prints the base URL as the first line of stdout, serves until
//! Ctrl-C.
//!
//! The fake binds `--port` itself (`fakes::http::serve_on`), so `refuse` closes that very port
//! and `reset` resets the client's own connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::io::AsyncWriteExt;

use super::StubSet;
use crate::fakes::fault::{parse_rule, Switchboard};
use crate::fakes::journal::Journal;

/// Attempts the standalone fake's journal keeps (nobody reads it but the fake itself).
const JOURNAL_CAPACITY: usize = 10_000;

/// Which tool fake to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// `GET /weather?city=`.
    Weather,
    /// `POST /tickets` with `Idempotency-Key`, `GET /tickets/{id}`.
    Tickets,
    /// Stubs from the file given with `--stubs`.
    Stubs,
}

/// Arguments of `faultline fake tool`.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// The tool fake to run.
    #[arg(value_enum)]
    pub tool: Tool,
    /// Loopback port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Stub file (TOML) for `stubs`, e.g. mocks/stubs.example.toml.
    #[arg(long, value_name = "FILE")]
    pub stubs: Option<PathBuf>,
    /// A fault to inject on every matching attempt, as JSON; repeatable. Example:
    /// '{"kind":"status","code":503,"retry_after":"1s","route":"/tickets","rate":0.5}'.
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<String>,
    /// Seed for fault rates and sampled delays.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub async fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let switchboard = Arc::new(Switchboard::new(args.seed));
    for (id, text) in args.faults.iter().enumerate() {
        let rule = parse_rule(text, id).map_err(anyhow::Error::msg)?;
        switchboard.activate(rule);
    }
    let journal = Arc::new(Journal::new(Instant::now(), JOURNAL_CAPACITY));
    let name = match args.tool {
        Tool::Weather => "weather",
        Tool::Tickets => "tickets",
        Tool::Stubs => "stubs",
    };
    // Checked before binding, so a bad flag fails fast with nothing half-started.
    let stubs = match (args.tool, &args.stubs) {
        (Tool::Stubs, Some(path)) => Some(StubSet::load(path)?),
        (Tool::Stubs, None) => anyhow::bail!("faultline fake tool stubs needs --stubs FILE"),
        (_, Some(_)) => anyhow::bail!("--stubs only applies to `faultline fake tool stubs`"),
        (_, None) => None,
    };

    let wanted = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let fake = match stubs {
        Some(stubs) => super::start_stubs_on(wanted, stubs, switchboard, journal).await,
        None if args.tool == Tool::Weather => {
            super::start_weather_on(wanted, switchboard, journal).await
        }
        None => super::start_tickets_on(wanted, switchboard, journal)
            .await
            .map(|(fake, _)| fake),
    }
    .with_context(|| format!("failed to start fake {name} on {wanted}"))?;
    let addr = fake.addr();

    println!("http://{addr}");
    // Scripts (and tests) wait for this line; stdout may be a pipe, so do not leave it buffered.
    let mut stdout = tokio::io::stdout();
    stdout.flush().await?;
    eprintln!(
        "faultline fake tool {name} listening on http://{addr} ({} fault rule{}); Ctrl-C stops it",
        args.faults.len(),
        if args.faults.len() == 1 { "" } else { "s" }
    );
    tokio::signal::ctrl_c()
        .await
        .context("could not listen for Ctrl-C")?;
    fake.shutdown().await;
    Ok(())
}
