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
//! A write stub can be idempotent, as the tickets fake is, with the same [`WriteLedger`]:
//!
//! ```toml
//! idempotency_header = "Idempotency-Key"   # top level, the default
//! [[stub]]
//! name = "refund an order"
//! method = "POST"
//! path = "/refunds"
//! idempotent = true
//! ```
//!
//! Then a request it matches with an idempotency key never seen gets the stub's answer and
//! counts as a side effect; the same key with the same write (method, path and payload, its
//! timestamps and UUIDs aside: see `ledger`) gets the same answer again with
//! `idempotent-replayed: true` and creates nothing; the same key with another write is a 400
//! `{"error"}`; a request without a key always counts as a side effect. The ledger counts
//! duplicate side effects per client request, and `writes.idempotent` reads it
//! ([`StubSet::ledger`], as `fakes::set::write_attempts` turns it into evidence) as it reads
//! the tickets fake's. A GET cannot be idempotent in this sense: it writes nothing.
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

use super::ledger::{self, Answer, Decision, Seen, WriteLedger, WriteOutcome};
use super::status_fault_reply;
use crate::fakes::fault::Switchboard;
use crate::fakes::http::{self, Reply, Request, Responder, Script};
use crate::fakes::journal::Journal;
use crate::fakes::{FakeError, FakeHandle};
use crate::input::line_column;

/// The longest `delay` a stub may ask for; longer is surely a typo.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Starts a fake that answers with `stubs`, on `127.0.0.1` at an ephemeral port.
pub async fn start_stubs(
    stubs: StubSet,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    start_stubs_on(addr, stubs, switchboard, journal).await
}

/// Like [`start_stubs`], on a given loopback address.
pub async fn start_stubs_on(
    addr: std::net::SocketAddr,
    stubs: StubSet,
    switchboard: Arc<Switchboard>,
    journal: Arc<Journal>,
) -> Result<FakeHandle, FakeError> {
    let stubs = StubSet {
        journal: Some(journal.clone()),
        ..stubs
    };
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

/// The stubs of one file, in file order, and the ledger of the writes its idempotent stubs
/// answered.
pub struct StubSet {
    stubs: Vec<Stub>,
    /// The header idempotent stubs read their key from.
    idempotency_header: String,
    ledger: Arc<WriteLedger>,
    /// For `at_ms` offsets on the journal's clock; set when the fake starts.
    journal: Option<Arc<Journal>>,
}

impl std::fmt::Debug for StubSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StubSet")
            .field("stubs", &self.stubs)
            .field("idempotency_header", &self.idempotency_header)
            .finish_non_exhaustive()
    }
}

/// One stub: its matchers and its answer.
pub struct Stub {
    pub name: String,
    matchers: Vec<Box<dyn Match>>,
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    delay: Option<Duration>,
    /// A write with idempotency keys, kept in the set's ledger.
    idempotent: bool,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub")
            .field("name", &self.name)
            .field("matchers", &self.matchers.len())
            .field("status", &self.status)
            .field("idempotent", &self.idempotent)
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
        let idempotency_header = match file.idempotency_header {
            None => "Idempotency-Key".to_owned(),
            Some(name) => match HeaderName::from_bytes(name.get_ref().as_bytes()) {
                Ok(_) => name.into_inner(),
                Err(_) => {
                    return Err(at(
                        name.span().start,
                        format!("`{}` is not an HTTP header name", name.get_ref()),
                    ))
                }
            },
        };
        let stubs = file
            .stub
            .into_iter()
            .enumerate()
            .map(|(index, raw)| build(raw, index).map_err(|(offset, m)| at(offset, m)))
            .collect::<Result<_, _>>()?;
        Ok(StubSet {
            stubs,
            idempotency_header,
            ledger: Arc::default(),
            journal: None,
        })
    }

    pub fn stubs(&self) -> &[Stub] {
        &self.stubs
    }

    /// The writes the idempotent stubs answered; keep the `Arc` before starting the fake.
    pub fn ledger(&self) -> Arc<WriteLedger> {
        self.ledger.clone()
    }

    /// The first stub matching `request`, if any.
    fn find(&self, request: &wiremock::Request) -> Option<&Stub> {
        self.stubs
            .iter()
            .find(|stub| stub.matchers.iter().all(|m| m.matches(request)))
    }

    /// The stub that matches `request` (`Ok(None)`: none does), or the 400 for a request
    /// target that is not a URL.
    fn matching(&self, request: &Request) -> Result<Option<&Stub>, Reply> {
        // wiremock's matchers read a full URL; the host is irrelevant to them.
        let target = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(url) = format!("http://localhost{target}").parse() else {
            return Err(super::error(
                StatusCode::BAD_REQUEST,
                "request target is not a valid URL",
            ));
        };
        let seen = wiremock::Request {
            url,
            method: request.method.clone(),
            headers: request.headers.clone(),
            body: request.body.to_vec(),
        };
        Ok(self.find(&seen))
    }

    /// The matching stub when it is idempotent.
    fn idempotent(&self, request: &Request) -> Option<&Stub> {
        self.matching(request)
            .ok()
            .flatten()
            .filter(|s| s.idempotent)
    }

    fn seen(&self, request: &Request) -> Seen {
        let at_ms = self
            .journal
            .as_ref()
            .map_or(0.0, |journal| journal.offset_ms(request.arrival));
        Seen::of(request, at_ms, &self.idempotency_header)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    idempotency_header: Option<Spanned<String>>,
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
    idempotent: Option<Spanned<bool>>,
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
    let idempotent = raw.idempotent.as_ref().is_some_and(|flag| *flag.get_ref());
    if let (Some(flag), Some(method)) = (&raw.idempotent, &raw.method) {
        let read = ["GET", "HEAD", "OPTIONS"];
        if idempotent && read.contains(&method.get_ref().to_ascii_uppercase().as_str()) {
            return Err((
                flag.span().start,
                format!(
                    "`idempotent = true` is for writes (POST, PUT, PATCH, DELETE); stub `{name}` \
                     answers {}, which writes nothing",
                    method.get_ref().to_ascii_uppercase()
                ),
            ));
        }
    }
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
        idempotent,
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
        let stub = match self.matching(request) {
            Ok(Some(stub)) => stub,
            Ok(None) => {
                let target = request.uri.path_and_query().map_or("/", |p| p.as_str());
                return Reply::json(
                    StatusCode::NOT_FOUND,
                    &json!({
                        "error": format!("no stub matched {} {target}", request.method),
                        "tried": self.stubs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                    }),
                );
            }
            Err(refusal) => return refusal,
        };
        if !stub.idempotent {
            return stub.reply();
        }
        let decision = self.ledger.write(self.seen(request), || Answer {
            status: stub.status,
            body: stub.body.clone(),
            id: None,
        });
        match decision {
            Decision::Created(_) => stub.reply(),
            // The stub's answer is fixed, so the first one is the stub's again.
            Decision::Replayed(_) => stub.reply().with_header("idempotent-replayed", "true"),
            Decision::Refused { key, .. } => super::error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "keys for idempotent requests can only be used with the same parameters \
                     they were first used with; key '{key}' was first used for another request"
                ),
            ),
        }
    }

    fn fault_reply(
        &self,
        request: &Request,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Reply {
        // A faulted write created nothing, but a check needs to see it was tried.
        if self.idempotent(request).is_some() {
            self.ledger
                .refused(self.seen(request), WriteOutcome::Faulted, status);
        }
        status_fault_reply(status, retry_after)
    }

    fn fallback_key(&self, request: &Request) -> Option<String> {
        self.idempotent(request)
            .map(|_| ledger::fallback_key(request))
    }
}

impl Stub {
    /// Whether the stub is a write kept in the ledger (`idempotent = true`).
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The stub's answer.
    fn reply(&self) -> Reply {
        let mut reply = Reply {
            status: self.status,
            headers: self.headers.clone(),
            body: self.body.clone(),
            usage: None,
            exchange: None,
            stream: None,
        };
        // The serving loop awaits a script's waits, so a slow stub holds no thread: the head
        // goes out at once and the body after the delay.
        if let Some(delay) = self.delay {
            let mut script = Script::default();
            script.wait(delay);
            script.send(std::mem::take(&mut reply.body));
            reply.stream = Some(Box::new(script));
        }
        reply
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
    fn a_read_cannot_be_idempotent_and_the_header_must_be_a_header() {
        let error = error_of("[[stub]]\nmethod = \"get\"\nidempotent = true\n");
        assert!(
            error.starts_with("x.toml:3:14: `idempotent = true` is for writes"),
            "{error}"
        );
        let error = error_of("idempotency_header = \"Idem Key\"\n[[stub]]\n");
        assert!(
            error.starts_with("x.toml:1:22: `Idem Key` is not"),
            "{error}"
        );
        let set = StubSet::parse("[[stub]]\nmethod = \"PUT\"\nidempotent = true\n", "x.toml");
        assert!(set.unwrap().stubs()[0].is_idempotent());
    }

    #[test]
    fn a_stub_without_a_name_is_named_by_its_position() {
        let set = StubSet::parse("[[stub]]\n[[stub]]\nname = \"b\"\n", "x.toml").unwrap();
        let names: Vec<&str> = set.stubs().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["stub 1", "b"]);
    }
}
