//! STUB: honest failures.
use super::Verdict;
use crate::evidence::Evidence;
use crate::scenario::ErrorExpectations;

pub fn check_honest(_evidence: &Evidence, _expect: &ErrorExpectations) -> Verdict {
    todo!()
}
