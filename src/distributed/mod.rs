//! Distributed runs: one coordinator, N load workers, one small protocol. faultline manages
//! no cluster: Kubernetes (or this machine, for `scenario --workers N`) places and starts the
//! processes; they find each other by URL and a shared token.
//!
//! - The coordinator (`faultline coordinate SCENARIO`, or `scenario --workers N` in-process)
//!   owns the fakes, the timeline and the target exactly as a one-process run does
//!   ([`crate::run`]); only it switches faults. It serves the clock, the plan, heartbeats and a
//!   results endpoint ([`protocol`]), releases the load at one instant, and once every worker
//!   has reported or been declared lost, merges their load ([`merge`]), judges once and writes
//!   the reports.
//! - A worker (`faultline worker --coordinator URL --index I --count N`, [`worker`]) aligns
//!   its clock with the coordinator's, fetches the plan, refuses a target outside the ranges
//!   it allows ([`network`]), makes its share of the load ([`crate::load::Share`]: the union
//!   of the shares is the one-process load) and sends back its counts, HdrHistograms and
//!   compressed records.
//! - A worker that dies mid-run is named in the report with its share, counted as lost; a run
//!   that loses more than `--max-lost-share` of its load (default 10%) is invalid (exit 2).

mod cli;
mod coordinator;
mod local;
mod merge;
pub mod network;
pub mod protocol;
mod worker;

pub use cli::{coordinate_command, start_for, CoordinateArgs, DistributedArgs, Role};
pub use coordinator::{cannot_share, shares_of, Coordinator, Setup};
pub use local::LocalWorkers;
pub use merge::{merge, Ending, Merged};
pub use worker::{run as worker_command, WorkerArgs};

/// The share of the load a run may lose to dead workers and still be judged. 10%: latency
/// percentiles and error rates of the other 90% still describe the target under nearly the
/// load asked for, while losing more changes the load itself (one of two workers is 50%).
pub const DEFAULT_MAX_LOST_SHARE: f64 = 0.10;

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("url", &self.url())
            .field("workers", &self.count())
            .finish()
    }
}
