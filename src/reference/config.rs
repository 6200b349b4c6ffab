//! The reference target's configuration, read only from environment variables (as a twelve-factor
//! service is), with one error per bad variable that names it.
//!
//! [`Config::from_env_map`] reads a plain map so tests never touch the process environment,
//! which is global and shared by every test thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::log::{LogSink, StdoutSink};

/// Every variable the target reads, for [`Config::from_env`].
pub const ENV_VARS: [&str; 25] = [
    "PORT",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "LLM_MODEL",
    "WEATHER_API_URL",
    "TICKETS_API_URL",
    "REDIS_URL",
    "REDIS_TIMEOUT_MS",
    "CACHE_TTL_SECS",
    "LLM_TIMEOUT_MS",
    "TOOL_TIMEOUT_MS",
    "LLM_MAX_RETRIES",
    "RETRY_BUDGET_RATIO",
    "RETRY_BUDGET_MIN",
    "CIRCUIT_FAILURE_THRESHOLD",
    "CIRCUIT_COOLDOWN_MS",
    "AGENT_MAX_STEPS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_SERVICE_NAME",
    "FAULTLINE_CORPUS",
    "LLM_API",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_BEARER_TOKEN_BEDROCK",
    "MCP_SERVER_URL",
];

/// Which provider API answers the chat and agent calls (`LLM_API`); embeddings always use
/// OpenAI's `/v1/embeddings`, and streamed answers chat completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmApi {
    /// OpenAI chat completions (`chat`, the default).
    ChatCompletions,
    /// OpenAI's Responses API (`responses`): follow-up turns continue from
    /// `previous_response_id`.
    Responses,
    /// Amazon Bedrock Runtime's Converse (`bedrock`), with an API key as bearer token.
    Bedrock,
}

/// A bad or missing environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {name} is required: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {name} is invalid ({value:?}): {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// How the reference target is wired to its dependencies.
#[derive(Clone)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one (tests).
    pub port: u16,
    /// OpenAI-compatible base URL without a trailing slash, e.g. `http://127.0.0.1:4321/v1`.
    pub openai_base_url: String,
    pub openai_api_key: String,
    pub model: String,
    /// Base URL of the weather tool; `None` means weather questions are answered degraded.
    pub weather_api_url: Option<String>,
    /// Base URL of the tickets tool (`POST {url}/tickets`); `None`: ticket creation answers 503.
    pub tickets_api_url: Option<String>,
    /// The answer cache; `None` runs without one.
    pub redis_url: Option<String>,
    /// Bound on each cache operation (connect included): a slow Redis must not slow answers.
    pub redis_timeout: Duration,
    pub cache_ttl: Duration,
    /// Per-attempt timeout of each LLM call; the whole call (retries included) gets twice this.
    pub llm_timeout: Duration,
    pub tool_timeout: Duration,
    pub llm_max_retries: u32,
    /// Retries may be at most this share of LLM calls over the budget window (plus the floor).
    pub retry_budget_ratio: f64,
    /// Retries always allowed per budget window, so a quiet service can still retry at all.
    pub retry_budget_min: u32,
    /// Consecutive failed LLM attempts that open the circuit.
    pub circuit_failure_threshold: u32,
    /// How long an open circuit fails fast between probes (see `circuit` for the short default).
    pub circuit_cooldown: Duration,
    /// Most LLM calls one `/api/agent` request may make.
    pub agent_max_steps: u32,
    /// OTLP/HTTP base URL (`{url}/v1/traces`); `None` exports no spans.
    pub otlp_endpoint: Option<String>,
    /// How often batched spans are sent.
    pub otlp_interval: Duration,
    pub service_name: String,
    /// A corpus file to use instead of the embedded `mocks/corpus.json`.
    pub corpus_path: Option<PathBuf>,
    /// Which API answers chat and agent calls.
    pub llm_api: LlmApi,
    /// Bedrock Runtime's endpoint (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, the AWS SDKs' own
    /// variable), required with `LLM_API=bedrock`.
    pub bedrock_endpoint: Option<String>,
    /// A Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`, as the AWS SDKs read it), required with
    /// `LLM_API=bedrock`.
    pub bedrock_token: Option<String>,
    /// The MCP server's Streamable HTTP endpoint; when set, the agent's tools are its tools.
    pub mcp_server_url: Option<String>,
    /// Where log lines go: stdout in the binary, a channel in tests.
    pub log_sink: Arc<dyn LogSink>,
}

// By hand, so the API key can never reach a log through `{:?}`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("openai_base_url", &self.openai_base_url)
            .field("openai_api_key", &"<redacted>")
            .field("model", &self.model)
            .field("weather_api_url", &self.weather_api_url)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("llm_timeout", &self.llm_timeout)
            .field("tool_timeout", &self.tool_timeout)
            .field("llm_max_retries", &self.llm_max_retries)
            .field("tickets_api_url", &self.tickets_api_url)
            .field("redis_timeout", &self.redis_timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("retry_budget_ratio", &self.retry_budget_ratio)
            .field("retry_budget_min", &self.retry_budget_min)
            .field("circuit_failure_threshold", &self.circuit_failure_threshold)
            .field("circuit_cooldown", &self.circuit_cooldown)
            .field("agent_max_steps", &self.agent_max_steps)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("corpus_path", &self.corpus_path)
            .field("llm_api", &self.llm_api)
            .field("bedrock_endpoint", &self.bedrock_endpoint)
            .field("mcp_server_url", &self.mcp_server_url)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut map = HashMap::new();
        for name in ENV_VARS {
            match std::env::var(name) {
                Ok(value) => {
                    map.insert(name.to_string(), value);
                }
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::Invalid {
                        name,
                        value: String::new(),
                        reason: "not valid UTF-8".into(),
                    })
                }
            }
        }
        Config::from_env_map(&map)
    }

    /// Reads variables from `env`. Empty values count as unset, as compose files often leave them.
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            env.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let port = match get("PORT") {
            None => {
                return Err(ConfigError::Missing {
                    name: "PORT",
                    hint: "the port to listen on at 127.0.0.1, e.g. PORT=8080",
                })
            }
            Some(v) => v.parse::<u16>().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                value: v.clone(),
                reason: "expected a port number 0-65535".into(),
            })?,
        };
        let openai_base_url = match get("OPENAI_BASE_URL") {
            None => {
                return Err(ConfigError::Missing {
                    name: "OPENAI_BASE_URL",
                    hint: "the OpenAI-compatible API base, e.g. http://127.0.0.1:4321/v1",
                })
            }
            Some(v) => http_url("OPENAI_BASE_URL", v)?,
        };
        let openai_api_key = get("OPENAI_API_KEY").ok_or(ConfigError::Missing {
            name: "OPENAI_API_KEY",
            hint: "the bearer key for the LLM provider",
        })?;
        let weather_api_url = get("WEATHER_API_URL")
            .map(|v| http_url("WEATHER_API_URL", v))
            .transpose()?;
        let llm_timeout = millis("LLM_TIMEOUT_MS", get("LLM_TIMEOUT_MS"), 5000)?;
        let tool_timeout = millis("TOOL_TIMEOUT_MS", get("TOOL_TIMEOUT_MS"), 1500)?;
        let llm_max_retries =
            match get("LLM_MAX_RETRIES") {
                None => 2,
                Some(v) => v.parse::<u32>().ok().filter(|n| *n <= 10).ok_or_else(|| {
                    ConfigError::Invalid {
                        name: "LLM_MAX_RETRIES",
                        value: v.clone(),
                        reason: "expected a whole number 0-10".into(),
                    }
                })?,
            };

        let tickets_api_url = get("TICKETS_API_URL")
            .map(|v| http_url("TICKETS_API_URL", v))
            .transpose()?;
        let otlp_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|v| http_url("OTEL_EXPORTER_OTLP_ENDPOINT", v))
            .transpose()?;
        let retry_budget_ratio = match get("RETRY_BUDGET_RATIO") {
            None => 0.2,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=10.0).contains(r))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "RETRY_BUDGET_RATIO",
                    value: v.clone(),
                    reason: "expected a number 0-10, e.g. 0.2 for retries up to 20% of calls"
                        .into(),
                })?,
        };

        let llm_api = match get("LLM_API").as_deref() {
            None | Some("chat") => LlmApi::ChatCompletions,
            Some("responses") => LlmApi::Responses,
            Some("bedrock") => LlmApi::Bedrock,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "LLM_API",
                    value: other.to_string(),
                    reason: "expected chat, responses or bedrock".into(),
                })
            }
        };
        let bedrock_endpoint = get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
            .map(|v| http_url("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", v))
            .transpose()?;
        let bedrock_token = get("AWS_BEARER_TOKEN_BEDROCK");
        if llm_api == LlmApi::Bedrock {
            if bedrock_endpoint.is_none() {
                return Err(ConfigError::Missing {
                    name: "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                    hint: "LLM_API=bedrock needs the Bedrock Runtime endpoint, e.g. \
                           https://bedrock-runtime.us-east-1.amazonaws.com",
                });
            }
            if bedrock_token.is_none() {
                return Err(ConfigError::Missing {
                    name: "AWS_BEARER_TOKEN_BEDROCK",
                    hint: "LLM_API=bedrock needs a Bedrock API key",
                });
            }
        }
        let mcp_server_url = get("MCP_SERVER_URL")
            .map(|v| http_url("MCP_SERVER_URL", v))
            .transpose()?;

        Ok(Config {
            port,
            llm_api,
            bedrock_endpoint,
            bedrock_token,
            mcp_server_url,
            tickets_api_url,
            redis_timeout: millis("REDIS_TIMEOUT_MS", get("REDIS_TIMEOUT_MS"), 200)?,
            cache_ttl: Duration::from_secs(whole(
                "CACHE_TTL_SECS",
                get("CACHE_TTL_SECS"),
                300,
                1..=86_400 * 30,
            )?),
            retry_budget_ratio,
            retry_budget_min: whole("RETRY_BUDGET_MIN", get("RETRY_BUDGET_MIN"), 10, 0..=100_000)?
                as u32,
            circuit_failure_threshold: whole(
                "CIRCUIT_FAILURE_THRESHOLD",
                get("CIRCUIT_FAILURE_THRESHOLD"),
                5,
                1..=10_000,
            )? as u32,
            circuit_cooldown: millis("CIRCUIT_COOLDOWN_MS", get("CIRCUIT_COOLDOWN_MS"), 100)?,
            agent_max_steps: whole("AGENT_MAX_STEPS", get("AGENT_MAX_STEPS"), 5, 1..=40)? as u32,
            otlp_endpoint,
            otlp_interval: millis(
                "OTEL_BSP_SCHEDULE_DELAY",
                get("OTEL_BSP_SCHEDULE_DELAY"),
                1000,
            )?,
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "faultline-reference".into()),
            openai_base_url,
            openai_api_key,
            model: get("LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            weather_api_url,
            redis_url: get("REDIS_URL"),
            llm_timeout,
            tool_timeout,
            llm_max_retries,
            corpus_path: get("FAULTLINE_CORPUS").map(PathBuf::from),
            log_sink: Arc::new(StdoutSink::default()),
        })
    }

    /// Sends log lines to `sink` instead of stdout.
    pub fn with_log_sink(mut self, sink: Arc<dyn LogSink>) -> Config {
        self.log_sink = sink;
        self
    }
}

/// An http(s) URL with any trailing slash removed, so paths can be appended with `format!`.
fn http_url(name: &'static str, value: String) -> Result<String, ConfigError> {
    match reqwest::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(value.trim_end_matches('/').to_string())
        }
        _ => Err(ConfigError::Invalid {
            name,
            value,
            reason: "expected an http:// or https:// URL".into(),
        }),
    }
}

/// A whole number within `range`, or `default` when unset.
fn whole(
    name: &'static str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                name,
                value: v,
                reason: format!("expected a whole number {}-{}", range.start(), range.end()),
            }),
    }
}

fn millis(
    name: &'static str,
    value: Option<String>,
    default_ms: u64,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_millis(default_ms)),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|ms| (1..=600_000).contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| ConfigError::Invalid {
                name,
                value: v,
                reason: "expected milliseconds, 1-600000".into(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PORT", "8080"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:4321/v1/"),
            ("OPENAI_API_KEY", "sk-test"),
        ]
    }

    #[test]
    fn defaults_fill_everything_but_the_required_three() {
        let config = Config::from_env_map(&env(&minimal())).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.openai_base_url, "http://127.0.0.1:4321/v1");
        assert_eq!(config.model, "gpt-4o-mini");
        assert_eq!(config.llm_timeout, Duration::from_millis(5000));
        assert_eq!(config.tool_timeout, Duration::from_millis(1500));
        assert_eq!(config.llm_max_retries, 2);
        assert_eq!(config.weather_api_url, None);
        assert_eq!(config.corpus_path, None);
        assert_eq!(config.redis_timeout, Duration::from_millis(200));
        assert_eq!(config.cache_ttl, Duration::from_secs(300));
        assert_eq!(config.agent_max_steps, 5);
        assert_eq!(config.circuit_failure_threshold, 5);
        assert_eq!(config.circuit_cooldown, Duration::from_millis(100));
        assert_eq!(config.retry_budget_ratio, 0.2);
        assert_eq!(config.otlp_endpoint, None);
    }

    #[test]
    fn missing_port_names_the_variable() {
        let mut pairs = minimal();
        pairs.retain(|(k, _)| *k != "PORT");
        let err = Config::from_env_map(&env(&pairs)).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("OPENAI_BASE_URL", "localhost:4321"),
            ("WEATHER_API_URL", "ftp://x"),
            ("LLM_TIMEOUT_MS", "0"),
            ("TOOL_TIMEOUT_MS", "1.5s"),
            ("LLM_MAX_RETRIES", "-1"),
            ("REDIS_TIMEOUT_MS", "fast"),
            ("CACHE_TTL_SECS", "0"),
            ("AGENT_MAX_STEPS", "1000"),
            ("RETRY_BUDGET_RATIO", "-0.5"),
            ("CIRCUIT_COOLDOWN_MS", "x"),
            ("TICKETS_API_URL", "tickets"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("LLM_API", "gemini"),
            ("MCP_SERVER_URL", "mcp"),
        ] {
            let mut pairs = minimal();
            pairs.push((name, value));
            let err = Config::from_env_map(&env(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn bedrock_needs_its_endpoint_and_key() {
        let mut pairs = minimal();
        pairs.push(("LLM_API", "bedrock"));
        let err = Config::from_env_map(&env(&pairs)).unwrap_err();
        assert!(
            err.to_string().contains("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
            "{err}"
        );
        pairs.push(("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9/"));
        let err = Config::from_env_map(&env(&pairs)).unwrap_err();
        assert!(
            err.to_string().contains("AWS_BEARER_TOKEN_BEDROCK"),
            "{err}"
        );
        pairs.push(("AWS_BEARER_TOKEN_BEDROCK", "key"));
        let config = Config::from_env_map(&env(&pairs)).unwrap();
        assert_eq!(config.llm_api, LlmApi::Bedrock);
        assert_eq!(
            config.bedrock_endpoint.as_deref(),
            Some("http://127.0.0.1:9")
        );
    }

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let config = Config::from_env_map(&env(&minimal())).unwrap();
        assert!(!format!("{config:?}").contains("sk-test"));
    }
}
