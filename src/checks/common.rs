//! What several check families share: fault windows read off the timeline, linking fakes'
//! attempts to client requests, a plain percentile, bounded evidence lists, and the
//! `retry-after` a fault label carries.

use std::collections::HashMap;

use super::{Outcome, Verdict};
use crate::evidence::Attempt;
use crate::evidence::{Evidence, Record};

/// One fault as it was switched on and off by the timeline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FaultSpan {
    pub fake: String,
    pub kind: String,
    pub label: String,
    pub route: Option<String>,
    pub start_ms: f64,
    /// When it was switched off; the run's end when it never was.
    pub end_ms: f64,
}

impl FaultSpan {
    pub fn duration_ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }

    /// `llm /v1/chat/completions "status 503" 10 s–20 s`
    pub fn describe(&self) -> String {
        format!(
            "{}{} \"{}\" {}–{}",
            self.fake,
            self.route
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default(),
            self.label,
            super::sla::format_ms(self.start_ms),
            super::sla::format_ms(self.end_ms)
        )
    }

    /// Does this fault apply to `attempt` (same fake, route within the fault's scope)?
    pub fn covers(&self, attempt: &Attempt) -> bool {
        attempt.fake == self.fake
            && self
                .route
                .as_deref()
                .is_none_or(|r| attempt.route.starts_with(r))
    }

    /// Was the client request `r` sent while this fault was on?
    pub fn saw(&self, r: &Record) -> bool {
        r.at_ms >= self.start_ms && r.at_ms < self.end_ms
    }
}

/// Every fault window of the run, in start order: each "on" paired with the next "off" of the
/// same fake, fault and route.
pub(crate) fn fault_spans(evidence: &Evidence) -> Vec<FaultSpan> {
    let run_end = evidence
        .phases
        .last()
        .map_or(evidence.duration_ms, |p| p.end_ms.max(evidence.duration_ms));
    let mut spans: Vec<FaultSpan> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for event in &evidence.timeline {
        if event.on {
            open.push(spans.len());
            spans.push(FaultSpan {
                fake: event.fake.clone(),
                kind: event.kind.clone(),
                label: event.fault.clone(),
                route: event.route.clone(),
                start_ms: event.at_ms,
                end_ms: f64::INFINITY,
            });
        } else if let Some(pos) = open.iter().position(|&i| {
            let s = &spans[i];
            s.fake == event.fake && s.label == event.fault && s.route == event.route
        }) {
            spans[open.remove(pos)].end_ms = event.at_ms;
        }
    }
    for span in &mut spans {
        if span.end_ms.is_infinite() {
            span.end_ms = run_end.max(span.start_ms);
        }
    }
    spans.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    spans
}

/// Did the fake find client request `r` in this attempt (its nonce, or its propagated id)?
pub(crate) fn belongs(attempt: &Attempt, r: &Record) -> bool {
    attempt
        .key
        .as_deref()
        .is_some_and(|k| k == r.nonce || k == r.request_id)
}

/// The attempts linked to each client request: found by the request's nonce or id, in
/// arrival order (see [`LinkedAttempts::of`]). Indexed by the attempts' keys rather than by
/// the records, so that records can stream past it.
///
/// Memory: the keyed attempts, read back from their stream into this index for the length of
/// one check (some 150-250 B each). Linking a request to its attempts needs them all at hand,
/// as the stream is in the order attempts ended, not grouped by request.
pub(crate) struct LinkedAttempts {
    by_key: HashMap<String, Vec<Attempt>>,
}

impl LinkedAttempts {
    /// The attempts linked to `r`, in arrival order.
    pub(crate) fn of(&self, r: &Record) -> Vec<&Attempt> {
        let mut linked: Vec<&Attempt> = Vec::new();
        for key in [r.nonce.as_str(), r.request_id.as_str()] {
            if key.is_empty() {
                continue;
            }
            if let Some(found) = self.by_key.get(key) {
                linked.extend(found.iter());
            }
        }
        linked.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        linked.dedup_by(|a, b| std::ptr::eq(*a, *b));
        linked
    }
}

/// The request id of each attempt key (a nonce or a request id) that names a client
/// request: one pass over the records, keeping only the keys the attempts carry, so the map is
/// as large as the journals, not as the run.
pub(crate) fn request_ids_of_attempt_keys(evidence: &Evidence) -> HashMap<String, String> {
    let keys: std::collections::HashSet<String> =
        evidence.attempts.iter().filter_map(|a| a.key).collect();
    request_ids_of_keys(evidence, keys.iter().map(String::as_str))
}

/// The request id of each of `keys` (nonces or request ids) that names a client request.
pub(crate) fn request_ids_of_keys<'a>(
    evidence: &Evidence,
    keys: impl Iterator<Item = &'a str>,
) -> HashMap<String, String> {
    let keys: std::collections::HashSet<&str> = keys.collect();
    let mut out = HashMap::new();
    for r in evidence.records.iter() {
        for key in [&r.nonce, &r.request_id] {
            if keys.contains(key.as_str()) {
                out.insert(key.clone(), r.request_id.clone());
            }
        }
    }
    out
}

/// Indexes the attempts of `evidence` for [`LinkedAttempts::of`].
pub(crate) fn attempts_per_record(evidence: &Evidence) -> LinkedAttempts {
    let mut by_key: HashMap<String, Vec<Attempt>> = HashMap::new();
    for a in evidence.attempts.iter() {
        if let Some(k) = a.key.clone() {
            by_key.entry(k).or_default().push(a);
        }
    }
    LinkedAttempts { by_key }
}

/// An upstream attempt that failed: no 2xx (an error status or no answer), or a 2xx whose
/// answer a fault broke on the wire (a cut stream, a malformed body, a reset). The fakes
/// journal the fault they applied, so the ground truth does not depend on the target.
pub(crate) fn attempt_failed(a: &Attempt) -> bool {
    const BREAKING: &[&str] = &[
        "stream_cut",
        "malformed",
        "reset",
        "drop",
        "invalid_tool_args",
    ];
    let broken = a
        .fault
        .as_deref()
        .is_some_and(|label| BREAKING.iter().any(|kind| label.starts_with(kind)));
    broken || !matches!(a.status, Some(200..=299))
}

/// The nearest-rank quantile of `values` (0 when empty): a value that really happened.
pub(crate) fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Keeps an evidence list within [`Verdict::EVIDENCE_LIMIT`], saying how many were left out.
pub(crate) fn bounded(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > Verdict::EVIDENCE_LIMIT {
        let more = lines.len() - (Verdict::EVIDENCE_LIMIT - 1);
        lines.truncate(Verdict::EVIDENCE_LIMIT - 1);
        lines.push(format!("… and {more} more"));
    }
    lines
}

/// A verdict not yet reached: not applicable until the check finds its data.
pub(crate) fn pending(id: &str, title: String, unit: &str, limit: Option<f64>) -> Verdict {
    Verdict {
        id: id.into(),
        title,
        outcome: Outcome::NotApplicable,
        figure: None,
        limit,
        unit: unit.into(),
        summary: String::new(),
        evidence: Vec::new(),
    }
}

/// Marks `v` not applicable with `why`.
pub(crate) fn not_applicable(mut v: Verdict, why: impl Into<String>) -> Verdict {
    v.outcome = Outcome::NotApplicable;
    v.figure = None;
    v.summary = why.into();
    v
}

/// The evidence's own reason for missing data, when it gives one (`logs not captured: …`).
pub(crate) fn gap_about<'a>(evidence: &'a Evidence, word: &str) -> Option<&'a str> {
    evidence
        .gaps
        .iter()
        .find(|g| g.to_ascii_lowercase().contains(word))
        .map(String::as_str)
}

/// The wait a fault label asks for: `status 429 retry-after 1s 500ms` → 1500 ms.
///
/// Labels are what the timeline and journals carry (see `Fault::label`): the `retry-after`
/// value is humantime's format, running to the end of the label or up to a `;`/`,`.
pub(crate) fn retry_after_ms(label: &str) -> Option<f64> {
    let at = label.find("retry-after")?;
    let rest = label[at + "retry-after".len()..]
        .trim_start_matches(['-', 'm', 's'].as_ref())
        .trim_start_matches([':', '=', ' '].as_ref());
    let rest = rest.split([';', ',']).next().unwrap_or("").trim();
    if rest.is_empty() {
        return None;
    }
    // A bare number is seconds, as the HTTP header is.
    if let Ok(seconds) = rest.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then_some(seconds * 1000.0);
    }
    // Take the longest prefix of words that reads as a duration ("1s 500ms then …").
    let words: Vec<&str> = rest.split_whitespace().collect();
    (1..=words.len())
        .rev()
        .find_map(|n| humantime::parse_duration(&words[..n].join(" ")).ok())
        .map(|d| d.as_secs_f64() * 1000.0)
}

/// A log line as JSON, when it is a JSON object (a prefix before the `{`, such as a timestamp
/// a process manager adds, is skipped).
pub(crate) fn json_line(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let at = text.find('{')?;
    match serde_json::from_str::<serde_json::Value>(text[at..].trim_end()) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A field of a JSON log line: the key as written (`log.level`, as some loggers flatten), else
/// a dotted path into nested objects (`usage.in` reads `{"usage": {"in": 12}}`).
pub(crate) fn field<'a>(
    line: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a serde_json::Value> {
    if let Some(value) = line.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = line.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Is this JSON log line a warning? The service's own level field (`[logs] level_field`) if
/// it names one, else `level`/`severity`/`lvl`/`log.level`: `warn`/`warning`, or pino's 40.
pub(crate) fn is_warning(
    line: &serde_json::Map<String, serde_json::Value>,
    level_field: Option<&str>,
) -> bool {
    let usual = ["level", "severity", "lvl", "log.level"];
    level_field
        .into_iter()
        .chain(usual)
        .any(|k| match field(line, k) {
            Some(serde_json::Value::String(s)) => {
                matches!(s.to_ascii_lowercase().as_str(), "warn" | "warning")
            }
            Some(serde_json::Value::Number(n)) => n.as_u64() == Some(40),
            _ => false,
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_2xx_broken_on_the_wire_is_a_failed_attempt() {
        let attempt = |status, fault: Option<&str>| Attempt {
            at_ms: 0.0,
            fake: "llm".into(),
            route: "/v1/chat/completions".into(),
            key: None,
            fault: fault.map(String::from),
            status,
            duration_ms: 1.0,
            input_tokens: None,
            output_tokens: None,
            retry_count: None,
            chunks_sent: None,
            api_key: None,
            exchange: None,
        };
        assert!(!attempt_failed(&attempt(Some(200), None)));
        assert!(!attempt_failed(&attempt(Some(200), Some("delay 1s"))));
        assert!(attempt_failed(&attempt(
            Some(200),
            Some("stream_cut after 3 chunks")
        )));
        assert!(attempt_failed(&attempt(
            Some(200),
            Some("malformed truncated_json")
        )));
        assert!(attempt_failed(&attempt(Some(503), None)));
        assert!(attempt_failed(&attempt(None, None)));
    }
    use crate::evidence::TimelineEvent;

    /// An attempt at `fake`/`route` for the request with nonce `key`.
    pub(crate) fn attempt(
        at_ms: f64,
        fake: &str,
        route: &str,
        key: &str,
        status: Option<u16>,
        duration_ms: f64,
    ) -> Attempt {
        Attempt {
            at_ms,
            fake: fake.into(),
            route: route.into(),
            key: Some(key.into()),
            fault: None,
            status,
            duration_ms,
            input_tokens: None,
            output_tokens: None,
            retry_count: None,
            chunks_sent: None,
            api_key: None,
            exchange: None,
        }
    }

    /// The timeline events switching `label` on at `start` and off at `end` on `fake`.
    pub(crate) fn window(fake: &str, label: &str, start: f64, end: f64) -> Vec<TimelineEvent> {
        let event = |at_ms, on| TimelineEvent {
            at_ms,
            fake: fake.into(),
            kind: label.split(' ').next().unwrap_or("").into(),
            fault: label.into(),
            route: None,
            on,
        };
        vec![event(start, true), event(end, false)]
    }

    #[test]
    fn retry_after_is_read_from_fault_labels() {
        assert_eq!(retry_after_ms("status 429 retry-after 1s"), Some(1000.0));
        assert_eq!(
            retry_after_ms("status 503 retry-after 1s 500ms"),
            Some(1500.0)
        );
        assert_eq!(retry_after_ms("status 503 retry-after 250ms"), Some(250.0));
        assert_eq!(retry_after_ms("status 429 retry-after: 2"), Some(2000.0));
        assert_eq!(
            retry_after_ms("status 429 retry-after-ms 300ms"),
            Some(300.0)
        );
        assert_eq!(retry_after_ms("status 503"), None);
        assert_eq!(retry_after_ms("status 429 retry-after"), None);
        assert_eq!(retry_after_ms("status 429 retry-after soon"), None);
    }

    #[test]
    fn fault_spans_pair_on_with_off_and_run_to_the_end_when_left_on() {
        let mut evidence = Evidence {
            duration_ms: 30_000.0,
            ..Evidence::default()
        };
        evidence.timeline = window("llm", "status 503", 10_000.0, 20_000.0);
        evidence.timeline.extend(
            window("weather", "refuse", 5_000.0, 0.0)
                .into_iter()
                .take(1),
        );
        let spans = fault_spans(&evidence);
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].fake.as_str(), spans[0].end_ms),
            ("weather", 30_000.0)
        );
        assert_eq!((spans[1].start_ms, spans[1].end_ms), (10_000.0, 20_000.0));
        assert_eq!(spans[1].kind, "status");
    }

    #[test]
    fn quantiles_are_values_that_happened() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.95), 95.0);
        assert_eq!(quantile(&[7.0], 0.95), 7.0);
        assert_eq!(quantile(&[], 0.95), 0.0);
    }
}
