//! The capacity search's `report.html`: the knee in words, two charts over the arrival rate
//! (p95 response time and error rate of each step's headline phase, each step a dot marked
//! pass or fail, the knee shaded between the highest pass and the lowest failure), and the
//! table of steps with links to each step's own report. Inline SVG, no script, as the run
//! reports are.

use std::fmt::Write;

use super::report::{per_s, CapacityReport};
use super::step::{Step, StepVerdict};
use crate::checks::sla::{format_ms, format_ratio};
use crate::report::chart::{axis_label, nice_ceiling, Unit};
use crate::report::html::escape;

/// Dot colours: pass, fail (gates or saturation), and a step not judged.
const PASS_COLOR: &str = "#2ca02c";
const FAIL_COLOR: &str = "#d62728";
const OTHER_COLOR: &str = "#8c8c8c";

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;

const CSS: &str = "\
body{font-family:'DejaVu Sans',system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1d;line-height:1.45}\
main{max-width:1040px;margin:0 auto;padding:16px 24px 48px}h1{font-size:1.5rem}\
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}.meta,.note{color:#555;font-size:.9rem}\
.banner{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:1.05rem}\
.banner.pass{background:#e3f4e1;border:1px solid #8cc084}.banner.fail{background:#fbe3e0;border:1px solid #e0928a}\
table{border-collapse:collapse;width:100%;font-size:.88rem;background:#fff}\
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#efefec}\
td.num{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#25662a}.fail{color:#a1271d}.na{color:#666}\
.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd;margin:.4rem 0}";

/// The page.
pub fn capacity_html(report: &CapacityReport) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>faultline capacity: {}</title><style>{CSS}</style></head><body><main>\
         <header><h1>faultline capacity: {}</h1><p class=\"meta\"><code>{}</code> · seed {}{} \
         · target: {} · started {} · {} steps of {} each, {} arrivals · search from {} to {}, \
         precision {}</p></header>",
        escape(&report.scenario),
        escape(&report.scenario),
        escape(&report.source),
        report.seed,
        if report.quick { " · quick" } else { "" },
        escape(&report.target),
        escape(&report.started_at),
        report.steps.len(),
        format_ms(report.step_duration_ms),
        escape(&report.arrivals),
        per_s(report.bounds.min),
        per_s(report.bounds.max),
        escape(&report.bounds.precision.describe()),
    );
    let class = if report.exit_code == 0 {
        "pass"
    } else {
        "fail"
    };
    let _ = write!(
        h,
        "<section id=\"knee\" class=\"banner {class}\">{}{}</section>",
        escape(&report.summary),
        if report.interrupted {
            "<p>The search was interrupted: the steps below are what was measured before.</p>"
        } else {
            ""
        }
    );
    let phase = report
        .steps
        .iter()
        .find_map(|s| s.headline_phase)
        .map(|p| p.to_string())
        .unwrap_or_else(|| "run".into());
    h.push_str("<section id=\"charts\"><h2>Rate against response time and errors</h2>");
    let _ = write!(
        h,
        "<p class=\"note\">Each dot is a step: the scenario run at that arrival rate, faults \
         and all; green passed every gate, red failed one (or saturated), grey was not judged. \
         Figures are the {} phase's. The shaded band is the knee: between the highest rate that \
         passed and the lowest that failed.</p>",
        escape(&phase)
    );
    h.push_str(&rate_chart(
        "capacity-p95",
        &format!("p95 response time ({phase})"),
        Unit::Ms,
        report,
        |s| s.p95_ms,
    ));
    h.push_str(&rate_chart(
        "capacity-errors",
        &format!("error rate ({phase})"),
        Unit::Percent,
        report,
        |s| s.error_rate,
    ));
    h.push_str("</section>");
    steps_table(&mut h, report, &phase);
    let _ = writeln!(
        h,
        "<footer class=\"note\">schema {}</footer></main></body></html>",
        escape(&report.schema)
    );
    h
}

fn steps_table(h: &mut String, report: &CapacityReport, phase: &str) {
    let _ = write!(
        h,
        "<section id=\"steps\"><h2>Steps</h2><table><thead><tr><th>Step</th><th>Rate asked</th>\
         <th>Achieved</th><th>p95 ({phase})</th><th>Errors ({phase})</th><th>Verdict</th>\
         <th>Gates failed</th><th>Note</th><th>Report</th></tr></thead><tbody>",
        phase = escape(phase)
    );
    for s in &report.steps {
        let class = verdict_class(s.verdict);
        let link = s
            .dir
            .as_ref()
            .and_then(|d| d.file_name())
            .map(|name| {
                let name = escape(&name.to_string_lossy());
                format!("<a href=\"{name}/report.html\">{name}</a>")
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr class=\"step\"><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
            s.number,
            per_s(s.rate),
            s.achieved_rate
                .map(|r| format!("{r:.1}/s"))
                .unwrap_or_else(|| "-".into()),
            s.p95_ms.map(format_ms).unwrap_or_else(|| "-".into()),
            s.error_rate.map(format_ratio).unwrap_or_else(|| "-".into()),
            escape(s.verdict.word()),
            escape(&s.failed_gates.join(", ")),
            escape(s.why.as_deref().unwrap_or_default()),
        );
    }
    h.push_str("</tbody></table></section>");
}

fn verdict_class(verdict: StepVerdict) -> &'static str {
    match verdict {
        StepVerdict::Pass => "pass",
        StepVerdict::Fail | StepVerdict::Saturated => "fail",
        _ => "na",
    }
}

/// An SVG chart of `value` per step over the arrival rate: a line through the steps in rate
/// order, a dot per step coloured by its verdict, the knee shaded.
fn rate_chart(
    id: &str,
    title: &str,
    unit: Unit,
    report: &CapacityReport,
    value: impl Fn(&Step) -> Option<f64>,
) -> String {
    let mut points: Vec<(&Step, f64)> = report
        .steps
        .iter()
        .filter_map(|s| value(s).map(|v| (s, v)))
        .collect();
    points.sort_by(|a, b| a.0.rate.total_cmp(&b.0.rate));
    let top_rate = report
        .steps
        .iter()
        .map(|s| s.rate)
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.08;
    let top = nice_ceiling(points.iter().map(|p| p.1).fold(0.0, f64::max), unit);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |rate: f64| LEFT + rate / top_rate * plot_w;
    let y = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg id="{id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#c8c8c8"/>"##,
        t = escape(title)
    );
    if let (Some(pass), Some(fail)) = (report.knee.highest_pass, report.knee.lowest_fail) {
        if pass < fail {
            let _ = write!(
                svg,
                r##"<rect class="knee" x="{:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#fbe3e0"><title>knee: passes at {}, fails at {}</title></rect><text x="{:.1}" y="{:.1}" font-size="11" fill="#a33">knee</text>"##,
                x(pass),
                (x(fail) - x(pass)).max(1.0),
                per_s(pass),
                per_s(fail),
                x(pass) + 3.0,
                TOP + 12.0
            );
        }
    }
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#e6e6e6"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
            LEFT + plot_w,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            axis_label(v, unit)
        );
    }
    // A label under each step's rate, left out where it would overlap the one before.
    let mut rates: Vec<f64> = report.steps.iter().map(|s| s.rate).collect();
    rates.sort_by(f64::total_cmp);
    let mut last_x = f64::NEG_INFINITY;
    for rate in rates {
        if x(rate) - last_x < 40.0 {
            continue;
        }
        last_x = x(rate);
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{}</text>"##,
            x(rate),
            TOP + plot_h + 14.0,
            per_s(rate)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#333">arrival rate (steps)</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0
    );
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (s, v))| {
            format!(
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                x(s.rate),
                y(*v)
            )
        })
        .collect();
    if !path.is_empty() {
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
            path.join("")
        );
    }
    for (s, v) in &points {
        let color = match verdict_class(s.verdict) {
            "pass" => PASS_COLOR,
            "fail" => FAIL_COLOR,
            _ => OTHER_COLOR,
        };
        let shown = match unit {
            Unit::Percent => format_ratio(*v),
            _ => format_ms(*v),
        };
        let _ = write!(
            svg,
            r##"<circle class="step {}" data-rate="{}" cx="{:.1}" cy="{:.1}" r="5" fill="{color}"><title>step {}: {}, {}, {}</title></circle>"##,
            verdict_class(s.verdict),
            s.rate,
            x(s.rate),
            y(*v),
            s.number,
            per_s(s.rate),
            shown,
            s.verdict.word()
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="16" font-size="12" text-anchor="end" fill="#222">{}</text></svg>"##,
        LEFT + plot_w,
        escape(title)
    );
    svg
}
