//! The arrival-rate executors (`constant_rate`, `ramping_rate`): each arrival of the
//! [`Schedule`] is sent at its intended time on faultline's own pooled client, whatever the
//! target does with the earlier ones, and timed from that intended time: a stall makes the
//! users arriving during it wait, and the report shows it (no coordinated omission).
//!
//! An arrival that finds `max_in_flight` requests unanswered is dropped and counted, as k6
//! counts `dropped_iterations`. Dropped arrivals and sends later than [`LATE_LIMIT`] mean the
//! generator did not apply the load asked for; past [`MAX_LATE_SHARE`] of the arrivals the run
//! is invalid ([`LoadStats::fell_behind`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{watch, Semaphore};

use super::schedule::Schedule;
use super::{FlowContext, LoadError, LoadSpec};
use crate::evidence::LoadStats;
use crate::scenario::{Executor, Flow};

/// A send this much later than intended counts as late. Response times count from the
/// intended time either way, so lateness does not bias latency; it means the target got a
/// different load than asked. 100 ms is far above the timer's 1 ms resolution and a busy
/// machine's scheduling delays, and far below any phase.
pub const LATE_LIMIT: Duration = Duration::from_millis(100);

/// The share of arrivals that may be dropped or late before the run is invalid.
pub const MAX_LATE_SHARE: f64 = 0.01;

/// Sends the schedule's arrivals until it ends (or `stop` turns true), then waits for the
/// requests in flight (they end by their timeout or the stop signal).
pub(super) async fn drive(
    spec: &LoadSpec,
    contexts: Vec<Arc<FlowContext>>,
    client: reqwest::Client,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) -> Result<LoadStats, LoadError> {
    let max_in_flight = match &spec.executor {
        Executor::ConstantRate { max_in_flight, .. }
        | Executor::RampingRate { max_in_flight, .. } => *max_in_flight,
        other => {
            return Err(LoadError::Client(format!(
                "executor {} has no arrival rate",
                other.name()
            )))
        }
    };
    let schedule = Schedule::new(&spec.executor, spec.duration, spec.seed)
        .ok_or_else(|| LoadError::Client("no arrival schedule".into()))?;
    let base_url: Arc<str> = spec.base_url.as_str().into();
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut picker = FlowPicker::new(&spec.flows, spec.seed);
    // Lateness in microseconds, up to an hour.
    let mut lateness = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .map_err(|e| LoadError::Client(e.to_string()))?;
    let share = spec.share;
    let mut stats = LoadStats {
        asked_rate: schedule.expected()
            / spec.duration.as_secs_f64().max(1e-9)
            / share.count.max(1) as f64,
        late_limit_ms: LATE_LIMIT.as_secs_f64() * 1000.0,
        ..LoadStats::default()
    };
    for (k, due) in schedule.enumerate() {
        // A worker walks the whole schedule and sends its share of it; the flow is drawn for
        // every arrival, so each arrival has the flow the one-process run gives it.
        if !share.takes_arrival(k as u64) {
            picker.next();
            continue;
        }
        let at = epoch + due;
        if Instant::now() < at {
            tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        } else if *stop.borrow() {
            break;
        }
        stats.asked += 1;
        let late = Instant::now().saturating_duration_since(at);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            stats.dropped += 1;
            continue;
        };
        let _ = lateness.record((late.as_micros() as u64).max(1));
        if late > LATE_LIMIT {
            stats.late += 1;
        }
        let context = contexts[picker.next()].clone();
        let (client, base_url) = (client.clone(), base_url.clone());
        tokio::spawn(async move {
            context.send(&client, &base_url, Some(at)).await;
            drop(slot);
        });
    }
    // Every slot back means every request has ended and recorded itself.
    let _ = slots.acquire_many(max_in_flight as u32).await;
    if !lateness.is_empty() {
        stats.lateness_p99_ms = lateness.value_at_quantile(0.99) as f64 / 1000.0;
        stats.lateness_max_ms = lateness.max() as f64 / 1000.0;
    }
    stats.fell_behind = fell_behind(&stats, max_in_flight);
    Ok(stats)
}

/// Why the generator did not apply the load asked for, when too many arrivals were dropped or
/// late; `None` when it kept up.
pub fn fell_behind(stats: &LoadStats, max_in_flight: usize) -> Option<String> {
    let missed = stats.dropped + stats.late;
    if stats.asked == 0 || (missed as f64) <= MAX_LATE_SHARE * stats.asked as f64 {
        return None;
    }
    Some(format!(
        "the load generator fell behind: of {} arrivals asked ({:.1}/s), {} were dropped because \
         max_in_flight = {max_in_flight} requests were unanswered, and {} were sent more than \
         {} ms late (lateness p99 {:.1} ms, worst {:.1} ms); more than {}% missed, so the target \
         did not get the load asked for. Raise max_in_flight, lower the rate, or run on a less \
         busy machine",
        stats.asked,
        stats.asked_rate,
        stats.dropped,
        stats.late,
        stats.late_limit_ms,
        stats.lateness_p99_ms,
        stats.lateness_max_ms,
        MAX_LATE_SHARE * 100.0,
    ))
}

/// The load's own HTTP client: pooled keep-alive connections, as many as requests in flight.
/// Building one takes tens of milliseconds, so it is built before the load's clock starts.
pub(super) fn client(max_idle: usize) -> Result<reqwest::Client, LoadError> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(max_idle)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| LoadError::Client(e.to_string()))
}

/// Picks each request's flow by weight, from the seed.
pub(super) struct FlowPicker {
    /// Cumulative weights.
    bounds: Vec<u64>,
    rng: ChaCha8Rng,
}

impl FlowPicker {
    pub(super) fn new(flows: &[Flow], seed: u64) -> FlowPicker {
        let mut total = 0;
        let bounds = flows
            .iter()
            .map(|f| {
                total += u64::from(f.weight.max(1));
                total
            })
            .collect();
        FlowPicker {
            bounds,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x000F_1035),
        }
    }

    pub(super) fn next(&mut self) -> usize {
        let total = self.bounds.last().copied().unwrap_or(1);
        let draw = self.rng.random_range(0..total);
        self.bounds.partition_point(|&b| b <= draw)
    }
}
