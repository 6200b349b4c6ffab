//! User-defined stubs from `mocks/*.toml`: a tool API described as data, served by our own
//! engine (`fakes::http`, so faults and the journal apply) and selected with wiremock's `Match`
//! matchers, which are the reference for stub matching in Rust (DESIGN.md says why not
//! wiremock's `MockServer` under load).
//!
//! ```toml
//! [[stub]]
//! name = "order lookup"
//! method = "GET"
//! path = "/orders/42"             # or: path_regex = "^/orders/[0-9]+$"
//! query = { expand = "items" }    # each must be present with this value
//! headers = { x-api-key = "k1" }  # each must be present with exactly this value
//! # body_json = {...}  exact JSON; body_partial_json = {...}  JSON containing this;
//! # body_contains = "text"
//! [stub.response]
//! status = 200                    # default 200
//! headers = { x-source = "stub" }
//! json = { id = 42 }              # or: body = "text"
//! delay = "250ms"
//! ```
//!
//! Every matcher given must match; the first stub that matches (in file order) answers. No
//! match answers 404 `{"error", "tried": [stub names]}`. Errors in a file name it with
//! `file:line:column`.
//!
//! A stub's `delay` is played by the serving loop as a script (head at once, body after the
//! wait), so slow stubs hold no thread under load.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use serde_spanned::Spanned;
use wiremock::matchers;
use wiremock::Match;

use super::status_fault_reply;
use crate::fakes::fault::Switchboard;
use crate::fakes::http::{self, Reply, Request, Responder, Script};
use crate::fakes::journal::Journal;
use crate::fakes::{FakeError, FakeHandle};
use crate::scenario::parse::line_column;

/// The longest `delay` a stub may ask for; longer is surely a typo.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Starts a fake that answers with `stubs`, on `127.0.0.1` at an ephemeral port.
pub async fn start_stubs(
    stubs: StubSet,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    http::serve("stubs", stubs, switchboard, journal).await
}

/// Like [`start_stubs`], on a given loopback address.
pub async fn start_stubs_on(
    addr: std::net::SocketAddr,
    stubs: StubSet,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    http::serve_on(addr, "stubs", stubs, switchboard, journal).await
}

/// A stub file that could not be read or does not describe stubs.
#[derive(Debug, thiserror::Error)]
pub enum StubError {
    #[error("could not read stub file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The stubs of one file, in file order.
#[derive(Debug)]
pub struct StubSet {
    stubs: Vec<Stub>,
}

/// One stub: its matchers and its answer.
pub struct Stub {
    pub name: String,
    matchers: Vec<Box<dyn Match>>,
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    delay: Option<Duration>,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub")
            .field("name", &self.name)
            .field("matchers", &self.matchers.len())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl StubSet {
    /// Reads and parses a stub file; errors name it as given.
    pub fn load(path: impl AsRef<Path>) -> Result<StubSet, StubError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| StubError::Read {
            path: path.display().to_string(),
            source,
        })?;
        StubSet::parse(&text, &path.display().to_string())
    }

    /// Parses stub TOML; `origin` names the text in errors (a file name).
    pub fn parse(text: &str, origin: &str) -> Result<StubSet, StubError> {
        let at = |offset: usize, message: String| {
            let (line, column) = line_column(text, offset);
            StubError::Invalid {
                origin: origin.to_owned(),
                line,
                column,
                message,
            }
        };
        let file: RawFile = toml::from_str(text)
            .map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().to_owned()))?;
        let stubs = file
            .stub
            .into_iter()
            .enumerate()
            .map(|(index, raw)| build(raw, index).map_err(|(offset, m)| at(offset, m)))
            .collect::<Result<_, _>>()?;
        Ok(StubSet { stubs })
    }

    pub fn stubs(&self) -> &[Stub] {
        &self.stubs
    }

    /// The first stub matching `request`, if any.
    fn find(&self, request: &wiremock::Request) -> Option<&Stub> {
        self.stubs
            .iter()
            .find(|stub| stub.matchers.iter().all(|m| m.matches(request)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    stub: Vec<RawStub>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStub {
    name: Option<String>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    path_regex: Option<Spanned<String>>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    body_json: Option<Value>,
    body_partial_json: Option<Value>,
    body_contains: Option<String>,
    #[serde(default)]
    response: RawResponse,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    status: Option<Spanned<u16>>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    body: Option<Spanned<String>>,
    json: Option<Value>,
    delay: Option<Spanned<String>>,
}

/// An error at a byte offset of the file.
type At = (usize, String);

/// Checks a stub and builds its matchers. Everything wiremock's constructors would panic on
/// (bad method, header or regex) is checked here first, so a bad file is an error, not a crash.
fn build(raw: RawStub, index: usize) -> Result<Stub, At> {
    let name = raw.name.unwrap_or_else(|| format!("stub {}", index + 1));
    let mut matchers: Vec<Box<dyn Match>> = Vec::new();
    if let Some(method) = &raw.method {
        let upper = method.get_ref().to_ascii_uppercase();
        if Method::from_bytes(upper.as_bytes()).is_err() || upper.is_empty() {
            return Err((
                method.span().start,
                format!("`{}` is not an HTTP method", method.get_ref()),
            ));
        }
        matchers.push(Box::new(matchers::method(upper)));
    }
    match (&raw.path, &raw.path_regex) {
        (Some(_), Some(regex)) => {
            return Err((
                regex.span().start,
                "give `path` or `path_regex`, not both".into(),
            ))
        }
        (Some(path), None) => {
            if !path.get_ref().starts_with('/') {
                return Err((
                    path.span().start,
                    format!("path `{}` must start with `/`", path.get_ref()),
                ));
            }
            matchers.push(Box::new(matchers::path(path.get_ref().as_str())));
        }
        (None, Some(regex)) => {
            if let Err(e) = regex::Regex::new(regex.get_ref()) {
                let first = e.to_string().lines().last().unwrap_or_default().to_owned();
                return Err((regex.span().start, format!("invalid path_regex: {first}")));
            }
            matchers.push(Box::new(matchers::path_regex(regex.get_ref().as_str())));
        }
        (None, None) => {}
    }
    for (key, value) in &raw.query {
        matchers.push(Box::new(matchers::query_param(
            key.as_str(),
            value.as_str(),
        )));
    }
    if let Some(headers) = &raw.headers {
        for (name, value) in header_list(headers)? {
            // wiremock splits the request's values at commas before comparing, so a value
            // written with commas ("no-cache, no-store") must be split the same way to match.
            let values: Vec<HeaderValue> = value
                .to_str()
                .unwrap_or_default()
                .split(',')
                .filter_map(|part| HeaderValue::from_str(part.trim()).ok())
                .collect();
            matchers.push(Box::new(matchers::headers(name, values)));
        }
    }
    if let Some(body) = &raw.body_json {
        matchers.push(Box::new(matchers::body_json(body)));
    }
    if let Some(body) = &raw.body_partial_json {
        matchers.push(Box::new(matchers::body_partial_json(body)));
    }
    if let Some(text) = &raw.body_contains {
        matchers.push(Box::new(matchers::body_string_contains(text.as_str())));
    }

    let response = raw.response;
    let status = match &response.status {
        None => StatusCode::OK,
        Some(code) => match StatusCode::from_u16(*code.get_ref()) {
            Ok(status) if (200..=599).contains(&status.as_u16()) => status,
            _ => {
                return Err((
                    code.span().start,
                    format!("status {} must be within 200..=599", code.get_ref()),
                ))
            }
        },
    };
    let mut headers = match &response.headers {
        Some(headers) => header_list(headers)?,
        None => Vec::new(),
    };
    let has_content_type = headers.iter().any(|(n, _)| n == header::CONTENT_TYPE);
    let (body, content_type) = match (response.body, response.json) {
        (Some(body), Some(_)) => {
            return Err((
                body.span().start,
                "give the response `body` or `json`, not both".into(),
            ))
        }
        (Some(body), None) => (body.into_inner().into(), "text/plain; charset=utf-8"),
        (None, Some(json)) => (json.to_string().into(), "application/json"),
        (None, None) => (Bytes::new(), ""),
    };
    if !has_content_type && !content_type.is_empty() {
        headers.push((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
    }
    let delay = match &response.delay {
        None => None,
        Some(text) => match humantime::parse_duration(text.get_ref()) {
            Ok(delay) if delay <= MAX_DELAY => Some(delay),
            Ok(_) => {
                return Err((
                    text.span().start,
                    format!("delay `{}` is longer than 60s", text.get_ref()),
                ))
            }
            Err(e) => {
                return Err((
                    text.span().start,
                    format!(
                        "`{}` is not a duration ({e}); write it like \"250ms\" or \"2s\"",
                        text.get_ref()
                    ),
                ))
            }
        },
    };
    Ok(Stub {
        name,
        matchers,
        status,
        headers,
        body,
        delay,
    })
}

/// Checked header names and values, for matchers and responses alike.
fn header_list(
    headers: &Spanned<BTreeMap<String, String>>,
) -> Result<Vec<(HeaderName, HeaderValue)>, At> {
    headers
        .get_ref()
        .iter()
        .map(|(name, value)| {
            let bad = |what| (headers.span().start, format!("{what} in header `{name}`"));
            let name_ok =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid name"))?;
            let value_ok = HeaderValue::from_str(value).map_err(|_| bad("invalid value"))?;
            Ok((name_ok, value_ok))
        })
        .collect()
}

impl Responder for StubSet {
    fn answer(&self, request: &Request) -> Reply {
        let target = request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        // wiremock's matchers read a full URL; the host is irrelevant to them.
        let Ok(url) = format!("http://localhost{target}").parse() else {
            return super::error(StatusCode::BAD_REQUEST, "request target is not a valid URL");
        };
        let seen = wiremock::Request {
            url,
            method: request.method.clone(),
            headers: request.headers.clone(),
            body: request.body.to_vec(),
        };
        match self.find(&seen) {
            Some(stub) => {
                let mut reply = Reply {
                    status: stub.status,
                    headers: stub.headers.clone(),
                    body: stub.body.clone(),
                    usage: None,
                    stream: None,
                };
                // The serving loop awaits a script's waits, so a slow stub holds no thread:
                // the head goes out at once and the body after the delay.
                if let Some(delay) = stub.delay {
                    let mut script = Script::default();
                    script.wait(delay);
                    script.send(std::mem::take(&mut reply.body));
                    reply.stream = Some(Box::new(script));
                }
                reply
            }
            None => Reply::json(
                StatusCode::NOT_FOUND,
                &json!({
                    "error": format!("no stub matched {} {target}", request.method),
                    "tried": self.stubs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                }),
            ),
        }
    }

    fn fault_reply(
        &self,
        _request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        status_fault_reply(status, retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        StubSet::parse(text, "x.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_toml_syntax_error_names_line_and_column() {
        let error = error_of("[[stub]]\npath = \"/a\"\nmethod = \n");
        assert!(error.starts_with("x.toml:3:"), "{error}");
    }

    #[test]
    fn an_unknown_field_is_reported_where_it_is() {
        let error = error_of("[[stub]]\npath = \"/a\"\n  pathh = \"/b\"\n");
        assert!(error.starts_with("x.toml:3:3: "), "{error}");
        assert!(error.contains("unknown field `pathh`"), "{error}");
    }

    #[test]
    fn what_wiremock_would_panic_on_is_an_error_at_its_value() {
        let error = error_of("[[stub]]\npath_regex = \"^/a(\"\n");
        assert!(
            error.starts_with("x.toml:2:14: invalid path_regex"),
            "{error}"
        );
        let error = error_of("[[stub]]\nmethod = \"G T\"\n");
        assert!(error.starts_with("x.toml:2:10: "), "{error}");
        let error = error_of("[[stub]]\n[stub.response]\nstatus = 101\n");
        assert!(error.starts_with("x.toml:3:10: status 101"), "{error}");
    }

    #[test]
    fn a_stub_without_a_name_is_named_by_its_position() {
        let set = StubSet::parse("[[stub]]\n[[stub]]\nname = \"b\"\n", "x.toml").unwrap();
        let names: Vec<&str> = set.stubs().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["stub 1", "b"]);
    }
}
