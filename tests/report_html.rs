//! report.html in a real browser: Debian's headless `chromium` (installed by scripts/test via
//! scripts/provision/chromium.sh) loads a report built from hand-made evidence, and
//!
//! - its DOM has the verdict and the charts' SVG paths, and the page logs no console error
//!   (a page that throws is the control, proving the error scan sees errors);
//! - a screenshot shows the p95 line drawn in the latency chart's colour (a report without
//!   evidence, so without charts, is the control).
//!
//! Without chromium these tests fail, saying how to get it: a browser test that silently passes
//! when no browser ran would tell nobody anything.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faultline::checks;
use faultline::evidence::Attempt;
use faultline::evidence::{Evidence, LogLine, LogStream, Record, TimelineEvent};
use faultline::report::{self, html::P95_COLOR, Report, RunMeta};
use faultline::scenario::Plan;

/// How long one chromium run may take before it is killed; a cold start takes a few seconds.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

fn plan() -> Plan {
    common::outage_plan()
}

/// 30 s of load, 5 requests a second: fast answers around a 10 s outage of slow 503s whose
/// bodies try to inject markup and leak a key, with retries the fake saw and a log line each.
fn evidence(plan: &Plan) -> Evidence {
    let mut records = Vec::new();
    let mut attempts = Vec::new();
    let mut logs = Vec::new();
    for i in 0..150 {
        let at_ms = i as f64 * 200.0;
        let in_fault = (10_000.0..20_000.0).contains(&at_ms);
        let nonce = format!("n{i}");
        let request_id = format!("req-{i}");
        let (status, latency_ms, body) = if in_fault {
            (
                503,
                2_000.0 + (i % 5) as f64 * 300.0,
                r#"{"error":"<script>alert('x')</script> upstream said sk-abcdef0123456789"}"#,
            )
        } else {
            (200, 150.0 + (i % 7) as f64 * 20.0, r#"{"answer":"Sunny."}"#)
        };
        let tries = if in_fault { 3 } else { 1 };
        for t in 0..tries {
            attempts.push(Attempt {
                at_ms: at_ms + 5.0 + t as f64 * 400.0,
                fake: "llm".into(),
                route: "/v1/chat/completions".into(),
                key: Some(nonce.clone()),
                fault: in_fault.then(|| "status 503".into()),
                status: Some(if in_fault { 503 } else { 200 }),
                duration_ms: 2.0,
                input_tokens: None,
                output_tokens: None,
                retry_count: None,
                chunks_sent: None,
                api_key: None,
                exchange: None,
            });
        }
        if in_fault {
            logs.push(LogLine {
                at_ms: at_ms + latency_ms,
                stream: LogStream::Stderr,
                text: format!(
                    "{request_id} llm failed after 3 tries; Authorization: Bearer abc.def"
                ),
            });
        }
        records.push(Record {
            at_ms,
            flow: "chat".into(),
            request_id,
            nonce,
            status: Some(status),
            latency_ms,
            response_request_id: None,
            body_excerpt: body.into(),
            ..Record::default()
        });
    }
    let switch = |at_ms, on| TimelineEvent {
        at_ms,
        fake: "llm".into(),
        kind: "status".into(),
        fault: "status 503".into(),
        route: None,
        on,
    };
    Evidence {
        phases: plan.phases(),
        timeline: vec![switch(10_000.0, true), switch(20_000.0, false)],
        records: records.into(),
        attempts: attempts.into(),
        logs,
        duration_ms: 30_000.0,
        ..Evidence::default()
    }
}

fn built() -> (Report, Evidence) {
    let plan = plan();
    let evidence = evidence(&plan);
    let meta = RunMeta {
        started_at: time::macros::datetime!(2025-06-01 08:00:00 UTC),
        target: "reference target".into(),
    };
    let report = report::build(
        &plan,
        &meta,
        &evidence,
        checks::evaluate(&evidence, &plan.expect),
    );
    (report, evidence)
}

fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed, so report.html cannot be checked in a browser: \
             run scripts/test (scripts/provision/chromium.sh installs Debian's chromium)"
        )
    })
}

/// What one headless chromium run left behind.
struct Browsed {
    stdout: String,
    stderr: String,
}

/// Runs headless chromium on `page` with `args`, in its own profile and process group; kills
/// the group if it outlives [`CHROMIUM_TIMEOUT`].
fn browse(page: &Path, args: &[String], scratch: &Path) -> Browsed {
    use std::os::unix::process::CommandExt;

    let profile = tempfile::tempdir_in(scratch).unwrap();
    let stdout_path = scratch.join(format!("stdout-{}", profile_name(&profile)));
    let stderr_path = scratch.join(format!("stderr-{}", profile_name(&profile)));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        // Files, not pipes: a chatty chromium cannot block on a full pipe while we wait.
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .process_group(0)
        .spawn()
        .expect("chromium did not start");
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // The whole group: chromium's renderer and zygote children too.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Leave no helper behind even when the main process exited first.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let browsed = Browsed {
        stdout: std::fs::read_to_string(&stdout_path).unwrap(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
    };
    assert!(
        status.success(),
        "chromium failed ({status}):\n{}",
        browsed.stderr
    );
    browsed
}

fn profile_name(dir: &tempfile::TempDir) -> String {
    dir.path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Console errors and uncaught exceptions chromium logged for the page.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("Uncaught")
                || (l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("error")))
        })
        .collect()
}

fn logging_args() -> Vec<String> {
    vec![
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        "--dump-dom".into(),
    ]
}

#[test]
fn the_page_renders_its_verdict_and_charts_without_console_errors() {
    // Arrange
    let (report, evidence) = built();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    report::write_all(&report, &evidence, &run).unwrap();

    // Act
    let browsed = browse(&run.join("report.html"), &logging_args(), dir.path());

    // Assert: the DOM as the browser built it
    let dom = &browsed.stdout;
    assert!(
        dom.contains("<strong>FAIL</strong>2 of 3 gates failed (sla.p95.fault, errors.honest)"),
        "no verdict in the DOM: {}",
        &dom[..dom.len().min(2_000)]
    );
    for series in ["p50", "p95", "requests/s", "error rate", "llm"] {
        assert!(
            dom.contains(&format!("<path data-series=\"{series}\" d=\"M")),
            "no {series} path in the DOM"
        );
    }
    assert!(dom.contains("class=\"fault-window\""));
    assert!(dom.contains("class=\"phase-boundary\""));
    // The hostile body stayed text: no script element came from it, and the key is gone.
    assert!(!dom.contains("<script"));
    assert!(dom.contains("&lt;script&gt;alert"));
    assert!(!dom.contains("sk-abcdef"));
    assert!(dom.contains("Bearer [redacted]"));
    let errors = console_errors(&browsed.stderr);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn the_console_error_scan_sees_an_error_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>console.error('broken on purpose'); \
         undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let browsed = browse(&page, &logging_args(), dir.path());
    let errors = console_errors(&browsed.stderr);
    assert!(
        errors.iter().any(|l| l.contains("Uncaught")),
        "the scan missed the thrown error:\n{}",
        browsed.stderr
    );
}

/// Pixels within a small distance of `color` (`#rrggbb`) in the PNG at `path`.
fn pixels_of(path: &Path, color: &str) -> usize {
    let channel = |i: usize| i32::from_str_radix(&color[i..i + 2], 16).unwrap();
    let want = [channel(1), channel(3), channel(5)];
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    buf[..info.buffer_size()]
        .chunks_exact(step)
        .filter(|px| (0..3).all(|c| (i32::from(px[c]) - want[c]).abs() <= 30))
        .count()
}

#[test]
fn a_screenshot_shows_the_latency_chart_drawn() {
    // Arrange: the same report with evidence (charts) and without (the control)
    let (report, evidence) = built();
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with");
    report::write_all(&report, &evidence, &with).unwrap();
    let without = dir.path().join("without");
    std::fs::create_dir_all(&without).unwrap();
    std::fs::write(
        without.join("report.html"),
        report::report_html(&report, None),
    )
    .unwrap();

    // Act
    let shoot = |run: &Path| {
        let shot = run.join("shot.png");
        browse(
            &run.join("report.html"),
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2000".into(),
            ],
            dir.path(),
        );
        shot
    };
    let drawn = pixels_of(&shoot(&with), P95_COLOR);
    let control = pixels_of(&shoot(&without), P95_COLOR);
    eprintln!("p95-coloured pixels: {drawn} with the chart, {control} without");

    // Assert: a 2.5 px line across most of a ~1000 px wide chart is well over a thousand pixels
    assert!(
        drawn > 1_000,
        "only {drawn} p95-coloured pixels in the screenshot"
    );
    assert!(
        control < 100,
        "{control} p95-coloured pixels without a chart"
    );
}
