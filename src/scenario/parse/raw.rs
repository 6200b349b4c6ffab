//! The scenario file exactly as written: serde shapes that mirror the TOML, before validation.
//!
//! Every struct denies unknown fields, so a typo is an error rather than a silently ignored
//! setting. Values that a later check may reject are `Spanned`, so that check can point at
//! them. Numbers that have a range are read as `i64` and range-checked in [`super::build`], which
//! gives a better message ("users must be at least 1") than serde's "expected usize".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

/// A string value with its place in the file.
pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Text,
    #[serde(default)]
    pub description: String,
    pub seed: Option<u64>,
    pub load: RawLoad,
    pub target: Option<RawTarget>,
    #[serde(default)]
    pub faults: Vec<RawFault>,
    pub expect: Option<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub users: Spanned<i64>,
    pub duration: Text,
    pub think_time: Option<Text>,
    pub request_timeout: Option<Text>,
    pub quick_scale: Option<Spanned<f64>>,
    pub flows: Spanned<Vec<RawFlow>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    pub name: Text,
    pub weight: Option<Spanned<i64>>,
    pub messages: Spanned<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub command: Option<Spanned<Vec<Text>>>,
    pub flaws: Option<Spanned<Vec<Text>>>,
    #[serde(default)]
    pub env: BTreeMap<Text, Text>,
    pub ready_path: Option<Text>,
    pub ready_timeout: Option<Text>,
    pub metrics_path: Option<Text>,
}

/// One `[[faults]]` table. Kind-specific fields are all optional here; [`super::build`] checks
/// that each kind gets exactly the fields it uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub fake: Text,
    pub route: Option<Text>,
    pub start: Text,
    pub end: Text,
    pub rate: Option<Spanned<f64>>,
    pub kind: Text,
    pub code: Option<Spanned<i64>>,
    pub retry_after: Option<Text>,
    pub delay: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub baseline: Option<RawPhaseLimits>,
    pub fault: Option<RawPhaseLimits>,
    pub recovery: Option<RawPhaseLimits>,
    pub errors: Option<RawErrors>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhaseLimits {
    pub p95: Option<Text>,
    pub error_rate: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawErrors {
    pub allowed_statuses: Option<Vec<Spanned<i64>>>,
    pub within: Option<Text>,
}
