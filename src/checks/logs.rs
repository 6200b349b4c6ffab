//! Structured logs (`logs.*`): what an operator grepping at 2 a.m. will find.
//!
//! The lesson: "One JSON line per request — easy to query", with a `requestId`, `inputTokens`
//! and `outputTokens`; "show request ID in support-facing errors so users can report issues you
//! can grep"; "Never log: API keys, raw passwords, full credit card numbers." So each answered
//! request has exactly one JSON summary line (`logs.one_line_per_request`), the id the user was
//! shown is in the logs (`logs.request_id`), the logged tokens equal the provider's `usage`
//! (`logs.tokens`), and no planted secret shows up in logs or answers (`logs.no_secrets`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::common::{
    attempts_per_record, bounded, field, gap_about, json_line, not_applicable, pending,
};
use super::sla::format_ratio;
use super::{Outcome, Verdict};
use crate::evidence::FakeName;
use crate::evidence::{Evidence, Record};
use crate::scenario::LogExpectations;

/// Canaries shorter than this are not searched for: they would match by chance.
const MIN_CANARY_CHARS: usize = 6;

pub fn check(evidence: &Evidence, expect: &LogExpectations) -> Vec<Verdict> {
    let lines: Vec<(usize, Map<String, Value>)> = evidence
        .logs
        .iter()
        .enumerate()
        .filter_map(|(i, l)| json_line(&l.text).map(|j| (i, j)))
        .collect();
    vec![
        check_one_line(evidence, &lines, expect),
        check_request_id(evidence),
        check_tokens(evidence, &lines, expect),
        check_no_secrets(evidence),
    ]
}

/// Why log checks cannot be made: the logs were not captured, or the capture's bounds pushed
/// out lines written during the load (a missing line could be one of them).
fn no_logs(evidence: &Evidence) -> Option<String> {
    if let Some(lost) = lines_lost(evidence) {
        return Some(lost);
    }
    evidence
        .logs
        .is_empty()
        .then(|| match gap_about(evidence, "log") {
            Some(gap) => format!("the target's logs are missing ({gap})"),
            None => "the target wrote no log lines that were captured".into(),
        })
}

/// "N lines … dropped" when the capture's bounds pushed out lines written during the load.
pub(crate) fn lines_lost(evidence: &Evidence) -> Option<String> {
    let lost = evidence.logs_lost.dropped_in_load;
    (lost > 0).then(|| {
        format!(
            "{lost} lines the target wrote during the load were dropped by faultline's bound \
             on kept log lines (see \"What faultline guarantees\" in the README)"
        )
    })
}

/// The field (a name or a dotted path) as text, whether written as a string or a number.
fn text_of(line: &Map<String, Value>, path: &str) -> Option<String> {
    match field(line, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn count_of(line: &Map<String, Value>, path: &str) -> Option<u64> {
    match field(line, path)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The JSON lines by the request id they carry in the request id field: built once per check,
/// so finding a request's lines is a lookup, not a scan of every line per request (which made
/// a 60,000-request run spend minutes here).
struct LinesById<'a> {
    by_id: HashMap<String, Vec<&'a Map<String, Value>>>,
}

impl<'a> LinesById<'a> {
    fn of(lines: &'a [(usize, Map<String, Value>)], expect: &LogExpectations) -> Self {
        let mut by_id: HashMap<String, Vec<&Map<String, Value>>> = HashMap::new();
        for (_, j) in lines {
            if let Some(id) = text_of(j, &expect.request_id_field) {
                by_id.entry(id).or_default().push(j);
            }
        }
        LinesById { by_id }
    }

    /// The lines naming the id faultline sent, or the one the target answered with if it made
    /// its own (each line once).
    fn naming(&self, r: &Record) -> impl Iterator<Item = &'a Map<String, Value>> + '_ {
        let own = self.by_id.get(r.request_id.as_str());
        let answered = r
            .response_request_id
            .as_deref()
            .filter(|id| *id != r.request_id)
            .and_then(|id| self.by_id.get(id));
        own.into_iter()
            .chain(answered)
            .flat_map(|found| found.iter().copied())
    }
}

/// The request's summary lines: JSON lines naming its id that carry the token totals.
fn summaries<'a>(
    r: &Record,
    lines: &LinesById<'a>,
    expect: &LogExpectations,
) -> Vec<&'a Map<String, Value>> {
    lines
        .naming(r)
        .filter(|j| {
            field(j, &expect.input_tokens_field).is_some()
                && field(j, &expect.output_tokens_field).is_some()
        })
        .collect()
}

/// Whether some JSON line carries the request's id in the request id field.
fn names_it(r: &Record, lines: &LinesById<'_>) -> bool {
    lines.naming(r).next().is_some()
}

/// The fields (top-level keys) of the JSON lines whose text holds the request's id, sorted.
fn fields_naming(
    evidence: &Evidence,
    lines: &[(usize, Map<String, Value>)],
    r: &Record,
) -> Vec<String> {
    let mut fields: Vec<String> = lines
        .iter()
        .filter(|(i, _)| evidence.logs[*i].text.contains(&r.request_id))
        .flat_map(|(_, j)| j.keys().cloned())
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

/// `logs.one_line_per_request`: every answered request has exactly one JSON summary line; a
/// failed one may instead have JSON lines naming it without token figures.
fn check_one_line(
    evidence: &Evidence,
    lines: &[(usize, Map<String, Value>)],
    expect: &LogExpectations,
) -> Verdict {
    let mut v = pending(
        "logs.one_line_per_request",
        format!(
            "each answered request has exactly one JSON log line with its {}, {} and {}",
            expect.request_id_field, expect.input_tokens_field, expect.output_tokens_field
        ),
        "requests",
        Some(0.0),
    );
    if let Some(why) = no_logs(evidence) {
        return not_applicable(
            v,
            format!("{why}, so per-request lines could not be checked."),
        );
    }
    // Passes over the records' stream rather than a list of every answered request.
    let answered = || evidence.records.iter().filter(|r| r.status.is_some());
    let answered_count = answered().count();
    if answered_count == 0 {
        return not_applicable(
            v,
            "no request was answered, so per-request lines could not be checked.",
        );
    }
    let by_id = LinesById::of(lines, expect);
    let mut bad = Vec::new();
    for r in answered() {
        let r = &r;
        let n = summaries(r, &by_id, expect).len();
        // A failed request may have no token figures to log: the lesson's own error path logs
        // `{ requestId, err }` and nothing else, and a provider that never answered reported
        // no usage. One JSON line naming it, with or without tokens, is its summary; two lines
        // with token totals are still a double count.
        let failed_and_logged = !r.succeeded() && n == 0 && names_it(r, &by_id);
        if n != 1 && !failed_and_logged {
            let plain = evidence
                .logs
                .iter()
                .find(|l| l.text.contains(&r.request_id) && json_line(&l.text).is_none());
            let mut line = format!(
                "{} {}: {n} JSON lines with {}=\"{}\" and token fields",
                r.request_id,
                super::sla::outcome_of(r),
                expect.request_id_field,
                r.request_id
            );
            if let Some(p) = plain {
                line.push_str(&format!(
                    "; a plain-text line names it: {}",
                    super::sla::excerpt(&p.text)
                ));
            } else if n == 0 {
                // Lines that name the request under other field names: say which fields they
                // have, so a wrong [logs] field name shows for what it is.
                let fields = fields_naming(evidence, lines, r);
                if !fields.is_empty() {
                    line.push_str(&format!(
                        "; the JSON lines naming it have fields {}",
                        fields.join(", ")
                    ));
                }
            }
            bad.push(line);
        }
    }
    v.figure = Some(bad.len() as f64);
    if bad.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "each of the {} answered requests has exactly one JSON summary line.",
            answered_count
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {} answered requests do not have exactly one JSON line with {}, {} and {}: \
             an operator cannot find a request's cost and outcome with one query.",
            bad.len(),
            answered_count,
            expect.request_id_field,
            expect.input_tokens_field,
            expect.output_tokens_field
        );
        v.evidence = bounded(bad);
    }
    v
}

/// `logs.request_id`: the request id the user was shown can be found in the logs.
fn check_request_id(evidence: &Evidence) -> Verdict {
    let mut v = pending(
        "logs.request_id",
        "the request id a response shows the user appears in the logs".into(),
        "requests",
        Some(0.0),
    );
    if let Some(why) = no_logs(evidence) {
        return not_applicable(v, format!("{why}, so request ids could not be looked up."));
    }
    let shown: Vec<(Record, String)> = evidence
        .records
        .iter()
        .filter_map(|r| {
            let id = r
                .response_request_id
                .clone()
                .filter(|id| !id.trim().is_empty())?;
            Some((r, id))
        })
        .collect();
    if shown.is_empty() {
        return not_applicable(
            v,
            "no response reported a request id, so there was none to look up in the logs.",
        );
    }
    let missing: Vec<String> = shown
        .iter()
        .filter(|(_, id)| !evidence.logs.iter().any(|l| l.text.contains(id)))
        .map(|(r, id)| {
            format!(
                "{} {}: id \"{id}\" not in any log line",
                r.request_id,
                super::sla::outcome_of(r)
            )
        })
        .collect();
    v.figure = Some(missing.len() as f64);
    if missing.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "all {} request ids shown to users appear in the logs.",
            shown.len()
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "{} of {} request ids shown to users appear in no log line: a user reporting one \
             gives support nothing to grep.",
            missing.len(),
            shown.len()
        );
        v.evidence = bounded(missing);
    }
    v
}

/// `logs.tokens`: the token counts logged for a request equal the provider's `usage`.
fn check_tokens(
    evidence: &Evidence,
    lines: &[(usize, Map<String, Value>)],
    expect: &LogExpectations,
) -> Verdict {
    let mut v = pending(
        "logs.tokens",
        format!(
            "logged {} and {} equal the provider's usage on {} (within {})",
            expect.input_tokens_field,
            expect.output_tokens_field,
            expect.tokens_route,
            format_ratio(expect.tokens_tolerance)
        ),
        "requests",
        Some(0.0),
    );
    if let Some(why) = no_logs(evidence) {
        return not_applicable(v, format!("{why}, so logged tokens could not be compared."));
    }
    let linked = attempts_per_record(evidence);
    let by_id = LinesById::of(lines, expect);
    let mut judged = 0;
    let mut wrong = Vec::new();
    for r in evidence.records.iter() {
        let usage: Vec<_> = linked
            .of(&r)
            .into_iter()
            .filter(|a| a.fake == FakeName::Llm && a.route.starts_with(&expect.tokens_route))
            .filter(|a| a.input_tokens.is_some() || a.output_tokens.is_some())
            .collect();
        if usage.is_empty() {
            continue;
        }
        let [line] = summaries(&r, &by_id, expect)[..] else {
            continue;
        };
        let truth_in: u64 = usage.iter().filter_map(|a| a.input_tokens).sum();
        let truth_out: u64 = usage.iter().filter_map(|a| a.output_tokens).sum();
        let logged_in = count_of(line, &expect.input_tokens_field);
        let logged_out = count_of(line, &expect.output_tokens_field);
        judged += 1;
        let close = |logged: Option<u64>, truth: u64| {
            logged.is_some_and(|l| {
                (l as f64 - truth as f64).abs() <= expect.tokens_tolerance * truth as f64
            })
        };
        if !close(logged_in, truth_in) || !close(logged_out, truth_out) {
            let shown = |n: Option<u64>| n.map_or("missing".into(), |n| n.to_string());
            wrong.push(format!(
                "{}: logged {} in / {} out, the provider's usage over {} attempts was {truth_in} \
                 in / {truth_out} out",
                r.request_id,
                shown(logged_in),
                shown(logged_out),
                usage.len()
            ));
        }
    }
    if judged == 0 {
        return not_applicable(
            v,
            format!(
                "no request had both a JSON summary line and provider usage on {} linked to it, \
                 so logged tokens could not be compared.",
                expect.tokens_route
            ),
        );
    }
    v.figure = Some(wrong.len() as f64);
    if wrong.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary =
            format!("logged tokens match the provider's usage for all {judged} requests compared.");
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "logged tokens differ from the provider's usage for {} of {judged} requests: cost \
             forecasts built on these logs are wrong (retries' tokens are often the ones missed).",
            wrong.len()
        );
        v.evidence = bounded(wrong);
    }
    v
}

/// A canary shown safely: its first four characters and its length.
fn masked(canary: &str) -> String {
    let head: String = canary.chars().take(4).collect();
    format!("{head}… ({} chars)", canary.chars().count())
}

/// `logs.no_secrets`: no planted secret appears in a log line or a response body.
fn check_no_secrets(evidence: &Evidence) -> Verdict {
    let mut v = pending(
        "logs.no_secrets",
        "planted secrets (API key, passwords, card numbers) appear in no log line or answer".into(),
        "leaks",
        Some(0.0),
    );
    let canaries: Vec<&str> = evidence
        .canaries
        .iter()
        .map(String::as_str)
        .filter(|c| c.chars().count() >= MIN_CANARY_CHARS)
        .collect();
    if canaries.is_empty() {
        return not_applicable(
            v,
            "no secrets were planted for the run, so leaks could not be looked for.",
        );
    }
    let mut leaks = Vec::new();
    for l in &evidence.logs {
        for c in canaries.iter().filter(|c| l.text.contains(**c)) {
            leaks.push(format!(
                "log line at {} ({:?}) holds {}",
                super::sla::format_ms(l.at_ms),
                l.stream,
                masked(c)
            ));
        }
    }
    for r in evidence.records.iter() {
        for c in canaries.iter().filter(|c| r.body_excerpt.contains(**c)) {
            leaks.push(format!("response to {} holds {}", r.request_id, masked(c)));
        }
    }
    v.figure = Some(leaks.len() as f64);
    let searched = match no_logs(evidence) {
        Some(why) => format!("response bodies only ({why})"),
        None => format!(
            "{} log lines and {} response bodies",
            evidence.logs.len(),
            evidence.records.len()
        ),
    };
    if leaks.is_empty() {
        if let Some(lost) = lines_lost(evidence) {
            return not_applicable(
                v,
                format!("no planted secret appears in {searched}, but {lost}."),
            );
        }
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "none of the {} planted secrets appears in {searched}.",
            canaries.len()
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "planted secrets appear {} times in {searched}: anyone who can read the logs can \
             now use the key or see the user's password or card.",
            leaks.len()
        );
        v.evidence = bounded(leaks);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::{LogLine, LogStream, Phase};

    const CHAT: &str = "/v1/chat/completions";

    fn log(text: String) -> LogLine {
        LogLine {
            at_ms: 1_000.0,
            stream: LogStream::Stdout,
            text,
        }
    }

    /// Three answered requests, each with a chat attempt using 10 in / 4 out, an embeddings
    /// attempt using 6 in, and one summary line logging `logged_in` / 4.
    fn evidence(logged_in: u64) -> Evidence {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        for r in e.records.to_vec() {
            let mut chat = attempt(r.at_ms + 5.0, "llm", CHAT, &r.nonce, Some(200), 50.0);
            chat.input_tokens = Some(10);
            chat.output_tokens = Some(4);
            let mut embed = attempt(
                r.at_ms + 1.0,
                "llm",
                "/v1/embeddings",
                &r.nonce,
                Some(200),
                5.0,
            );
            embed.input_tokens = Some(6);
            e.attempts.extend([embed, chat]);
            e.logs.push(log(format!(
                r#"{{"level":"info","requestId":"{}","inputTokens":{logged_in},"outputTokens":4}}"#,
                r.request_id
            )));
            e.logs.push(log(format!(
                r#"{{"level":"warn","event":"slow","requestId":"{}"}}"#,
                r.request_id
            )));
        }
        e
    }

    fn find(e: &Evidence, id: &str) -> Verdict {
        check(e, &LogExpectations::default())
            .into_iter()
            .find(|v| v.id == id)
            .expect(id)
    }

    #[test]
    fn one_summary_line_per_request_with_true_tokens_passes() {
        let e = evidence(10);
        for id in [
            "logs.one_line_per_request",
            "logs.request_id",
            "logs.tokens",
        ] {
            assert_eq!(find(&e, id).outcome, Outcome::Pass, "{:#?}", find(&e, id));
        }
    }

    #[test]
    fn field_names_of_the_services_own_reach_into_objects() {
        let mut e = evidence(10);
        for line in &mut e.logs {
            line.text = line.text.replace("\"requestId\"", "\"req_id\"").replace(
                "\"inputTokens\":10,\"outputTokens\":4",
                "\"usage\":{\"in\":10,\"out\":4}",
            );
        }
        // Judged by the default names, the lines are not found, and the evidence says why.
        let v = find(&e, "logs.one_line_per_request");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.evidence[0]
                .ends_with("the JSON lines naming it have fields event, level, req_id, usage"),
            "{:?}",
            v.evidence
        );
        let expect = LogExpectations {
            request_id_field: "req_id".into(),
            input_tokens_field: "usage.in".into(),
            output_tokens_field: "usage.out".into(),
            ..LogExpectations::default()
        };
        for v in check(&e, &expect).into_iter().take(3) {
            assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        }
    }

    #[test]
    fn a_missing_or_doubled_summary_line_fails() {
        let mut e = evidence(10);
        e.logs.remove(0);
        let extra = e.logs[1].clone();
        e.logs.push(extra);
        let v = find(&e, "logs.one_line_per_request");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(2.0));
        assert!(
            v.evidence[0].starts_with("req-1 status=200: 0 JSON lines"),
            "{:?}",
            v.evidence
        );
        assert!(
            v.evidence[1].starts_with("req-2 status=200: 2 JSON lines"),
            "{:?}",
            v.evidence
        );
    }

    #[test]
    fn a_failed_request_needs_a_line_naming_it_but_no_token_figures() {
        // The lesson's error path: `logger.error({ requestId, err })`, no tokens.
        let mut e = evidence(10);
        e.records.edit(|rs| rs[0].status = Some(504));
        let first = e.records.to_vec()[0].request_id.clone();
        e.logs.remove(0);
        let v = find(&e, "logs.one_line_per_request");
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        // Not logged at all: nothing an operator could find.
        e.logs
            .retain(|l| !l.text.contains(&format!("\"{}\"", first)));
        let v = find(&e, "logs.one_line_per_request");
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert!(
            v.evidence[0].starts_with(&format!("{} status=504: 0 JSON lines", first)),
            "{:?}",
            v.evidence
        );
        // Two lines with token totals for a failure: still a double count.
        let mut e = evidence(10);
        e.records.edit(|rs| rs[1].status = Some(504));
        let extra = e.logs[2].clone();
        e.logs.push(extra);
        assert_eq!(find(&e, "logs.one_line_per_request").outcome, Outcome::Fail);
    }

    #[test]
    fn lines_dropped_during_the_load_make_log_checks_not_applicable_not_failed() {
        let mut e = evidence(10);
        e.logs.remove(0);
        assert_eq!(find(&e, "logs.one_line_per_request").outcome, Outcome::Fail);
        e.logs_lost.dropped_in_load = 7;
        for id in [
            "logs.one_line_per_request",
            "logs.request_id",
            "logs.tokens",
        ] {
            let v = find(&e, id);
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
            assert!(v.summary.contains("7 lines"), "{}", v.summary);
        }
        // Lines lost before the load (start-up output) change nothing.
        e.logs_lost.dropped_in_load = 0;
        e.logs_lost.dropped = 200_000;
        assert_eq!(find(&e, "logs.one_line_per_request").outcome, Outcome::Fail);
    }

    #[test]
    fn a_shown_request_id_missing_from_the_logs_fails() {
        let mut e = evidence(10);
        e.records
            .edit(|rs| rs[0].response_request_id = Some("other-id".into()));
        let v = find(&e, "logs.request_id");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.evidence,
            ["req-1 status=200: id \"other-id\" not in any log line"]
        );
    }

    #[test]
    fn tokens_that_differ_from_usage_fail() {
        // 16 counts the embeddings too: the chat route's usage was 10.
        let v = find(&evidence(16), "logs.tokens");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(3.0));
        assert!(
            v.evidence[0].contains("logged 16 in / 4 out"),
            "{:?}",
            v.evidence
        );
        assert!(v.evidence[0].contains("was 10 in / 4 out"));
    }

    #[test]
    fn planted_secrets_in_logs_or_answers_fail_and_are_masked() {
        let mut e = evidence(10);
        e.canaries = vec!["sk-canary-0123456789".into(), "hunter2pass".into()];
        assert_eq!(find(&e, "logs.no_secrets").outcome, Outcome::Pass);
        e.logs.push(log(
            r#"{"level":"info","apiKey":"sk-canary-0123456789"}"#.into()
        ));
        e.records
            .edit(|rs| rs[1].body_excerpt = "your password hunter2pass".into());
        let v = find(&e, "logs.no_secrets");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.figure, Some(2.0));
        assert_eq!(
            v.evidence[0],
            "log line at 1 s (Stdout) holds sk-c… (20 chars)"
        );
        assert_eq!(v.evidence[1], "response to req-2 holds hunt… (11 chars)");
    }

    #[test]
    fn without_logs_or_canaries_the_checks_are_not_applicable_with_the_reason() {
        let mut e = evidence(10);
        e.logs.clear();
        e.gaps.push("logs not captured: attached target".into());
        for v in check(&e, &LogExpectations::default()) {
            assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
        }
        assert!(find(&e, "logs.tokens").summary.contains("attached target"));
        assert!(find(&e, "logs.no_secrets")
            .summary
            .contains("no secrets were planted"));
    }
}
