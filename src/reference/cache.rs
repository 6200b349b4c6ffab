//! The answer cache in Redis, through redis-rs (the client a real service would use).
//!
//! Keys are the normalised question ([`cache_key`]): lowercased, whitespace collapsed, and the
//! harness's correlation nonce (` [fl-1a2b3c4d]`) removed, so two users asking the same thing hit
//! the same entry. The nonce is stripped for the key only: the LLM still gets the full text.
//!
//! Every operation is bounded by `REDIS_TIMEOUT_MS` (connect included): a slow or dead Redis
//! costs a request at most that, and the caller skips the cache. The [`ConnectionManager`]
//! reconnects on its own after I/O errors, so the cache comes back when Redis does.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use regex::Regex;

/// Namespaced, so the reference target can share a Redis with other things.
const KEY_PREFIX: &str = "faultline:answer:v1:";

static NONCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[fl-[0-9A-Za-z]{4,32}\]").expect("static regex"));

/// The cache key for a question: see the module docs.
pub fn cache_key(question: &str) -> String {
    let without_nonce = NONCE.replace_all(question, " ");
    let normalised = without_nonce
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    format!("{KEY_PREFIX}{normalised}")
}

/// Why the cache could not be used; the kind goes into the warning line.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Redis(String),
}

impl CacheError {
    pub fn kind(&self) -> &'static str {
        match self {
            CacheError::Timeout => "timeout",
            CacheError::Redis(_) => "error",
        }
    }
}

pub struct Cache {
    manager: ConnectionManager,
    ttl: Duration,
    timeout: Duration,
}

impl Cache {
    /// A lazy client: nothing connects until the first lookup, so a Redis that is down at
    /// startup does not stop the service from starting.
    pub fn new(url: &str, ttl: Duration, timeout: Duration) -> Result<Cache, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError::Redis(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // One quick reconnect try per failure; the next request tries again. Long retry
            // loops inside the client would only hold requests past our own timeout.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(50));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| CacheError::Redis(e.to_string()))?;
        Ok(Cache {
            manager,
            ttl,
            timeout,
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut conn = self.manager.clone();
        self.bounded(async move { conn.get::<_, Option<String>>(key).await })
            .await
    }

    /// `SET key value EX ttl`.
    pub async fn set(&self, key: &str, answer: &str) -> Result<(), CacheError> {
        let mut conn = self.manager.clone();
        let ttl = self.ttl.as_secs().max(1);
        self.bounded(async move { conn.set_ex::<_, _, ()>(key, answer, ttl).await })
            .await
    }

    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        match tokio::time::timeout(self.timeout, op).await {
            Err(_) => Err(CacheError::Timeout),
            Ok(Err(e)) => Err(CacheError::Redis(e.to_string())),
            Ok(Ok(value)) => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_spacing_and_the_nonce() {
        let a = cache_key("How long do  refunds take? [fl-1a2b3c4d]");
        let b = cache_key("  how long do refunds\ttake? [fl-99ffeedd]");
        assert_eq!(a, b);
        assert_eq!(a, "faultline:answer:v1:how long do refunds take?");
        assert_ne!(a, cache_key("How long do returns take?"));
    }

    #[test]
    fn other_brackets_are_kept() {
        assert!(cache_key("what is [fl-]?").ends_with("what is [fl-]?"));
        assert!(cache_key("see [1]").ends_with("see [1]"));
    }
}
