//! The report model, written as `report.json`: what ran, what was measured, what was judged.
//! Versioned by [`SCHEMA`]; every field is documented in `reports/README.md`.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::checks::sla::{phase_stats, PhaseStats};
use crate::checks::{Outcome, Verdict};
use crate::evidence::{EncodedCell, Evidence, TimelineEvent};
use crate::scenario::Plan;

/// The schema id in every report's `schema` field. Bump it when a field changes meaning or goes.
pub const SCHEMA: &str = "faultline.report/v1";

/// One run's report: `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`], so readers can tell versions apart.
    pub schema: String,
    /// The scenario's name.
    pub scenario: String,
    pub description: String,
    /// Where the scenario came from: a file path, or `built-in:<name>`.
    pub source: String,
    pub seed: u64,
    /// True when the timeline was scaled down by `--quick`.
    pub quick: bool,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    pub duration_ms: f64,
    /// True when the run was cut short (Ctrl-C): the figures cover what was measured.
    pub interrupted: bool,
    /// True iff no verdict failed. Not-applicable verdicts do not fail the gate.
    pub passed: bool,
    /// The service under test, in a few words.
    pub target: String,
    pub phases: Vec<PhaseStats>,
    pub timeline: Vec<TimelineEvent>,
    /// The plan's fault windows, as the scenario model serializes them.
    pub faults: serde_json::Value,
    pub verdicts: Vec<Verdict>,
    pub counts: Counts,
    /// What the run could not see, each line naming the checks it concerns and what to set:
    /// the preflight's list (before the load) and what went missing during the run.
    #[serde(default)]
    pub gaps: Vec<String>,
    /// What the service did that a person should know and no gate owns (it sent the LLM no
    /// API key, or another than the one it was given), one line each with its evidence; see
    /// [`super::notes`]. Never fails the gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The load generator's account: executor, arrivals asked, sent, dropped and late, and
    /// service time per phase (see [`super::load`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<super::load::LoadReport>,
    /// Why the run cannot be judged (the generator fell behind, nothing or no fault
    /// happened): the run exits 2 and `passed` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// Client requests per phase × flow × outcome, each with its latency histogram in
    /// microseconds in HdrHistogram's V2 compressed encoding (base64): bounded whatever the
    /// run's length, and mergeable across runs (see [`crate::evidence::Summary`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_histograms: Vec<EncodedCell>,
}

/// How much evidence the run gathered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Client requests sent.
    pub requests: u64,
    /// Client requests that did not get a 2xx answer.
    pub failures: u64,
    /// Upstream attempts in the fakes' journals.
    pub upstream_attempts: u64,
    /// Attempts pushed out of the bounded journals (so `upstream_attempts` is partial when > 0).
    pub upstream_attempts_dropped: u64,
    /// Lines the target wrote.
    pub log_lines: u64,
    /// Client requests past the cap of the records file: counted in `requests` and
    /// `failures`, but not kept for the checks that read single requests.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests_not_kept: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the run knows about itself that the plan and evidence do not.
#[derive(Clone, Debug)]
pub struct RunMeta {
    pub started_at: OffsetDateTime,
    /// The service under test, in a few words: `reference target`, `node server.js`, a URL.
    pub target: String,
}

impl Report {
    /// The verdicts that failed the gate.
    pub fn failed(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| v.outcome == Outcome::Fail)
    }
}

/// The report of one run.
pub fn build(plan: &Plan, meta: &RunMeta, evidence: &Evidence, verdicts: Vec<Verdict>) -> Report {
    let started_at = meta
        .started_at
        .to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        // Only years past 9999 fail to format; say so rather than panic at the end of a run.
        .unwrap_or_else(|_| "unrepresentable".into());
    let invalid = super::load::invalid(evidence, !plan.faults.is_empty());
    let summary = evidence.summary();
    let cut = evidence.records.cut();
    Report {
        schema: SCHEMA.into(),
        scenario: plan.name.clone(),
        description: plan.description.clone(),
        source: plan.source.clone(),
        seed: plan.seed,
        quick: plan.quick,
        started_at,
        duration_ms: evidence.duration_ms,
        interrupted: evidence.interrupted,
        passed: invalid.is_none() && verdicts.iter().all(|v| v.outcome != Outcome::Fail),
        target: meta.target.clone(),
        phases: phase_stats(evidence),
        timeline: evidence.timeline.clone(),
        faults: serde_json::to_value(&plan.faults).unwrap_or(serde_json::Value::Null),
        verdicts,
        counts: Counts {
            requests: summary.requests() + cut.count,
            failures: summary.failures() + cut.failed,
            upstream_attempts: evidence.attempts.len() as u64,
            upstream_attempts_dropped: evidence.attempts_dropped,
            log_lines: evidence.logs.len() as u64,
            requests_not_kept: cut.count,
        },
        gaps: evidence.gaps.clone(),
        notes: super::notes::notes(evidence),
        load: super::load::build(evidence),
        invalid,
        latency_histograms: summary.encoded(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::evidence::{Phase, Record};
    use crate::scenario::Fault;
    use crate::scenario::{
        ErrorExpectations, Expectations, FakeName, FaultWindow, Flow, Load, TargetSpec,
    };

    /// A 30 s plan with one 10 s LLM outage in the middle.
    pub(crate) fn plan() -> Plan {
        Plan {
            name: "outage".into(),
            description: "The LLM provider answers 503 for 10 s.".into(),
            source: "built-in:outage".into(),
            seed: 7,
            quick: false,
            load: Load {
                executor: Default::default(),
                users: 2,
                duration: Duration::from_secs(30),
                think_time: Duration::from_millis(100),
                request_timeout: Duration::from_secs(20),
                quick_scale: 0.2,
                secrets: Vec::new(),
                flows: vec![Flow {
                    name: "chat".into(),
                    weight: 1,
                    messages: vec!["What is the capital of France?".into()],
                    kind: Default::default(),
                    request: Default::default(),
                }],
            },
            target: TargetSpec {
                ready_path: "/health".into(),
                ready_timeout: Duration::from_secs(5),
                metrics_path: None,
                ..TargetSpec::reference(BTreeMap::new(), vec![])
            },
            api: Default::default(),
            fakes: Default::default(),
            faults: vec![FaultWindow {
                fake: FakeName::Llm,
                route: None,
                start: Duration::from_secs(10),
                end: Duration::from_secs(20),
                rate: 1.0,
                first_attempts: None,
                fault: Fault::status(503, None),
            }],
            expect: Expectations {
                phases: BTreeMap::new(),
                errors: ErrorExpectations::default(),
                ..Expectations::default()
            },
        }
    }

    pub(crate) fn evidence(plan: &Plan) -> Evidence {
        let record = |at_ms: f64, status: Option<u16>, latency_ms: f64| Record {
            at_ms,
            flow: "chat".into(),
            request_id: format!("req-{at_ms}"),
            nonce: "n".into(),
            status,
            latency_ms,
            response_request_id: None,
            body_excerpt: "{}".into(),
            ..Record::default()
        };
        Evidence {
            phases: plan.phases(),
            records: vec![
                record(1_000.0, Some(200), 400.0),
                record(12_000.0, Some(503), 9_800.0),
                record(25_000.0, Some(200), 300.0),
            ]
            .into(),
            duration_ms: 30_000.0,
            ..Evidence::default()
        }
    }

    pub(crate) fn verdict(id: &str, outcome: Outcome) -> Verdict {
        Verdict {
            id: id.into(),
            title: format!("{id} holds"),
            outcome,
            figure: Some(9_800.0),
            limit: Some(9_000.0),
            unit: "ms".into(),
            summary: format!("{id} summary | with a pipe"),
            evidence: vec!["req-12000 flow=chat status=503 latency=9.8 s at=12 s".into()],
        }
    }

    pub(crate) fn meta() -> RunMeta {
        RunMeta {
            // A non-UTC start: the report must still say UTC.
            started_at: datetime!(2025-03-01 14:30:05 +02:00),
            target: "reference target".into(),
        }
    }

    pub(crate) fn report(outcomes: &[(&str, Outcome)]) -> Report {
        let plan = plan();
        let verdicts = outcomes.iter().map(|(id, o)| verdict(id, *o)).collect();
        build(&plan, &meta(), &evidence(&plan), verdicts)
    }

    #[test]
    fn the_report_says_when_in_utc_and_counts_what_was_seen() {
        let report = report(&[]);
        assert_eq!(report.schema, SCHEMA);
        assert_eq!(report.started_at, "2025-03-01T12:30:05Z");
        assert_eq!(report.counts.requests, 3);
        assert_eq!(report.counts.failures, 1);
        let phases: Vec<Phase> = report.phases.iter().map(|p| p.phase).collect();
        assert_eq!(phases, Phase::ALL.to_vec());
        assert_eq!(report.faults[0]["fault"]["code"], 503);
        assert_eq!(
            report.phases[1],
            PhaseStats {
                phase: Phase::Fault,
                start_ms: 10_000.0,
                end_ms: 20_000.0,
                requests: 1,
                failures: 1,
                error_rate: 1.0,
                p50_ms: 9_800.0,
                p95_ms: 9_800.0,
                p99_ms: 9_800.0,
                max_ms: 9_800.0,
            }
        );
    }

    #[test]
    fn not_applicable_verdicts_do_not_fail_the_gate_but_a_failure_does() {
        assert!(report(&[("a", Outcome::Pass), ("b", Outcome::NotApplicable)]).passed);
        let failed = report(&[("a", Outcome::Pass), ("b", Outcome::Fail)]);
        assert!(!failed.passed);
        assert_eq!(
            failed.failed().map(|v| v.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
    }
}
