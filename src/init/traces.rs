//! The service's traces, from the spans it exported to the OTLP collector fake for one probe
//! request: which span attribute carries the request id faultline sent, and which attribute
//! marks a span as one LLM attempt (checked against the attempts the fake LLM saw).

use super::Found;
use crate::evidence::SpanRecord;

/// Attributes that mark an LLM call's span, most usual first: the OpenTelemetry GenAI
/// semantic conventions, then OpenLLMetry's and OpenInference's.
const LLM_ATTRIBUTES: &[&str] = &[
    "gen_ai.operation.name",
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "llm.request.type",
    "openinference.span.kind",
    "llm.model_name",
];

/// The `[traces]` attributes found.
#[derive(Clone, Debug)]
pub struct Attributes {
    pub request_id_attribute: Found<String>,
    pub llm_span_attribute: Result<Found<String>, String>,
}

/// Finds the attributes in `spans` for the request sent with `request_id`, whose LLM calls
/// the fake saw as `llm_attempts` attempts. `Err` says what was seen instead.
pub fn find(
    spans: &[SpanRecord],
    request_id: &str,
    llm_attempts: usize,
) -> Result<Attributes, String> {
    if spans.is_empty() {
        return Err("no span reached the OTLP collector fake at {otlp}".into());
    }
    // The root-most span with the id: a server span the framework made, or the handler's.
    let carrying = spans
        .iter()
        .filter_map(|span| {
            let key = span
                .attributes
                .keys()
                .find(|key| span.attribute_text(key).as_deref() == Some(request_id))?;
            Some((span, key.clone()))
        })
        .min_by_key(|(span, _)| span.parent_id.is_some());
    let Some((span, key)) = carrying else {
        return Err(format!(
            "{} span(s) arrived, but none has an attribute holding the x-request-id faultline \
             sent ({request_id}); set one on the request's span (e.g. request.id)",
            spans.len()
        ));
    };
    let trace: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.trace_id == span.trace_id)
        .collect();
    let request_id_attribute = Found::new(
        key.clone(),
        format!(
            "span `{}` of the probe request's trace held the x-request-id faultline sent in {key}",
            span.name
        ),
    );
    let llm_span_attribute = LLM_ATTRIBUTES
        .iter()
        .find_map(|attribute| {
            let count = trace
                .iter()
                .filter(|s| s.attributes.contains_key(*attribute))
                .count();
            (count > 0).then(|| {
                let how = format!(
                    "{count} span(s) of the trace have {attribute}, and the fake LLM saw \
                     {llm_attempts} attempt(s) for the request"
                );
                if count == llm_attempts {
                    Found::new(attribute.to_string(), how)
                } else {
                    Found::guess(attribute.to_string(), format!("{how}: a guess, check it"))
                }
            })
        })
        .ok_or_else(|| {
            format!(
                "no span of the request's trace ({} span(s)) has an LLM attribute ({}); give \
                 each LLM attempt a span with one (traces.per_request counts them)",
                trace.len(),
                LLM_ATTRIBUTES.join(", ")
            )
        });
    Ok(Attributes {
        request_id_attribute,
        llm_span_attribute,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::otlp::SpanStatus;
    use serde_json::json;

    fn span(
        trace: &str,
        id: &str,
        parent: Option<&str>,
        attributes: serde_json::Value,
    ) -> SpanRecord {
        SpanRecord {
            at_ms: 0.0,
            trace_id: trace.into(),
            span_id: id.into(),
            parent_id: parent.map(String::from),
            name: format!("span-{id}"),
            service: None,
            start_unix_nano: 0,
            end_unix_nano: 1,
            status: SpanStatus::default(),
            attributes: serde_json::from_value(attributes).unwrap(),
        }
    }

    #[test]
    fn the_root_span_with_the_id_and_the_llm_spans_of_its_trace_are_found() {
        let spans = [
            span("t0", "a", None, json!({"app.request_id": "flreq-0"})),
            span(
                "t1",
                "b",
                None,
                json!({"http.route": "/v2/ask", "app.request_id": "flreq-1"}),
            ),
            span(
                "t1",
                "c",
                Some("b"),
                json!({"gen_ai.system": "openai", "app.request_id": "flreq-1"}),
            ),
        ];
        let found = find(&spans, "flreq-1", 1).unwrap();
        assert_eq!(found.request_id_attribute.value, "app.request_id");
        assert!(found.request_id_attribute.how.contains("span-b"));
        let llm = found.llm_span_attribute.unwrap();
        assert_eq!(llm.value, "gen_ai.system");
        assert!(!llm.guess);
        // Two attempts seen, one span: still proposed, as a guess.
        assert!(
            find(&spans, "flreq-1", 2)
                .unwrap()
                .llm_span_attribute
                .unwrap()
                .guess
        );
    }

    #[test]
    fn missing_pieces_are_said() {
        assert!(find(&[], "x", 1).unwrap_err().contains("no span"));
        let spans = [span("t", "a", None, json!({"other": "y"}))];
        assert!(find(&spans, "x", 1)
            .unwrap_err()
            .contains("none has an attribute"));
        let spans = [span("t", "a", None, json!({"request.id": "x"}))];
        let found = find(&spans, "x", 1).unwrap();
        assert!(found
            .llm_span_attribute
            .unwrap_err()
            .contains("no span of the request's trace"));
    }
}
