//! The verdict a check reaches: pass, fail, or not applicable, with the figure it measured, the
//! limit it held that figure to, and the evidence a person needs to see why.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not be made (no data for it); never counted as a pass.
    NotApplicable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Stable id: `sla.p95.baseline`, `errors.rate.fault`, `errors.honest`.
    pub id: String,
    /// What the check holds the target to, in words.
    pub title: String,
    pub outcome: Outcome,
    /// The measured figure, in `unit`.
    pub figure: Option<f64>,
    /// The limit the figure is held to, in `unit`.
    pub limit: Option<f64>,
    /// `ms`, `ratio`, `requests`.
    pub unit: String,
    /// One or two sentences: what was seen, and (on failure) why it is a problem.
    pub summary: String,
    /// Request ids, timings, log lines: what a person needs to see why. Bounded.
    pub evidence: Vec<String>,
}

impl Verdict {
    /// Evidence lines kept per verdict.
    pub const EVIDENCE_LIMIT: usize = 10;

    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}
