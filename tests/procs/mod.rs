//! Helpers for tests that run faultline as a real child process against real (misbehaving)
//! target processes: a scenario whose target is a shell script around the reference target,
//! a token in the environment that every descendant inherits (to find leftovers in /proc),
//! and faultline's peak memory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The faultline binary under test.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// A unique token for one test's processes.
pub fn token() -> String {
    format!("leftover-{}", uuid::Uuid::new_v4().simple())
}

/// `faultline ARGS` with `token` in its environment (and so in every descendant's).
pub fn faultline(args: &[&str], token: &str) -> Command {
    let mut command = Command::new(exe());
    command
        .args(args)
        .env("FAULTLINE_TEST_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Writes a scenario whose target is `sh -c SCRIPT`; the script finds the reference target's
/// binary in `$FAULTLINE_EXE`. Two users ask one question for `duration`.
pub fn scenario(dir: &Path, script: &str, duration: &str) -> PathBuf {
    scenario_with(dir, script, duration, "")
}

/// As [`scenario`], with `extra` TOML (fault windows, say) after it.
pub fn scenario_with(dir: &Path, script: &str, duration: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"name = "target-process"
seed = 7
[load]
users = 2
duration = "{duration}"
think_time = "100ms"
request_timeout = "5s"
[[load.flows]]
name = "ask"
messages = ["How do I reset my password?"]
[target]
command = ["sh", "-c", {script:?}]
env = {{ OPENAI_BASE_URL = "{{llm}}/v1", OPENAI_API_KEY = "{{llm_key}}", WEATHER_API_URL = "{{tool.weather}}", TICKETS_API_URL = "{{tool.tickets}}", FAULTLINE_EXE = {exe:?} }}
{extra}
"#,
        exe = exe().display().to_string(),
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Live processes (not zombies) whose environment holds `token`, with their command lines.
pub fn processes_with(token: &str) -> Vec<(i32, String)> {
    let needle = format!("FAULTLINE_TEST_TOKEN={token}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|at| stat[at + 1..].trim_start().starts_with('Z'));
        if !zombie
            && environ
                .split(|&b| b == 0)
                .any(|var| var == needle.as_bytes())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// Asserts that no process holding `token` is left, allowing `within` for death signals to
/// land.
pub fn assert_no_leftovers(token: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_with(token);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for (pid, _) in &left {
                // SAFETY: plain syscall on processes this test started; cleans up for the
                // next tests before failing.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            panic!("processes left behind: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until some descendant of `parent` whose command line contains `needle` runs.
pub fn wait_for_process(token: &str, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !processes_with(token)
        .iter()
        .any(|(_, cmd)| cmd.contains(needle))
    {
        assert!(Instant::now() < deadline, "no process `{needle}` started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Peak resident memory (VmHWM, KiB) of a running process.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Waits for `child` (bounded), sampling its peak memory; returns its output and the peak.
pub fn wait_measured(mut child: Child, within: Duration) -> (std::process::Output, u64) {
    let pid = child.id();
    let mut peak = 0;
    // Read the pipes beside the wait, so a full pipe never blocks the child.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut text).ok();
        text
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            panic!("faultline did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, peak)
}

/// The verdict `id` in a run's report.json.
pub fn verdict(report: &serde_json::Value, id: &str) -> serde_json::Value {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no verdict {id}"))
}

/// Reads DIR/NAME as JSON.
pub fn json_file(dir: &Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
    serde_json::from_str(&text).unwrap()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: plain syscall on a child this test started.
    unsafe { libc::kill(pid as i32, signal) };
}
