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
//! and `malformed` (on streams `wrong_content_type`, `no_done`, and `truncated_json` /
//! `invalid_json` on the middle chunk; a plain JSON answer is sent whole, untimed, so the
//! serving loop can break it as it breaks any).
//! Faults that rewrite an answer's content (`finish_reason`, tool-call faults) leave a
//! replayed answer as recorded.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;

use super::{anthropic_error, azure, bedrock, error, gemini, Provider, Turn};
use std::sync::Arc;

use crate::fakes::fault::{Fault, Malformation, Switchboard};
use crate::fakes::http::{self, Reply, Script, Usage};
use crate::fakes::journal::Journal;
use crate::fakes::{FakeError, FakeHandle};
use crate::record::format::{self, Exchange};

/// Like [`super::start_on`], answering from `replay` (a recording) when it is given.
pub async fn start_on(
    addr: std::net::SocketAddr,
    options: super::LlmOptions,
    replay: Option<Arc<Replay>>,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let llm = super::Llm {
        options,
        board: switchboard.clone(),
        limits: super::Limits::default(),
        ledger: super::responses::Ledger::default(),
        replay,
    };
    http::serve_on(addr, "llm", llm, switchboard, journal).await
}

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
    groups: HashMap<String, (Vec<Recorded>, AtomicUsize)>,
    /// How many exchanges each `METHOD path` has, for the miss message.
    by_route: HashMap<String, usize>,
    total: usize,
    source: String,
    options: ReplayOptions,
}

/// One recorded exchange and the token usage its answer reported, read once at load.
struct Recorded {
    exchange: Exchange,
    usage: Option<Usage>,
}

/// The token usage an answer reports, in any provider's spelling: OpenAI chat's
/// `prompt_tokens`/`completion_tokens`, the Responses API's and Anthropic's
/// `input_tokens`/`output_tokens`, Gemini's `promptTokenCount`/`candidatesTokenCount`,
/// Bedrock's `inputTokens`/`outputTokens`. The last figure wins: a stream's final usage
/// (Anthropic's `message_delta`) comes after its first. Found in Bedrock's binary frames too,
/// whose payloads are JSON.
fn usage_of(exchange: &Exchange) -> Option<Usage> {
    use std::sync::LazyLock;
    static INPUT: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#""(?:prompt_tokens|input_tokens|promptTokenCount|inputTokens)"\s*:\s*(\d+)"#,
        )
        .expect("a valid pattern")
    });
    static OUTPUT: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#""(?:completion_tokens|output_tokens|candidatesTokenCount|outputTokens)"\s*:\s*(\d+)"#,
        )
        .expect("a valid pattern")
    });
    if !(200..300).contains(&exchange.status) {
        return None;
    }
    let body: Vec<u8> = exchange
        .chunks
        .iter()
        .flat_map(|chunk| chunk.bytes())
        .collect();
    let text = String::from_utf8_lossy(&body);
    let last = |pattern: &regex::Regex| -> Option<u64> {
        pattern.captures_iter(&text).last()?[1].parse().ok()
    };
    match (last(&INPUT), last(&OUTPUT)) {
        (None, None) => None,
        (input, output) => Some(Usage {
            input: input.unwrap_or(0),
            output: output.unwrap_or(0),
        }),
    }
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
        let mut groups: HashMap<String, (Vec<Recorded>, AtomicUsize)> = HashMap::new();
        let mut by_route: HashMap<String, usize> = HashMap::new();
        for exchange in exchanges {
            *by_route
                .entry(route(&exchange.method, &exchange.path))
                .or_default() += 1;
            groups
                .entry(exchange.fingerprint.clone())
                .or_insert_with(|| (Vec::new(), AtomicUsize::new(0)))
                .0
                .push(Recorded {
                    usage: usage_of(&exchange),
                    exchange,
                });
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
        let recorded = &exchanges[next.fetch_add(1, Ordering::Relaxed) % exchanges.len()];
        let reply = self.reply(&recorded.exchange, turn);
        // The journal counts the tokens the client was told, as for generated answers.
        Some(match recorded.usage {
            Some(usage) => reply.with_usage(usage),
            None => reply,
        })
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
        let binary = content_type.starts_with("application/vnd.amazon.eventstream");
        let streamed = content_type.starts_with("text/event-stream") || binary;
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
                exchange: None,
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
            // OpenAI's closing `data: [DONE]`, wherever the chunk boundaries fell.
            Some(Malformation::NoDone) => {
                const DONE: &[u8] = b"data: [DONE]\n\n";
                if let Some((_, last)) = chunks.last_mut() {
                    if last.ends_with(DONE) {
                        last.truncate(last.len() - DONE.len());
                    }
                }
                chunks.retain(|(_, bytes)| !bytes.is_empty());
            }
            // The middle chunk broken, as the generated streams break their middle frame.
            Some(Malformation::TruncatedJson) if !chunks.is_empty() => {
                let middle = chunks.len() / 2;
                chunks[middle].1 = super::stream::half_frame(&chunks[middle].1);
            }
            Some(Malformation::InvalidJson) if !chunks.is_empty() && !binary => {
                let middle = chunks.len() / 2;
                chunks[middle].1 =
                    Bytes::from_static(b"data: {\"choices\": [{\"delta\": oops}]\n\n");
            }
            _ => {}
        }
        Reply {
            status,
            headers,
            body: Bytes::new(),
            usage: None,
            stream: Some(Box::new(self.script(chunks, exchange.cut, turn))),
            exchange: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::fault::Switchboard;
    use crate::fakes::http::{Request, Step};
    use crate::fakes::llm::{limits::Limits, ApiKey, LlmOptions};

    fn exchange(chunks: &[(u64, &str)]) -> Exchange {
        Exchange {
            v: format::VERSION,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            fingerprint: String::new(),
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            request_headers: vec![],
            chunks: chunks
                .iter()
                .map(|(ms, text)| format::Chunk::new(*ms, text.as_bytes()))
                .collect(),
            cut: false,
        }
    }

    /// The steps `exchange` is replayed as, at `speed`, under `fault`.
    fn steps(exchange: &Exchange, speed: f64, fault: Option<Fault>) -> Vec<String> {
        let replay = Replay {
            groups: HashMap::new(),
            by_route: HashMap::new(),
            total: 0,
            source: String::new(),
            options: ReplayOptions {
                speed,
                on_miss: OnMiss::Error,
            },
        };
        let options = LlmOptions {
            api_key: ApiKey::Any { given: None },
            seed: 1,
        };
        let board = Switchboard::new(1);
        let limits = Limits::default();
        let request = Request {
            method: axum::http::Method::POST,
            uri: "/v1/chat/completions".parse().unwrap(),
            headers: Default::default(),
            body: Bytes::new(),
            arrival: std::time::Instant::now(),
        };
        let turn = Turn {
            options: &options,
            board: &board,
            limits: &limits,
            fault: fault.as_ref(),
            request: &request,
        };
        let reply = replay.reply(exchange, &turn);
        reply
            .stream
            .expect("a stream")
            .steps
            .iter()
            .map(|step| match step {
                Step::Send(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Step::Wait(wait) => format!("wait {}", wait.as_millis()),
                Step::Cut => "cut".into(),
                Step::Render(_) => "render".into(),
            })
            .collect()
    }

    #[test]
    fn chunks_are_sent_at_their_recorded_offsets_scaled_by_the_speed() {
        let recorded = exchange(&[(40, "a"), (240, "b"), (440, "c")]);
        assert_eq!(
            steps(&recorded, 1.0, None),
            ["wait 40", "a", "wait 200", "b", "wait 200", "c"]
        );
        assert_eq!(
            steps(&recorded, 2.0, None),
            ["wait 20", "a", "wait 100", "b", "wait 100", "c"]
        );
    }

    #[test]
    fn stream_faults_pace_stall_and_cut_the_recorded_chunks() {
        let recorded = exchange(&[(10, "a"), (20, "b"), (30, "c")]);
        let stall = Fault::Stall {
            after_chunks: 1,
            stall: Duration::from_millis(500),
        };
        assert_eq!(
            steps(&recorded, 1.0, Some(stall)),
            ["wait 10", "a", "wait 10", "wait 500", "b", "wait 10", "c"]
        );
        let cut = Fault::StreamCut {
            after_chunks: Some(2),
            after: None,
        };
        assert_eq!(
            steps(&recorded, 1.0, Some(cut)),
            ["wait 10", "a", "wait 10", "b", "cut"]
        );
        let slow = Fault::SlowStream {
            first_token: Duration::from_millis(300),
            inter_token: Duration::from_millis(50),
            jitter: 0.0,
        };
        assert_eq!(
            steps(&recorded, 1.0, Some(slow)),
            ["wait 300", "a", "wait 50", "b", "wait 50", "c"]
        );
    }

    #[test]
    fn no_done_drops_the_closing_done_wherever_the_chunks_split() {
        let recorded = exchange(&[(1, "data: {}\n\n"), (2, "data: {}\n\ndata: [DONE]\n\n")]);
        let no_done = Fault::Malformed {
            what: Malformation::NoDone,
        };
        assert_eq!(
            steps(&recorded, 1.0, Some(no_done)),
            ["wait 1", "data: {}\n\n", "wait 1", "data: {}\n\n"]
        );
    }

    #[test]
    fn usage_is_read_in_each_providers_spelling_the_last_figure_winning() {
        let anthropic = exchange(&[
            (
                1,
                r#"event: message_start
data: {"message":{"usage":{"input_tokens":12,"output_tokens":1}}}

"#,
            ),
            (
                2,
                r#"event: message_delta
data: {"usage":{"output_tokens":30}}

"#,
            ),
        ]);
        assert_eq!(
            usage_of(&anthropic),
            Some(Usage {
                input: 12,
                output: 30
            })
        );
        let gemini = exchange(&[(
            1,
            r#"{"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":9}}"#,
        )]);
        assert_eq!(
            usage_of(&gemini),
            Some(Usage {
                input: 4,
                output: 9
            })
        );
        let mut refused =
            exchange(&[(1, r#"{"usage":{"prompt_tokens":4,"completion_tokens":9}}"#)]);
        assert_eq!(
            usage_of(&refused),
            Some(Usage {
                input: 4,
                output: 9
            })
        );
        refused.status = 429;
        assert_eq!(usage_of(&refused), None, "an error answer used no tokens");
    }

    #[test]
    fn an_answer_broken_off_when_recorded_is_cut_in_replay() {
        let mut recorded = exchange(&[(1, "a")]);
        recorded.cut = true;
        assert_eq!(steps(&recorded, 1.0, None), ["wait 1", "a", "cut"]);
    }
}
