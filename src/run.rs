//! The orchestrator: one run of one plan. It starts the fakes, starts the target with its
//! dependencies pointed at them, drives the load while the timeline switches faults, stops
//! everything in order, gathers the evidence, checks it and writes the reports.
//!
//! Everything is timed on one clock: milliseconds from the moment the load starts. Fakes and
//! the target start earlier, so what they saw before the load (readiness probes, indexing)
//! has negative times.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::checks::{self, Verdict};
use crate::evidence::{Evidence, MetricsFormat, MetricsSnapshot, TimelineEvent};
use crate::fakes::fault::{FaultRule, Switchboard};
use crate::fakes::set::{FakeSet, FAKE_LLM_KEY};
use crate::fakes::FakeError;
use crate::load::{self, LoadError, LoadSpec};
use crate::report::{self, Report, RunMeta};
use crate::scenario::{FakeName, Plan};
use crate::target::{self, SpawnSpec, TargetError, TargetProcess};

/// Choices made on the command line rather than in the scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where to write the reports; default `reports/<scenario>-<UTC time>/`.
    pub out_dir: Option<PathBuf>,
    /// The binary that serves the reference target (`faultline reference-target`).
    pub reference_exe: Option<PathBuf>,
    /// Draw a live progress line on the terminal (never when stderr is not a terminal).
    pub progress: bool,
    /// Start the fakes on fixed ports from this one up (llm, weather, tickets, redis), so a
    /// target started by hand can be pointed at them; ephemeral ports when `None`.
    pub fake_ports: Option<u16>,
}

/// A finished run: its report, where it was written, and the evidence behind it.
pub struct RunOutcome {
    pub report: Report,
    pub dir: PathBuf,
    pub written: Vec<PathBuf>,
}

/// Why a run could not be made (exit code 2), each saying what to change.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Fake(#[from] FakeError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "could not write the reports to {dir}: {source}; pass --out DIR with a writable directory"
    )]
    Write { dir: String, source: std::io::Error },
    #[error("could not find faultline's own binary to run the reference target: {0}")]
    SelfExe(std::io::Error),
    #[error("interrupted before the load started; nothing was measured")]
    InterruptedEarly,
}

/// Runs `plan` to the end (or until `interrupt` turns true) and writes its reports.
pub async fn run(
    plan: &Plan,
    options: &RunOptions,
    interrupt: watch::Receiver<bool>,
) -> Result<RunOutcome, RunError> {
    let epoch = Instant::now();
    let started_at = time::OffsetDateTime::now_utc();

    let fakes = FakeSet::start(
        plan.seed,
        epoch,
        options.fake_ports,
        plan.fakes.redis_upstream.clone(),
    )
    .await?;
    let result = run_with_fakes(plan, options, interrupt, epoch, started_at, &fakes).await;
    fakes.shutdown().await;
    result
}

async fn run_with_fakes(
    plan: &Plan,
    options: &RunOptions,
    mut interrupt: watch::Receiver<bool>,
    epoch: Instant,
    started_at: time::OffsetDateTime,
    fakes: &FakeSet,
) -> Result<RunOutcome, RunError> {
    let mut gaps = Vec::new();
    let mut target = match &plan.target.url {
        Some(url) => {
            if plan.target.log_file.is_none() {
                gaps.push(format!(
                    "logs not captured: the target at {url} was attached, not started by \
                     faultline; set [target] log_file to read its log file"
                ));
            }
            TargetProcess::attach(url, plan.target.log_file.clone(), epoch)
        }
        None => {
            let port = target::free_port().map_err(|e| {
                RunError::Unsupported(format!("no free loopback port for the target: {e}"))
            })?;
            TargetProcess::spawn(&spawn_spec(plan, options, fakes, port)?, epoch)?
        }
    };
    if plan.target.metrics_path.is_none() {
        gaps.push(
            "no metrics endpoint: set [target] metrics_path to check the target's metrics".into(),
        );
    }
    // Say before the load what some checks will not be able to judge, not only after it.
    if options.progress {
        for gap in &gaps {
            eprintln!("faultline: note: {gap}");
        }
    }
    let ready = tokio::select! {
        ready = target.wait_ready(&plan.target.ready_path, plan.target.ready_timeout) => ready,
        _ = interrupt.wait_for(|stop| *stop) => {
            target.stop().await;
            return Err(RunError::InterruptedEarly);
        }
    };
    if let Err(error) = ready {
        target.stop().await;
        return Err(error.into());
    }

    // The load's clock starts here; everything else is shifted onto it.
    let load_start = Instant::now();
    let offset_ms = load_start.duration_since(epoch).as_secs_f64() * 1000.0;
    let (stop_tx, stop_rx) = watch::channel(false);
    let timeline = tokio::spawn(play_timeline(plan.clone(), fakes.boards(), load_start));
    let drain = load::drain_time(plan.load.request_timeout);
    let stopper = {
        let mut interrupt = interrupt.clone();
        let deadline = plan.load.duration + drain;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(deadline) => {}
                _ = interrupt.wait_for(|stop| *stop) => {}
            }
            let _ = stop_tx.send(true);
        })
    };
    let load_spec = LoadSpec {
        base_url: target.base_url().to_string(),
        api: plan.api.clone(),
        users: plan.load.users,
        duration: plan.load.duration,
        think_time: plan.load.think_time,
        request_timeout: plan.load.request_timeout,
        flows: plan.load.flows.clone(),
        seed: plan.seed,
    };
    let live = Arc::new(load::Live::default());
    let progress = tokio::spawn(show_progress(
        plan.clone(),
        fakes.boards(),
        live.clone(),
        load_start,
        options.progress,
    ));
    let records = load::drive(&load_spec, load_start, stop_rx, live).await;
    progress.abort();
    let _ = progress.await;
    let duration_ms = load_start.elapsed().as_secs_f64() * 1000.0;
    stopper.abort();
    timeline.abort();
    let mut timeline_events = timeline.await.unwrap_or_default();
    // The timeline was cut short (or ran out): switch off whatever it left on.
    for board in fakes.boards().values() {
        board.clear();
    }
    let metrics = read_metrics(&target, plan, offset_ms + duration_ms).await;
    let logs = target.logs().clone();
    target.stop().await;
    // A stopping target flushes its last spans; let them land before they are read.
    if fakes.span_journal().exports() > 0 {
        fakes
            .span_journal()
            .settle(Duration::from_millis(300), Duration::from_secs(3))
            .await;
    }
    let records = records?;

    let interrupted = *interrupt.borrow();
    let mut evidence = Evidence {
        phases: plan.phases(),
        timeline: Vec::new(),
        records,
        attempts: fakes.attempts(),
        attempts_dropped: fakes.dropped(),
        logs: logs.snapshot(),
        metrics: metrics.into_iter().collect(),
        writes: fakes.writes(),
        spans: fakes.spans(),
        spans_dropped: fakes.span_journal().dropped(),
        canaries: std::iter::once(FAKE_LLM_KEY.to_string())
            .chain(plan.load.secrets.iter().cloned())
            .collect(),
        gaps,
        duration_ms,
        interrupted,
    };
    timeline_events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    evidence.timeline = timeline_events;
    shift_onto_load_clock(&mut evidence, offset_ms);

    let verdicts: Vec<Verdict> = checks::evaluate(&evidence, &plan.expect);
    let meta = RunMeta {
        started_at,
        target: plan.target.describe(),
    };
    let report = report::build(plan, &meta, &evidence, verdicts);
    let dir = options
        .out_dir
        .clone()
        .unwrap_or_else(|| stamped_dir(&plan.name, started_at));
    let written =
        report::write_all(&report, &evidence, &dir).map_err(|source| RunError::Write {
            dir: dir.display().to_string(),
            source,
        })?;
    Ok(RunOutcome {
        report,
        dir,
        written,
    })
}

/// How to start the plan's target: the reference target by default, else the plan's command.
fn spawn_spec(
    plan: &Plan,
    options: &RunOptions,
    fakes: &FakeSet,
    port: u16,
) -> Result<SpawnSpec, RunError> {
    let values = fakes.placeholders(port);
    // The reference target caches answers only when a scenario gives it REDIS_URL = "{redis}":
    // a cache would answer most repeated questions and hide the LLM faults from users.
    let mut env = BTreeMap::new();
    env.insert("PORT".to_string(), port.to_string());
    let (program, args) = match &plan.target.command {
        None => {
            for (key, value) in [
                ("OPENAI_BASE_URL", "{llm}/v1"),
                ("OPENAI_API_KEY", "{llm_key}"),
                ("WEATHER_API_URL", "{tool.weather}"),
                ("TICKETS_API_URL", "{tool.tickets}"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "{otlp}"),
            ] {
                env.insert(key.to_string(), value.to_string());
            }
            let exe = match &options.reference_exe {
                Some(exe) => exe.clone(),
                None => std::env::current_exe().map_err(RunError::SelfExe)?,
            };
            let mut args = vec!["reference-target".to_string()];
            for flaw in &plan.target.flaws {
                args.extend(["--flaw".to_string(), flaw.clone()]);
            }
            (exe, args)
        }
        Some(command) => {
            // `{port}` and the fakes' addresses may appear in the command too.
            let mut words = command.iter().map(|word| render(word, &values));
            let program = PathBuf::from(words.next().unwrap_or_default());
            (program, words.collect())
        }
    };
    env.extend(plan.target.env.clone());
    let env = env
        .into_iter()
        .map(|(key, value)| (key, render(&value, &values)))
        .collect();
    Ok(SpawnSpec {
        program,
        args,
        env,
        cwd: plan.target.cwd.clone(),
        log_file: plan.target.log_file.clone(),
        base_url: format!("http://127.0.0.1:{port}"),
    })
}

/// Fills `{llm}`-style placeholders. The parser has refused unknown ones; other braces
/// (JSON in a value, say) are left as they are.
fn render(template: &str, values: &BTreeMap<&'static str, String>) -> String {
    values
        .iter()
        .fold(template.to_string(), |out, (placeholder, value)| {
            out.replace(placeholder, value)
        })
}

/// Switches the plan's fault windows on and off on the load's clock; returns what it did.
async fn play_timeline(
    plan: Plan,
    boards: BTreeMap<FakeName, Arc<Switchboard>>,
    load_start: Instant,
) -> Vec<TimelineEvent> {
    let mut switches: Vec<(Duration, bool, usize)> = Vec::new();
    for (id, window) in plan.faults.iter().enumerate() {
        switches.push((window.start, true, id));
        switches.push((window.end, false, id));
    }
    // At equal times, switch off before on, so back-to-back windows do not overlap.
    switches.sort_by_key(|(at, on, _)| (*at, *on));
    let mut events = Vec::new();
    for (at, on, id) in switches {
        tokio::time::sleep_until((load_start + at).into()).await;
        let window = &plan.faults[id];
        let Some(board) = boards.get(&window.fake) else {
            continue;
        };
        if on {
            board.activate(FaultRule {
                id,
                fault: window.fault.clone(),
                route: window.route.clone(),
                rate: window.rate,
                first_attempts: window.first_attempts,
            });
        } else {
            board.deactivate(id);
        }
        events.push(TimelineEvent {
            at_ms: load_start.elapsed().as_secs_f64() * 1000.0,
            fake: window.fake.as_str().to_string(),
            kind: window.fault.kind().to_string(),
            fault: window.fault.label(),
            route: window.route.clone(),
            on,
        });
    }
    events
}

/// Redraws the progress line a few times a second until aborted.
async fn show_progress(
    plan: Plan,
    boards: BTreeMap<FakeName, Arc<Switchboard>>,
    live: Arc<load::Live>,
    load_start: Instant,
    enabled: bool,
) {
    let progress = report::Progress::start(plan.load.duration, enabled);
    // Finish the bar however this task ends (aborted at the end of the load).
    struct Finish(report::Progress);
    impl Drop for Finish {
        fn drop(&mut self) {
            self.0.finish();
        }
    }
    let progress = Finish(progress);
    if !progress.0.is_drawn() {
        return;
    }
    let phases = plan.phases();
    loop {
        let elapsed = load_start.elapsed();
        let at_ms = elapsed.as_secs_f64() * 1000.0;
        let phase = phases
            .iter()
            .find(|span| at_ms >= span.start_ms && at_ms < span.end_ms)
            .map(|span| span.phase.name())
            .unwrap_or("draining");
        let requests = live.requests.load(std::sync::atomic::Ordering::Relaxed);
        let active_faults = boards
            .iter()
            .flat_map(|(fake, board)| {
                board
                    .active()
                    .into_iter()
                    .map(move |rule| format!("{}: {}", fake.as_str(), rule.fault.label()))
            })
            .collect();
        progress.0.update(&report::LiveStatus {
            phase: phase.to_string(),
            elapsed,
            requests,
            errors: live.failures.load(std::sync::atomic::Ordering::Relaxed),
            requests_per_sec: requests as f64 / elapsed.as_secs_f64().max(0.001),
            active_faults,
        });
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads the target's metrics endpoint once, as JSON or Prometheus text (as `metrics_format`
/// says, else as the content type says); `None` when it has none, it did not answer, or the
/// body is not JSON where JSON was expected.
async fn read_metrics(target: &TargetProcess, plan: &Plan, at_ms: f64) -> Option<MetricsSnapshot> {
    let path = plan.target.metrics_path.as_ref()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
        .ok()?;
    let response = client
        .get(format!("{}{}", target.base_url(), path))
        .send()
        .await
        .ok()?;
    let format = plan.target.metrics_format.unwrap_or_else(|| {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Prometheus serves text/plain (0.0.4) or application/openmetrics-text.
        if content_type.starts_with("text/plain") || content_type.contains("openmetrics") {
            MetricsFormat::Prometheus
        } else {
            MetricsFormat::Json
        }
    });
    let body = match format {
        MetricsFormat::Json => response.json::<serde_json::Value>().await.ok()?,
        MetricsFormat::Prometheus => serde_json::Value::String(response.text().await.ok()?),
    };
    Some(MetricsSnapshot {
        at_ms,
        body,
        format,
    })
}

/// Moves fakes' and the target's timestamps (taken from the run's start) onto the load's clock.
fn shift_onto_load_clock(evidence: &mut Evidence, offset_ms: f64) {
    for attempt in &mut evidence.attempts {
        attempt.at_ms -= offset_ms;
    }
    for write in &mut evidence.writes {
        write.at_ms -= offset_ms;
    }
    for line in &mut evidence.logs {
        line.at_ms -= offset_ms;
    }
    for span in &mut evidence.spans {
        span.at_ms -= offset_ms;
    }
    for snapshot in &mut evidence.metrics {
        snapshot.at_ms -= offset_ms;
    }
}

/// `reports/<what>-<UTC time>/`, where runs write by default.
pub fn stamped_dir(what: &str, at: time::OffsetDateTime) -> PathBuf {
    let stamp = at
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "run".into());
    PathBuf::from("reports").join(format!("{what}-{stamp}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_other_braces_kept() {
        let values = BTreeMap::from([("{llm}", "http://127.0.0.1:1".to_string())]);
        assert_eq!(render("{llm}/v1", &values), "http://127.0.0.1:1/v1");
        assert_eq!(render(r#"{"a": 1}"#, &values), r#"{"a": 1}"#);
    }
}
