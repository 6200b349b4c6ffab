//! Streamed answers (`stream.first_token`, `stream.inter_token`, `stream.ends_clearly`).
//!
//! For a streamed answer the user's wait is time to first token, then the gaps between tokens;
//! p95 of each is held to a limit (the lesson's "llm_latency_ms p50/p95: SLA and
//! regressions"). And "honest messages beat silent hangs": when the provider cuts or stalls a
//! stream, the target must close the user's stream with an error event, not leave it cut or
//! hanging. Timings are the client's own (goose does not time streamed bodies).

use super::common::{bounded, not_applicable, pending, quantile};
use super::sla::{describe_record, format_ms};
use super::{Outcome, Verdict};
use crate::evidence::{Evidence, Record, StreamEnd};
use crate::scenario::StreamExpectations;

pub fn check(evidence: &Evidence, expect: &StreamExpectations) -> Vec<Verdict> {
    let streams: Vec<Record> = evidence
        .records
        .iter()
        .filter(|r| r.stream.is_some())
        .collect();
    vec![
        check_first_token(&streams, expect),
        check_inter_token(&streams, expect),
        check_ends_clearly(&streams),
    ]
}

const NO_STREAMS: &str =
    "no streamed answers were requested, so stream timing could not be judged.";

fn timed_check(
    id: &str,
    title: String,
    limit_ms: f64,
    samples: Vec<(f64, &Record)>,
    streams: usize,
    what: &str,
) -> Verdict {
    let mut v = pending(id, title, "ms", Some(limit_ms));
    if streams == 0 {
        return not_applicable(v, NO_STREAMS);
    }
    if samples.is_empty() {
        return not_applicable(
            v,
            format!("none of the {streams} streams gave a {what}, so it could not be timed."),
        );
    }
    let values: Vec<f64> = samples.iter().map(|(ms, _)| *ms).collect();
    let p95 = quantile(&values, 0.95);
    v.figure = Some(p95);
    let seen = format!(
        "p95 {what} was {} over {} samples",
        format_ms(p95),
        values.len()
    );
    if p95 <= limit_ms {
        v.outcome = Outcome::Pass;
        v.summary = format!("{seen}, within the {} limit.", format_ms(limit_ms));
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!("{seen}, over the {} limit.", format_ms(limit_ms));
        let mut slow = samples;
        slow.sort_by(|a, b| b.0.total_cmp(&a.0));
        // One line per stream (its worst sample), not one per gap.
        let mut shown: Vec<*const Record> = Vec::new();
        slow.retain(|(_, r)| {
            let seen = shown.contains(&std::ptr::from_ref(*r));
            shown.push(std::ptr::from_ref(*r));
            !seen
        });
        v.evidence = bounded(
            slow.iter()
                .map(|(ms, r)| format!("{} {what}={}", describe_record(r), format_ms(*ms)))
                .collect(),
        );
    }
    v
}

/// `stream.first_token`: p95 time from send to the first content event.
fn check_first_token(streams: &[Record], expect: &StreamExpectations) -> Verdict {
    let limit = expect.first_token_p95.as_secs_f64() * 1000.0;
    let samples = streams
        .iter()
        .filter_map(|r| Some((r.stream.as_ref()?.first_token_ms?, r)))
        .collect();
    timed_check(
        "stream.first_token",
        format!("p95 time to first token stays within {}", format_ms(limit)),
        limit,
        samples,
        streams.len(),
        "first token",
    )
}

/// `stream.inter_token`: p95 gap between consecutive content events.
fn check_inter_token(streams: &[Record], expect: &StreamExpectations) -> Verdict {
    let limit = expect.inter_token_p95.as_secs_f64() * 1000.0;
    let samples = streams
        .iter()
        .flat_map(|r| {
            r.stream
                .iter()
                .flat_map(move |s| s.gaps_ms.iter().map(move |g| (*g, r)))
        })
        .collect();
    timed_check(
        "stream.inter_token",
        format!("p95 gap between tokens stays within {}", format_ms(limit)),
        limit,
        samples,
        streams.len(),
        "inter-token gap",
    )
}

/// `stream.ends_clearly`: every stream ends with a final event or an error event.
fn check_ends_clearly(streams: &[Record]) -> Verdict {
    let mut v = pending(
        "stream.ends_clearly",
        "every stream ends with a final or an error event, never cut or stalled".into(),
        "streams",
        Some(0.0),
    );
    if streams.is_empty() {
        return not_applicable(v, NO_STREAMS);
    }
    let broken: Vec<String> = streams
        .iter()
        .filter_map(|r| {
            let s = r.stream.as_ref()?;
            let how = match s.end {
                StreamEnd::Cut => "cut mid-stream with no final or error event",
                StreamEnd::Stalled => "stalled: nothing more came until the client gave up",
                StreamEnd::Complete | StreamEnd::ErrorEvent => return None,
            };
            Some(format!(
                "{} after {} events: {how}",
                describe_record(r),
                s.events
            ))
        })
        .collect();
    let errors = streams
        .iter()
        .filter(|r| {
            r.stream
                .as_ref()
                .is_some_and(|s| s.end == StreamEnd::ErrorEvent)
        })
        .count();
    v.figure = Some(broken.len() as f64);
    if broken.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "all {} streams ended clearly ({errors} with an error event).",
            streams.len()
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {} streams were left cut or stalled: the user sees half an answer and no \
             word of what went wrong.",
            broken.len(),
            streams.len()
        );
        v.evidence = bounded(broken);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::{Phase, StreamTiming};

    fn evidence(first: f64, gap: f64, end: StreamEnd) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 5, Some(200), 2_000.0)
            .build();
        e.records.edit(|rs| {
            for r in rs.iter_mut() {
                r.stream = Some(StreamTiming {
                    first_token_ms: Some(first),
                    gaps_ms: vec![gap; 10],
                    events: 11,
                    end: StreamEnd::Complete,
                });
            }
        });
        e.records
            .edit(|rs| rs[4].stream.as_mut().unwrap().end = end);
        e
    }

    fn find(e: &Evidence, id: &str) -> Verdict {
        check(e, &StreamExpectations::default())
            .into_iter()
            .find(|v| v.id == id)
            .expect(id)
    }

    #[test]
    fn quick_streams_that_end_clearly_pass() {
        let e = evidence(400.0, 40.0, StreamEnd::ErrorEvent);
        for id in [
            "stream.first_token",
            "stream.inter_token",
            "stream.ends_clearly",
        ] {
            assert_eq!(find(&e, id).outcome, Outcome::Pass, "{:#?}", find(&e, id));
        }
        assert!(find(&e, "stream.ends_clearly")
            .summary
            .contains("1 with an error event"));
    }

    #[test]
    fn slow_first_tokens_and_gaps_fail() {
        let e = evidence(5_000.0, 900.0, StreamEnd::Complete);
        let v = find(&e, "stream.first_token");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(5_000.0));
        assert!(
            v.evidence[0].ends_with("first token=5 s"),
            "{:?}",
            v.evidence
        );
        let v = find(&e, "stream.inter_token");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.evidence.len(), 5, "one line per stream, not per gap");
    }

    #[test]
    fn a_cut_stream_without_an_error_event_fails() {
        let v = find(
            &evidence(400.0, 40.0, StreamEnd::Cut),
            "stream.ends_clearly",
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(1.0));
        assert!(v.evidence[0].contains("cut mid-stream"), "{:?}", v.evidence);
        let v = find(
            &evidence(400.0, 40.0, StreamEnd::Stalled),
            "stream.ends_clearly",
        );
        assert!(v.evidence[0].contains("stalled"));
    }

    #[test]
    fn without_streams_every_stream_check_is_not_applicable() {
        let e = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        for v in check(&e, &StreamExpectations::default()) {
            assert_eq!(v.outcome, Outcome::NotApplicable);
            assert_eq!(v.summary, NO_STREAMS);
        }
    }
}
