//! `faultline fake redis`: the fake Redis on a fixed loopback port until Ctrl-C, for a service
//! started by hand (`REDIS_URL=redis://127.0.0.1:6390`).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::{start, start_upstash, Keyspace, RedisOptions};
use crate::fakes::fault::{parse_rule, Switchboard};
use crate::fakes::journal::Journal;

/// Commands the standalone fake remembers in its journal (it prints nothing of it; the bound
/// keeps memory flat however long it runs).
const JOURNAL_CAPACITY: usize = 10_000;

/// Arguments of `faultline fake redis`.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// Loopback port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// A fault rule as JSON, e.g. '{"kind":"redis_error","reply":"LOADING Redis is loading the
    /// dataset in memory","route":"GET","rate":0.5}'; repeat for several.
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<String>,
    /// Seed for fault rates and sampled delays.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Require this password (AUTH), as `requirepass` does.
    #[arg(long)]
    pub password: Option<String>,
    /// Proxy mode: forward every command to this real redis-server (redis://127.0.0.1:6379),
    /// with the same faults in between.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Also serve the keyspace over the Upstash REST API, with this bearer token (its URL is
    /// printed on a second line).
    #[arg(long, value_name = "TOKEN")]
    pub rest_token: Option<String>,
}

pub async fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let switchboard = Arc::new(Switchboard::new(args.seed));
    for (id, text) in args.faults.iter().enumerate() {
        switchboard.activate(parse_rule(text, id).map_err(anyhow::Error::msg)?);
    }
    let journal = Arc::new(Journal::new(Instant::now(), JOURNAL_CAPACITY));
    let keyspace = Arc::new(Keyspace::default());
    let options = RedisOptions {
        port: args.port,
        password: args.password,
        upstream: args.upstream,
        keyspace: Some(keyspace.clone()),
    };
    let fake = start(options, switchboard.clone(), journal.clone())
        .await
        .context("faultline fake redis")?;
    println!("{}", fake.base_url());
    let rest = match args.rest_token {
        Some(token) => {
            let rest = start_upstash(token, keyspace, switchboard, journal)
                .await
                .context("faultline fake redis: the REST API")?;
            println!("{} (Upstash REST API)", rest.base_url());
            Some(rest)
        }
        None => None,
    };
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    fake.shutdown().await;
    if let Some(rest) = rest {
        rest.shutdown().await;
    }
    Ok(())
}
