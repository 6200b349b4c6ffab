//! The orchestrator: one run of one plan. It starts the fakes, starts the target with its
//! dependencies pointed at them, drives the load while the timeline switches faults, stops
//! everything in order, gathers the evidence, checks it and writes the reports.
//!
//! Everything is timed on one clock: milliseconds from the moment the load starts. Fakes and
//! the target start earlier, so what they saw before the load (readiness probes, indexing)
//! has negative times.
//!
//! The fakes are the run's own, or — when attached to a service started by hand — those a
//! running `faultline fakes up` holds, driven through its control API ([`Fakes`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::checks::{self, Verdict};
use crate::evidence::{Evidence, MetricsSnapshot, TargetCrash, TimelineEvent};
use crate::fakes::driver::Fakes;
use crate::fakes::fault::FaultRule;
use crate::fakes::remote::ControlClient;
use crate::fakes::set::FAKE_LLM_KEY;
use crate::fakes::FakeError;
use crate::load::{self, LoadError, LoadSpec};
use crate::report::{self, Report, RunMeta};
use crate::scenario::Plan;
use crate::sync::LockExt;
use crate::target::{self, SpawnSpec, TargetError, TargetProcess};

/// Lines of a crashed target's output quoted in the console and the report.
const CRASH_TAIL_LINES: usize = 10;

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
    /// The control API of fakes already running (`faultline fakes up`): when one answers
    /// there, the run drives those fakes instead of starting its own.
    pub fakes_url: Option<String>,
    /// Go on when the probe finds the service does not match its description: the checks
    /// concerned report "not applicable" with the reason, instead of the run stopping.
    pub allow_gaps: bool,
    /// The token of the fakes' control API (`fakes up --control-token`); else read from
    /// `FAULTLINE_CONTROL_TOKEN`.
    pub fakes_token: Option<String>,
    /// Load workers make the load instead of this process (`coordinate`, `scenario
    /// --workers N`): the drive stage releases them and takes their merged load.
    pub workers: Option<Arc<crate::distributed::Coordinator>>,
}

/// A finished run: its report, where it was written, and the evidence behind it.
pub struct RunOutcome {
    pub report: Report,
    pub dir: PathBuf,
    pub written: Vec<PathBuf>,
    /// Report files that could not be written (`file: error`); the verdict stands.
    pub unwritten: Vec<String>,
}

/// Why a run could not be made (exit code 2), each saying what to change.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The control API of `faultline fakes up` answered wrongly, or could not be reached.
    #[error("{0}")]
    Control(String),
    /// The fixed fake ports are taken by something that is not `faultline fakes up`.
    #[error(
        "{source}; the ports {base}..{last} are taken but no control API answers at {url}: stop \
         whatever holds them, or start `faultline fakes up --base-port {base}` and attach to it \
         (--fakes URL names its control API)"
    )]
    FakePortsTaken {
        source: FakeError,
        base: u16,
        last: u16,
        url: String,
    },
    /// The fakes of a running `fakes up` were chosen for a target the run would start itself.
    #[error(
        "the fakes of `faultline fakes up` drive only a service started by hand: pass --attach \
         URL, or stop `fakes up` so the run starts its own fakes"
    )]
    RemoteFakesNeedAttach,
    #[error("no free loopback port for the target: {0}")]
    NoFreePort(std::io::Error),
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
    #[error(
        "the load would last {0:?} ([load] duration, times quick_scale with --quick): too short \
         to judge; a run needs at least 1s, so make duration or quick_scale larger"
    )]
    TooShort(Duration),
    #[error("interrupted before the load started; nothing was measured")]
    InterruptedEarly,
    /// The probe found settings that do not match the service (see [`crate::probe`]).
    #[error("{0}")]
    Misconfigured(String),
    /// The load workers of a distributed run could not be started or released.
    #[error("{0}")]
    Workers(String),
}

/// The shortest load a run judges: below it no fault window of a built-in scenario holds a
/// single request of its users (the fastest asks about every 250 ms).
const MIN_RUN: Duration = Duration::from_secs(1);

/// Runs `plan` to the end (or until `interrupt` turns true) and writes its reports.
pub async fn run(
    plan: &Plan,
    options: &RunOptions,
    interrupt: watch::Receiver<bool>,
) -> Result<RunOutcome, RunError> {
    if plan.load.duration < MIN_RUN {
        return Err(RunError::TooShort(plan.load.duration));
    }
    let epoch = Instant::now();
    let started_at = time::OffsetDateTime::now_utc();
    // Before any load: a run whose reports cannot be written is not worth making.
    let dir = report_dir(plan, options, started_at);
    report::check_writable(&dir).map_err(|source| RunError::Write {
        dir: dir.display().to_string(),
        source,
    })?;

    let fakes = choose_fakes(plan, options, epoch).await?;
    if options.progress {
        eprintln!("faultline: using {}", fakes.describe());
    }
    let result = run_with_fakes(plan, options, interrupt, epoch, started_at, &fakes).await;
    // However the run ended (error, Ctrl-C), no rule it switched on stays on.
    fakes.shutdown().await;
    result
}

/// The fakes `faultline fakes up` holds when their control API answers at `fakes_url`;
/// otherwise the run's own.
async fn choose_fakes(
    plan: &Plan,
    options: &RunOptions,
    epoch: Instant,
) -> Result<Fakes, RunError> {
    if let Some(url) = &options.fakes_url {
        let token = crate::fakes::control::token_from(options.fakes_token.clone());
        if let Some(client) = ControlClient::connect_with_token(url, epoch, token)
            .await
            .map_err(RunError::Control)?
        {
            return Fakes::attach(client).await.map_err(RunError::Control);
        }
        if options.progress {
            eprintln!(
                "faultline: no fakes' control API answers at {url}; starting the run's own fakes"
            );
        }
    }
    Fakes::start(plan.seed, epoch, options.fake_ports, &plan.fakes)
        .await
        .map_err(|e| match (options.fake_ports, &options.fakes_url) {
            (Some(base), Some(url)) => RunError::FakePortsTaken {
                source: e,
                base,
                last: base + 3,
                url: url.clone(),
            },
            _ => RunError::Fake(e),
        })
}

/// One run against fakes already chosen, as named stages: start the target, announce the
/// gaps, wait until it is ready and probed, drive the load, assemble the evidence, judge it
/// and write the reports. Each stage owns one concern so changes to one (the load, say) stay
/// inside it.
async fn run_with_fakes(
    plan: &Plan,
    options: &RunOptions,
    mut interrupt: watch::Receiver<bool>,
    epoch: Instant,
    started_at: time::OffsetDateTime,
    fakes: &Fakes,
) -> Result<RunOutcome, RunError> {
    let mut gaps = Vec::new();
    if let (Fakes::Remote(_), Some(upstream)) = (fakes, &plan.fakes.redis_upstream) {
        gaps.push(format!(
            "[fakes.redis] upstream {upstream} is not used: the Redis fake is the one `faultline \
             fakes up` holds"
        ));
    }
    let mut target = start_target(plan, options, fakes, epoch)?;
    gaps.extend(announce_gaps(plan, options, &gaps));
    let probed =
        match ready_and_probed(plan, options, &mut target, fakes, epoch, &mut interrupt).await {
            Ok(probed) => probed,
            Err(error) => {
                target.stop().await;
                return Err(error);
            }
        };
    gaps.extend(probed.gaps(plan));
    let driven = drive(plan, options, target, fakes, &interrupt, epoch).await?;
    let interrupted = *interrupt.borrow();
    let evidence = assemble(plan, driven, probed, gaps, interrupted);
    judge_and_write(plan, options, started_at, evidence)
}

/// Attaches to the service at `[target] url`, or spawns the target on a free port.
fn start_target(
    plan: &Plan,
    options: &RunOptions,
    fakes: &Fakes,
    epoch: Instant,
) -> Result<TargetProcess, RunError> {
    Ok(match &plan.target.url {
        Some(url) => TargetProcess::attach(url, plan.target.log_file.clone(), epoch),
        None => {
            let port = target::free_port().map_err(RunError::NoFreePort)?;
            TargetProcess::spawn(&spawn_spec(plan, options, fakes, port)?, epoch)?
        }
    })
}

/// Says before the load what some checks will not be able to judge, not only after it: each
/// piece the configuration lacks on its own line, what the scenario does not exercise in one.
/// `known` are gaps found so far (said too); returns the preflight's gaps to add to them.
fn announce_gaps(plan: &Plan, options: &RunOptions, known: &[String]) -> Vec<String> {
    let needs = crate::preflight::check(plan);
    if options.progress {
        for gap in known {
            eprintln!("faultline: note: {gap}");
        }
        let (unexercised, lacking): (Vec<_>, Vec<_>) = needs
            .iter()
            .partition(|need| need.lack == crate::preflight::Lack::Scenario);
        for need in lacking {
            eprintln!("faultline: note: {}", need.gap());
        }
        if !unexercised.is_empty() {
            let ids: Vec<&str> = unexercised
                .iter()
                .flat_map(|need| need.checks.iter().map(String::as_str))
                .collect();
            eprintln!(
                "faultline: note: not exercised by this scenario (not applicable): {}",
                ids.join(", ")
            );
        }
    }
    needs.iter().map(|need| need.gap()).collect()
}

/// Waits until the target answers its readiness path, then probes it against its
/// description; Ctrl-C during either ends the run before the load. The caller stops the
/// target on error.
async fn ready_and_probed(
    plan: &Plan,
    options: &RunOptions,
    target: &mut TargetProcess,
    fakes: &Fakes,
    epoch: Instant,
    interrupt: &mut watch::Receiver<bool>,
) -> Result<crate::probe::Probed, RunError> {
    tokio::select! {
        ready = target.wait_ready(&plan.target.ready_path, plan.target.ready_timeout) => ready?,
        _ = interrupt.wait_for(|stop| *stop) => return Err(RunError::InterruptedEarly),
    };
    tokio::select! {
        probed = probe_stage(plan, options, target, fakes, epoch) => probed,
        _ = interrupt.wait_for(|stop| *stop) => Err(RunError::InterruptedEarly),
    }
}

/// What the load stage saw, on the run's clock (the load started `offset_ms` after it).
struct Driven {
    records: crate::evidence::RecordStore,
    /// How the load generator kept to its schedule.
    load_stats: crate::evidence::LoadStats,
    timeline: Vec<TimelineEvent>,
    /// What the timeline or the fakes could not do or tell.
    gaps: Vec<String>,
    metrics_after: Option<MetricsSnapshot>,
    logs: Vec<crate::evidence::LogLine>,
    /// What the log capture had to drop or mend.
    logs_lost: crate::evidence::LogLoss,
    /// The target's exit during the load, if it exited.
    target_crash: Option<TargetCrash>,
    target_started: bool,
    readings: crate::fakes::remote::Readings,
    offset_ms: f64,
    duration_ms: f64,
}

/// Drives the load while the timeline switches faults, then stops the target (it is consumed:
/// nothing runs after this stage) and reads what the fakes recorded.
async fn drive(
    plan: &Plan,
    options: &RunOptions,
    mut target: TargetProcess,
    fakes: &Fakes,
    interrupt: &watch::Receiver<bool>,
    epoch: Instant,
) -> Result<Driven, RunError> {
    let load_spec = LoadSpec {
        base_url: target.base_url().to_string(),
        api: plan.api.clone(),
        executor: plan.load.executor.clone(),
        users: plan.load.users,
        duration: plan.load.duration,
        think_time: plan.load.think_time,
        request_timeout: plan.load.request_timeout,
        flows: plan.load.flows.clone(),
        seed: plan.seed,
        share: load::Share::WHOLE,
    };
    // Built before the clock starts: arrivals are due from its first millisecond.
    let client = match load::client(&load_spec) {
        Ok(client) => client,
        Err(error) => {
            target.stop().await;
            return Err(error.into());
        }
    };
    // The load's clock starts here (a distributed run's: when its workers start, a moment
    // ahead); everything else is shifted onto it.
    let load_start = match &options.workers {
        None => Instant::now(),
        Some(workers) => {
            match workers
                .release(&load_spec, &plan.name, plan.phases(), interrupt)
                .await
            {
                Ok(start) => start,
                Err(why) => {
                    target.stop().await;
                    return Err(RunError::Workers(why));
                }
            }
        }
    };
    target.logs().mark_load_start();
    let offset_ms = load_start.duration_since(epoch).as_secs_f64() * 1000.0;
    let (stop_tx, stop_rx) = watch::channel(false);
    let drain = load::drain_time(plan.load.request_timeout);
    let stopper = {
        let mut interrupt = interrupt.clone();
        let deadline = plan.load.duration + drain;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until((load_start + deadline).into()) => {}
                _ = interrupt.wait_for(|stop| *stop) => {}
            }
            let _ = stop_tx.send(true);
        })
    };
    let live = Arc::new(load::Live::default());
    let progress = tokio::spawn(show_progress(
        plan.clone(),
        live.clone(),
        load_start,
        options.progress,
    ));
    // The timeline runs beside the load in this task (it borrows the fakes) and is dropped
    // when the load ends, wherever it is.
    let played = Mutex::new(Played::default());
    let records = {
        let load = async {
            match &options.workers {
                None => load::drive(&load_spec, client, load_start, stop_rx, live).await,
                Some(workers) => workers.collect(&load_spec, load_start, stop_rx, live).await,
            }
        };
        tokio::pin!(load);
        tokio::select! {
            records = &mut load => records,
            () = play_timeline(plan, fakes, load_start, &played) => load.await,
        }
    };
    progress.abort();
    let _ = progress.await;
    let duration_ms = load_start.elapsed().as_secs_f64() * 1000.0;
    stopper.abort();
    let Played {
        events: timeline,
        mut gaps,
    } = crate::sync::into_inner(played);
    // The timeline was cut short (or ran out): switch off whatever it left on.
    if let Err(e) = fakes.switch_all_off().await {
        gaps.push(format!("faults may have stayed on after the load: {e}"));
    }
    let metrics_after = read_metrics(&target, plan, offset_ms + duration_ms).await;
    let logs = target.logs().clone();
    let target_started = target.spawned();
    let crashed = target.exited();
    target.stop().await;
    // Read after the stop: the readers have then taken the last lines off the pipes.
    let target_crash = crashed.map(|status| TargetCrash {
        status,
        last_lines: logs
            .tail(CRASH_TAIL_LINES)
            .into_iter()
            .map(|line| crate::checks::sla::excerpt(&line.text))
            .collect(),
    });
    if let (Some(crash), true) = (&target_crash, options.progress) {
        eprintln!(
            "faultline: the target exited during the run ({}); its last output:\n  {}",
            crash.status,
            crash.last_lines.join("\n  ")
        );
    }
    // A stopping target flushes its last spans; let them land before they are read.
    fakes.settle_spans().await;
    let load::Driven {
        records,
        stats: load_stats,
    } = records?;
    let mut readings = fakes.take_readings().await;
    gaps.append(&mut readings.gaps);
    let interrupted = *interrupt.borrow();
    let mut records = records;
    if interrupted {
        // Requests the interrupt cut short never had their chance to be answered: they are
        // neither failures nor successes, so no verdict judges them (a healthy target must not
        // FAIL errors.honest because someone pressed Ctrl-C).
        let cut =
            records.retain(|r| !(r.status.is_none() && r.error.as_deref() == Some("unfinished")));
        if cut > 0 {
            gaps.push(format!(
                "{cut} requests were in flight at the interrupt: they are unfinished, left out \
                 of every verdict rather than counted as failures"
            ));
        }
    }
    Ok(Driven {
        records,
        load_stats,
        timeline,
        gaps,
        metrics_after,
        logs: logs.snapshot(),
        logs_lost: logs.loss(),
        target_crash,
        target_started,
        readings,
        offset_ms,
        duration_ms,
    })
}

/// Puts everything the run saw into one [`Evidence`] on the load's clock, without the
/// probe's warm-up requests.
fn assemble(
    plan: &Plan,
    driven: Driven,
    probed: crate::probe::Probed,
    mut gaps: Vec<String>,
    interrupted: bool,
) -> Evidence {
    let crate::probe::Probed {
        metrics: metrics_before,
        warm_ups,
        ..
    } = probed;
    let Driven {
        records,
        load_stats,
        mut timeline,
        gaps: driven_gaps,
        metrics_after,
        logs,
        logs_lost,
        target_crash,
        target_started,
        readings,
        offset_ms,
        duration_ms,
    } = driven;
    gaps.extend(driven_gaps);
    let cut = records.cut();
    if cut.count > 0 {
        gaps.push(format!(
            "{} client records past the {} MiB cap of {} were not kept ({} of them failed): \
             checks that read single requests judged the first {}; the load's counts include \
             them all",
            cut.count,
            crate::evidence::RecordStore::DEFAULT_CAP_BYTES >> 20,
            crate::evidence::RECORDS_FILE,
            cut.failed,
            records.len()
        ));
    }
    timeline.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    // The metrics after the warm-ups: metrics.truth judges the change over the load (see
    // checks::metrics), whether or not the target counted traffic before this run.
    let mut evidence = Evidence {
        phases: plan.phases(),
        timeline,
        records,
        attempts: readings.attempts,
        attempts_dropped: readings.dropped,
        logs,
        logs_lost,
        metrics: metrics_before.into_iter().chain(metrics_after).collect(),
        target_started,
        target_crash,
        writes: readings.writes,
        spans: readings.spans,
        spans_dropped: readings.spans_dropped,
        canaries: std::iter::once(FAKE_LLM_KEY.to_string())
            .chain(plan.load.secrets.iter().cloned())
            .collect(),
        gaps,
        load: Some(load_stats),
        duration_ms,
        interrupted,
    };
    warm_ups.scrub(&mut evidence);
    shift_onto_load_clock(&mut evidence, offset_ms);
    evidence
}

/// Runs the checks on the evidence, builds the report and writes it with the evidence.
fn judge_and_write(
    plan: &Plan,
    options: &RunOptions,
    started_at: time::OffsetDateTime,
    evidence: Evidence,
) -> Result<RunOutcome, RunError> {
    let verdicts: Vec<Verdict> = checks::evaluate(&evidence, &plan.expectations());
    let meta = RunMeta {
        started_at,
        target: plan.target.describe(),
    };
    let report = report::build(plan, &meta, &evidence, verdicts);
    let dir = report_dir(plan, options, started_at);
    // The verdict stands whatever happens to the files: the caller prints it, then names
    // what is missing.
    let (written, unwritten) = match report::write_all(&report, &evidence, &dir) {
        Ok(written) => (written, Vec::new()),
        Err(failure) => (failure.written, failure.missing),
    };
    Ok(RunOutcome {
        report,
        dir,
        written,
        unwritten,
    })
}

/// How to start the plan's target: the reference target by default, else the plan's command.
fn spawn_spec(
    plan: &Plan,
    options: &RunOptions,
    fakes: &Fakes,
    port: u16,
) -> Result<SpawnSpec, RunError> {
    let values = fakes
        .placeholders(port)
        .ok_or(RunError::RemoteFakesNeedAttach)?;
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
pub(crate) fn render(template: &str, values: &BTreeMap<&'static str, String>) -> String {
    values
        .iter()
        .fold(template.to_string(), |out, (placeholder, value)| {
            out.replace(placeholder, value)
        })
}

/// What the timeline did, and what it could not do (remote fakes that did not answer).
#[derive(Default)]
struct Played {
    events: Vec<TimelineEvent>,
    gaps: Vec<String>,
}

/// Switches the plan's fault windows on and off on the load's clock, noting what it did in
/// `played` as it goes (the load may end, and drop this future, at any point).
async fn play_timeline(plan: &Plan, fakes: &Fakes, load_start: Instant, played: &Mutex<Played>) {
    let mut switches: Vec<(Duration, bool, usize)> = Vec::new();
    for (id, window) in plan.faults.iter().enumerate() {
        switches.push((window.start, true, id));
        switches.push((window.end, false, id));
    }
    // At equal times, switch off before on, so back-to-back windows do not overlap.
    switches.sort_by_key(|(at, on, _)| (*at, *on));
    for (at, on, id) in switches {
        tokio::time::sleep_until((load_start + at).into()).await;
        let window = &plan.faults[id];
        let switched = if on {
            let rule = FaultRule {
                id,
                fault: window.fault.clone(),
                route: window.route.clone(),
                rate: window.rate,
                first_attempts: window.first_attempts,
            };
            fakes.switch_on(window.fake, rule).await
        } else {
            fakes.switch_off(window.fake, id).await
        };
        let at_ms = load_start.elapsed().as_secs_f64() * 1000.0;
        let mut played = played.locked();
        if let Err(e) = switched {
            played.gaps.push(format!(
                "the timeline could not switch {} {} {} at {at_ms:.0} ms ({e}), so that fault \
                 window did not happen as planned",
                window.fake.as_str(),
                window.fault.label(),
                if on { "on" } else { "off" },
            ));
            continue;
        }
        played.events.push(TimelineEvent {
            at_ms,
            fake: window.fake.as_str().to_string(),
            kind: window.fault.kind().to_string(),
            fault: window.fault.label(),
            route: window.route.clone(),
            on,
        });
    }
}

/// Redraws the progress line a few times a second until aborted.
async fn show_progress(plan: Plan, live: Arc<load::Live>, load_start: Instant, enabled: bool) {
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
        // The windows the plan has on now (remote fakes are not asked four times a second).
        let active_faults = plan
            .faults
            .iter()
            .filter(|w| elapsed >= w.start && elapsed < w.end)
            .map(|w| format!("{}: {}", w.fake.as_str(), w.fault.label()))
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

/// Reads the target's metrics endpoint once (see [`crate::probe::metrics::fetch`]); `None`
/// when it has none or it did not answer as it should.
async fn read_metrics(target: &TargetProcess, plan: &Plan, at_ms: f64) -> Option<MetricsSnapshot> {
    plan.target.metrics_path.as_ref()?;
    crate::probe::metrics::fetch(target.base_url(), plan, at_ms)
        .await
        .ok()
}

/// The probe stage: the ready service against its description, before the load (see
/// [`crate::probe`]). Findings stop the run, unless `allow_gaps`; then they, and the notes,
/// are said on the console and become the concerned checks' "not applicable".
async fn probe_stage(
    plan: &Plan,
    options: &RunOptions,
    target: &TargetProcess,
    fakes: &Fakes,
    epoch: Instant,
) -> Result<crate::probe::Probed, RunError> {
    let probed = crate::probe::probe(plan, target, fakes, epoch).await;
    if !probed.findings.is_empty() && !options.allow_gaps {
        return Err(RunError::Misconfigured(probed.stop_message(plan)));
    }
    if options.progress {
        for note in &probed.notes {
            eprintln!("faultline: note: {}", note.gap());
        }
        for finding in &probed.findings {
            eprintln!(
                "faultline: going on (--allow-gaps) despite: {}",
                finding.line()
            );
        }
    }
    Ok(probed)
}

/// Moves fakes' and the target's timestamps (taken from the run's start) onto the load's clock.
fn shift_onto_load_clock(evidence: &mut Evidence, offset_ms: f64) {
    // Passes that rewrite the streams on disk: they are never all in memory.
    evidence
        .attempts
        .update(|attempt| attempt.at_ms -= offset_ms);
    evidence.writes.update(|write| write.at_ms -= offset_ms);
    for line in &mut evidence.logs {
        line.at_ms -= offset_ms;
    }
    evidence.spans.update(|span| span.at_ms -= offset_ms);
    for snapshot in &mut evidence.metrics {
        snapshot.at_ms -= offset_ms;
    }
}

/// Where this run writes its reports: `--out`, else `reports/<scenario>-<UTC time>/`.
fn report_dir(plan: &Plan, options: &RunOptions, started_at: time::OffsetDateTime) -> PathBuf {
    options
        .out_dir
        .clone()
        .unwrap_or_else(|| stamped_dir(&plan.name, started_at))
}

/// A scenario's name as one safe file name: letters, digits, `.`, `_` and `-` kept, anything
/// else (a `/`, `..`, a space) a `-`, at most 64 characters, never empty or hidden. A name is
/// a label; it must never choose where files go.
pub fn file_name_of(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '-',
        })
        .take(64)
        .collect();
    let safe = safe.trim_matches('-');
    if safe.is_empty() {
        "scenario".into()
    } else {
        safe.to_string()
    }
}

/// `reports/<what>-<UTC time>/`, where runs write by default; `what` is made a safe file name.
pub fn stamped_dir(what: &str, at: time::OffsetDateTime) -> PathBuf {
    let stamp = at
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "run".into());
    PathBuf::from("reports").join(format!("{}-{stamp}", file_name_of(what)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_name_never_chooses_where_reports_go() {
        assert_eq!(file_name_of("outage"), "outage");
        assert_eq!(file_name_of("/etc/cron.d/x"), "etc-cron-d-x");
        assert_eq!(file_name_of("../../up"), "up");
        assert_eq!(file_name_of("..."), "scenario");
        assert_eq!(file_name_of(&"a".repeat(500)).len(), 64);
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let dir = stamped_dir("/tmp/evil", at);
        assert_eq!(dir.parent(), Some(std::path::Path::new("reports")));
    }

    #[test]
    fn placeholders_are_filled_and_other_braces_kept() {
        let values = BTreeMap::from([("{llm}", "http://127.0.0.1:1".to_string())]);
        assert_eq!(render("{llm}/v1", &values), "http://127.0.0.1:1/v1");
        assert_eq!(render(r#"{"a": 1}"#, &values), r#"{"a": 1}"#);
    }

    /// Long messages are split over source lines; a lost `\` would leave a run of spaces in
    /// what the user reads.
    #[test]
    fn the_attach_hint_reads_as_one_sentence() {
        assert_eq!(
            RunError::RemoteFakesNeedAttach.to_string(),
            "the fakes of `faultline fakes up` drive only a service started by hand: pass \
             --attach URL, or stop `fakes up` so the run starts its own fakes"
        );
        let taken = RunError::FakePortsTaken {
            source: FakeError::Bind {
                name: "llm".into(),
                addr: "127.0.0.1:19990".parse().unwrap(),
                source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
            },
            base: 19990,
            last: 19993,
            url: "http://127.0.0.1:19999".into(),
        }
        .to_string();
        assert!(!taken.contains("  "), "{taken}");
        assert!(
            taken.contains("the ports 19990..19993 are taken"),
            "{taken}"
        );
    }
}
