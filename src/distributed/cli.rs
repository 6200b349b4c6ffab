//! The command-line side of distributed runs: the flags `scenario` and `coordinate` share,
//! and starting the coordinator (with local worker processes for `scenario --workers N`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::coordinator::{cannot_share, Coordinator, Setup};
use super::local::LocalWorkers;
use super::DEFAULT_MAX_LOST_SHARE;
use crate::scenario::Plan;

/// Flags of a distributed run, on `scenario` and `coordinate`.
#[derive(Clone, Debug, clap::Args)]
pub struct DistributedArgs {
    /// Make the load with N worker processes: `scenario` starts them on this machine (one
    /// coordinator in this process); `coordinate` waits for N `faultline worker`s.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// The largest share of the load (0 to 1) a run may lose to workers that died and still
    /// be judged; past it the run is invalid (exit 2).
    #[arg(long, value_name = "SHARE", default_value_t = DEFAULT_MAX_LOST_SHARE)]
    pub max_lost_share: f64,
    /// How long workers have to join once the target is ready; those that have not are lost.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub join_timeout: Duration,
}

/// `faultline coordinate`'s arguments: a scenario's, and where to serve the workers.
#[derive(Debug, clap::Args)]
pub struct CoordinateArgs {
    #[command(flatten)]
    pub scenario: crate::cli::ScenarioArgs,
    /// Where to serve the workers (0.0.0.0:PORT in a pod, for a Kubernetes Service).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7900")]
    pub listen: SocketAddr,
    /// A file holding the shared token (a mounted Kubernetes Secret); default
    /// $FAULTLINE_COORDINATOR_TOKEN.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// Who makes the load.
pub enum Role {
    /// This process, as ever.
    OneProcess,
    /// `scenario --workers N`: worker processes on this machine.
    Local,
    /// `coordinate`: workers elsewhere, joining at `listen` with `token`.
    Coordinate { listen: SocketAddr, token: String },
}

/// `faultline coordinate`: the scenario run with its load made by workers.
pub async fn coordinate_command(args: CoordinateArgs, interrupt: watch::Receiver<bool>) -> i32 {
    let token = match super::protocol::read_token(None, args.token_file.as_deref()) {
        Ok(Some(token)) => token,
        Ok(None) => {
            eprintln!(
                "error: the coordinator needs a shared token: put it in a file given with \
                 --token-file PATH, or in {}; give workers the same one",
                super::protocol::TOKEN_ENV
            );
            return crate::cli::EXIT_NOT_RUN;
        }
        Err(why) => {
            eprintln!("error: {why}");
            return crate::cli::EXIT_NOT_RUN;
        }
    };
    let role = Role::Coordinate {
        listen: args.listen,
        token,
    };
    crate::cli::run_scenario(args.scenario, role, interrupt).await
}

/// The coordinator a run needs (`None` for one process), started and, for local workers,
/// with its workers started.
pub async fn start_for(
    plan: &Plan,
    args: &DistributedArgs,
    role: Role,
    progress: bool,
) -> Result<Option<Arc<Coordinator>>, String> {
    let (listen, token, local) = match role {
        Role::OneProcess if args.workers.is_none() => return Ok(None),
        Role::OneProcess | Role::Local => (
            SocketAddr::from(([127, 0, 0, 1], 0)),
            uuid::Uuid::new_v4().simple().to_string(),
            true,
        ),
        Role::Coordinate { listen, token } => {
            let target_here = plan
                .target
                .url
                .as_deref()
                .is_none_or(|url| crate::loopback::check(url, "http").is_ok());
            if target_here && !listen.ip().is_loopback() {
                return Err(format!(
                    "workers on other machines cannot reach {}, which is on this machine's \
                     loopback: --attach the service at an address they reach (allowed in \
                     [network] allow of faultline.toml), or --listen on 127.0.0.1 for workers \
                     on this machine",
                    plan.target.describe()
                ));
            }
            (listen, token, false)
        }
    };
    let count = args.workers.unwrap_or(1);
    if !(0.0..=1.0).contains(&args.max_lost_share) {
        return Err(format!(
            "--max-lost-share {} is not a share: give one from 0 to 1 (0.1 is 10%)",
            args.max_lost_share
        ));
    }
    if let Some(why) = cannot_share(&plan.load.executor, plan.load.users, count) {
        return Err(format!("--workers {count}: {why}"));
    }
    let coordinator = Coordinator::start(Setup {
        listen,
        token: token.clone(),
        count,
        max_lost_share: args.max_lost_share,
        join_timeout: args.join_timeout,
        progress,
    })
    .await?;
    if local {
        let exe = std::env::current_exe()
            .map_err(|e| format!("could not find faultline's own binary for the workers: {e}"))?;
        let workers = LocalWorkers::spawn(&exe, &coordinator.url(), &token, count)?;
        if progress {
            for (index, pid) in workers.pids().iter().enumerate() {
                eprintln!("faultline: load worker {index} started (pid {pid})");
            }
        }
        coordinator.adopt(workers);
    } else if progress {
        eprintln!(
            "faultline: coordinator serving {} load workers at {}",
            count,
            coordinator.url()
        );
    }
    Ok(Some(Arc::new(coordinator)))
}
