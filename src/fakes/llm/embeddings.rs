//! `POST /v1/embeddings`: deterministic vectors that are meaningful enough for retrieval.
//!
//! A hashed bag of words: each lowercased word (common stopwords and correlation nonces left
//! out) adds ±1 to one of `dimensions` (default 256) slots chosen by a seeded hash, then the
//! vector is L2-normalised. Texts sharing words therefore have a higher cosine similarity, so a
//! RAG pipeline over the fake still retrieves the right documents. `encoding_format: "base64"`
//! (openai-python's default) sends little-endian f32 bytes in base64.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{invalid, missing, parse_body, required_model, LlmOptions};
use crate::fakes::http::{Reply, Request, Usage};
use crate::fakes::text::{approx_tokens, hash, without_nonces, words};

/// Width of a vector when the request does not ask for `dimensions`.
const DEFAULT_DIMENSIONS: usize = 256;
/// text-embedding-3-large's width: the most a client can ask for.
const MAX_DIMENSIONS: u64 = 3072;

/// Words too common to say anything about a text's topic.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "for", "from", "how", "i", "in",
    "is", "it", "me", "my", "of", "on", "or", "s", "that", "the", "this", "to", "was", "what",
    "when", "where", "which", "who", "why", "will", "with", "you", "your",
];

enum Encoding {
    Float,
    Base64,
}

pub(super) fn embed(options: &LlmOptions, request: &Request) -> Reply {
    match try_embed(options, request) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn try_embed(options: &LlmOptions, request: &Request) -> Result<Reply, Reply> {
    let body = parse_body(request)?;
    let model = required_model(&body)?;
    let inputs: Vec<&str> = match body.get("input") {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("input", "expected a string or an array of strings."))?,
        Some(_) => {
            return Err(invalid(
                "input",
                "expected a string or an array of strings.",
            ))
        }
    };
    let encoding = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => Encoding::Float,
        Some("base64") => Encoding::Base64,
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                &format!("'{other}' is not one of ['float', 'base64']."),
            ))
        }
    };
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(value) => match value.as_u64() {
            Some(n @ 1..=MAX_DIMENSIONS) => n as usize,
            _ => {
                return Err(invalid(
                    "dimensions",
                    &format!("expected an integer from 1 to {MAX_DIMENSIONS}."),
                ))
            }
        },
    };

    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = vector(options.seed, text, dimensions);
            let embedding = match encoding {
                Encoding::Float => json!(vector),
                Encoding::Base64 => json!(base64_f32(&vector)),
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|text| approx_tokens(text)).sum();
    let answer = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    Ok(Reply::json(StatusCode::OK, &answer).with_usage(Usage {
        input: tokens,
        output: 0,
    }))
}

/// The embedding of `text`: a seeded, signed, hashed bag of words, L2-normalised. A text with
/// no content words gets one fixed unit vector, so every vector has length 1.
pub(crate) fn vector(seed: u64, text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0f32; dimensions];
    let text = without_nonces(text);
    for word in words(&text).filter(|word| !STOPWORDS.contains(&word.as_str())) {
        let h = hash(seed, &word);
        let slot = (h % dimensions as u64) as usize;
        // A sign from another bit keeps colliding words from always adding up.
        vector[slot] += if h >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        vector[(hash(seed, "") % dimensions as u64) as usize] = 1.0;
    } else {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// Standard base64 (with padding) of the vector's little-endian f32 bytes, as OpenAI sends.
fn base64_f32(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn texts_sharing_words_are_closer_than_unrelated_ones() {
        let query = vector(1, "How do I get a refund for my order?", 256);
        let near = vector(
            1,
            "Refund policy: an order can be refunded within 30 days.",
            256,
        );
        let far = vector(1, "The weather in Paris is sunny and warm.", 256);
        assert!(cosine(&query, &near) > cosine(&query, &far) + 0.2);
    }

    #[test]
    fn vectors_are_unit_length_and_repeat_with_the_seed() {
        for text in ["", "the", "hello world"] {
            let v = vector(3, text, 64);
            assert!((cosine(&v, &v) - 1.0).abs() < 1e-5, "{text:?}");
            assert_eq!(v, vector(3, text, 64));
        }
        assert_ne!(vector(3, "hello", 64), vector(4, "hello", 64));
    }

    #[test]
    fn base64_matches_known_encodings() {
        // 1.0f32 is 00 00 80 3f little-endian.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 0.0]), "AACAPwAAAAA=");
        assert_eq!(base64_f32(&[]), "");
    }
}
