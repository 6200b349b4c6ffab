//! Canned answers by topic, from `mocks/answers.toml` (compiled in, so the fake works from any
//! directory). A prompt gets the first topic whose keyword it mentions, else a generic answer;
//! among a topic's answers the seed and the prompt pick one, so answers repeat run to run.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::fakes::text::{hash, without_nonces, word_slices};

#[derive(Debug, Deserialize)]
struct Answers {
    /// For prompts that match no topic.
    fallback: Vec<String>,
    #[serde(rename = "topic", default)]
    topics: Vec<Topic>,
}

#[derive(Debug, Deserialize)]
struct Topic {
    #[allow(dead_code)] // Names the topic in the file; handy in reviews, unused at runtime.
    name: String,
    /// Lowercase words; a keyword with a space matches as a phrase.
    keywords: Vec<String>,
    answers: Vec<String>,
}

static ANSWERS: LazyLock<Answers> = LazyLock::new(|| {
    let answers: Answers = toml::from_str(include_str!("../../../mocks/answers.toml"))
        .expect("mocks/answers.toml is valid (checked by a unit test)");
    assert!(
        !answers.fallback.is_empty(),
        "mocks/answers.toml needs a fallback"
    );
    answers
});

/// The answer to `prompt` (the latest user message) under `seed`. Correlation nonces are
/// ignored, so the same question gets the same answer whichever request asks it.
pub(super) fn answer_for(seed: u64, prompt: &str) -> &'static str {
    let prompt = without_nonces(prompt);
    let lowered = prompt.to_lowercase();
    // A handful of words: a list beats a set, and words already lowercase are not copied.
    let said: Vec<Cow<str>> = word_slices(&prompt).collect();
    let mentions = |keyword: &String| {
        if keyword.contains(' ') {
            lowered.contains(keyword.as_str())
        } else {
            said.iter().any(|word| word == keyword)
        }
    };
    let choices = ANSWERS
        .topics
        .iter()
        .find(|topic| !topic.answers.is_empty() && topic.keywords.iter().any(mentions))
        .map_or(&ANSWERS.fallback, |topic| &topic.answers);
    let pick = hash(seed, lowered.trim()) % choices.len() as u64;
    &choices[pick as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_file_parses_and_every_topic_has_answers() {
        assert!(!ANSWERS.fallback.is_empty());
        for topic in &ANSWERS.topics {
            assert!(
                !topic.answers.is_empty(),
                "topic {} has no answers",
                topic.name
            );
            assert!(
                !topic.keywords.is_empty(),
                "topic {} has no keywords",
                topic.name
            );
        }
    }

    #[test]
    fn a_topic_keyword_picks_that_topics_answer() {
        let answer = answer_for(1, "Will it rain in Paris tomorrow? [fl-1a2b3c4d]");
        let weather = ANSWERS.topics.iter().find(|t| t.name == "weather").unwrap();
        assert!(weather.answers.iter().any(|a| a == answer));
    }

    #[test]
    fn the_same_question_gets_the_same_answer_whatever_its_nonce() {
        assert_eq!(
            answer_for(7, "how do refunds work? [fl-00000001]"),
            answer_for(7, "how do refunds work? [fl-abcdef12]")
        );
    }

    #[test]
    fn an_unknown_topic_gets_a_fallback_answer() {
        let answer = answer_for(1, "qwertyuiop");
        assert!(ANSWERS.fallback.iter().any(|a| a == answer));
    }
}
