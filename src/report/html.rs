//! `report.html`: one self-contained page a person opens on a laptop, offline.
//!
//! Verdict first (pass or fail, and which gates failed and why, in words), then the over-time
//! charts (latency p50/p95, throughput, error rate, upstream attempts per fake) with the fault
//! windows shaded and the phase boundaries marked, the per-phase table, and a section per check
//! with its evidence: the worst requests with the upstream attempts the fakes saw for each, and
//! the target's log lines about them.
//!
//! Inline CSS, inline SVG drawn here, no script: nothing to fetch, nothing to throw in a
//! console. Every piece of text from the run (bodies, log lines, ids) goes through [`escape`],
//! and through [`redact`] where it came from the target, since a hostile or leaky body must
//! neither run in the reader's browser nor publish a key.

use std::fmt::Write;

use super::chart::{self, Band, Line, Marker, Unit};
use super::redact::redact;
use super::{format_figure, format_ms, format_ratio, format_window, gate_line, Report};
use crate::checks::{Outcome, Verdict};
use crate::evidence::Attempt;
use crate::evidence::{Evidence, Record};

/// Requests shown with their attempt timeline per check.
const WORST_SHOWN: usize = 5;
/// Log lines shown per check.
const LOG_LINES_SHOWN: usize = 10;
/// Characters of a body excerpt or log line shown before it is cut.
const TEXT_SHOWN: usize = 400;

/// The p95 line's colour; tests/report_html.rs looks for it in a screenshot.
pub const P95_COLOR: &str = "#d62728";
const P50_COLOR: &str = "#1f77b4";
const FAKE_COLORS: [&str; 6] = [
    "#9467bd", "#2ca02c", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// Text made safe inside HTML elements and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text from the target (bodies, log lines): secrets out, cut to a readable length, escaped.
fn shown(text: &str) -> String {
    let text = redact(text);
    let cut: String = text.chars().take(TEXT_SHOWN).collect();
    let more = if cut.len() < text.len() { " …" } else { "" };
    format!("{}{more}", escape(&cut))
}

/// The HTML report. Without `evidence` (a report re-rendered from report.json alone) the
/// over-time charts and per-request timelines are left out, and the page says why.
pub fn report_html(report: &Report, evidence: Option<&Evidence>) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let verdict_word = if report.passed { "PASS" } else { "FAIL" };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>faultline: {} — {verdict_word}</title><style>{CSS}</style></head><body><main>",
        escape(&report.scenario)
    );

    header(&mut h, report);
    verdict_banner(&mut h, report);
    verdict_table(&mut h, report);
    if !report.notes.is_empty() {
        h.push_str("<section id=\"notes\"><h2>Notes</h2><ul>");
        for note in &report.notes {
            let _ = write!(h, "<li>{}</li>", escape(note));
        }
        h.push_str("</ul></section>");
    }
    match evidence {
        Some(evidence) => charts(&mut h, report, evidence),
        None => h.push_str(
            "<section id=\"charts\"><h2>Over time</h2><p class=\"note\">evidence.json was not \
             found beside report.json, so the over-time charts and the per-request attempt \
             timelines are left out. The phase table and the verdicts below come from \
             report.json.</p></section>",
        ),
    }
    phase_table(&mut h, report);
    timeline_table(&mut h, report);
    h.push_str("<section id=\"checks\"><h2>Checks</h2>");
    for v in &report.verdicts {
        check_section(&mut h, v, evidence);
    }
    h.push_str("</section>");
    let c = &report.counts;
    let _ = write!(
        h,
        "<footer>{} requests, {} failed · {} upstream attempts{} · {} log lines · schema {}</footer>",
        c.requests,
        c.failures,
        c.upstream_attempts,
        if c.upstream_attempts_dropped > 0 {
            format!(" ({} dropped from full journals)", c.upstream_attempts_dropped)
        } else {
            String::new()
        },
        c.log_lines,
        escape(&report.schema)
    );
    h.push_str("</main></body></html>\n");
    h
}

const CSS: &str = "\
body{font-family:'DejaVu Sans',system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1d;line-height:1.45}\
main{max-width:1040px;margin:0 auto;padding:16px 24px 48px}\
h1{font-size:1.5rem;margin:.4rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
h3{font-size:1.02rem;margin:1.2rem 0 .3rem}\
.meta,.note,footer{color:#555;font-size:.9rem}\
.banner{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:1.05rem}\
.banner.pass{background:#e3f4e1;border:1px solid #8cc084}.banner.fail{background:#fbe3e0;border:1px solid #e0928a}\
.banner strong{font-size:1.3rem;margin-right:.6rem}\
table{border-collapse:collapse;width:100%;font-size:.88rem;background:#fff;margin:.4rem 0}\
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#efefec}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.pass{color:#25662a}.fail{color:#a1271d}.na{color:#666}\
.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd;margin:.4rem 0}\
pre,code{font-family:'DejaVu Sans Mono',monospace;font-size:.82rem}\
pre{background:#fff;border:1px solid #ddd;padding:6px 8px;white-space:pre-wrap;word-break:break-all}\
.check{background:#fff;border:1px solid #ddd;border-radius:6px;padding:4px 14px 10px;margin:10px 0}\
.check.fail,.check.pass,.check.na{color:#1d1d1d}.check.fail{border-left:5px solid #b03a2e}.check.pass{border-left:5px solid #5aa55a}.check.na{border-left:5px solid #aaa}";

fn header(h: &mut String, report: &Report) {
    let _ = write!(
        h,
        "<header><h1>faultline: {}</h1><p>{}</p><p class=\"meta\"><code>{}</code> · seed {}{} · \
         target: {} · started {} · ran {} · {} requests, {} failed</p></header>",
        escape(&report.scenario),
        escape(report.description.trim()),
        escape(&report.source),
        report.seed,
        if report.quick { " · quick" } else { "" },
        escape(&report.target),
        escape(&report.started_at),
        format_ms(report.duration_ms),
        report.counts.requests,
        report.counts.failures,
    );
}

fn verdict_banner(h: &mut String, report: &Report) {
    let class = if report.passed { "pass" } else { "fail" };
    // The banner says PASS or FAIL in large type; the gate line's own prefix would repeat it.
    let gate = gate_line(report);
    let detail = gate
        .split_once(": ")
        .map_or(gate.as_str(), |(_, rest)| rest);
    let _ = write!(
        h,
        "<section id=\"verdict\" class=\"banner {class}\"><strong>{}</strong>{}",
        if report.passed { "PASS" } else { "FAIL" },
        escape(detail)
    );
    if report.interrupted {
        h.push_str(
            "<p>The run was interrupted: the figures cover what was measured before it stopped.</p>",
        );
    }
    let failed: Vec<&Verdict> = report.failed().collect();
    if !failed.is_empty() {
        h.push_str("<ul class=\"failed\">");
        for v in failed {
            let _ = write!(
                h,
                "<li><a href=\"#check-{}\"><code>{}</code></a>: {}</li>",
                escape(&v.id),
                escape(&v.id),
                escape(v.summary.trim())
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
}

fn outcome_cell(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "<td class=\"pass\">pass</td>",
        Outcome::Fail => "<td class=\"fail\"><b>FAIL</b></td>",
        Outcome::NotApplicable => "<td class=\"na\">n/a</td>",
    }
}

fn verdict_table(h: &mut String, report: &Report) {
    h.push_str(
        "<section id=\"verdicts\"><h2>Verdicts</h2><table><thead><tr><th>Check</th>\
         <th>Outcome</th><th>Figure</th><th>Limit</th><th>Summary</th></tr></thead><tbody>",
    );
    for v in &report.verdicts {
        let _ = write!(
            h,
            "<tr><td><a href=\"#check-{id}\"><code>{id}</code></a></td>{}<td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            outcome_cell(v.outcome),
            escape(&format_figure(v.figure, &v.unit)),
            escape(&format_figure(v.limit, &v.unit)),
            escape(v.summary.trim()),
            id = escape(&v.id),
        );
    }
    h.push_str("</tbody></table></section>");
}

/// Fault windows as they happened (timeline on/off pairs); the planned windows when the
/// timeline is empty (a run interrupted before the first switch, or an old report).
pub fn fault_bands(report: &Report) -> Vec<Band> {
    let mut bands = Vec::new();
    let mut open: Vec<(&str, &str, Option<&str>, f64)> = Vec::new();
    for e in &report.timeline {
        let key = (e.fake.as_str(), e.fault.as_str(), e.route.as_deref());
        if e.on {
            open.push((key.0, key.1, key.2, e.at_ms));
        } else if let Some(i) = open.iter().position(|o| (o.0, o.1, o.2) == key) {
            let (fake, fault, _, start) = open.remove(i);
            bands.push(Band {
                start_ms: start,
                end_ms: e.at_ms,
                label: format!("{fake}: {fault}"),
            });
        }
    }
    // Still on when the run ended.
    for (fake, fault, _, start) in open {
        bands.push(Band {
            start_ms: start,
            end_ms: report.duration_ms.max(start),
            label: format!("{fake}: {fault}"),
        });
    }
    if bands.is_empty() {
        for w in report.faults.as_array().into_iter().flatten() {
            let (Some(start), Some(end)) = (w["start"].as_f64(), w["end"].as_f64()) else {
                continue;
            };
            let kind = w["fault"]["kind"].as_str().unwrap_or("fault");
            bands.push(Band {
                start_ms: start,
                end_ms: end,
                label: format!("{}: {kind} (planned)", w["fake"].as_str().unwrap_or("?")),
            });
        }
    }
    bands.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    bands
}

fn phase_markers(report: &Report) -> Vec<Marker> {
    report
        .phases
        .iter()
        .filter(|p| p.start_ms > 0.0)
        .map(|p| Marker {
            at_ms: p.start_ms,
            label: p.phase.to_string(),
        })
        .collect()
}

fn charts(h: &mut String, report: &Report, evidence: &Evidence) {
    let s = chart::per_second(evidence);
    let seconds = s.requests.len();
    let bands = fault_bands(report);
    let markers = phase_markers(report);
    h.push_str(
        "<section id=\"charts\"><h2>Over time</h2><p class=\"note\">Per second of the run, by \
         when each request was sent. Shaded: fault windows. Dashed: phase boundaries.</p>",
    );
    h.push_str(&chart::line_chart(
        "chart-latency",
        "latency per second",
        Unit::Ms,
        seconds,
        &[
            Line {
                name: "p50",
                color: P50_COLOR,
                values: s.p50_ms.clone(),
            },
            Line {
                name: "p95",
                color: P95_COLOR,
                values: s.p95_ms.clone(),
            },
        ],
        &bands,
        &markers,
    ));
    h.push_str(&chart::line_chart(
        "chart-throughput",
        "requests sent per second",
        Unit::Count,
        seconds,
        &[Line {
            name: "requests/s",
            color: "#2ca02c",
            values: s.requests.iter().map(|&v| Some(v)).collect(),
        }],
        &bands,
        &markers,
    ));
    h.push_str(&chart::line_chart(
        "chart-errors",
        "error rate per second",
        Unit::Percent,
        seconds,
        &[Line {
            name: "error rate",
            color: "#a1271d",
            values: s.error_rate.clone(),
        }],
        &bands,
        &markers,
    ));
    if s.attempts.is_empty() {
        h.push_str(
            "<p class=\"note\">The fakes recorded no upstream attempts during the load.</p>",
        );
    } else {
        let lines: Vec<Line> = s
            .attempts
            .iter()
            .enumerate()
            .map(|(i, (fake, values))| Line {
                name: fake,
                color: FAKE_COLORS[i % FAKE_COLORS.len()],
                values: values.iter().map(|&v| Some(v)).collect(),
            })
            .collect();
        h.push_str(&chart::line_chart(
            "chart-attempts",
            "upstream attempts per second, per fake",
            Unit::Count,
            seconds,
            &lines,
            &bands,
            &markers,
        ));
        if evidence.attempts_dropped > 0 {
            let _ = write!(
                h,
                "<p class=\"note\">{} early attempts were pushed out of the fakes' bounded \
                 journals: the attempts chart is partial.</p>",
                evidence.attempts_dropped
            );
        }
    }
    h.push_str("</section>");
}

fn phase_table(h: &mut String, report: &Report) {
    h.push_str(
        "<section id=\"phases\"><h2>Phases</h2><table><thead><tr><th>Phase</th><th>Window</th>\
         <th>Requests</th><th>Failures</th><th>Error rate</th><th>p50</th><th>p95</th>\
         <th>p99</th><th>max</th></tr></thead><tbody>",
    );
    for p in &report.phases {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            p.phase,
            format_window(p.start_ms, p.end_ms),
            p.requests,
            p.failures,
            format_ratio(p.error_rate),
            format_ms(p.p50_ms),
            format_ms(p.p95_ms),
            format_ms(p.p99_ms),
            format_ms(p.max_ms),
        );
    }
    h.push_str("</tbody></table>");
    if let Some(load) = &report.load {
        h.push_str("<p class=\"load\">");
        for line in super::load::lines(load) {
            let _ = write!(h, "{}<br>", escape(line.trim_start()));
        }
        h.push_str("</p>");
    }
    if let Some(why) = &report.invalid {
        let _ = write!(
            h,
            "<p><strong>The run cannot be judged:</strong> {}</p>",
            escape(why)
        );
    }
    h.push_str("</section>");
}

fn timeline_table(h: &mut String, report: &Report) {
    if report.timeline.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"timeline\"><h2>Fault timeline</h2><table><thead><tr><th>At</th>\
         <th>Fake</th><th>Fault</th><th>Route</th><th>Switched</th></tr></thead><tbody>",
    );
    for e in &report.timeline {
        let _ = write!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            format_ms(e.at_ms),
            escape(&e.fake),
            escape(&e.fault),
            escape(e.route.as_deref().unwrap_or("every route")),
            if e.on { "on" } else { "off" }
        );
    }
    h.push_str("</tbody></table></section>");
}

/// Does `line` mention `id` as a whole token (so `req-1` does not match `req-10`)?
fn mentions(line: &str, id: &str) -> bool {
    if id.is_empty() {
        return false;
    }
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    line.match_indices(id).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + id.len()..].chars().next();
        before.is_none_or(|c| !is_id_char(c)) && after.is_none_or(|c| !is_id_char(c))
    })
}

/// The requests a verdict's evidence names, slowest first: the ones worth a timeline.
fn worst_requests(verdict: &Verdict, evidence: &Evidence) -> Vec<Record> {
    let mut named: Vec<Record> = evidence
        .records
        .iter()
        .filter(|r| verdict.evidence.iter().any(|l| mentions(l, &r.request_id)))
        .collect();
    named.sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
    named.truncate(WORST_SHOWN);
    named
}

/// The upstream attempts the fakes tied to `record`: by its nonce, or a propagated request id
/// (a pass over the attempts' stream, for one of the few requests a report shows).
fn attempts_for(record: &Record, evidence: &Evidence) -> Vec<Attempt> {
    evidence
        .attempts
        .iter()
        .filter(|a| {
            a.key
                .as_deref()
                .is_some_and(|k| k == record.nonce || k == record.request_id)
        })
        .collect()
}

fn check_section(h: &mut String, v: &Verdict, evidence: Option<&Evidence>) {
    let class = match v.outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::NotApplicable => "na",
    };
    let _ = write!(
        h,
        "<article class=\"check {class}\" id=\"check-{id}\"><h3><code>{id}</code> — {}</h3>\
         <p>{}</p><p class=\"meta\">figure {} · limit {}</p>",
        match v.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::NotApplicable => "not applicable",
        },
        escape(v.summary.trim()),
        escape(&format_figure(v.figure, &v.unit)),
        escape(&format_figure(v.limit, &v.unit)),
        id = escape(&v.id),
    );
    let _ = write!(h, "<p class=\"meta\">{}</p>", escape(&v.title));
    if !v.evidence.is_empty() {
        h.push_str("<pre class=\"evidence\">");
        for line in &v.evidence {
            h.push_str(&shown(line));
            h.push('\n');
        }
        h.push_str("</pre>");
    }
    if let Some(evidence) = evidence {
        let worst = worst_requests(v, evidence);
        for r in &worst {
            request_timeline(h, r, evidence);
        }
        let logs: Vec<_> = evidence
            .logs
            .iter()
            .filter(|l| {
                worst
                    .iter()
                    .any(|r| mentions(&l.text, &r.request_id) || mentions(&l.text, &r.nonce))
            })
            .take(LOG_LINES_SHOWN)
            .collect();
        if !logs.is_empty() {
            h.push_str("<p>The target's log lines about these requests (secrets redacted):</p><pre class=\"logs\">");
            for l in logs {
                let _ = writeln!(h, "{:>9}  {}", format_ms(l.at_ms), shown(&l.text));
            }
            h.push_str("</pre>");
        }
    }
    h.push_str("</article>");
}

fn request_timeline(h: &mut String, r: &Record, evidence: &Evidence) {
    let outcome = match (r.status, &r.error) {
        (Some(status), _) => format!("status {status}"),
        (None, Some(error)) => format!("no answer ({error})"),
        (None, None) => "no answer".into(),
    };
    let _ = write!(
        h,
        "<details class=\"request\" open><summary><code>{}</code> · {} · sent at {} · {} after \
         {}</summary>",
        escape(&r.request_id),
        escape(&r.flow),
        format_ms(r.at_ms),
        escape(&outcome),
        format_ms(r.latency_ms),
    );
    let attempts = attempts_for(r, evidence);
    if attempts.is_empty() {
        h.push_str("<p class=\"note\">No upstream attempt was tied to this request.</p>");
    } else {
        h.push_str(
            "<table class=\"attempts\"><thead><tr><th>+ from send</th><th>Fake</th><th>Route</th>\
             <th>Status</th><th>Fault</th><th>Took</th></tr></thead><tbody>",
        );
        for a in attempts {
            let _ = write!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td></tr>",
                format_offset(a.at_ms - r.at_ms),
                escape(&a.fake),
                escape(&a.route),
                a.status
                    .map_or_else(|| "no answer".to_string(), |s| s.to_string()),
                escape(a.fault.as_deref().unwrap_or("-")),
                format_ms(a.duration_ms),
            );
        }
        h.push_str("</tbody></table>");
    }
    if !r.body_excerpt.is_empty() {
        let _ = write!(h, "<pre class=\"body\">{}</pre>", shown(&r.body_excerpt));
    }
    h.push_str("</details>");
}

fn format_offset(ms: f64) -> String {
    if ms < 0.0 {
        format!("-{}", format_ms(-ms))
    } else {
        format!("+{}", format_ms(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome::{Fail, NotApplicable, Pass};
    use crate::evidence::{LogLine, LogStream, TimelineEvent};
    use crate::report::json::tests::{evidence, plan, report};

    fn attempt(at_ms: f64, key: &str, status: Option<u16>, fault: Option<&str>) -> Attempt {
        Attempt {
            at_ms,
            fake: "llm".into(),
            route: "/v1/chat/completions".into(),
            key: Some(key.into()),
            fault: fault.map(Into::into),
            status,
            duration_ms: 3.0,
            input_tokens: None,
            output_tokens: None,
            retry_count: None,
            chunks_sent: None,
            api_key: None,
            exchange: None,
        }
    }

    #[test]
    fn html_escapes_every_kind_of_markup_character() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn the_page_leads_with_the_verdict_and_names_what_failed() {
        let report = report(&[("sla.p95.fault", Fail), ("errors.honest", Pass)]);
        let html = report_html(&report, Some(&evidence(&plan())));
        let verdict = html.find("id=\"verdict\"").unwrap();
        assert!(verdict < html.find("id=\"charts\"").unwrap());
        assert!(html.contains("<strong>FAIL</strong>1 of 2 gates failed (sla.p95.fault)"));
        assert!(html.contains(
            "<li><a href=\"#check-sla.p95.fault\"><code>sla.p95.fault</code></a>: sla.p95.fault summary | with a pipe</li>"
        ));
        assert!(html.contains("<path data-series=\"p95\""));
        assert!(html.contains("<path data-series=\"p50\""));
        assert!(html.contains("class=\"fault-window\""));
        assert!(html.contains("<td>fault</td><td>10 s–20 s</td>"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn bodies_and_logs_are_escaped_and_redacted_and_attempts_are_tied_by_nonce() {
        let plan = plan();
        let mut evidence = evidence(&plan);
        evidence.records.edit(|rs| rs[1].nonce = "n-slow".into());
        evidence.records.edit(|rs| {
            rs[1].body_excerpt = r#"<img src=x onerror=alert(1)> key sk-abcdef0123456789"#.into()
        });
        evidence.attempts = vec![
            attempt(12_010.0, "n-slow", Some(503), Some("status 503")),
            attempt(12_300.0, "n-slow", None, Some("hang")),
            attempt(12_400.0, "someone-else", Some(200), None),
        ]
        .into();
        evidence.logs = vec![LogLine {
            at_ms: 12_500.0,
            stream: LogStream::Stderr,
            text: "req-12000 upstream failed: Authorization: Bearer abc.def card 4111111111111111"
                .into(),
        }];
        let report = report(&[("sla.p95.fault", Fail)]);
        let html = report_html(&report, Some(&evidence));

        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; key sk-[redacted]"));
        assert!(!html.contains("sk-abcdef"));
        assert!(html.contains("<td class=\"num\">+10 ms</td><td>llm</td>"));
        assert!(html.contains("<td>no answer</td><td>hang</td>"));
        assert!(!html.contains("someone-else"));
        assert!(html.contains("Bearer [redacted] card [card redacted]"));
        assert!(!html.contains("abc.def"));
    }

    #[test]
    fn without_evidence_the_charts_are_left_out_and_the_page_says_why() {
        let report = report(&[("errors.honest", NotApplicable)]);
        let html = report_html(&report, None);
        assert!(html.contains("evidence.json was not found"));
        assert!(!html.contains("<svg"));
        assert!(html.contains("<strong>PASS</strong>"));
        assert!(html.contains("id=\"check-errors.honest\""));
    }

    #[test]
    fn fault_bands_pair_switches_and_fall_back_to_the_plan() {
        let mut report = report(&[]);
        assert_eq!(fault_bands(&report)[0].label, "llm: status (planned)");
        let event = |at_ms, on| TimelineEvent {
            at_ms,
            fake: "llm".into(),
            kind: "hang".into(),
            fault: "hang".into(),
            route: None,
            on,
        };
        report.timeline = vec![
            event(5_000.0, true),
            event(7_000.0, false),
            event(9_000.0, true),
        ];
        let bands = fault_bands(&report);
        assert_eq!(bands.len(), 2);
        assert_eq!((bands[0].start_ms, bands[0].end_ms), (5_000.0, 7_000.0));
        assert_eq!((bands[1].start_ms, bands[1].end_ms), (9_000.0, 30_000.0));
        assert_eq!(bands[1].label, "llm: hang");
    }

    #[test]
    fn ids_match_only_as_whole_tokens() {
        assert!(mentions("req-1 status=503", "req-1"));
        assert!(!mentions("req-10 status=503", "req-1"));
        assert!(mentions("{\"requestId\":\"req-1\"}", "req-1"));
    }
}
