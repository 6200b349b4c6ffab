//! STUB: `faultline report <dir>` and `faultline compare <a> <b>`, built by the reports issue.

use std::path::PathBuf;

/// Arguments of `faultline report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run's report directory (holding report.json).
    pub dir: PathBuf,
}

/// Arguments of `faultline compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The earlier run's report directory.
    pub before: PathBuf,
    /// The later run's report directory.
    pub after: PathBuf,
}

/// Renders a run's HTML and Markdown again from its report.json; returns the exit code.
pub fn run_report(_args: ReportArgs) -> anyhow::Result<i32> {
    anyhow::bail!("faultline report is not built yet")
}

/// Shows per-check and per-phase changes between two runs; returns the exit code.
pub fn run_compare(_args: CompareArgs) -> anyhow::Result<i32> {
    anyhow::bail!("faultline compare is not built yet")
}
