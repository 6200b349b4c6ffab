//! The weather tool: spotting weather questions, picking the city, and one bounded call to
//! `GET {WEATHER_API_URL}/weather?city=X`. It is a read, but it is not retried: the answer can
//! go out without it (degraded), which beats making the user wait for a second try.

use std::time::Duration;

use serde_json::Value;

/// Does the message ask about the weather?
pub fn is_weather_question(message: &str) -> bool {
    let lower = message.to_lowercase();
    ["weather", "temperature", "forecast"]
        .iter()
        .any(|w| lower.contains(w))
}

/// The word after the first " in ", capitalised; "London" when there is none.
pub fn extract_city(message: &str) -> String {
    let lower = message.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find(" in ") {
        rest = &rest[at + 4..];
        let word: String = rest
            .split_whitespace()
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_alphabetic() || *c == '-')
            .collect();
        if !word.is_empty() {
            let mut chars = word.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            return first.unwrap_or_default() + chars.as_str();
        }
    }
    "London".into()
}

/// Why the tool gave no data. The kind goes into the warning line.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("not configured")]
    NotConfigured,
    #[error("timed out")]
    Timeout,
    #[error("status {0}")]
    Status(u16),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("malformed answer")]
    Malformed,
    /// The tool answered that it failed (an MCP JSON-RPC error or an `isError` result).
    #[error("tool error: {0}")]
    Rejected(String),
}

impl ToolError {
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::NotConfigured => "not_configured",
            ToolError::Timeout => "timeout",
            ToolError::Status(_) => "status",
            ToolError::Unreachable(_) => "unreachable",
            ToolError::Malformed => "malformed",
            ToolError::Rejected(_) => "rejected",
        }
    }
}

pub struct WeatherTool {
    http: reqwest::Client,
    base_url: Option<String>,
    timeout: Duration,
}

impl WeatherTool {
    pub fn new(base_url: Option<String>, timeout: Duration) -> Self {
        WeatherTool {
            http: reqwest::Client::new(),
            base_url,
            timeout,
        }
    }

    /// The weather JSON for `city`, within the tool timeout.
    pub async fn fetch(&self, city: &str, request_id: Option<&str>) -> Result<Value, ToolError> {
        let base = self.base_url.as_deref().ok_or(ToolError::NotConfigured)?;
        let mut url = reqwest::Url::parse(&format!("{base}/weather"))
            .map_err(|e| ToolError::Unreachable(e.to_string()))?;
        url.query_pairs_mut().append_pair("city", city);
        let mut request = self.http.get(url);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ToolError::Timeout)?
            .map_err(|e| ToolError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(ToolError::Status(status.as_u16()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(ToolError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weather_words_are_spotted_in_any_case() {
        assert!(is_weather_question("What's the WEATHER like?"));
        assert!(is_weather_question("temperature in Oslo"));
        assert!(is_weather_question("Forecast for tomorrow"));
        assert!(!is_weather_question("How do I reset my password?"));
    }

    #[test]
    fn city_is_the_capitalised_word_after_in() {
        assert_eq!(extract_city("What's the weather in paris?"), "Paris");
        assert_eq!(extract_city("weather in Oslo today [n:ab12]"), "Oslo");
        assert_eq!(
            extract_city("forecast in  rio-branco, please"),
            "Rio-branco"
        );
    }

    #[test]
    fn city_defaults_to_london() {
        assert_eq!(extract_city("what's the weather?"), "London");
        assert_eq!(extract_city("weather in ?"), "London");
        assert_eq!(extract_city("weather in ? in Lima"), "Lima");
    }
}
