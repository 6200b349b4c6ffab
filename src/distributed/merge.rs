//! The load of many workers as the load of one run: their records in one stream (in the
//! order the answers completed, across workers), their counts added, and each worker's
//! account, with the lost ones named and their share counted as lost.
//!
//! Every worker's record times are on the coordinator's load clock already (workers start at
//! its epoch), so records merge as they are. The report's latency figures then come from the
//! union's records, exactly as in a one-process run; the workers' own HdrHistograms (which
//! [`crate::evidence::Summary::merge`] adds exactly, bucket by bucket) are the integrity check
//! that each worker's records arrived whole.

use std::io::{BufRead, BufReader};

use flate2::read::MultiGzDecoder;

use super::protocol::WorkerResult;
use crate::evidence::{LoadStats, Record, RecordStore, Summary, WorkerAccount};

/// What the coordinator got from one worker.
pub enum Ending {
    Reported {
        result: Box<WorkerResult>,
        records_gz: bytes::Bytes,
    },
    /// Gone before it reported: why, and the requests it had streamed by then.
    Lost { why: String, sent: u64 },
}

/// The merged load: one record stream and one account.
pub struct Merged {
    pub records: RecordStore,
    pub stats: LoadStats,
}

/// Merges the workers' endings (`endings[i]` is worker `i`'s); `shares[i]` is its part of the
/// load (0..1). A run that lost more than `max_lost_share` of its load is invalid.
pub fn merge(endings: Vec<Ending>, shares: &[f64], max_lost_share: f64) -> Merged {
    let mut accounts = Vec::with_capacity(endings.len());
    let mut streams = Vec::new();
    let mut stats = LoadStats::default();
    let mut behind = Vec::new();
    for (index, ending) in endings.into_iter().enumerate() {
        let share = shares.get(index).copied().unwrap_or(0.0);
        let (result, records_gz) = match ending {
            Ending::Lost { why, sent } => {
                accounts.push(account(index, share, sent, Some(why)));
                continue;
            }
            Ending::Reported { result, records_gz } => (*result, records_gz),
        };
        if let Err(why) = whole(&result, &records_gz) {
            accounts.push(account(index, share, result.stats.sent, Some(why)));
            continue;
        }
        add(&mut stats, &result.stats);
        if let Some(why) = &result.stats.fell_behind {
            behind.push(format!("worker {index}: {why}"));
        }
        accounts.push(account(index, share, result.stats.sent, None));
        streams.push(records_gz);
    }
    let mut records = RecordStore::new();
    for record in completion_order(&streams) {
        records.push(record);
    }
    if !behind.is_empty() {
        stats.fell_behind = Some(behind.join("; "));
    }
    let lost: Vec<&WorkerAccount> = accounts.iter().filter(|a| a.lost.is_some()).collect();
    let lost_share: f64 = lost.iter().map(|a| a.share).sum();
    // A share within a millionth of the limit is at it, not over it (float sums of 1/n).
    if !lost.is_empty() && lost_share > max_lost_share + 1e-6 {
        let names: Vec<String> = lost
            .iter()
            .map(|a| format!("worker {} ({:.1}%)", a.index, a.share * 100.0))
            .collect();
        stats.lost_load = Some(format!(
            "{} lost with {:.1}% of the load, more than the {:.1}% a run may lose \
             (--max-lost-share): the target did not get the load asked for; see why each was \
             lost below, and run again",
            names.join(", "),
            lost_share * 100.0,
            max_lost_share * 100.0
        ));
    }
    stats.workers = accounts;
    Merged { records, stats }
}

fn account(index: usize, share: f64, sent: u64, lost: Option<String>) -> WorkerAccount {
    WorkerAccount {
        index,
        share,
        sent,
        lost,
    }
}

/// Checks that a worker's records arrived whole: every line reads, there are as many as it
/// said, and its histograms count the same requests.
fn whole(result: &WorkerResult, records_gz: &[u8]) -> Result<(), String> {
    let mut count = 0u64;
    for line in BufReader::new(MultiGzDecoder::new(records_gz)).lines() {
        let line = line.map_err(|e| format!("its records could not be read: {e}"))?;
        serde_json::from_str::<Record>(&line)
            .map_err(|e| format!("one of its records could not be read: {e}"))?;
        count += 1;
    }
    if count != result.records {
        return Err(format!(
            "it reported {} records but {count} arrived",
            result.records
        ));
    }
    let summary = Summary::decode(&result.summary)?;
    if summary.requests() != result.records + result.cut.count {
        return Err(format!(
            "its histograms count {} requests but it reported {}",
            summary.requests(),
            result.records + result.cut.count
        ));
    }
    Ok(())
}

/// Adds one worker's counts to the run's. Lateness percentiles do not add: the run's p99 and
/// worst are the largest of the workers' (an upper bound of the union's p99).
fn add(total: &mut LoadStats, worker: &LoadStats) {
    if total.executor.is_empty() {
        total.executor = worker.executor.clone();
        total.late_limit_ms = worker.late_limit_ms;
    }
    total.asked += worker.asked;
    total.sent += worker.sent;
    total.dropped += worker.dropped;
    total.late += worker.late;
    total.asked_rate += worker.asked_rate;
    total.achieved_rate += worker.achieved_rate;
    total.lateness_p99_ms = total.lateness_p99_ms.max(worker.lateness_p99_ms);
    total.lateness_max_ms = total.lateness_max_ms.max(worker.lateness_max_ms);
}

/// The records of every stream, in the order their answers completed (each stream already
/// is), as a one-process run keeps them.
fn completion_order(streams: &[bytes::Bytes]) -> impl Iterator<Item = Record> + '_ {
    let mut heads: Vec<std::iter::Peekable<Box<dyn Iterator<Item = Record> + '_>>> = streams
        .iter()
        .map(|gz| {
            let lines = BufReader::new(MultiGzDecoder::new(&gz[..]))
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| serde_json::from_str::<Record>(&line).ok());
            (Box::new(lines) as Box<dyn Iterator<Item = Record>>).peekable()
        })
        .collect();
    std::iter::from_fn(move || {
        let next = heads
            .iter_mut()
            .enumerate()
            .filter_map(|(i, head)| head.peek().map(|r| (i, r.at_ms + r.latency_ms)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)?;
        heads[next].next()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{Evidence, Phase, PhaseSpan};

    fn record(id: &str, at_ms: f64, latency_ms: f64) -> Record {
        Record {
            at_ms,
            latency_ms,
            flow: "chat".into(),
            request_id: id.into(),
            status: Some(200),
            ..Record::default()
        }
    }

    fn reported(index: usize, records: Vec<Record>, phases: &[PhaseSpan]) -> Ending {
        let store: RecordStore = records.into();
        let evidence = Evidence {
            phases: phases.to_vec(),
            records: store,
            ..Evidence::default()
        };
        let mut gz = Vec::new();
        evidence.records.write_into(&mut gz).unwrap();
        Ending::Reported {
            result: Box::new(WorkerResult {
                index,
                stats: LoadStats {
                    sent: evidence.records.len() as u64,
                    ..LoadStats::default()
                },
                summary: evidence.summary().encoded(),
                records: evidence.records.len() as u64,
                cut: Default::default(),
            }),
            records_gz: gz.into(),
        }
    }

    fn phases() -> Vec<PhaseSpan> {
        vec![PhaseSpan {
            phase: Phase::Baseline,
            start_ms: 0.0,
            end_ms: 10_000.0,
        }]
    }

    #[test]
    fn merged_records_and_histograms_are_those_of_the_union() {
        let a: Vec<Record> = (0..300)
            .map(|i| record(&format!("a{i}"), i as f64, 5.0 + (i % 97) as f64))
            .collect();
        let b: Vec<Record> = (0..200)
            .map(|i| record(&format!("b{i}"), i as f64 + 0.5, 40.0 + (i % 13) as f64))
            .collect();
        // Each worker's stream is in completion order, as its store keeps it.
        let by_end = |mut records: Vec<Record>| {
            records.sort_by(|x, y| (x.at_ms + x.latency_ms).total_cmp(&(y.at_ms + y.latency_ms)));
            records
        };
        let (a, b) = (by_end(a), by_end(b));
        let union: Vec<Record> = a.iter().chain(&b).cloned().collect();
        let merged = merge(
            vec![
                reported(0, a.clone(), &phases()),
                reported(1, b.clone(), &phases()),
            ],
            &[0.5, 0.5],
            0.1,
        );
        assert_eq!(merged.records.len(), 500);
        assert_eq!(merged.stats.sent, 500);
        assert!(merged.stats.lost_load.is_none());
        // Completion order across workers.
        let ends: Vec<f64> = merged
            .records
            .iter()
            .map(|r| r.at_ms + r.latency_ms)
            .collect();
        assert!(ends.windows(2).all(|w| w[0] <= w[1]));
        // The workers' histograms, merged, are the union's, bucket for bucket.
        let summary_of = |records: Vec<Record>| {
            Evidence {
                phases: phases(),
                records: records.into(),
                ..Evidence::default()
            }
            .summary()
        };
        let mut added = summary_of(a);
        added.merge(&summary_of(b));
        let whole = summary_of(union);
        assert_eq!(added.encoded(), whole.encoded());
    }

    #[test]
    fn a_lost_worker_is_named_and_past_the_limit_makes_the_run_invalid() {
        let lost = || Ending::Lost {
            why: "its process exited (signal: 9) before it reported".into(),
            sent: 42,
        };
        let two = merge(
            vec![reported(0, vec![record("a", 1.0, 1.0)], &phases()), lost()],
            &[0.5, 0.5],
            0.1,
        );
        assert_eq!(
            two.stats.workers[1]
                .lost
                .as_deref()
                .map(|w| w.contains("signal: 9")),
            Some(true)
        );
        let why = two.stats.lost_load.expect("half the load lost is past 10%");
        assert!(why.contains("worker 1 (50.0%)"), "{why}");
        // One of twenty workers (5%) is within a 10% limit: judged, still named.
        let mut endings: Vec<Ending> = (0..19)
            .map(|i| reported(i, vec![record(&format!("r{i}"), 1.0, 1.0)], &phases()))
            .collect();
        endings.push(lost());
        let twenty = merge(endings, &[0.05; 20], 0.1);
        assert!(twenty.stats.lost_load.is_none());
        assert!(twenty.stats.workers[19].lost.is_some());
        assert_eq!(twenty.records.len(), 19);
    }

    #[test]
    fn records_that_do_not_match_their_count_lose_the_worker() {
        let Ending::Reported {
            mut result,
            records_gz,
        } = reported(0, vec![record("a", 1.0, 1.0)], &phases())
        else {
            unreachable!()
        };
        result.records = 2;
        let merged = merge(vec![Ending::Reported { result, records_gz }], &[1.0], 0.1);
        let why = merged.stats.workers[0].lost.clone().unwrap();
        assert!(why.contains("reported 2 records but 1 arrived"), "{why}");
        assert!(merged.stats.lost_load.is_some());
    }
}
