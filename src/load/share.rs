//! A load worker's share of a distributed run (see [`crate::distributed`]), cut so that the
//! union of the `count` shares is the load one process would make:
//!
//! - arrival-rate executors: every worker walks the one schedule (same seed, same intended
//!   times, same flow draws) and sends arrival `k` when `k % count == index`. The union is the
//!   one-process arrival sequence, arrival for arrival. `max_in_flight` is split as users are
//!   (below), so the union holds as many requests in flight as one process before it drops
//!   arrivals.
//! - `closed`: user `u` of the one-process run goes to worker `u % count`, with the flow Goose
//!   would have given it there (Goose hands users to scenarios round robin over the
//!   gcd-reduced weights). A worker registers its flows weighted by its own users of each, so
//!   Goose gives it exactly those users. The union has the same users per flow.
//! - `ramping_users`: each stage's users (and the start) split as `users / count`, one more
//!   for the first `users % count` workers: the sum is the one-process count at every stage
//!   boundary, within `count` users between them (each worker rounds its own ramp).
//!
//! Request ids never collide: worker `index` takes the ids `index, index + count, …` of the
//! one id sequence ([`super::Correlation::for_share`]).

use serde::{Deserialize, Serialize};

use crate::scenario::{Executor, Flow};

/// Worker `index` of `count` (0-based). [`Share::WHOLE`] is a one-process run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub index: usize,
    pub count: usize,
}

impl Default for Share {
    fn default() -> Self {
        Share::WHOLE
    }
}

impl Share {
    /// The whole load, in one process.
    pub const WHOLE: Share = Share { index: 0, count: 1 };

    /// True for the arrivals (0-based, in schedule order) this share sends.
    pub fn takes_arrival(&self, k: u64) -> bool {
        k % self.count.max(1) as u64 == self.index as u64
    }

    /// This share of `total` users: the first `total % count` shares get one more.
    pub fn users_of(&self, total: usize) -> usize {
        let count = self.count.max(1);
        total / count + usize::from(self.index < total % count)
    }

    /// The executor this share runs: `ramping_users` with its users split, the arrival-rate
    /// executors with their `max_in_flight` split (their arrivals are split arrival by
    /// arrival, [`Share::takes_arrival`]), `closed` as it is ([`Share::closed_users`]).
    pub fn executor(&self, executor: &Executor) -> Executor {
        match executor {
            Executor::RampingUsers {
                start_users,
                stages,
            } => Executor::RampingUsers {
                start_users: self.users_of(*start_users),
                stages: stages
                    .iter()
                    .map(|stage| crate::scenario::UserStage {
                        users: self.users_of(stage.users),
                        duration: stage.duration,
                    })
                    .collect(),
            },
            Executor::ConstantRate {
                rate,
                max_in_flight,
                arrivals,
            } => Executor::ConstantRate {
                rate: *rate,
                max_in_flight: self.users_of(*max_in_flight).max(1),
                arrivals: *arrivals,
            },
            Executor::RampingRate {
                start_rate,
                stages,
                max_in_flight,
                arrivals,
            } => Executor::RampingRate {
                start_rate: *start_rate,
                stages: stages.clone(),
                max_in_flight: self.users_of(*max_in_flight).max(1),
                arrivals: *arrivals,
            },
            Executor::Closed => Executor::Closed,
        }
    }

    /// For `closed`: how many of this share's users run each flow, given `total` users in the
    /// whole run (see the module docs).
    pub fn closed_users(&self, flows: &[Flow], total: usize) -> Vec<usize> {
        let order = goose_round_robin(flows);
        let mut users = vec![0; flows.len()];
        if order.is_empty() {
            return users;
        }
        for user in (0..total).filter(|u| u % self.count.max(1) == self.index) {
            users[order[user % order.len()]] += 1;
        }
        users
    }
}

/// The flow of each user slot as Goose 0.19's round-robin scheduler allocates them
/// (`GooseAttack::allocate_scenarios`): weights divided by their gcd, then one slot per flow
/// per round while a flow has weight left; user `u` runs slot `u % len`.
fn goose_round_robin(flows: &[Flow]) -> Vec<usize> {
    let weights: Vec<usize> = flows.iter().map(|f| f.weight.max(1) as usize).collect();
    let gcd = weights.iter().copied().fold(0, gcd);
    let mut left: Vec<usize> = weights.iter().map(|w| w / gcd.max(1)).collect();
    let mut order = Vec::new();
    while left.iter().any(|&l| l > 0) {
        for (flow, l) in left.iter_mut().enumerate() {
            if *l > 0 {
                *l -= 1;
                order.push(flow);
            }
        }
    }
    order
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows(weights: &[u32]) -> Vec<Flow> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Flow {
                name: format!("f{i}"),
                weight,
                messages: vec!["hi".into()],
                kind: Default::default(),
                request: Default::default(),
            })
            .collect()
    }

    #[test]
    fn arrivals_and_users_split_into_shares_whose_union_is_the_whole() {
        for count in 1..=5 {
            let shares: Vec<Share> = (0..count).map(|index| Share { index, count }).collect();
            for k in 0..100u64 {
                assert_eq!(shares.iter().filter(|s| s.takes_arrival(k)).count(), 1);
            }
            for total in 0..20 {
                assert_eq!(
                    shares.iter().map(|s| s.users_of(total)).sum::<usize>(),
                    total
                );
            }
        }
    }

    #[test]
    fn closed_users_keep_the_one_process_flow_mix() {
        let flows = flows(&[3, 1]);
        let whole = Share::WHOLE.closed_users(&flows, 8);
        assert_eq!(whole, vec![6, 2]);
        let a = Share { index: 0, count: 2 }.closed_users(&flows, 8);
        let b = Share { index: 1, count: 2 }.closed_users(&flows, 8);
        assert_eq!(vec![a[0] + b[0], a[1] + b[1]], whole);
        // Goose's list for 3:1 is [f0, f1, f0, f0]: users 1 and 5 (worker 1) run f1.
        assert_eq!(b, vec![2, 2]);
    }
}
