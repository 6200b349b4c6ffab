//! Azure OpenAI's paths onto the OpenAI routes: `/openai/deployments/{deployment}/…?api-version=…`
//! (the deployment names the model) and the newer `/openai/v1/…`, behind Azure's `api-key`
//! header (or a bearer token). Answers carry Azure's headers (`apim-request-id`,
//! `x-ms-region`, `x-ms-deployment-name`), and injected status faults and rate limits answer in
//! Azure's gateway shape, `{"error":{"code":"429","message":…}}`, with `retry-after` (and
//! `retry-after-ms`, as for OpenAI's routes). A request the model itself refuses keeps OpenAI's
//! shape, as Azure passes it through.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::fakes::http::Reply;

/// The region the fake says it serves from.
const REGION: &str = "faultline-local";

/// Whether `path` is an Azure OpenAI path.
pub(super) fn is_azure(path: &str) -> bool {
    path.starts_with("/openai/")
}

/// The OpenAI route an Azure path stands for (`/openai/deployments/d/chat/completions` →
/// `/v1/chat/completions`), with the deployment if the path names one; other paths as they are.
pub(super) fn openai_path(path: &str) -> (Cow<'_, str>, Option<&str>) {
    if let Some(rest) = path.strip_prefix("/openai/deployments/") {
        if let Some((deployment, route)) = rest.split_once('/') {
            return (Cow::Owned(format!("/v1/{route}")), Some(deployment));
        }
    }
    match path.strip_prefix("/openai/v1/") {
        Some(route) => (Cow::Owned(format!("/v1/{route}")), None),
        None => (Cow::Borrowed(path), None),
    }
}

/// An error in the shape Azure's gateway answers with.
pub(super) fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "error": { "code": status.as_u16().to_string(), "message": message } }),
    )
}

/// Azure's answer to an injected status fault: its wording, and both retry headers.
pub(super) fn status_error(status: StatusCode, retry_after: Option<Duration>) -> Reply {
    let wait = retry_after.map_or(1, |after| after.as_millis().div_ceil(1000));
    let message = match status.as_u16() {
        429 => format!(
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version \
             2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. \
             Please retry after {wait} seconds. Please go here: https://aka.ms/oai/quotaincrease \
             if you would like to further increase the default rate limit."
        ),
        401 => "Access denied due to invalid subscription key or wrong API endpoint. Make sure \
                to provide a valid key for an active subscription and use a correct regional API \
                endpoint for your resource."
            .to_owned(),
        404 => "Resource not found".to_owned(),
        408 | 504 => "The operation was timeout.".to_owned(),
        503 => "The service is temporarily unable to process your request. Please try again \
                later."
            .to_owned(),
        code if status.is_server_error() => {
            format!("The server had an error while processing your request (HTTP {code}).")
        }
        code => format!("The request was rejected (HTTP {code})."),
    };
    // `retry-after-ms` is added by the serving loop, as the fault's `retry_after_ms` says.
    error(status, &message).with_retry_after(retry_after)
}

/// Adds Azure's headers to an answer.
pub(super) fn stamp(reply: Reply, request_id: &str, deployment: Option<&str>) -> Reply {
    let reply = reply
        .with_header("apim-request-id", request_id)
        .with_header("x-ms-region", REGION);
    match deployment {
        Some(name) => reply.with_header("x-ms-deployment-name", name),
        None => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_paths_stand_for_the_openai_routes() {
        assert_eq!(
            openai_path("/openai/deployments/gpt4o-prod/chat/completions"),
            (Cow::Borrowed("/v1/chat/completions"), Some("gpt4o-prod"))
        );
        assert_eq!(
            openai_path("/openai/v1/responses"),
            (Cow::Borrowed("/v1/responses"), None)
        );
        assert_eq!(
            openai_path("/v1/embeddings"),
            (Cow::Borrowed("/v1/embeddings"), None)
        );
    }

    #[test]
    fn a_429_answers_in_azures_shape_with_when_to_retry() {
        let reply = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_millis(2500)),
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "429");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry after 3 seconds"));
        assert_eq!(reply.header("retry-after").unwrap(), "3");
    }
}
