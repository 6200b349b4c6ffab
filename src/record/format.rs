//! The recording file `faultline record` writes and the fake LLM replays: JSON lines, one
//! exchange a line, each line written whole, so the file is complete at any moment.
//!
//! A line: `{"v":1,"method","path","fingerprint","status","headers":[[name,value]…],
//! "request_headers":[…],"chunks":[{"ms":12,"text":"…"}|{"ms":12,"base64":"…"}…],"cut"}`.
//! `ms` is when the chunk arrived, in milliseconds from when the request did; a chunk is kept
//! as text when it is UTF-8, else base64 (Bedrock's binary event stream). `cut`: the upstream
//! ended the body early (a replay cuts it at the same place).
//!
//! Secrets never reach the file: the headers that carry credentials ([`is_secret_header`]) and
//! `key=`-like query parameters are written as `[redacted]`, and the credential values a
//! request sent are also blanked wherever the upstream echoed them in its answer.

use std::io::BufRead;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The format's version; a file of another version is refused with what to do.
pub const VERSION: u32 = 1;

/// What a redacted secret is written as.
pub const REDACTED: &str = "[redacted]";

/// One request and the answer the upstream gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub v: u32,
    pub method: String,
    /// Path and query as the client sent them, secret query parameters redacted.
    pub path: String,
    /// What a replayed request must match: see [`fingerprint`].
    pub fingerprint: String,
    pub status: u16,
    /// The answer's headers, in order, secrets redacted.
    pub headers: Vec<(String, String)>,
    /// The request's headers, secrets redacted: to see what a client sent, not for matching.
    #[serde(default)]
    pub request_headers: Vec<(String, String)>,
    pub chunks: Vec<Chunk>,
    /// The upstream broke the body off before its end.
    #[serde(default)]
    pub cut: bool,
}

/// A piece of the answer's body and when it arrived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// Milliseconds from the request's arrival.
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl Chunk {
    pub fn new(ms: u64, bytes: &[u8]) -> Chunk {
        match std::str::from_utf8(bytes) {
            Ok(text) => Chunk {
                ms,
                text: Some(text.to_owned()),
                base64: None,
            },
            Err(_) => Chunk {
                ms,
                text: None,
                base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }

    /// The chunk's bytes; checked when the file was read.
    pub fn bytes(&self) -> Vec<u8> {
        match (&self.text, &self.base64) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

/// Request headers that carry credentials: OpenAI's and Azure's keys, Anthropic's, Google's,
/// AWS SigV4's signature and session token, cookies, and anything named like a key, a token or
/// a credential.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization"
            | "proxy-authorization"
            | "x-api-key"
            | "api-key"
            | "x-goog-api-key"
            | "x-amz-security-token"
            | "cookie"
            | "set-cookie"
    ) || name.ends_with("key") // Azure's ocp-apim-subscription-key, other gateways' keys
        || name.ends_with("token") // not `…-tokens`: the rate-limit headers are no secret
        || ["secret", "password", "credential", "signature", "auth"]
            .iter()
            .any(|word| name.contains(word))
}

/// Query parameters that carry credentials: Gemini's `key`, presigned AWS URLs' parts.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "key"
        || name == "api-key"
        || name == "api_key"
        || name == "access_token"
        || name.starts_with("x-amz-")
}

/// `headers` with the secret ones' values replaced by [`REDACTED`].
pub fn redact_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Vec<(String, String)> {
    headers
        .map(|(name, value)| {
            let value = if is_secret_header(name) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value).into_owned()
            };
            (name.to_ascii_lowercase(), value)
        })
        .collect()
}

/// `path?query` with the secret parameters' values replaced by [`REDACTED`].
pub fn redact_path(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// The credential values a request carries (its secret headers' values, the bearer token or
/// SigV4 parts inside them, secret query values), so an answer that echoes one can be
/// scrubbed. Values under 8 characters are left out: too short to be a key, and blanking
/// them would mangle ordinary text.
pub fn secrets_in<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    path_and_query: &str,
) -> Vec<Vec<u8>> {
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for (name, value) in headers {
        if !is_secret_header(name) {
            continue;
        }
        let text = String::from_utf8_lossy(value);
        secrets.push(value.to_vec());
        // `Bearer KEY`, and SigV4's access key id (`Credential=AKID/date/…`) and `Signature=`;
        // not the credential scope's date and region, which are no secret and common text.
        for part in text.split([' ', ',']).map(str::trim) {
            let secret = match part.split_once('=') {
                Some(("Credential", scope)) => scope.split('/').next().unwrap_or(""),
                Some(("Signature", signature)) => signature,
                Some(_) => continue,
                None => part,
            };
            secrets.push(secret.as_bytes().to_vec());
        }
    }
    if let Some((_, query)) = path_and_query.split_once('?') {
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if is_secret_param(name) {
                    secrets.push(value.as_bytes().to_vec());
                }
            }
        }
    }
    secrets.retain(|secret| secret.len() >= 8);
    // The longest first, so a key is blanked whole before a part of it could be.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.dedup();
    secrets
}

/// `bytes` with every occurrence of each secret replaced by [`REDACTED`].
pub fn scrub(bytes: &[u8], secrets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for secret in secrets {
        let mut scrubbed = Vec::with_capacity(out.len());
        let mut rest = out.as_slice();
        while let Some(at) = find(rest, secret) {
            scrubbed.extend_from_slice(&rest[..at]);
            scrubbed.extend_from_slice(REDACTED.as_bytes());
            rest = &rest[at + secret.len()..];
        }
        scrubbed.extend_from_slice(rest);
        out = scrubbed;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Top-level body fields that identify the caller or tag the request rather than ask for a
/// different answer: left out of the fingerprint, so a recording made with one user id or
/// trace tag still matches requests with another.
pub const VOLATILE_FIELDS: [&str; 4] =
    ["user", "metadata", "safety_identifier", "prompt_cache_key"];

/// What a request must match to be answered from a recording: its method, its path and query
/// (secret parameters dropped, so a different key still matches), and a hash of its body:
/// for a JSON object, of its canonical form (keys sorted, no spaces) without the
/// [`VOLATILE_FIELDS`] and faultline's correlation nonces (`fl-` and 8 hex digits, which a
/// scenario's load puts in every prompt to tell requests apart), so key order, formatting and
/// which request of a run asked do not matter; else of the raw bytes.
/// `POST /v1/chat/completions 3f0a…`.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !is_secret_param(pair.split_once('=').map_or(*pair, |(name, _)| name)))
        .collect();
    let target = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let hash = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut object)) => {
            for field in VOLATILE_FIELDS {
                object.remove(field);
            }
            let mut canonical = String::with_capacity(body.len());
            write_canonical(&serde_json::Value::Object(object), &mut canonical);
            fnv1a(crate::fakes::text::without_nonces(&canonical).as_bytes())
        }
        _ => fnv1a(body),
    };
    format!("{} {target} {hash:016x}", method.to_ascii_uppercase())
}

/// JSON with object keys sorted at every depth (whatever order serde_json keeps them in).
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&object[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// 64-bit FNV-1a: stable across platforms and Rust versions, as a file format needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Reads a recording: every exchange, in order. An error names the file, the line and what
/// is wrong with it.
pub fn read(path: &Path) -> Result<Vec<Exchange>, String> {
    let shown = path.display();
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read recording {shown}: {e}"))?;
    let mut exchanges = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| format!("recording {shown} line {number}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let exchange =
            parse_line(&line).map_err(|why| format!("recording {shown} line {number}: {why}"))?;
        exchanges.push(exchange);
    }
    if exchanges.is_empty() {
        return Err(format!(
            "recording {shown} holds no exchanges; record some with `faultline record \
             --upstream URL --out {shown}`"
        ));
    }
    Ok(exchanges)
}

/// One line, checked: valid JSON of the right shape and version, a real method, status and
/// headers, chunks in time order with exactly one of `text` or valid `base64`.
fn parse_line(line: &str) -> Result<Exchange, String> {
    let exchange: Exchange = serde_json::from_str(line).map_err(|e| {
        format!(
            "not an exchange ({e}); each line must be one JSON object as `faultline record` writes"
        )
    })?;
    if exchange.v != VERSION {
        return Err(format!(
            "format version {} (this faultline reads version {VERSION}); record it again",
            exchange.v
        ));
    }
    axum::http::Method::from_bytes(exchange.method.as_bytes())
        .map_err(|_| format!("method {:?} is not an HTTP method", exchange.method))?;
    if !exchange.path.starts_with('/') {
        return Err(format!("path {:?} does not start with /", exchange.path));
    }
    axum::http::StatusCode::from_u16(exchange.status)
        .ok()
        .filter(|status| !status.is_informational())
        .ok_or_else(|| format!("status {} is not a final HTTP status", exchange.status))?;
    for (name, value) in &exchange.headers {
        axum::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not valid"))?;
        axum::http::HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header {name} is not valid"))?;
    }
    let mut last = 0;
    for (i, chunk) in exchange.chunks.iter().enumerate() {
        match (&chunk.text, &chunk.base64) {
            (Some(_), None) => {}
            (None, Some(encoded)) => {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| format!("chunk {i}: `base64` is not valid base64 ({e})"))?;
            }
            _ => return Err(format!("chunk {i} needs exactly one of `text` or `base64`")),
        }
        if chunk.ms < last {
            return Err(format!(
                "chunk {i} arrives at {} ms, before the chunk before it ({last} ms)",
                chunk.ms
            ));
        }
        last = chunk.ms;
    }
    Ok(exchange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_spacing_and_volatile_fields_do_not_change_the_fingerprint() {
        let a = fingerprint(
            "POST",
            "/v1/chat/completions",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"user":"u1"}"#,
        );
        let b = fingerprint(
            "post",
            "/v1/chat/completions",
            br#"{ "messages": [{"content":"hi","role":"user"}], "model": "m", "metadata": {"t": 1} }"#,
        );
        assert_eq!(a, b);
        let other = fingerprint(
            "POST",
            "/v1/chat/completions",
            br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#,
        );
        assert_ne!(a, other);
        assert!(a.starts_with("POST /v1/chat/completions "), "{a}");
    }

    #[test]
    fn a_scenario_loads_correlation_nonce_does_not_change_the_fingerprint() {
        let asked = |nonce: &str| {
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi [{nonce}]"}}]}}"#
            );
            fingerprint("POST", "/v1/chat/completions", body.as_bytes())
        };
        assert_eq!(asked("fl-0000a001"), asked("fl-1234abcd"));
        assert_ne!(asked("fl-0000a001"), asked("not-a-nonce"));
    }

    #[test]
    fn a_key_in_the_query_is_neither_matched_nor_kept() {
        let a = fingerprint(
            "POST",
            "/v1beta/models/g:generateContent?key=AIzaSECRET1&alt=sse",
            b"{}",
        );
        let b = fingerprint(
            "POST",
            "/v1beta/models/g:generateContent?alt=sse&key=other",
            b"{}",
        );
        assert_eq!(a, b);
        assert!(!a.contains("SECRET"));
        assert_eq!(
            redact_path("/x?alt=sse&key=AIzaSECRET1"),
            "/x?alt=sse&key=[redacted]"
        );
    }

    #[test]
    fn credential_headers_are_redacted_and_echoed_secrets_scrubbed() {
        let headers = [
            ("Authorization", b"Bearer sk-live-123456789".as_slice()),
            ("x-api-key", b"anthropic-secret-1".as_slice()),
            ("x-amz-security-token", b"session-token-abc".as_slice()),
            ("content-type", b"application/json".as_slice()),
        ];
        assert!(is_secret_header("ocp-apim-subscription-key"));
        assert!(
            !is_secret_header("x-ratelimit-remaining-tokens"),
            "rate limits are no secret"
        );
        let kept = redact_headers(headers.iter().copied());
        assert_eq!(kept[0], ("authorization".into(), REDACTED.into()));
        assert_eq!(kept[3].1, "application/json");
        let secrets = secrets_in(headers.iter().copied(), "/v1/x");
        let echoed = scrub(b"Incorrect API key provided: sk-live-123456789.", &secrets);
        assert_eq!(
            String::from_utf8(echoed).unwrap(),
            "Incorrect API key provided: [redacted]."
        );
    }

    #[test]
    fn binary_chunks_round_trip_through_base64() {
        let bytes = [0u8, 159, 146, 150, 255];
        let chunk = Chunk::new(5, &bytes);
        assert!(chunk.text.is_none());
        assert_eq!(chunk.bytes(), bytes);
    }

    #[test]
    fn a_bad_line_says_what_is_wrong() {
        let good = r#"{"v":1,"method":"GET","path":"/v1/models","fingerprint":"f","status":200,"headers":[],"chunks":[{"ms":1,"text":"{}"}]}"#;
        assert!(parse_line(good).is_ok());
        let out_of_order = good.replace(
            r#"[{"ms":1,"text":"{}"}]"#,
            r#"[{"ms":5,"text":"a"},{"ms":2,"text":"b"}]"#,
        );
        assert!(parse_line(&out_of_order)
            .unwrap_err()
            .contains("chunk 1 arrives at 2 ms"));
        let both = good.replace(r#""text":"{}""#, r#""text":"a","base64":"YQ==""#);
        assert!(parse_line(&both).unwrap_err().contains("exactly one of"));
        let version = good.replace(r#""v":1"#, r#""v":7"#);
        assert!(parse_line(&version).unwrap_err().contains("version 7"));
        assert!(parse_line("{not json")
            .unwrap_err()
            .contains("not an exchange"));
    }
}
