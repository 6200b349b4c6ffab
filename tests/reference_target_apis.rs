//! The reference target on the APIs beyond chat completions, against faultline's own fakes
//! (the fake LLM and the fake MCP server, in process): its Responses API agent, its MCP tools
//! and its Bedrock Converse path, healthy and under the flaw that breaks each one's practice,
//! judged by the check that must tell them apart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::checks::{conversation, mcp as mcp_check, Outcome};
use faultline::evidence::{Evidence, Exchange};
use faultline::fakes::fault::{Fault, FaultRule, Switchboard};
use faultline::fakes::journal::Journal;
use faultline::fakes::{llm, mcp, FakeHandle};
use faultline::reference::{Config, Flaw, Server};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const KEY: &str = "sk-apis-test";

struct Fake {
    handle: FakeHandle,
    board: Arc<Switchboard>,
    journal: Arc<Journal>,
}

async fn fake_llm() -> Fake {
    let board = Arc::new(Switchboard::new(7));
    let journal = Arc::new(Journal::new(Instant::now(), 10_000));
    let options = llm::LlmOptions {
        api_key: KEY.into(),
        seed: 7,
    };
    let handle = llm::start(options, board.clone(), journal.clone())
        .await
        .unwrap();
    Fake {
        handle,
        board,
        journal,
    }
}

async fn fake_mcp() -> Fake {
    let board = Arc::new(Switchboard::new(7));
    let journal = Arc::new(Journal::new(Instant::now(), 10_000));
    let handle = mcp::start(7, board.clone(), journal.clone()).await.unwrap();
    Fake {
        handle,
        board,
        journal,
    }
}

fn rule(id: usize, fault: Fault, route: Option<&str>, first_attempts: Option<u32>) -> FaultRule {
    FaultRule {
        id,
        fault,
        route: route.map(str::to_owned),
        rate: 1.0,
        first_attempts,
    }
}

/// A running reference target; dropping it stops the server.
struct Target {
    url: String,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

async fn start_target(llm: &Fake, env: &[(&str, String)], flaws: &[Flaw]) -> Target {
    let base = llm.handle.base_url();
    let mut map: HashMap<String, String> = [
        ("PORT", "0".to_string()),
        ("OPENAI_BASE_URL", format!("{base}/v1")),
        ("OPENAI_API_KEY", KEY.to_string()),
        ("LLM_TIMEOUT_MS", "2000".to_string()),
        ("TOOL_TIMEOUT_MS", "1000".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in env {
        map.insert(k.to_string(), v.clone());
    }
    let (log_tx, _logs) = tokio::sync::mpsc::unbounded_channel::<String>();
    let config = Config::from_env_map(&map)
        .unwrap()
        .with_log_sink(Arc::new(log_tx));
    let server = Server::bind(config, flaws.to_vec()).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(10);
    while !http
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < until, "target never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Target {
        url,
        http,
        _stop: stop,
    }
}

impl Target {
    async fn post(&self, path: &str, message: &str, id: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("x-request-id", id)
            .json(&json!({ "message": message }))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn evidence(fakes: &[&Fake]) -> Evidence {
    Evidence {
        attempts: fakes.iter().flat_map(|f| f.journal.snapshot()).collect(),
        ..Evidence::default()
    }
}

/// The agent on MCP tools asks twice before the list changes and three times after.
async fn agent_across_a_list_change(flaws: &[Flaw]) -> (Fake, Outcome) {
    let (llm, mcp) = (fake_llm().await, fake_mcp().await);
    let env = [
        ("LLM_API", "responses".to_string()),
        ("MCP_SERVER_URL", format!("{}/mcp", mcp.handle.base_url())),
    ];
    let target = start_target(&llm, &env, flaws).await;
    let ask = "What's the weather forecast in Oslo?";
    for n in 0..2 {
        let (status, _) = target.post("/api/agent", ask, &format!("before-{n}")).await;
        assert_eq!(status, 200);
    }
    mcp.board.activate(rule(1, Fault::ToolsChanged, None, None));
    for n in 0..3 {
        let (status, _) = target.post("/api/agent", ask, &format!("after-{n}")).await;
        assert_eq!(
            status, 200,
            "a failed tool degrades the answer, never fails it"
        );
    }
    let verdict = mcp_check::check_list_changed(&evidence(&[&mcp]));
    (mcp, verdict.outcome)
}

fn tools_called(mcp: &Fake) -> Vec<String> {
    mcp.journal
        .snapshot()
        .into_iter()
        .filter_map(|a| match a.exchange {
            Some(Exchange::Mcp {
                method,
                tool: Some(tool),
                ..
            }) if method == "tools/call" => Some(tool),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_agent_lists_the_mcp_tools_again_when_told_they_changed() {
    let (mcp, outcome) = agent_across_a_list_change(&[]).await;
    assert_eq!(outcome, Outcome::Pass);
    let called = tools_called(&mcp);
    // The call that met the change failed; every later one used the new list.
    assert_eq!(
        called.last().map(String::as_str),
        Some("get_forecast"),
        "{called:?}"
    );
}

#[tokio::test]
async fn ignore_list_changed_flaw_keeps_calling_the_removed_tool_and_fails_the_check() {
    let (mcp, outcome) = agent_across_a_list_change(&[Flaw::IgnoreListChanged]).await;
    assert_eq!(outcome, Outcome::Fail);
    let called = tools_called(&mcp);
    assert!(called.iter().all(|t| t == "get_weather"), "{called:?}");
}

/// An agent request whose every turn fails once with 503. Its first turn is keyed by the
/// nonce in the question, its follow-up by the request id (it carries only tool results), so
/// `first_attempts = 1` fails each turn's first attempt.
async fn agent_with_failing_turns(flaws: &[Flaw]) -> (u16, Outcome) {
    let llm = fake_llm().await;
    llm.board.activate(rule(
        1,
        Fault::status(503, None),
        Some("/v1/responses"),
        Some(1),
    ));
    let target = start_target(&llm, &[("LLM_API", "responses".to_string())], flaws).await;
    let (status, _) = target
        .post(
            "/api/agent",
            "What's the weather in Paris? fl-0000abcd",
            "turns-1",
        )
        .await;
    let verdict = conversation::check_retry_state(&evidence(&[&llm]));
    (status, verdict.outcome)
}

#[tokio::test]
async fn a_retried_follow_up_turn_continues_from_the_same_response() {
    assert_eq!(agent_with_failing_turns(&[]).await, (200, Outcome::Pass));
}

#[tokio::test]
async fn new_response_id_on_retry_flaw_forks_the_conversation_and_fails_the_check() {
    let (status, outcome) = agent_with_failing_turns(&[Flaw::NewResponseIdOnRetry]).await;
    // The fork goes through (the replayed turn made the same call): only the check sees it.
    assert_eq!((status, outcome), (200, Outcome::Fail));
}

/// One chat answer through Bedrock while its first attempt is throttled: the status and the
/// attempts Converse saw, with the AWS SDKs' attempt numbers.
async fn throttled_bedrock_chat(flaws: &[Flaw]) -> (u16, Vec<Option<u32>>) {
    let llm = fake_llm().await;
    llm.board
        .activate(rule(1, Fault::status(429, None), Some("/model/"), Some(1)));
    let env = [
        ("LLM_API", "bedrock".to_string()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", llm.handle.base_url()),
        ("AWS_BEARER_TOKEN_BEDROCK", KEY.to_string()),
        (
            "LLM_MODEL",
            "anthropic.claude-3-haiku-20240307-v1:0".to_string(),
        ),
    ];
    let target = start_target(&llm, &env, flaws).await;
    let (status, _) = target
        .post("/api/chat", "How do I reset my password?", "bedrock-1")
        .await;
    let converse: Vec<Option<u32>> = llm
        .journal
        .snapshot()
        .into_iter()
        .filter(|a| a.route.ends_with("/converse"))
        .map(|a| a.retry_count)
        .collect();
    (status, converse)
}

#[tokio::test]
async fn a_bedrock_throttle_is_retried_as_the_aws_sdks_do() {
    let (status, attempts) = throttled_bedrock_chat(&[]).await;
    assert_eq!(status, 200);
    // amz-sdk-request: attempt=1, then attempt=2 (journaled as retry counts 0 and 1).
    assert_eq!(attempts, [Some(0), Some(1)]);
}

#[tokio::test]
async fn no_throttle_retry_flaw_gives_the_throttle_to_the_user() {
    let (status, attempts) = throttled_bedrock_chat(&[Flaw::NoThrottleRetry]).await;
    assert_ne!(status, 200);
    assert_eq!(attempts, [Some(0)]);
}
