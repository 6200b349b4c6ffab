//! Everything one run observed, in one value: client records, every fake's journal, the
//! spans the target exported, the target's log lines, snapshots of its metrics endpoint, the
//! timeline and the phases.
//!
//! Checks read only this (no sockets, no clocks), so they can be tested on hand-built evidence.
//! All times are milliseconds from the run's start.

use serde::{Deserialize, Serialize};

mod attempt;
mod names;
mod span;
mod store;
mod summary;
#[cfg(test)]
pub(crate) mod testing;

pub use attempt::{ApiKeySent, Attempt, Exchange, WriteAttempt};
pub use names::FakeName;
pub use span::{SpanRecord, SpanStatus};
pub use store::{
    AttemptStore, CutRecords, Pass, RecordStore, Records, SpanStore, Spool, Spooled, WriteStore,
    ATTEMPTS_FILE, RECORDS_FILE, SPANS_FILE, WRITES_FILE,
};
pub use summary::{EncodedCell, RequestOutcome, Summary};

/// The three phases every scenario is cut into, from its fault timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the first fault starts.
    Baseline,
    /// From the first fault's start to the last fault's end.
    Fault,
    /// After the last fault ends.
    Recovery,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Baseline, Phase::Fault, Phase::Recovery];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::Fault => "fault",
            Phase::Recovery => "recovery",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A phase's place on the run's clock: `[start_ms, end_ms)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub phase: Phase,
    pub start_ms: f64,
    pub end_ms: f64,
}

/// One client request the load sent to the target, and what came back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the request was sent.
    pub at_ms: f64,
    /// The flow (scenario `[[load.flows]]` name) it belongs to.
    pub flow: String,
    /// What kind of request the flow sends.
    #[serde(default)]
    pub kind: FlowKind,
    /// The id faultline sent in `x-request-id`.
    pub request_id: String,
    /// The nonce faultline put in the user text, for finding the request in fakes' journals.
    pub nonce: String,
    /// HTTP status; `None` when no answer came (connection error, client timeout, run ended).
    pub status: Option<u16>,
    /// Milliseconds from send to the full answer (or to giving up). For the arrival-rate
    /// executors, from the *intended* send time (the response time a user arriving then saw,
    /// free of coordinated omission); `at_ms` is then that intended time too.
    pub latency_ms: f64,
    /// For the arrival-rate executors: milliseconds from the actual send to the full answer
    /// (service time). `None` for closed users, whose send is never late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_ms: Option<f64>,
    /// The request id the target reported back (response header or body), if any.
    pub response_request_id: Option<String>,
    /// The start of the response body, bounded (see [`Record::EXCERPT_LIMIT`]).
    pub body_excerpt: String,
    /// Why the request failed on the client side: `timeout`, `connect`, `unfinished`, …
    pub error: Option<String>,
    /// The target's degraded-mode marker in the answer (`degraded: true`, a banner), if the
    /// answer had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<bool>,
    /// The target's cache marker in the answer (`cacheHit`), if the answer had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit: Option<bool>,
    /// For streamed answers: how the stream went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamTiming>,
}

/// How well the load generator kept to its own schedule. For the arrival-rate executors a
/// generator that fell behind (arrivals dropped for want of a free slot, or sent late) did not
/// apply the load asked for, so the run cannot be judged: see [`LoadStats::fell_behind`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadStats {
    /// `closed`, `constant_rate`, `ramping_rate` or `ramping_users`.
    pub executor: String,
    /// Arrivals the schedule asked for during the run (open executors; 0 for users).
    pub asked: u64,
    /// Requests sent.
    pub sent: u64,
    /// Arrivals dropped because `max_in_flight` requests were unanswered.
    pub dropped: u64,
    /// Arrivals sent more than `late_limit_ms` after their intended time.
    pub late: u64,
    pub late_limit_ms: f64,
    /// How late sends were: 99th percentile and worst, milliseconds.
    pub lateness_p99_ms: f64,
    pub lateness_max_ms: f64,
    /// Arrivals per second asked for and sent, over the run.
    pub asked_rate: f64,
    pub achieved_rate: f64,
    /// Why the run is invalid because the generator fell behind (`None`: it kept up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fell_behind: Option<String>,
    /// A distributed run's load workers, each with its share and how it ended (empty for a
    /// run in one process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerAccount>,
    /// Why the run is invalid because workers were lost with more of the load than the run
    /// allows (`None`: within the limit, or one process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_load: Option<String>,
}

/// One load worker of a distributed run, as the coordinator saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerAccount {
    /// Its `--index`.
    pub index: usize,
    /// Its part of the load (0..1): its arrivals' or users' share of the whole.
    pub share: f64,
    /// Requests it reported (for a lost worker: the last count it streamed before it went).
    pub sent: u64,
    /// Why its share is lost (`None`: it reported its results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
}

/// What a flow asks the target to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// A question answered in one JSON body.
    #[default]
    Chat,
    /// A question answered as a stream (SSE).
    Stream,
    /// An agent request: the LLM may call tools in a loop.
    Agent,
    /// A write through a tool (e.g. creating a ticket): must not be duplicated by retries.
    Write,
}

/// How one streamed answer arrived.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamTiming {
    /// Milliseconds from send to the first content event; `None` if none came.
    pub first_token_ms: Option<f64>,
    /// Gaps between consecutive content events, in milliseconds (bounded: the first 1000).
    pub gaps_ms: Vec<f64>,
    /// Content events received.
    pub events: u32,
    /// How the stream ended.
    pub end: StreamEnd,
}

/// The way a stream ended, as the client saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// A final event (or `[DONE]`) closed it properly.
    #[default]
    Complete,
    /// An explicit error event told the user what went wrong.
    ErrorEvent,
    /// The connection closed mid-stream with no final or error event.
    Cut,
    /// Nothing more came until the client gave up (or the run ended).
    Stalled,
}

impl Record {
    /// Bytes of response body kept per record.
    pub const EXCERPT_LIMIT: usize = 2048;

    /// Did the user get a good answer? (2xx)
    pub fn succeeded(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// Which stream of the target a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// A log file the target writes (`[target] log_file`).
    File,
}

/// One line the target wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at_ms: f64,
    pub stream: LogStream,
    pub text: String,
}

/// What the bounds on a target's output cost (see `target::logs`): lines not kept, cut, or
/// decoded lossily.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogLoss {
    /// Lines pushed out of the ring of kept lines (the oldest go first).
    pub dropped: u64,
    /// Of those, lines written after the load started: the ones log checks would have read.
    pub dropped_in_load: u64,
    /// Lines cut at the line-length bound.
    pub cut: u64,
    /// Lines that were not UTF-8 (kept, with U+FFFD for the bad bytes).
    pub not_utf8: u64,
}

/// A target faultline started that exited before faultline stopped it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetCrash {
    /// `exit status: 3`, `signal: 9 (SIGKILL)`, …
    pub status: String,
    /// Its last output lines, oldest first.
    pub last_lines: Vec<String>,
}

/// A fault switched on or off by the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub at_ms: f64,
    /// Which fake: `llm`, `weather`, `redis`.
    pub fake: String,
    /// The fault's kind (`status`, `hang`, …).
    #[serde(default)]
    pub kind: String,
    /// The fault, as `Fault::label` writes it.
    pub fault: String,
    /// The route it is scoped to, if any.
    pub route: Option<String>,
    /// `true` when switched on, `false` when switched off.
    pub on: bool,
}

/// The target's metrics endpoint, read at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub at_ms: f64,
    /// The JSON body; for the Prometheus format, the exposition text as a JSON string.
    pub body: serde_json::Value,
    #[serde(default)]
    pub format: MetricsFormat,
}

/// How a metrics endpoint writes its figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsFormat {
    /// A JSON object; figures are JSON pointers.
    #[default]
    Json,
    /// The Prometheus text exposition format; figures are series selectors.
    Prometheus,
}

impl MetricsFormat {
    pub fn name(self) -> &'static str {
        match self {
            MetricsFormat::Json => "json",
            MetricsFormat::Prometheus => "prometheus",
        }
    }
}

/// Everything a run observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Planned phases on the run's clock.
    pub phases: Vec<PhaseSpan>,
    /// Fault switches in the order they happened.
    pub timeline: Vec<TimelineEvent>,
    /// Client requests, in the order their answers completed: a stream on disk read back
    /// pass by pass (see [`RecordStore`]); `evidence.json` names its file.
    pub records: RecordStore,
    /// Upstream attempts seen by every fake, in the order they ended: a stream on disk like
    /// `records` (`evidence.json` names its file; older files held them inline).
    pub attempts: AttemptStore,
    /// Attempts not kept: past the cap of `attempts`, or pushed out of a remote fake's
    /// bounded journal (so `attempts` is partial when > 0).
    pub attempts_dropped: u64,
    /// The target's output lines (empty when its logs were not captured).
    pub logs: Vec<LogLine>,
    /// What the bounds on the target's output cost (so `logs` is partial when lines dropped).
    #[serde(default)]
    pub logs_lost: LogLoss,
    /// Metrics endpoint snapshots (empty when the target has none): one after the warm-up,
    /// before the load, and one after the load.
    pub metrics: Vec<MetricsSnapshot>,
    /// True when this run started the target: its counters began with the fakes' journals,
    /// so a ratio such as the cache hit ratio can be compared whole.
    #[serde(default)]
    pub target_started: bool,
    /// Set when the target faultline started exited on its own during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_crash: Option<TargetCrash>,
    /// Writes the tool fakes received (empty when no write flow ran): a stream on disk.
    #[serde(default)]
    pub writes: WriteStore,
    /// Secrets planted for the run (the fake LLM's API key, passwords and card numbers put in
    /// user text) that must never show up in logs, answers or reports.
    #[serde(default)]
    pub canaries: Vec<String>,
    /// Why some evidence is missing (e.g. "logs not captured: attached target"), so checks
    /// that need it say "not applicable" with the reason.
    #[serde(default)]
    pub gaps: Vec<String>,
    /// Spans the target exported to the OTLP collector fake (empty when it exported none): a
    /// stream on disk.
    #[serde(default)]
    pub spans: SpanStore,
    /// Spans not kept: past the cap of `spans`, or pushed out of a remote collector's bounded
    /// journal (so `spans` is partial when > 0).
    #[serde(default)]
    pub spans_dropped: u64,
    /// How the load generator kept to its schedule (arrivals asked, sent, dropped, late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadStats>,
    /// How long the run lasted on the load's clock.
    pub duration_ms: f64,
    /// True when the run was cut short (Ctrl-C): what is here is what was measured.
    pub interrupted: bool,
}

impl Evidence {
    /// The phase a moment of the run belongs to; moments past the last phase count as its own.
    pub fn phase_at(&self, at_ms: f64) -> Option<Phase> {
        self.phases
            .iter()
            .find(|span| at_ms >= span.start_ms && at_ms < span.end_ms)
            .or_else(|| self.phases.last().filter(|span| at_ms >= span.end_ms))
            .map(|span| span.phase)
    }

    /// The phase a client request is judged in. A request still in flight when a fault started,
    /// or sent during one and answered after it ended, felt the fault: it counts in the fault
    /// phase. Otherwise it counts where it was sent. (Judging by send time alone would blame
    /// the baseline for requests that the fault broke a moment later.)
    pub fn phase_of(&self, record: &Record) -> Option<Phase> {
        let end_ms = record.at_ms + record.latency_ms;
        let overlaps_fault = self.phases.iter().any(|span| {
            span.phase == Phase::Fault && record.at_ms < span.end_ms && end_ms > span.start_ms
        });
        if overlaps_fault {
            Some(Phase::Fault)
        } else {
            self.phase_at(record.at_ms)
        }
    }

    /// The client records judged in `phase` (see [`Evidence::phase_of`]).
    pub fn records_in(&self, phase: Phase) -> impl Iterator<Item = Record> + '_ {
        self.records
            .iter()
            .filter(move |r| self.phase_of(r) == Some(phase))
    }

    /// Opens the files that `evidence.json` in `dir` names (records, attempts, writes,
    /// spans); evidence written before they had files holds them inline and needs nothing.
    pub fn attach(&mut self, dir: &std::path::Path) -> std::io::Result<()> {
        self.records.attach(dir)?;
        self.attempts.attach(dir)?;
        self.writes.attach(dir)?;
        self.spans.attach(dir)
    }

    /// Counts and latency histograms per phase × flow × outcome, in one pass.
    pub fn summary(&self) -> Summary {
        Summary::of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases() -> Vec<PhaseSpan> {
        vec![
            PhaseSpan {
                phase: Phase::Baseline,
                start_ms: 0.0,
                end_ms: 100.0,
            },
            PhaseSpan {
                phase: Phase::Fault,
                start_ms: 100.0,
                end_ms: 200.0,
            },
            PhaseSpan {
                phase: Phase::Recovery,
                start_ms: 200.0,
                end_ms: 300.0,
            },
        ]
    }

    #[test]
    fn moments_fall_in_their_phase_and_late_ones_in_the_last() {
        let evidence = Evidence {
            phases: phases(),
            ..Evidence::default()
        };
        assert_eq!(evidence.phase_at(0.0), Some(Phase::Baseline));
        assert_eq!(evidence.phase_at(100.0), Some(Phase::Fault));
        assert_eq!(evidence.phase_at(299.9), Some(Phase::Recovery));
        assert_eq!(evidence.phase_at(450.0), Some(Phase::Recovery));
    }

    fn record(at_ms: f64, latency_ms: f64) -> Record {
        Record {
            at_ms,
            flow: "ask".into(),
            request_id: "r".into(),
            nonce: "n".into(),
            status: Some(200),
            latency_ms,
            ..Record::default()
        }
    }

    #[test]
    fn requests_in_flight_across_a_fault_boundary_count_in_the_fault_phase() {
        let evidence = Evidence {
            phases: phases(),
            ..Evidence::default()
        };
        assert_eq!(
            evidence.phase_of(&record(10.0, 50.0)),
            Some(Phase::Baseline)
        );
        assert_eq!(evidence.phase_of(&record(95.0, 10.0)), Some(Phase::Fault));
        assert_eq!(evidence.phase_of(&record(195.0, 10.0)), Some(Phase::Fault));
        assert_eq!(
            evidence.phase_of(&record(200.0, 10.0)),
            Some(Phase::Recovery)
        );
        assert_eq!(evidence.phase_of(&record(50.0, 300.0)), Some(Phase::Fault));
    }
}
