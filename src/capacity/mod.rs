//! `faultline capacity SCENARIO`: the highest arrival rate at which the scenario's gates still
//! pass, faults included. It answers "how much traffic can we take while the provider browns
//! out?" with short runs of the scenario, one per step.
//!
//! - [`search`]: which rate to try next (grow, then bisect), a pure state machine.
//! - [`step`]: one step's run and what it means (pass, fail, saturated, the generator's limit).
//! - [`report`]: `capacity.json`, the console table and the knee in words; [`html`] its page.
//!
//! Each step is a whole run of the scenario ([`crate::run::run`]: its fakes, target, faults
//! and timeline, its gates) with its load replaced by `constant_rate` at the step's rate, and
//! writes its own reports to `<out>/step-NN-<rate>-per-s/`. Steps run one after another.

pub mod html;
pub mod report;
pub mod search;
pub mod step;

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::report::check_writable;
use crate::run::{self, RunError, RunOptions};
use crate::scenario::parse::{machine_user_limit, MAX_RATE};
use crate::scenario::{Arrivals, Executor, Plan};
use report::{CapacityReport, Knee};
use search::{rate_text, Bounds, Next, Precision, Search, MAX_STEPS};
use step::{Step, StepVerdict};

/// `faultline capacity`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    /// Built-in scenario name (see `faultline list`) or path to a scenario file.
    pub scenario: String,
    /// The first rate tried, in arrivals per second.
    #[arg(
        long,
        value_name = "RATE",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub min: f64,
    /// The highest rate tried, in arrivals per second.
    #[arg(long, value_name = "RATE", default_value_t = MAX_RATE, allow_negative_numbers = true)]
    pub max: f64,
    /// How close the highest passing and the lowest failing rate must come: a share of the
    /// passing rate (`10%`) or arrivals per second (`2`).
    #[arg(long, value_name = "P", default_value = "10%", value_parser = parse_precision)]
    pub precision: Precision,
    /// Scale each step's timeline down (by the scenario's quick_scale); limits stay the same.
    #[arg(long)]
    pub quick: bool,
    /// Seed for every random draw; overrides the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Directory for capacity.json, report.html and each step's reports (default:
    /// reports/capacity-<scenario>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Your target's description (default: ./faultline.toml when it exists).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// No line per step on stderr; the table and the knee still show.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `10%` (a share) or `2` (arrivals per second); checked further by [`Bounds::new`].
fn parse_precision(text: &str) -> Result<Precision, String> {
    let text = text.trim();
    let number = |t: &str| {
        t.trim().parse::<f64>().map_err(|_| {
            format!("`{text}` is not a precision; write a share (10%) or arrivals per second (2)")
        })
    };
    match text.strip_suffix('%') {
        Some(share) => Ok(Precision::Relative(number(share)? / 100.0)),
        None => Ok(Precision::Absolute(number(
            text.strip_suffix("/s").unwrap_or(text),
        )?)),
    }
}

/// Runs `faultline capacity`; returns the exit code.
pub async fn command(args: CapacityArgs, interrupt: watch::Receiver<bool>) -> i32 {
    let bounds = match Bounds::new(args.min, args.max, args.precision, MAX_RATE) {
        Ok(bounds) => bounds,
        Err(error) => {
            eprintln!("error: {error}");
            return crate::cli::EXIT_NOT_RUN;
        }
    };
    let plan = match crate::cli::load_plan(&args.scenario, args.config) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            return crate::cli::EXIT_NOT_RUN;
        }
    };
    let mut plan = if args.quick { plan.quick() } else { plan };
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    // As `scenario` does: a service reached by URL was started pointing at the fakes' fixed
    // ports (those of a running `fakes up`, driven through its control API, else the run's own).
    let attached = plan.target.url.is_some();
    let base_port = crate::fakes::up::DEFAULT_BASE_PORT;
    let options = RunOptions {
        fake_ports: attached.then_some(base_port),
        fakes_url: attached.then(|| {
            format!(
                "http://127.0.0.1:{}",
                base_port.saturating_add(crate::fakes::up::CONTROL_OFFSET)
            )
        }),
        ..RunOptions::default()
    };
    let root = args.out.unwrap_or_else(|| {
        run::stamped_dir(
            &format!("capacity-{}", plan.name),
            time::OffsetDateTime::now_utc(),
        )
    });
    if let Err(error) = check_writable(&root) {
        eprintln!(
            "error: could not write to {}: {error}; pass --out DIR with a writable directory",
            root.display()
        );
        return crate::cli::EXIT_NOT_RUN;
    }
    if !args.quiet {
        eprintln!(
            "faultline: capacity of `{}`{} against {}: from {} to {} arrivals/s, precision {}, \
             each step {} with the scenario's faults",
            plan.name,
            if plan.quick { " (quick)" } else { "" },
            plan.target.describe(),
            rate_text(bounds.min),
            rate_text(bounds.max),
            bounds.precision.describe(),
            humantime::format_duration(plan.load.duration),
        );
    }
    let report = search(&plan, bounds, &options, &root, interrupt, !args.quiet).await;
    println!("{}", report::console(&report));
    match write(&report, &root) {
        Ok(()) => println!("reports written to {}", root.display()),
        Err(error) => {
            eprintln!(
                "error: the search above stands, but its reports could not be written to {}: \
                 {error}",
                root.display()
            );
            return crate::cli::EXIT_NOT_RUN;
        }
    }
    report.exit_code
}

/// Searches for the knee of `plan` within `bounds`, one run per step with `options` (each
/// step's reports under `root`), until the search ends or `interrupt` turns true. `say`
/// prints a line per step on stderr.
pub async fn search(
    plan: &Plan,
    bounds: Bounds,
    options: &RunOptions,
    root: &Path,
    interrupt: watch::Receiver<bool>,
    say: bool,
) -> CapacityReport {
    let started_at = time::OffsetDateTime::now_utc();
    // Keep the scenario's spacing when it has an arrival rate; users become evenly spaced
    // arrivals, as k6's constant-arrival-rate.
    let arrivals = match &plan.load.executor {
        Executor::ConstantRate { arrivals, .. } | Executor::RampingRate { arrivals, .. } => {
            *arrivals
        }
        _ => Arrivals::Even,
    };
    let machine_limit = machine_user_limit();
    let mut searching = Search::new(bounds);
    let mut steps: Vec<Step> = Vec::new();
    let mut interrupted = false;
    let conclusion = loop {
        let rate = match searching.next() {
            Next::Done(conclusion) => break conclusion,
            Next::Run(rate) => rate,
        };
        if *interrupt.borrow() {
            interrupted = true;
            searching.stop(rate);
            continue;
        }
        let number = steps.len() + 1;
        let (slots, slots_cut) =
            step::max_in_flight(rate, plan.load.request_timeout, machine_limit);
        if say {
            eprintln!(
                "faultline: step {number}: {}/s (max_in_flight {slots}{})",
                rate_text(rate),
                if slots_cut {
                    ", cut to this machine's limit"
                } else {
                    ""
                }
            );
        }
        let mut step_plan = plan.clone();
        step_plan.load.executor = Executor::ConstantRate {
            rate,
            max_in_flight: slots,
            arrivals,
        };
        step_plan.load.users = 0;
        let dir = root.join(format!("step-{number:02}-{}-per-s", rate_text(rate)));
        let step_options = RunOptions {
            out_dir: Some(dir.clone()),
            progress: false,
            ..options.clone()
        };
        let outcome = run::run(&step_plan, &step_options, interrupt.clone()).await;
        let step = step_of(number, rate, slots, slots_cut, outcome, dir);
        if say {
            eprintln!("faultline: step {number}: {}", step_line(&step));
        }
        if step.verdict == StepVerdict::Interrupted {
            interrupted = true;
        }
        searching.record(rate, step.verdict.class());
        steps.push(step);
    };
    let knee = Knee::of(&steps);
    let summary = report::summary(&conclusion, &knee, &bounds, &steps);
    CapacityReport {
        schema: report::SCHEMA.into(),
        scenario: plan.name.clone(),
        source: plan.source.clone(),
        target: plan.target.describe(),
        quick: plan.quick,
        seed: plan.seed,
        started_at: started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "unrepresentable".into()),
        bounds,
        max_steps: MAX_STEPS,
        arrivals: match arrivals {
            Arrivals::Even => "even".into(),
            Arrivals::Poisson => "poisson".into(),
        },
        step_duration_ms: plan.load.duration.as_secs_f64() * 1000.0,
        exit_code: report::exit_code(&conclusion, interrupted),
        steps,
        conclusion,
        knee,
        summary,
        interrupted,
    }
}

/// One step from its run's outcome.
fn step_of(
    number: usize,
    rate: f64,
    max_in_flight: usize,
    slots_cut: bool,
    outcome: Result<run::RunOutcome, RunError>,
    dir: PathBuf,
) -> Step {
    let mut step = Step {
        number,
        rate,
        max_in_flight,
        achieved_rate: None,
        verdict: StepVerdict::NotRun,
        failed_gates: Vec::new(),
        why: None,
        headline_phase: None,
        p95_ms: None,
        error_rate: None,
        dropped: 0,
        late: 0,
        phases: Vec::new(),
        dir: None,
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(RunError::InterruptedEarly) => {
            step.verdict = StepVerdict::Interrupted;
            step.why = Some("interrupted before the step's load started".into());
            return step;
        }
        Err(error) => {
            step.why = Some(format!("the step could not be run: {error}"));
            return step;
        }
    };
    let report = &outcome.report;
    let (verdict, why) = step::judge(report, slots_cut);
    step.verdict = verdict;
    step.why = why;
    step.failed_gates = step::failed_gates(report);
    if let Some(load) = &report.load {
        step.achieved_rate = Some(load.stats.achieved_rate);
        step.dropped = load.stats.dropped;
        step.late = load.stats.late;
    }
    if let Some(headline) = step::headline(&report.phases) {
        step.headline_phase = Some(headline.phase);
        step.p95_ms = Some(headline.p95_ms);
        step.error_rate = Some(headline.error_rate);
    }
    step.phases = report.phases.clone();
    step.dir = Some(dir);
    step
}

/// A step's outcome in one line, for stderr as the search goes.
fn step_line(step: &Step) -> String {
    let mut line = step.verdict.word().to_string();
    if let (Some(p95), Some(errors)) = (step.p95_ms, step.error_rate) {
        line.push_str(&format!(
            ": p95 {}, errors {}",
            crate::checks::sla::format_ms(p95),
            crate::checks::sla::format_ratio(errors)
        ));
    }
    if !step.failed_gates.is_empty() {
        line.push_str(&format!("; failed: {}", step.failed_gates.join(", ")));
    }
    if let Some(why) = &step.why {
        line.push_str(&format!("; {why}"));
    }
    line
}

/// Writes `capacity.json` and `report.html` into `root`.
pub fn write(report: &CapacityReport, root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(root.join("capacity.json"), json)?;
    std::fs::write(root.join("report.html"), html::capacity_html(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_precision_is_a_share_or_a_rate() {
        assert_eq!(parse_precision("10%"), Ok(Precision::Relative(0.1)));
        assert_eq!(parse_precision("2"), Ok(Precision::Absolute(2.0)));
        assert_eq!(parse_precision("2.5/s"), Ok(Precision::Absolute(2.5)));
        assert!(parse_precision("ten")
            .unwrap_err()
            .contains("write a share (10%)"));
    }
}
