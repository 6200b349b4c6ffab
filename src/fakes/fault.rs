//! The one fault model every fake shares: what to inject ([`Fault`]), where (a route prefix),
//! how often (a rate drawn from one seeded RNG), and a [`Switchboard`] that the timeline turns
//! rules on and off at.
//!
//! Fakes ask the switchboard once per attempt ([`Switchboard::pick`]); the answer is data, and the
//! fake decides how to act it out on its own wire protocol.

use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What a fake does instead of (or before) answering normally.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The port is closed while the rule is on: new connections are refused and open ones dropped.
    Refuse,
    /// Answer with this HTTP status (provider-shaped error body), optionally with `retry-after`.
    Status {
        code: u16,
        #[serde(
            default,
            with = "opt_duration_ms",
            skip_serializing_if = "Option::is_none"
        )]
        retry_after: Option<Duration>,
    },
    /// Wait this long, then answer normally.
    Delay {
        #[serde(with = "duration_ms")]
        delay: Duration,
    },
    /// Accept the request and never answer (until the client gives up or the fake stops).
    Hang,
}

impl Fault {
    /// A short label for journals, timelines and reports: `status 503`, `delay 2s`, `hang`.
    pub fn label(&self) -> String {
        match self {
            Fault::Refuse => "refuse".into(),
            Fault::Status {
                code,
                retry_after: None,
            } => format!("status {code}"),
            Fault::Status {
                code,
                retry_after: Some(after),
            } => {
                format!(
                    "status {code} retry-after {}",
                    humantime::format_duration(*after)
                )
            }
            Fault::Delay { delay } => format!("delay {}", humantime::format_duration(*delay)),
            Fault::Hang => "hang".into(),
        }
    }
}

/// A fault with its scope: which routes of the fake it touches and on what share of attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Stable id, so the timeline can switch this rule off again.
    pub id: usize,
    pub fault: Fault,
    /// Route prefix (`/v1/chat/completions`); `None` means every route.
    pub route: Option<String>,
    /// Share of matching attempts that get the fault, 0.0..=1.0.
    pub rate: f64,
}

impl FaultRule {
    fn applies_to(&self, route: &str) -> bool {
        self.route
            .as_deref()
            .is_none_or(|prefix| route.starts_with(prefix))
    }
}

/// The faults a fake injects right now. Shared between the fake (reads) and the timeline (writes).
pub struct Switchboard {
    state: Mutex<State>,
    /// True while a `refuse` rule is on; the fake's accept loop watches it to close its port.
    refusing: watch::Sender<bool>,
}

struct State {
    active: Vec<FaultRule>,
    rng: ChaCha8Rng,
}

impl Switchboard {
    /// A switchboard with nothing on, drawing rates from `seed`.
    pub fn new(seed: u64) -> Self {
        Switchboard {
            state: Mutex::new(State {
                active: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
            }),
            refusing: watch::Sender::new(false),
        }
    }

    /// Turns a rule on (replacing one with the same id).
    pub fn activate(&self, rule: FaultRule) {
        let mut state = self.state.lock().unwrap();
        state.active.retain(|r| r.id != rule.id);
        state.active.push(rule);
        self.publish_refusing(&state.active);
    }

    /// Turns a rule off; unknown ids are ignored.
    pub fn deactivate(&self, id: usize) {
        let mut state = self.state.lock().unwrap();
        state.active.retain(|r| r.id != id);
        self.publish_refusing(&state.active);
    }

    /// Turns every rule off.
    pub fn clear(&self) {
        let mut state = self.state.lock().unwrap();
        state.active.clear();
        self.publish_refusing(&state.active);
    }

    /// The rules on now, for control APIs and tests.
    pub fn active(&self) -> Vec<FaultRule> {
        self.state.lock().unwrap().active.clone()
    }

    /// The fault for one attempt at `route`: the first active rule that matches the route and
    /// wins its rate draw. `Refuse` is not returned here; watch [`Switchboard::refusing`] instead.
    pub fn pick(&self, route: &str) -> Option<Fault> {
        let mut state = self.state.lock().unwrap();
        let State { active, rng } = &mut *state;
        for rule in active.iter() {
            if rule.fault == Fault::Refuse || !rule.applies_to(route) {
                continue;
            }
            // Draw only for partial rates so a rate of 1.0 does not move the seeded sequence.
            if rule.rate >= 1.0 || (rule.rate > 0.0 && rng.random_bool(rule.rate)) {
                return Some(rule.fault.clone());
            }
        }
        None
    }

    /// A receiver that reads `true` while the fake must keep its port closed.
    pub fn refusing(&self) -> watch::Receiver<bool> {
        self.refusing.subscribe()
    }

    fn publish_refusing(&self, active: &[FaultRule]) {
        let refuse = active.iter().any(|r| r.fault == Fault::Refuse);
        self.refusing
            .send_if_modified(|now| std::mem::replace(now, refuse) != refuse);
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: usize, fault: Fault, route: Option<&str>, rate: f64) -> FaultRule {
        FaultRule {
            id,
            fault,
            route: route.map(String::from),
            rate,
        }
    }

    #[test]
    fn nothing_is_injected_until_a_rule_is_on() {
        let board = Switchboard::new(1);
        assert_eq!(board.pick("/v1/chat/completions"), None);
        board.activate(rule(0, Fault::Hang, None, 1.0));
        assert_eq!(board.pick("/v1/chat/completions"), Some(Fault::Hang));
        board.deactivate(0);
        assert_eq!(board.pick("/v1/chat/completions"), None);
    }

    #[test]
    fn a_route_scoped_rule_leaves_other_routes_alone() {
        let board = Switchboard::new(1);
        let busy = Fault::Status {
            code: 503,
            retry_after: None,
        };
        board.activate(rule(0, busy.clone(), Some("/v1/chat"), 1.0));
        assert_eq!(board.pick("/v1/embeddings"), None);
        assert_eq!(board.pick("/v1/chat/completions"), Some(busy));
    }

    #[test]
    fn a_partial_rate_hits_about_that_share_and_repeats_with_the_seed() {
        let draw = |seed| {
            let board = Switchboard::new(seed);
            board.activate(rule(0, Fault::Hang, None, 0.3));
            (0..1000)
                .map(|_| board.pick("/").is_some())
                .collect::<Vec<_>>()
        };
        let hits = draw(7).iter().filter(|hit| **hit).count();
        assert!(
            (230..370).contains(&hits),
            "{hits} hits of 1000 at rate 0.3"
        );
        assert_eq!(draw(7), draw(7));
    }

    #[test]
    fn refuse_is_published_on_the_watch_not_picked() {
        let board = Switchboard::new(1);
        let refusing = board.refusing();
        board.activate(rule(3, Fault::Refuse, None, 1.0));
        assert!(*refusing.borrow());
        assert_eq!(board.pick("/"), None);
        board.clear();
        assert!(!*refusing.borrow());
    }
}
