//! The service under test: spawning it with its environment (or attaching to one already
//! running), waiting until it is ready, capturing its output (or its log file) as evidence,
//! and stopping it so that nothing is left behind.
//!
//! A spawned target runs in its own process group (so a terminal's Ctrl-C reaches faultline,
//! which then stops the target in order) and with `PR_SET_PDEATHSIG` (so it dies with
//! faultline however faultline ends, even on a second Ctrl-C or a SIGKILL); stopping it stops
//! its whole group (see [`group`]).

pub mod group;
mod logs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub use logs::LogCapture;

use crate::evidence::LogLine;

/// How to start a target and tell when it is ready.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Working directory; faultline's own when `None`.
    pub cwd: Option<PathBuf>,
    /// A log file the target writes, followed instead of relying on stdout alone.
    pub log_file: Option<PathBuf>,
    /// Where it will listen: `http://127.0.0.1:PORT`.
    pub base_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "could not start the target `{program}`{cwd}: {source}; check [target] command and cwd"
    )]
    Spawn {
        program: String,
        cwd: String,
        source: std::io::Error,
    },
    #[error(
        "the target exited before it was ready ({status}); its last output:\n{tail}\n\
         fix the target's configuration ([target] in the scenario) and run again"
    )]
    ExitedEarly { status: String, tail: String },
    #[error(
        "the target was not ready within {timeout}: GET {url} never answered 2xx (last: {last}); \
         its last output:\n{tail}\nraise [target] ready_timeout or fix [target] ready_path"
    )]
    NeverReady {
        timeout: String,
        url: String,
        last: String,
        tail: String,
    },
}

/// A running target: a process faultline started, or one it attached to (`child` is `None`).
pub struct TargetProcess {
    /// The child and its process group (its pid at spawn).
    child: Option<(Child, i32)>,
    base_url: String,
    logs: Arc<LogCapture>,
}

/// How the target ended when faultline stopped it.
#[derive(Clone, Debug)]
pub struct TargetExit {
    /// `exit status: 0`, `signal: 15 (SIGTERM)`, …
    pub status: String,
    /// True when it (or anything in its process group) ignored SIGTERM and had to be killed.
    pub killed: bool,
}

/// Lines of the target's output quoted when it fails to start.
const TAIL_LINES: usize = 20;
/// How long a target gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

impl TargetProcess {
    /// Spawns the target; log timestamps count from `epoch`.
    pub fn spawn(spec: &SpawnSpec, epoch: Instant) -> Result<TargetProcess, TargetError> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        let (mut child, group) =
            group::spawn(&mut command).map_err(|source| TargetError::Spawn {
                program: spec.program.display().to_string(),
                cwd: spec
                    .cwd
                    .as_ref()
                    .map(|cwd| format!(" in {}", cwd.display()))
                    .unwrap_or_default(),
                source,
            })?;
        let logs = Arc::new(LogCapture::new(epoch));
        logs.follow(child.stdout.take(), child.stderr.take());
        if let Some(file) = &spec.log_file {
            logs.follow_file(file.clone());
        }
        Ok(TargetProcess {
            child: Some((child, group)),
            base_url: spec.base_url.clone(),
            logs,
        })
    }

    /// A target already running at `base_url`; its logs come from `log_file`, if any.
    pub fn attach(base_url: &str, log_file: Option<PathBuf>, epoch: Instant) -> TargetProcess {
        let logs = Arc::new(LogCapture::new(epoch));
        if let Some(file) = log_file {
            logs.follow_file(file);
        }
        TargetProcess {
            child: None,
            base_url: base_url.to_string(),
            logs,
        }
    }

    /// How the target ended, when faultline started it and it has exited on its own.
    pub fn exited(&mut self) -> Option<String> {
        let (child, _) = self.child.as_mut()?;
        child
            .try_wait()
            .ok()
            .flatten()
            .map(|status| status.to_string())
    }

    /// True when faultline started the target (and so sees its output).
    pub fn spawned(&self) -> bool {
        self.child.is_some()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn logs(&self) -> &Arc<LogCapture> {
        &self.logs
    }

    /// Polls `GET ready_path` until it answers 2xx, the process exits, or the timeout passes.
    pub async fn wait_ready(
        &mut self,
        ready_path: &str,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        self.wait_for(ready_path, timeout, |status| status.is_success())
            .await
    }

    /// Polls `GET /` until it answers with any status (the target listens and speaks HTTP),
    /// the process exits, or the timeout passes: for a target whose health path is not known.
    pub async fn wait_answering(&mut self, timeout: Duration) -> Result<(), TargetError> {
        self.wait_for("/", timeout, |_| true).await
    }

    async fn wait_for(
        &mut self,
        path: &str,
        timeout: Duration,
        ready: impl Fn(reqwest::StatusCode) -> bool,
    ) -> Result<(), TargetError> {
        let url = format!("{}{}", self.base_url, path);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .expect("a plain HTTP client always builds");
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|(c, _)| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                // Give the readers a moment to take the last lines off the pipes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(TargetError::ExitedEarly {
                    status: status.to_string(),
                    tail: self.tail(),
                });
            }
            let last = match client.get(&url).send().await {
                Ok(response) if ready(response.status()) => return Ok(()),
                Ok(response) => format!("status {}", response.status().as_u16()),
                Err(error) if error.is_connect() => "connection refused".to_string(),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(TargetError::NeverReady {
                    timeout: humantime::format_duration(timeout).to_string(),
                    url,
                    last,
                    tail: self.tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the target: SIGTERM to its process group, then SIGKILL after a grace period.
    /// An attached target is left running.
    pub async fn stop(self) -> TargetExit {
        let TargetProcess { child, logs, .. } = self;
        let exit = match child {
            Some((child, group)) => stop_child(child, group).await,
            None => TargetExit {
                status: "attached: left running".into(),
                killed: false,
            },
        };
        logs.finish().await;
        exit
    }

    fn tail(&self) -> String {
        let lines: Vec<LogLine> = self.logs.tail(TAIL_LINES);
        if lines.is_empty() {
            return "  (no output)".into();
        }
        lines
            .iter()
            .map(|line| format!("  {}", line.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn stop_child(mut child: Child, group: i32) -> TargetExit {
    let stopped = group::stop(&mut child, group, STOP_GRACE).await;
    TargetExit {
        status: stopped.status,
        killed: stopped.killed,
    }
}

/// Where [`free_port`] looks: below Linux's default ephemeral range (32768–60999), so that no
/// outgoing connection (ours, the target's, another run's) is handed the port by the kernel
/// between our check and the target's bind. Asking the kernel for port 0 would pick from the
/// ephemeral range itself, and under many parallel runs that race was seen: a target found
/// its port taken and exited.
const TARGET_PORTS: std::ops::RangeInclusive<u16> = 20000..=32767;

/// A free loopback port for a target to listen on, from [`TARGET_PORTS`], starting at a random
/// place so parallel runs rarely try the same one. The port is released before the target
/// binds it; another process could take it in between, which readiness would then report.
pub fn free_port() -> std::io::Result<u16> {
    let (low, high) = (*TARGET_PORTS.start(), *TARGET_PORTS.end());
    let span = u32::from(high - low) + 1;
    let start = rand::random::<u32>() % span;
    // Bounded: each port of the range is tried at most once.
    for step in 0..span {
        let port = low + ((start + step) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // The whole range is taken: let the kernel choose rather than fail the run.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn a_target_port_is_free_and_outside_the_ephemeral_range() {
        let port = free_port().unwrap();
        assert!(TARGET_PORTS.contains(&port), "{port}");
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
