//! Each executor against a real loopback server that counts what it receives: the arrival
//! rates send what the schedule asks (and count drops when `max_in_flight` is full), and
//! `ramping_users` holds as many requests in flight as its stage asks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use faultline::evidence::LoadStats;
use faultline::load::{self, Live, LoadSpec};
use faultline::scenario::api::Api;
use faultline::scenario::{Arrivals, Executor, Flow, RateStage, UserStage};
use tokio::sync::watch;

/// Requests in flight now, and the most seen, at a server answering after `delay`.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    received: AtomicUsize,
}

async fn server(delay: Duration) -> (SocketAddr, Arc<Gauge>) {
    let gauge = Arc::new(Gauge::default());
    let seen = gauge.clone();
    let app = Router::new().route(
        "/api/chat",
        post(move || {
            let gauge = seen.clone();
            async move {
                gauge.received.fetch_add(1, Ordering::SeqCst);
                let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
                gauge.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                gauge.now.fetch_sub(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({ "answer": "ok" }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, gauge)
}

async fn drive(executor: Executor, seconds: f64, delay: Duration) -> (LoadStats, Arc<Gauge>) {
    let (addr, gauge) = server(delay).await;
    let spec = LoadSpec {
        base_url: format!("http://{addr}"),
        api: Api::default(),
        executor,
        users: 0,
        duration: Duration::from_secs_f64(seconds),
        think_time: Duration::ZERO,
        request_timeout: Duration::from_secs(10),
        flows: vec![Flow {
            name: "ask".into(),
            weight: 1,
            messages: vec!["Hello?".into()],
            kind: Default::default(),
            request: Default::default(),
        }],
        seed: 7,
        share: faultline::load::Share::WHOLE,
    };
    let (_stop_tx, stop) = watch::channel(false);
    let client = load::client(&spec).unwrap();
    let driven = load::drive(
        &spec,
        client,
        Instant::now(),
        stop,
        Arc::new(Live::default()),
    )
    .await
    .unwrap();
    assert_eq!(driven.stats.sent as usize, driven.records.len());
    (driven.stats, gauge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_executor_sends_what_it_was_asked() {
    let constant = Executor::ConstantRate {
        rate: 40.0,
        max_in_flight: 100,
        arrivals: Arrivals::Even,
    };
    // 10 ms answers: each arrival finds a slot.
    let starved = Executor::ConstantRate {
        rate: 40.0,
        max_in_flight: 1,
        arrivals: Arrivals::Even,
    };
    let ramp = Executor::RampingRate {
        start_rate: 0.0,
        stages: vec![RateStage {
            rate: 60.0,
            duration: Duration::from_secs(2),
        }],
        max_in_flight: 100,
        arrivals: Arrivals::Poisson,
    };
    let users = Executor::RampingUsers {
        start_users: 6,
        stages: vec![UserStage {
            users: 6,
            duration: Duration::from_secs(2),
        }],
    };
    let ((constant, constant_server), (starved, _), (ramp, ramp_server), (users, users_server)) = tokio::join!(
        drive(constant, 2.0, Duration::from_millis(10)),
        // 300 ms answers and one slot: most arrivals are dropped, and counted.
        drive(starved, 2.0, Duration::from_millis(300)),
        drive(ramp, 2.0, Duration::from_millis(10)),
        drive(users, 2.0, Duration::from_millis(100)),
    );

    assert_eq!(
        (constant.asked, constant.sent, constant.dropped),
        (80, 80, 0)
    );
    assert_eq!(constant_server.received.load(Ordering::SeqCst), 80);

    assert_eq!(starved.asked, 80);
    assert_eq!(starved.sent + starved.dropped, 80);
    assert!(starved.dropped > 60, "{starved:?}");
    assert!(starved.fell_behind.as_deref().unwrap().contains("dropped"));

    // 0 -> 60/s over 2 s: 60 expected, Poisson (sd ~ 7.7; 5 sd).
    assert!((ramp.sent as f64 - 60.0).abs() < 39.0, "{ramp:?}");
    assert_eq!(
        ramp_server.received.load(Ordering::SeqCst) as u64,
        ramp.sent
    );

    // 6 users, 100 ms answers, no think time: 6 in flight, about 10 requests each per second.
    assert_eq!(users_server.peak.load(Ordering::SeqCst), 6);
    assert!(users.sent >= 60 && users.sent <= 126, "{users:?}");
}
