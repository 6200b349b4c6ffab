//! `faultline scenario X --workers N`: the N load workers as child processes of this one
//! (`faultline worker …`, the same binary), each in its own process group, killed with
//! faultline however it ends ([`crate::target::group`]) and reaped when the run ends.

use std::time::Duration;

use tokio::process::{Child, Command};

use super::protocol::TOKEN_ENV;

/// How long a worker gets to exit on SIGTERM when the run is over (it has normally exited
/// already, having reported).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The worker processes this run started.
pub struct LocalWorkers {
    /// Per index: the child, its process group, its pid, and how it exited once seen.
    children: Vec<(Child, i32, u32, Option<String>)>,
}

impl LocalWorkers {
    /// Starts `count` workers of the coordinator at `url`, handing them `token` through the
    /// environment (never on a command line, where `ps` shows it).
    pub fn spawn(
        exe: &std::path::Path,
        url: &str,
        token: &str,
        count: usize,
    ) -> Result<LocalWorkers, String> {
        let mut children = Vec::with_capacity(count);
        for index in 0..count {
            let mut command = Command::new(exe);
            command
                .args(["worker", "--coordinator", url, "--quiet"])
                .args(["--index", &index.to_string(), "--count", &count.to_string()])
                .env(TOKEN_ENV, token)
                .stdin(std::process::Stdio::null())
                // Goose prints to stdout, which is the run's (`--json` writes the verdict
                // there); the workers' errors still reach stderr.
                .stdout(std::process::Stdio::null());
            let (child, group) = crate::target::group::spawn(&mut command).map_err(|e| {
                format!(
                    "could not start load worker {index} ({}): {e}",
                    exe.display()
                )
            })?;
            let pid = child.id().unwrap_or(0);
            children.push((child, group, pid, None));
        }
        Ok(LocalWorkers { children })
    }

    /// The pids, by index.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, _, pid, _)| *pid).collect()
    }

    /// Workers that have exited since last asked: `(index, pid, how)`.
    pub fn exited(&mut self) -> Vec<(usize, u32, String)> {
        let mut gone = Vec::new();
        for (index, (child, _, pid, seen)) in self.children.iter_mut().enumerate() {
            if seen.is_some() {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let how = status.to_string();
                *seen = Some(how.clone());
                gone.push((index, *pid, how));
            }
        }
        gone
    }

    /// Stops whatever is still running and reaps every worker.
    pub async fn reap(mut self) {
        for (child, group, _, _) in &mut self.children {
            crate::target::group::stop(child, *group, STOP_GRACE).await;
        }
    }
}
