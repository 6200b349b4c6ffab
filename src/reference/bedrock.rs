//! Amazon Bedrock Runtime's Converse for the reference target (`LLM_API=bedrock`):
//! `POST {AWS_ENDPOINT_URL_BEDROCK_RUNTIME}/model/{modelId}/converse` with a Bedrock API key as
//! bearer token (`AWS_BEARER_TOKEN_BEDROCK`, as the AWS SDKs send it).
//!
//! Retried as the AWS SDKs' standard retry mode does: at most 3 attempts (the target's
//! `LLM_MAX_RETRIES`, 2 by default), exponential backoff with full jitter, for throttling
//! (`ThrottlingException`, 429) and transient 5xx; each attempt says which it is in
//! `amz-sdk-request: attempt=N; max=M` under one `amz-sdk-invocation-id`, as the SDKs do. The
//! loop is the one every LLM call shares (`llm_client`), so the breaker, the retry budget and
//! the deadline hold here too. Under `no-throttle-retry` a throttle is final.

use serde_json::{json, Value};

use super::llm_client::{CallKind, CallStats, LlmClient, LlmError, Traffic};
use super::llm_error::truncate;

/// A Bedrock model id in a URL path: percent-encoded, as the SDKs send `:` and `/`.
fn model_path(model: &str) -> String {
    url::form_urlencoded::byte_serialize(model.as_bytes()).collect()
}

impl LlmClient {
    /// One Converse answer: the system prompt, then the user's message verbatim.
    pub async fn converse(
        &self,
        system: &str,
        user_message: &str,
        request_id: Option<&str>,
        stats: &mut CallStats,
    ) -> Result<String, LlmError> {
        let Some((endpoint, token)) = &self.bedrock else {
            return Err(LlmError::Rejected {
                status: 0,
                raw: "LLM_API=bedrock without AWS_ENDPOINT_URL_BEDROCK_RUNTIME".into(),
            });
        };
        let url = format!("{endpoint}/model/{}/converse", model_path(&self.model));
        let body = json!({
            "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": user_message}]}],
            "inferenceConfig": {"maxTokens": 512},
        });
        let invocation = uuid::Uuid::new_v4().to_string();
        let max = self.max_attempts();
        let mut attempt_number = 0u32;
        let answer = self
            .with_retries(
                CallKind::Converse,
                request_id,
                Traffic::User,
                stats,
                |timeout| {
                    attempt_number += 1;
                    let mut request = self
                        .http
                        .post(&url)
                        .bearer_auth(token)
                        .header("amz-sdk-invocation-id", &invocation)
                        .header(
                            "amz-sdk-request",
                            format!("attempt={attempt_number}; max={max}"),
                        )
                        .json(&body);
                    if let Some(id) = request_id {
                        request = request.header("x-request-id", id);
                    }
                    self.exchange(request, timeout)
                },
            )
            .await?;
        let usage = &answer["usage"];
        self.count_tokens(
            usage["inputTokens"].as_u64().unwrap_or(0),
            usage["outputTokens"].as_u64().unwrap_or(0),
            stats,
        );
        answer_text(&answer).ok_or_else(|| {
            self.metrics.count_llm_error();
            LlmError::Malformed {
                raw: truncate(&answer.to_string()),
            }
        })
    }
}

/// The text of a Converse answer (`output.message.content[].text`).
fn answer_text(answer: &Value) -> Option<String> {
    let text: String = answer["output"]["message"]["content"]
        .as_array()?
        .iter()
        .filter_map(|block| block["text"].as_str())
        .collect();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_id_is_percent_encoded_in_the_path() {
        assert_eq!(
            model_path("anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1%3A0"
        );
    }

    #[test]
    fn the_answer_is_the_text_of_the_output_message() {
        let answer = json!({"output": {"message": {"role": "assistant",
            "content": [{"text": "Hello"}, {"text": " there"}]}}});
        assert_eq!(answer_text(&answer).as_deref(), Some("Hello there"));
        assert_eq!(answer_text(&json!({"output": {}})), None);
    }
}
