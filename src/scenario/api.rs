//! How faultline talks to a target: the request each kind of flow sends (method, path,
//! headers, a JSON body template carrying the question), and where in an answer the request
//! id, the degraded marker, the cache marker and the error message are.
//!
//! The defaults fit the reference target; a user's service describes its own API in
//! `[api]` (in a scenario or in its `faultline.toml`), so checks can read its answers without
//! the service changing to suit faultline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evidence::FlowKind;

/// The target's API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Api {
    /// Headers sent with every request (auth, tenant); values may use `{request_id}`.
    pub headers: BTreeMap<String, String>,
    /// Request shapes per flow kind.
    pub chat: RequestShape,
    pub stream: RequestShape,
    pub agent: RequestShape,
    pub write: RequestShape,
    pub response: ResponseShape,
}

/// One request: method, path, extra headers, and a JSON body template in which the strings
/// `{message}` (the question, with faultline's correlation nonce) and `{request_id}` are filled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestShape {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: serde_json::Value,
}

/// A flow's changes to its kind's request shape; `None` keeps the kind's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestOverride {
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
}

/// Where things are in the target's answers. Pointers are JSON pointers (`/requestId`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseShape {
    /// Response header carrying the request id, read first.
    pub request_id_header: Option<String>,
    /// JSON pointer to the request id in the body, read when the header is absent.
    pub request_id_pointer: Option<String>,
    pub answer_pointer: Option<String>,
    /// A boolean, or a string that is non-empty when degraded (a banner).
    pub degraded_pointer: Option<String>,
    pub cache_hit_pointer: Option<String>,
    pub error_pointer: Option<String>,
}

impl Default for Api {
    /// The reference target's API.
    fn default() -> Self {
        let shape = |path: &str, body: serde_json::Value| RequestShape {
            method: "POST".into(),
            path: path.into(),
            headers: BTreeMap::new(),
            body,
        };
        Api {
            headers: BTreeMap::new(),
            chat: shape("/api/chat", serde_json::json!({ "message": "{message}" })),
            stream: shape(
                "/api/chat",
                serde_json::json!({ "message": "{message}", "stream": true }),
            ),
            agent: shape("/api/agent", serde_json::json!({ "message": "{message}" })),
            write: shape(
                "/api/tickets",
                serde_json::json!({ "subject": "{message}", "body": "{message}" }),
            ),
            response: ResponseShape::default(),
        }
    }
}

impl Default for ResponseShape {
    fn default() -> Self {
        ResponseShape {
            request_id_header: Some("x-request-id".into()),
            request_id_pointer: Some("/requestId".into()),
            answer_pointer: Some("/answer".into()),
            degraded_pointer: Some("/degraded".into()),
            cache_hit_pointer: Some("/cacheHit".into()),
            error_pointer: Some("/error".into()),
        }
    }
}

impl Api {
    /// The request a flow of `kind` sends, with the flow's overrides applied.
    pub fn request_for(&self, kind: FlowKind, changes: &RequestOverride) -> RequestShape {
        let base = match kind {
            FlowKind::Chat => &self.chat,
            FlowKind::Stream => &self.stream,
            FlowKind::Agent => &self.agent,
            FlowKind::Write => &self.write,
        };
        let mut headers = self.headers.clone();
        headers.extend(base.headers.clone());
        headers.extend(changes.headers.clone());
        RequestShape {
            method: changes
                .method
                .clone()
                .unwrap_or_else(|| base.method.clone()),
            path: changes.path.clone().unwrap_or_else(|| base.path.clone()),
            headers,
            body: changes.body.clone().unwrap_or_else(|| base.body.clone()),
        }
    }
}

/// Fills `{message}` and `{request_id}` in every string of a body template. Values stay JSON
/// strings, so quotes or newlines in a question cannot break the body.
pub fn fill_template(
    template: &serde_json::Value,
    message: &str,
    request_id: &str,
) -> serde_json::Value {
    use serde_json::Value;
    match template {
        Value::String(text) => Value::String(fill_text(text, message, request_id)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| fill_template(item, message, request_id))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), fill_template(value, message, request_id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Fills `{message}` and `{request_id}` in one string (a header value, a body string).
pub fn fill_text(text: &str, message: &str, request_id: &str) -> String {
    text.replace("{message}", message)
        .replace("{request_id}", request_id)
}

/// Does a body template carry `{message}` somewhere? Without it the question (and the
/// correlation nonce in it) would never reach the target.
pub fn carries_message(template: &serde_json::Value) -> bool {
    use serde_json::Value;
    match template {
        Value::String(text) => text.contains("{message}"),
        Value::Array(items) => items.iter().any(carries_message),
        Value::Object(fields) => fields.values().any(carries_message),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_filled_inside_json_strings_only() {
        let template = serde_json::json!({ "q": "{message}", "meta": ["{request_id}", 3] });
        let body = fill_template(&template, "say \"hi\"\n", "r-1");
        assert_eq!(
            body,
            serde_json::json!({ "q": "say \"hi\"\n", "meta": ["r-1", 3] })
        );
    }

    #[test]
    fn a_flow_override_wins_over_its_kind_and_headers_merge() {
        let mut api = Api::default();
        api.headers
            .insert("authorization".into(), "Bearer t".into());
        let changes = RequestOverride {
            path: Some("/v2/ask".into()),
            ..Default::default()
        };
        let request = api.request_for(FlowKind::Chat, &changes);
        assert_eq!(request.path, "/v2/ask");
        assert_eq!(request.method, "POST");
        assert_eq!(request.headers["authorization"], "Bearer t");
        assert!(carries_message(&request.body));
    }
}
