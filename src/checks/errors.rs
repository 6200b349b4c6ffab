//! Honest failures (`errors.honest`): when a request fails, the user should get a quick,
//! plain answer they can report, not a silent hang or a leaked stack trace.
//!
//! Each failed client record (not 2xx) is held to five rules, from the lesson's "honest
//! messages beat silent hangs; show the request id in support-facing errors; never log keys":
//! (a) a status from the allowed list, (b) in time, (c) a JSON body with a message in words,
//! (d) the request id, (e) nothing leaked: no stack traces, provider names or secrets.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::sla::{excerpt, format_ms, outcome_of};
use super::{Outcome, Verdict};
use crate::evidence::{Evidence, Record};
use crate::scenario::ErrorExpectations;

/// One way a failure can be dishonest, in the order the rules are listed in the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// (a) No answer at all: a silent hang or a dropped connection.
    NoAnswer,
    /// (a) A status the scenario does not allow for failures.
    Status,
    /// (b) The failure arrived later than `within`.
    Slow,
    /// (c) No JSON body with a message a person can read.
    NoMessage,
    /// (d) Neither a request-id header nor the id in the body.
    NoRequestId,
    /// (e) A stack trace, provider name, raw upstream body or secret in the body.
    Leak,
}

impl Rule {
    /// How the summary counts it: "2 got no answer".
    fn counted(self) -> &'static str {
        match self {
            Rule::NoAnswer => "got no answer at all",
            Rule::Status => "had a status that is not allowed",
            Rule::Slow => "took too long to fail",
            Rule::NoMessage => "had no JSON message in words",
            Rule::NoRequestId => "did not carry the request id",
            Rule::Leak => "leaked internals or secrets",
        }
    }
}

/// A broken rule with the detail that shows it.
struct Breach {
    rule: Rule,
    detail: String,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// `errors.honest`: every failed request got an honest answer. Not applicable when nothing failed.
pub fn check_honest(evidence: &Evidence, expect: &ErrorExpectations) -> Verdict {
    let within_ms = expect.within.as_secs_f64() * 1000.0;
    let mut verdict = Verdict {
        id: "errors.honest".into(),
        title: format!(
            "failed requests get an honest answer: an allowed status within {}, \
             a JSON message in words, the request id, nothing leaked",
            format_ms(within_ms)
        ),
        outcome: Outcome::NotApplicable,
        figure: None,
        limit: Some(0.0),
        unit: "requests".into(),
        summary: String::new(),
        evidence: Vec::new(),
    };

    // One pass: counts for every failed request, lines for the first few dishonest ones
    // (the exemplars), so memory stays bounded however many failed.
    let mut failed = 0usize;
    let mut dishonest = 0usize;
    let mut per_rule: BTreeMap<Rule, usize> = BTreeMap::new();
    let mut lines: Vec<String> = Vec::new();
    for r in evidence.records.iter().filter(|r| !r.succeeded()) {
        failed += 1;
        let breaches = breaches(&r, expect);
        if breaches.is_empty() {
            continue;
        }
        dishonest += 1;
        let mut rules: Vec<Rule> = breaches.iter().map(|b| b.rule).collect();
        rules.dedup();
        for rule in rules {
            *per_rule.entry(rule).or_default() += 1;
        }
        if lines.len() < Verdict::EVIDENCE_LIMIT {
            let broken: Vec<String> = breaches.iter().map(|b| b.to_string()).collect();
            lines.push(format!(
                "{} {} latency={}: {} | body: {}",
                r.request_id,
                outcome_of(&r),
                format_ms(r.latency_ms),
                broken.join("; "),
                excerpt(&redact(&r.body_excerpt))
            ));
        }
    }
    if failed == 0 {
        verdict.summary =
            "no request failed during the run, so error honesty could not be judged.".into();
        return verdict;
    }
    verdict.figure = Some(dishonest as f64);

    if dishonest == 0 {
        verdict.outcome = Outcome::Pass;
        let all = match failed {
            1 => "the one failed request".to_string(),
            n => format!("all {n} failed requests"),
        };
        verdict.summary = format!(
            "{all} failed honestly: an allowed status within {}, \
             a JSON message in words, the request id, nothing leaked.",
            format_ms(within_ms)
        );
        return verdict;
    }

    let reasons: Vec<String> = per_rule
        .iter()
        .map(|(rule, n)| format!("{n} {}", rule.counted()))
        .collect();
    verdict.outcome = Outcome::Fail;
    verdict.summary = format!(
        "{} of {} failed requests {} not honest with the user: {}.",
        dishonest,
        failed,
        if dishonest == 1 { "was" } else { "were" },
        reasons.join(", ")
    );

    if dishonest > Verdict::EVIDENCE_LIMIT {
        let more = dishonest - (Verdict::EVIDENCE_LIMIT - 1);
        lines.truncate(Verdict::EVIDENCE_LIMIT - 1);
        lines.push(format!("… and {more} more"));
    }
    verdict.evidence = lines;
    verdict
}

/// Every rule `r` (a failed request) breaks; empty when it failed honestly.
fn breaches(r: &Record, expect: &ErrorExpectations) -> Vec<Breach> {
    // (a) Without an answer there is no status, body or id to judge: that one breach says it all.
    let Some(status) = r.status else {
        return vec![Breach {
            rule: Rule::NoAnswer,
            detail: format!(
                "no answer ({}): a silent hang or a dropped connection",
                r.error.as_deref().unwrap_or("no status")
            ),
        }];
    };

    let mut found = Vec::new();
    if !expect.allowed_statuses.contains(&status) {
        let allowed: Vec<String> = expect.allowed_statuses.iter().map(u16::to_string).collect();
        found.push(Breach {
            rule: Rule::Status,
            detail: format!("status {status} is not allowed ({})", allowed.join(", ")),
        });
    }

    // (b)
    let within_ms = expect.within.as_secs_f64() * 1000.0;
    if r.latency_ms > within_ms {
        found.push(Breach {
            rule: Rule::Slow,
            detail: format!(
                "took {}, longer than the {} a failure may take",
                format_ms(r.latency_ms),
                format_ms(within_ms)
            ),
        });
    }

    // (c)
    if let Err(why) = human_message(&r.body_excerpt, expect.message_pointer.as_deref()) {
        found.push(Breach {
            rule: Rule::NoMessage,
            detail: why,
        });
    }

    // (d)
    let id_reported = r
        .response_request_id
        .as_deref()
        .is_some_and(|id| !id.trim().is_empty());
    if !id_reported && !r.body_excerpt.contains(&r.request_id) {
        found.push(Breach {
            rule: Rule::NoRequestId,
            detail: "no request id in a header or the body, so the user cannot report it".into(),
        });
    }

    // (e)
    for leak in leaks(&r.body_excerpt) {
        found.push(Breach {
            rule: Rule::Leak,
            detail: leak,
        });
    }
    found
}

/// (c) The body is JSON with a string at `pointer` (the API's error pointer), `error`,
/// `message` or `error.message` that reads as words.
fn human_message(body: &str, pointer: Option<&str>) -> Result<(), String> {
    let trimmed = body.trim_start();
    let message = match serde_json::from_str::<Value>(trimmed) {
        Ok(json) => [
            pointer.and_then(|p| json.pointer(p)),
            json.get("error"),
            json.get("message"),
            json.get("error").and_then(|e| e.get("message")),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_string)),
        // The excerpt is cut at EXCERPT_LIMIT, so a long JSON body does not parse: read the
        // message from the prefix instead of calling it not JSON.
        Err(_) if trimmed.starts_with('{') && body.len() + 4 >= Record::EXCERPT_LIMIT => {
            message_in_prefix(trimmed)
        }
        Err(_) if trimmed.is_empty() => return Err("empty body, no message for the user".into()),
        Err(_) => return Err(format!("body is not JSON ({})", excerpt(trimmed))),
    };
    let Some(message) = message else {
        return Err(match pointer {
            Some(p) => {
                format!("JSON body has no string at {p}, `error`, `message` or `error.message`")
            }
            None => "JSON body has no string `error`, `message` or `error.message`".into(),
        });
    };
    if reads_as_words(&message) {
        Ok(())
    } else {
        Err(format!(
            "message {:?} is not a sentence a person can read",
            excerpt(&message)
        ))
    }
}

/// At least three words with letters in them: "Upstream timed out." yes, "ERR_503" no.
fn reads_as_words(message: &str) -> bool {
    message
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
        >= 3
}

/// The first `"error": "…"` or `"message": "…"` string in a JSON prefix, read to its closing
/// quote or to the end of the prefix.
fn message_in_prefix(prefix: &str) -> Option<String> {
    ["\"error\"", "\"message\""].iter().find_map(|key| {
        let mut rest = prefix;
        while let Some(at) = rest.find(key) {
            rest = &rest[at + key.len()..];
            // `"error"` can also be a value (`"type":"error"`): only a key is followed by `:`.
            let Some(value) = rest.trim_start().strip_prefix(':') else {
                continue;
            };
            let value = value.trim_start();
            let Some(value) = value.strip_prefix('"') else {
                continue; // an object (`"error": {…}`): its `"message"` is found by the next key
            };
            let mut text = String::new();
            let mut chars = value.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        chars.next();
                    }
                    c => text.push(c),
                }
            }
            return Some(text);
        }
        None
    })
}

/// Markers that must never reach a user: stack traces, exceptions, and how to find them.
const TRACE_MARKERS: [&str; 6] = [
    "panicked at",
    "stack backtrace",
    "Traceback (most recent call last)",
    "at src/",
    "Exception",
    "RUST_BACKTRACE",
];

/// Provider names and raw upstream error bodies, matched case-insensitively.
const UPSTREAM_MARKERS: [&str; 4] = [
    "openai",
    "anthropic",
    "rate_limit_exceeded",
    "\"type\":\"server_error\"",
];

/// (e) What the body leaks, one line per kind of leak.
fn leaks(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    let trace = TRACE_MARKERS
        .iter()
        .find(|m| body.contains(**m))
        .map(|m| m.to_string())
        .or_else(|| source_location(body));
    if let Some(marker) = trace {
        found.push(format!("leaks a stack trace or exception ({marker:?})"));
    }

    // Whitespace is squeezed out so `"type": "server_error"` matches as well.
    let squeezed: String = body
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if let Some(marker) = UPSTREAM_MARKERS.iter().find(|m| squeezed.contains(**m)) {
        found.push(format!(
            "leaks the provider or its raw error body ({marker:?})"
        ));
    }

    if api_key_at(body).is_some() {
        found.push("leaks an API key (\"sk-…\")".into());
    } else if body.contains("Bearer ") {
        found.push("leaks a bearer token (\"Bearer …\")".into());
    }
    found
}

/// Source files whose `name.ext:LINE` in a message is a leaked stack frame: Rust panics and
/// backtraces, Node/TypeScript (`at f (/app/dist/server.js:42:13)`), Go (`/app/main.go:88`),
/// JVM (`(Handler.java:42)`, Kotlin, Scala). Python and .NET print frames their own way and are
/// matched in [`source_location`].
const FRAME_EXTENSIONS: [&str; 12] = [
    ".rs:", ".js:", ".mjs:", ".cjs:", ".ts:", ".mts:", ".tsx:", ".jsx:", ".go:", ".java:", ".kt:",
    ".scala:",
];

/// A source location as a stack trace prints it, in any of the stacks services are written in:
/// `file.rs:42`, `server.js:42:13`, `main.go:88`, `Handler.java:42`, Python's
/// `File "/app/app.py", line 167`, .NET's `Program.cs:line 42`, and Node's `node:internal/`
/// frames and Go's `goroutine 1 [running]`. A message a user should read never names the
/// service's source files.
fn source_location(body: &str) -> Option<String> {
    let with_line = |ext: &str, at: usize| {
        let digits: String = body[at + ext.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then(|| format!("{ext}{digits}"))
    };
    let frame = FRAME_EXTENSIONS.iter().find_map(|ext| {
        body.match_indices(ext)
            .find_map(|(at, _)| with_line(ext, at))
    });
    frame
        .or_else(|| {
            body.match_indices(".cs:line ")
                .find_map(|(at, _)| with_line(".cs:line ", at))
        })
        .or_else(|| {
            // Python: `File "/app/app.py", line 167, in chat` (quotes may be JSON-escaped).
            body.match_indices(".py").find_map(|(at, _)| {
                let rest = body[at + 3..].trim_start_matches(['\\', '"']);
                rest.starts_with(", line ")
                    .then(|| ".py\", line".to_string())
            })
        })
        .or_else(|| {
            // Frame prefixes, raw or JSON-escaped: a JVM/.NET `\tat `, a Node `\n    at `.
            [
                "node:internal/",
                "\\tat ",
                "\tat ",
                "\\n    at ",
                "\n    at ",
            ]
            .iter()
            .find(|m| body.contains(**m))
            .map(|m| m.to_string())
        })
        .or_else(|| {
            // `goroutine 7 [running]:`, not the word in a sentence.
            body.match_indices("goroutine ").find_map(|(at, _)| {
                let rest = body[at + 10..].trim_start_matches(|c: char| c.is_ascii_digit());
                (rest.len() < body.len() - at - 10 && rest.starts_with(" ["))
                    .then(|| "goroutine N [".to_string())
            })
        })
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Where an `sk-` key with at least 10 key characters starts, and its length. The `sk-` must
/// start a word, or "task-1234567890" would count.
fn api_key_at(body: &str) -> Option<(usize, usize)> {
    body.match_indices("sk-").find_map(|(at, _)| {
        let starts_word = body[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let key_chars = body[at + 3..]
            .chars()
            .take_while(|&c| is_key_char(c))
            .count();
        (starts_word && key_chars >= 10).then_some((at, 3 + key_chars))
    })
}

/// The body with keys and bearer tokens blanked out, so the report does not repeat the leak.
fn redact(body: &str) -> String {
    let mut out = body.to_string();
    while let Some((at, len)) = api_key_at(&out) {
        out.replace_range(at..at + len, "sk-[redacted]");
    }
    let mut from = 0;
    while let Some(found) = out[from..].find("Bearer ") {
        let start = from + found + "Bearer ".len();
        let len: usize = out[start..]
            .chars()
            .take_while(|&c| is_key_char(c) || c == '.')
            .map(char::len_utf8)
            .sum();
        out.replace_range(start..start + len, "[redacted]");
        from = start + "[redacted]".len();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::Phase;

    fn expect() -> ErrorExpectations {
        ErrorExpectations {
            allowed_statuses: vec![429, 502, 503, 504],
            within: Duration::from_secs(15),
            message_pointer: None,
        }
    }

    /// One honest 503 (as the builder makes it), changed by `change`, judged alone.
    fn judge(change: impl FnOnce(&mut Record)) -> Verdict {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .record(10_500.0, Some(503), 200.0)
            .edit(change)
            .build();
        check_honest(&evidence, &expect())
    }

    fn assert_breaks(verdict: &Verdict, words: &str) {
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:#?}");
        assert_eq!(verdict.figure, Some(1.0));
        assert_eq!(verdict.evidence.len(), 1);
        assert!(
            verdict.evidence[0].contains(words),
            "expected {words:?} in {:?}",
            verdict.evidence[0]
        );
    }

    #[test]
    fn a_message_where_the_api_says_errors_are_counts_as_honest() {
        let evidence = |body: &str| {
            let body = body.to_string();
            EvidenceBuilder::new()
                .record(10_500.0, Some(503), 200.0)
                .edit(move |r| r.body_excerpt = body)
                .build()
        };
        let detail = evidence(r#"{"detail": "The assistant is unavailable, try again soon."}"#);
        // Without the API's pointer the message is not found…
        assert_eq!(check_honest(&detail, &expect()).outcome, Outcome::Fail);
        // …with it, the same failure is honest.
        let pointed = ErrorExpectations {
            message_pointer: Some("/detail".into()),
            ..expect()
        };
        let v = check_honest(&detail, &pointed);
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        // The pointer adds a place to look; a body with no words there still fails.
        let v = check_honest(&evidence(r#"{"detail": "E503"}"#), &pointed);
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
    }

    #[test]
    fn an_honest_failure_passes() {
        let v = judge(|_| {});
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
        assert_eq!(v.limit, Some(0.0));
        assert_eq!(v.unit, "requests");
        assert!(v
            .summary
            .starts_with("the one failed request failed honestly"));
    }

    #[test]
    fn a_run_where_nothing_failed_cannot_be_judged() {
        let evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 100.0)
            .build();
        let v = check_honest(&evidence, &expect());
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert_eq!(v.figure, None);
        assert!(v.summary.contains("no request failed"));
    }

    #[test]
    fn a_status_outside_the_allowed_list_is_dishonest() {
        assert_breaks(
            &judge(|r| r.status = Some(500)),
            "status 500 is not allowed",
        );
        assert_eq!(judge(|r| r.status = Some(429)).outcome, Outcome::Pass);
    }

    #[test]
    fn no_answer_at_all_is_a_silent_hang() {
        let v = judge(|r| {
            r.status = None;
            r.error = Some("timeout".into());
            r.body_excerpt.clear();
        });
        assert_breaks(&v, "no answer (timeout): a silent hang");
        assert!(
            v.summary.contains("1 got no answer at all"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_failure_slower_than_allowed_is_dishonest() {
        assert_breaks(
            &judge(|r| r.latency_ms = 15_001.0),
            "took 15 s, longer than the 15 s",
        );
        assert_eq!(judge(|r| r.latency_ms = 15_000.0).outcome, Outcome::Pass);
    }

    #[test]
    fn a_failure_needs_a_json_message_in_words() {
        assert_breaks(
            &judge(|r| r.body_excerpt = "<html>502 Bad Gateway</html>".into()),
            "body is not JSON",
        );
        assert_breaks(&judge(|r| r.body_excerpt.clear()), "empty body");
        assert_breaks(
            &judge(|r| r.body_excerpt = r#"{"code":503}"#.into()),
            "no string `error`",
        );
        assert_breaks(
            &judge(|r| r.body_excerpt = r#"{"error":"ERR_UPSTREAM"}"#.into()),
            "is not a sentence",
        );
        for honest in [
            r#"{"message":"The assistant is busy, try again soon."}"#,
            r#"{"error":{"message":"The AI service timed out."}}"#,
        ] {
            assert_eq!(
                judge(|r| r.body_excerpt = honest.into()).outcome,
                Outcome::Pass,
                "{honest}"
            );
        }
    }

    #[test]
    fn a_truncated_json_body_is_judged_by_its_prefix() {
        let long = format!(
            r#"{{"error":"The AI service timed out, please retry.","trace_id":"{}"#,
            "a".repeat(Record::EXCERPT_LIMIT)
        );
        let cut: String = long.chars().take(Record::EXCERPT_LIMIT).collect();
        assert_eq!(judge(|r| r.body_excerpt = cut).outcome, Outcome::Pass);

        let nested = format!(
            r#"{{"type":"error","error":{{"message":"The AI service is busy, retry soon.","x":"{}"#,
            "a".repeat(Record::EXCERPT_LIMIT)
        );
        let cut: String = nested.chars().take(Record::EXCERPT_LIMIT).collect();
        assert_eq!(judge(|r| r.body_excerpt = cut).outcome, Outcome::Pass);

        let wordless = format!(
            r#"{{"error":"E503","x":"{}"#,
            "a".repeat(Record::EXCERPT_LIMIT)
        );
        let cut: String = wordless.chars().take(Record::EXCERPT_LIMIT).collect();
        assert_breaks(&judge(|r| r.body_excerpt = cut), "is not a sentence");
    }

    #[test]
    fn a_failure_must_carry_the_request_id() {
        assert_breaks(
            &judge(|r| r.response_request_id = None),
            "no request id in a header or the body",
        );
        let in_body = judge(|r| {
            r.response_request_id = None;
            r.body_excerpt = format!(
                r#"{{"error":"The AI service is down, sorry.","request_id":"{}"}}"#,
                r.request_id
            );
        });
        assert_eq!(in_body.outcome, Outcome::Pass);
    }

    #[test]
    fn stack_traces_are_leaks() {
        for body in [
            r#"{"error":"Something went wrong: thread 'main' panicked at src/llm.rs:42:9"}"#,
            r#"{"error":"Something went wrong. Traceback (most recent call last): ..."}"#,
            r#"{"error":"Something went wrong: java.lang.NullPointerException"}"#,
            r#"{"error":"Something went wrong in handler.rs:17 sadly"}"#,
            // Node/TypeScript, as `JSON.stringify(error.stack)` puts it in a body.
            r#"{"error":"Error: upstream 503","stack":"Error: upstream 503\n    at ask (/app/dist/llm.js:42:13)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"}"#,
            r#"{"error":"failed","where":"at handler (src/server.ts:88:7)"}"#,
            // Python, without the Traceback header (a cut excerpt, or `traceback.format_tb`).
            r#"{"error":"failed","trace":["  File \"/app/app.py\", line 167, in chat\n"]}"#,
            // Go.
            r#"{"error":"failed: goroutine 7 [running]: main.ask(...) /app/main.go:88 +0x1d"}"#,
            // JVM and .NET.
            r#"{"error":"failed","trace":"\tat com.acme.chat.Handler.ask(Handler.java:42)"}"#,
            r#"{"error":"failed","trace":"   at Acme.Chat.Handler.Ask() in /src/Handler.cs:line 42"}"#,
        ] {
            assert_breaks(&judge(|r| r.body_excerpt = body.into()), "stack trace");
        }
    }

    #[test]
    fn messages_that_merely_mention_files_or_routines_are_not_stack_traces() {
        for body in [
            r#"{"error":"The assistant is unavailable; see status.example.com for updates."}"#,
            r#"{"error":"Upload report.pdf again, or try main.go later."}"#,
            r#"{"error":"Our goroutine of a day was interrupted; please retry."}"#,
            r#"{"error":"Next.js: the page is being rebuilt, please retry."}"#,
        ] {
            let v = judge(|r| r.body_excerpt = body.into());
            assert!(!v.summary.contains("stack trace"), "{body}: {}", v.summary);
        }
    }

    #[test]
    fn provider_names_and_raw_upstream_bodies_are_leaks() {
        for body in [
            r#"{"error":"OpenAI returned an error, sorry."}"#,
            r#"{"error":"The upstream failed badly.","upstream":{"type": "server_error"}}"#,
            r#"{"error":"Too many requests: rate_limit_exceeded."}"#,
        ] {
            assert_breaks(
                &judge(|r| r.body_excerpt = body.into()),
                "leaks the provider",
            );
        }
    }

    #[test]
    fn secrets_are_leaks_and_are_redacted_from_the_evidence() {
        let v = judge(|r| {
            r.body_excerpt =
                r#"{"error":"The AI service refused key sk-abcdef0123456789 today."}"#.into()
        });
        assert_breaks(&v, "leaks an API key");
        assert!(!v.evidence[0].contains("sk-abcdef0123456789"));
        assert!(v.evidence[0].contains("sk-[redacted]"));

        let v = judge(|r| {
            r.body_excerpt =
                r#"{"error":"Upstream said no to header Bearer abc.def-123 today."}"#.into()
        });
        assert_breaks(&v, "leaks a bearer token");
        assert!(!v.evidence[0].contains("abc.def-123"));
    }

    #[test]
    fn words_that_merely_contain_sk_dash_are_not_keys() {
        let v = judge(|r| {
            r.body_excerpt = r#"{"error":"The task-1234567890abc could not finish."}"#.into()
        });
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
    }

    #[test]
    fn a_request_breaking_several_rules_lists_each_and_evidence_is_bounded() {
        let mut builder = EvidenceBuilder::new();
        for i in 0..12 {
            builder = builder.record(i as f64, Some(500), 20_000.0).edit(|r| {
                r.response_request_id = None;
                r.body_excerpt = "Internal Server Error".into();
            });
        }
        let v = check_honest(&builder.build(), &expect());
        assert_eq!(v.figure, Some(12.0));
        assert_eq!(v.evidence.len(), Verdict::EVIDENCE_LIMIT);
        assert_eq!(v.evidence.last().unwrap(), "… and 3 more");
        let first = &v.evidence[0];
        for words in ["status 500", "took 20 s", "not JSON", "no request id"] {
            assert!(first.contains(words), "{words:?} in {first:?}");
        }
        assert_eq!(
            v.summary,
            "12 of 12 failed requests were not honest with the user: \
             12 had a status that is not allowed, 12 took too long to fail, \
             12 had no JSON message in words, 12 did not carry the request id."
        );
    }
}
