//! `faultline init`: probe a service and write a commented `faultline.toml` draft.
//!
//! Given a command (or the URL of a service already running), init scans the source for the
//! environment variables it reads and the POST routes it declares ([`source`]), starts the
//! fakes and the command with the fakes' addresses under those names, and surveys it
//! ([`survey`]): health, the chat route and its body ([`probe`]), where answers keep the
//! request id and the answer text ([`answer`]), the metrics ([`metrics`]), the log line of one
//! request ([`logs`]), its spans ([`traces`]), and one request while the fake LLM fails.
//! [`draft`] writes what was found, each value with how, and a TODO for each piece it could
//! not find.
//!
//! Bounded: every probe has a timeout, the searches a cap; the child is stopped and reaped
//! however init ends (an error, Ctrl-C), and dies with faultline if faultline is killed.

mod answer;
mod draft;
mod logs;
mod metrics;
mod probe;
mod source;
mod survey;
mod traces;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::fakes::driver::Fakes;
use crate::fakes::remote::ControlClient;
use crate::fakes::set::{service_env, FAKE_LLM_KEY};
use crate::target::{self, SpawnSpec, TargetError, TargetProcess};

pub use draft::{toml_inline, toml_string};

/// A value a probe found, and how (for the draft's comment).
#[derive(Clone, Debug, PartialEq)]
pub struct Found<T> {
    pub value: T,
    pub how: String,
    /// Found by its name alone, not confirmed by what the probes did.
    pub guess: bool,
}

impl<T> Found<T> {
    pub fn new(value: T, how: String) -> Self {
        Found {
            value,
            how,
            guess: false,
        }
    }

    pub fn guess(value: T, how: String) -> Self {
        Found {
            value,
            how,
            guess: true,
        }
    }
}

/// A probe's result: what it found, or why not and what to do (the draft's TODO).
pub type Probe<T> = Result<Found<T>, String>;

/// `faultline init`'s arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("service").required(true).args(["command", "url"])))]
pub struct InitArgs {
    /// The command that starts your service, as one string (split as a shell would; quote
    /// words with spaces). Put {port} where it takes its port, or let it read PORT.
    #[arg(long, value_name = "CMD", conflicts_with = "url")]
    pub command: Option<String>,
    /// Probe a service already running at this URL (loopback only), started with the
    /// addresses `faultline fakes env` prints while `faultline fakes up` runs.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The command's working directory, and the folder whose source is scanned for the
    /// environment variables it reads (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Where to write the draft; `-` prints it.
    #[arg(long, value_name = "PATH", default_value = "faultline.toml")]
    pub out: PathBuf,
    /// Overwrite the file at --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// How long the command may take to answer HTTP on its port.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
    /// With --url: the control API of the running `faultline fakes up` (loopback only;
    /// default http://127.0.0.1:8409).
    #[arg(long, value_name = "URL", requires = "url")]
    pub fakes: Option<String>,
}

/// Runs `faultline init`; the exit code (0: a draft was written).
pub async fn main(args: InitArgs) -> anyhow::Result<i32> {
    let out = Output::check(&args.out, args.force)?;
    let cwd = args.cwd.clone().unwrap_or_else(|| PathBuf::from("."));
    if !cwd.is_dir() {
        bail!(
            "--cwd {}: no such folder; give the folder your service runs from",
            cwd.display()
        );
    }
    let epoch = Instant::now();
    let scan = source::scan(&cwd);
    let (findings, summary) = match (&args.command, &args.url) {
        (Some(command), _) => {
            let words = split_command(command)?;
            probe_command(&args, words, &cwd, &out, scan, epoch).await?
        }
        (None, Some(url)) => {
            let url = loopback_url(url).map_err(|why| anyhow!("--url {url}: {why}"))?;
            probe_url(&args, url, scan, epoch).await?
        }
        (None, None) => bail!("give --command \"CMD\" to start your service, or --url URL"),
    };
    let (text, todos) = draft::write(&findings);
    out.write(&text)?;
    eprintln!(
        "faultline init: {summary}; wrote {} with {todos} TODO(s) to look at. Next: faultline \
         validate outage{}",
        out.shown(),
        out.config_flag()
    );
    Ok(0)
}

/// Where the draft goes, checked before anything starts.
struct Output {
    path: Option<PathBuf>,
}

impl Output {
    fn check(path: &Path, force: bool) -> anyhow::Result<Output> {
        if path == Path::new("-") {
            return Ok(Output { path: None });
        }
        if path.exists() && !force {
            bail!(
                "{} already exists; pass --force to overwrite it, or --out PATH to write the \
                 draft elsewhere",
                path.display()
            );
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            if !dir.is_dir() {
                bail!(
                    "--out {}: the folder {} does not exist",
                    path.display(),
                    dir.display()
                );
            }
        }
        Ok(Output {
            path: Some(path.to_path_buf()),
        })
    }

    /// The folder the draft is read from (relative paths in it are from there).
    fn dir(&self) -> PathBuf {
        let dir = self
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
    }

    fn write(&self, text: &str) -> anyhow::Result<()> {
        match &self.path {
            None => {
                print!("{text}");
                Ok(())
            }
            Some(path) => std::fs::write(path, text)
                .with_context(|| format!("could not write the draft to {}", path.display())),
        }
    }

    fn shown(&self) -> String {
        self.path
            .as_ref()
            .map_or("the draft to stdout".into(), |p| p.display().to_string())
    }

    fn config_flag(&self) -> String {
        match &self.path {
            Some(path) if path != Path::new(crate::scenario::config::FILE_NAME) => {
                format!(" --config {}", path.display())
            }
            _ => String::new(),
        }
    }
}

/// `--command`'s words, split as a shell would.
fn split_command(command: &str) -> anyhow::Result<Vec<String>> {
    let words = shlex::split(command).ok_or_else(|| {
        anyhow!("--command {command:?}: a quote is not closed; quote words with spaces as a shell would")
    })?;
    if words.is_empty() {
        bail!("--command is empty; give the program that starts your service and its arguments");
    }
    Ok(words)
}

/// A loopback URL checked with a real URL parser (so `http://127.0.0.1.example.com` or a
/// `user@host` trick is not taken for this machine); returned without a trailing slash.
pub fn loopback_url(text: &str) -> Result<String, String> {
    crate::loopback::check(text, "http")
}

/// The environment a started command gets: faultline's usual names for every fake, `PORT`,
/// a short span export delay, and the names the source reads mapped to their fakes.
fn command_env(scan: &source::Scan) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = service_env(
        "{llm}",
        "{tool.weather}",
        "{tool.tickets}",
        "{redis}",
        "{otlp}",
        "{mcp}",
    )
    .into_iter()
    .map(|(name, value)| {
        let value = if value == FAKE_LLM_KEY {
            "{llm_key}".to_string()
        } else {
            value
        };
        (name.to_string(), value)
    })
    .collect();
    env.insert("PORT".into(), "{port}".into());
    // Spans leave within 0.2 s rather than the SDKs' default 5 s, so the probe sees them.
    env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into());
    for read in scan.reads.values() {
        if let Some(value) = source::role(&read.name).placeholder() {
            env.insert(read.name.clone(), value.to_string());
        }
    }
    env
}

/// Starts the command with the fakes and probes it.
async fn probe_command(
    args: &InitArgs,
    words: Vec<String>,
    cwd: &Path,
    out: &Output,
    scan: source::Scan,
    epoch: Instant,
) -> anyhow::Result<(draft::Findings, String)> {
    let fakes = Fakes::start(1, epoch, None, &crate::scenario::FakeOptions::default())
        .await
        .context("could not start the fakes")?;
    let port = target::free_port().context("no free loopback port for the service")?;
    let values = fakes
        .placeholders(port)
        .expect("the run's own fakes fill placeholders");
    let spec = SpawnSpec {
        program: PathBuf::from(crate::run::render(&words[0], &values)),
        args: words[1..]
            .iter()
            .map(|w| crate::run::render(w, &values))
            .collect(),
        env: command_env(&scan)
            .into_iter()
            .map(|(k, v)| (k, crate::run::render(&v, &values)))
            .collect(),
        cwd: Some(cwd.to_path_buf()),
        log_file: None,
        base_url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    let mut service = match TargetProcess::spawn(&spec, epoch) {
        Ok(service) => service,
        Err(error) => {
            fakes.shutdown().await;
            bail!("--command: {error}");
        }
    };
    let result = tokio::select! {
        result = start_and_probe(&mut service, args, &fakes, started, &scan) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted; nothing was written")),
    };
    // However the probes ended: stop (and reap) the service, then the fakes.
    service.stop().await;
    fakes.shutdown().await;
    let (mut findings, summary) = result?;
    let cwd_abs = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    findings.reached = draft::Reached::Command {
        words,
        cwd: relative(&cwd_abs, &out.dir()),
        cwd_shown: cwd.display().to_string(),
    };
    Ok((findings, summary))
}

async fn start_and_probe(
    service: &mut TargetProcess,
    args: &InitArgs,
    fakes: &Fakes,
    started: Instant,
    scan: &source::Scan,
) -> anyhow::Result<(draft::Findings, String)> {
    service
        .wait_answering(args.ready_timeout)
        .await
        .map_err(|error| match error {
            TargetError::NeverReady {
                timeout, url, tail, ..
            } => anyhow!(
                "--command: nothing answered HTTP at {url} within {timeout}. Put {{port}} where \
                 the command takes its port (e.g. --port {{port}}), or make the service listen on \
                 $PORT; if it is just slow to start, raise --ready-timeout. Its last output:\n{tail}"
            ),
            TargetError::ExitedEarly { status, tail } => anyhow!(
                "--command: the service exited before it answered HTTP ({status}); check the \
                 command and --cwd. Its last output:\n{tail}"
            ),
            other => anyhow!("--command: {other}"),
        })?;
    let listening_after = started.elapsed().as_secs_f64();
    let dir = service_dir_shown(&args.cwd);
    let mut findings = survey::survey(service, Some(fakes), scan, &dir).await;
    findings.listening_after = Some(listening_after);
    let summary = survey::summary(&findings);
    Ok((findings, summary))
}

/// Probes a service started by hand, through `fakes up` when it answers.
async fn probe_url(
    args: &InitArgs,
    url: String,
    scan: source::Scan,
    epoch: Instant,
) -> anyhow::Result<(draft::Findings, String)> {
    let control = match &args.fakes {
        Some(given) => loopback_url(given).map_err(|why| anyhow!("--fakes {given}: {why}"))?,
        None => format!(
            "http://127.0.0.1:{}",
            crate::fakes::up::DEFAULT_BASE_PORT + crate::fakes::up::CONTROL_OFFSET
        ),
    };
    let fakes = match ControlClient::connect(&control, epoch)
        .await
        .map_err(|e| anyhow!("--fakes {control}: {e}"))?
    {
        Some(client) => Some(Fakes::attach(client).await.map_err(|e| anyhow!("{e}"))?),
        None if args.fakes.is_some() => bail!(
            "--fakes {control}: no `faultline fakes up` control API answers there; start \
             `faultline fakes up` (its control API is at --base-port + 9)"
        ),
        None => None,
    };
    let service = TargetProcess::attach(&url, None, epoch);
    let dir = service_dir_shown(&args.cwd);
    let result = tokio::select! {
        findings = survey::survey(&service, fakes.as_ref(), &scan, &dir) => Ok(findings),
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted; nothing was written")),
    };
    let attached = fakes.is_some();
    if let Some(fakes) = fakes {
        fakes.shutdown().await;
    }
    let mut findings = result?;
    findings.reached = draft::Reached::Url {
        url,
        fakes: attached.then_some(control),
    };
    let summary = survey::summary(&findings);
    Ok((findings, summary))
}

/// The scanned folder as the draft names it.
fn service_dir_shown(cwd: &Option<PathBuf>) -> String {
    cwd.as_ref()
        .map_or(".".into(), |dir| dir.display().to_string())
}

/// `path` relative to `base` (both absolute), for `cwd` in a draft read from `base`; absolute
/// when they share no more than the root (a draft in /tmp for a service in /srv).
fn relative(path: &Path, base: &Path) -> String {
    let path_parts: Vec<_> = path.components().collect();
    let base_parts: Vec<_> = base.components().collect();
    let common = path_parts
        .iter()
        .zip(&base_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        return path.display().to_string();
    }
    let mut relative = PathBuf::new();
    for _ in common..base_parts.len() {
        relative.push("..");
    }
    for part in &path_parts[common..] {
        relative.push(part);
    }
    if relative.as_os_str().is_empty() {
        ".".into()
    } else {
        relative.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_urls_are_accepted() {
        assert_eq!(
            loopback_url("http://127.0.0.1:3000/").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            loopback_url("http://localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            loopback_url("http://[::1]:9/api").unwrap(),
            "http://[::1]:9/api"
        );
        // 2130706433 is 127.0.0.1 written as one number: the parser knows.
        assert_eq!(
            loopback_url("http://2130706433:80").unwrap(),
            "http://127.0.0.1"
        );
        for bad in [
            "http://10.0.0.1:80",
            "http://127.0.0.1.example.com",
            "http://user@127.0.0.1:80",
            "https://127.0.0.1:443",
            "127.0.0.1:3000",
            "http://example.com",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_paths_climb_and_descend() {
        assert_eq!(relative(Path::new("/a/b/c"), Path::new("/a/b")), "c");
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b")), ".");
        assert_eq!(relative(Path::new("/a/x"), Path::new("/a/b/c")), "../../x");
        assert_eq!(
            relative(Path::new("/srv/app"), Path::new("/tmp")),
            "/srv/app"
        );
    }

    #[test]
    fn a_command_is_split_as_a_shell_would() {
        assert_eq!(
            split_command("python -m 'my app' --port {port}").unwrap(),
            ["python", "-m", "my app", "--port", "{port}"]
        );
        assert!(split_command("python 'open").is_err());
        assert!(split_command("   ").is_err());
    }

    #[test]
    fn the_command_gets_every_fake_and_the_names_its_source_reads() {
        let mut scan = source::Scan::default();
        scan.reads.insert(
            "LLM_API_BASE".into(),
            source::EnvRead {
                name: "LLM_API_BASE".into(),
                at: "app.py:1".into(),
                how: "os.environ".into(),
            },
        );
        let env = command_env(&scan);
        assert_eq!(env["LLM_API_BASE"], "{llm}/v1");
        assert_eq!(env["OPENAI_API_KEY"], "{llm_key}");
        assert_eq!(env["REDIS_URL"], "{redis}");
        assert_eq!(env["PORT"], "{port}");
    }
}
