//! The report's account of the load itself: which executor ran, the arrival rate asked and
//! achieved, arrivals dropped or sent late, and per phase the service time (from the actual
//! send) beside the response time of the phase table (from the intended send), so a reader
//! sees how much of the wait was queueing behind a stalled target.
//!
//! It also decides whether the run can be judged at all ([`invalid`]): a generator that fell
//! behind, or a run in which nothing (or no fault) happened, is exit 2, never a pass.

use serde::{Deserialize, Serialize};

use crate::checks::sla::{format_ms, quantiles_ms};
use crate::evidence::{Evidence, LoadStats, Phase};

/// `report.json` `load`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    #[serde(flatten)]
    pub stats: LoadStats,
    /// Service time per phase (arrival-rate executors only; empty for users).
    #[serde(default)]
    pub service: Vec<ServiceTime>,
}

/// Service-time percentiles of one phase, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceTime {
    pub phase: Phase,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// The load's account, when the run recorded one.
pub fn build(evidence: &Evidence) -> Option<LoadReport> {
    let stats = evidence.load.clone()?;
    let service = evidence
        .phases
        .iter()
        .filter_map(|span| {
            let times: Vec<f64> = evidence
                .records_in(span.phase)
                .filter_map(|r| r.service_ms)
                .collect();
            if times.is_empty() {
                return None;
            }
            let q = quantiles_ms(times.into_iter(), &[0.50, 0.95, 0.99]);
            Some(ServiceTime {
                phase: span.phase,
                p50_ms: q[0],
                p95_ms: q[1],
                p99_ms: q[2],
            })
        })
        .collect();
    Some(LoadReport { stats, service })
}

/// Why the run cannot be judged, if it cannot: the generator fell behind, no request was
/// sent, or the scenario has faults and no request was sent while one was on. An interrupted
/// run says so on its own and is not judged here.
pub fn invalid(evidence: &Evidence, has_faults: bool) -> Option<String> {
    if evidence.interrupted {
        return None;
    }
    if let Some(why) = evidence.load.as_ref().and_then(|l| l.fell_behind.clone()) {
        return Some(why);
    }
    if let Some(why) = evidence.load.as_ref().and_then(|l| l.lost_load.clone()) {
        return Some(why);
    }
    if evidence.records.is_empty() {
        return Some(format!(
            "no request was sent in the {:.0} ms the load ran: too short to judge; make \
             [load] duration (or quick_scale with --quick) longer",
            evidence.duration_ms
        ));
    }
    if has_faults && evidence.records_in(Phase::Fault).next().is_none() {
        return Some(
            "no request was sent while a fault was on, so no fault took effect: too short to \
             judge; make the fault windows (or quick_scale with --quick) longer"
                .into(),
        );
    }
    None
}

/// The lines the console, Markdown and HTML reports show about the load.
pub fn lines(load: &LoadReport) -> Vec<String> {
    let s = &load.stats;
    let mut lines = Vec::new();
    if s.asked > 0 || s.executor == "constant_rate" || s.executor == "ramping_rate" {
        lines.push(format!(
            "load: {} asked {} arrivals ({:.1}/s), sent {} ({:.1}/s); {} dropped (no free \
             slot), {} sent more than {} ms late; lateness p99 {}, worst {}",
            s.executor,
            s.asked,
            s.asked_rate,
            s.sent,
            s.achieved_rate,
            s.dropped,
            s.late,
            s.late_limit_ms,
            format_ms(s.lateness_p99_ms),
            format_ms(s.lateness_max_ms),
        ));
        lines.push(
            "latency above is response time, from each request's intended send time; service \
             time, from the actual send:"
                .into(),
        );
        for t in &load.service {
            lines.push(format!(
                "  {} service time p50 {}, p95 {}, p99 {}",
                t.phase,
                format_ms(t.p50_ms),
                format_ms(t.p95_ms),
                format_ms(t.p99_ms)
            ));
        }
    } else {
        lines.push(format!(
            "load: {}, {} requests ({:.1}/s); latency is from the actual send",
            s.executor, s.sent, s.achieved_rate
        ));
    }
    if !s.workers.is_empty() {
        let lost = s.workers.iter().filter(|w| w.lost.is_some()).count();
        lines.push(format!(
            "workers: {} load workers, {} reported, {} lost",
            s.workers.len(),
            s.workers.len() - lost,
            lost
        ));
        for worker in &s.workers {
            lines.push(match &worker.lost {
                None => format!(
                    "  worker {}: {:.1}% of the load, {} requests",
                    worker.index,
                    worker.share * 100.0,
                    worker.sent
                ),
                Some(why) => format!(
                    "  worker {} LOST: its {:.1}% of the load is missing ({} requests streamed \
                     before it went): {why}",
                    worker.index,
                    worker.share * 100.0,
                    worker.sent
                ),
            });
        }
    }
    lines
}
