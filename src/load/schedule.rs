//! When each arrival of an arrival-rate executor is due: the intended send times, decided
//! before the run from the executor and the seed, whatever the target does.
//!
//! The rate over the run is piecewise linear (one piece for `constant_rate`, one per stage for
//! `ramping_rate`). Its integral N(t) counts the arrivals due by t; the k-th arrival is due
//! when N(t) reaches u_k, where u_k = k for evenly spaced arrivals and a sum of k+1 Exp(1)
//! draws for Poisson ones (time rescaling turns a unit-rate Poisson process into one of any
//! rate, so ramps stay Poisson).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::{Arrivals, Executor};

/// One linear piece of the rate: from `from` to `to` arrivals/s over `[start, start + length)`.
#[derive(Clone, Debug)]
struct Piece {
    start: f64,
    length: f64,
    from: f64,
    to: f64,
    /// Arrivals due before this piece starts.
    due_before: f64,
}

impl Piece {
    fn count(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.length
    }

    /// Seconds into the piece at which `m` arrivals of it are due (m within the piece).
    fn time_of(&self, m: f64) -> f64 {
        // N(t) = from*t + slope*t^2/2; solved in the form that stays exact when slope -> 0.
        if m <= 0.0 {
            return 0.0;
        }
        let slope = (self.to - self.from) / self.length;
        let root = (self.from * self.from + 2.0 * slope * m).max(0.0).sqrt();
        let denominator = self.from + root;
        if denominator <= 0.0 {
            return self.length;
        }
        (2.0 * m / denominator).min(self.length)
    }
}

/// The intended send times of one run, as offsets from the load's start.
pub struct Schedule {
    pieces: Vec<Piece>,
    total: f64,
    arrivals: Arrivals,
    rng: ChaCha8Rng,
    /// The next arrival's place on the N(t) scale.
    next_u: f64,
}

impl Schedule {
    /// The schedule of an arrival-rate executor over `run`; `None` for the users executors.
    pub fn new(executor: &Executor, run: Duration, seed: u64) -> Option<Schedule> {
        let (stages, arrivals): (Vec<(f64, f64, f64)>, Arrivals) = match executor {
            Executor::ConstantRate { rate, arrivals, .. } => {
                (vec![(*rate, *rate, run.as_secs_f64())], *arrivals)
            }
            Executor::RampingRate {
                start_rate,
                stages,
                arrivals,
                ..
            } => {
                let mut from = *start_rate;
                let mut pieces = Vec::with_capacity(stages.len());
                for stage in stages {
                    pieces.push((from, stage.rate, stage.duration.as_secs_f64()));
                    from = stage.rate;
                }
                (pieces, *arrivals)
            }
            _ => return None,
        };
        let mut pieces = Vec::with_capacity(stages.len());
        let (mut start, mut due) = (0.0, 0.0);
        for (from, to, length) in stages {
            if length <= 0.0 {
                continue;
            }
            let piece = Piece {
                start,
                length,
                from,
                to,
                due_before: due,
            };
            start += length;
            due += piece.count();
            pieces.push(piece);
        }
        // The seed's own stream for arrivals, apart from the ids' and flows' draws.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0A11_0CE5);
        let next_u = match arrivals {
            Arrivals::Even => 0.0,
            Arrivals::Poisson => exp1(&mut rng),
        };
        Some(Schedule {
            pieces,
            total: due,
            arrivals,
            rng,
            next_u,
        })
    }

    /// Arrivals the schedule holds over the whole run (the expected count for Poisson).
    pub fn expected(&self) -> f64 {
        self.total
    }

    /// The offset of `u` on the N(t) scale, if the run has that many arrivals.
    fn time_at(&self, u: f64) -> Option<f64> {
        if u >= self.total {
            return None;
        }
        // The last piece that starts at or before u; few pieces, so a linear scan will do.
        let piece = self.pieces.iter().rev().find(|p| p.due_before <= u)?;
        Some(piece.start + piece.time_of(u - piece.due_before))
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let at = self.time_at(self.next_u)?;
        self.next_u += match self.arrivals {
            Arrivals::Even => 1.0,
            Arrivals::Poisson => exp1(&mut self.rng),
        };
        Some(Duration::from_secs_f64(at))
    }
}

/// An Exp(1) draw.
fn exp1(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random();
    -(1.0 - u).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::RateStage;

    fn constant(rate: f64, arrivals: Arrivals) -> Executor {
        Executor::ConstantRate {
            rate,
            max_in_flight: 10,
            arrivals,
        }
    }

    #[test]
    fn even_arrivals_are_one_over_the_rate_apart() {
        let times: Vec<f64> = Schedule::new(&constant(4.0, Arrivals::Even), secs(2.0), 1)
            .unwrap()
            .map(|d| d.as_secs_f64())
            .collect();
        assert_eq!(times.len(), 8);
        for (k, t) in times.iter().enumerate() {
            assert!((t - k as f64 * 0.25).abs() < 1e-9, "{times:?}");
        }
    }

    #[test]
    fn poisson_arrivals_average_the_rate_and_follow_the_seed() {
        let run = |seed| -> Vec<Duration> {
            Schedule::new(&constant(1000.0, Arrivals::Poisson), secs(20.0), seed)
                .unwrap()
                .collect()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
        // 20,000 expected; a Poisson count's sd is sqrt(20,000) ~ 141, so 5 sd is 707.
        assert!((a.len() as f64 - 20_000.0).abs() < 707.0, "{}", a.len());
        let gaps: Vec<f64> = a.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        // Exponential gaps: the sd equals the mean (evenly spaced ones would have sd 0).
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "cv {}",
            var.sqrt() / mean
        );
    }

    #[test]
    fn a_ramp_sends_the_area_under_its_rate() {
        let ramp = Executor::RampingRate {
            start_rate: 0.0,
            stages: vec![
                RateStage {
                    rate: 100.0,
                    duration: secs(10.0),
                },
                RateStage {
                    rate: 100.0,
                    duration: secs(5.0),
                },
            ],
            max_in_flight: 10,
            arrivals: Arrivals::Even,
        };
        let times: Vec<f64> = Schedule::new(&ramp, secs(15.0), 1)
            .unwrap()
            .map(|d| d.as_secs_f64())
            .collect();
        // 0 -> 100/s over 10 s is 500 arrivals, then 500 more at 100/s.
        assert_eq!(times.len(), 1000);
        // N(t) = 5 t^2 in the ramp: the 125th arrival is due at 5 s.
        assert!((times[125] - 5.0).abs() < 1e-6, "{}", times[125]);
        assert!((times[750] - 12.5).abs() < 1e-6, "{}", times[750]);
        assert!(times.windows(2).all(|w| w[1] >= w[0]));
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }
}
