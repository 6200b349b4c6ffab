//! `[load]`'s executor: which one (`executor = "constant_rate"`), its rate, users, stages and
//! `max_in_flight`, each checked against what the executor means and what this machine can
//! hold, with errors at the value's line and column.

use std::time::Duration;

use serde_spanned::Spanned;

use super::raw::{RawLoad, RawStage};
use super::{duration, positive_duration, ScenarioError, Source};
use crate::scenario::model::{Arrivals, Executor, RateStage, UserStage};

/// The most arrivals per second an open executor may ask for. The benchmark
/// (`cargo bench --bench load`) measured the engine's ceiling on loopback at tens of thousands
/// per second on 2 cores; asking more only measures the generator falling behind.
pub const MAX_RATE: f64 = 50_000.0;

/// Users (or requests in flight) faultline holds at most: 10,000, or fewer when the process
/// may open fewer files. Each user holds a connection to the target, and each of the target's
/// calls to a fake holds one more in this process, so two descriptors per user, plus a reserve
/// for the fakes' listeners, logs and reports.
pub fn machine_user_limit() -> usize {
    const CEILING: usize = 10_000;
    const RESERVE: u64 = 256;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok || limit.rlim_cur == libc::RLIM_INFINITY {
        return CEILING;
    }
    let by_files = (limit.rlim_cur.saturating_sub(RESERVE) / 2) as usize;
    by_files.clamp(1, CEILING)
}

/// The executor `[load]` asks for and the `users` of the closed one (0 for the others).
pub(super) fn executor(
    raw: &RawLoad,
    run: Duration,
    src: &Source,
) -> Result<(Executor, usize), ScenarioError> {
    let name = raw
        .executor
        .as_ref()
        .map(|t| t.get_ref().trim())
        .unwrap_or("closed");
    // Each executor's own keys; any other executor key is an error naming the right one.
    let own: &[&str] = match name {
        "closed" => &["users"],
        "constant_rate" => &["rate", "max_in_flight", "arrivals"],
        "ramping_rate" => &["start_rate", "stages", "max_in_flight", "arrivals"],
        "ramping_users" => &["start_users", "stages"],
        other => {
            let at = raw
                .executor
                .as_ref()
                .expect("only a written name is unknown");
            return Err(src.error(
                at,
                format!(
                    "`executor` in [load] is \"{other}\"; use one of \"closed\" (users with \
                     think time), \"constant_rate\", \"ramping_rate\" or \"ramping_users\""
                ),
            ));
        }
    };
    let present: [(&str, Option<usize>); 7] = [
        ("users", raw.users.as_ref().map(|v| v.span().start)),
        ("rate", raw.rate.as_ref().map(|v| v.span().start)),
        (
            "start_rate",
            raw.start_rate.as_ref().map(|v| v.span().start),
        ),
        (
            "start_users",
            raw.start_users.as_ref().map(|v| v.span().start),
        ),
        (
            "max_in_flight",
            raw.max_in_flight.as_ref().map(|v| v.span().start),
        ),
        ("arrivals", raw.arrivals.as_ref().map(|v| v.span().start)),
        ("stages", raw.stages.as_ref().map(|v| v.span().start)),
    ];
    for (key, at) in present {
        if let (Some(at), false) = (at, own.contains(&key)) {
            return Err(src.error_at(
                at,
                format!(
                    "`{key}` in [load] does not apply to executor \"{name}\"; it takes {}",
                    own.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    if name != "closed" && name != "ramping_users" {
        if let Some(think) = &raw.think_time {
            return Err(src.error(
                think,
                format!(
                    "`think_time` in [load] does not apply to executor \"{name}\": arrivals \
                     come at the rate whatever answers take; remove it"
                ),
            ));
        }
    }

    let limit = machine_user_limit();
    let executor = match name {
        "closed" => {
            let Some(users) = &raw.users else {
                return Err(src.error(
                    &raw.duration,
                    "[load] needs `users` (e.g. users = 4), or an `executor` with a rate, e.g. \
                     executor = \"constant_rate\" and rate = 20",
                ));
            };
            let users = count(users, "`users` in [load]", limit, src)?;
            return Ok((Executor::Closed, users));
        }
        "constant_rate" => {
            let Some(rate) = &raw.rate else {
                return Err(src.error(
                    raw.executor.as_ref().expect("named"),
                    "executor \"constant_rate\" needs `rate` (arrivals per second), e.g. \
                     rate = 20",
                ));
            };
            let rate = arrival_rate(rate, "`rate` in [load]", false, src)?;
            Executor::ConstantRate {
                rate,
                max_in_flight: max_in_flight(raw, rate, limit, src)?,
                arrivals: arrivals(raw, src)?,
            }
        }
        "ramping_rate" => {
            let start_rate = match &raw.start_rate {
                Some(r) => arrival_rate(r, "`start_rate` in [load]", true, src)?,
                None => 0.0,
            };
            let stages = stages(raw, run, src)?
                .into_iter()
                .map(|(stage, duration)| {
                    let Some(rate) = &stage.rate else {
                        return Err(src.error(
                            &stage.duration,
                            "a stage of \"ramping_rate\" needs `rate`, e.g. { rate = 50, \
                             duration = \"30s\" }",
                        ));
                    };
                    if let Some(users) = &stage.users {
                        return Err(src.error(
                            users,
                            "`users` in a stage belongs to \"ramping_users\"; a \
                             \"ramping_rate\" stage takes `rate`",
                        ));
                    }
                    Ok(RateStage {
                        rate: arrival_rate(rate, "`rate` of a stage", true, src)?,
                        duration,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let peak = stages.iter().map(|s| s.rate).fold(start_rate, f64::max);
            if peak <= 0.0 {
                return Err(src.error(
                    raw.stages.as_ref().expect("stages were read"),
                    "every stage of \"ramping_rate\" has rate 0; give one a rate above 0",
                ));
            }
            Executor::RampingRate {
                start_rate,
                stages,
                max_in_flight: max_in_flight(raw, peak, limit, src)?,
                arrivals: arrivals(raw, src)?,
            }
        }
        _ => {
            let start_users = match &raw.start_users {
                Some(u) => count_or_zero(u, "`start_users` in [load]", limit, src)?,
                None => 0,
            };
            let stages = stages(raw, run, src)?
                .into_iter()
                .map(|(stage, duration)| {
                    let Some(users) = &stage.users else {
                        return Err(src.error(
                            &stage.duration,
                            "a stage of \"ramping_users\" needs `users`, e.g. { users = 10, \
                             duration = \"30s\" }",
                        ));
                    };
                    if let Some(rate) = &stage.rate {
                        return Err(src.error(
                            rate,
                            "`rate` in a stage belongs to \"ramping_rate\"; a \
                             \"ramping_users\" stage takes `users`",
                        ));
                    }
                    Ok(UserStage {
                        users: count_or_zero(users, "`users` of a stage", limit, src)?,
                        duration,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if start_users == 0 && stages.iter().all(|s| s.users == 0) {
                return Err(src.error(
                    raw.stages.as_ref().expect("stages were read"),
                    "every stage of \"ramping_users\" has 0 users; give one at least 1",
                ));
            }
            Executor::RampingUsers {
                start_users,
                stages,
            }
        }
    };
    Ok((executor, 0))
}

/// A count of users from 1 to the machine's limit.
fn count(
    value: &Spanned<i64>,
    what: &str,
    limit: usize,
    src: &Source,
) -> Result<usize, ScenarioError> {
    let n = *value.get_ref();
    if n < 1 {
        return Err(src.error(
            value,
            format!("{what} is {n}; it must be at least 1, e.g. users = 4"),
        ));
    }
    count_or_zero(value, what, limit, src)
}

/// A count of users from 0 to the machine's limit.
fn count_or_zero(
    value: &Spanned<i64>,
    what: &str,
    limit: usize,
    src: &Source,
) -> Result<usize, ScenarioError> {
    let n = *value.get_ref();
    if n < 0 {
        return Err(src.error(value, format!("{what} is {n}; it must be 0 or more")));
    }
    if n as u64 > limit as u64 {
        return Err(src.error(
            value,
            format!(
                "{what} is {n}, more than this machine can hold ({limit}: at most 10,000, \
                 and two open files per user within `ulimit -n`); use at most {limit}, or an \
                 arrival rate (executor = \"constant_rate\") to send more requests"
            ),
        ));
    }
    Ok(n as usize)
}

/// Arrivals per second: above 0 (or 0 too, in stages) and at most [`MAX_RATE`].
fn arrival_rate(
    value: &Spanned<f64>,
    what: &str,
    zero_ok: bool,
    src: &Source,
) -> Result<f64, ScenarioError> {
    let rate = *value.get_ref();
    let low_ok = if zero_ok { rate >= 0.0 } else { rate > 0.0 };
    // Written so NaN fails too.
    if !(low_ok && rate <= MAX_RATE) {
        return Err(src.error(
            value,
            format!(
                "{what} is {rate}; it must be {} and at most {MAX_RATE} arrivals per second, \
                 e.g. rate = 20",
                if zero_ok { "0 or more" } else { "more than 0" }
            ),
        ));
    }
    Ok(rate)
}

/// `max_in_flight`, or by default enough for every arrival of `request_timeout` at the peak
/// rate to wait unanswered (a hung target), within the machine's limit.
fn max_in_flight(
    raw: &RawLoad,
    peak_rate: f64,
    limit: usize,
    src: &Source,
) -> Result<usize, ScenarioError> {
    if let Some(value) = &raw.max_in_flight {
        return count(value, "`max_in_flight` in [load]", limit, src);
    }
    let timeout = match &raw.request_timeout {
        Some(text) => positive_duration(text, "`request_timeout` in [load]", src)?,
        None => Duration::from_secs(30),
    };
    let needed = (peak_rate * timeout.as_secs_f64()).ceil() as usize + 1;
    Ok(needed.clamp(1, limit))
}

fn arrivals(raw: &RawLoad, src: &Source) -> Result<Arrivals, ScenarioError> {
    match raw.arrivals.as_ref().map(|t| (t, t.get_ref().trim())) {
        None | Some((_, "even")) => Ok(Arrivals::Even),
        Some((_, "poisson")) => Ok(Arrivals::Poisson),
        Some((text, other)) => Err(src.error(
            text,
            format!("`arrivals` in [load] is \"{other}\"; use \"even\" or \"poisson\""),
        )),
    }
}

/// The stages, with their durations read; they must add up to the run's `duration`.
fn stages<'r>(
    raw: &'r RawLoad,
    run: Duration,
    src: &Source,
) -> Result<Vec<(&'r RawStage, Duration)>, ScenarioError> {
    let Some(stages) = &raw.stages else {
        return Err(src.error(
            raw.executor.as_ref().expect("named"),
            "a ramping executor needs `stages`, e.g. stages = [{ rate = 50, duration = \
             \"30s\" }] (or users = 10 for \"ramping_users\")",
        ));
    };
    if stages.get_ref().is_empty() {
        return Err(src.error(
            stages,
            "`stages` in [load] is empty; add at least one stage",
        ));
    }
    let mut read = Vec::with_capacity(stages.get_ref().len());
    let mut total = Duration::ZERO;
    for stage in stages.get_ref() {
        let d = duration(&stage.duration, "`duration` of a stage", src)?;
        total += d;
        read.push((stage, d));
    }
    if total != run {
        return Err(src.error(
            stages,
            format!(
                "the stages in [load] last {} in all but `duration` is {}; make them add up \
                 to the run's duration",
                humantime::format_duration(total),
                humantime::format_duration(run)
            ),
        ));
    }
    Ok(read)
}
