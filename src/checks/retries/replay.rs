//! Replays every row of [`POLICIES`] from its documented formula through the real `retries.*`
//! checks, over many seeds: each row must fail exactly the verdicts it names, so every sane
//! policy passes what judges its waits and every flawed one is caught. Then the statistics
//! alone, over thousands of seeded trials at 5 retried requests: the false-alarm and detection
//! rates the module docs of [`super::waits`] state.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::check;
use super::policies::{Limit, Policy, POLICIES};
use super::waits::{Growth, Spread};
use crate::checks::common::tests::{attempt, window};
use crate::checks::{Outcome, Verdict};
use crate::evidence::testing::EvidenceBuilder;
use crate::evidence::Attempt;
use crate::evidence::{Evidence, Phase, PhaseSpan};
use crate::scenario::RetryExpectations;

const CHAT: &str = "/v1/chat/completions";
/// What the replayed provider's 429s ask for.
const ASKED_MS: f64 = 3_000.0;
/// How long the fake takes to answer each attempt.
const ATTEMPT_MS: f64 = 20.0;
/// When the long outage ends (it starts at 40 s).
const OUTAGE_END_MS: f64 = 100_000.0;

/// Scheduling noise added to every wait, as measured through the fake with real clients (see
/// [`super::waits::NOISE_MS`]): 0.2–1.5 ms, and now and then a timer up to 10 ms late.
fn noise(rng: &mut impl Rng) -> f64 {
    let mut ms = rng.random_range(0.2..1.5);
    if rng.random_bool(0.03) {
        ms += rng.random_range(0.0..10.0);
    }
    ms
}

/// The attempts one call makes under `policy`, from `start_ms`, while `answer(k, at_ms)` says
/// what attempt `k` gets: a status and the fault label that caused it.
fn call(
    policy: &Policy,
    start_ms: f64,
    key: &str,
    rng: &mut impl Rng,
    answer: impl Fn(usize, f64) -> (u16, Option<&'static str>),
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    let mut at = start_ms;
    let mut previous = 0.0;
    for k in 0..1000 {
        let (status, fault) = answer(k, at);
        let mut a = attempt(at, "llm", CHAT, key, Some(status), ATTEMPT_MS);
        a.fault = fault.map(str::to_string);
        attempts.push(a);
        if status < 300 || !policy.retries.status(status) {
            break;
        }
        let backoff = policy.wait.draw(k, &mut previous, rng);
        let wait = match fault {
            Some(f) if f.contains("retry-after") => policy.after_retry_after(backoff, ASKED_MS),
            _ => backoff,
        };
        let next = at + ATTEMPT_MS + wait + noise(rng);
        let stop = match policy.limit {
            Limit::Retries(n) => k >= n as usize,
            Limit::Deadline { ms } => next - start_ms > ms,
        };
        if stop {
            break;
        }
        at = next;
    }
    attempts
}

/// The answers of a fault on the first `n` attempts of each call: `status` with `label`.
fn first(
    n: usize,
    status: u16,
    label: &'static str,
) -> impl Fn(usize, f64) -> (u16, Option<&'static str>) {
    move |k, _| {
        if k < n {
            (status, Some(label))
        } else {
            (200, None)
        }
    }
}

/// A run against one policy: a baseline; `requests` calls whose first two attempts get 503
/// (10–20 s); five 429s asking for 3 s (20–30 s); three 400s (30–40 s); five calls in an outage
/// (every attempt before 100 s gets 503); five calls after it.
fn replay(policy: &Policy, requests: usize, seed: u64) -> Evidence {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut starts: Vec<(f64, usize)> = Vec::new();
    let mut stretch = |start: f64, len: f64, n: usize, which: usize| {
        starts.extend((0..n).map(|i| (start + i as f64 * len / n as f64, which)));
    };
    stretch(0.0, 10_000.0, 10, 0);
    stretch(10_000.0, 10_000.0, requests, 1);
    stretch(20_000.0, 10_000.0, 5, 2);
    stretch(30_000.0, 10_000.0, 3, 3);
    stretch(40_000.0, 10_000.0, 5, 4);
    stretch(OUTAGE_END_MS, 10_000.0, 5, 0);
    let mut builder = EvidenceBuilder::new();
    for (at, _) in &starts {
        builder = builder.record(*at, Some(200), 100.0);
    }
    let mut e = builder.build();
    for (r, (_, which)) in e.records.to_vec().iter().zip(&starts) {
        let attempts = match which {
            1 => call(
                policy,
                r.at_ms,
                &r.nonce,
                &mut rng,
                first(2, 503, "status 503"),
            ),
            2 => call(
                policy,
                r.at_ms,
                &r.nonce,
                &mut rng,
                first(1, 429, "status 429 retry-after 3s"),
            ),
            3 => call(
                policy,
                r.at_ms,
                &r.nonce,
                &mut rng,
                first(1, 400, "status 400"),
            ),
            4 => call(policy, r.at_ms, &r.nonce, &mut rng, |_, at| {
                if at < OUTAGE_END_MS {
                    (503, Some("status 503"))
                } else {
                    (200, None)
                }
            }),
            _ => call(policy, r.at_ms, &r.nonce, &mut rng, |_, _| (200, None)),
        };
        e.attempts.extend(attempts);
    }
    e.attempts
        .edit(|attempts| attempts.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms)));
    let end = e
        .attempts
        .iter()
        .map(|a| a.at_ms + a.duration_ms)
        .fold(OUTAGE_END_MS + 20_000.0, f64::max);
    let span = |phase, start_ms, end_ms| PhaseSpan {
        phase,
        start_ms,
        end_ms,
    };
    e.phases = vec![
        span(Phase::Baseline, 0.0, 10_000.0),
        span(Phase::Fault, 10_000.0, OUTAGE_END_MS),
        span(Phase::Recovery, OUTAGE_END_MS, end),
    ];
    e.duration_ms = end;
    e.timeline = [
        window("llm", "status 503", 10_000.0, 20_000.0),
        window("llm", "status 429 retry-after 3s", 20_000.0, 30_000.0),
        window("llm", "status 400", 30_000.0, 40_000.0),
        window("llm", "status 503", 40_000.0, OUTAGE_END_MS),
    ]
    .concat();
    e
}

fn failed(verdicts: &[Verdict]) -> Vec<&str> {
    verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Fail)
        .map(|v| v.id.as_str())
        .collect()
}

#[test]
fn every_policy_fails_exactly_the_checks_its_row_names() {
    let expect = RetryExpectations::default();
    for policy in POLICIES {
        let mut wanted: Vec<&str> = policy.fails.iter().map(|(id, _)| *id).collect();
        wanted.sort_unstable();
        for seed in 0..30 {
            let requests = [5, 10, 20][seed as usize % 3];
            let verdicts = check(&replay(policy, requests, seed), &expect);
            let mut got = failed(&verdicts);
            got.sort_unstable();
            assert_eq!(
                got, wanted,
                "{} (seed {seed}, {requests} requests):\n{verdicts:#?}",
                policy.name
            );
            // A sane wait was judged, not waved through for want of samples.
            let retries = !matches!(policy.limit, Limit::Retries(0));
            for id in ["retries.backoff", "retries.jitter"] {
                let v = verdicts.iter().find(|v| v.id == id).expect(id);
                if retries && !policy.fails(id) {
                    assert_eq!(v.outcome, Outcome::Pass, "{}: {v:#?}", policy.name);
                }
            }
        }
    }
}

/// Scheduling noise on a busy machine, from the same full flaky run that measured a fixed
/// 100 ms retry at 101.4–131.1 ms (2 cores at a load of 7): 60% of waits within 2 ms, the
/// rest stretched by a tail reaching 30 ms.
fn loaded_noise(rng: &mut impl Rng) -> f64 {
    let mut ms = rng.random_range(0.2..2.0);
    if rng.random_bool(0.4) {
        ms += -8.0 * (1.0 - rng.random::<f64>()).ln();
    }
    ms.min(40.0)
}

/// Waits before the first and second retries of `n` calls under `policy`, noise included.
fn first_two(policy: &Policy, n: usize, rng: &mut impl Rng) -> (Vec<f64>, Vec<f64>) {
    (0..n)
        .map(|_| {
            let w = policy.waits(2, rng);
            (w[0] + noise(rng), w[1] + noise(rng))
        })
        .unzip()
}

/// How often, in `trials` seeded runs of `n` retried calls, jitter and backoff fail.
fn failure_rates(policy: &Policy, n: usize, trials: usize, seed: u64) -> (f64, f64) {
    let expect = RetryExpectations::default();
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut jitter, mut backoff) = (0, 0);
    for _ in 0..trials {
        let (first, second) = first_two(policy, n, &mut rng);
        jitter += usize::from(!Spread::of(&first).passes(expect.min_jitter));
        backoff += usize::from(!Growth::of(&first, &second).passes(expect.min_growth));
    }
    (
        jitter as f64 / trials as f64,
        backoff as f64 / trials as f64,
    )
}

/// How often `retries.jitter` fails `n` first waits of `policy` with busy-machine noise.
fn jitter_failures_loaded(policy: &Policy, n: usize, trials: usize, seed: u64) -> f64 {
    let expect = RetryExpectations::default();
    let mut rng = SmallRng::seed_from_u64(seed);
    let failed = (0..trials)
        .filter(|_| {
            let first: Vec<f64> = (0..n)
                .map(|_| policy.waits(1, &mut rng)[0] + loaded_noise(&mut rng))
                .collect();
            !Spread::of(&first).passes(expect.min_jitter)
        })
        .count();
    failed as f64 / trials as f64
}

/// The rows whose waits these statistics judge (they retry at least twice).
fn judged() -> impl Iterator<Item = &'static Policy> {
    POLICIES
        .iter()
        .filter(|p| !matches!(p.limit, Limit::Retries(0 | 1)))
}

#[test]
fn on_a_busy_machine_many_waits_still_tell_jitter_from_a_stretched_fixed_delay() {
    // From 20 waits the lower half is judged too: every sane row still passes, and a policy
    // without jitter is caught although noise stretches its range past 10 ms.
    for (i, policy) in judged().enumerate() {
        for n in [20, 50] {
            let failed = jitter_failures_loaded(policy, n, 2_000, 100 + i as u64);
            if policy.fails("retries.jitter") {
                assert!(
                    failed >= 0.99,
                    "{} at {n}: jitter caught {failed}",
                    policy.name
                );
            } else {
                assert!(
                    failed <= 0.001,
                    "{} at {n}: jitter false alarms {failed}",
                    policy.name
                );
            }
        }
    }
}

#[test]
fn false_alarms_at_five_retried_requests_stay_under_the_stated_bounds() {
    for (i, policy) in judged().enumerate() {
        let (jitter, backoff) = failure_rates(policy, 5, 10_000, i as u64);
        if policy.fails("retries.jitter") {
            assert!(jitter >= 0.9, "{}: jitter caught {jitter}", policy.name);
        } else {
            assert!(
                jitter <= 0.001,
                "{}: jitter false alarms {jitter}",
                policy.name
            );
        }
        if policy.fails("retries.backoff") {
            assert!(backoff >= 0.99, "{}: backoff caught {backoff}", policy.name);
        } else {
            assert!(
                backoff <= 0.005,
                "{}: backoff false alarms {backoff}",
                policy.name
            );
        }
    }
}

/// The figures in the docs of [`super::waits`]: `cargo test --release --lib
/// retries::replay::figures -- --ignored --nocapture`.
#[test]
#[ignore = "200,000 trials per row and size: run in release mode to print the figures"]
fn figures() {
    println!("failure rates of retries.jitter / retries.backoff, by retried requests");
    for (i, policy) in judged().enumerate() {
        let rates: Vec<String> = [5, 10, 20]
            .iter()
            .map(|&n| {
                let (j, b) = failure_rates(policy, n, 200_000, 1000 + i as u64);
                format!("n={n}: {:.4}% / {:.4}%", j * 100.0, b * 100.0)
            })
            .collect();
        println!("{:<90} {}", policy.name, rates.join("  "));
    }
    // Not a row (no verdict about it holds in every run): a fixed delay with wide jitter.
    let jittered_fixed = Policy {
        name: "Polly 8 constant 2 s with UseJitter (±25%): how often it is caught",
        wait: super::policies::Wait::Exponential {
            base_ms: 2_000.0,
            factor: 1.0,
            cap_ms: f64::INFINITY,
            jitter: super::policies::Jitter::PlusMinus { share: 0.25 },
        },
        ..POLICIES[0]
    };
    let rates: Vec<String> = [5, 10, 20]
        .iter()
        .map(|&n| {
            let (j, b) = failure_rates(&jittered_fixed, n, 200_000, 999);
            format!("n={n}: {:.4}% / {:.4}%", j * 100.0, b * 100.0)
        })
        .collect();
    println!("{:<90} {}", jittered_fixed.name, rates.join("  "));
}

#[test]
fn the_defaults_are_derived_from_the_table() {
    let expect = RetryExpectations::default();
    // The most attempts a policy makes that is not flagged for it.
    let most = POLICIES
        .iter()
        .filter(|p| !p.fails("retries.attempts"))
        .filter_map(|p| match p.limit {
            Limit::Retries(n) => Some(n + 1),
            Limit::Deadline { .. } => None,
        })
        .max();
    assert_eq!(Some(expect.max_attempts), most);
    assert_eq!(expect.amplification, expect.max_attempts as f64);
    // Growth and spread of the sane waits, from many draws.
    let mut rng = SmallRng::seed_from_u64(9);
    for policy in judged().filter(|p| !p.fails("retries.backoff")) {
        let (first, second) = first_two(policy, 20_000, &mut rng);
        let growth = Growth::of(&first, &second).factor;
        assert!(
            growth >= 1.28 && expect.min_growth * 1.15 <= growth,
            "{}: grows {growth}",
            policy.name
        );
        if !policy.fails("retries.jitter") {
            let width = Spread::of(&first).relative();
            assert!(
                width >= 10.0 * expect.min_jitter,
                "{}: spreads {width}",
                policy.name
            );
        }
    }
}
