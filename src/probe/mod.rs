//! The probe: the started (or attached) service against its description, before the load.
//!
//! `faultline validate` can only list what the configuration lacks ([`crate::preflight`]).
//! With the service running, the probe sends one warm-up request per flow
//! ([`warm_up`]) and reads what came back, what the service logged about it ([`logs`]) and its
//! metrics endpoint ([`metrics`]). A setting that does not match what the service does (a log
//! field it names otherwise, a metric it does not have, a request shape it refuses) is a
//! [`Finding`]: the run stops with exit 2 and the fix, or, when the user asked to go on
//! (`--allow-gaps`), the checks it concerns report "not applicable" with the reason. Nothing
//! caused by configuration is ever a FAIL.
//!
//! The probe must not cry wolf either: it calls a mismatch only what configuration explains.
//! A degraded answer, lines without token counts, a service that logs no request id: those
//! are practices the checks judge, and the probe leaves them to the checks.

pub mod logs;
pub mod metrics;
pub mod warm_up;

use crate::evidence::{FlowKind, MetricsSnapshot};
use crate::fakes::driver::Fakes;
use crate::preflight::{Lack, Need};
use crate::scenario::profile::Written;
use crate::scenario::Plan;
use crate::target::TargetProcess;
use warm_up::{Answered, WarmUp, WarmUps};

/// A setting that does not match what the service does.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The setting as it stands and where it was written:
    /// `[logs] request_id_field = "requestId" (faultline.toml:12:20)`.
    pub setting: String,
    /// What the probe saw instead.
    pub saw: String,
    /// What to change.
    pub fix: String,
    /// The checks that cannot be judged while it stands.
    pub blocks: Vec<&'static str>,
    /// The checks that judge only part of what they cover while it stands.
    pub narrows: Vec<&'static str>,
}

impl Finding {
    /// The finding as one line: setting, what was seen, the fix.
    pub fn line(&self) -> String {
        format!("{}: {}; fix: {}", self.setting, self.saw, self.fix)
    }

    /// The same as preflight needs, for a run that goes on: its checks "not applicable" (or
    /// "partial") with this reason.
    fn needs(&self, plan: &Plan) -> Vec<Need> {
        let missing = format!("{}: {}", self.setting, self.saw);
        let need = |checks: &[&'static str], lack| {
            let checks: Vec<String> = checks
                .iter()
                .filter(|id| !plan.expect.skips(id))
                .map(|id| id.to_string())
                .collect();
            (!checks.is_empty()).then(|| Need {
                checks,
                missing: missing.clone(),
                fix: self.fix.clone(),
                lack,
            })
        };
        need(&self.blocks, Lack::Config)
            .into_iter()
            .chain(need(&self.narrows, Lack::Partial))
            .collect()
    }
}

/// `[logs] request_id_field = "requestId" (faultline.toml:12:20)`, or for a key left to its
/// default, `[logs] request_id_field (not set: the default "requestId")`.
pub(crate) fn setting(
    section: &str,
    key: &str,
    value: &str,
    written: Option<&Written<String>>,
) -> String {
    match written {
        Some(w) => format!("[{section}] {key} = {value:?} ({})", w.at),
        None => format!("[{section}] {key} (not set: the default {value:?})"),
    }
}

/// What the probe found, and what the run keeps of it.
pub struct Probed {
    /// Settings that do not match the service: the run stops unless told to go on.
    pub findings: Vec<Finding>,
    /// What is left out by design (a default figure the service does not have): printed and
    /// kept in the evidence, never a reason to stop.
    pub notes: Vec<Need>,
    /// The metrics after the warm-ups: the run's first snapshot.
    pub metrics: Option<MetricsSnapshot>,
    /// Whose traces to leave out of the evidence.
    pub warm_ups: WarmUps,
}

impl Probed {
    /// The gap lines for the evidence: the notes, and the findings' when the run goes on.
    pub fn gaps(&self, plan: &Plan) -> Vec<String> {
        self.notes
            .iter()
            .cloned()
            .chain(self.findings.iter().flat_map(|f| {
                let needs = f.needs(plan);
                if needs.is_empty() {
                    // A finding that concerns no check (a refused warm-up) stays a note.
                    vec![Need {
                        checks: vec!["probe".into()],
                        missing: format!("{}: {}", f.setting, f.saw),
                        fix: f.fix.clone(),
                        lack: Lack::Partial,
                    }]
                } else {
                    needs
                }
            }))
            .map(|need| need.gap())
            .collect()
    }

    /// Why the run stops, with every finding and its fix.
    pub fn stop_message(&self, plan: &Plan) -> String {
        let mut text = format!(
            "the service does not match its description: {} setting(s) to fix before the load \
             (or pass --allow-gaps to run with the checks they concern not applicable):",
            self.findings.len()
        );
        for finding in &self.findings {
            text.push_str(&format!(
                "\n  - {}\n    saw: {}\n    fix: {}",
                finding.setting, finding.saw, finding.fix
            ));
        }
        if let Some(api) = &plan.expect.profile.api_source {
            text.push_str(&format!("\n  ([api] is read from {api})"));
        }
        text
    }
}

/// Probes the ready service: one warm-up per flow, its logs, its metrics.
pub async fn probe(
    plan: &Plan,
    target: &TargetProcess,
    fakes: &Fakes,
    epoch: std::time::Instant,
) -> Probed {
    let warm_ups = warm_up::send_all(plan, target, fakes, epoch).await;
    let mut findings: Vec<Finding> = warm_ups
        .iter()
        .filter_map(|w| judge_answer(plan, w))
        .collect();
    findings.extend(logs::judge(plan, &warm_ups));
    let mut notes = Vec::new();
    let mut snapshot = None;
    if plan.target.metrics_path.is_some() {
        let at_ms = epoch.elapsed().as_secs_f64() * 1000.0;
        let read = metrics::fetch(target.base_url(), plan, at_ms).await;
        let (metric_findings, metric_notes) = metrics::judge(plan, &read, &warm_ups);
        findings.extend(metric_findings);
        notes.extend(metric_notes);
        snapshot = read.ok();
    }
    Probed {
        findings,
        notes,
        metrics: snapshot,
        warm_ups: WarmUps::of(&warm_ups),
    }
}

/// The warm-up's answer against `[api]`: it must be answered, 2xx, and carry its request id
/// where the API description says (when it says anywhere).
fn judge_answer(plan: &Plan, warm_up: &WarmUp) -> Option<Finding> {
    let table = match warm_up.kind {
        FlowKind::Chat => "[api.chat]",
        FlowKind::Stream => "[api.stream]",
        FlowKind::Agent => "[api.agent]",
        FlowKind::Write => "[api.write]",
    };
    let request = format!("{table} {} (flow `{}`)", warm_up.request, warm_up.flow);
    let upstream = upstream(warm_up);
    let answered = match &warm_up.answer {
        Err(why) => {
            return Some(Finding {
                setting: request,
                saw: format!("the warm-up request got no answer ({why}){upstream}"),
                fix: "check the path and that the service answers it within [load] \
                      request_timeout"
                    .into(),
                blocks: Vec::new(),
                narrows: Vec::new(),
            })
        }
        Ok(answered) => answered,
    };
    let excerpt = crate::checks::sla::excerpt(&answered.excerpt);
    match answered.status {
        200..=299 => {}
        status @ 400..=499 => {
            return Some(Finding {
                setting: request,
                saw: format!(
                    "the service answered {status} to the warm-up request: {excerpt}{upstream}"
                ),
                fix: format!(
                    "make {table} (method, path, body, headers) what the service accepts; the \
                     body is a template with \"{{message}}\" where the question goes"
                ),
                blocks: Vec::new(),
                narrows: Vec::new(),
            })
        }
        status => {
            return Some(Finding {
                setting: request,
                saw: format!(
                    "the service failed the warm-up request with {status} before any fault was \
                     on: {excerpt}{upstream}"
                ),
                fix: "a service answers a plain request when its dependencies are healthy: check \
                      [target] env (the fakes' addresses such as {llm}, and {llm_key}) and the \
                      service's own log lines"
                    .into(),
                blocks: Vec::new(),
                narrows: Vec::new(),
            })
        }
    }
    request_id(plan, warm_up, answered)
}

fn request_id(plan: &Plan, warm_up: &WarmUp, answered: &Answered) -> Option<Finding> {
    let shape = &plan.api.response;
    if answered.request_id.is_some()
        || (shape.request_id_header.is_none() && shape.request_id_pointer.is_none())
    {
        return None;
    }
    let places: Vec<String> = [
        shape
            .request_id_header
            .as_ref()
            .map(|h| format!("request_id_header = {h:?}")),
        shape
            .request_id_pointer
            .as_ref()
            .map(|p| format!("request_id_pointer = {p:?}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let fields = body_fields(&answered.excerpt);
    let holds_id = fields_holding(&answered.excerpt, &warm_up.request_id);
    Some(Finding {
        setting: format!(
            "[api] {}{}",
            places.join(", "),
            match &plan.expect.profile.api_source {
                Some(file) => format!(" ({file})"),
                None => " (not set: the reference target's)".into(),
            }
        ),
        saw: format!(
            "the answer to the warm-up request (flow `{}`) had no request id there; its headers \
             are {}; its body's fields are {}",
            warm_up.flow,
            answered.header_names.join(", "),
            if fields.is_empty() {
                "none (not a JSON object)".into()
            } else {
                fields.join(", ")
            }
        ),
        fix: match holds_id {
            Some(pointer) => format!("set [api] request_id_pointer = \"{pointer}\""),
            None => "point [api] request_id_header or request_id_pointer where the service's \
                     answers carry the request id, or set both to \"\" if they carry none"
                .into(),
        },
        blocks: vec!["logs.request_id"],
        narrows: vec!["errors.honest"],
    })
}

/// `; the fakes saw: llm /v1/chat/completions 401` for a warm-up's upstream attempts.
fn upstream(warm_up: &WarmUp) -> String {
    if warm_up.upstream.is_empty() {
        return "; no fake saw a call for it".into();
    }
    let calls: Vec<String> = warm_up
        .upstream
        .iter()
        .take(6)
        .map(|a| {
            format!(
                "{} {} {}",
                a.fake,
                a.route,
                a.status.map_or("no answer".to_string(), |s| s.to_string())
            )
        })
        .collect();
    format!("; the fakes saw: {}", calls.join(", "))
}

/// The top-level fields of a JSON answer (or of a stream's last JSON event).
fn body_fields(body: &str) -> Vec<String> {
    json_of(body)
        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
        .unwrap_or_default()
}

/// The JSON pointer of a top-level field holding `id`, if one does.
fn fields_holding(body: &str, id: &str) -> Option<String> {
    let value = json_of(body)?;
    value
        .as_object()?
        .iter()
        .find(|(_, v)| v.as_str() == Some(id))
        .map(|(k, _)| format!("/{k}"))
}

fn json_of(body: &str) -> Option<serde_json::Value> {
    serde_json::from_str(body).ok().or_else(|| {
        body.lines()
            .rev()
            .filter_map(|l| l.strip_prefix("data:").map(str::trim))
            .find_map(|data| serde_json::from_str(data).ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::tests::attempt;

    fn warm_up(status: u16, body: &str, request_id: Option<&str>) -> WarmUp {
        let mut warm_up = warm_up::tests::warm_up(status, body, 401);
        if let Ok(answered) = &mut warm_up.answer {
            answered.request_id = request_id.map(String::from);
            answered.degraded = Some(true);
        }
        warm_up
    }

    fn plan() -> Plan {
        crate::scenario::load_scenario("flaky").unwrap()
    }

    #[test]
    fn a_refused_warm_up_names_the_request_shape_and_what_the_fakes_saw() {
        let finding = judge_answer(&plan(), &warm_up(404, r#"{"detail":"Not Found"}"#, None))
            .expect("a finding");
        assert_eq!(finding.setting, "[api.chat] POST /api/chat (flow `ask`)");
        assert!(finding.saw.contains("answered 404"), "{}", finding.saw);
        let finding = judge_answer(&plan(), &warm_up(502, "{}", None)).unwrap();
        assert!(
            finding
                .saw
                .contains("the fakes saw: llm /v1/chat/completions 401"),
            "{}",
            finding.saw
        );
        assert!(finding.fix.contains("{llm_key}"));
    }

    #[test]
    fn a_request_id_elsewhere_in_the_answer_is_pointed_at() {
        let body = r#"{"reply":"hi","rid":"flwarm-00000001"}"#;
        let finding = judge_answer(&plan(), &warm_up(200, body, None)).unwrap();
        assert!(finding.setting.starts_with(
            r#"[api] request_id_header = "x-request-id", request_id_pointer = "/requestId""#
        ));
        assert!(
            finding.saw.contains("its body's fields are reply, rid"),
            "{}",
            finding.saw
        );
        assert_eq!(finding.fix, r#"set [api] request_id_pointer = "/rid""#);
        assert_eq!(finding.blocks, ["logs.request_id"]);
        // Found: no finding, and a degraded answer is not a misconfiguration.
        assert_eq!(
            judge_answer(&plan(), &warm_up(200, body, Some("flwarm-00000001"))),
            None
        );
    }

    #[test]
    fn a_run_that_goes_on_makes_the_findings_checks_not_applicable() {
        let plan = plan();
        let probed = Probed {
            findings: vec![Finding {
                setting: "[logs] request_id_field = \"rid\" (faultline.toml:2:20)".into(),
                saw: "no log line had it".into(),
                fix: "set it".into(),
                blocks: vec!["logs.tokens"],
                narrows: vec!["fallback.redis"],
            }],
            notes: Vec::new(),
            metrics: None,
            warm_ups: WarmUps::default(),
        };
        let gaps = probed.gaps(&plan);
        assert_eq!(
            crate::preflight::blocked_reason(&gaps[0], "logs.tokens"),
            Some("[logs] request_id_field = \"rid\" (faultline.toml:2:20): no log line had it; set it")
        );
        assert!(gaps[1].starts_with("fallback.redis: partial: "));
        let stop = probed.stop_message(&plan);
        assert!(
            stop.contains("1 setting(s) to fix") && stop.contains("fix: set it"),
            "{stop}"
        );
    }

    #[test]
    fn the_warm_ups_leave_nothing_in_the_evidence() {
        let ids = WarmUps::of(&[warm_up(200, "{}", Some("svc-own-id"))]);
        let mut evidence = crate::evidence::Evidence::default();
        evidence.attempts = vec![
            attempt(
                -5.0,
                "llm",
                "/v1/chat/completions",
                "fl-00000001",
                Some(200),
                1.0,
            ),
            attempt(
                5.0,
                "llm",
                "/v1/chat/completions",
                "fl-00000002",
                Some(200),
                1.0,
            ),
        ]
        .into();
        evidence.logs = vec![
            crate::evidence::LogLine {
                at_ms: -4.0,
                stream: crate::evidence::LogStream::Stdout,
                text: r#"{"requestId":"svc-own-id"}"#.into(),
            },
            crate::evidence::LogLine {
                at_ms: 6.0,
                stream: crate::evidence::LogStream::Stdout,
                text: r#"{"requestId":"flreq-00000002"}"#.into(),
            },
        ];
        ids.scrub(&mut evidence);
        assert_eq!(evidence.attempts.len(), 1);
        assert_eq!(
            evidence.attempts.to_vec()[0].key.as_deref(),
            Some("fl-00000002")
        );
        assert_eq!(evidence.logs.len(), 1);
    }
}
