//! Checks: pure functions from [`Evidence`] and [`Expectations`] to [`Verdict`]s.
//! No sockets, no clocks: each family is unit-tested on hand-built evidence.
//!
//! Families: [`sla`] (latency and error rate per phase), [`errors`] (honest failures).

mod common;
pub mod errors;
pub mod fallback;
pub mod logs;
pub mod recovery;
pub mod retries;
pub mod sla;
pub mod verdict;
pub mod writes;

pub use verdict::{Outcome, Verdict};

use crate::evidence::Evidence;
use crate::scenario::Expectations;

/// Every check the expectations ask for, in report order.
pub fn evaluate(evidence: &Evidence, expect: &Expectations) -> Vec<Verdict> {
    let mut verdicts = sla::check(evidence, expect);
    verdicts.push(errors::check_honest(evidence, &expect.errors));
    verdicts
}
