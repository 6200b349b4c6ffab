//! The parts of a `POST /v1/chat/completions` body the answer depends on, read one of two ways
//! with one outcome:
//!
//! - [`ChatBody::fast`]: the common body (`model`, non-empty `messages` of objects with string
//!   `role`, `content`, `name`; optional `stream`, `stream_options.include_usage`,
//!   `max_tokens`/`max_completion_tokens` as unsigned integers, and nothing else) read straight
//!   into borrowed fields, with no `serde_json::Value` built. Any other body, down to a
//!   `null` where a number goes, makes it give up (`None`);
//! - [`ChatBody::from_map`]: every body, from the parsed `serde_json` map, answering OpenAI's
//!   400s for a missing model or bad messages.
//!
//! The fast reader is hand-written against serde's `MapAccess` rather than derived, because a
//! derived struct would also accept a JSON array (positional fields) where only an object is
//! valid; it accepts exactly the bodies on which the map reading gives the same answer, so
//! errors and odd inputs (content parts, tools, wrongly typed fields) behave as before.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::chat::content_text;
use super::{invalid, missing, required_model};
use crate::fakes::http::Reply;
use crate::fakes::text::approx_tokens;

/// One message as the answer sees it: absent or non-string fields read as "".
pub(super) struct ChatMessage<'a> {
    pub role: Cow<'a, str>,
    pub content: Cow<'a, str>,
    pub name: Cow<'a, str>,
}

impl ChatMessage<'_> {
    /// OpenAI's cookbook accounting: 3 per message plus its role, content and name.
    pub fn tokens(&self) -> u64 {
        3 + approx_tokens(&self.role) + approx_tokens(&self.content) + approx_tokens(&self.name)
    }
}

/// What the answer needs from a chat request body.
pub(super) struct ChatBody<'a> {
    pub model: Cow<'a, str>,
    /// Never empty.
    pub messages: Vec<ChatMessage<'a>>,
    pub stream: bool,
    /// `stream_options.include_usage` is `true` (whether or not `stream` is).
    pub include_usage: bool,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u64>,
}

impl<'a> ChatBody<'a> {
    /// The common body read without a `Value` tree, or `None` for any other body.
    pub fn fast(body: &'a [u8]) -> Option<Self> {
        serde_json::from_slice::<Fast<'a>>(body)
            .ok()
            .map(|fast| fast.0)
    }

    /// Any body, from its parsed map; OpenAI's 400 for a missing model or bad messages.
    pub fn from_map(body: &'a Map<String, Value>) -> Result<Self, Reply> {
        let model = required_model(body)?;
        let messages = match body.get("messages") {
            None | Some(Value::Null) => return Err(missing("messages")),
            Some(Value::Array(messages)) if messages.is_empty() => return Err(invalid(
                "messages",
                "empty array. Expected an array with minimum length 1, but got an empty array instead.",
            )),
            Some(Value::Array(messages)) => messages,
            Some(_) => return Err(invalid("messages", "expected an array of objects.")),
        };
        let text = |message: &'a Value, name| {
            Cow::Borrowed(message.get(name).and_then(Value::as_str).unwrap_or(""))
        };
        Ok(ChatBody {
            model: Cow::Borrowed(model),
            messages: messages
                .iter()
                .map(|message| ChatMessage {
                    role: text(message, "role"),
                    content: Cow::Owned(content_text(message)),
                    name: text(message, "name"),
                })
                .collect(),
            stream: body.get("stream").and_then(Value::as_bool) == Some(true),
            include_usage: body
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                .and_then(Value::as_bool)
                == Some(true),
            max_tokens: body
                .get("max_completion_tokens")
                .or_else(|| body.get("max_tokens"))
                .and_then(Value::as_u64),
        })
    }

    /// What the answer responds to: the latest user message, else the latest message.
    pub fn prompt(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .or_else(|| self.messages.last())
            .map_or("", |m| &m.content)
    }

    /// The conversation ends with a tool's answer.
    pub fn after_tool_result(&self) -> bool {
        self.messages.last().is_some_and(|m| m.role == "tool")
    }
}

/// The error that sends a body to the map reading; its text is never shown.
fn other<E: de::Error>() -> E {
    E::custom("not the common body")
}

/// A JSON string, borrowed from the body unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A string or `null` (read as ""), the way the map reading treats both.
fn text_or_null<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Cow<'de, str>, A::Error> {
    Ok(map
        .next_value::<Option<Text<'de>>>()?
        .map_or(Cow::Borrowed(""), |t| t.0))
}

/// Reads an object's entries; a key `read` does not know ends the fast reading. A repeated
/// key overwrites, as in the map (the last one counts).
fn entries<'de, A: MapAccess<'de>>(
    mut map: A,
    mut read: impl FnMut(&str, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<Text<'de>>()? {
        read(&key.0, &mut map)?;
    }
    Ok(())
}

struct Fast<'a>(ChatBody<'a>);

impl<'de> Deserialize<'de> for Fast<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fast<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a chat request object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Fast<'de>, A::Error> {
                let (mut model, mut messages) = (None, None);
                let (mut stream, mut include_usage) = (None, None);
                let (mut completion_tokens, mut max_tokens) = (None, None);
                entries(map, |key, map| {
                    match key {
                        "model" => model = Some(map.next_value::<Text>()?.0),
                        "messages" => messages = Some(map.next_value::<Messages>()?.0),
                        "stream" => stream = map.next_value::<Option<bool>>()?,
                        "stream_options" => {
                            include_usage = map.next_value::<Option<StreamOptions>>()?
                        }
                        // Only a number: a `null` here hides `max_tokens` in the map reading.
                        "max_completion_tokens" => completion_tokens = Some(map.next_value()?),
                        "max_tokens" => max_tokens = Some(map.next_value()?),
                        _ => return Err(other()),
                    }
                    Ok(())
                })?;
                match (model, messages) {
                    (Some(model), Some(messages)) if !messages.is_empty() => Ok(Fast(ChatBody {
                        model,
                        messages,
                        stream: stream == Some(true),
                        include_usage: include_usage.is_some_and(|o: StreamOptions| o.0),
                        max_tokens: completion_tokens.or(max_tokens),
                    })),
                    _ => Err(other()),
                }
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `stream_options` as an object with at most `include_usage`: true when that is `true`.
struct StreamOptions(bool);

impl<'de> Deserialize<'de> for StreamOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StreamOptions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("stream options")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StreamOptions, A::Error> {
                let mut include = None;
                entries(map, |key, map| match key {
                    "include_usage" => {
                        include = map.next_value::<Option<bool>>()?;
                        Ok(())
                    }
                    _ => Err(other()),
                })?;
                Ok(StreamOptions(include == Some(true)))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `messages` as an array of message objects.
struct Messages<'a>(Vec<ChatMessage<'a>>);

impl<'de> Deserialize<'de> for Messages<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Messages<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages<'de>, A::Error> {
                let mut messages = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(message) = seq.next_element::<OneMessage>()? {
                    messages.push(message.0);
                }
                Ok(Messages(messages))
            }
        }
        deserializer.deserialize_seq(V)
    }
}

/// One message object with string (or null) `role`, `content` and `name` and nothing else.
struct OneMessage<'a>(ChatMessage<'a>);

impl<'de> Deserialize<'de> for OneMessage<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneMessage<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneMessage<'de>, A::Error> {
                let mut message = ChatMessage {
                    role: Cow::Borrowed(""),
                    content: Cow::Borrowed(""),
                    name: Cow::Borrowed(""),
                };
                entries(map, |key, map| {
                    let field = match key {
                        "role" => &mut message.role,
                        "content" => &mut message.content,
                        "name" => &mut message.name,
                        _ => return Err(other()),
                    };
                    *field = text_or_null(map)?;
                    Ok(())
                })?;
                Ok(OneMessage(message))
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading of a body, comparable.
    type Seen = (
        String,
        Vec<(String, String, String)>,
        bool,
        bool,
        Option<u64>,
    );

    fn seen(body: &ChatBody) -> Seen {
        (
            body.model.to_string(),
            body.messages
                .iter()
                .map(|m| {
                    (
                        m.role.to_string(),
                        m.content.to_string(),
                        m.name.to_string(),
                    )
                })
                .collect(),
            body.stream,
            body.include_usage,
            body.max_tokens,
        )
    }

    fn both(text: &str) -> (Option<Seen>, Option<Seen>) {
        let fast = ChatBody::fast(text.as_bytes()).as_ref().map(seen);
        let map: Option<Map<String, Value>> = serde_json::from_str(text).ok();
        let slow = map
            .as_ref()
            .and_then(|map| ChatBody::from_map(map).ok())
            .as_ref()
            .map(seen);
        (fast, slow)
    }

    #[test]
    fn the_common_body_reads_the_same_both_ways() {
        for body in [
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"messages":[{"role":"system","content":null},{"content":"a\nb \"q\"","role":"user","name":"x"}],"model":"m\u00e9"}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":5}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":null,"stream_options":null,"max_completion_tokens":3,"max_tokens":9}"#,
            r#"{"model":"m","stream":true,"stream":false,"messages":[{"role":"user","content":"a","content":"b"}]}"#,
        ] {
            let (fast, slow) = both(body);
            assert!(fast.is_some(), "the fast reading gave up on {body}");
            assert_eq!(fast, slow, "{body}");
        }
    }

    #[test]
    fn any_other_body_is_left_to_the_map_reading() {
        for body in [
            r#"["m",[{"role":"user","content":"hi"}]]"#,
            r#"{"model":"m","messages":[["user","hi"]]}"#,
            r#"{"model":"m","messages":[]}"#,
            r#"{"model":"m"}"#,
            r#"{"model":null,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":null,"max_tokens":4}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"x":1}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi","tool_calls":[]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]} x"#,
        ] {
            assert_eq!(both(body).0, None, "{body}");
        }
    }

    #[test]
    fn the_prompt_is_the_latest_user_message() {
        let map: Map<String, Value> = serde_json::from_str(
            r#"{"model":"m","messages":[
                {"role":"system","content":"be brief"},
                {"role":"user","content":"first"},
                {"role":"assistant","content":"ok"},
                {"role":"user","content":[{"type":"text","text":"second"}]},
                {"role":"assistant","content":null,"tool_calls":[]}]}"#,
        )
        .unwrap();
        let Ok(body) = ChatBody::from_map(&map) else {
            panic!("a valid body was refused")
        };
        assert_eq!(body.prompt(), "second");
        assert!(!body.after_tool_result());
    }

    #[test]
    fn a_message_costs_three_tokens_plus_its_text() {
        let body =
            ChatBody::fast(br#"{"model":"m","messages":[{"role":"user","content":"abcdefgh"}]}"#)
                .unwrap();
        // role "user" = 1 token, content of 8 characters = 2 tokens.
        assert_eq!(body.messages[0].tokens(), 6);
    }
}
