//! Replaying a recording (`faultline record`'s file) as the fake LLM's answers, with the
//! recorded status, headers and body chunks at the recorded timing, and the switchboard's
//! faults on top.
//!
//! A request is answered from the recording when its fingerprint (method, path and query,
//! canonical body: `record::format::fingerprint`) matches a recorded one. Several recorded
//! exchanges with one fingerprint are replayed in recorded order, then from the first again.
//! A request that matches none gets the provider's 404 naming the miss (`OnMiss::Error`), or
//! the fake's generated answer (`OnMiss::Generate`).
//!
//! Timing: the head is sent at once and each chunk at its recorded offset from the request
//! (divided by the speed factor), so a stream's gaps and a plain answer's latency are the
//! recorded ones. Faults the serving loop acts out (status, delay, hang, reset, drop, refuse)
//! apply as to generated answers; here: `rate_limit` (the provider's 429 once its buckets
//! are spent), `slow_stream` (its pacing replaces the recorded one), `stall`, `stream_cut`,
//! and `malformed` (`wrong_content_type`, `no_done`, `truncated_json` on streams; a plain
//! JSON answer is sent whole, untimed, so the serving loop can break it as it breaks any).
//! Faults that rewrite an answer's content (`finish_reason`, tool-call faults) leave a
//! replayed answer as recorded.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;

use super::{anthropic_error, azure, bedrock, error, gemini, Provider, Turn};
use crate::fakes::fault::{Fault, Malformation};
use crate::fakes::http::{Reply, Script};
use crate::record::format::{self, Exchange};

/// What a request that matches no recorded exchange gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMiss {
    /// The provider's 404, naming the request and what the recording holds.
    #[default]
    Error,
    /// The fake's generated answer, as without a recording.
    Generate,
}

/// How a recording is replayed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ReplayOptions {
    /// Recorded offsets are divided by this: 2.0 replays twice as fast.
    pub speed: f64,
    pub on_miss: OnMiss,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: 1.0,
            on_miss: OnMiss::Error,
        }
    }
}

/// A recording loaded for replay.
pub struct Replay {
    /// Exchanges by fingerprint, in recorded order, with the next one to replay.
    groups: HashMap<String, (Vec<Exchange>, AtomicUsize)>,
    /// How many exchanges each `METHOD path` has, for the miss message.
    by_route: HashMap<String, usize>,
    total: usize,
    source: String,
    options: ReplayOptions,
}

/// A time-only `stream_cut` holds the replay open before its last chunk until the cut comes,
/// as for generated streams.
const HOLD_FOR_CUT: Duration = Duration::from_secs(3600);

/// Headers a replay does not repeat: the connection's own, the date, and those the fake
/// stamps afresh on every answer (request ids, processing time).
const NOT_REPLAYED: [&str; 13] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "date",
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "openai-processing-ms",
    "apim-request-id",
    "x-ms-region",
    "x-ms-deployment-name",
    "set-cookie",
];

impl Replay {
    /// Reads `path`; an error names the file, the line and what is wrong.
    pub fn load(path: &Path, options: ReplayOptions) -> Result<Replay, String> {
        if !(options.speed.is_finite() && options.speed > 0.0) {
            return Err(format!(
                "the replay speed is {}; give a factor above 0, e.g. 1 (as recorded) or 2 \
                 (twice as fast)",
                options.speed
            ));
        }
        let exchanges = format::read(path)?;
        let total = exchanges.len();
        let mut groups: HashMap<String, (Vec<Exchange>, AtomicUsize)> = HashMap::new();
        let mut by_route: HashMap<String, usize> = HashMap::new();
        for exchange in exchanges {
            *by_route
                .entry(route(&exchange.method, &exchange.path))
                .or_default() += 1;
            groups
                .entry(exchange.fingerprint.clone())
                .or_insert_with(|| (Vec::new(), AtomicUsize::new(0)))
                .0
                .push(exchange);
        }
        Ok(Replay {
            groups,
            by_route,
            total,
            source: path.display().to_string(),
            options,
        })
    }

    /// How many exchanges the recording holds.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn options(&self) -> ReplayOptions {
        self.options
    }

    /// The answer to `turn` from the recording; the miss error; or `None` when a miss is to
    /// be answered by the generator.
    pub(super) fn answer(&self, turn: &Turn<'_>, provider: Provider) -> Option<Reply> {
        let request = turn.request;
        let target = request
            .uri
            .path_and_query()
            .map_or_else(|| request.uri.path(), |p| p.as_str());
        let fingerprint = format::fingerprint(request.method.as_str(), target, &request.body);
        let Some((exchanges, next)) = self.groups.get(&fingerprint) else {
            return match self.options.on_miss {
                OnMiss::Generate => None,
                OnMiss::Error => {
                    Some(self.miss(provider, request.method.as_str(), target, &fingerprint))
                }
            };
        };
        // Every request takes from the buckets, as a generated one does, so a `rate_limit`
        // fault refuses replayed requests at the same pace.
        let model = serde_json::from_slice::<serde_json::Value>(&request.body)
            .ok()
            .and_then(|body| body.get("model")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "recorded".to_owned());
        let tokens = (request.body.len() as u64).div_ceil(4);
        if let Err(refusal) = turn.admit(provider, &model, tokens) {
            return Some(refusal);
        }
        // In recorded order, then round again.
        let exchange = &exchanges[next.fetch_add(1, Ordering::Relaxed) % exchanges.len()];
        Some(self.reply(exchange, turn))
    }

    /// The provider's 404 for a request the recording does not hold.
    fn miss(&self, provider: Provider, method: &str, target: &str, fingerprint: &str) -> Reply {
        let shown = format::redact_path(target);
        let same_route = self
            .by_route
            .get(&route(method, target))
            .copied()
            .unwrap_or(0);
        let message = format!(
            "faultline replay: no recorded exchange matches {method} {shown} (fingerprint \
             {fingerprint}); the recording {} holds {same_route} exchanges for this route, \
             {} in all. Record this request too, or answer misses with generated replies \
             (--replay-miss generate, or replay_miss = \"generate\" in [fakes.llm]).",
            self.source, self.total
        );
        match provider {
            Provider::OpenAi => error(
                StatusCode::NOT_FOUND,
                &message,
                "invalid_request_error",
                None,
                Some("replay_miss"),
            ),
            Provider::Anthropic => {
                anthropic_error(StatusCode::NOT_FOUND, "not_found_error", &message)
            }
            Provider::Gemini => gemini::error(StatusCode::NOT_FOUND, &message, None),
            Provider::Azure => azure::error(StatusCode::NOT_FOUND, &message),
            Provider::Bedrock => {
                bedrock::error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &message)
            }
        }
    }

    /// `exchange` as a reply, timed and broken as the fault on says.
    fn reply(&self, exchange: &Exchange, turn: &Turn<'_>) -> Reply {
        let status = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::OK);
        let mut headers: Vec<(HeaderName, HeaderValue)> = exchange
            .headers
            .iter()
            .filter(|(name, value)| {
                !NOT_REPLAYED.contains(&name.as_str()) && value != format::REDACTED
            })
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        let content_type = exchange
            .headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .map_or("", |(_, value)| value.as_str());
        let streamed = content_type.starts_with("text/event-stream")
            || content_type.starts_with("application/vnd.amazon.eventstream");
        let mut chunks: Vec<(u64, Bytes)> = exchange
            .chunks
            .iter()
            .map(|chunk| (chunk.ms, Bytes::from(chunk.bytes())))
            .collect();
        let malformed = turn.malformation();
        if malformed.is_some() && !streamed {
            // Whole, so the serving loop breaks it as it breaks any JSON answer.
            let body: Vec<u8> = chunks
                .iter()
                .flat_map(|(_, bytes)| bytes.to_vec())
                .collect();
            return Reply {
                status,
                headers,
                body: Bytes::from(body),
                usage: None,
                stream: None,
            };
        }
        match malformed {
            Some(Malformation::WrongContentType) => {
                headers.retain(|(name, _)| name != header::CONTENT_TYPE);
                headers.push((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ));
            }
            Some(Malformation::NoDone) => {
                if chunks
                    .last()
                    .is_some_and(|(_, last)| last.trim_ascii() == b"data: [DONE]")
                {
                    chunks.pop();
                }
            }
            Some(Malformation::TruncatedJson) => {
                if let Some((_, last)) = chunks.last_mut() {
                    *last = super::stream::half_frame(last);
                }
            }
            _ => {}
        }
        Reply {
            status,
            headers,
            body: Bytes::new(),
            usage: None,
            stream: Some(Box::new(self.script(chunks, exchange.cut, turn))),
        }
    }

    /// The chunks at their recorded offsets, or as a stream fault paces or cuts them.
    fn script(&self, chunks: Vec<(u64, Bytes)>, cut: bool, turn: &Turn<'_>) -> Script {
        let speed = self.options.speed;
        let at = |ms: u64| Duration::from_secs_f64(ms as f64 / 1000.0 / speed);
        let mut script = Script::default();
        let count = chunks.len();
        let mut previous = Duration::ZERO;
        let mut timed = |script: &mut Script, ms: u64| {
            let now = at(ms);
            script.wait(now.saturating_sub(previous));
            previous = now;
        };
        match turn.fault {
            Some(Fault::SlowStream {
                first_token,
                inter_token,
                jitter,
            }) => {
                for (i, (_, bytes)) in chunks.into_iter().enumerate() {
                    let wait = if i == 0 {
                        *first_token
                    } else {
                        inter_token.mul_f64(turn.board.sample_jitter(*jitter))
                    };
                    script.wait(wait);
                    script.send(bytes);
                }
            }
            Some(Fault::Stall {
                after_chunks,
                stall,
            }) => {
                for (i, (ms, bytes)) in chunks.into_iter().enumerate() {
                    timed(&mut script, ms);
                    if i == *after_chunks as usize {
                        script.wait(*stall);
                    }
                    script.send(bytes);
                }
            }
            Some(Fault::StreamCut {
                after_chunks,
                after,
            }) => {
                script.cut_after = *after;
                let keep = match after_chunks {
                    Some(n) => (*n as usize).min(count),
                    None => count.saturating_sub(1),
                };
                for (ms, bytes) in chunks.into_iter().take(keep) {
                    timed(&mut script, ms);
                    script.send(bytes);
                }
                if after_chunks.is_none() {
                    script.wait(HOLD_FOR_CUT);
                }
                script.cut();
                return script;
            }
            _ => {
                for (ms, bytes) in chunks {
                    timed(&mut script, ms);
                    script.send(bytes);
                }
            }
        }
        if cut {
            // The upstream broke this answer off when it was recorded: so does the replay.
            script.cut();
        }
        script
    }
}

/// `METHOD /path` without the query: what the miss message counts by.
fn route(method: &str, target: &str) -> String {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    format!("{} {path}", method.to_ascii_uppercase())
}
