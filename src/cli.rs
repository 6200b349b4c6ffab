//! The command line: parse, dispatch, and the exit code. The only place that prints verdicts
//! to the console or decides how the process ends.
//!
//! Exit codes: 0 every gate passed; 1 a gate failed; 2 the run could not be made.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::report;
use crate::run::{self, RunOptions};
use crate::scenario;

/// Every gate passed.
pub const EXIT_PASSED: i32 = 0;
/// The run was made and at least one gate failed.
pub const EXIT_GATE_FAILED: i32 = 1;
/// The run could not be made: bad scenario, target never ready, port trouble, interrupted.
pub const EXIT_NOT_RUN: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version,
    about = "Load-test and chaos-injection harness for GenAI backends",
    long_about = "faultline starts fake LLM and tool backends that inject timeouts, 429s, outages \
                  and worse, drives your chat service with load while faults come and go, then \
                  checks what users and operators saw: latency per phase, error rates, and \
                  whether failures were honest. It writes reports and exits non-zero when a \
                  gate fails.",
    after_help = "Exit codes: 0 every gate passed, 1 a gate failed, 2 the run could not be made.\n\
                  Start with: faultline scenario outage --quick"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `faultline fakes …`.
#[derive(Debug, Subcommand)]
pub enum FakesCommand {
    /// Start every fake on fixed ports and hold them until Ctrl-C; prints the env to set.
    Up(crate::fakes::up::UpArgs),
    /// Print the env that points a service at the fakes' fixed ports, starting nothing.
    Env(crate::fakes::up::UpArgs),
}

/// `faultline scenario`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Built-in scenario name (see `faultline list`) or path to a scenario file.
    pub scenario: String,
    /// Scale the timeline down (by the scenario's quick_scale) for CI; limits stay the same.
    #[arg(long)]
    pub quick: bool,
    /// Seed for every random draw (fault rates, ids); overrides the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Directory for the reports (default: reports/<scenario>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Switch on a flaw in the reference target (repeatable), to see a gate fail.
    #[arg(long = "flaw", value_name = "NAME")]
    pub flaws: Vec<String>,
    /// Your target's description: how to start or reach it and its API (default:
    /// ./faultline.toml when it exists; the reference target otherwise).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Drive a service that is already running at this URL (loopback only), started with the
    /// environment `faultline fakes up` (or `fakes env`) prints. When `fakes up` runs, the
    /// scenario drives its fakes through their control API; else it starts its own on the
    /// same fixed ports.
    #[arg(long, value_name = "URL")]
    pub attach: Option<String>,
    /// First of the fakes' fixed ports for --attach (as `faultline fakes up --base-port`).
    #[arg(long, value_name = "PORT", default_value_t = crate::fakes::up::DEFAULT_BASE_PORT)]
    pub fake_port: u16,
    /// With --attach: the control API of a running `faultline fakes up` (loopback only);
    /// default http://127.0.0.1:<fake-port + 9>, where `fakes up` serves it.
    #[arg(long, value_name = "URL", requires = "attach")]
    pub fakes: Option<String>,
    /// With --attach: the token of the fakes' control API, as `faultline fakes up
    /// --control-token` was given it (default: $FAULTLINE_CONTROL_TOKEN).
    #[arg(long, value_name = "TOKEN", requires = "attach")]
    pub fakes_token: Option<String>,
    /// No live progress line and no chatter on stderr; errors and the verdict still show.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the verdict as JSON on stdout (for scripts) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Go on when the probe before the load finds that the service does not match its
    /// description (a log field it names otherwise, a metric it does not have): the checks
    /// concerned then report "not applicable" with the reason, instead of the run stopping
    /// with exit 2.
    #[arg(long)]
    pub allow_gaps: bool,
    #[command(flatten)]
    pub distributed: crate::distributed::DistributedArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (a built-in name, or a path to a .toml file) and gate on its verdicts.
    Scenario(ScenarioArgs),
    /// Run a scenario with its load made by `faultline worker`s: serve them the plan, the
    /// clock and a results endpoint; switch the faults; judge once every worker has reported.
    Coordinate(crate::distributed::CoordinateArgs),
    /// Make a share of a coordinator's load and send it back (see `coordinate`).
    Worker(crate::distributed::WorkerArgs),
    /// Find the highest arrival rate at which a scenario's gates still pass, faults included:
    /// short runs at growing, then bisected rates; a table of steps, the knee, and a chart.
    Capacity(crate::capacity::CapacityArgs),
    /// Run several scenarios (default: every built-in) one after another, with one verdict.
    Suite {
        /// Scenarios to run (built-in names or paths); default: every built-in scenario.
        scenarios: Vec<String>,
        /// Scale each timeline down for CI; limits stay the same.
        #[arg(long)]
        quick: bool,
        /// Directory for the reports (default: reports/suite-<UTC time>/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Your target's description (default: ./faultline.toml when it exists).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// As for `scenario`: go on when the probe before the load finds that the service
        /// does not match its description; the checks concerned report "not applicable" with
        /// the reason instead of the run stopping.
        #[arg(long)]
        allow_gaps: bool,
    },
    /// Prove the gates honest: every flaw of the reference target must fail the check named
    /// for the practice it breaks, and the healthy reference target must pass. Prints the matrix.
    Selftest {
        /// Scale each timeline down for CI; limits stay the same.
        #[arg(long)]
        quick: bool,
        /// Runs at a time (each is light: a few users, mostly waiting on timers).
        #[arg(long, default_value_t = 3)]
        jobs: usize,
        /// Run a row that came out wrong again, up to this many times, and name it as
        /// timing-sensitive if it then comes out right (for shared, noisy CI machines).
        #[arg(long, default_value_t = 0)]
        reruns: usize,
        /// Directory for the reports (default: reports/selftest-<UTC time>/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also run an example service's rows (repeatable): DIR holds its selftest.toml (the
        /// built-in scenarios that apply, and its planted defects with the gates they must
        /// fail) and its faultline.toml.
        #[arg(long, value_name = "DIR")]
        example: Vec<PathBuf>,
        /// Run only the --example rows, not the reference target's matrix.
        #[arg(long, requires = "example")]
        examples_only: bool,
    },
    /// Start (or reach) your service with the fakes, probe it, and write a commented
    /// faultline.toml draft: what it found, and a TODO for what it could not.
    Init(crate::init::InitArgs),
    /// List the built-in scenarios.
    List,
    /// Check a scenario file (and the faultline.toml it would use) without running it, and
    /// list what each selected check needs and the configuration lacks.
    Validate {
        /// Path to a scenario file (or a built-in name).
        scenario: String,
        /// Your target's description (default: ./faultline.toml when it exists).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Hold every fake on fixed loopback ports (with the control API), or print their env.
    #[command(subcommand)]
    Fakes(FakesCommand),
    /// Run one fake on a fixed loopback port, for a service you start by hand.
    #[command(subcommand)]
    Fake(crate::fakes::standalone::FakeCommand),
    /// Record an LLM API's exchanges, with their chunk timing, for the fake LLM to replay
    /// (`fake llm --replay FILE`): a loopback proxy in front of --upstream.
    Record(crate::record::RecordArgs),
    /// Render a run's reports again from its report.json.
    Report(crate::report::cli::ReportArgs),
    /// Show what changed between two runs, per check and per phase.
    Compare(crate::report::cli::CompareArgs),
    /// Serve the reference target: a chat service that follows every practice faultline checks.
    /// Configured by environment (PORT, OPENAI_BASE_URL, OPENAI_API_KEY, WEATHER_API_URL, ...).
    ReferenceTarget(crate::reference::ReferenceArgs),
}

/// Parses the process's arguments and runs; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_diagnostics();
    execute(cli)
}

/// Runs a parsed command line; returns the exit code.
pub fn execute(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return EXIT_NOT_RUN;
        }
    };
    match cli.command {
        Command::List => {
            list();
            EXIT_PASSED
        }
        Command::Validate { scenario, config } => validate(&scenario, config),
        Command::ReferenceTarget(args) => exit_code_of(
            runtime
                .block_on(crate::reference::serve(args))
                .map(|()| EXIT_PASSED),
        ),
        Command::Fakes(FakesCommand::Up(args)) => exit_code_of(
            runtime
                .block_on(crate::fakes::up::run(args))
                .map(|()| EXIT_PASSED),
        ),
        Command::Fakes(FakesCommand::Env(args)) => {
            for (name, value) in crate::fakes::up::env_for(args.base_port) {
                println!("export {name}={value}");
            }
            EXIT_PASSED
        }
        Command::Fake(command) => exit_code_of(
            runtime
                .block_on(crate::fakes::standalone::run(command))
                .map(|()| EXIT_PASSED),
        ),
        Command::Init(args) => exit_code_of(runtime.block_on(crate::init::main(args))),
        Command::Record(args) => exit_code_of(
            runtime
                .block_on(crate::record::run(args))
                .map(|()| EXIT_PASSED),
        ),
        Command::Report(args) => exit_code_of(crate::report::cli::run_report(args)),
        Command::Compare(args) => exit_code_of(crate::report::cli::run_compare(args)),
        Command::Suite {
            scenarios,
            quick,
            out,
            config,
            allow_gaps,
        } => {
            let interrupt = install_interrupt_handler();
            runtime.block_on(suite_command(
                scenarios, quick, out, config, allow_gaps, interrupt,
            ))
        }
        Command::Selftest {
            quick,
            jobs,
            reruns,
            out,
            example,
            examples_only,
        } => {
            let interrupt = install_interrupt_handler();
            let rows = if examples_only {
                crate::selftest::all_example_rows(&example, quick)
            } else {
                crate::selftest::all_example_rows(&example, quick).map(|examples| {
                    let mut rows = crate::selftest::reference_rows(quick);
                    rows.extend(examples);
                    rows
                })
            };
            match rows {
                Ok(rows) => runtime.block_on(selftest_command(rows, jobs, reruns, out, interrupt)),
                Err(error) => {
                    eprintln!("error: {error}");
                    EXIT_NOT_RUN
                }
            }
        }
        Command::Scenario(args) => {
            let interrupt = install_interrupt_handler();
            let role = match args.distributed.workers {
                Some(_) => crate::distributed::Role::Local,
                None => crate::distributed::Role::OneProcess,
            };
            runtime.block_on(run_scenario(args, role, interrupt))
        }
        Command::Coordinate(args) => {
            let interrupt = install_interrupt_handler();
            runtime.block_on(crate::distributed::coordinate_command(args, interrupt))
        }
        Command::Worker(args) => {
            exit_code_of(runtime.block_on(crate::distributed::worker_command(args)))
        }
        Command::Capacity(args) => {
            let interrupt = install_interrupt_handler();
            runtime.block_on(crate::capacity::command(args, interrupt))
        }
    }
}

/// The one error path: a command's own exit code, or the error on stderr (with its causes)
/// and 2, "not run" (see the exit codes in the README).
fn exit_code_of(result: anyhow::Result<i32>) -> i32 {
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        EXIT_NOT_RUN
    })
}

fn list() {
    let entries = scenario::catalog::list();
    let width = entries
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    println!("Built-in scenarios (run one with `faultline scenario NAME`):");
    for (name, description) in entries {
        println!("  {name:width$}  {description}");
    }
}

fn validate(name_or_path: &str, config: Option<PathBuf>) -> i32 {
    match load_plan(name_or_path, config) {
        Ok(plan) => {
            println!(
                "{}: ok: scenario `{}`, {} for {}, {} fault window(s), target: {}",
                plan.source,
                plan.name,
                plan.load.shape(),
                humantime::format_duration(plan.load.duration),
                plan.faults.len(),
                plan.target.describe(),
            );
            print!("{}", profile_report(&plan));
            print!("{}", preflight_report(&crate::preflight::check(&plan)));
            EXIT_PASSED
        }
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_NOT_RUN
        }
    }
}

/// `faultline validate`'s account of the service profile: each key set, and which file set it
/// (a scenario's explicit `[expect.*]` key wins over faultline.toml's; the rest are defaults).
fn profile_report(plan: &scenario::Plan) -> String {
    let lines = plan.expect.profile.lines();
    if lines.is_empty() {
        return "service profile: every log field, metric figure and trace attribute at its \
                default\n"
            .into();
    }
    let mut out = "service profile (the rest at their defaults):\n".to_string();
    for line in lines {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// `faultline validate`'s list of what the checks lack, one need a line, blocking ones first.
fn preflight_report(needs: &[crate::preflight::Need]) -> String {
    if needs.is_empty() {
        return "every selected check has what it needs\n".into();
    }
    use crate::preflight::Lack;
    let mut out = String::new();
    for lack in [Lack::Config, Lack::Partial, Lack::Scenario] {
        let lines: Vec<_> = needs.iter().filter(|n| n.lack == lack).collect();
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!("{}:\n", lack.heading()));
        for need in lines {
            out.push_str(&format!(
                "  {}: {}\n    fix: {}\n",
                need.checks.join(", "),
                need.missing,
                need.fix
            ));
        }
    }
    out
}

/// The scenario, with the user's faultline.toml (given, or found in the working directory).
pub(crate) fn load_plan(
    name_or_path: &str,
    config: Option<PathBuf>,
) -> Result<scenario::Plan, String> {
    let plan = scenario::load_scenario(name_or_path).map_err(|e| e.to_string())?;
    let found = std::path::Path::new(scenario::config::FILE_NAME);
    let config = match config {
        Some(path) => Some(path),
        None if found.exists() => Some(found.to_path_buf()),
        None => None,
    };
    match config {
        Some(path) => {
            let config = scenario::load_config(&path).map_err(|e| e.to_string())?;
            plan.with_config(&config)
        }
        None => Ok(plan),
    }
}

/// `--flaw` values name the reference target's flaws; an unknown one stops the run before it starts.
fn check_flaw_names(flaws: &[String]) -> Result<(), String> {
    for flaw in flaws {
        if !scenario::parse::is_known_flaw(flaw) {
            return Err(format!(
                "unknown flaw `{flaw}` in --flaw; known flaws: {}",
                scenario::parse::known_flaws().join(", ")
            ));
        }
    }
    Ok(())
}

/// Runs a scenario, its load made by this process or by workers (`role`), prints the verdict
/// and returns the exit code.
pub(crate) async fn run_scenario(
    args: ScenarioArgs,
    role: crate::distributed::Role,
    interrupt: watch::Receiver<bool>,
) -> i32 {
    let coordinating = matches!(role, crate::distributed::Role::Coordinate { .. });
    let plan = match load_plan(&args.scenario, args.config.clone()) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_NOT_RUN;
        }
    };
    let mut plan = if args.quick { plan.quick() } else { plan };
    if let Some(url) = &args.attach {
        // A coordinator may drive a service in the cluster its faultline.toml allows.
        let checked = if coordinating {
            crate::distributed::network::allowed_ranges(args.config.as_deref())
                .and_then(|allow| crate::distributed::network::check(url, &allow))
        } else {
            crate::input::loopback(url)
        };
        match checked {
            Ok(url) => {
                plan.target.url = Some(url);
                plan.target.command = None;
                plan.target.cwd = None;
            }
            Err(error) => {
                eprintln!("error: --attach: {error}");
                return EXIT_NOT_RUN;
            }
        }
    }
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    if let Err(error) = check_flaw_names(&args.flaws) {
        eprintln!("error: {error}");
        return EXIT_NOT_RUN;
    }
    if !args.flaws.is_empty() {
        if plan.target.command.is_some() || plan.target.url.is_some() {
            eprintln!(
                "error: --flaw switches on flaws of the reference target, but this run tests {}; \
                 drop --flaw",
                plan.target.describe()
            );
            return EXIT_NOT_RUN;
        }
        plan.target.flaws.extend(args.flaws);
    }
    if !args.quiet {
        eprintln!(
            "faultline: running `{}`{} against {}: {} for {}",
            plan.name,
            if plan.quick { " (quick)" } else { "" },
            plan.target.describe(),
            plan.load.shape(),
            humantime::format_duration(plan.load.duration),
        );
    }
    let workers =
        match crate::distributed::start_for(&plan, &args.distributed, role, !args.quiet).await {
            Ok(workers) => workers,
            Err(error) => {
                eprintln!("error: {error}");
                return EXIT_NOT_RUN;
            }
        };
    let options = RunOptions {
        workers: workers.clone(),
        out_dir: args.out,
        reference_exe: None,
        progress: !args.quiet,
        // An attached service was started pointing at the fakes' fixed ports: those of a
        // running `fakes up` (driven through its control API), else the run's own.
        fake_ports: plan.target.url.is_some().then_some(args.fake_port),
        allow_gaps: args.allow_gaps,
        fakes_token: args.fakes_token.clone(),
        fakes_url: plan.target.url.is_some().then(|| {
            args.fakes.clone().unwrap_or_else(|| {
                format!(
                    "http://127.0.0.1:{}",
                    args.fake_port
                        .saturating_add(crate::fakes::up::CONTROL_OFFSET)
                )
            })
        }),
    };
    let result = run::run(&plan, &options, interrupt).await;
    if let Some(workers) = workers {
        workers.shutdown().await;
    }
    match result {
        Ok(outcome) => {
            if args.json {
                println!("{}", report::verdict_json(&outcome.report));
            } else {
                println!("{}", report::console_table(&outcome.report));
            }
            if !outcome.unwritten.is_empty() {
                eprintln!(
                    "error: the verdict above stands, but these report files could not be \
                     written to {} (free some space, or pass --out with a writable \
                     directory):\n  {}",
                    outcome.dir.display(),
                    outcome.unwritten.join("\n  ")
                );
                return EXIT_NOT_RUN;
            }
            if args.json {
                eprintln!("reports written to {}", outcome.dir.display());
            } else {
                println!("reports written to {}", outcome.dir.display());
            }
            if let Some(why) = &outcome.report.invalid {
                eprintln!("error: the run cannot be judged: {why}");
                EXIT_NOT_RUN
            } else if outcome.report.interrupted {
                eprintln!("interrupted: the reports hold what was measured before the interrupt");
                EXIT_NOT_RUN
            } else if outcome.report.passed {
                EXIT_PASSED
            } else {
                EXIT_GATE_FAILED
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_NOT_RUN
        }
    }
}

async fn suite_command(
    scenarios: Vec<String>,
    quick: bool,
    out: Option<PathBuf>,
    config: Option<PathBuf>,
    allow_gaps: bool,
    interrupt: watch::Receiver<bool>,
) -> i32 {
    let names: Vec<String> = if scenarios.is_empty() {
        scenario::catalog::names()
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        scenarios
    };
    let mut plans = Vec::new();
    for name in &names {
        match load_plan(name, config.clone()) {
            Ok(plan) => plans.push((plan.name.clone(), if quick { plan.quick() } else { plan })),
            Err(error) => {
                eprintln!("error: {error}");
                return EXIT_NOT_RUN;
            }
        }
    }
    let root = out.unwrap_or_else(|| run::stamped_dir("suite", time::OffsetDateTime::now_utc()));
    let entries = crate::suite::run_all(plans, &root, allow_gaps, interrupt).await;
    println!("{}", crate::suite::suite_table(&entries));
    println!("reports written to {}", root.display());
    crate::suite::suite_exit_code(&entries)
}

async fn selftest_command(
    rows: Vec<crate::selftest::Row>,
    jobs: usize,
    reruns: usize,
    out: Option<PathBuf>,
    interrupt: watch::Receiver<bool>,
) -> i32 {
    let runs = rows
        .iter()
        .map(|row| (row.label(), row.args.clone(), row.env.clone()))
        .collect();
    let root = out.unwrap_or_else(|| run::stamped_dir("selftest", time::OffsetDateTime::now_utc()));
    let mut entries = crate::suite::run_in_processes(runs, &root, jobs, interrupt.clone()).await;
    let mut timing_sensitive = Vec::new();
    for rerun in 1..=reruns {
        let wrong: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].judge(&entries[i].outcome).is_some())
            .collect();
        if wrong.is_empty() {
            break;
        }
        let again = wrong
            .iter()
            .map(|&i| {
                (
                    format!("{}-rerun{rerun}", rows[i].label()),
                    rows[i].args.clone(),
                    rows[i].env.clone(),
                )
            })
            .collect();
        let redone = crate::suite::run_in_processes(again, &root, jobs, interrupt.clone()).await;
        for (&i, entry) in wrong.iter().zip(redone) {
            if rows[i].judge(&entry.outcome).is_none() {
                timing_sensitive.push(rows[i].label());
            }
            entries[i] = entry;
        }
    }
    println!("{}", crate::suite::matrix_table(&rows, &entries));
    if *interrupt.borrow() {
        // An interrupted matrix proves nothing either way: its unrun rows are not "wrong".
        println!("reports written to {}", root.display());
        eprintln!("interrupted: the matrix is incomplete; rows cut short are marked not run");
        return EXIT_NOT_RUN;
    }
    if !timing_sensitive.is_empty() {
        println!(
            "came out right only when run again (timing-sensitive on this machine): {}",
            timing_sensitive.join(", ")
        );
    }
    println!("reports written to {}", root.display());
    let dishonest = rows
        .iter()
        .zip(&entries)
        .filter(|(row, entry)| row.judge(&entry.outcome).is_some())
        .count();
    if dishonest == 0 {
        println!("PASS: every gate caught its flaw and the healthy target passed");
        EXIT_PASSED
    } else {
        println!(
            "FAIL: {dishonest} of {} rows did not come out as they must",
            rows.len()
        );
        EXIT_GATE_FAILED
    }
}

/// faultline's own diagnostics go to stderr; `FAULTLINE_LOG=debug` shows more.
fn init_diagnostics() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The first interrupt (Ctrl-C, SIGTERM or SIGHUP: ctrlc's `termination` feature) stops the
/// load (Goose's killswitch) and lets the run stop its target and write what it measured; a
/// second one exits at once with exit code 2 (children die with us through their death
/// signal, see [`crate::target::group`]).
fn install_interrupt_handler() -> watch::Receiver<bool> {
    static SENDER: OnceLock<watch::Sender<bool>> = OnceLock::new();
    static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    let sender = SENDER.get_or_init(|| watch::Sender::new(false));
    // Installed before Goose's own handler, which then stands aside (ctrlc allows one handler).
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nfaultline: interrupted again, exiting now (exit code 2)");
            crate::target::group::kill_all_now();
            std::process::exit(EXIT_NOT_RUN);
        }
        eprintln!(
            "\nfaultline: interrupted (Ctrl-C, SIGTERM or SIGHUP): stopping the load, then \
             writing what was measured (interrupt again to quit at once)"
        );
        goose::trigger_killswitch("interrupted");
        if let Some(sender) = SENDER.get() {
            let _ = sender.send(true);
        }
    });
    sender.subscribe()
}
