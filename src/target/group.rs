//! Child processes that leave nothing behind: each runs in its own process group, dies with
//! faultline, and is stopped as a whole group.
//!
//! A service is often a tree (a shell script, `npm start`, a server with workers). Signalling
//! only the direct child leaves the rest; signalling the group only when the direct child
//! ignores SIGTERM still leaves a grandchild that ignores it. So [`stop`] sends SIGTERM to the
//! group, waits a grace period for the whole group to go, then sends SIGKILL to the group,
//! whatever the direct child did. Used for targets and for the selftest's child runs.

use crate::sync::LockExt;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// How long what is left of a group gets after its leader has exited on SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

/// Sets `command` up to run in a process group of its own (so faultline signals the whole
/// tree, and a terminal's Ctrl-C reaches faultline alone, which then stops children in order)
/// and to be killed when faultline dies, however it dies (`PR_SET_PDEATHSIG`).
pub fn isolate(command: &mut Command) {
    command.kill_on_drop(true).process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        command.pre_exec(|| {
            // The death signal fires when the parent *thread* exits; children are spawned from
            // runtime worker threads, which live as long as the runtime.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The groups of children started through [`spawn`] and not yet stopped: a second interrupt
/// kills them all before faultline exits (a death signal reaches only direct children, not a
/// target's own children).
static LIVE: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Spawns an [`isolate`]d command; returns the child and its process group.
pub fn spawn(command: &mut Command) -> std::io::Result<(Child, i32)> {
    isolate(command);
    let child = command.spawn()?;
    let group = child.id().map_or(0, |pid| pid as i32);
    LIVE.locked().push(group);
    Ok((child, group))
}

/// SIGKILL to every group [`spawn`] started and nothing stopped yet: for exiting at once.
pub fn kill_all_now() {
    for &group in LIVE.locked().iter() {
        signal_group(group, libc::SIGKILL);
    }
}

/// Takes `group` off the list [`kill_all_now`] kills: its child ended and was reaped.
pub fn forget(group: i32) {
    LIVE.locked().retain(|&live| live != group);
}

/// How a stopped child ended.
#[derive(Clone, Debug)]
pub struct Stopped {
    /// `exit status: 0`, `signal: 15 (SIGTERM)`, …
    pub status: String,
    /// True when something in its group outlived the grace period and got SIGKILL.
    pub killed: bool,
}

/// Stops `child` and everything in its process group `group` (the child's pid, taken at
/// spawn: the child may already be reaped while its grandchildren live on): SIGTERM to the
/// group, up to `grace` for the whole group to exit, then SIGKILL to the group. Returns once
/// the child is reaped.
pub async fn stop(child: &mut Child, group: i32, grace: Duration) -> Stopped {
    signal_group(group, libc::SIGTERM);
    let mut status = tokio::time::timeout(grace, child.wait()).await.ok();
    // The direct child may be gone while a grandchild that ignores SIGTERM lives on. A
    // service that waits for its workers has already waited for them; what is left after it
    // gets a short while more, not another whole grace.
    let deadline = Instant::now() + LEFTOVER_GRACE.min(grace);
    while group_alive(group) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = group_alive(group);
    if killed {
        signal_group(group, libc::SIGKILL);
    }
    if status.is_none() {
        status = Some(child.wait().await);
    }
    forget(group);
    Stopped {
        status: status_text(status.expect("waited above")),
        killed,
    }
}

/// Sends `signal` to every process in `group`, now (for a second Ctrl-C's fast path).
pub fn signal_group(group: i32, signal: libc::c_int) {
    // Never 0 or 1: `kill(-0)` would signal faultline's own group, `kill(-1)` everything.
    if group <= 1 {
        return;
    }
    // SAFETY: plain syscall; the negative pid names the group, never faultline's own (the
    // child leads a group of its own, see `isolate`).
    unsafe { libc::kill(-group, signal) };
}

/// True while a live process (not a zombie) of `group` exists. Zombies are skipped: an
/// orphaned grandchild's zombie waits for whatever reaps orphans (in a container, perhaps
/// nothing), and it holds nothing.
pub fn group_alive(group: i32) -> bool {
    if group <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks that the group exists.
    if unsafe { libc::kill(-group, 0) } != 0 {
        return false;
    }
    members(group).next().is_some()
}

/// The live (non-zombie) processes of `group`, read from /proc.
pub fn members(group: i32) -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(move |pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
            let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
            state != Some("Z") && pgrp == Some(group)
        })
}

fn status_text(status: std::io::Result<std::process::ExitStatus>) -> String {
    status
        .map(|s| s.to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}
