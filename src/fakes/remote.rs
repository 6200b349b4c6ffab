//! A client of the control API (see [`super::control`]) that `faultline fakes up` serves: an
//! attached run drives those fakes through it — switches the timeline's rules on and off,
//! reads the journals and the tickets ledger for its own window — instead of starting fakes
//! of its own on the same ports.
//!
//! Every call is bounded ([`CALL_TIMEOUT`]): fakes that stop answering mid-run make a gap in
//! the evidence or a clear error, never a hang. Loopback only, like the control API itself.
//!
//! # Clocks
//! The fakes' journals count milliseconds from when `fakes up` started; a run counts from its
//! own epoch. [`ControlClient::connect`] reads `GET /clock` once and takes the fakes' `now_ms`
//! to stand for the middle of that round trip (on loopback, well under a millisecond of
//! uncertainty): `skew = now_ms - local_ms_at_midpoint`. Both clocks are monotonic on the
//! same machine, so the skew holds for the whole run: a remote time minus `skew` is on the
//! run's clock, and the run's start plus `skew` is where its window in the journals begins.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::fault::FaultRule;
use super::journal::Attempt;
use super::otlp::SpanRecord;
use crate::evidence::{AttemptStore, SpanStore, WriteAttempt, WriteStore};
use crate::scenario::FakeName;

/// The most any one control call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Connecting to the control API: refused at once on loopback when nothing listens.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The control API of running fakes, as one run uses it.
pub struct ControlClient {
    /// `http://127.0.0.1:8409`, no trailing slash.
    base: String,
    http: reqwest::Client,
    /// The fakes' clock minus the run's (ms); see the module docs.
    skew_ms: f64,
    /// The fakes' time when this run connected: its window in the journals starts here.
    since_ms: f64,
    /// Rules this run switched on: (fake, the timeline's id) → the id the fakes gave it.
    added: Mutex<BTreeMap<(FakeName, usize), usize>>,
}

/// What the run read back from the fakes, on the run's clock.
#[derive(Debug, Default)]
pub struct Readings {
    pub attempts: AttemptStore,
    pub dropped: u64,
    pub writes: WriteStore,
    /// Spans the OTLP collector received.
    pub spans: SpanStore,
    pub spans_dropped: u64,
    /// Why some of it could not be read.
    pub gaps: Vec<String>,
}

#[derive(Deserialize)]
struct Clock {
    now_ms: f64,
}

#[derive(Deserialize)]
struct JournalAnswer {
    dropped: u64,
    oldest_ms: Option<f64>,
    attempts: Vec<Attempt>,
}

#[derive(Deserialize)]
struct SpansAnswer {
    exports: u64,
    dropped: u64,
    oldest_ms: Option<f64>,
    spans: Vec<SpanRecord>,
}

#[derive(Deserialize)]
struct WritesAnswer {
    writes: Vec<WriteAttempt>,
}

impl ControlClient {
    /// Connects to the control API at `url` if one answers there: `Ok(None)` when nothing
    /// listens (the run then starts its own fakes), an error when something answers that is
    /// not a working control API, or the URL is not on this machine.
    /// The control API's token, if any, comes from `FAULTLINE_CONTROL_TOKEN`.
    pub async fn connect(url: &str, epoch: Instant) -> Result<Option<ControlClient>, String> {
        Self::connect_with_token(url, epoch, super::control::token_from(None)).await
    }

    /// As [`ControlClient::connect`], sending `token` (`Authorization: Bearer`) when given.
    pub async fn connect_with_token(
        url: &str,
        epoch: Instant,
        token: Option<String>,
    ) -> Result<Option<ControlClient>, String> {
        let base =
            crate::input::loopback(url).map_err(|e| format!("the fakes' control API URL {e}"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &token {
            let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    format!(
                        "the control API token (--fakes-token or {}) holds characters a \
                         header cannot carry",
                        super::control::TOKEN_ENV
                    )
                })?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| format!("could not build an HTTP client: {e}"))?;
        let before = Instant::now();
        let answer = match http.get(format!("{base}/clock")).send().await {
            Ok(answer) => answer,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "the fakes' control API at {base} did not answer GET /clock ({e}); restart \
                     `faultline fakes up`, or pass --fakes with its control API URL"
                ))
            }
        };
        let status = answer.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(format!(
                "the fakes' control API at {base} needs its token: give the one `faultline \
                 fakes up` printed with --fakes-token TOKEN or {}",
                super::control::TOKEN_ENV
            ));
        }
        let clock = match answer.json::<Clock>().await {
            Ok(clock) if status.is_success() => clock,
            _ => {
                return Err(format!(
                    "something answers at {base}, but not as faultline's control API (GET /clock \
                     gave {status}); start `faultline fakes up` from this faultline version, or \
                     pass --fakes with the control API URL it prints"
                ))
            }
        };
        let after = Instant::now();
        let ms = |at: Instant| at.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        let local_mid_ms = (ms(before) + ms(after)) / 2.0;
        let client = ControlClient {
            base,
            http,
            skew_ms: clock.now_ms - local_mid_ms,
            since_ms: clock.now_ms,
            added: Mutex::new(BTreeMap::new()),
        };
        Ok(Some(client))
    }

    /// The control API's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Switches every rule of every fake off (`DELETE /faults`).
    pub async fn clear(&self) -> Result<(), String> {
        let answer = self
            .http
            .delete(format!("{}/faults", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable("DELETE /faults", e))?;
        self.added.locked().clear();
        expect_success(answer, "DELETE /faults").await
    }

    /// Switches `rule` on at `fake`; the fakes give it their own id, remembered for
    /// [`ControlClient::switch_off`].
    pub async fn switch_on(&self, fake: FakeName, rule: &FaultRule) -> Result<(), String> {
        let what = format!("POST /faults/{}", fake.as_str());
        let answer = self
            .http
            .post(format!("{}/faults/{}", self.base, fake.as_str()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(rule_json(rule).to_string())
            .send()
            .await
            .map_err(|e| self.unreachable(&what, e))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        let Some(id) = body
            .get("id")
            .and_then(Value::as_u64)
            .filter(|_| status.is_success())
        else {
            return Err(format!("{what} answered {status}: {body}"));
        };
        self.added.locked().insert((fake, rule.id), id as usize);
        Ok(())
    }

    /// Switches off the rule this run switched on at `fake` with the timeline's `id`.
    pub async fn switch_off(&self, fake: FakeName, id: usize) -> Result<(), String> {
        let Some(remote) = self.added.locked().remove(&(fake, id)) else {
            return Ok(());
        };
        let what = format!("DELETE /faults/{}/{remote}", fake.as_str());
        let answer = self
            .http
            .delete(format!("{}/faults/{}/{remote}", self.base, fake.as_str()))
            .send()
            .await
            .map_err(|e| self.unreachable(&what, e))?;
        // 404: someone switched it off already, which is what we wanted.
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect_success(answer, &what).await
    }

    /// Every fake's journal, the tickets ledger and the collector's spans from when this run
    /// connected, moved onto the run's clock (see the module docs).
    pub async fn read(&self) -> Readings {
        let mut readings = Readings::default();
        let mut attempts: Vec<Attempt> = Vec::new();
        // Once the API has not answered, the other reads would only wait as long again.
        let mut down: Option<String> = None;
        // `dropped` counts since the fakes started: this run's window lost some only if the
        // oldest entry kept arrived after the window began.
        let lost_here = |dropped: u64, oldest_ms: Option<f64>| {
            dropped > 0 && oldest_ms.is_none_or(|t| t > self.since_ms)
        };
        for fake in FakeName::ALL {
            let path = format!("/journal/{}", fake.as_str());
            match self.read_since::<JournalAnswer>(&path, &mut down).await {
                Ok(answer) => {
                    if lost_here(answer.dropped, answer.oldest_ms) {
                        readings.dropped += answer.dropped;
                    }
                    attempts.extend(answer.attempts.into_iter().map(|mut attempt| {
                        attempt.at_ms -= self.skew_ms;
                        attempt
                    }));
                }
                Err(e) => readings.gaps.push(format!(
                    "the {} fake's journal was not read ({e}), so its upstream attempts are \
                     missing from the evidence",
                    fake.as_str()
                )),
            }
        }
        // Bounded by the fakes' rings, which the control API serves.
        attempts.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        readings.attempts = attempts.into();
        match self
            .read_since::<WritesAnswer>("/writes/tickets", &mut down)
            .await
        {
            Ok(answer) => {
                readings.writes = answer
                    .writes
                    .into_iter()
                    .map(|mut write| {
                        write.at_ms -= self.skew_ms;
                        write
                    })
                    .collect();
            }
            Err(e) => readings.gaps.push(format!(
                "the tickets fake's writes were not read ({e}), so duplicate side effects \
                 could not be counted"
            )),
        }
        match self
            .read_since::<SpansAnswer>("/journal/otlp", &mut down)
            .await
        {
            Ok(answer) => {
                if lost_here(answer.dropped, answer.oldest_ms) {
                    readings.spans_dropped = answer.dropped;
                }
                readings.spans = answer
                    .spans
                    .into_iter()
                    .map(|mut span| {
                        span.at_ms -= self.skew_ms;
                        span
                    })
                    .collect();
            }
            Err(e) => readings.gaps.push(format!(
                "the OTLP collector's spans were not read ({e}), so traces could not be checked"
            )),
        }
        readings
    }

    /// `GET {path}?since_ms=<this run's start>`, unless the API already failed to answer
    /// (`down`, which a failure to answer sets).
    async fn read_since<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        down: &mut Option<String>,
    ) -> Result<T, String> {
        if let Some(why) = down {
            return Err(why.clone());
        }
        let url = format!("{}{path}?since_ms={}", self.base, self.since_ms);
        self.get_json(&url, &format!("GET {path}"))
            .await
            .map_err(|e| e.noting_down(down))
    }

    /// Like [`SpanJournal::settle`](super::otlp::SpanJournal::settle), over the control API:
    /// polls the collector's export count until it holds still for `quiet` (or `limit`
    /// passes). Nothing to wait for when no export ever arrived or the API does not answer.
    pub async fn settle_spans(&self, quiet: Duration, limit: Duration) {
        let deadline = Instant::now() + limit;
        let Some(mut last) = self.exports().await else {
            return;
        };
        if last == 0 {
            return;
        }
        while Instant::now() < deadline {
            tokio::time::sleep(quiet).await;
            match self.exports().await {
                Some(now) if now != last => last = now,
                _ => return,
            }
        }
    }

    /// The collector's export count: its counters without a span (`since_ms` past them all).
    async fn exports(&self) -> Option<u64> {
        let url = format!("{}/journal/otlp?since_ms=1e300", self.base);
        let answer: SpansAnswer = self.get_json(&url, "GET /journal/otlp").await.ok()?;
        Some(answer.exports)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
    ) -> Result<T, ReadError> {
        let answer = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| ReadError::Unreachable(self.unreachable(what, e)))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(ReadError::Answered(format!("{what} answered {status}")));
        }
        answer
            .json()
            .await
            .map_err(|e| ReadError::Answered(format!("{what} answered what is not its JSON: {e}")))
    }

    fn unreachable(&self, what: &str, error: reqwest::Error) -> String {
        let why = if error.is_timeout() {
            format!(
                "no answer within {}",
                humantime::format_duration(CALL_TIMEOUT)
            )
        } else {
            error.to_string()
        };
        format!(
            "the fakes' control API at {} failed {what}: {why}",
            self.base
        )
    }
}

/// Why a read failed: the API did not answer at all, or answered something unusable.
enum ReadError {
    Unreachable(String),
    Answered(String),
}

impl ReadError {
    /// The message, remembering in `down` when the API itself did not answer.
    fn noting_down(self, down: &mut Option<String>) -> String {
        match self {
            ReadError::Unreachable(why) => {
                *down = Some(why.clone());
                why
            }
            ReadError::Answered(why) => why,
        }
    }
}

/// A rule as the control API takes it: the fault's own JSON with `route`, `rate` and
/// `first_attempts` beside `kind` (what [`super::fault::parse_rule`] reads).
pub fn rule_json(rule: &FaultRule) -> Value {
    let mut json = serde_json::to_value(&rule.fault).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut json {
        if let Some(route) = &rule.route {
            fields.insert("route".into(), route.clone().into());
        }
        fields.insert("rate".into(), rule.rate.into());
        if let Some(first) = rule.first_attempts {
            fields.insert("first_attempts".into(), first.into());
        }
    }
    json
}

async fn expect_success(answer: reqwest::Response, what: &str) -> Result<(), String> {
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        let body = answer.text().await.unwrap_or_default();
        Err(format!("{what} answered {status}: {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::fault::{parse_rule, Fault};

    #[test]
    fn a_rule_survives_the_trip_through_the_control_api_json() {
        let rule = FaultRule {
            id: 3,
            fault: Fault::status(429, Some(Duration::from_millis(1500))),
            route: Some("/v1/chat/completions".into()),
            rate: 0.5,
            first_attempts: Some(2),
        };
        let back = parse_rule(&rule_json(&rule).to_string(), 3).unwrap();
        assert_eq!(back, rule);
    }
}
