//! Exact counts and latency HdrHistograms of a run's client requests, per phase × flow ×
//! outcome: a few kilobytes whatever the run's length, mergeable across runs (and across load
//! workers), and written into report.json in HdrHistogram's standard V2 compressed encoding
//! (base64), which HdrHistogram's libraries in Java, Go, Python, JavaScript and Rust read.
//!
//! They are made in one pass over the record store (see [`Summary::of`]) once the run's
//! phases are known; a request's phase is [`Evidence::phase_of`]'s.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{Evidence, Phase, Record};

/// How a request ended, for the purpose of counting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// A 2xx answer.
    Ok,
    /// An answer with another status.
    Error,
    /// No answer: connection error, client timeout, run ended.
    NoAnswer,
}

impl RequestOutcome {
    pub fn of(record: &Record) -> Self {
        match record.status {
            Some(200..=299) => RequestOutcome::Ok,
            Some(_) => RequestOutcome::Error,
            None => RequestOutcome::NoAnswer,
        }
    }
}

/// Where a request is counted: its phase (`None`: outside every phase), flow and outcome.
pub type CellKey = (Option<Phase>, String, RequestOutcome);

/// Requests and latencies of one phase × flow × outcome.
#[derive(Clone, Debug)]
pub struct Cell {
    pub requests: u64,
    /// Latency in microseconds (3 significant figures: within 0.1%).
    pub latency_us: Histogram<u64>,
}

impl Cell {
    fn new() -> Self {
        Cell {
            requests: 0,
            // 3 significant figures, auto-resizing: no upper bound to guess for a hung request.
            latency_us: Histogram::new(3).expect("3 significant figures is valid"),
        }
    }
}

/// Counts and histograms of every kept record, per phase × flow × outcome.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub cells: BTreeMap<CellKey, Cell>,
}

impl Summary {
    /// One pass over `evidence.records`.
    pub fn of(evidence: &Evidence) -> Self {
        let mut summary = Summary::default();
        for record in evidence.records.iter() {
            summary.add(evidence.phase_of(&record), &record);
        }
        summary
    }

    pub fn add(&mut self, phase: Option<Phase>, record: &Record) {
        let key = (phase, record.flow.clone(), RequestOutcome::of(record));
        let cell = self.cells.entry(key).or_insert_with(Cell::new);
        cell.requests += 1;
        cell.latency_us
            .record(to_us(record.latency_ms))
            .expect("an auto-resizing histogram takes any u64");
    }

    /// Adds another run's (or worker's) counts: the result is the summary of both together.
    pub fn merge(&mut self, other: &Summary) {
        for (key, cell) in &other.cells {
            let mine = self.cells.entry(key.clone()).or_insert_with(Cell::new);
            mine.requests += cell.requests;
            mine.latency_us
                .add(&cell.latency_us)
                .expect("auto-resizing histograms of the same precision add");
        }
    }

    /// Requests counted.
    pub fn requests(&self) -> u64 {
        self.cells.values().map(|c| c.requests).sum()
    }

    /// Requests that did not succeed.
    pub fn failures(&self) -> u64 {
        self.cells
            .iter()
            .filter(|((_, _, outcome), _)| *outcome != RequestOutcome::Ok)
            .map(|(_, c)| c.requests)
            .sum()
    }

    /// The cells as report.json writes them.
    pub fn encoded(&self) -> Vec<EncodedCell> {
        self.cells
            .iter()
            .map(|((phase, flow, outcome), cell)| EncodedCell {
                phase: *phase,
                flow: flow.clone(),
                outcome: *outcome,
                requests: cell.requests,
                latency_us: encode(&cell.latency_us),
            })
            .collect()
    }

    /// Reads back cells written by [`Summary::encoded`].
    pub fn decode(cells: &[EncodedCell]) -> Result<Self, String> {
        let mut summary = Summary::default();
        for encoded in cells {
            let latency_us = decode(&encoded.latency_us).map_err(|e| {
                format!(
                    "the latency histogram of {} / {} / {:?} is not a V2 HdrHistogram: {e}",
                    encoded.phase.map_or("(no phase)", Phase::name),
                    encoded.flow,
                    encoded.outcome
                )
            })?;
            let key = (encoded.phase, encoded.flow.clone(), encoded.outcome);
            summary.merge(&Summary {
                cells: BTreeMap::from([(
                    key,
                    Cell {
                        requests: encoded.requests,
                        latency_us,
                    },
                )]),
            });
        }
        Ok(summary)
    }
}

/// One cell in report.json: its counts and its latency histogram, in microseconds, as
/// HdrHistogram's V2 compressed encoding in base64 (`HISTFAAA…`, as Java's
/// `Histogram.encodeIntoCompressedByteBuffer` and `HistogramLogWriter` write it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodedCell {
    /// `null` for requests outside every phase.
    pub phase: Option<Phase>,
    pub flow: String,
    pub outcome: RequestOutcome,
    pub requests: u64,
    pub latency_us: String,
}

fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .expect("serialising into memory does not fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| e.to_string())?;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{e:?}"))?;
    histogram.auto(true);
    Ok(histogram)
}

/// Milliseconds to whole microseconds; NaN and negatives (a clock oddity) count as 0.
pub fn to_us(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::PhaseSpan;

    fn evidence(latencies: &[(f64, Option<u16>, f64)]) -> Evidence {
        let records: Vec<Record> = latencies
            .iter()
            .map(|&(at_ms, status, latency_ms)| Record {
                at_ms,
                flow: "chat".into(),
                status,
                latency_ms,
                ..Record::default()
            })
            .collect();
        Evidence {
            phases: vec![
                PhaseSpan {
                    phase: Phase::Baseline,
                    start_ms: 0.0,
                    end_ms: 1_000.0,
                },
                PhaseSpan {
                    phase: Phase::Fault,
                    start_ms: 1_000.0,
                    end_ms: 2_000.0,
                },
            ],
            records: records.into(),
            ..Evidence::default()
        }
    }

    #[test]
    fn requests_are_counted_per_phase_flow_and_outcome() {
        let e = evidence(&[
            (10.0, Some(200), 5.0),
            (20.0, Some(200), 7.0),
            (30.0, Some(503), 9.0),
            (1_500.0, None, 400.0),
        ]);
        let s = Summary::of(&e);
        let count = |phase, outcome| {
            s.cells
                .get(&(Some(phase), "chat".to_string(), outcome))
                .map_or(0, |c| c.requests)
        };
        assert_eq!(count(Phase::Baseline, RequestOutcome::Ok), 2);
        assert_eq!(count(Phase::Baseline, RequestOutcome::Error), 1);
        assert_eq!(count(Phase::Fault, RequestOutcome::NoAnswer), 1);
        assert_eq!((s.requests(), s.failures()), (4, 2));
    }

    #[test]
    fn histograms_survive_their_encoding_and_merge_into_the_whole() {
        let first = evidence(&[(10.0, Some(200), 5.0), (20.0, Some(200), 100.0)]);
        let second = evidence(&[(30.0, Some(200), 250.0)]);
        let both = evidence(&[
            (10.0, Some(200), 5.0),
            (20.0, Some(200), 100.0),
            (30.0, Some(200), 250.0),
        ]);
        let mut merged = Summary::decode(&Summary::of(&first).encoded()).unwrap();
        merged.merge(&Summary::decode(&Summary::of(&second).encoded()).unwrap());
        let whole = Summary::of(&both);
        let key = (
            Some(Phase::Baseline),
            "chat".to_string(),
            RequestOutcome::Ok,
        );
        let (m, w) = (&merged.cells[&key], &whole.cells[&key]);
        assert_eq!(m.requests, 3);
        assert_eq!(m.latency_us, w.latency_us);
        assert!(m
            .latency_us
            .equivalent(m.latency_us.value_at_quantile(0.5), 100_000));
        assert!(Summary::of(&first).encoded()[0]
            .latency_us
            .starts_with("HISTFAAA"));
    }

    #[test]
    fn a_damaged_histogram_is_refused_with_where_it_was() {
        let mut cells = Summary::of(&evidence(&[(10.0, Some(200), 5.0)])).encoded();
        cells[0].latency_us = "not base64!".into();
        let error = Summary::decode(&cells).unwrap_err();
        assert!(error.contains("baseline / chat / Ok"), "{error}");
    }
}
