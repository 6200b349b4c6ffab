//! The probes that talk to the service over HTTP: health, the chat route and its body shape,
//! and one request while the fake LLM fails. Every request has a timeout, and the searches a
//! cap on requests and time, so a service that never answers cannot hold `init`.
//!
//! A chat route counts as found only when it answers 2xx *and* the fake LLM saw the question
//! (its journal holds the nonce faultline put in the text, or the request id): a route that
//! answers 200 without asking the LLM is not the chat route.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::answer::{self, Reply};
use super::Found;
use crate::evidence::Attempt;
use crate::fakes::driver::Fakes;
use crate::fakes::fault::{Fault, FaultRule};
use crate::load::{Correlation, Ids};
use crate::scenario::api::fill_template;
use crate::scenario::FakeName;

/// Paths services answer health on, most usual first; `/` last, as it often serves a page.
pub const HEALTH_PATHS: &[&str] = &["/healthz", "/health", "/readyz", "/ready", "/livez", "/"];

/// How long a health path that answers 5xx is asked again (a service warming up).
const WARM_UP: Duration = Duration::from_secs(10);

/// Chat routes to try after the source's own POST routes.
const CHAT_ROUTES: &[&str] = &[
    "/api/chat",
    "/v1/chat",
    "/chat",
    "/api/v1/chat",
    "/v1/chat/completions",
    "/api/ask",
    "/ask",
    "/v1/ask",
    "/api/query",
    "/query",
    "/api/message",
    "/api/messages",
    "/api/completions",
    "/api/generate",
];

/// Words that make a POST route look like a chat route.
const CHAT_WORDS: &[&str] = &[
    "chat", "ask", "complet", "message", "query", "prompt", "generate", "convers", "answer",
    "assist", "question", "reply",
];

/// Requests the chat search may send, and how long it may take, in all.
const CHAT_REQUEST_LIMIT: usize = 120;
const CHAT_TIME_LIMIT: Duration = Duration::from_secs(90);
/// How long one chat request may take (the fake LLM answers at once).
pub const CHAT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a request may take while the fake LLM fails (the SDK's retries and backoff).
const FAILURE_TIMEOUT: Duration = Duration::from_secs(40);
/// Bodies larger than this are cut (an answer is a few KiB).
const BODY_LIMIT: usize = 1024 * 1024;

/// The questions: a greeting for the chat search, and others for the request that is looked
/// at closely and for the failure probe, so a cache keyed on the question answers neither.
pub const QUESTION: &str = "Hello! What can you help me with?";
pub const SECOND_QUESTION: &str = "How do I reset my password?";
const FAILING_QUESTION: &str = "What plans do you offer?";

/// The usual body shapes, most usual first.
fn bodies() -> Vec<Value> {
    let messages = json!([{ "role": "user", "content": "{message}" }]);
    vec![
        json!({ "message": "{message}" }),
        json!({ "prompt": "{message}" }),
        json!({ "input": "{message}" }),
        json!({ "question": "{message}" }),
        json!({ "query": "{message}" }),
        json!({ "text": "{message}" }),
        json!({ "messages": messages }),
        json!({ "model": "gpt-4o-mini", "messages": messages }),
    ]
}

/// What the probes share: the client, where the service is, the fakes, the ids.
pub struct Session<'a> {
    pub client: reqwest::Client,
    pub base: String,
    /// `None` for a service attached with `--url` when no `fakes up` answers.
    pub fakes: Option<&'a Fakes>,
    pub correlation: Correlation,
}

/// A found chat route: the request shape and one answer to it.
#[derive(Clone, Debug)]
pub struct ChatRoute {
    pub path: String,
    pub body: Value,
    /// How it was found, for the draft's comment.
    pub how: String,
    /// False when no fakes could confirm the LLM saw the question (attached, no `fakes up`).
    pub confirmed: bool,
    /// It answered with a stream (SSE), not one JSON answer.
    pub streams: bool,
    /// A header besides `x-request-id` the request id must go in for the service to use it.
    pub id_header: Option<String>,
    /// Whether the answer carried the request id faultline sent.
    pub echoed: bool,
    /// Headers in which the answer held an id of the service's own.
    pub own_id_headers: Vec<String>,
}

/// One request sent with a shape, and what came of it.
pub struct Exchange {
    pub ids: Ids,
    pub reply: Reply,
    /// The LLM attempts the fake saw for it.
    pub llm_attempts: Vec<Attempt>,
}

impl Session<'_> {
    /// GET each of [`HEALTH_PATHS`] until one answers 2xx. A 5xx may be a service still
    /// warming up (a health check that waits for its dependencies): asked again for a while.
    pub async fn health(&self) -> Result<Found<String>, String> {
        let deadline = Instant::now() + WARM_UP;
        loop {
            let (found, warming) = self.health_once().await;
            if found.is_ok() || !warming || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One pass over the health paths; and whether some path answered 5xx.
    async fn health_once(&self) -> (Result<Found<String>, String>, bool) {
        let mut tried = Vec::new();
        let mut warming = false;
        for path in HEALTH_PATHS {
            let answer = self
                .client
                .get(format!("{}{path}", self.base))
                .timeout(Duration::from_secs(3))
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {
                    let mut how = format!("GET {path} answered {}", response.status().as_u16());
                    if !tried.is_empty() {
                        how = format!("{how} ({})", tried.join(", "));
                    }
                    return (Ok(Found::new(path.to_string(), how)), false);
                }
                Ok(response) => {
                    warming |= response.status().is_server_error();
                    tried.push(format!("{path}: {}", response.status().as_u16()));
                }
                Err(error) => tried.push(format!("{path}: {}", error_kind(&error))),
            }
        }
        (
            Err(format!("no 2xx from GET {}", tried.join(", "))),
            warming,
        )
    }

    /// Tries POST routes (the source's first, then usual ones) with usual bodies, and the
    /// bodies a route's own error answers ask for, until one answers 2xx with the fake LLM
    /// having seen the question.
    pub async fn chat(&self, source_routes: &[(String, String)]) -> Result<ChatRoute, String> {
        let routes = candidate_routes(source_routes);
        let started = Instant::now();
        let mut sent = 0;
        let mut notes: Vec<String> = Vec::new();
        // A 2xx that the LLM did not see (attached without fakes, nothing can be confirmed),
        // or a stream: kept in case no JSON answer the LLM saw turns up.
        let mut unconfirmed: Option<ChatRoute> = None;
        let mut streamed: Option<ChatRoute> = None;
        'routes: for (path, why) in &routes {
            let mut queue: VecDeque<(Value, Option<u16>)> =
                bodies().into_iter().map(|body| (body, None)).collect();
            let mut tried: Vec<Value> = Vec::new();
            while let Some((body, hinted_by)) = queue.pop_front() {
                if tried.contains(&body) {
                    continue;
                }
                tried.push(body.clone());
                if sent >= CHAT_REQUEST_LIMIT || started.elapsed() > CHAT_TIME_LIMIT {
                    notes.push(format!(
                        "stopped after {sent} requests in {:.0} s",
                        started.elapsed().as_secs_f64()
                    ));
                    break 'routes;
                }
                sent += 1;
                let shown = match hinted_by {
                    Some(status) => format!(
                        "{} (the shape its {status} answer asked for)",
                        answer::show_body(&body)
                    ),
                    None => answer::show_body(&body),
                };
                let exchange = match self.send(path, &body, None, QUESTION, CHAT_TIMEOUT).await {
                    Ok(exchange) => exchange,
                    Err(error) => {
                        notes.push(format!("POST {path}: {error}"));
                        continue 'routes;
                    }
                };
                let status = exchange.reply.status;
                match status {
                    // No such route (or not for POST): the next route.
                    404 | 405 => {
                        notes.push(format!("POST {path}: {status}"));
                        continue 'routes;
                    }
                    401 | 403 => {
                        notes.push(format!(
                            "POST {path}: {status} (it wants credentials: add them in [api] \
                             headers, e.g. headers = {{ authorization = \"Bearer …\" }})"
                        ));
                        continue 'routes;
                    }
                    200..=299 => {}
                    // A wrong body (400, 422, or a 500 from a handler that read a missing
                    // field): what the answer asks for first, then the next usual body.
                    _ => {
                        if hinted_by.is_none() {
                            for hint in answer::body_hints(&exchange.reply).into_iter().rev() {
                                queue.push_front((hint, Some(status)));
                            }
                        }
                        continue;
                    }
                }
                let how = format!("POST {path} ({why}) answered {status} to {shown}");
                let echoed = answer::carries(&exchange.reply, &exchange.ids.request_id);
                let own_id_headers = answer::own_id_headers(&exchange.reply);
                let route = |how: String, confirmed: bool, streams: bool| ChatRoute {
                    path: path.clone(),
                    body: body.clone(),
                    how,
                    confirmed,
                    streams,
                    id_header: None,
                    echoed,
                    own_id_headers: own_id_headers.clone(),
                };
                if exchange.reply.is_sse() {
                    // Chat flows read a whole JSON answer: a stream is [api.stream]'s shape.
                    notes.push(format!(
                        "POST {path} answered {status} with a stream to {shown}"
                    ));
                    if streamed.is_none() {
                        let how = format!("{how} as a stream (text/event-stream)");
                        streamed = Some(route(how, !exchange.llm_attempts.is_empty(), true));
                    }
                    continue 'routes;
                }
                match self.fakes {
                    Some(_) if exchange.llm_attempts.is_empty() => {
                        notes.push(format!(
                            "POST {path} answered {status} to {shown}, but the fake LLM never \
                             saw the question"
                        ));
                    }
                    Some(_) => {
                        let attempts = exchange.llm_attempts.len();
                        let how =
                            format!("{how}; the fake LLM saw the question ({attempts} attempt(s))");
                        return Ok(route(how, true, false));
                    }
                    None => {
                        if unconfirmed.is_none() {
                            let how = format!(
                                "{how}; a guess: no fakes' control API answered, so whether \
                                 the LLM saw the question is not known"
                            );
                            unconfirmed = Some(route(how, false, false));
                        }
                        continue 'routes;
                    }
                }
            }
        }
        unconfirmed.or(streamed).ok_or_else(|| {
            let tried: Vec<&str> = routes.iter().map(|(path, _)| path.as_str()).collect();
            format!(
                "no POST route answered 2xx with an answer from the fake LLM; tried {} with \
                 bodies like {{\"message\"}}, {{\"prompt\"}}, {{\"messages\": [...]}} and \
                 the shapes their error answers asked for; {}",
                tried.join(", "),
                summarize(&notes)
            )
        })
    }

    /// The header the service reads its request id from, when the route's answers did not
    /// carry the `x-request-id` faultline sent: each header it answers an id of its own in,
    /// then the usual ones, sent with the request id until an answer carries it.
    pub async fn inbound_id_header(&self, route: &ChatRoute) -> Option<Found<String>> {
        let mut candidates = route.own_id_headers.clone();
        for usual in ["x-correlation-id", "request-id", "x-trace-id"] {
            if !candidates.iter().any(|c| c == usual) {
                candidates.push(usual.to_string());
            }
        }
        candidates.retain(|c| c != "x-request-id");
        for header in candidates.into_iter().take(4) {
            let sent = self
                .send(
                    &route.path,
                    &route.body,
                    Some(&header),
                    QUESTION,
                    CHAT_TIMEOUT,
                )
                .await;
            let Ok(exchange) = sent else { continue };
            if answer::carries(&exchange.reply, &exchange.ids.request_id) {
                let how = format!(
                    "the service answered an id of its own when faultline sent x-request-id, \
                     and the one faultline sent when it also sent {header}: faultline sends the \
                     request id in {header} too"
                );
                return Some(Found::new(header, how));
            }
        }
        None
    }

    /// Sends one request with `body` (its `{message}` filled with `question` and a nonce),
    /// and reads the answer and the LLM attempts the fake saw for it.
    pub async fn send(
        &self,
        path: &str,
        body: &Value,
        id_header: Option<&str>,
        question: &str,
        timeout: Duration,
    ) -> Result<Exchange, String> {
        let ids = self.correlation.next();
        let message = format!("{question} [{}]", ids.nonce);
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .timeout(timeout)
            .header("x-request-id", &ids.request_id)
            .header("accept", "application/json");
        if let Some(header) = id_header {
            request = request.header(header, &ids.request_id);
        }
        let response = request
            .json(&fill_template(body, &message, &ids.request_id))
            .send()
            .await
            .map_err(|e| error_kind(&e))?;
        let reply = read_reply(response).await?;
        let llm_attempts = self.llm_attempts(&ids).await;
        Ok(Exchange {
            ids,
            reply,
            llm_attempts,
        })
    }

    /// The attempts the fake LLM saw for a request (by nonce, or by its propagated id).
    pub async fn llm_attempts(&self, ids: &Ids) -> Vec<Attempt> {
        let Some(fakes) = self.fakes else {
            return Vec::new();
        };
        fakes
            .read()
            .await
            .attempts
            .iter()
            .filter(|a| {
                a.fake == FakeName::Llm
                    && a.key
                        .as_deref()
                        .is_some_and(|key| key == ids.nonce || key == ids.request_id)
            })
            .collect()
    }

    /// One request while the fake LLM answers 503 to every attempt: the service's error
    /// answer, and the attempts it made.
    pub async fn failure(&self, route: &ChatRoute) -> Result<Exchange, String> {
        let Some(fakes) = self.fakes else {
            return Err("no fakes to fail the LLM with".into());
        };
        let rule = FaultRule {
            id: 0,
            fault: Fault::Status {
                code: 503,
                retry_after: None,
                retry_after_ms: true,
                should_retry: None,
                error_code: None,
            },
            route: None,
            rate: 1.0,
            first_attempts: None,
        };
        fakes.switch_on(FakeName::Llm, rule).await?;
        let exchange = self
            .send(
                &route.path,
                &route.body,
                route.id_header.as_deref(),
                FAILING_QUESTION,
                FAILURE_TIMEOUT,
            )
            .await;
        // Off whatever came of the request, before the answer is looked at.
        fakes.switch_all_off().await?;
        exchange.map_err(|e| format!("with the fake LLM answering 503, POST {}: {e}", route.path))
    }
}

/// The source's chat-like POST routes, the usual ones, then the source's others.
fn candidate_routes(source_routes: &[(String, String)]) -> Vec<(String, String)> {
    let chat_like = |path: &str| {
        let lower = path.to_ascii_lowercase();
        CHAT_WORDS.iter().any(|w| lower.contains(w))
    };
    let mut routes: Vec<(String, String)> = Vec::new();
    let mut push = |path: &str, why: String| {
        if !routes.iter().any(|(p, _)| p == path) {
            routes.push((path.to_string(), why));
        }
    };
    for (path, at) in source_routes.iter().filter(|(p, _)| chat_like(p)) {
        push(path, format!("declared at {at}"));
    }
    for path in CHAT_ROUTES {
        push(path, "a usual chat route".into());
    }
    for (path, at) in source_routes.iter().filter(|(p, _)| !chat_like(p)).take(8) {
        push(path, format!("declared at {at}"));
    }
    routes
}

async fn read_reply(response: reqwest::Response) -> Result<Reply, String> {
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let content_type = headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let bytes = response.bytes().await.map_err(|e| error_kind(&e))?;
    let body = String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_LIMIT)]).to_string();
    let json = serde_json::from_str(&body).ok();
    Ok(Reply {
        status,
        headers,
        content_type,
        body,
        json,
    })
}

/// Where an error answer keeps its message, and whether it still carries the request id.
pub fn error_shape(exchange: &Exchange) -> Result<Found<String>, String> {
    let reply = &exchange.reply;
    let attempts = exchange.llm_attempts.len();
    if reply.status < 400 {
        return Err(format!(
            "with the fake LLM failing, the service answered {} (after {attempts} LLM \
             attempt(s)): a fallback answer, not an error",
            reply.status
        ));
    }
    let Some(json) = &reply.json else {
        return Err(format!(
            "with the fake LLM failing, the service answered {} without JSON: {}",
            reply.status,
            excerpt(&reply.body)
        ));
    };
    answer::error_message(json)
        .map(|pointer| {
            let text = json
                .pointer(&pointer)
                .map(|v| v.to_string())
                .unwrap_or_default();
            Found::new(
                pointer.clone(),
                format!(
                    "with the fake LLM answering 503, the service answered {} after \
                     {attempts} LLM attempt(s), with {text} at {pointer}",
                    reply.status
                ),
            )
        })
        .ok_or_else(|| {
            format!(
                "with the fake LLM failing, the service answered {} with no message field: {}",
                reply.status,
                excerpt(&reply.body)
            )
        })
}

fn excerpt(text: &str) -> String {
    let mut end = text.len().min(160);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The last few of many notes, so a TODO stays readable.
fn summarize(notes: &[String]) -> String {
    const SHOWN: usize = 6;
    if notes.len() <= SHOWN {
        return notes.join("; ");
    }
    format!(
        "{}; and {} more",
        notes[..SHOWN].join("; "),
        notes.len() - SHOWN
    )
}

/// A transport error in a few words.
pub fn error_kind(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection refused".into()
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_chat_routes_come_first_and_its_others_last() {
        let source = [
            ("/internal/reindex".to_string(), "app.py:9".to_string()),
            ("/v2/ask".to_string(), "app.py:3".to_string()),
            ("/api/chat".to_string(), "app.py:5".to_string()),
        ];
        let routes = candidate_routes(&source);
        let paths: Vec<&str> = routes.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(&paths[..3], ["/v2/ask", "/api/chat", "/v1/chat"]);
        assert_eq!(*paths.last().unwrap(), "/internal/reindex");
        assert_eq!(routes[1].1, "declared at app.py:5");
        assert_eq!(paths.iter().filter(|p| **p == "/api/chat").count(), 1);
    }

    #[test]
    fn every_body_carries_the_message() {
        for body in bodies() {
            assert!(crate::scenario::api::carries_message(&body), "{body}");
        }
    }
}
