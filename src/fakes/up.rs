//! `faultline fakes up`: every fake on fixed loopback ports, with the control API, held until
//! Ctrl-C, for a service started by hand or by docker compose. It prints the environment to
//! start the service with; then any number of `faultline scenario NAME --attach URL` runs
//! drive that service through these same fakes: each run switches its fault windows on and
//! off through the control API (clearing leftover rules first, and every rule it added at its
//! end) and reads the journals and the tickets ledger for its own window. `fakes up` keeps
//! running between runs, so the service keeps its connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::set::FakeSet;
use crate::scenario::FakeOptions;

/// The first of the fixed ports: llm, then weather, tickets, redis, the OTLP collector at +4;
/// +5 to +8 are free for fakes to come; the control API at +9.
pub const DEFAULT_BASE_PORT: u16 = 8400;
/// The control API's port, above the base port.
pub const CONTROL_OFFSET: u16 = 9;

/// Arguments of `faultline fakes up` and `faultline fakes env`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// First port: llm at N, weather N+1, tickets N+2, redis N+3, OTLP collector N+4, the
    /// control API N+9.
    #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
    pub base_port: u16,
    /// Seed for the fakes' random draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The service's profile, for the shapes of its tools (`[tools.*]`; default:
    /// ./faultline.toml when it exists).
    #[arg(long, value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,
    /// Require this token on the control API (`Authorization: Bearer TOKEN`); default:
    /// $FAULTLINE_CONTROL_TOKEN, else none (loopback, no web page, JSON only still apply).
    #[arg(long, value_name = "TOKEN")]
    pub control_token: Option<String>,
    /// The fake LLM answers from this recording (`faultline record`), as `fake llm --replay`
    /// does; a request it lacks gets the provider's 404 naming it.
    #[arg(long, value_name = "FILE")]
    pub llm_replay: Option<std::path::PathBuf>,
}

/// Starts the fakes and the control API, prints where they are, and holds them until Ctrl-C.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let base = args.base_port;
    if base > u16::MAX - 9 {
        anyhow::bail!(
            "--base-port {base} leaves no room for the 10 ports the fakes use; pick a lower one"
        );
    }
    let mut options = fake_options(args.config.as_deref())?;
    if let Some(path) = &args.llm_replay {
        let replay = crate::scenario::LlmReplay {
            path: path.clone(),
            options: Default::default(),
        };
        // Read now, so a bad recording is named as such, not as a port in use.
        super::llm::replay::Replay::load(&replay.path, replay.options)
            .map_err(|why| anyhow::anyhow!("--llm-replay: {why}"))?;
        options.llm_replay = Some(replay);
    }
    let fakes = FakeSet::start_with(args.seed, Instant::now(), Some(base), &options)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}; is `faultline fakes up` already running? pick another --base-port"
            )
        })?;
    // Runs against these fakes read their bounded journals through the control API.
    fakes.stop_spooling();
    let control_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, base + CONTROL_OFFSET));
    let listener = tokio::net::TcpListener::bind(control_addr)
        .await
        .map_err(|e| {
            anyhow::anyhow!("control API on {control_addr}: {e}; pick another --base-port")
        })?;
    println!("# faultline fakes are up. Start your service with:");
    for (name, value) in fakes.service_env() {
        println!("export {name}={value}");
    }
    if options.tickets != crate::fakes::tool::WriteSchema::default() {
        let tickets = &options.tickets;
        println!(
            "# tickets fake shaped by [tools.tickets]: writes at POST {}, required: [{}], key header {}",
            tickets.path,
            tickets.required.join(", "),
            tickets.idempotency_header
        );
    }
    println!("# control API (switch faults, read journals): http://{control_addr}");
    let token = super::control::token_from(args.control_token.clone());
    let auth = match &token {
        Some(token) => {
            println!(
                "# control API token (scenario --attach reads it from this variable, or \
                 --fakes-token):"
            );
            println!("export {}={token}", super::control::TOKEN_ENV);
            format!(
                " -H \"authorization: Bearer ${}\"",
                super::control::TOKEN_ENV
            )
        }
        None => String::new(),
    };
    println!("#   curl -X POST http://{control_addr}/faults/llm -H 'content-type: application/json'{auth} -d '{{\"kind\":\"status\",\"code\":503}}'");
    println!("#   curl -X DELETE http://{control_addr}/faults");
    println!("#   curl http://{control_addr}/journal/otlp   # spans exported to OTEL_EXPORTER_OTLP_ENDPOINT");
    println!(
        "# then, as often as you like: faultline scenario NAME --attach http://127.0.0.1:<your port> --fake-port {base}"
    );
    println!("# Ctrl-C stops them.");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = super::control::router_with_ledgers(fakes.controlled(), fakes.ledgers())
        .merge(super::control::otlp_routes(fakes.span_journal().clone()));
    let control = tokio::spawn(super::control::serve_guarded(
        listener,
        router,
        token,
        async {
            let _ = stopped.await;
        },
    ));
    let _ = tokio::signal::ctrl_c().await;
    let _ = stop.send(());
    let _ = control.await;
    let attempts = fakes.attempts().len();
    fakes.shutdown().await;
    eprintln!("faultline: fakes stopped after {attempts} upstream attempts");
    Ok(())
}

/// The fakes' shapes from the profile at `path`, else ./faultline.toml when it exists, so an
/// attached run finds the tickets fake where the service writes.
fn fake_options(path: Option<&std::path::Path>) -> anyhow::Result<FakeOptions> {
    let found = std::path::Path::new(crate::scenario::config::FILE_NAME);
    let path = match path {
        Some(path) => path,
        None if found.exists() => found,
        None => return Ok(FakeOptions::default()),
    };
    let config = crate::scenario::load_config(path)?;
    Ok(FakeOptions {
        tickets: config.tools.tickets.unwrap_or_default(),
        ..FakeOptions::default()
    })
}

/// The environment `fakes up` (and an attached scenario run) gives a service, without
/// starting anything: the addresses follow from the ports.
pub fn env_for(base: u16) -> Vec<(&'static str, String)> {
    let url = |offset: u16| format!("http://127.0.0.1:{}", base + offset);
    super::set::service_env(
        &url(0),
        &url(1),
        &url(2),
        &format!("redis://127.0.0.1:{}", base + 3),
        &url(4),
        &format!("{}/mcp", url(5)),
    )
}
