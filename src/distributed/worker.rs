//! `faultline worker`: one load worker. It finds the coordinator, aligns its clock with the
//! coordinator's, joins, fetches the plan, refuses a plan whose target is outside the ranges
//! this run allows, makes its share of the load from the coordinator's start instant (beating
//! every second with its live counts), and sends back its counts, histograms and records.
//! It switches no fault and judges nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::protocol::{self, Beat, Clock, Heartbeat, Join, WorkPlan, WorkerResult};
use crate::evidence::Evidence;
use crate::load::{self, Share};

/// How often a worker tells the coordinator it is alive (see the coordinator's `LOST_AFTER`).
const BEAT_EVERY: Duration = Duration::from_secs(1);
/// Clock readings taken; the one with the shortest round trip is kept (as NTP does).
const CLOCK_SAMPLES: usize = 5;

/// `faultline worker`'s arguments.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The coordinator's URL (`faultline coordinate` prints it): loopback, or inside
    /// `[network] allow` of this worker's faultline.toml.
    #[arg(long, value_name = "URL")]
    pub coordinator: String,
    /// This worker's index, 0..count (in a Kubernetes Indexed Job: $JOB_COMPLETION_INDEX).
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Workers in the run (as the coordinator's --workers).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// The run's shared token (prefer --token-file or $FAULTLINE_COORDINATOR_TOKEN: a command
    /// line is visible to every user of the machine).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// A file holding the shared token (a mounted Kubernetes Secret).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// This worker's faultline.toml, for `[network] allow` (default: ./faultline.toml when it
    /// exists; without one, only loopback targets are accepted).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// How long to wait for the coordinator to answer and its plan to be ready.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
    /// No chatter on stderr; errors still show.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs one worker to the end; `Ok` once its results are delivered.
pub async fn run(args: WorkerArgs) -> anyhow::Result<i32> {
    if args.count == 0 || args.index >= args.count {
        anyhow::bail!(
            "--index {} is not one of 0..{} (--count {}); give each worker an index below the \
             count",
            args.index,
            args.count,
            args.count
        );
    }
    let allow =
        super::network::allowed_ranges(args.config.as_deref()).map_err(anyhow::Error::msg)?;
    let base = super::network::check(&args.coordinator, &allow)
        .map_err(|e| anyhow::anyhow!("--coordinator {e}"))?;
    let token = protocol::read_token(args.token.clone(), args.token_file.as_deref())
        .map_err(anyhow::Error::msg)?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no shared token: give the coordinator's with --token-file PATH or {}",
                protocol::TOKEN_ENV
            )
        })?;
    let coordinator = Coordinator::new(base, &token)?;
    let until = Instant::now() + args.wait;
    let skew_ms = coordinator.align_clock(until).await?;
    coordinator
        .post_json::<serde_json::Value>(
            "/join",
            &Join {
                index: args.index,
                count: args.count,
            },
        )
        .await?;
    let plan = coordinator.plan(until).await?;
    // The worker's own rule, not the coordinator's: a plan may not send load elsewhere.
    super::network::check(&plan.load.base_url, &allow).map_err(|e| {
        anyhow::anyhow!(
            "refusing the coordinator's plan: its target {e}; this worker sends load only \
             where its own faultline.toml allows"
        )
    })?;
    let coordinator_here = crate::loopback::check(&args.coordinator, "http").is_ok();
    if !coordinator_here && crate::loopback::check(&plan.load.base_url, "http").is_ok() {
        anyhow::bail!(
            "refusing the coordinator's plan: its target {} is on the coordinator's loopback, \
             which this worker (on another machine) cannot reach; run the coordinator with \
             --attach and the service's address in the cluster",
            plan.load.base_url
        );
    }
    let share = Share {
        index: args.index,
        count: args.count,
    };
    if !args.quiet {
        eprintln!(
            "faultline worker {}/{}: `{}` against {}",
            args.index, args.count, plan.scenario, plan.load.base_url
        );
    }
    let spec = plan.load.share(share);
    let client = load::client(&spec)?;
    // The coordinator's start, on this machine's clock (`skew_ms` = theirs - ours).
    let local_start_ms = plan.start_at_ms - skew_ms;
    let start = coordinator.epoch + Duration::from_secs_f64(local_start_ms.max(0.0) / 1000.0);
    tokio::time::sleep_until(start.into()).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let live = Arc::new(load::Live::default());
    let beats = tokio::spawn(beat(
        coordinator.clone(),
        args.index,
        live.clone(),
        stop_tx,
        start + spec.duration + load::drain_time(spec.request_timeout),
    ));
    let driven = load::drive(&spec, client, start, stop_rx, live).await;
    let result = match driven {
        Ok(driven) => deliver(&coordinator, args.index, &plan, driven).await,
        Err(error) => Err(error.into()),
    };
    beats.abort();
    result?;
    if !args.quiet {
        eprintln!("faultline worker {}: results delivered", args.index);
    }
    Ok(crate::cli::EXIT_PASSED)
}

/// Sends the load's counts, histograms and records to the coordinator.
async fn deliver(
    coordinator: &Coordinator,
    index: usize,
    plan: &WorkPlan,
    driven: load::Driven,
) -> anyhow::Result<()> {
    let load::Driven { records, stats } = driven;
    let evidence = Evidence {
        phases: plan.phases.clone(),
        records,
        ..Evidence::default()
    };
    let result = WorkerResult {
        index,
        stats,
        summary: evidence.summary().encoded(),
        records: evidence.records.len() as u64,
        cut: evidence.records.cut().clone(),
    };
    let mut records_gz = Vec::new();
    evidence.records.write_into(&mut records_gz)?;
    let body = protocol::encode_results(&result, &records_gz);
    let answer = coordinator
        .http
        .post(format!("{}/results/{index}", coordinator.base))
        .header("content-type", "application/octet-stream")
        .timeout(Duration::from_secs(120))
        .body(body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("could not send the results to the coordinator: {e}"))?;
    coordinator.check(answer).await.map(drop)
}

/// Beats every second with the live counts until aborted; stops the load at `end`, or when
/// the coordinator says to (an interrupt there, or this worker was declared lost).
async fn beat(
    coordinator: Coordinator,
    index: usize,
    live: Arc<load::Live>,
    stop: watch::Sender<bool>,
    end: Instant,
) {
    let mut tick = tokio::time::interval(BEAT_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep_until(end.into()) => {
                let _ = stop.send(true);
            }
        }
        let beat = Heartbeat {
            index,
            requests: live.requests.load(std::sync::atomic::Ordering::Relaxed),
            failures: live.failures.load(std::sync::atomic::Ordering::Relaxed),
        };
        if let Ok(answer) = coordinator.post_json::<Beat>("/heartbeat", &beat).await {
            if answer.stop {
                // Goose users (the `closed` executor) stop on its killswitch, not on `stop`:
                // without it they would go on sending requests recorded as unfinished.
                goose::trigger_killswitch("the coordinator stopped the load");
                let _ = stop.send(true);
            }
        }
    }
}

/// The coordinator as this worker talks to it.
#[derive(Clone)]
struct Coordinator {
    base: String,
    http: reqwest::Client,
    /// This worker's clock: [`Coordinator::align_clock`]'s readings count from here.
    epoch: Instant,
}

impl Coordinator {
    fn new(base: String, token: &str) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        let value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                anyhow::anyhow!("the shared token holds characters a header cannot carry")
            })?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()?;
        Ok(Coordinator {
            base,
            http,
            epoch: Instant::now(),
        })
    }

    /// The coordinator's clock minus this worker's (ms), from the reading with the shortest
    /// round trip; waits (until `until`) for the coordinator to answer at all.
    async fn align_clock(&self, until: Instant) -> anyhow::Result<f64> {
        let mut best: Option<(Duration, f64)> = None;
        let mut taken = 0;
        while taken < CLOCK_SAMPLES {
            let before = Instant::now();
            let answer = match self.http.get(format!("{}/clock", self.base)).send().await {
                Ok(answer) => answer,
                // Not up yet (a pod started before the coordinator's): ask again.
                Err(e) if Instant::now() < until && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => anyhow::bail!(
                    "the coordinator at {} did not answer GET /clock: {e}",
                    self.base
                ),
            };
            let clock: Clock = self.check(answer).await?.json().await?;
            let after = Instant::now();
            let mid_ms = (ms(self.epoch, before) + ms(self.epoch, after)) / 2.0;
            let trip = after - before;
            if best.as_ref().is_none_or(|(shortest, _)| trip < *shortest) {
                best = Some((trip, clock.now_ms - mid_ms));
            }
            taken += 1;
        }
        Ok(best.map_or(0.0, |(_, skew)| skew))
    }

    /// The plan, asking again while the coordinator says it is not ready (until `until`).
    async fn plan(&self, until: Instant) -> anyhow::Result<WorkPlan> {
        loop {
            let answer = self.http.get(format!("{}/plan", self.base)).send().await?;
            if answer.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE && Instant::now() < until
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            return Ok(self.check(answer).await?.json().await?);
        }
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        Ok(self.check(answer).await?.json().await?)
    }

    /// The answer if it is a success; else the coordinator's own words about why not.
    async fn check(&self, answer: reqwest::Response) -> anyhow::Result<reqwest::Response> {
        let status = answer.status();
        if status.is_success() {
            return Ok(answer);
        }
        let url = answer.url().path().to_string();
        let text = answer.text().await.unwrap_or_default();
        let why = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| crate::scenario::echo(&text));
        anyhow::bail!("the coordinator refused {url} ({status}): {why}")
    }
}

fn ms(epoch: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(epoch).as_secs_f64() * 1000.0
}
