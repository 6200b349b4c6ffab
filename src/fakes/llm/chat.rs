//! `POST /v1/chat/completions`: a canned answer (or a tool call) to the latest user message in
//! OpenAI's `chat.completion` shape, or streamed as `chat.completion.chunk` server-sent events
//! ending in `data: [DONE]`, with the usage chunk (`choices: []`) when
//! `stream_options.include_usage` asks for it.
//!
//! Prompt tokens follow OpenAI's cookbook accounting for chat: 3 per message, plus the tokens
//! of its role, content and name, plus 3 priming the reply; text tokens are
//! [`approx_tokens`] (4 characters each). Tool definitions are not counted.

use axum::http::StatusCode;
use bytes::Bytes;
use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::answers::answer_for;
use super::chat_body::{ChatBody, ChatMessage};
use super::stream::{data, pace, pieces, Frame};
use super::tools::{self, Tool};
use super::{context_window, error, parse_body, unix_now};
use super::{with_limits, Provider, Turn};
use crate::fakes::fault::{Fault, FinishReason, Malformation};
use crate::fakes::http::{Render, Reply, Usage};
use crate::fakes::text::approx_tokens;

/// What the model "says" this turn.
pub(super) enum Said {
    Text {
        content: Cow<'static, str>,
        /// `content` as a JSON string, when it is a whole canned answer (most are).
        json: Option<&'static RawValue>,
        finish_reason: &'static str,
    },
    Call {
        id: String,
        name: String,
        /// The arguments as sent: JSON text (invalid under `invalid_tool_args`).
        arguments: String,
    },
}

impl Said {
    /// The answer's output tokens.
    pub(super) fn tokens(&self) -> u64 {
        match self {
            Said::Text { content, .. } => approx_tokens(content),
            // The call's name and arguments, plus a few for its framing.
            Said::Call {
                name, arguments, ..
            } => 3 + approx_tokens(name) + approx_tokens(arguments),
        }
    }
}

/// The turn's answer given the prompt, the tools offered and the fault: shared by both
/// providers. `after_tool_result`: the conversation ends with a tool's answer.
pub(super) fn decide(
    turn: &Turn,
    body: &Map<String, Value>,
    tools: &[Tool],
    prompt: &str,
    after_tool_result: bool,
    max_tokens: Option<u64>,
    id_prefix: &str,
) -> Said {
    let forced = matches!(turn.fault, Some(Fault::ToolLoop | Fault::InvalidToolArgs));
    if let Some(tool) = tools::choose(body, tools, prompt, after_tool_result, forced) {
        let mut arguments = tools::arguments(tool, prompt).to_string();
        if matches!(turn.fault, Some(Fault::InvalidToolArgs)) {
            // Cut inside the object: what a model that ran out of tokens mid-call sends.
            arguments.truncate(arguments.len().saturating_sub(2).max(1));
            arguments.push_str(", \"");
        }
        return Said::Call {
            id: tools::call_id(id_prefix, turn.options.seed, prompt, 0),
            name: tool.name.to_owned(),
            arguments,
        };
    }
    let canned = answer_for(turn.options.seed, prompt);
    let (content, finish_reason) = truncate(canned.text, max_tokens);
    let (content, finish_reason) = match turn.fault {
        // Half the answer, as if the token budget ran out or the filter stopped it there.
        Some(Fault::FinishReason { reason }) => {
            let half = content
                .char_indices()
                .nth(content.chars().count() / 2)
                .map_or(content.len(), |(at, _)| at);
            let reason = match reason {
                FinishReason::Length => "length",
                FinishReason::ContentFilter => "content_filter",
            };
            (&content[..half], reason)
        }
        _ => (content, finish_reason),
    };
    let whole = content.len() == canned.text.len();
    Said::Text {
        content: Cow::Borrowed(content),
        json: whole.then_some(&*canned.json),
        finish_reason,
    }
}

pub(super) fn complete(turn: &Turn) -> Reply {
    match try_complete(turn) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn try_complete(turn: &Turn) -> Result<Reply, Reply> {
    // The common body is read without building a map; any other goes the map's way, which
    // also answers its errors.
    let (parsed, no_fields);
    let (request, body) = match ChatBody::fast(&turn.request.body) {
        Some(request) => {
            no_fields = Map::new();
            (request, &no_fields)
        }
        None => {
            parsed = parse_body(turn.request)?;
            (ChatBody::from_map(&parsed)?, &parsed)
        }
    };
    let model: &str = &request.model;
    let streaming = request.stream;
    let include_usage = streaming && request.include_usage;
    let max_tokens = request.max_tokens;

    let prompt_tokens = 3 + request
        .messages
        .iter()
        .map(ChatMessage::tokens)
        .sum::<u64>();
    let window = context_window(model);
    let wanted = prompt_tokens + max_tokens.unwrap_or(0);
    if wanted > window {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!(
                "This model's maximum context length is {window} tokens. However, you requested \
                 {wanted} tokens ({prompt_tokens} in the messages, {} in the completion). Please \
                 reduce the length of the messages or completion.",
                max_tokens.unwrap_or(0)
            ),
            "invalid_request_error",
            Some("messages"),
            Some("context_length_exceeded"),
        ));
    }
    let limits = turn.admit(Provider::OpenAi, model, wanted)?;

    let prompt = request.prompt();
    let after_tool_result = request.after_tool_result();
    let tools = tools::offered(body);
    let said = decide(
        turn,
        body,
        &tools,
        prompt,
        after_tool_result,
        max_tokens,
        "call_",
    );
    let completion_tokens = said.tokens();
    let usage = UsageBody {
        completion_tokens,
        completion_tokens_details: Reasoning {
            reasoning_tokens: 0,
        },
        prompt_tokens,
        prompt_tokens_details: Cached { cached_tokens: 0 },
        total_tokens: prompt_tokens + completion_tokens,
    };
    let id = super::fresh_id("chatcmpl-");
    let malformed = turn.malformation();
    let reply = if streaming {
        let (frames, render) = chunks(
            &id,
            model,
            &said,
            include_usage.then_some(&usage),
            malformed,
        );
        let mut script = pace(frames, turn.fault, turn.board);
        script.render = render;
        let reply = Reply::event_stream(StatusCode::OK, script);
        super::typed_stream(reply, "text/event-stream; charset=utf-8", malformed)
    } else {
        let message = match &said {
            Said::Text { content, json, .. } => Message {
                content: Some(match json {
                    Some(json) => Content::Json(json),
                    None => Content::Text(content),
                }),
                refusal: (),
                role: "assistant",
                tool_calls: None,
            },
            Said::Call {
                id,
                name,
                arguments,
            } => Message {
                content: None,
                refusal: (),
                role: "assistant",
                tool_calls: Some([ToolCall {
                    function: Function { arguments, name },
                    id,
                    kind: "function",
                }]),
            },
        };
        let choice = (malformed != Some(Malformation::EmptyChoices)).then(|| Choice {
            finish_reason: finish_reason(&said),
            index: 0,
            logprobs: (),
            message,
        });
        let completion = Completion {
            choices: choice.as_slice(),
            created: unix_now(),
            id: &id,
            model,
            object: "chat.completion",
            system_fingerprint: "fp_faultline",
            usage: &usage,
        };
        let mut body = Vec::with_capacity(1024);
        serde_json::to_writer(&mut body, &completion).expect("a completion serializes");
        Reply::json_body(StatusCode::OK, body)
    };
    let reply = with_limits(Provider::OpenAi, reply, &limits);
    // The journal keeps the usage the client was told: a stream tells it only when asked
    // (include_usage) and when no fault holds the usage chunk back.
    let told = !streaming
        || (include_usage
            && !matches!(
                malformed,
                Some(Malformation::NoUsage | Malformation::ErrorFrame)
            ));
    Ok(if told {
        reply.with_usage(Usage {
            input: prompt_tokens,
            output: completion_tokens,
        })
    } else {
        reply
    })
}

// The answer's shapes, typed so they serialize without building a `Value` first. Fields are in
// alphabetical order, the order the `json!` maps these replaced wrote them in.

#[derive(Serialize)]
struct Completion<'a> {
    choices: &'a [Choice<'a>],
    created: u64,
    id: &'a str,
    model: &'a str,
    object: &'static str,
    system_fingerprint: &'static str,
    usage: &'a UsageBody,
}

#[derive(Serialize)]
struct Choice<'a> {
    finish_reason: &'static str,
    index: u32,
    logprobs: (),
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    content: Option<Content<'a>>,
    refusal: (),
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

/// A message's text, or the same already in JSON (copied, not escaped again).
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Json(&'a RawValue),
}

#[derive(Serialize)]
struct ToolCall<'a> {
    function: Function<'a>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Function<'a> {
    arguments: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct UsageBody {
    completion_tokens: u64,
    completion_tokens_details: Reasoning,
    prompt_tokens: u64,
    prompt_tokens_details: Cached,
    total_tokens: u64,
}

#[derive(Serialize)]
struct Reasoning {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct Cached {
    cached_tokens: u64,
}

/// A `chat.completion.chunk`; `usage` is `null` in every chunk but the usage chunk when the
/// client asked for usage, and absent otherwise.
#[derive(Serialize)]
struct Chunk<'a, D: Serialize> {
    choices: &'a [ChunkChoice<D>],
    created: u64,
    id: &'a str,
    model: &'a str,
    object: &'static str,
    system_fingerprint: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a UsageBody>>,
}

#[derive(Serialize)]
struct ChunkChoice<D: Serialize> {
    delta: D,
    finish_reason: Option<&'static str>,
    index: u32,
    logprobs: (),
}

/// What every chunk of one stream shares.
struct ChunkHead<'a> {
    id: &'a str,
    model: &'a str,
    created: u64,
    /// `malformed: empty_choices`: no chunk has a choice.
    empty: bool,
}

impl ChunkHead<'_> {
    fn frame<D: Serialize>(
        &self,
        choice: Option<ChunkChoice<D>>,
        usage: Option<Option<&UsageBody>>,
    ) -> Bytes {
        let choices = match (&choice, self.empty) {
            (Some(choice), false) => std::slice::from_ref(choice),
            _ => &[],
        };
        data(&Chunk {
            choices,
            created: self.created,
            id: self.id,
            model: self.model,
            object: "chat.completion.chunk",
            system_fingerprint: "fp_faultline",
            usage,
        })
    }
}

/// The content chunks of one stream, rendered one by one as they are sent: the chunk with an
/// empty content serialized once, the piece spliced in where its `""` was. Serializing every
/// chunk whole cost a microsecond or two per event, and a few hundred streams whose events
/// fall due in the same millisecond made that lateness.
struct ContentChunks {
    /// The chunk with `"content":""`, split before the `""` (no split: no content in it).
    template: (Bytes, Option<Bytes>),
    /// Borrowed from the answers file unless a fault cut it: a stream holds no copy.
    text: Cow<'static, str>,
    /// Where each piece of `text` ends.
    bounds: Vec<u32>,
}

impl ContentChunks {
    fn template(head: &ChunkHead, null_usage: bool) -> (Bytes, Option<Bytes>) {
        let choice = ChunkChoice {
            delta: ContentDelta { content: "" },
            finish_reason: None,
            index: 0,
            logprobs: (),
        };
        let whole = head.frame(Some(choice), null_usage.then_some(None));
        const MARK: &[u8] = b"\"content\":\"\"";
        match whole.windows(MARK.len()).position(|w| w == MARK) {
            Some(at) => {
                let split = at + MARK.len() - 2;
                (whole.slice(..split), Some(whole.slice(split + 2..)))
            }
            None => (whole, None),
        }
    }

    fn render(&self, index: u32) -> Bytes {
        let (before, Some(after)) = &self.template else {
            return self.template.0.clone();
        };
        let i = index as usize;
        let start = if i == 0 {
            0
        } else {
            self.bounds[i - 1] as usize
        };
        let piece = &self.text[start..self.bounds[i] as usize];
        let mut frame = Vec::with_capacity(before.len() + piece.len() + 2 + after.len());
        frame.extend_from_slice(before);
        serde_json::to_writer(&mut frame, piece).expect("a string serializes");
        frame.extend_from_slice(after);
        Bytes::from(frame)
    }
}

/// A content delta: `{"content": "word "}`.
#[derive(Serialize)]
struct ContentDelta<'a> {
    content: &'a str,
}

fn finish_reason(said: &Said) -> &'static str {
    match said {
        Said::Text { finish_reason, .. } => finish_reason,
        Said::Call { .. } => "tool_calls",
    }
}

/// The stream's frames: a role chunk, content (or tool-call argument) deltas, the finish
/// chunk, the usage chunk if asked for, then `[DONE]`, each broken as `malformed` says.
fn chunks(
    id: &str,
    model: &str,
    said: &Said,
    usage: Option<&UsageBody>,
    malformed: Option<Malformation>,
) -> (Vec<Frame>, Option<Render>) {
    let head = ChunkHead {
        id,
        model,
        created: unix_now(),
        empty: malformed == Some(Malformation::EmptyChoices),
    };
    // `usage: null` in every chunk when the client asked for usage, absent otherwise.
    let null_usage = usage.map(|_| None);
    let chunk = |delta: Value, finish: Option<&'static str>| {
        let choice = ChunkChoice {
            delta,
            finish_reason: finish,
            index: 0,
            logprobs: (),
        };
        head.frame(Some(choice), null_usage)
    };
    let mut frames: Vec<Frame> = Vec::new();
    let mut later = None;
    match said {
        Said::Text { content, .. } => {
            frames.push(
                chunk(
                    json!({ "role": "assistant", "content": "", "refusal": null }),
                    None,
                )
                .into(),
            );
            // Content chunks are rendered as they are sent (see `Script`), from a template.
            let text = ContentChunks {
                template: ContentChunks::template(&head, usage.is_some()),
                bounds: pieces(content)
                    .scan(0u32, |end, piece| {
                        *end += piece.len() as u32;
                        Some(*end)
                    })
                    .collect(),
                text: content.clone(),
            };
            frames.extend((0..text.bounds.len() as u32).map(Frame::Later));
            later = Some(text);
        }
        Said::Call {
            id: call,
            name,
            arguments,
        } => {
            frames.push(
                chunk(
                    json!({ "role": "assistant", "content": null, "tool_calls": [{
                    "index": 0, "id": call, "type": "function",
                    "function": { "name": name, "arguments": "" } }] }),
                    None,
                )
                .into(),
            );
            // Arguments arrive in small fragments, as OpenAI streams them.
            let bytes: Vec<char> = arguments.chars().collect();
            for part in bytes.chunks(8) {
                let part: String = part.iter().collect();
                frames.push(
                    chunk(
                        json!({ "tool_calls": [{ "index": 0, "function": { "arguments": part } }] }),
                        None,
                    )
                    .into(),
                );
            }
        }
    }
    let content_frames = frames.len();
    frames.push(chunk(json!({}), Some(finish_reason(said))).into());
    if let (Some(usage), false) = (usage, malformed == Some(Malformation::NoUsage)) {
        // The usage chunk has no choices even when the others have one.
        frames.push(head.frame::<()>(None, Some(Some(usage))).into());
    }
    if malformed != Some(Malformation::NoDone) {
        frames.push(Bytes::from_static(b"data: [DONE]\n\n").into());
    }
    let middle = content_frames / 2;
    match malformed {
        // An error after the 200 and some content, then the stream ends: what OpenAI sends
        // when a generation fails mid-way.
        Some(Malformation::ErrorFrame) => {
            frames.truncate(middle.max(1));
            frames.push(
                data(&json!({ "error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error", "param": null, "code": null } }))
                .into(),
            );
        }
        Some(Malformation::InvalidJson) => {
            frames[middle] =
                Bytes::from_static(b"data: {\"choices\": [{\"delta\": oops}]\n\n").into();
        }
        Some(Malformation::TruncatedJson) => {
            let frame = match &frames[middle] {
                Frame::Ready(bytes) => bytes.clone(),
                Frame::Later(index) => later.as_ref().expect("content chunks").render(*index),
            };
            let cut = frame.len() / 2;
            let mut broken = frame[..cut].to_vec();
            broken.extend_from_slice(b"\n\n");
            frames[middle] = Bytes::from(broken).into();
        }
        _ => {}
    }
    let render = later.map(|text| Render(Box::new(move |index| text.render(index))));
    (frames, render)
}

/// The text of a message's `content`: a string, or the `text` parts of an array of parts.
pub(super) fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Cuts the answer to `max_tokens` (4 characters a token), with OpenAI's `length` reason.
fn truncate(answer: &str, max_tokens: Option<u64>) -> (&str, &'static str) {
    match max_tokens {
        Some(max) if approx_tokens(answer) > max => {
            let keep = usize::try_from(max.saturating_mul(4)).unwrap_or(usize::MAX);
            let end = answer
                .char_indices()
                .nth(keep)
                .map_or(answer.len(), |(at, _)| at);
            (&answer[..end], "length")
        }
        _ => (answer, "stop"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_chunk_from_the_template_equals_one_serialized_whole() {
        for (empty, null_usage) in [(false, false), (false, true), (true, false)] {
            let head = ChunkHead {
                id: "chatcmpl-1",
                model: "m",
                created: 7,
                empty,
            };
            let text = "say \"hi\"\n ünï ";
            let chunks = ContentChunks {
                template: ContentChunks::template(&head, null_usage),
                bounds: vec![4, text.len() as u32],
                text: text.into(),
            };
            for (index, piece) in [(0, "say "), (1, &text[4..])] {
                let whole = head.frame(
                    Some(ChunkChoice {
                        delta: ContentDelta { content: piece },
                        finish_reason: None,
                        index: 0,
                        logprobs: (),
                    }),
                    null_usage.then_some(None),
                );
                assert_eq!(chunks.render(index), whole, "{piece:?}");
            }
        }
    }

    #[test]
    fn max_tokens_cuts_the_answer_with_reason_length() {
        assert_eq!(truncate("abcdefghij", Some(2)), ("abcdefgh", "length"));
        assert_eq!(truncate("abcdefghij", Some(3)), ("abcdefghij", "stop"));
        assert_eq!(truncate("abc", None), ("abc", "stop"));
    }
}
