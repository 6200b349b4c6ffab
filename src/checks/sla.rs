//! STUB: latency and error rate per phase.
use serde::{Deserialize, Serialize};

use super::Verdict;
use crate::evidence::{Evidence, Phase};
use crate::scenario::Expectations;

/// Latency percentiles and error counts of one phase's client requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    pub phase: Phase,
    pub start_ms: f64,
    pub end_ms: f64,
    pub requests: u64,
    pub failures: u64,
    /// failures / requests; 0 when there were no requests.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn phase_stats(_evidence: &Evidence) -> Vec<PhaseStats> {
    todo!()
}

pub fn check(_evidence: &Evidence, _expect: &Expectations) -> Vec<Verdict> {
    todo!()
}
