//! Notes: what a person should know about how the service behaved that no gate owns. Each is
//! one line with the figures and a few request ids as evidence; reports show them beside the
//! verdicts, and they never fail the gate.
//!
//! A target that crashed during the run, with its exit status and last lines, and what the
//! bounds on its output cost. Which API key the service sent the fake LLM. The fake accepts every key (as other
//! LLM fakes do) and journals a class per attempt (`Attempt::api_key`); a service that sent no
//! key, or a key other than the `{llm_key}` faultline gave it, works against the fake but not
//! against a real provider, and its logs are no longer watched for the key it really uses.

use std::collections::BTreeMap;

use crate::evidence::ApiKeySent;
use crate::evidence::Evidence;

/// Request ids named per note.
const EXAMPLES: usize = 3;
/// Distinct attempt keys kept per key class to find those examples among (most name a client
/// request; a few, such as warm-ups', may not).
const KEYS_KEPT: usize = 64;

/// The notes `evidence` calls for, in a fixed order.
pub fn notes(evidence: &Evidence) -> Vec<String> {
    // Counting passes: per class, the attempts and the first few distinct keys (bounded, so
    // the notes cost no memory per attempt), then one pass over the records for their ids.
    let mut per_class: std::collections::HashMap<ApiKeySent, (usize, Vec<String>)> =
        std::collections::HashMap::new();
    let mut total = 0;
    for a in evidence.attempts.iter() {
        let Some(class) = a.api_key else { continue };
        total += 1;
        let (count, keys) = per_class.entry(class).or_default();
        *count += 1;
        if let Some(key) = a.key {
            if keys.len() < KEYS_KEPT && keys.last() != Some(&key) {
                keys.push(key);
            }
        }
    }
    let wanted: std::collections::HashSet<&str> = per_class
        .values()
        .flat_map(|(_, keys)| keys.iter().map(String::as_str))
        .collect();
    let request_of: BTreeMap<String, String> = evidence
        .records
        .iter()
        .filter(|r| wanted.contains(r.nonce.as_str()))
        .map(|r| (r.nonce, r.request_id))
        .collect();
    let of_class = |wanted: ApiKeySent| {
        let Some((count, keys)) = per_class.get(&wanted) else {
            return (0, String::new());
        };
        let mut examples: Vec<&str> = keys
            .iter()
            .filter_map(|key| request_of.get(key).map(String::as_str))
            .collect();
        examples.dedup();
        examples.truncate(EXAMPLES);
        let examples = match examples.is_empty() {
            true => String::new(),
            false => format!(" (e.g. requests {})", examples.join(", ")),
        };
        (*count, examples)
    };
    let mut notes = Vec::new();
    if let Some(crash) = &evidence.target_crash {
        let last = match crash.last_lines.is_empty() {
            true => "it wrote nothing".to_string(),
            false => format!("its last output: {}", crash.last_lines.join(" | ")),
        };
        notes.push(format!(
            "target crash: the target exited during the run ({}), so requests after that got \
             no answer; {last}",
            crash.status
        ));
    }
    let lost = &evidence.logs_lost;
    if lost.dropped + lost.cut + lost.not_utf8 > 0 {
        notes.push(format!(
            "target output: {} lines dropped by the bound on kept lines ({} of them written \
             during the load), {} lines cut at the line-length bound, {} lines not UTF-8 (kept \
             with U+FFFD)",
            lost.dropped, lost.dropped_in_load, lost.cut, lost.not_utf8
        ));
    }
    let (none, examples) = of_class(ApiKeySent::None);
    if none > 0 {
        notes.push(format!(
            "api key: the service called the LLM with no API key on {none} of {total} attempts{examples}: \
             no Authorization or x-api-key header. The fake LLM accepted them; a real provider \
             answers 401. Give the SDK its key (faultline.toml [target] env: OPENAI_API_KEY = \
             \"{{llm_key}}\", or ANTHROPIC_API_KEY)."
        ));
    }
    let (other, examples) = of_class(ApiKeySent::Other);
    if other > 0 {
        notes.push(format!(
            "api key: the service called the LLM with another API key than the one faultline \
             gave it ({{llm_key}}) on {other} of {total} attempts{examples}. The fake LLM \
             accepted it, as it accepts any key, but a real provider checks it: either the \
             service does not read its key from the environment, or faultline.toml gives it \
             another (map OPENAI_API_KEY = \"{{llm_key}}\" in [target] env). The secrets check \
             watches logs and answers only for the key faultline gave."
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testing::EvidenceBuilder;
    use crate::evidence::Attempt;
    use crate::evidence::Phase;

    fn attempt(nonce: &str, class: ApiKeySent) -> Attempt {
        serde_json::from_value(serde_json::json!({
            "at_ms": 1.0, "fake": "llm", "route": "/v1/chat/completions", "key": nonce,
            "fault": null, "status": 200, "duration_ms": 1.0, "input_tokens": null,
            "output_tokens": null, "api_key": class,
        }))
        .unwrap()
    }

    #[test]
    fn a_service_that_sends_its_given_key_gets_no_note() {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 2, Some(200), 10.0)
            .build();
        e.attempts = vec![attempt("n1", ApiKeySent::Given)].into();
        assert!(notes(&e).is_empty());
    }

    #[test]
    fn no_key_and_another_key_are_each_named_with_requests() {
        let mut e = EvidenceBuilder::new()
            .records(Phase::Baseline, 3, Some(200), 10.0)
            .build();
        e.attempts = vec![
            attempt("n1", ApiKeySent::None),
            attempt("n1", ApiKeySent::None),
            attempt("n2", ApiKeySent::Other),
            attempt("n3", ApiKeySent::Given),
        ]
        .into();
        let notes = notes(&e);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "api key: the service called the LLM with no API key on 2 of 4 attempts (e.g. requests req-1)"
            ),
            "{}",
            notes[0]
        );
        assert!(
            notes[1].contains("on 1 of 4 attempts (e.g. requests req-2)"),
            "{}",
            notes[1]
        );
    }

    #[test]
    fn every_rendering_shows_the_notes_and_they_do_not_fail_the_gate() {
        let mut report = crate::report::json::tests::report(&[]);
        assert!(report.notes.is_empty());
        report.notes = vec!["api key: the service called the LLM with no API key".into()];
        let text = |rendered: &str| rendered.contains("the service called the LLM with no API key");

        assert!(report.passed);
        assert!(text(&crate::report::console_table(&report)));
        assert!(crate::report::summary_markdown(&report).contains("## Notes\n\n- api key:"));
        let html = crate::report::report_html(&report, None);
        assert!(html.contains("<section id=\"notes\">") && text(&html));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["notes"][0], report.notes[0]);
    }
}
