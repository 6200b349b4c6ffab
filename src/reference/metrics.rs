//! The counters behind `GET /admin/metrics` (JSON) and `GET /metrics` (Prometheus text): the
//! lesson's table (LLM latency p50/p95, LLM errors, tokens in and out, cache hit ratio, RAG
//! chunks, agent steps) plus request counts by route and status and the circuit state.
//!
//! Latency goes into an HDR histogram: fixed memory however long the soak, percentiles to three
//! significant figures. The Prometheus exposition is written by hand (a summary with
//! quantiles, counters, gauges): the format is a few lines of text, not worth a dependency.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::circuit::CircuitState;

pub struct Metrics {
    /// Under `lying-metrics`: input tokens doubled, output tokens not counted.
    lying: bool,
    /// Milliseconds per chat-completion attempt, answered or not.
    llm_latency: Mutex<Histogram<u64>>,
    /// LLM calls (embeddings and chat) that still failed after their retries, and streams
    /// that broke after they started: what a service counts around its SDK call. Each failed
    /// attempt is not an error of its own: the retry that follows may get through.
    llm_errors_total: AtomicU64,
    tokens_input: AtomicU64,
    tokens_output: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Lookups or writes that failed (Redis down or slow): the cache was skipped.
    cache_errors: AtomicU64,
    rag_chunks_retrieved: AtomicU64,
    /// Tool calls plus chat-completion calls: what a runaway agent loop would inflate.
    agent_steps_count: AtomicU64,
    /// Requests by route and the status they were answered with (499: client went away).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(false)
    }
}

impl Metrics {
    pub fn new(lying: bool) -> Self {
        Metrics {
            lying,
            // 1 ms to 1 hour: a hung call recorded at its timeout still fits.
            llm_latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000, 3).expect("static histogram bounds"),
            ),
            llm_errors_total: AtomicU64::new(0),
            tokens_input: AtomicU64::new(0),
            tokens_output: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            cache_errors: AtomicU64::new(0),
            rag_chunks_retrieved: AtomicU64::new(0),
            agent_steps_count: AtomicU64::new(0),
            requests: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn record_llm_latency(&self, latency: Duration) {
        let ms = (latency.as_millis() as u64).max(1);
        self.llm_latency.locked().saturating_record(ms);
    }

    pub fn count_llm_error(&self) {
        self.llm_errors_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_tokens(&self, input: u64, output: u64) {
        let (input, output) = if self.lying {
            (input * 2, 0)
        } else {
            (input, output)
        };
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

    pub fn count_cache(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_cache_error(&self) {
        self.cache_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_request(&self, route: &'static str, status: u16) {
        *self.requests.locked().entry((route, status)).or_default() += 1;
    }

    fn cache_hit_ratio(&self) -> f64 {
        let hits = self.cache_hits.load(Ordering::Relaxed);
        let lookups = hits + self.cache_misses.load(Ordering::Relaxed);
        // No lookups yet: 0.0 rather than NaN keeps the JSON valid.
        if lookups == 0 {
            0.0
        } else {
            hits as f64 / lookups as f64
        }
    }

    /// The JSON `GET /admin/metrics` answers with.
    pub fn snapshot(&self, circuit: CircuitState) -> Value {
        let (p50, p95, llm_calls) = {
            let h = self.llm_latency.locked();
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
        let requests = self.requests.locked().clone();
        let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
        let mut by_route: BTreeMap<&str, u64> = BTreeMap::new();
        for ((route, status), n) in &requests {
            *by_status.entry(*status).or_default() += n;
            *by_route.entry(route).or_default() += n;
        }
        json!({
            "llm_latency_ms": {"p50": p50, "p95": p95, "count": llm_calls},
            "llm_errors_total": self.llm_errors_total.load(Ordering::Relaxed),
            "tokens_input": self.tokens_input.load(Ordering::Relaxed),
            "tokens_output": self.tokens_output.load(Ordering::Relaxed),
            "cache_hit_ratio": self.cache_hit_ratio(),
            "cache_hits": self.cache_hits.load(Ordering::Relaxed),
            "cache_misses": self.cache_misses.load(Ordering::Relaxed),
            "cache_errors": self.cache_errors.load(Ordering::Relaxed),
            "rag_chunks_retrieved": self.rag_chunks_retrieved.load(Ordering::Relaxed),
            "agent_steps_count": self.agent_steps_count.load(Ordering::Relaxed),
            "requests_total": by_status.values().sum::<u64>(),
            "requests_by_status": by_status
                .iter()
                .map(|(status, n)| (status.to_string(), Value::from(*n)))
                .collect::<serde_json::Map<_, _>>(),
            "requests_by_route": by_route,
            "circuit_state": circuit.name(),
        })
    }

    /// The same figures in the Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self, circuit: CircuitState) -> String {
        let mut out = String::new();
        fn metric(
            out: &mut String,
            name: &str,
            kind: &str,
            help: &str,
            samples: &[(String, String)],
        ) {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        }
        let plain = |v: u64| vec![(String::new(), v.to_string())];
        {
            let h = self.llm_latency.locked();
            let mut samples: Vec<(String, String)> = [0.5, 0.95, 0.99]
                .iter()
                .map(|q| {
                    let v = if h.is_empty() {
                        0
                    } else {
                        h.value_at_quantile(*q)
                    };
                    (format!("{{quantile=\"{q}\"}}"), v.to_string())
                })
                .collect();
            let sum: u64 = h
                .iter_recorded()
                .map(|v| v.value_iterated_to() * v.count_at_value())
                .sum();
            samples.push(("_sum".into(), sum.to_string()));
            samples.push(("_count".into(), h.len().to_string()));
            // `_sum`/`_count` are suffixes of the name, not labels: written below by hand.
            let (quantiles, totals) = samples.split_at(3);
            metric(
                &mut out,
                "llm_latency_ms",
                "summary",
                "Latency of chat-completion attempts in milliseconds.",
                quantiles,
            );
            for (suffix, value) in totals {
                let _ = writeln!(out, "llm_latency_ms{suffix} {value}");
            }
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            &mut out,
            "llm_errors_total",
            "counter",
            "LLM calls that failed after their retries.",
            &plain(load(&self.llm_errors_total)),
        );
        metric(
            &mut out,
            "tokens_input_total",
            "counter",
            "Prompt tokens used.",
            &plain(load(&self.tokens_input)),
        );
        metric(
            &mut out,
            "tokens_output_total",
            "counter",
            "Completion tokens used.",
            &plain(load(&self.tokens_output)),
        );
        // The same tokens as one labelled family, as OpenTelemetry-style exporters write them.
        metric(
            &mut out,
            "llm_tokens_total",
            "counter",
            "Tokens used, by direction.",
            &[
                (
                    "{direction=\"input\"}".into(),
                    load(&self.tokens_input).to_string(),
                ),
                (
                    "{direction=\"output\"}".into(),
                    load(&self.tokens_output).to_string(),
                ),
            ],
        );
        metric(
            &mut out,
            "cache_hits_total",
            "counter",
            "Answer cache hits.",
            &plain(load(&self.cache_hits)),
        );
        metric(
            &mut out,
            "cache_misses_total",
            "counter",
            "Answer cache misses.",
            &plain(load(&self.cache_misses)),
        );
        metric(
            &mut out,
            "cache_errors_total",
            "counter",
            "Cache operations that failed (cache skipped).",
            &plain(load(&self.cache_errors)),
        );
        metric(
            &mut out,
            "cache_hit_ratio",
            "gauge",
            "Hits over lookups since start.",
            &[(String::new(), format!("{}", self.cache_hit_ratio()))],
        );
        metric(
            &mut out,
            "rag_chunks_retrieved_total",
            "counter",
            "Corpus chunks put into prompts.",
            &plain(load(&self.rag_chunks_retrieved)),
        );
        metric(
            &mut out,
            "agent_steps_count_total",
            "counter",
            "LLM and tool steps taken.",
            &plain(load(&self.agent_steps_count)),
        );
        metric(
            &mut out,
            "circuit_state",
            "gauge",
            "LLM circuit breaker: 0 closed, 1 half-open, 2 open.",
            &plain(circuit.gauge() as u64),
        );
        let requests: Vec<(String, String)> = self
            .requests
            .locked()
            .iter()
            .map(|((route, status), n)| {
                (
                    format!("{{route=\"{route}\",status=\"{status}\"}}"),
                    n.to_string(),
                )
            })
            .collect();
        metric(
            &mut out,
            "requests_total",
            "counter",
            "Requests answered, by route and status.",
            &requests,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_of_fresh_metrics_is_all_zero() {
        let s = Metrics::default().snapshot(CircuitState::Closed);
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
        m.count_request("/api/chat", 200);
        m.count_request("/api/chat", 200);
        m.count_request("/api/agent", 504);
        let s = m.snapshot(CircuitState::Open);
        assert_eq!(s["llm_latency_ms"]["p50"], 50);
        assert_eq!(s["llm_latency_ms"]["p95"], 95);
        assert_eq!(s["tokens_input"], 15);
        assert_eq!(s["tokens_output"], 5);
        assert_eq!(s["requests_total"], 3);
        assert_eq!(s["requests_by_status"], json!({"200": 2, "504": 1}));
        assert_eq!(
            s["requests_by_route"],
            json!({"/api/chat": 2, "/api/agent": 1})
        );
        assert_eq!(s["circuit_state"], "open");
        let text = m.prometheus(CircuitState::Open);
        assert!(text.contains("# TYPE llm_latency_ms summary"), "{text}");
        assert!(
            text.contains("llm_latency_ms{quantile=\"0.95\"} 95"),
            "{text}"
        );
        assert!(text.contains("llm_latency_ms_count 100"), "{text}");
        assert!(
            text.contains("requests_total{route=\"/api/chat\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("circuit_state 2"), "{text}");
        assert!(text.contains("tokens_output_total 5"), "{text}");
    }

    #[test]
    fn lying_metrics_double_input_and_drop_output() {
        let m = Metrics::new(true);
        m.count_tokens(10, 3);
        let s = m.snapshot(CircuitState::Closed);
        assert_eq!(s["tokens_input"], 20);
        assert_eq!(s["tokens_output"], 0);
    }

    #[test]
    fn cache_ratio_is_hits_over_lookups() {
        let m = Metrics::default();
        m.count_cache(true);
        m.count_cache(false);
        m.count_cache(false);
        m.count_cache(true);
        assert_eq!(m.snapshot(CircuitState::Closed)["cache_hit_ratio"], 0.5);
    }
}
