//! `[api]` and the request fields of `[[load.flows]]`: turning what a user wrote about their
//! target's API into [`Api`] and [`RequestOverride`]s, with file:line:column errors.

use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::raw::{RawApi, RawFlow, RawRequestShape, Text};
use super::{url_path, ScenarioError, Source};
use crate::evidence::FlowKind;
use crate::scenario::api::{carries_message, Api, RequestOverride, RequestShape};

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
const KINDS: &[&str] = &["chat", "stream", "agent", "write"];

/// `[api]`, over the reference target's defaults.
pub(super) fn build_api(raw: Option<RawApi>, src: &Source) -> Result<Api, ScenarioError> {
    let mut api = Api::default();
    let Some(raw) = raw else {
        return Ok(api);
    };
    api.headers = headers(&raw.headers, "[api]", src)?;
    for (slot, given, table) in [
        (&mut api.chat, raw.chat, "[api.chat]"),
        (&mut api.stream, raw.stream, "[api.stream]"),
        (&mut api.agent, raw.agent, "[api.agent]"),
        (&mut api.write, raw.write, "[api.write]"),
    ] {
        if let Some(given) = given {
            *slot = request_shape(slot, given, table, src)?;
        }
    }
    let response = &mut api.response;
    if let Some(header) = raw.request_id_header {
        response.request_id_header = non_empty(header);
    }
    for (slot, given, field) in [
        (
            &mut response.request_id_pointer,
            raw.request_id_pointer,
            "request_id_pointer",
        ),
        (
            &mut response.answer_pointer,
            raw.answer_pointer,
            "answer_pointer",
        ),
        (
            &mut response.degraded_pointer,
            raw.degraded_pointer,
            "degraded_pointer",
        ),
        (
            &mut response.cache_hit_pointer,
            raw.cache_hit_pointer,
            "cache_hit_pointer",
        ),
        (
            &mut response.error_pointer,
            raw.error_pointer,
            "error_pointer",
        ),
    ] {
        if let Some(given) = given {
            *slot = pointer(given, field, src)?;
        }
    }
    Ok(api)
}

/// A flow's kind and its changes to that kind's request.
pub(super) fn flow_request(
    flow: &RawFlow,
    name: &str,
    src: &Source,
) -> Result<(FlowKind, RequestOverride), ScenarioError> {
    let table = format!("of flow `{name}`");
    let kind = match &flow.kind {
        None => FlowKind::Chat,
        Some(kind) => match kind.get_ref().as_str() {
            "chat" => FlowKind::Chat,
            "stream" => FlowKind::Stream,
            "agent" => FlowKind::Agent,
            "write" => FlowKind::Write,
            other => {
                return Err(src.error(
                    kind,
                    format!(
                        "`kind` {table} is \"{other}\"; expected one of {}",
                        KINDS.join(", ")
                    ),
                ))
            }
        },
    };
    let changes = RequestOverride {
        method: flow
            .method
            .as_ref()
            .map(|m| method(m, &table, src))
            .transpose()?,
        path: flow
            .path
            .as_ref()
            .map(|p| url_path(p, &format!("`path` {table}"), src))
            .transpose()?,
        headers: headers(&flow.headers, &table, src)?,
        body: flow
            .body
            .as_ref()
            .map(|b| body(b, &table, src))
            .transpose()?,
    };
    Ok((kind, changes))
}

fn request_shape(
    base: &RequestShape,
    raw: RawRequestShape,
    table: &str,
    src: &Source,
) -> Result<RequestShape, ScenarioError> {
    Ok(RequestShape {
        method: match &raw.method {
            Some(m) => method(m, table, src)?,
            None => base.method.clone(),
        },
        path: match &raw.path {
            Some(p) => url_path(p, &format!("`path` in {table}"), src)?,
            None => base.path.clone(),
        },
        headers: headers(&raw.headers, table, src)?,
        body: match &raw.body {
            Some(b) => body(b, table, src)?,
            None => base.body.clone(),
        },
    })
}

fn method(text: &Text, table: &str, src: &Source) -> Result<String, ScenarioError> {
    let upper = text.get_ref().trim().to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(src.error(
            text,
            format!(
                "`method` {table} is \"{}\"; expected one of {}",
                text.get_ref(),
                METHODS.join(", ")
            ),
        ))
    }
}

fn headers(
    raw: &BTreeMap<Text, Text>,
    table: &str,
    src: &Source,
) -> Result<BTreeMap<String, String>, ScenarioError> {
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let valid_name = !name.get_ref().is_empty()
            && name
                .get_ref()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name {
            return Err(src.error(
                name,
                format!(
                    "header name `{}` in `headers` {table} is not valid; use letters, digits \
                     and `-`, e.g. Authorization",
                    name.get_ref()
                ),
            ));
        }
        if value.get_ref().contains(['\r', '\n']) {
            return Err(src.error(
                value,
                format!(
                    "header `{}` {table} contains a line break; remove it",
                    name.get_ref()
                ),
            ));
        }
        out.insert(name.get_ref().to_ascii_lowercase(), value.get_ref().clone());
    }
    Ok(out)
}

fn body(
    raw: &Spanned<toml::Value>,
    table: &str,
    src: &Source,
) -> Result<serde_json::Value, ScenarioError> {
    let value = serde_json::to_value(raw.get_ref())
        .map_err(|e| src.error(raw, format!("`body` {table} cannot be sent as JSON: {e}")))?;
    if !carries_message(&value) {
        return Err(src.error(
            raw,
            format!(
                "`body` {table} has no \"{{message}}\"; put it where the question goes, e.g. \
                 body = {{ message = \"{{message}}\" }} (faultline's correlation nonce rides in it)"
            ),
        ));
    }
    Ok(value)
}

fn pointer(text: Text, field: &str, src: &Source) -> Result<Option<String>, ScenarioError> {
    let given = text.get_ref();
    if given.is_empty() {
        return Ok(None);
    }
    if !given.starts_with('/') {
        return Err(src.error(
            &text,
            format!(
                "`{field}` in [api] is \"{given}\"; a JSON pointer starts with \"/\", e.g. \
                 \"/{given}\" (or \"\" when the answer has none)"
            ),
        ));
    }
    Ok(Some(text.into_inner()))
}

fn non_empty(text: Text) -> Option<String> {
    let text = text.into_inner();
    (!text.is_empty()).then(|| text.to_ascii_lowercase())
}
