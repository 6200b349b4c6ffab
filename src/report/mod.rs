//! STUB: reports (filled in on the checks branch).
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checks::Verdict;
use crate::evidence::Evidence;
use crate::scenario::Plan;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub passed: bool,
}

pub struct RunMeta {
    pub started_at: time::OffsetDateTime,
    pub target: String,
}

pub fn build(_plan: &Plan, _meta: &RunMeta, _evidence: &Evidence, _verdicts: Vec<Verdict>) -> Report {
    todo!()
}

pub fn write_all(_report: &Report, _evidence: &Evidence, _dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    todo!()
}

pub fn console_table(_report: &Report) -> String {
    todo!()
}
