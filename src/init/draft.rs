//! The `faultline.toml` draft: every value init found, each with a comment saying how, and a
//! `# TODO:` for each piece it could not find, saying what to set and how to find it. The
//! shape is the agreed service profile (`[target]`, `[api]`, `[logs]`, `[metrics]`,
//! `[traces]`). Written by hand rather than serialized, for the comments; values go through
//! [`toml_string`] so any text stays valid TOML.

use std::fmt::Write as _;

use serde_json::Value;

use super::answer::Located;
use super::probe::ChatRoute;
use super::source::{self, Role, Scan};
use super::{logs, metrics, traces, Found, Probe};
use crate::evidence::{LogStream, MetricsFormat};

/// How init reached the service.
#[derive(Clone, Debug)]
pub enum Reached {
    Command {
        words: Vec<String>,
        /// The command's folder, relative to the draft's (as `cwd` is read).
        cwd: String,
        /// The folder as given, for the header.
        cwd_shown: String,
    },
    Url {
        url: String,
        /// The control API of `fakes up`, when one answered.
        fakes: Option<String>,
    },
}

/// Everything the probes found, for the writer.
#[derive(Clone, Debug)]
pub struct Findings {
    pub reached: Reached,
    /// The scanned folder as shown, and what the scan found.
    pub scan: (String, Scan),
    /// Seconds from the start until it answered HTTP (a started command).
    pub listening_after: Option<f64>,
    pub ready: Probe<String>,
    pub chat: Result<ChatRoute, String>,
    pub located: Located,
    /// A header the request id must be sent in besides `x-request-id`.
    pub id_header: Option<Found<String>>,
    pub error_pointer: Probe<String>,
    /// True when the fake LLM answered a probe request (its variables were right).
    pub llm_reached: bool,
    pub logs: Result<logs::Schema, String>,
    pub metrics: Result<(metrics::Endpoint, MetricsFormat, metrics::Proposal), String>,
    pub traces: Result<traces::Attributes, String>,
    /// The tightest limits of the built-in scenarios, for advice on timeouts and breakers:
    /// (scenario, errors.within in seconds), (scenario, recovery.fast_fail in seconds).
    pub limits: ScenarioLimits,
}

/// Limits of the built-in scenarios that a service's own settings must fit.
#[derive(Clone, Debug)]
pub struct ScenarioLimits {
    pub errors_within: (String, f64),
    pub fast_fail: (String, f64),
}

/// A draft in the making: lines, and how many TODOs and values it holds.
#[derive(Default)]
struct Out {
    text: String,
    todos: usize,
}

impl Out {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// A comment, wrapped at 98 columns.
    fn comment(&mut self, text: &str) {
        for line in wrap(text, 96) {
            self.line(format!("# {line}").trim_end());
        }
    }

    fn todo(&mut self, text: &str) {
        self.todos += 1;
        self.comment(&format!("TODO: {text}"));
    }

    /// `key = value` with the comment saying how it was found.
    fn found(&mut self, key: &str, found: &Found<String>) {
        self.comment(&found.how);
        self.line(&format!("{key} = {}", toml_string(&found.value)));
    }

    fn blank(&mut self) {
        self.line("");
    }

    /// Lines of TOML, commented out: an example to start from under a TODO.
    fn example(&mut self, lines: &[&str]) {
        for line in lines {
            self.line(&format!("# {line}"));
        }
    }
}

/// The draft's text, and how many TODOs it holds.
pub fn write(findings: &Findings) -> (String, usize) {
    let mut out = Out::default();
    header(&mut out, findings);
    target(&mut out, findings);
    env(&mut out, findings);
    api(&mut out, findings);
    log_schema(&mut out, findings);
    metrics_section(&mut out, findings);
    traces_section(&mut out, findings);
    tools(&mut out, findings);
    (out.text, out.todos)
}

fn header(out: &mut Out, findings: &Findings) {
    out.line("# faultline.toml: how faultline starts (or reaches) this service and how it speaks.");
    match &findings.reached {
        Reached::Command {
            words, cwd_shown, ..
        } => out.comment(&format!(
            "A draft `faultline init` wrote by starting `{}` in {cwd_shown} with faultline's \
             fakes as its dependencies, and probing it.",
            words.join(" ")
        )),
        Reached::Url { url, .. } => out.comment(&format!(
            "A draft `faultline init` wrote by probing the service running at {url}."
        )),
    }
    out.comment(
        "Each value says how it was found; \"a guess\" marks one found by its name alone: check \
         it. Each TODO names what init could not find, what to set and how to find it.",
    );
    out.comment(
        "Check it: faultline validate outage        Then: faultline scenario outage --quick",
    );
    out.blank();
}

fn target(out: &mut Out, findings: &Findings) {
    out.line("[target]");
    match &findings.reached {
        Reached::Command { words, cwd, .. } => {
            if words.iter().any(|w| w.contains("{port}")) {
                out.comment("{port} is the free loopback port faultline picks for each run.");
            } else {
                out.comment(
                    "No {port} in the command: faultline sets PORT (and any port variable in \
                     [target.env]) to the free loopback port it picks for each run.",
                );
            }
            let words: Vec<String> = words.iter().map(|w| toml_string(w)).collect();
            out.line(&format!("command = [{}]", words.join(", ")));
            out.line(&format!("cwd = {}", toml_string(cwd)));
        }
        Reached::Url { url, fakes } => {
            match fakes {
                Some(control) => out.comment(&format!(
                    "Attached: the service was started by hand with `faultline fakes env`'s \
                     addresses; `faultline fakes up` answered at {control}."
                )),
                None => out.todo(
                    "no `faultline fakes up` answered, so the probes could not tell which \
                     answers came from the fake LLM. Start `faultline fakes up`, restart the \
                     service with `eval \"$(faultline fakes env)\"`, and run `faultline init \
                     --url` again.",
                ),
            }
            out.line(&format!("url = {}", toml_string(url)));
        }
    }
    match &findings.ready {
        Ok(found) => out.found("ready_path", found),
        Err(why) => {
            out.todo(&format!(
                "ready_path: {why}. Give a path that answers 2xx once the service can take \
                 requests (faultline waits for it before the load)."
            ));
            out.example(&["ready_path = \"/healthz\""]);
        }
    }
    if let Some(seconds) = findings.listening_after {
        // Room for a slower, busier machine (CI); never under the parser's default.
        let timeout = ((seconds * 3.0 / 10.0).ceil() * 10.0).max(20.0);
        out.comment(&format!(
            "It answered HTTP {seconds:.1} s after it was started; this leaves room for a \
             slower machine."
        ));
        out.line(&format!("ready_timeout = \"{timeout:.0}s\""));
    }
    if let Ok(schema) = &findings.logs {
        if schema.stream == LogStream::File {
            out.todo("the logs came from a file: set log_file = \"…\" to its path.");
        }
    }
    out.blank();
}

/// One env entry of the draft: name, value, and how it was chosen.
struct EnvEntry {
    name: String,
    value: String,
    how: String,
}

fn env(out: &mut Out, findings: &Findings) {
    let (dir, scan) = &findings.scan;
    let mut entries: Vec<EnvEntry> = Vec::new();
    let mut left_default: Vec<String> = Vec::new();
    let mut todos: Vec<String> = Vec::new();
    let mut redis_left_out: Vec<String> = Vec::new();
    let command = matches!(findings.reached, Reached::Command { .. });
    let port_in_command = match &findings.reached {
        Reached::Command { words, .. } => words.iter().any(|w| w.contains("{port}")),
        Reached::Url { .. } => true,
    };
    for read in scan.reads.values() {
        let place = format!("read at {}: {}", read.at, read.how);
        let role = source::role(&read.name);
        match role {
            // faultline sets PORT on every started target; other names need it spelled out.
            Role::Port if read.name == "PORT" || port_in_command => {}
            Role::Redis if read.name == "REDIS_URL" => redis_left_out.push(format!(
                "{} ({place}) is the cache's address. It is left out on purpose: a cache \
                 answers repeated questions and would hide the LLM faults; the scenarios about \
                 the cache (baseline, redis-down) set REDIS_URL = \"{{redis}}\" themselves.",
                read.name
            )),
            Role::Redis => todos.push(format!(
                "{} ({place}) looks like the cache's address, but the scenarios about the cache \
                 (baseline, redis-down) set REDIS_URL = \"{{redis}}\". Make the service read \
                 REDIS_URL, or set {} = \"{{redis}}\" here (then every scenario runs with the \
                 cache, which may answer repeated questions during LLM faults).",
                read.name, read.name
            )),
            Role::RedisHostPort => todos.push(format!(
                "{} ({place}) gives the cache as host and port; faultline's Redis fake is a \
                 URL ({{redis}}, redis://127.0.0.1:PORT). Make the service read a URL such as \
                 REDIS_URL.",
                read.name
            )),
            Role::Timeout => todos.push(format!(
                "{} ({place}) looks like a timeout. Where an upstream hangs, the built-in \
                 scenarios want each failed request answered within {} s ({}'s \
                 errors.within), retries and their waits included: if its default, times the \
                 attempts the service makes, can exceed that, set a shorter one here.",
                read.name, findings.limits.errors_within.1, findings.limits.errors_within.0
            )),
            Role::Breaker => todos.push(format!(
                "{} ({place}) looks like a circuit breaker's cool-down. In the second half of a \
                 long outage the built-in scenarios want most failures answered in under {} s \
                 ({}'s recovery.fast_fail; with --quick the outage lasts only seconds), and \
                 answers back to normal soon after it ends. Each cool-down lets a probe request \
                 wait on the hung provider for the LLM timeout times its attempts: if that \
                 happens more than about once a second, set a shorter cool-down here.",
                read.name, findings.limits.fast_fail.1, findings.limits.fast_fail.0
            )),
            Role::OtherAddress => todos.push(format!(
                "{} ({place}) looks like the address of a dependency faultline has no fake \
                 for: set it here to one the service can use during runs (init started it \
                 with its own default).",
                read.name
            )),
            Role::Other => left_default.push(format!("{} ({})", read.name, read.at)),
            _ => {
                if let Some(value) = role.placeholder() {
                    entries.push(EnvEntry {
                        name: read.name.clone(),
                        value: value.to_string(),
                        how: place,
                    });
                }
            }
        }
    }
    let has = |entries: &[EnvEntry], roles: &[Role]| {
        entries
            .iter()
            .any(|e| roles.contains(&source::role(&e.name)))
    };
    if command && findings.llm_reached && !has(&entries, &[Role::LlmOpenAi, Role::LlmAnthropic]) {
        for (name, value) in [
            ("OPENAI_BASE_URL", "{llm}/v1"),
            ("OPENAI_API_KEY", "{llm_key}"),
        ] {
            entries.push(EnvEntry {
                name: name.into(),
                value: value.into(),
                how: "not found in the source, but the fake LLM answered the probes with \
                      faultline's usual variables set; keep the ones the service reads"
                    .into(),
            });
        }
    }
    let traced = findings.traces.is_ok();
    if command && traced && !has(&entries, &[Role::Otlp, Role::OtlpTraces]) {
        entries.push(EnvEntry {
            name: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            value: "{otlp}".into(),
            how: "not found in the source, but spans reached the OTLP collector fake with it set"
                .into(),
        });
    }
    if command && traced && !scan.reads.contains_key("OTEL_BSP_SCHEDULE_DELAY") {
        entries.push(EnvEntry {
            name: "OTEL_BSP_SCHEDULE_DELAY".into(),
            value: "200".into(),
            how: "the OpenTelemetry SDKs export a batch every 5 s by default; 200 ms gets the \
                  last requests' spans to the collector before the run reads them"
                .into(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if !command {
        // An attached service's environment is its own: say what to start it with.
        out.comment(&format!(
            "The service was started by hand; faultline cannot set its environment. Start it \
             with `faultline fakes env`'s variables{}.",
            if entries.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = entries
                    .iter()
                    .map(|e| format!("{} = {}", e.name, e.value))
                    .collect();
                format!(", and these, which it reads: {}", names.join(", "))
            }
        ));
        for todo in &todos {
            out.todo(todo);
        }
        out.blank();
        return;
    }
    out.line("[target.env]");
    let limits = if scan.limits.is_empty() {
        String::new()
    } else {
        format!(" ({})", scan.limits.join("; "))
    };
    out.comment(&format!(
        "The fakes' addresses, under the names the service reads: {} source file(s) under {dir} \
         scanned for the environment variables they read{limits}.",
        scan.files_read
    ));
    if entries.is_empty() {
        out.todo(
            "no variable that looks like a dependency's address was found in the source. Set \
             the ones the service reads: {llm}/v1 (OpenAI-style base URL), {llm_key}, \
             {tool.weather}, {tool.tickets}, {redis}, {otlp}.",
        );
    }
    for entry in &entries {
        out.comment(&entry.how);
        out.line(&format!(
            "{} = {}",
            bare_key(&entry.name),
            toml_string(&entry.value)
        ));
    }
    for why in &redis_left_out {
        out.comment(why);
        out.example(&["REDIS_URL = \"{redis}\""]);
    }
    if !left_default.is_empty() {
        out.comment(&format!(
            "Also read, left to their defaults (set any here): {}.",
            left_default.join(", ")
        ));
    }
    for todo in &todos {
        out.todo(todo);
    }
    out.blank();
}

fn api(out: &mut Out, findings: &Findings) {
    out.line("[api]");
    if let Some(found) = &findings.id_header {
        out.comment(&found.how);
        out.line(&format!(
            "headers = {{ {} = \"{{request_id}}\" }}",
            bare_key(&found.value)
        ));
    }
    let located = &findings.located;
    // Pointers read a JSON answer: a stream's are not looked for.
    let chat_found = findings.chat.as_ref().is_ok_and(|route| !route.streams);
    match (&located.request_id_header, &located.request_id_pointer) {
        (None, None) if chat_found => {
            let own = located
                .own_id_header
                .as_ref()
                .map(|h| format!(" (its {h} header held an id of its own)"))
                .unwrap_or_default();
            out.todo(&format!(
                "the answer carried the x-request-id faultline sent neither in a header nor in \
                 its JSON{own}. errors.honest wants every answer, errors included, to carry the \
                 id the client sent: echo it, then set request_id_header or request_id_pointer."
            ));
        }
        (header, pointer) => {
            match header {
                Some(found) => out.found("request_id_header", found),
                None if chat_found => {
                    out.comment("no answer header held the x-request-id faultline sent");
                    out.line("request_id_header = \"\"");
                }
                None => {}
            }
            match pointer {
                Some(found) => out.found("request_id_pointer", found),
                None if chat_found => {
                    out.comment("the JSON answer did not hold the request id; the header does");
                    out.line("request_id_pointer = \"\"");
                }
                None => {}
            }
        }
    }
    if chat_found {
        pointer_or_todo(
            out,
            "answer_pointer",
            &located.answer_pointer,
            "no text in the answer looked like the LLM's answer: point at it (e.g. \"/answer\")",
        );
        pointer_or_todo(
            out,
            "degraded_pointer",
            &located.degraded_pointer,
            "no field of a healthy answer was named like a degraded marker (degraded, \
             fallback, partial, banner, notice, warning). fallback.tool and fallback.redis read it: point at a \
             boolean, or a banner that is non-empty when the service answers without a tool or \
             its cache (\"\" says it has none)",
        );
        match &located.cache_hit_pointer {
            Some(found) => out.found("cache_hit_pointer", found),
            None => {
                out.comment("no field of the answer was named like a cache hit (cacheHit, cached)");
                out.line("cache_hit_pointer = \"\"");
            }
        }
        match &findings.error_pointer {
            Ok(found) => out.found("error_pointer", found),
            Err(why) => {
                out.todo(&format!(
                    "error_pointer: {why}. Point at the sentence users read in an error answer \
                     (errors.honest reads it; \"\" falls back to error, message, error.message)."
                ));
                out.line("error_pointer = \"\"");
            }
        }
    }
    out.blank();
    if let Some(route) = findings.chat.as_ref().ok().filter(|route| route.streams) {
        out.line("[api.stream]");
        request_shape(out, route);
        out.blank();
    }
    out.line("[api.chat]");
    match &findings.chat {
        Ok(route) if !route.streams => request_shape(out, route),
        Ok(route) => out.todo(&format!(
            "POST {} answers with a stream, described in [api.stream] above. Chat flows, which \
             most built-in scenarios send, read one JSON answer: if the service has a route \
             that answers JSON, give it here (method, path, a body with \"{{message}}\").",
            route.path
        )),
        Err(why) => {
            out.todo(&format!(
                "the chat route: {why}. Set the method, path and a JSON body with \"{{message}}\" \
                 where the question goes."
            ));
            out.example(&[
                "method = \"POST\"",
                "path = \"/api/chat\"",
                "body = { message = \"{message}\" }",
            ]);
        }
    }
    out.blank();
}

fn request_shape(out: &mut Out, route: &ChatRoute) {
    out.comment(&route.how);
    out.line("method = \"POST\"");
    out.line(&format!("path = {}", toml_string(&route.path)));
    out.line(&format!("body = {}", toml_inline(&route.body)));
}

fn pointer_or_todo(out: &mut Out, key: &str, found: &Option<Found<String>>, todo: &str) {
    match found {
        Some(found) => out.found(key, found),
        None => {
            out.todo(&format!("{key}: {todo}."));
            out.line(&format!("{key} = \"\""));
        }
    }
}

fn log_schema(out: &mut Out, findings: &Findings) {
    let schema = match &findings.logs {
        Ok(schema) => schema,
        Err(why) => {
            out.todo(&format!(
                "[logs]: {why}. If the service writes JSON lines, name their fields (a dotted \
                 path reaches into objects); `file = \"…\"` reads a log file instead of its \
                 output."
            ));
            out.example(&[
                "[logs]",
                "request_id_field = \"requestId\"",
                "input_tokens_field = \"inputTokens\"",
                "output_tokens_field = \"outputTokens\"",
            ]);
            out.blank();
            return;
        }
    };
    out.line("[logs]");
    let stream = match schema.stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
        LogStream::File => "its log file",
    };
    out.comment(&format!(
        "From the line the probe request left on {stream}: {}",
        schema.example
    ));
    out.found("request_id_field", &schema.request_id_field);
    for (key, field) in [
        ("input_tokens_field", &schema.input_tokens_field),
        ("output_tokens_field", &schema.output_tokens_field),
    ] {
        match field {
            Ok(found) => out.found(key, found),
            Err(why) => out.todo(&format!(
                "{key}: {why}. logs.tokens compares the tokens each line reports with the \
                 provider's usage: name the field that holds them."
            )),
        }
    }
    for (key, field) in [
        ("level_field", &schema.level_field),
        ("message_field", &schema.message_field),
    ] {
        match field {
            Ok(found) => out.found(key, found),
            Err(why) => out.comment(&format!("{key} (optional) left out: {why}")),
        }
    }
    out.blank();
}

fn metrics_section(out: &mut Out, findings: &Findings) {
    let (endpoint, format, proposal) = match &findings.metrics {
        Ok(found) => found,
        Err(why) => {
            out.todo(&format!(
                "[metrics]: no metrics endpoint answered ({why}). If the service serves its \
                 metrics, give the path and a selector per figure; without them metrics.truth \
                 is not applicable."
            ));
            out.example(&["[metrics]", "path = \"/metrics\"", "llm_errors = \"\""]);
            out.blank();
            return;
        }
    };
    out.line("[metrics]");
    out.comment(&endpoint.how);
    out.line(&format!("path = {}", toml_string(&endpoint.path)));
    out.line(&format!(
        "format = \"{}\"",
        match format {
            MetricsFormat::Prometheus => "prometheus",
            MetricsFormat::Json => "json",
        }
    ));
    out.comment(match format {
        MetricsFormat::Prometheus => {
            "Each figure is a series selector (the matching series are summed); \"\" says the \
             service has no such figure."
        }
        MetricsFormat::Json => {
            "Each figure is a JSON pointer into the answer; \"\" says the service has no such \
             figure."
        }
    });
    match (&proposal.llm_errors, &proposal.llm_errors_counts) {
        (Ok(selector), counts) => {
            out.comment(&selector.how);
            let counts = counts.clone().unwrap_or_else(|| {
                Found::guess(
                    metrics::Counts::Calls,
                    "a guess: calls that still failed after the SDK's retries, the usual \
                     instrumentation"
                        .into(),
                )
            });
            out.comment(&format!(
                "counts = \"{}\": {}",
                counts.value.as_str(),
                counts.how
            ));
            out.line(&format!(
                "llm_errors = {{ selector = {}, counts = \"{}\" }}",
                toml_string(&selector.value),
                counts.value.as_str()
            ));
        }
        (Err(why), _) => figure_todo(out, "llm_errors", why),
    }
    for (key, figure) in [
        ("tokens_input", &proposal.tokens_input),
        ("tokens_output", &proposal.tokens_output),
        ("cache_hit_ratio", &proposal.cache_hit_ratio),
        ("agent_steps", &proposal.agent_steps),
    ] {
        match figure {
            Ok(found) => out.found(key, found),
            Err(why) => figure_todo(out, key, why),
        }
    }
    out.blank();
}

fn figure_todo(out: &mut Out, key: &str, why: &str) {
    out.todo(&format!(
        "{key}: {why}. If the service has this figure, put its selector here; \"\" leaves it \
         out of metrics.truth."
    ));
    out.line(&format!("{key} = \"\""));
}

fn traces_section(out: &mut Out, findings: &Findings) {
    let attributes = match &findings.traces {
        Ok(attributes) => attributes,
        Err(why) => {
            out.todo(&format!(
                "[traces]: {why}. If the service exports traces over OTLP/HTTP, give \
                 OTEL_EXPORTER_OTLP_ENDPOINT = \"{{otlp}}\" in [target.env] and name the span \
                 attributes; without spans traces.per_request is not applicable."
            ));
            out.example(&[
                "[traces]",
                "request_id_attribute = \"request.id\"",
                "llm_span_attribute = \"gen_ai.operation.name\"",
            ]);
            out.blank();
            return;
        }
    };
    out.line("[traces]");
    out.found("request_id_attribute", &attributes.request_id_attribute);
    match &attributes.llm_span_attribute {
        Ok(found) => out.found("llm_span_attribute", found),
        Err(why) => out.todo(&format!("llm_span_attribute: {why}.")),
    }
    out.blank();
}

fn tools(out: &mut Out, findings: &Findings) {
    let tickets = findings
        .scan
        .1
        .reads
        .values()
        .find(|read| source::role(&read.name) == Role::Tickets);
    if let Some(read) = tickets {
        out.todo(&format!(
            "the service reads {} ({}), a tickets tool's address. init does not probe writes \
             (they have side effects): if it writes tickets, describe the write route in \
             [api.write] and the tool's shape in [tools.tickets] (path, required, \
             idempotency_header).",
            read.name, read.at
        ));
        out.example(&[
            "[tools.tickets]",
            "path = \"/tickets\"",
            "required = [\"subject\"]",
            "idempotency_header = \"Idempotency-Key\"",
        ]);
    }
}

/// A TOML string: literal ('…') when the text has double quotes and no single ones, else
/// basic ("…") with escapes.
pub fn toml_string(text: &str) -> String {
    let plain = !text.chars().any(|c| c.is_control());
    if plain && text.contains('"') && !text.contains('\'') {
        return format!("'{text}'");
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key, quoted when it is not a bare TOML key.
fn bare_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        toml_string(key)
    }
}

/// A JSON value as a TOML inline value (a body template). Null has no TOML form: written as
/// an empty string.
pub fn toml_inline(value: &Value) -> String {
    match value {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            if fields.is_empty() {
                return "{}".into();
            }
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{} = {}", bare_key(k), toml_inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

/// Splits text into lines of at most `width` characters at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_bodies_stay_valid_toml() {
        for text in [
            "plain",
            "a \"quoted\" one",
            "both ' and \"",
            "back\\slash",
            "line\nbreak",
            "\u{7}",
        ] {
            let doc = format!("v = {}", toml_string(text));
            let parsed: toml::Table = toml::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(parsed["v"].as_str(), Some(text));
        }
        let body = json!({"messages": [{"role": "user", "content": "{message}"}], "n": 1, "odd key": true});
        let doc = format!("body = {}", toml_inline(&body));
        let parsed: toml::Table = toml::from_str(&doc).unwrap();
        let back: Value = serde_json::to_value(&parsed["body"]).unwrap();
        assert_eq!(back, body);
    }

    fn nothing_found() -> Findings {
        Findings {
            reached: Reached::Command {
                words: vec!["node".into(), "server.js".into()],
                cwd: ".".into(),
                cwd_shown: ".".into(),
            },
            scan: (".".into(), Scan::default()),
            listening_after: Some(1.0),
            ready: Err("no 2xx from GET /healthz: 404".into()),
            chat: Err("no POST route answered 2xx".into()),
            located: Located::default(),
            id_header: None,
            error_pointer: Err("no chat route".into()),
            llm_reached: false,
            logs: Err("no line".into()),
            metrics: Err("GET /metrics: 404".into()),
            traces: Err("no span".into()),
            limits: ScenarioLimits {
                errors_within: ("llm-timeout".into(), 6.0),
                fast_fail: ("outage".into(), 1.0),
            },
        }
    }

    #[test]
    fn a_draft_with_nothing_found_names_each_gap_and_still_parses() {
        let (text, todos) = write(&nothing_found());
        for gap in [
            "ready_path",
            "the chat route",
            "[logs]",
            "[metrics]",
            "[traces]",
            "no variable",
        ] {
            assert!(
                text.contains(&format!("# TODO: {gap}")),
                "no TODO for {gap}:\n{text}"
            );
        }
        assert_eq!(todos, 6, "{text}");
        let config = crate::scenario::parse_config(&text, "draft.toml", std::path::Path::new("."))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let target = config.target.unwrap();
        assert_eq!(target.command.unwrap(), ["node", "server.js"]);
        // Left to the parser's defaults, which the TODOs say to change.
        assert_eq!(target.ready_path, "/healthz");
        assert_eq!(target.ready_timeout, std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_route_that_streams_is_described_as_a_stream_with_a_todo_for_chat() {
        let mut findings = nothing_found();
        findings.chat = Ok(ChatRoute {
            path: "/v1/chat".into(),
            body: serde_json::json!({"prompt": "{message}"}),
            how: "POST /v1/chat answered 200 as a stream".into(),
            confirmed: true,
            streams: true,
            id_header: None,
            echoed: true,
            own_id_headers: Vec::new(),
        });
        let (text, _) = write(&findings);
        assert!(text.contains("[api.stream]\n# POST /v1/chat answered 200 as a stream\nmethod = \"POST\"\npath = \"/v1/chat\""), "{text}");
        assert!(
            text.contains("# TODO: POST /v1/chat answers with a stream"),
            "{text}"
        );
        let config = crate::scenario::parse_config(&text, "draft.toml", std::path::Path::new("."))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let api = config.api.unwrap();
        assert_eq!(api.stream.path, "/v1/chat");
        assert_eq!(api.stream.body, serde_json::json!({"prompt": "{message}"}));
    }

    #[test]
    fn comments_wrap_at_word_boundaries() {
        let lines = wrap("aaa bbb ccc", 7);
        assert_eq!(lines, ["aaa bbb", "ccc"]);
        assert_eq!(wrap("x", 7), ["x"]);
    }
}
