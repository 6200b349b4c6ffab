//! What the service calls besides the LLM: the Redis answer cache (skipped, with a warning,
//! while Redis is down), the weather tool (a read; when it is down the answer goes on without
//! live data) and the tickets API (a write; retried only under one `Idempotency-Key`, so a
//! retry never files a ticket twice).

use std::time::Duration;

use rand::Rng;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

/// Every cache operation (connecting included) gets this long: a slow cache must not slow answers.
const CACHE_BUDGET: Duration = Duration::from_millis(200);

pub struct Cache {
    manager: ConnectionManager,
}

#[derive(Debug)]
pub struct CacheDown(pub String);

impl Cache {
    pub fn new(url: &str) -> anyhow::Result<Cache> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CACHE_BUDGET))
            .set_response_timeout(Some(CACHE_BUDGET))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let manager = ConnectionManager::new_lazy_with_config(redis::Client::open(url)?, config)?;
        Ok(Cache { manager })
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheDown> {
        let mut conn = self.manager.clone();
        bounded(async move { conn.get::<_, Option<String>>(key).await }).await
    }

    pub async fn set(&self, key: &str, answer: &str) -> Result<(), CacheDown> {
        let mut conn = self.manager.clone();
        bounded(async move { conn.set_ex::<_, _, ()>(key, answer, 300).await }).await
    }
}

async fn bounded<T>(
    op: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, CacheDown> {
    match tokio::time::timeout(CACHE_BUDGET, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(CacheDown(format!("{:?}", e.kind()))),
        Err(_) => Err(CacheDown("timeout".into())),
    }
}

/// The cache key of a question: faultline's correlation nonce (`[fl-1a2b3c4d]`) left out, so
/// the same question asked twice is one key.
pub fn cache_key(question: &str) -> String {
    let mut text = question.to_lowercase();
    while let Some(at) = text.find("[fl-") {
        let end = text[at..].find(']').map_or(text.len(), |e| at + e + 1);
        text.replace_range(at..end, "");
    }
    format!("askbot:{:016x}", fnv1a(text.trim().as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Is this a question the weather tool can help with, and for which city?
pub fn weather_city(question: &str) -> Option<String> {
    let lower = question.to_lowercase();
    if !["weather", "temperature", "rain", "warm"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return None;
    }
    let city = question
        .split_whitespace()
        .skip_while(|w| *w != "in")
        .nth(1)
        .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()).to_string())
        .filter(|w| w.chars().next().is_some_and(char::is_uppercase));
    Some(city.unwrap_or_else(|| "London".into()))
}

pub async fn weather(
    http: &reqwest::Client,
    base: &str,
    city: &str,
    correlation_id: &str,
    timeout: Duration,
) -> Result<String, String> {
    let reply = http
        .get(format!("{base}/weather"))
        .query(&[("city", city)])
        .header("x-correlation-id", correlation_id)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| kind_of(&e))?;
    if !reply.status().is_success() {
        return Err(format!("status {}", reply.status().as_u16()));
    }
    reply.text().await.map_err(|e| kind_of(&e))
}

/// Files a ticket; a failed write is retried twice, with jittered backoff, under one key.
pub async fn file_ticket(
    http: &reqwest::Client,
    base: &str,
    ticket: &serde_json::Value,
    correlation_id: &str,
    timeout: Duration,
) -> Result<String, String> {
    let key = uuid::Uuid::new_v4().to_string();
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            let full = 0.2 * 2f64.powi(attempt as i32);
            let wait = full / 2.0 + rand::rng().random::<f64>() * full / 2.0;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        let sent = http
            .post(format!("{base}/tickets"))
            .header("idempotency-key", &key)
            .header("x-correlation-id", correlation_id)
            .json(ticket)
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Ok(reply) if reply.status().is_success() => {
                let body: serde_json::Value = reply.json().await.map_err(|e| kind_of(&e))?;
                return Ok(body["id"].as_str().unwrap_or_default().to_string());
            }
            Ok(reply) => {
                last = format!("status {}", reply.status().as_u16());
                // A refused write (4xx) is refused again on a retry.
                if reply.status().is_client_error() && reply.status().as_u16() != 429 {
                    break;
                }
            }
            Err(e) => last = kind_of(&e),
        }
    }
    Err(last)
}

fn kind_of(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "request".into()
    }
}
