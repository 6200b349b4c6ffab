//! Small text helpers the fakes share: word splitting, a stable hash, the token approximation
//! used for `usage`, and the correlation-nonce scan.
//!
//! All of it is deterministic across runs, platforms and Rust versions (no `DefaultHasher`),
//! because answers, embeddings and weather must repeat with the seed.

/// Lowercased word tokens: maximal runs of alphanumeric characters.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// FNV-1a over the seed's bytes then the text's: stable, cheap, good enough to spread words.
pub(crate) fn hash(seed: u64, text: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for byte in seed.to_le_bytes().iter().chain(text.as_bytes()) {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(PRIME);
    }
    // FNV's low bits mix poorly for short inputs; a final avalanche (splitmix64) fixes that.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The token count the fakes report: one token per 4 characters (Unicode scalar values),
/// rounded up, the rule of thumb OpenAI documents for English text. Deterministic and cheap;
/// close enough for cost and budget checks, not a real tokenizer.
///
/// A real BPE was weighed and left out (issue 3): `tiktoken-rs` 0.7 with `o200k_base` took
/// 2 min 47 s to build here (fancy-regex and the embedded vocabularies), made a release binary
/// 8.5 MB on its own, loaded its vocabulary in 240 ms, and encoded one chat request's prompt
/// and answer in ~42 µs: several times the whole request's cost in the fake (~26 µs of CPU at
/// 78k req/s on 2 cores), which would sink the throughput goal. Clients that count with a
/// real tokenizer should allow for the difference: a 133-character English answer is 34
/// tokens here and 29 in `cl100k_base`.
pub(crate) fn approx_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Length of a correlation nonce: `fl-` and 8 lowercase hex digits.
const NONCE_LEN: usize = 11;

/// The last correlation nonce (`fl-[0-9a-f]{8}`) in `bytes`, if any. The last one, because in
/// a chat request the newest user message comes after the history, which may carry older ones.
/// A plain byte scan: JSON never escapes these characters, so the raw body is enough.
pub(crate) fn last_nonce(bytes: &[u8]) -> Option<&str> {
    (0..=bytes.len().checked_sub(NONCE_LEN)?)
        .rev()
        .find(|&i| is_nonce_at(bytes, i))
        .map(|i| std::str::from_utf8(&bytes[i..i + NONCE_LEN]).expect("ascii"))
}

/// `text` with every correlation nonce removed, so answers and embeddings depend on what was
/// asked, not on which request asked it.
pub(crate) fn without_nonces(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("fl-") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut rest = text;
    let mut out = String::with_capacity(text.len());
    while let Some(nonce) = first_nonce(rest) {
        let at = rest.find(nonce).expect("found above");
        out.push_str(&rest[..at]);
        rest = &rest[at + NONCE_LEN..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn first_nonce(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    (0..=bytes.len().checked_sub(NONCE_LEN)?)
        .find(|&i| is_nonce_at(bytes, i))
        .map(|i| &text[i..i + NONCE_LEN])
}

fn is_nonce_at(bytes: &[u8], i: usize) -> bool {
    let is_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    bytes[i..].starts_with(b"fl-") && bytes[i + 3..i + NONCE_LEN].iter().all(is_hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_alphanumeric_runs() {
        let got: Vec<String> = words("What's the weather in Paris, today?").collect();
        assert_eq!(got, ["what", "s", "the", "weather", "in", "paris", "today"]);
    }

    #[test]
    fn tokens_are_four_characters_rounded_up() {
        assert_eq!(approx_tokens(""), 0);
        assert_eq!(approx_tokens("abc"), 1);
        assert_eq!(approx_tokens("abcd"), 1);
        assert_eq!(approx_tokens("abcde"), 2);
        assert_eq!(approx_tokens("héllo"), 2);
    }

    #[test]
    fn the_hash_depends_on_seed_and_text() {
        assert_eq!(hash(1, "paris"), hash(1, "paris"));
        assert_ne!(hash(1, "paris"), hash(2, "paris"));
        assert_ne!(hash(1, "paris"), hash(1, "lyon"));
    }

    #[test]
    fn the_last_nonce_is_found_anywhere_in_a_body() {
        let body =
            br#"{"messages":[{"content":"old [fl-00000000]"},{"content":"hi [fl-1a2b3c4d]"}]}"#;
        assert_eq!(last_nonce(body), Some("fl-1a2b3c4d"));
        assert_eq!(last_nonce(b"city=Paris&n=fl-deadbeef"), Some("fl-deadbeef"));
        assert_eq!(last_nonce(b"fl-1a2b3c4"), None);
        assert_eq!(last_nonce(b"fl-1A2B3C4D"), None);
        assert_eq!(last_nonce(b"fl-"), None);
        assert_eq!(last_nonce(b""), None);
    }

    #[test]
    fn nonces_are_stripped_from_prompts() {
        assert_eq!(without_nonces("weather? [fl-1a2b3c4d]"), "weather? []");
        assert_eq!(without_nonces("a fl-00000000 b fl-11111111"), "a  b ");
        assert_eq!(without_nonces("fl-xyz"), "fl-xyz");
    }
}
