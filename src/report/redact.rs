//! Secrets out of text a report shows: `sk-…` API keys, `Bearer …` tokens and card numbers.
//!
//! Report files get attached to CI jobs and pasted into tickets, so anything copied from a
//! response body or a log line passes through [`redact`] first. It errs on the side of hiding:
//! a redacted harmless string costs less than a published key.

/// Key characters after `sk-` needed before it counts as a key (so `sk-learn` stays).
const MIN_KEY_CHARS: usize = 10;

/// `text` with secrets replaced: `sk-[redacted]`, `Bearer [redacted]`, `[card redacted]`.
pub fn redact(text: &str) -> String {
    let text = redact_keys(text);
    let text = redact_bearer(&text);
    redact_cards(&text)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `sk-` keys; the `sk-` must start a word, or `task-1234567890` would count.
fn redact_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sk-") {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_key_char(c));
        let after = &rest[at + 3..];
        let len = after.find(|c| !is_key_char(c)).unwrap_or(after.len());
        out.push_str(&rest[..at]);
        if starts_word && len >= MIN_KEY_CHARS {
            out.push_str("sk-[redacted]");
        } else {
            out.push_str(&rest[at..at + 3 + len]);
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// `Bearer <token>` in any case (`authorization: bearer abc…`): the token goes.
fn redact_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find("bearer ") {
        let at = from + found;
        let token_start = at + "bearer ".len();
        let token_len = text[token_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';'))
            .unwrap_or(text.len() - token_start);
        out.push_str(&text[from..token_start]);
        if token_len > 0 {
            out.push_str("[redacted]");
        }
        from = token_start + token_len;
    }
    out.push_str(&text[from..]);
    out
}

/// Runs of 13–19 digits, optionally grouped by single spaces or dashes, that pass the Luhn
/// check. Luhn keeps 13-digit millisecond timestamps in log lines readable (nine in ten fail it).
fn redact_cards(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if !(bytes[i].is_ascii_digit() && word_start) {
            i += 1;
            continue;
        }
        // Extend over digits and single separators between digits.
        let mut end = i;
        let mut digits = Vec::new();
        let mut j = i;
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                digits.push(bytes[j] - b'0');
                j += 1;
                end = j;
            } else if matches!(bytes[j], b' ' | b'-')
                && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        let word_end = bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
        if word_end && (13..=19).contains(&digits.len()) && luhn(&digits) {
            out.push_str(&text[copied..i]);
            out.push_str("[card redacted]");
            copied = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_go_but_words_that_merely_contain_sk_stay() {
        assert_eq!(
            redact("key sk-abcdef0123456789XYZ rejected"),
            "key sk-[redacted] rejected"
        );
        assert_eq!(
            redact(r#"{"key":"sk-proj-AbC_123456789"}"#),
            r#"{"key":"sk-[redacted]"}"#
        );
        assert_eq!(
            redact("task-1234567890abc sk-learn"),
            "task-1234567890abc sk-learn"
        );
    }

    #[test]
    fn bearer_tokens_go_whatever_the_case() {
        assert_eq!(
            redact("Authorization: Bearer eyJhbGciOi.abc.def sent"),
            "Authorization: Bearer [redacted] sent"
        );
        assert_eq!(
            redact(r#"{"auth":"bearer tok_123"}"#),
            r#"{"auth":"bearer [redacted]"}"#
        );
    }

    #[test]
    fn card_numbers_go_but_timestamps_and_short_numbers_stay() {
        assert_eq!(
            redact("card 4111 1111 1111 1111 declined"),
            "card [card redacted] declined"
        );
        assert_eq!(redact("card=4111-1111-1111-1111."), "card=[card redacted].");
        assert_eq!(redact("pan 4242424242424242"), "pan [card redacted]");
        // 1700000000001 fails Luhn: a millisecond timestamp stays readable.
        assert_eq!(redact("at 1700000000001 ms"), "at 1700000000001 ms");
        assert_eq!(redact("req-12000 took 9800 ms"), "req-12000 took 9800 ms");
        assert_eq!(redact("2025-06-01 12:00"), "2025-06-01 12:00");
    }
}
