//! The `ramping_users` executor: closed users (a request, the whole answer, think time) on
//! faultline's own client, their number following the stages linearly, as k6's `ramping-vus`.
//! A user retired by a falling ramp finishes its request first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::open::FlowPicker;
use super::{FlowContext, LoadSpec};
use crate::evidence::LoadStats;
use crate::scenario::{Executor, UserStage};

/// How often the number of users is brought to the ramp's.
const STEP: Duration = Duration::from_millis(50);

pub(super) async fn drive(
    spec: &LoadSpec,
    contexts: Vec<Arc<FlowContext>>,
    client: reqwest::Client,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) -> LoadStats {
    let Executor::RampingUsers {
        start_users,
        stages,
    } = &spec.executor
    else {
        return LoadStats::default();
    };
    let shared = Arc::new(Shared {
        contexts,
        client,
        base_url: spec.base_url.clone(),
        // Workers draw apart (the same mix, not the same sequence in every worker).
        picker: Mutex::new(FlowPicker::new(
            &spec.flows,
            spec.seed ^ ((spec.share.index as u64) << 40),
        )),
        think: spec.think_time,
        end: epoch + spec.duration,
    });
    let mut active: Vec<(Arc<AtomicBool>, JoinHandle<()>)> = Vec::new();
    let mut retired: Vec<JoinHandle<()>> = Vec::new();
    let mut tick = tokio::time::interval(STEP);
    while Instant::now() < shared.end && !*stop.borrow() {
        let want = users_at(*start_users, stages, epoch.elapsed());
        while active.len() < want {
            let retire = Arc::new(AtomicBool::new(false));
            let user = tokio::spawn(run_user(shared.clone(), retire.clone(), stop.clone()));
            active.push((retire, user));
        }
        while active.len() > want {
            let (retire, user) = active.pop().expect("more than wanted");
            retire.store(true, Ordering::Relaxed);
            retired.push(user);
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => {}
        }
    }
    for (retire, user) in active {
        retire.store(true, Ordering::Relaxed);
        retired.push(user);
    }
    for user in retired {
        let _ = user.await;
    }
    LoadStats::default()
}

struct Shared {
    contexts: Vec<Arc<FlowContext>>,
    client: reqwest::Client,
    base_url: String,
    picker: Mutex<FlowPicker>,
    think: Duration,
    end: Instant,
}

/// One user: ask, wait for the whole answer, think; until retired or the run ends.
async fn run_user(shared: Arc<Shared>, retire: Arc<AtomicBool>, mut stop: watch::Receiver<bool>) {
    while !retire.load(Ordering::Relaxed) && Instant::now() < shared.end {
        let flow = shared
            .picker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next();
        shared.contexts[flow]
            .send(&shared.client, &shared.base_url, None)
            .await;
        tokio::select! {
            () = tokio::time::sleep(shared.think) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// The users the ramp wants `elapsed` into the run: linear within each stage, rounded.
pub fn users_at(start: usize, stages: &[UserStage], elapsed: Duration) -> usize {
    let mut from = start as f64;
    let mut left = elapsed.as_secs_f64();
    for stage in stages {
        let length = stage.duration.as_secs_f64();
        let to = stage.users as f64;
        if left < length {
            return (from + (to - from) * left / length).round() as usize;
        }
        left -= length;
        from = to;
    }
    from as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_follow_the_stages_linearly() {
        let stages = [
            UserStage {
                users: 10,
                duration: Duration::from_secs(10),
            },
            UserStage {
                users: 2,
                duration: Duration::from_secs(4),
            },
        ];
        let at = |s: f64| users_at(0, &stages, Duration::from_secs_f64(s));
        assert_eq!(at(0.0), 0);
        assert_eq!(at(5.0), 5);
        assert_eq!(at(10.0), 10);
        assert_eq!(at(12.0), 6);
        assert_eq!(at(20.0), 2);
    }
}
