//! STUB: `faultline fake tool`, filled in by the tool fake's issue.

/// Arguments of `faultline fake tool`.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// Loopback port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

pub async fn run(_args: StandaloneArgs) -> anyhow::Result<()> {
    anyhow::bail!("faultline fake tool is not built yet")
}
