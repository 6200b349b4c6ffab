//! `faultline fake tool weather|tickets|stubs`: one tool fake on a loopback port, for a
//! service started by hand. Prints the base URL as the first line of stdout, serves until
//! Ctrl-C, then (for the tickets fake and idempotent stubs) a summary of the writes on stderr:
//! how many created, replayed or were refused, and the duplicate side effects.
//!
//! The fake binds `--port` itself (`fakes::http::serve_on`), so `refuse` closes that very port
//! and `reset` resets the client's own connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::io::AsyncWriteExt;

use super::{StubSet, WriteLedger, WriteOutcome, WriteSchema};
use crate::fakes::fault::{parse_rule, Switchboard};
use crate::fakes::journal::Journal;

/// Attempts the standalone fake's journal keeps (nobody reads it but the fake itself).
const JOURNAL_CAPACITY: usize = 10_000;

/// Which tool fake to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// `GET /weather?city=`.
    Weather,
    /// A write API: `POST /tickets` (any JSON object) with `Idempotency-Key`,
    /// `GET /tickets/{id}`; shaped with --path, --required, --idempotency-header.
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
    /// `tickets`: the write route (as `path` in faultline.toml's [tools.tickets]).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// `tickets`: fields a write must carry, comma-separated (a dotted name reaches into
    /// objects); a write without one gets a 400 naming it. Default: none.
    #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
    pub required: Vec<String>,
    /// `tickets`: the header that carries the idempotency key.
    #[arg(long, value_name = "NAME")]
    pub idempotency_header: Option<String>,
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
    let shaped = args.path.is_some() || !args.required.is_empty();
    if args.tool != Tool::Tickets && (shaped || args.idempotency_header.is_some()) {
        anyhow::bail!(
            "--path, --required and --idempotency-header shape `faultline fake tool tickets`; \
             a stub file sets its own (idempotency_header at its top)"
        );
    }
    let schema = schema(&args)?;

    let wanted = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let started = match stubs {
        Some(stubs) => {
            let ledger = stubs.ledger();
            let any_idempotent = stubs.stubs().iter().any(|stub| stub.is_idempotent());
            super::start_stubs_on(wanted, stubs, switchboard, journal)
                .await
                .map(|fake| (fake, any_idempotent.then_some(ledger)))
        }
        None if args.tool == Tool::Weather => super::start_weather_on(wanted, switchboard, journal)
            .await
            .map(|fake| (fake, None)),
        None => super::start_tickets_on(wanted, schema, switchboard, journal)
            .await
            .map(|(fake, ledger)| (fake, Some(ledger))),
    };
    let (fake, ledger) =
        started.with_context(|| format!("failed to start fake {name} on {wanted}"))?;
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
    if let Some(ledger) = ledger {
        eprintln!("{}", writes_summary(name, &ledger));
    }
    Ok(())
}

/// The tickets fake's schema from the flags, checked as faultline.toml's `[tools.tickets]` is.
fn schema(args: &StandaloneArgs) -> anyhow::Result<WriteSchema> {
    let mut schema = WriteSchema::default();
    if let Some(path) = &args.path {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            anyhow::bail!(
                "--path {path}: give the route alone, starting with `/`, e.g. /v1/tickets"
            );
        }
        schema.path = path.clone();
    }
    for field in &args.required {
        if field.split('.').any(|part| part.trim().is_empty()) {
            anyhow::bail!("--required {field:?}: give field names, e.g. --required subject,user");
        }
    }
    schema.required = args.required.iter().map(|f| f.trim().to_owned()).collect();
    if let Some(header) = &args.idempotency_header {
        if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            anyhow::bail!("--idempotency-header {header:?} is not an HTTP header name");
        }
        schema.idempotency_header = header.clone();
    }
    Ok(schema)
}

/// `fake tickets: 12 writes: 9 created, 2 replayed, 1 faulted; 1 duplicate side effect (...)`
fn writes_summary(name: &str, ledger: &WriteLedger) -> String {
    let writes = ledger.writes();
    let count = |outcome| writes.iter().filter(|w| w.outcome == outcome).count();
    let duplicates = ledger.duplicate_writes();
    let mut line = format!(
        "fake {name}: {} writes: {} created, {} replayed, {} refused (key reused), {} invalid, \
         {} faulted; {} duplicate side effect{}",
        writes.len(),
        count(WriteOutcome::Created),
        count(WriteOutcome::Replayed),
        count(WriteOutcome::KeyReused),
        count(WriteOutcome::Invalid),
        count(WriteOutcome::Faulted),
        duplicates.len(),
        if duplicates.len() == 1 { "" } else { "s" },
    );
    for duplicate in duplicates.iter().take(5) {
        let keys: Vec<&str> = duplicate
            .idempotency_keys
            .iter()
            .map(|key| key.as_deref().unwrap_or("none"))
            .collect();
        line.push_str(&format!(
            "\n  request {} created {} times (idempotency keys: {})",
            duplicate.keys[0].as_deref().unwrap_or("(unlinked)"),
            duplicate.ids.len(),
            keys.join(", ")
        ));
    }
    line
}
