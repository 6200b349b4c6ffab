//! STUB: `faultline fake redis`, filled in by the redis fake's issue.

/// Arguments of `faultline fake redis`.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// Loopback port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

pub async fn run(_args: StandaloneArgs) -> anyhow::Result<()> {
    anyhow::bail!("faultline fake redis is not built yet")
}
