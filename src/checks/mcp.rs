//! MCP tool lists (`mcp.list_changed`): a client told that a server's tool list changed lists
//! the tools again before it goes on calling them.
//!
//! Why: the Model Context Protocol says a server whose tools change sends
//! `notifications/tools/list_changed`, and a client receiving it should fetch `tools/list`
//! again; the official SDKs' clients hand the notification to the application for that, and
//! agent frameworks that cache the list (the OpenAI Agents SDK's `cache_tools_list`) say to
//! invalidate it then. A client that ignores it keeps offering the model tools that are gone
//! (or renamed, or with new required arguments), and every such call fails.
//!
//! The rule, per MCP session and per notice: if the session calls a tool after the answer that
//! told it, it sends `tools/list` again before the next notice (or the end of the run). Calls
//! that race the re-listing (decided from the old list while the notice was on its way) are
//! not held against it: only never listing again is. A session told on the answer to a
//! `tools/list` already holds the new list. Read from the fake MCP server's journal only.

use std::collections::BTreeMap;

use super::common::{bounded, not_applicable, pending};
use super::sla::format_ms;
use super::{Outcome, Verdict};
use crate::evidence::{Attempt, Evidence, Exchange};

/// The parts of an MCP attempt this check reads.
struct Call<'a> {
    attempt: &'a Attempt,
    method: &'a str,
    tool: Option<&'a str>,
    tool_listed: Option<bool>,
    told: bool,
}

impl Call<'_> {
    fn ended_ms(&self) -> f64 {
        self.attempt.at_ms + self.attempt.duration_ms
    }
}

/// `mcp.list_changed`: every MCP session told that the tool list changed lists the tools
/// again before it calls more of them.
pub fn check_list_changed(evidence: &Evidence) -> Verdict {
    let mut v = pending(
        "mcp.list_changed",
        "an MCP client told the tool list changed lists the tools again before calling more".into(),
        "notices",
        Some(0.0),
    );
    // Only the MCP calls of a session, read out of the journal's stream once.
    let mcp: Vec<_> = evidence
        .attempts
        .iter()
        .filter(|a| {
            matches!(
                a.exchange,
                Some(Exchange::Mcp {
                    session: Some(_),
                    ..
                })
            )
        })
        .collect();
    let mut sessions: BTreeMap<&str, Vec<Call>> = BTreeMap::new();
    for a in &mcp {
        if let Some(Exchange::Mcp {
            session: Some(session),
            method,
            tool,
            tool_listed,
            told_list_changed,
        }) = &a.exchange
        {
            sessions.entry(session).or_default().push(Call {
                attempt: a,
                method,
                tool: tool.as_deref(),
                tool_listed: *tool_listed,
                told: *told_list_changed,
            });
        }
    }
    if !sessions.values().flatten().any(|c| c.told) {
        return not_applicable(
            v,
            "no MCP server answer told a client that the tool list changed, so handling \
             notifications/tools/list_changed could not be judged.",
        );
    }
    let (mut judged, mut ignored) = (0usize, Vec::new());
    let mut stale_calls = 0usize;
    for (session, mut calls) in sessions {
        calls.sort_by(|a, b| a.attempt.at_ms.total_cmp(&b.attempt.at_ms));
        let notices: Vec<usize> = (0..calls.len()).filter(|&i| calls[i].told).collect();
        for (n, &at) in notices.iter().enumerate() {
            let notice = &calls[at];
            if notice.method == "tools/list" {
                continue;
            }
            let until = notices.get(n + 1).copied().unwrap_or(calls.len());
            let after: Vec<&Call> = calls[at + 1..until]
                .iter()
                .filter(|c| c.attempt.at_ms >= notice.ended_ms())
                .collect();
            let called: Vec<&&Call> = after.iter().filter(|c| c.method == "tools/call").collect();
            if called.is_empty() {
                continue;
            }
            judged += 1;
            let unlisted = called
                .iter()
                .filter(|c| c.tool_listed == Some(false))
                .count();
            stale_calls += unlisted;
            if !after.iter().any(|c| c.method == "tools/list") {
                let tools: Vec<&str> = called.iter().filter_map(|c| c.tool).collect();
                ignored.push(format!(
                    "session {session}: told at {} (on its {} answer), then {} tool calls and \
                     no tools/list; {unlisted} named a tool no longer listed ({})",
                    format_ms(notice.attempt.at_ms),
                    notice.method,
                    called.len(),
                    tools.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                ));
            }
        }
    }
    if judged == 0 {
        return not_applicable(
            v,
            "no MCP session called a tool after being told the tool list changed, so handling \
             the notification could not be judged.",
        );
    }
    v.figure = Some(ignored.len() as f64);
    if ignored.is_empty() {
        v.outcome = Outcome::Pass;
        v.summary = format!(
            "after all {judged} notices that the tool list changed, the MCP session listed the tools again \
             ({stale_calls} calls raced the re-listing and named a tool no longer listed)."
        );
    } else {
        v.outcome = Outcome::Fail;
        v.summary = format!(
            "after {} of {judged} notices that the tool list changed, the MCP session never listed the tools \
             again and went on calling them: the model keeps being offered tools that are \
             gone, and {stale_calls} calls named one.",
            ignored.len()
        );
        v.evidence = bounded(ignored);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::Phase;

    fn mcp(at: f64, method: &str, tool: Option<&str>, listed: bool, told: bool) -> Attempt {
        Attempt {
            exchange: Some(Exchange::Mcp {
                session: Some("s1".into()),
                method: method.into(),
                tool: tool.map(str::to_owned),
                tool_listed: tool.map(|_| listed),
                told_list_changed: told,
            }),
            ..attempt(at, "mcp", "/mcp", "req-1", Some(200), 5.0)
        }
    }

    fn evidence(attempts: Vec<Attempt>) -> Evidence {
        let mut evidence = EvidenceBuilder::new()
            .records(Phase::Baseline, 2, Some(200), 100.0)
            .build();
        evidence.attempts = attempts.into();
        evidence
    }

    /// A session that lists, calls, is told mid-call, then calls `after` (with `relist`).
    fn session(relist: bool) -> Vec<Attempt> {
        let mut attempts = vec![
            mcp(0.0, "initialize", None, false, false),
            mcp(10.0, "tools/list", None, false, false),
            mcp(100.0, "tools/call", Some("get_weather"), true, false),
            mcp(200.0, "tools/call", Some("get_weather"), false, true),
        ];
        if relist {
            attempts.push(mcp(210.0, "tools/list", None, false, false));
            attempts.push(mcp(400.0, "tools/call", Some("get_forecast"), true, false));
        } else {
            attempts.push(mcp(400.0, "tools/call", Some("get_weather"), false, false));
            attempts.push(mcp(600.0, "tools/call", Some("get_weather"), false, false));
        }
        attempts
    }

    #[test]
    fn a_session_that_lists_again_passes() {
        let v = check_list_changed(&evidence(session(true)));
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
        assert_eq!(v.figure, Some(0.0));
    }

    #[test]
    fn a_session_that_keeps_calling_without_listing_fails() {
        let v = check_list_changed(&evidence(session(false)));
        assert_eq!(v.outcome, Outcome::Fail, "{v:#?}");
        assert_eq!(v.figure, Some(1.0));
        assert!(v.evidence[0].contains("session s1"), "{:?}", v.evidence);
        assert!(v.summary.contains("2 calls named one"), "{}", v.summary);
    }

    #[test]
    fn a_call_racing_the_relisting_is_not_held_against_the_session() {
        let mut attempts = session(true);
        // Decided from the old list before the notice arrived, sent before the re-listing.
        attempts.insert(
            4,
            mcp(205.0, "tools/call", Some("get_weather"), false, false),
        );
        let v = check_list_changed(&evidence(attempts));
        assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
    }

    #[test]
    fn a_notice_on_a_tools_list_answer_needs_no_second_listing() {
        let attempts = vec![
            mcp(0.0, "initialize", None, false, false),
            mcp(10.0, "tools/list", None, false, true),
            mcp(100.0, "tools/call", Some("get_forecast"), true, false),
        ];
        let v = check_list_changed(&evidence(attempts));
        assert_eq!(v.outcome, Outcome::NotApplicable, "{v:#?}");
    }

    #[test]
    fn without_a_notice_it_is_not_applicable() {
        let mut attempts = session(false);
        for a in &mut attempts {
            if let Some(Exchange::Mcp {
                told_list_changed, ..
            }) = &mut a.exchange
            {
                *told_list_changed = false;
            }
        }
        let v = check_list_changed(&evidence(attempts));
        assert_eq!(v.outcome, Outcome::NotApplicable);
        assert!(v.summary.contains("list_changed"), "{}", v.summary);
    }
}
