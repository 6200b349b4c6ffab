//! The log schema against what the service logged for its warm-up requests: the request id in
//! `request_id_field`, the token counts in the token fields (for requests that called the
//! LLM), the level and message fields when named.
//!
//! Only a configuration mismatch is a finding: lines that name the request under other field
//! names. A service whose lines carry no token counts at all, or that logs no line with the
//! request id, breaks a practice the `logs.*` checks judge; the probe leaves that to them.

use serde_json::{Map, Value};

use super::warm_up::WarmUp;
use super::{setting, Finding};
use crate::checks::common::{field, json_line};
use crate::scenario::Plan;

const LOG_CHECKS: [&str; 3] = [
    "logs.one_line_per_request",
    "logs.request_id",
    "logs.tokens",
];

/// Every key path of a JSON line (`usage.in` for `{"usage": {"in": 3}}`), two levels deep.
fn paths(line: &Map<String, Value>) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (key, value) in line {
        out.push((key.clone(), value));
        if let Value::Object(inner) = value {
            for (sub, v) in inner {
                out.push((format!("{key}.{sub}"), v));
            }
        }
    }
    out
}

fn shown(fields: &[String]) -> String {
    if fields.is_empty() {
        "no fields".into()
    } else {
        fields.join(", ")
    }
}

/// The run's log findings: none captured at all, or fields named otherwise than configured.
pub fn judge(plan: &Plan, warm_ups: &[WarmUp]) -> Vec<Finding> {
    let captured = plan.target.url.is_none() || plan.target.log_file.is_some();
    if !captured || warm_ups.is_empty() {
        return Vec::new();
    }
    if warm_ups.iter().all(|w| w.logs_total == 0) {
        let place = match &plan.target.log_file {
            Some(file) => format!("in {}", file.display()),
            None => "on its stdout or stderr".into(),
        };
        return vec![Finding {
            setting: "the service's logs".into(),
            saw: format!(
                "no log line at all {place}, from its start to {} warm-up request(s) later",
                warm_ups.len()
            ),
            fix: "if it logs to a file, set [logs] file = \"logs/app.log\" in faultline.toml; \
                  if it buffers its output when not on a terminal, make it flush each line \
                  (Python: PYTHONUNBUFFERED = \"1\" in [target] env)"
                .into(),
            blocks: LOG_CHECKS.to_vec(),
            narrows: vec!["logs.no_secrets", "fallback.redis"],
        }];
    }
    let mut findings: Vec<Finding> = Vec::new();
    for warm_up in warm_ups {
        for finding in judge_one(plan, warm_up) {
            // The same setting wrong for every flow is one finding.
            if !findings.iter().any(|f| f.setting == finding.setting) {
                findings.push(finding);
            }
        }
    }
    findings
}

fn judge_one(plan: &Plan, warm_up: &WarmUp) -> Vec<Finding> {
    let expect = &plan.expect.logs;
    let written = &plan.expect.profile.logs;
    let ids = warm_up.ids();
    let naming: Vec<Map<String, Value>> = warm_up
        .logs
        .iter()
        .filter(|l| ids.iter().any(|id| l.text.contains(id)))
        .filter_map(|l| json_line(&l.text))
        .collect();
    if naming.is_empty() {
        return Vec::new();
    }
    let has_id = |j: &Map<String, Value>| {
        let value = match field(j, &expect.request_id_field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return false,
        };
        ids.contains(&value.as_str())
    };
    let mut keys: Vec<String> = naming.iter().flat_map(|j| j.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    let mut findings = Vec::new();
    let with_id: Vec<&Map<String, Value>> = naming.iter().filter(|j| has_id(j)).collect();
    if with_id.is_empty() {
        let holds_id: Vec<String> = naming
            .iter()
            .flat_map(paths)
            .filter(|(_, v)| v.as_str().is_some_and(|v| ids.contains(&v)))
            .map(|(p, _)| p)
            .collect();
        findings.push(Finding {
            setting: setting(
                "logs",
                "request_id_field",
                &expect.request_id_field,
                written.request_id_field.as_ref(),
            ),
            saw: format!(
                "no log line had it with the warm-up's request id {}; the JSON lines with this \
                 request id have fields {}",
                warm_up.request_id,
                shown(&keys)
            ),
            fix: match holds_id.first() {
                Some(path) => format!("set [logs] request_id_field = \"{path}\" in faultline.toml"),
                None => {
                    "name the field that holds the request id in [logs] request_id_field".into()
                }
            },
            // logs.request_id looks for the id anywhere in a line: it still judges.
            blocks: vec!["logs.one_line_per_request", "logs.tokens"],
            narrows: Vec::new(),
        });
    }
    let lines: Vec<&Map<String, Value>> = if with_id.is_empty() {
        naming.iter().collect()
    } else {
        with_id
    };
    if let Some((input, output)) = warm_up.llm_usage(&expect.tokens_route) {
        let complete = lines.iter().any(|j| {
            field(j, &expect.input_tokens_field).is_some()
                && field(j, &expect.output_tokens_field).is_some()
        });
        let tokenish: Vec<(String, &Value)> = lines
            .iter()
            .flat_map(|j| paths(j))
            .filter(|(p, _)| {
                let p = p.to_ascii_lowercase();
                p.contains("token") || p.starts_with("usage")
            })
            .collect();
        if !complete && !tokenish.is_empty() {
            let matching = |n: u64| {
                tokenish
                    .iter()
                    .find(|(_, v)| v.as_u64() == Some(n))
                    .map(|(p, _)| p.clone())
            };
            let mut names: Vec<String> = tokenish.iter().map(|(p, _)| p.clone()).collect();
            names.dedup();
            for (key, configured, at, truth) in [
                (
                    "input_tokens_field",
                    &expect.input_tokens_field,
                    written.input_tokens_field.as_ref(),
                    input,
                ),
                (
                    "output_tokens_field",
                    &expect.output_tokens_field,
                    written.output_tokens_field.as_ref(),
                    output,
                ),
            ] {
                if lines.iter().any(|j| field(j, configured).is_some()) {
                    continue;
                }
                findings.push(Finding {
                    setting: setting("logs", key, configured, at),
                    saw: format!(
                        "the warm-up's log lines do not have it, though the LLM reported {truth} \
                         for it; their token fields are {}",
                        names.join(", ")
                    ),
                    fix: match matching(truth) {
                        Some(path) => format!("set [logs] {key} = \"{path}\" in faultline.toml"),
                        None => format!("name the field that holds it in [logs] {key}"),
                    },
                    blocks: vec!["logs.one_line_per_request", "logs.tokens"],
                    narrows: Vec::new(),
                });
            }
        }
    }
    for (key, configured, narrows) in [
        ("level_field", &written.level_field, vec!["fallback.redis"]),
        ("message_field", &written.message_field, Vec::new()),
    ] {
        let Some(configured) = configured else {
            continue;
        };
        if lines.iter().any(|j| field(j, &configured.value).is_some()) {
            continue;
        }
        findings.push(Finding {
            setting: setting("logs", key, &configured.value, Some(configured)),
            saw: format!(
                "the warm-up's log lines do not have it; they have fields {}",
                shown(&keys)
            ),
            fix: format!("name one of those fields in [logs] {key}, or remove it"),
            blocks: Vec::new(),
            narrows,
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{LogLine, LogStream};
    use crate::probe::warm_up::Answered;

    /// A chat warm-up whose LLM call used 30 in / 7 out, and the lines the service wrote.
    fn warm_up(lines: &[&str]) -> WarmUp {
        let mut warm_up = crate::probe::warm_up::tests::warm_up(200, "{}", 200);
        if let Ok(Answered { request_id, .. }) = &mut warm_up.answer {
            *request_id = Some("flwarm-00000001".into());
        }
        warm_up.logs = lines
            .iter()
            .map(|text| LogLine {
                at_ms: 2.0,
                stream: LogStream::Stdout,
                text: text.to_string(),
            })
            .collect();
        warm_up.logs_total = 3 + lines.len();
        warm_up
    }

    fn plan() -> Plan {
        crate::scenario::load_scenario("flaky").unwrap()
    }

    #[test]
    fn fields_named_otherwise_are_findings_with_the_field_to_set() {
        let line = r#"{"severity":"info","req_id":"flwarm-00000001","usage":{"in":30,"out":7}}"#;
        let findings = judge(&plan(), &[warm_up(&[line])]);
        let settings: Vec<&str> = findings.iter().map(|f| f.setting.as_str()).collect();
        assert_eq!(
            settings,
            [
                r#"[logs] request_id_field (not set: the default "requestId")"#,
                r#"[logs] input_tokens_field (not set: the default "inputTokens")"#,
                r#"[logs] output_tokens_field (not set: the default "outputTokens")"#,
            ]
        );
        assert_eq!(
            findings[0].fix,
            r#"set [logs] request_id_field = "req_id" in faultline.toml"#
        );
        assert!(findings[0].saw.contains("fields req_id, severity, usage"));
        assert_eq!(
            findings[1].fix,
            r#"set [logs] input_tokens_field = "usage.in" in faultline.toml"#
        );
        assert_eq!(
            findings[2].fix,
            r#"set [logs] output_tokens_field = "usage.out" in faultline.toml"#
        );
    }

    #[test]
    fn a_profile_that_names_the_fields_finds_nothing() {
        let mut plan = plan();
        plan.expect.logs.request_id_field = "req_id".into();
        plan.expect.logs.input_tokens_field = "usage.in".into();
        plan.expect.logs.output_tokens_field = "usage.out".into();
        let line = r#"{"severity":"info","req_id":"flwarm-00000001","usage":{"in":30,"out":7}}"#;
        assert_eq!(judge(&plan, &[warm_up(&[line])]), []);
    }

    #[test]
    fn practices_the_checks_judge_are_not_findings() {
        // log-per-attempt: lines with the request id, no token counts anywhere.
        let attempt_line =
            r#"{"level":"info","requestId":"flwarm-00000001","attempt":1,"outcome":"ok"}"#;
        // A plain-text line, and a service that logs no request id at all.
        for lines in [
            vec![attempt_line],
            vec!["INFO answered flwarm-00000001 in 12 ms"],
            vec![r#"{"level":"info","msg":"answered"}"#],
        ] {
            assert_eq!(judge(&plan(), &[warm_up(&lines)]), [], "{lines:?}");
        }
    }

    #[test]
    fn no_log_line_at_all_is_a_finding_about_where_the_logs_are() {
        let mut quiet = warm_up(&[]);
        quiet.logs_total = 0;
        let findings = judge(&plan(), &[quiet]);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].saw.starts_with("no log line at all"));
        assert!(findings[0].fix.contains("[logs] file"));
        assert!(findings[0].blocks.contains(&"logs.tokens"));
    }
}
