//! Canned answers by topic, from `mocks/answers.toml` (compiled in, so the fake works from any
//! directory). A prompt gets the first topic whose keyword it mentions, else a generic answer;
//! among a topic's answers the seed and the prompt pick one, so answers repeat run to run.
//!
//! Every request asks for an answer, so the file is indexed once: single-word keywords in a
//! map to their topic, and each answer kept with its JSON string form, which a reply then
//! copies instead of escaping the text again.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::fakes::text::{hash, without_nonces};

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

/// A canned answer: its text, and the same as a JSON string.
pub(super) struct Canned {
    pub text: &'static str,
    pub json: Box<RawValue>,
}

/// The answers file, indexed for lookup.
struct Index {
    /// A single-word keyword's topic (the first topic that lists it).
    words: HashMap<&'static str, usize>,
    /// Keywords with a space, matched as phrases, with their topic.
    phrases: Vec<(&'static str, usize)>,
    /// Each topic's answers, then the fallback answers last.
    answers: Vec<Vec<Canned>>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let answers = &*ANSWERS;
    let canned = |texts: &'static [String]| {
        texts
            .iter()
            .map(|text| Canned {
                text,
                json: RawValue::from_string(serde_json::to_string(text).expect("a string"))
                    .expect("a JSON string"),
            })
            .collect::<Vec<_>>()
    };
    let mut index = Index {
        words: HashMap::new(),
        phrases: Vec::new(),
        answers: Vec::new(),
    };
    for (at, topic) in answers.topics.iter().enumerate() {
        // A topic with no answers never matches (the fallback answers instead).
        if topic.answers.is_empty() {
            index.answers.push(Vec::new());
            continue;
        }
        for keyword in &topic.keywords {
            if keyword.contains(' ') {
                index.phrases.push((keyword, at));
            } else {
                index.words.entry(keyword).or_insert(at);
            }
        }
        index.answers.push(canned(&topic.answers));
    }
    index.answers.push(canned(&answers.fallback));
    index
});

/// The answer to `prompt` (the latest user message) under `seed`. Correlation nonces are
/// ignored, so the same question gets the same answer whichever request asks it.
pub(super) fn answer_for(seed: u64, prompt: &str) -> &'static Canned {
    let index = &*INDEX;
    let lowered = without_nonces(prompt).to_lowercase();
    // The first topic any word or phrase of the prompt names.
    let topic = lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter_map(|word| index.words.get(word).copied())
        .chain(
            index
                .phrases
                .iter()
                .filter(|(phrase, _)| lowered.contains(phrase))
                .map(|(_, topic)| *topic),
        )
        .min();
    let choices = &index.answers[topic.unwrap_or(index.answers.len() - 1)];
    let pick = hash(seed, lowered.trim()) % choices.len() as u64;
    &choices[pick as usize]
}

/// Whether `text` contains a canned answer, or is at least 40 characters of one (a service
/// may trim or wrap what the LLM said).
pub(super) fn is_canned(text: &str) -> bool {
    let text = text.trim();
    INDEX.answers.iter().flatten().any(|canned| {
        text.contains(canned.text) || (text.len() >= 40 && canned.text.contains(text))
    })
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
    fn canned_answers_are_recognized_whole_wrapped_or_trimmed() {
        let answer = answer_for(1, "hello").text;
        assert!(is_canned(answer));
        assert!(is_canned(&format!("Assistant: {answer}")));
        assert!(is_canned(&answer[..answer.len() - 1]));
        assert!(!is_canned("Hello!"));
        assert!(!is_canned(
            "an answer that no canned list holds, long enough to be checked"
        ));
    }

    #[test]
    fn a_topic_keyword_picks_that_topics_answer() {
        let answer = answer_for(1, "Will it rain in Paris tomorrow? [fl-1a2b3c4d]").text;
        let weather = ANSWERS.topics.iter().find(|t| t.name == "weather").unwrap();
        assert!(weather.answers.iter().any(|a| a == answer));
    }

    #[test]
    fn the_same_question_gets_the_same_answer_whatever_its_nonce() {
        assert_eq!(
            answer_for(7, "how do refunds work? [fl-00000001]").text,
            answer_for(7, "how do refunds work? [fl-abcdef12]").text
        );
    }

    #[test]
    fn an_unknown_topic_gets_a_fallback_answer() {
        let answer = answer_for(1, "qwertyuiop").text;
        assert!(ANSWERS.fallback.iter().any(|a| a == answer));
    }

    #[test]
    fn the_first_topic_named_wins_whether_by_word_or_by_phrase() {
        let topic_of = |prompt: &str| {
            let answer = answer_for(3, prompt).text;
            ANSWERS
                .topics
                .iter()
                .find(|t| t.answers.iter().any(|a| a == answer))
                .map(|t| t.name.as_str())
        };
        // "log in" (a phrase of the account topic) comes before "error" (a word of a later
        // topic) in the file, whatever their order in the prompt.
        let account = topic_of("I can't log in").unwrap();
        assert_eq!(topic_of("an error when I log in"), Some(account));
        assert_eq!(topic_of("WEATHER, please"), topic_of("weather please"));
    }

    #[test]
    fn an_answers_json_form_is_its_text_as_a_json_string() {
        for choices in &INDEX.answers {
            for canned in choices {
                let back: String = serde_json::from_str(canned.json.get()).unwrap();
                assert_eq!(back, canned.text);
            }
        }
    }
}
