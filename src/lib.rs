//! faultline: a load-test and chaos-injection harness for GenAI backends.
//!
//! One run: a scenario file becomes a [`scenario::Plan`]; [`run`] starts the fakes
//! ([`fakes`]), starts the target ([`target`]), drives it with Goose load ([`load`]) while the
//! timeline switches faults, and gathers everything it saw into one [`evidence::Evidence`].
//! [`checks`] turn evidence into verdicts; [`report`] writes them down.
//!
//! # Layout
//! - `cli`: argument parsing and dispatch; the only place that picks an exit code.
//! - `distributed`: a coordinator and load workers (`coordinate`, `worker`, `scenario
//!   --workers N`): the protocol, the shares, merging the workers' load.
//! - `scenario`: the scenario file model, parsing with file:line:column errors, the built-in catalog.
//! - `fakes`: fault-injecting stand-ins for the LLM provider, tool APIs and (later) Redis;
//!   `fakes::fault` is the one fault model they share, `fakes::journal` what they saw.
//! - `loopback`: the check that every URL faultline talks to is on this machine.
//! - `target`: spawning the service under test, readiness, log capture, clean stop.
//! - `init`: `faultline init`, which probes a service and writes its faultline.toml draft.
//! - `load`: Goose users and the `Record` each client request becomes.
//! - `run`: the orchestrator and the fault timeline.
//! - `capacity`: `faultline capacity`, the highest arrival rate at which a scenario's gates
//!   still pass: a search over short runs, one per rate.
//! - `suite`: several runs with one verdict: the pre-release suite and the selftest matrix;
//!   `selftest`: its rows, the reference target's and the examples' (`selftest.toml`).
//! - `evidence`: everything a run observed, in one value.
//! - `preflight`: what each selected check needs and the plan lacks, known before the load.
//! - `probe`: the started service against its description (warm-ups, logs, metrics), before
//!   the load.
//! - `checks`: pure functions from evidence to verdicts.
//! - `report`: report.json, summary.md and the console verdict table.
//! - `prometheus`: the Prometheus text format and series selectors, for `metrics.truth`.
//! - `record`: `faultline record`, the proxy that records an API's exchanges for the fake LLM
//!   to replay, and the recording's format.
//! - `reference`: the reference target, a chat service with `--flaw` switches.
//! - `flaws`: the names of those switches, shared by scenarios and the reference target.
//! - `input`: line:column of an offset and the loopback-only URL rule, shared by the parser,
//!   the CLI and the fakes.
//! - `sync`: the one poisoned-lock policy (recover the data and go on).

pub mod capacity;
pub mod checks;
pub mod cli;
pub mod distributed;
pub mod evidence;
pub mod fakes;
pub mod flaws;
pub mod init;
pub mod input;
pub mod load;
pub mod loopback;
pub mod preflight;
pub mod probe;
pub mod prometheus;
pub mod record;
pub mod reference;
pub mod report;
pub mod run;
pub mod scenario;
pub mod selftest;
pub mod suite;
pub mod sync;
pub mod target;
