//! Hand-built evidence for unit tests: [`EvidenceBuilder`] lays out three 10 s phases and
//! adds client records one by one, so checks can be tested without sockets or clocks.

use super::{Evidence, Phase, PhaseSpan, Record};

/// Hand-built evidence: three 10 s phases and records added one by one.
pub(crate) struct EvidenceBuilder {
    evidence: Evidence,
    /// Kept apart until [`EvidenceBuilder::build`] puts them in the store, so that they
    /// can still be edited.
    records: Vec<Record>,
    next_id: usize,
}

impl EvidenceBuilder {
    pub(crate) fn new() -> Self {
        let span = |phase, start_ms, end_ms| PhaseSpan {
            phase,
            start_ms,
            end_ms,
        };
        EvidenceBuilder {
            evidence: Evidence {
                phases: vec![
                    span(Phase::Baseline, 0.0, 10_000.0),
                    span(Phase::Fault, 10_000.0, 20_000.0),
                    span(Phase::Recovery, 20_000.0, 30_000.0),
                ],
                duration_ms: 30_000.0,
                ..Evidence::default()
            },
            records: Vec::new(),
            next_id: 0,
        }
    }

    /// Keep only the baseline phase, as a plan without faults has.
    pub(crate) fn baseline_only(mut self) -> Self {
        self.evidence.phases.truncate(1);
        self
    }

    /// A record at `at_ms` with `status` (None: no answer) taking `latency_ms`.
    pub(crate) fn record(mut self, at_ms: f64, status: Option<u16>, latency_ms: f64) -> Self {
        self.next_id += 1;
        let ok = matches!(status, Some(200..=299));
        self.records.push(Record {
            at_ms,
            flow: "chat".into(),
            request_id: format!("req-{}", self.next_id),
            nonce: format!("n{}", self.next_id),
            status,
            latency_ms,
            response_request_id: status.map(|_| format!("req-{}", self.next_id)),
            body_excerpt: if ok {
                r#"{"answer":"Paris."}"#.into()
            } else if status.is_some() {
                r#"{"error":"The AI service is unavailable right now, please try again."}"#.into()
            } else {
                String::new()
            },
            error: if status.is_none() {
                Some("timeout".into())
            } else {
                None
            },
            ..Record::default()
        });
        self
    }

    /// `n` records in `phase`'s window, evenly spread, all with the same status and latency.
    pub(crate) fn records(
        mut self,
        phase: Phase,
        n: usize,
        status: Option<u16>,
        latency_ms: f64,
    ) -> Self {
        let span = self
            .evidence
            .phases
            .iter()
            .find(|s| s.phase == phase)
            .expect("phase in the builder")
            .clone();
        for i in 0..n {
            let at = span.start_ms + (span.end_ms - span.start_ms) * i as f64 / n as f64;
            self = self.record(at, status, latency_ms);
        }
        self
    }

    /// Change the last record added.
    pub(crate) fn edit(mut self, change: impl FnOnce(&mut Record)) -> Self {
        change(self.records.last_mut().expect("a record to edit"));
        self
    }

    pub(crate) fn build(self) -> Evidence {
        Evidence {
            records: self.records.into(),
            ..self.evidence
        }
    }
}
