//! Over-time figures for the HTML report and the inline SVG that draws them.
//!
//! [`per_second`] turns evidence into one-second buckets (latency percentiles, requests, error
//! rate, upstream attempts per fake); [`line_chart`] draws series as an SVG string with the
//! fault windows shaded and the phase boundaries marked. No JavaScript and no chart library: the
//! report must open offline and render the same in any browser.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::html::escape;
use crate::evidence::Evidence;

/// Figures for each second of the run, by the second the request was sent (or the attempt
/// arrived), so a bucket lines up with the fault windows on the same clock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerSecond {
    /// p50 latency (ms) of the requests sent in each second; `None` when none was sent.
    pub p50_ms: Vec<Option<f64>>,
    pub p95_ms: Vec<Option<f64>>,
    /// Requests sent in each second.
    pub requests: Vec<f64>,
    /// Share of those requests that failed; `None` when none was sent.
    pub error_rate: Vec<Option<f64>>,
    /// Upstream attempts per second, per fake (sorted by name).
    pub attempts: BTreeMap<String, Vec<f64>>,
}

/// Buckets `evidence` into seconds, from 0 to the end of the run or of the data.
pub fn per_second(evidence: &Evidence) -> PerSecond {
    let last_ms = evidence
        .records
        .iter()
        .map(|r| r.at_ms)
        .chain(evidence.attempts.iter().map(|a| a.at_ms))
        .fold(evidence.duration_ms, f64::max);
    let seconds = (last_ms / 1000.0).floor() as usize + 1;
    let bucket = |at_ms: f64| ((at_ms.max(0.0) / 1000.0).floor() as usize).min(seconds - 1);

    let mut latencies = vec![Vec::new(); seconds];
    let mut failures = vec![0.0; seconds];
    for r in evidence.records.iter() {
        let b = bucket(r.at_ms);
        latencies[b].push(r.latency_ms);
        if !r.succeeded() {
            failures[b] += 1.0;
        }
    }
    let mut attempts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    // Attempts before the load started (the target warming up, indexing) are not load.
    for a in evidence.attempts.iter().filter(|a| a.at_ms >= 0.0) {
        attempts
            .entry(a.fake.clone())
            .or_insert_with(|| vec![0.0; seconds])[bucket(a.at_ms)] += 1.0;
    }

    let mut out = PerSecond {
        attempts,
        ..PerSecond::default()
    };
    for (mut values, failed) in latencies.into_iter().zip(failures) {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        out.requests.push(n as f64);
        out.p50_ms.push(nearest_rank(&values, 0.50));
        out.p95_ms.push(nearest_rank(&values, 0.95));
        out.error_rate.push((n > 0).then(|| failed / n as f64));
    }
    out
}

/// The nearest-rank percentile of sorted `values`: a latency actually observed, as the phase
/// table reports them.
fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One line on a chart: a value per second, `None` for a gap.
pub struct Line<'a> {
    /// Shown in the legend and as `data-series` on the path, which tests look for.
    pub name: &'a str,
    /// A CSS colour; the screenshot test looks for the p95 one.
    pub color: &'a str,
    pub values: Vec<Option<f64>>,
}

/// A shaded stretch of the x axis: a fault window, in ms.
pub struct Band {
    pub start_ms: f64,
    pub end_ms: f64,
    pub label: String,
}

/// A vertical marker: a phase boundary, in ms.
pub struct Marker {
    pub at_ms: f64,
    pub label: String,
}

/// How the y axis reads.
#[derive(Clone, Copy)]
pub enum Unit {
    Ms,
    Percent,
    Count,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;

/// An SVG line chart of `lines` over `seconds` seconds, with `bands` shaded behind the lines and
/// `markers` drawn as dashed verticals. `id` names the `<svg>` for tests and anchors.
pub fn line_chart(
    id: &str,
    title: &str,
    unit: Unit,
    seconds: usize,
    lines: &[Line],
    bands: &[Band],
    markers: &[Marker],
) -> String {
    let span_s = seconds.max(1) as f64;
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .fold(0.0_f64, |a, &b| a.max(b));
    let top = nice_ceiling(max, unit);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |s: f64| LEFT + s / span_s * plot_w;
    let y = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="{id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    let _ = write!(svg, "<title>{}</title>", escape(title));
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#c8c8c8"/>"##
    );
    for (i, band) in bands.iter().enumerate() {
        let (x0, x1) = (x(band.start_ms / 1000.0), x(band.end_ms / 1000.0));
        let _ = write!(
            svg,
            r##"<rect class="fault-window" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#fbe3e0"><title>{}</title></rect>"##,
            (x1 - x0).max(1.0),
            escape(&band.label)
        );
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#a33">{}</text>"##,
            x0 + 3.0,
            // Back-to-back windows would print their labels over each other: alternate rows.
            TOP + 12.0 + 13.0 * (i % 2) as f64,
            escape(&band.label)
        );
    }
    // Gridlines and y labels at 0, ½ and the top.
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
    // X labels: about eight ticks, on whole seconds.
    let step = ((span_s / 8.0).ceil() as usize).max(1);
    for s in (0..=seconds.max(1)).step_by(step) {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555">{s} s</text>"##,
            x(s as f64),
            TOP + plot_h + 16.0
        );
    }
    for m in markers {
        let mx = x(m.at_ms / 1000.0);
        let _ = write!(
            svg,
            r##"<line class="phase-boundary" x1="{mx:.1}" x2="{mx:.1}" y1="{TOP}" y2="{:.1}" stroke="#444" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#444">{}</text>"##,
            TOP + plot_h,
            mx + 3.0,
            TOP + plot_h - 4.0,
            escape(&m.label)
        );
    }
    for line in lines {
        let d = path_data(&line.values, |i| x(i as f64 + 0.5), y);
        if d.is_empty() {
            continue;
        }
        let _ = write!(
            svg,
            r#"<path data-series="{}" d="{d}" fill="none" stroke="{}" stroke-width="2.5" stroke-linejoin="round"/>"#,
            escape(line.name),
            line.color
        );
    }
    // Legend along the top.
    let mut lx = LEFT;
    for line in lines {
        let _ = write!(
            svg,
            r##"<rect x="{lx:.1}" y="8" width="14" height="4" fill="{}"/><text x="{:.1}" y="14" font-size="12" fill="#222">{}</text>"##,
            line.color,
            lx + 18.0,
            escape(line.name)
        );
        lx += 30.0 + 7.0 * line.name.chars().count() as f64;
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="14" font-size="12" text-anchor="end" fill="#222">{}</text>"##,
        LEFT + plot_w,
        escape(title)
    );
    svg.push_str("</svg>");
    svg
}

/// `M x y L x y …`, starting a new subpath after each gap; a lone point becomes a short
/// horizontal stroke so it still shows.
fn path_data(values: &[Option<f64>], x: impl Fn(usize) -> f64, y: impl Fn(f64) -> f64) -> String {
    let mut d = String::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    let flush = |run: &mut Vec<(f64, f64)>, d: &mut String| {
        if run.len() == 1 {
            let (px, py) = run[0];
            let _ = write!(d, "M{:.1} {py:.1}L{:.1} {py:.1}", px - 2.0, px + 2.0);
        } else {
            for (i, (px, py)) in run.iter().enumerate() {
                let _ = write!(d, "{}{px:.1} {py:.1}", if i == 0 { "M" } else { "L" });
            }
        }
        run.clear();
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => run.push((x(i), y(*v))),
            None if !run.is_empty() => flush(&mut run, &mut d),
            None => {}
        }
    }
    if !run.is_empty() {
        flush(&mut run, &mut d);
    }
    d
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `max` (so axis labels are round), at least 1
/// of the unit's natural step.
pub(crate) fn nice_ceiling(max: f64, unit: Unit) -> f64 {
    let floor = match unit {
        Unit::Ms => 10.0,
        Unit::Percent => 0.1,
        Unit::Count => 1.0,
    };
    if !max.is_finite() || max <= floor {
        return floor;
    }
    if let Unit::Percent = unit {
        // A share never exceeds 100%; 10%, 20%, 50%, 100% read best.
        return [0.1, 0.2, 0.5, 1.0]
            .into_iter()
            .find(|&c| c >= max)
            .unwrap_or(1.0);
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= max)
        .unwrap_or(10.0 * magnitude)
}

pub(crate) fn axis_label(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms if v >= 1000.0 => format!("{} s", trim(v / 1000.0)),
        Unit::Ms => format!("{} ms", trim(v)),
        Unit::Percent => format!("{}%", trim(v * 100.0)),
        Unit::Count => trim(v),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Attempt;
    use crate::evidence::Record;

    fn record(at_ms: f64, latency_ms: f64, status: u16) -> Record {
        Record {
            at_ms,
            flow: "chat".into(),
            request_id: "r".into(),
            nonce: "n".into(),
            status: Some(status),
            latency_ms,
            response_request_id: None,
            ..Record::default()
        }
    }

    fn attempt(at_ms: f64, fake: &str) -> Attempt {
        Attempt {
            at_ms,
            fake: fake.into(),
            route: "/".into(),
            key: None,
            fault: None,
            status: Some(200),
            duration_ms: 1.0,
            input_tokens: None,
            output_tokens: None,
            retry_count: None,
            chunks_sent: None,
            api_key: None,
            exchange: None,
        }
    }

    #[test]
    fn seconds_hold_their_percentiles_error_rate_and_attempts_per_fake() {
        let mut records: Vec<Record> = (1..=20)
            .map(|i| record(100.0 + i as f64, i as f64 * 10.0, 200))
            .collect();
        records.push(record(2_500.0, 900.0, 503));
        let evidence = Evidence {
            records: records.into(),
            attempts: vec![
                attempt(10.0, "llm"),
                attempt(2_100.0, "llm"),
                attempt(2_200.0, "llm"),
                attempt(2_300.0, "redis"),
            ]
            .into(),
            duration_ms: 3_000.0,
            ..Evidence::default()
        };
        let s = per_second(&evidence);
        assert_eq!(s.requests, [20.0, 0.0, 1.0, 0.0]);
        assert_eq!(s.p50_ms, [Some(100.0), None, Some(900.0), None]);
        assert_eq!(s.p95_ms[0], Some(190.0));
        assert_eq!(s.error_rate, [Some(0.0), None, Some(1.0), None]);
        assert_eq!(s.attempts["llm"], [1.0, 0.0, 2.0, 0.0]);
        assert_eq!(s.attempts["redis"], [0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn gaps_break_the_line_and_the_axis_top_is_round() {
        let d = path_data(
            &[Some(1.0), Some(2.0), None, Some(3.0)],
            |i| i as f64,
            |v| v,
        );
        assert_eq!(d, "M0.0 1.0L1.0 2.0M1.0 3.0L5.0 3.0");
        assert_eq!(nice_ceiling(730.0, Unit::Ms), 1000.0);
        assert_eq!(nice_ceiling(1_800.0, Unit::Ms), 2000.0);
        assert_eq!(nice_ceiling(0.3, Unit::Percent), 0.5);
        assert_eq!(nice_ceiling(0.0, Unit::Count), 1.0);
        assert_eq!(axis_label(2500.0, Unit::Ms), "2.5 s");
    }

    #[test]
    fn the_chart_shades_faults_marks_phases_and_escapes_labels() {
        let svg = line_chart(
            "latency",
            "latency <p95>",
            Unit::Ms,
            30,
            &[Line {
                name: "p95",
                color: "#d62728",
                values: vec![Some(100.0), Some(200.0)],
            }],
            &[Band {
                start_ms: 10_000.0,
                end_ms: 20_000.0,
                label: "llm <status 503>".into(),
            }],
            &[Marker {
                at_ms: 10_000.0,
                label: "fault".into(),
            }],
        );
        assert!(svg.starts_with(r#"<svg id="latency""#));
        assert!(svg.contains(r#"<path data-series="p95" d="M"#));
        assert!(svg.contains(r#"class="fault-window""#));
        assert!(svg.contains(r#"class="phase-boundary""#));
        assert!(svg.contains("llm &lt;status 503&gt;"));
        assert!(!svg.contains("<p95>"));
    }
}
