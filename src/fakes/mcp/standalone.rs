//! `faultline fake mcp`: the fake MCP server on a fixed loopback port, for a service started by
//! hand. Prints its URL and the control API's, serves until Ctrl-C, then a one-line summary.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::start_on;
use crate::fakes::control::{self, ControlledFake, StandaloneControl};
use crate::fakes::fault::{parse_rule, Switchboard};
use crate::fakes::journal::Journal;

/// Attempts the standalone fake remembers.
const JOURNAL_CAPACITY: usize = 100_000;

/// Arguments of `faultline fake mcp`.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// Loopback port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// A fault rule to switch on from the start, as JSON; repeatable. For example
    /// '{"kind":"tool_error","rate":0.3}' or '{"kind":"tools_changed"}'.
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<String>,
    /// Seed for tool answers and fault draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Loopback port of the control API (switch faults, read the journal); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub control_port: u16,
    /// Require this token on the control API (`Authorization: Bearer TOKEN`); default:
    /// $FAULTLINE_CONTROL_TOKEN, else none.
    #[arg(long, value_name = "TOKEN")]
    pub control_token: Option<String>,
}

pub async fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let board = Arc::new(Switchboard::new(args.seed));
    for (id, text) in args.faults.iter().enumerate() {
        board.activate(parse_rule(text, id).map_err(anyhow::Error::msg)?);
    }
    let journal = Arc::new(Journal::new(Instant::now(), JOURNAL_CAPACITY));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let fake = start_on(addr, args.seed, board.clone(), journal.clone())
        .await
        .with_context(|| format!("pick another --port than {}", args.port))?;
    let controlled = ControlledFake {
        name: "mcp".into(),
        switchboard: board.clone(),
        journal: journal.clone(),
    };
    let token = control::token_from(args.control_token.clone());
    let control = StandaloneControl::start(args.control_port, controlled, token).await?;
    let control_url = control.url.clone();

    println!("fake mcp listening on {}/mcp", fake.base_url());
    println!("  MCP_SERVER_URL={}/mcp", fake.base_url());
    println!("  control: {control_url}  (GET /faults, POST /faults/mcp, GET /journal/mcp)");
    for rule in board.active() {
        println!("  fault {}: {}", rule.id, rule.fault.label());
    }
    println!("Ctrl-C to stop");

    tokio::signal::ctrl_c()
        .await
        .context("failed to listen for Ctrl-C")?;
    control.stop().await;
    fake.shutdown().await;
    let attempts = journal.snapshot();
    let faulted = attempts.iter().filter(|a| a.fault.is_some()).count();
    println!(
        "fake mcp: {} attempts, {faulted} with faults, {} dropped from the journal",
        attempts.len(),
        journal.dropped()
    );
    Ok(())
}
