//! The counters behind `GET /admin/metrics`: the lesson's table (LLM latency p50/p95, LLM
//! errors, tokens in and out, cache hit ratio, RAG chunks, agent steps) plus request counts.
//!
//! Latency goes into an HDR histogram: fixed memory however long the soak, percentiles to three
//! significant figures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

pub struct Metrics {
    /// Milliseconds per chat-completion attempt, answered or not.
    llm_latency: Mutex<Histogram<u64>>,
    /// Failed LLM attempts (embeddings and chat): statuses, timeouts, refused connections.
    llm_errors_total: AtomicU64,
    tokens_input: AtomicU64,
    tokens_output: AtomicU64,
    cache_lookups: AtomicU64,
    cache_hits: AtomicU64,
    rag_chunks_retrieved: AtomicU64,
    /// Tool calls plus chat-completion calls: what a runaway agent loop would inflate.
    agent_steps_count: AtomicU64,
    /// `/api/chat` requests, by the status they were answered with (499: client went away).
    requests_by_status: Mutex<BTreeMap<u16, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // 1 ms to 1 hour: a hung call recorded at its timeout still fits.
            llm_latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000, 3).expect("static histogram bounds"),
            ),
            llm_errors_total: AtomicU64::new(0),
            tokens_input: AtomicU64::new(0),
            tokens_output: AtomicU64::new(0),
            cache_lookups: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            rag_chunks_retrieved: AtomicU64::new(0),
            agent_steps_count: AtomicU64::new(0),
            requests_by_status: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    pub fn record_llm_latency(&self, latency: Duration) {
        let ms = (latency.as_millis() as u64).max(1);
        self.llm_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(ms);
    }

    pub fn count_llm_error(&self) {
        self.llm_errors_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_tokens(&self, input: u64, output: u64) {
        self.tokens_input.fetch_add(input, Ordering::Relaxed);
        self.tokens_output.fetch_add(output, Ordering::Relaxed);
    }

    pub fn count_chunks(&self, n: usize) {
        self.rag_chunks_retrieved
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn count_agent_step(&self) {
        self.agent_steps_count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_request(&self, status: u16) {
        *self
            .requests_by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    /// The JSON `GET /admin/metrics` answers with.
    pub fn snapshot(&self) -> Value {
        let (p50, p95, llm_calls) = {
            let h = self.llm_latency.lock().unwrap_or_else(|e| e.into_inner());
            if h.is_empty() {
                (0, 0, 0)
            } else {
                (
                    h.value_at_quantile(0.50),
                    h.value_at_quantile(0.95),
                    h.len(),
                )
            }
        };
        let by_status = self
            .requests_by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let lookups = self.cache_lookups.load(Ordering::Relaxed);
        let hits = self.cache_hits.load(Ordering::Relaxed);
        json!({
            "llm_latency_ms": {"p50": p50, "p95": p95, "count": llm_calls},
            "llm_errors_total": self.llm_errors_total.load(Ordering::Relaxed),
            "tokens_input": self.tokens_input.load(Ordering::Relaxed),
            "tokens_output": self.tokens_output.load(Ordering::Relaxed),
            // No cache yet, so no lookups: 0.0 rather than NaN keeps the JSON valid.
            "cache_hit_ratio": if lookups == 0 { 0.0 } else { hits as f64 / lookups as f64 },
            "rag_chunks_retrieved": self.rag_chunks_retrieved.load(Ordering::Relaxed),
            "agent_steps_count": self.agent_steps_count.load(Ordering::Relaxed),
            "requests_total": by_status.values().sum::<u64>(),
            "requests_by_status": by_status
                .iter()
                .map(|(status, n)| (status.to_string(), Value::from(*n)))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_of_fresh_metrics_is_all_zero() {
        let s = Metrics::default().snapshot();
        assert_eq!(s["llm_latency_ms"]["p50"], 0);
        assert_eq!(s["requests_total"], 0);
        assert_eq!(s["cache_hit_ratio"], 0.0);
        assert_eq!(s["requests_by_status"], json!({}));
    }

    #[test]
    fn snapshot_counts_requests_tokens_and_latency() {
        let m = Metrics::default();
        for ms in 1..=100 {
            m.record_llm_latency(Duration::from_millis(ms));
        }
        m.count_tokens(10, 3);
        m.count_tokens(5, 2);
        m.count_request(200);
        m.count_request(200);
        m.count_request(504);
        let s = m.snapshot();
        assert_eq!(s["llm_latency_ms"]["p50"], 50);
        assert_eq!(s["llm_latency_ms"]["p95"], 95);
        assert_eq!(s["tokens_input"], 15);
        assert_eq!(s["tokens_output"], 5);
        assert_eq!(s["requests_total"], 3);
        assert_eq!(s["requests_by_status"], json!({"200": 2, "504": 1}));
    }
}
