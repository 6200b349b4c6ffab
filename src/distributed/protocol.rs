//! The wire between a coordinator and its load workers: JSON over HTTP/1.1, every request
//! with `Authorization: Bearer TOKEN` (the shared token, compared in constant time).
//!
//! | call                      | body                   | answer                                  |
//! |---------------------------|------------------------|-----------------------------------------|
//! | `GET /clock`              |                        | [`Clock`]: the coordinator's clock now  |
//! | `POST /join`              | [`Join`]               | 200, or 409 (wrong count, index taken)  |
//! | `GET /plan`               |                        | [`WorkPlan`], or 503 until it is ready  |
//! | `POST /heartbeat`         | [`Heartbeat`]          | [`Beat`]: whether to stop now           |
//! | `POST /results/{index}`   | [`encode_results`]     | 200, or 409 (already reported)          |
//!
//! Results travel as one body: a 4-byte big-endian length, a [`WorkerResult`] as JSON, then
//! the worker's records as `records.jsonl.gz` bytes (the format of
//! [`crate::evidence::RecordStore::write_into`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::evidence::{EncodedCell, LoadStats, PhaseSpan};
use crate::load::{LoadSpec, Share};
use crate::scenario::api::Api;
use crate::scenario::{Executor, Flow};

/// The environment variable that holds the shared token, for both roles.
pub const TOKEN_ENV: &str = "FAULTLINE_COORDINATOR_TOKEN";

/// `GET /clock`: milliseconds since the coordinator's run began.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Clock {
    pub now_ms: f64,
}

/// `POST /join`: a worker says it is there, and how many workers it was told the run has.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Join {
    pub index: usize,
    pub count: usize,
}

/// `GET /plan`: what every worker needs to make its share of the load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkPlan {
    /// The scenario's name, for the workers' messages.
    pub scenario: String,
    /// Workers in the run.
    pub count: usize,
    /// When the load starts, on the coordinator's clock ([`Clock`]).
    pub start_at_ms: f64,
    pub load: WireLoad,
    /// The run's phases, for the worker's histograms per phase.
    pub phases: Vec<PhaseSpan>,
}

/// The load of the whole run, as [`LoadSpec`] holds it (each worker cuts its share).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireLoad {
    pub base_url: String,
    pub api: Api,
    pub executor: Executor,
    pub users: usize,
    pub duration: Duration,
    pub think_time: Duration,
    pub request_timeout: Duration,
    pub flows: Vec<Flow>,
    pub seed: u64,
}

impl WireLoad {
    pub fn of(spec: &LoadSpec) -> Self {
        WireLoad {
            base_url: spec.base_url.clone(),
            api: spec.api.clone(),
            executor: spec.executor.clone(),
            users: spec.users,
            duration: spec.duration,
            think_time: spec.think_time,
            request_timeout: spec.request_timeout,
            flows: spec.flows.clone(),
            seed: spec.seed,
        }
    }

    /// The load spec of one share of it.
    pub fn share(&self, share: Share) -> LoadSpec {
        LoadSpec {
            base_url: self.base_url.clone(),
            api: self.api.clone(),
            executor: share.executor(&self.executor),
            users: self.users,
            duration: self.duration,
            think_time: self.think_time,
            request_timeout: self.request_timeout,
            flows: self.flows.clone(),
            seed: self.seed,
            share,
        }
    }
}

/// `POST /heartbeat`: a worker's live counts, about once a second.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub index: usize,
    pub requests: u64,
    pub failures: u64,
}

/// The answer to a heartbeat: `stop` when the run was interrupted (Ctrl-C at the coordinator).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Beat {
    pub stop: bool,
}

/// What a worker reports with its records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerResult {
    pub index: usize,
    pub stats: LoadStats,
    /// Counts and latency HdrHistograms per phase × flow × outcome of its records.
    pub summary: Vec<EncodedCell>,
    /// Records in the stream that follows (kept ones; the cap's cut ones are in `cut`).
    pub records: u64,
    pub cut: crate::evidence::CutRecords,
}

/// One results body: length-prefixed header, then the records file's bytes.
pub fn encode_results(result: &WorkerResult, records_gz: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(result).expect("a worker result serialises");
    let mut body = Vec::with_capacity(4 + header.len() + records_gz.len());
    body.extend_from_slice(&(header.len() as u32).to_be_bytes());
    body.extend_from_slice(&header);
    body.extend_from_slice(records_gz);
    body
}

/// Splits a results body into its header and records bytes.
pub fn decode_results(body: &[u8]) -> Result<(WorkerResult, &[u8]), String> {
    let (length, rest) = body
        .split_first_chunk::<4>()
        .ok_or("a results body shorter than its 4-byte header length")?;
    let length = u32::from_be_bytes(*length) as usize;
    if rest.len() < length {
        return Err(format!(
            "a results body whose header says {length} bytes but holds {}",
            rest.len()
        ));
    }
    let (header, records) = rest.split_at(length);
    let result = serde_json::from_slice(header)
        .map_err(|e| format!("a results header that is not a worker result: {e}"))?;
    Ok((result, records))
}

/// True when `authorization` carries `token` as a bearer token. Constant-time in the token's
/// bytes, so the time an answer takes does not tell how much of a guess was right.
pub fn token_matches(authorization: Option<&str>, token: &str) -> bool {
    let given = authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.as_bytes())) && !token.is_empty()
}

/// The token from `--token`, else the file `--token-file` names (trimmed: a Kubernetes Secret
/// mounted as a file often ends in a newline), else [`TOKEN_ENV`].
pub fn read_token(
    flag: Option<String>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, String> {
    if let Some(token) = flag {
        return Ok(Some(token));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "--token-file {}: {e}; give a readable file holding the shared token",
                path.display()
            )
        })?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(format!(
                "--token-file {} is empty; put the shared token in it",
                path.display()
            ));
        }
        return Ok(Some(token));
    }
    Ok(std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        assert!(token_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!token_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!token_matches(Some("Bearer s3cretX"), "s3cret"));
        assert!(!token_matches(Some("s3cret"), "s3cret"));
        assert!(!token_matches(None, "s3cret"));
        assert!(!token_matches(Some("Bearer "), ""));
    }

    #[test]
    fn a_results_body_reads_back_as_it_was_written() {
        let result = WorkerResult {
            index: 1,
            stats: LoadStats::default(),
            summary: Vec::new(),
            records: 3,
            cut: Default::default(),
        };
        let body = encode_results(&result, b"gzip bytes");
        let (back, records) = decode_results(&body).unwrap();
        assert_eq!(back.index, 1);
        assert_eq!(back.records, 3);
        assert_eq!(records, b"gzip bytes");
        assert!(decode_results(&body[..10]).is_err());
    }
}
