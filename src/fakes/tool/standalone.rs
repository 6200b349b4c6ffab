//! `faultline fake tool weather|tickets|stubs`: one tool fake on a loopback port, for a
//! service started by hand. Prints the base URL as the first line of stdout, serves until
//! Ctrl-C.
//!
//! `fakes::http::serve` always binds an ephemeral port, so a fixed `--port` is served by a
//! small TCP forwarder in front of the fake. It mirrors what the fake does at the socket level:
//! it closes its own port while a `refuse` rule is on, and turns a reset from the fake into a
//! reset for the client. Once `fakes::http` can bind a given address, the forwarder can go.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

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
    let listener =
        bind(wanted).with_context(|| format!("failed to start fake {name} on {wanted}"))?;
    let addr = listener.local_addr()?;
    let fake = match stubs {
        Some(stubs) => super::start_stubs(stubs, switchboard.clone(), journal).await?,
        None if args.tool == Tool::Weather => {
            super::start_weather(switchboard.clone(), journal).await?
        }
        None => super::start_tickets(switchboard.clone(), journal).await?.0,
    };

    println!("http://{addr}");
    // Scripts (and tests) wait for this line; stdout may be a pipe, so do not leave it buffered.
    let mut stdout = tokio::io::stdout();
    stdout.flush().await?;
    eprintln!(
        "faultline fake tool {name} listening on http://{addr} ({} fault rule{}); Ctrl-C stops it",
        args.faults.len(),
        if args.faults.len() == 1 { "" } else { "s" }
    );

    let (stop, stopping) = watch::channel(false);
    let forwarder = tokio::spawn(forward(listener, addr, fake.addr(), switchboard, stopping));
    tokio::signal::ctrl_c()
        .await
        .context("could not listen for Ctrl-C")?;
    stop.send_replace(true);
    let _ = forwarder.await;
    fake.shutdown().await;
    Ok(())
}

/// Like `fakes::http`'s listener: `SO_REUSEADDR`, so the port can be taken back right after a
/// `refuse` closed it.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Forwards connections on `listener` to the fake at `upstream` until `stopping`; closes the
/// port (and open connections) while the switchboard refuses, as the fake itself does.
async fn forward(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    switchboard: Arc<Switchboard>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut refusing = switchboard.refusing();
    let mut listener = Some(listener);
    let mut connections = JoinSet::new();
    loop {
        let Some(open) = &listener else {
            tokio::select! {
                _ = until(&mut stopping, true) => break,
                _ = until(&mut refusing, false) => {}
            }
            // Retry until the port is free again; a forwarder without its port is useless.
            loop {
                match bind(addr) {
                    Ok(reopened) => break listener = Some(reopened),
                    Err(error) => {
                        tracing::debug!(%addr, %error, "re-binding after refuse failed; retrying");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            continue;
        };
        tokio::select! {
            _ = until(&mut stopping, true) => break,
            _ = until(&mut refusing, true) => {
                listener = None;
                // Open connections go too, as the fake drops its own.
                connections.abort_all();
            }
            accepted = open.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(splice(client, upstream));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Dropping the set aborts every connection: stopping must not wait for hung requests.
    connections.abort_all();
}

/// Copies bytes both ways between a client and the fake. If the fake resets the connection,
/// the client gets a reset too (linger 0), not a clean close that would hide the fault.
async fn splice(mut client: TcpStream, upstream: SocketAddr) {
    let _ = client.set_nodelay(true);
    let Ok(mut fake) = TcpStream::connect(upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = fake.set_nodelay(true);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut fake).await {
        if error.kind() == std::io::ErrorKind::ConnectionReset {
            let _ = client.set_zero_linger();
        }
    }
}

/// Resolves once the flag equals `wanted`; never, if its sender is gone (it cannot be: `run`
/// holds `stop` until the forwarder ends, and the forwarder holds the switchboard).
async fn until(flag: &mut watch::Receiver<bool>, wanted: bool) {
    if flag.wait_for(|now| *now == wanted).await.is_err() {
        std::future::pending::<()>().await;
    }
}
