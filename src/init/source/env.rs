//! Which environment variables a service reads: `os.environ["X"]`, `process.env.X`,
//! `std::env::var("X")`, `os.Getenv("X")`, `System.getenv("X")`, `ENV["X"]`, `getenv("X")`,
//! clap's `env = "X"`, `.env.example` files, calls of the service's own config helpers
//! (`number("CHAT_DEADLINE_MS", 5000)`), and the variables the official SDKs read by themselves
//! when the source imports them (`OPENAI_BASE_URL` for `import openai`). [`role`] then sorts
//! each name into the fake it should point at.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

/// Files that list a service's variables by name (`NAME=value` lines).
pub(super) const ENV_EXAMPLE_FILES: &[&str] = &[
    ".env.example",
    ".env.sample",
    ".env.template",
    ".env.dist",
    "example.env",
    "sample.env",
];

/// One variable the service reads, with the first place that says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvRead {
    pub name: String,
    /// `app.py:40`, relative to the scanned folder.
    pub at: String,
    /// How it is read: `os.environ.get`, `process.env`, `the openai SDK reads it itself`…
    pub how: String,
}

/// The fake (or the port) a variable's value should come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An OpenAI-style base URL (`…/v1`).
    LlmOpenAi,
    /// An Anthropic-style base URL (no `/v1`: the SDK adds it).
    LlmAnthropic,
    LlmKey,
    Redis,
    /// The cache as host and port, which no placeholder gives.
    RedisHostPort,
    Weather,
    Tickets,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base.
    Otlp,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full traces URL.
    OtlpTraces,
    Port,
    /// A timeout (the scenarios' limits bound how long a failure may take).
    Timeout,
    /// A circuit breaker's setting (the recovery checks time the cool-down).
    Breaker,
    /// An address with no fake behind it (a database, another API).
    OtherAddress,
    Other,
}

impl Role {
    /// The placeholder value for the variable, when a fake stands behind it.
    pub fn placeholder(self) -> Option<&'static str> {
        Some(match self {
            Role::LlmOpenAi => "{llm}/v1",
            Role::LlmAnthropic => "{llm}",
            Role::LlmKey => "{llm_key}",
            Role::Redis => "{redis}",
            Role::Weather => "{tool.weather}",
            Role::Tickets => "{tool.tickets}",
            Role::Otlp => "{otlp}",
            Role::OtlpTraces => "{otlp}/v1/traces",
            Role::Port => "{port}",
            _ => return None,
        })
    }
}

/// Sorts a variable by its name into the dependency it most likely addresses.
pub fn role(name: &str) -> Role {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper.split('_').filter(|w| !w.is_empty()).collect();
    let has = |w: &str| words.contains(&w);
    let any = |ws: &[&str]| ws.iter().any(|w| has(w));
    match upper.as_str() {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => return Role::Otlp,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => return Role::OtlpTraces,
        "PORT" => return Role::Port,
        _ => {}
    }
    if words.first() == Some(&"OTEL") {
        return Role::Other;
    }
    let address = any(&[
        "URL", "URI", "BASE", "ENDPOINT", "HOST", "ADDR", "ADDRESS", "DSN", "SERVER",
    ]);
    let key = any(&["KEY", "TOKEN", "SECRET"]);
    let anthropic = any(&["ANTHROPIC", "CLAUDE"]);
    let llm = anthropic
        || any(&[
            "OPENAI",
            "LLM",
            "GPT",
            "AI",
            "GROQ",
            "MISTRAL",
            "OLLAMA",
            "MODEL",
            "COMPLETION",
            "COMPLETIONS",
            "GENAI",
            "INFERENCE",
        ]);
    if any(&["TIMEOUT", "TIMEOUTS"]) {
        return Role::Timeout;
    }
    // A breaker's cool-down (how long it stays open), not its threshold.
    let breaker = any(&["CIRCUIT", "BREAKER"]);
    let span = any(&[
        "RESET", "OPEN", "WAIT", "DURATION", "DELAY", "MS", "S", "SEC", "SECS", "SECONDS",
    ]);
    if any(&["COOLDOWN"]) || (breaker && span) {
        return Role::Breaker;
    }
    if any(&["REDIS", "VALKEY", "CACHE"]) {
        if has("PORT") || (has("HOST") && !any(&["URL", "URI"])) {
            return Role::RedisHostPort;
        }
        if address {
            return Role::Redis;
        }
        return Role::Other;
    }
    if *words.last().unwrap_or(&"") == "PORT" {
        let listens = words[..words.len() - 1]
            .iter()
            .all(|w| ["HTTP", "SERVER", "APP", "LISTEN", "SERVICE", "WEB", "API"].contains(w));
        return if listens { Role::Port } else { Role::Other };
    }
    if llm && key && !address {
        return Role::LlmKey;
    }
    if llm && address {
        return if anthropic {
            Role::LlmAnthropic
        } else {
            Role::LlmOpenAi
        };
    }
    if any(&["WEATHER", "FORECAST"]) && address {
        return Role::Weather;
    }
    if any(&["TICKET", "TICKETS", "HELPDESK", "SUPPORT"]) && address {
        return Role::Tickets;
    }
    if address && !key {
        return Role::OtherAddress;
    }
    Role::Other
}

/// `(pattern, how)`: each pattern's first group is the variable's name.
static READERS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    const NAME: &str = r"([A-Za-z_][A-Za-z0-9_]*)";
    let q = r#"["'`]"#;
    [
        (format!(r"os\.environ\s*\[\s*{q}{NAME}{q}"), "os.environ"),
        (
            format!(r"environ\.(?:get|setdefault|pop)\(\s*{q}{NAME}{q}"),
            "os.environ.get",
        ),
        (format!(r"os\.getenv\(\s*{q}{NAME}{q}"), "os.getenv"),
        (format!(r"process\.env\.{NAME}"), "process.env"),
        (
            format!(r"process\.env\[\s*{q}{NAME}{q}\s*\]"),
            "process.env",
        ),
        (format!(r"import\.meta\.env\.{NAME}"), "import.meta.env"),
        (
            format!(r"(?:Deno|Bun)\.env(?:\.get\(\s*{q})?\.?{NAME}"),
            "Deno/Bun env",
        ),
        (format!(r#"env::var(?:_os)?\(\s*"{NAME}""#), "std::env::var"),
        (format!(r#"(?:option_)?env!\(\s*"{NAME}""#), "env!"),
        (format!(r#"dotenvy?::var\(\s*"{NAME}""#), "dotenvy::var"),
        (format!(r#"\benv\s*=\s*"{NAME}""#), "clap's env"),
        (format!(r#"(?:Getenv|LookupEnv)\(\s*"{NAME}""#), "os.Getenv"),
        (format!(r#"System\.getenv\(\s*"{NAME}""#), "System.getenv"),
        (
            format!(r#"GetEnvironmentVariable\(\s*"{NAME}""#),
            "Environment.GetEnvironmentVariable",
        ),
        (format!(r"\bENV(?:\.fetch\(\s*|\[\s*){q}{NAME}{q}"), "ENV"),
        (format!(r#"\bgetenv\(\s*{q}{NAME}{q}"#), "getenv"),
    ]
    .into_iter()
    .map(|(pattern, how)| (Regex::new(&pattern).expect("a valid pattern"), how))
    .collect()
});

/// `const { A, B: b, C = "x" } = process.env`: names read by destructuring.
static DESTRUCTURED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\{([^{}]{1,2000})\}\s*=\s*process\.env\b").expect("a valid pattern")
});

/// `NAME=value` lines of an `.env.example` file.
static ENV_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=").expect("a valid pattern")
});

/// SDKs that read variables by themselves: `(import pattern, SDK, variables)`.
static SDKS: LazyLock<Vec<(Regex, &'static str, &'static [&'static str])>> = LazyLock::new(|| {
    let openai = &["OPENAI_BASE_URL", "OPENAI_API_KEY"][..];
    let anthropic = &["ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"][..];
    let otlp = &["OTEL_EXPORTER_OTLP_ENDPOINT"][..];
    [
        (
            r#"(?m)^\s*(?:import\s+openai\b|from\s+openai\b)|from\s+["']openai["']|require\(\s*["']openai["']\s*\)|"github\.com/openai/openai-go"#,
            "the openai SDK",
            openai,
        ),
        (
            r#"(?m)^\s*(?:import\s+anthropic\b|from\s+anthropic\b)|["']@anthropic-ai/sdk["']|"github\.com/anthropics/anthropic-sdk-go"#,
            "the anthropic SDK",
            anthropic,
        ),
        (r"\basync_openai::", "async-openai", openai),
        (
            r#"opentelemetry\.exporter\.otlp|["']@opentelemetry/exporter-trace-otlp-(?:http|proto|grpc)["']|\bopentelemetry_otlp::|otlptracehttp"#,
            "the OpenTelemetry OTLP exporter",
            otlp,
        ),
    ]
    .into_iter()
    .map(|(pattern, sdk, vars)| (Regex::new(pattern).expect("a valid pattern"), sdk, vars))
    .collect()
});

/// Function definitions with their first parameter: JavaScript/TypeScript (`function f(name`,
/// `const f = (name`), Rust (`fn f(name:`), Python (`def f(name`), Go (`func f(name string`).
static DEFINITIONS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:function\s+(\w+)\s*\(\s*(\w+))",
        r"|(?:(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s*)?\(\s*(\w+))",
        r"|(?:fn\s+(\w+)\s*(?:<[^>]*>)?\(\s*(\w+)\s*:)",
        r"|(?:def\s+(\w+)\s*\(\s*(\w+))",
        r"|(?:func\s+(\w+)\s*\(\s*(\w+)\s+string)",
    ))
    .expect("a valid pattern")
});

/// How far into a function's body its environment read is looked for.
const HELPER_BODY: usize = 400;

/// Functions that read the variable their first parameter names (`function number(name) {
/// … process.env[name] …`), or pass it on to one that does (`fn millis(name) { … var(name) …
/// }`): a service's config helpers, whose calls name its variables.
pub(super) fn env_helpers<'a>(texts: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
    let mut helpers: Vec<String> = Vec::new();
    // A helper may call a helper: a few rounds find chains of them.
    for _ in 0..3 {
        let before = helpers.len();
        for text in texts.clone() {
            for found in DEFINITIONS.captures_iter(text) {
                let (Some(name), Some(param)) = (
                    (1..=9).step_by(2).find_map(|g| found.get(g)),
                    (2..=10).step_by(2).find_map(|g| found.get(g)),
                ) else {
                    continue;
                };
                if helpers.iter().any(|h| h == name.as_str()) {
                    continue;
                }
                let start = found.get(0).expect("group 0").end();
                let mut end = (start + HELPER_BODY).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let body = &text[start..end];
                let param = regex::escape(param.as_str());
                let mut readers = vec![
                    format!(r"process\.env\[\s*{param}\s*\]"),
                    format!(r"env::var(?:_os)?\(\s*&?{param}\s*\)"),
                    format!(r"environ(?:\.get)?\s*[\[(]\s*{param}\b"),
                    format!(r"(?i:getenv)\(\s*{param}\b"),
                    format!(r"\bENV(?:\.fetch\(\s*|\[\s*){param}\b"),
                ];
                for helper in &helpers {
                    readers.push(format!(r"\b{}\(\s*&?{param}\b", regex::escape(helper)));
                }
                let reads = Regex::new(&readers.join("|")).is_ok_and(|r| r.is_match(body));
                if reads {
                    helpers.push(name.as_str().to_string());
                }
            }
        }
        if helpers.len() == before {
            break;
        }
    }
    helpers
}

/// Calls of the service's env helpers with a variable's name: `number("CHAT_DEADLINE_MS", 5000)`.
pub(super) fn read_helper_calls(
    shown: &str,
    text: &str,
    helpers: &[String],
    reads: &mut BTreeMap<String, EnvRead>,
) {
    if helpers.is_empty() {
        return;
    }
    let names: Vec<String> = helpers.iter().map(|h| regex::escape(h)).collect();
    let Ok(calls) = Regex::new(&format!(
        r#"\b({})\(\s*["'`]([A-Z][A-Z0-9_]*)["'`]"#,
        names.join("|")
    )) else {
        return;
    };
    for found in calls.captures_iter(text) {
        let helper = found.get(1).expect("group 1").as_str();
        let name = found.get(2).expect("group 2");
        reads
            .entry(name.as_str().to_string())
            .or_insert_with(|| EnvRead {
                name: name.as_str().to_string(),
                at: format!("{shown}:{}", text[..name.start()].matches('\n').count() + 1),
                how: format!("{helper}(), which reads the environment"),
            });
    }
}

/// Adds what one file reads to `reads` (the first place a name is read wins).
pub(super) fn read_file(
    shown: &str,
    path: &Path,
    text: &str,
    reads: &mut BTreeMap<String, EnvRead>,
) {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut add = |name: &str, offset: usize, how: String| {
        reads.entry(name.to_string()).or_insert_with(|| EnvRead {
            name: name.to_string(),
            at: format!("{shown}:{}", line_of(offset)),
            how,
        });
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if ENV_EXAMPLE_FILES.contains(&file_name.as_str()) {
        for found in ENV_LINE.captures_iter(text) {
            let name = found.get(1).expect("group 1");
            add(
                name.as_str(),
                name.start(),
                format!("listed in {file_name}"),
            );
        }
        return;
    }
    for (pattern, how) in READERS.iter() {
        for found in pattern.captures_iter(text) {
            let name = found.get(1).expect("group 1");
            add(name.as_str(), name.start(), how.to_string());
        }
    }
    for found in DESTRUCTURED.captures_iter(text) {
        let list = found.get(1).expect("group 1");
        for part in list.as_str().split(',') {
            let name = part.split([':', '=']).next().unwrap_or("").trim();
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                add(name, list.start(), "process.env".into());
            }
        }
    }
    for (pattern, sdk, vars) in SDKS.iter() {
        if let Some(found) = pattern.find(text) {
            for var in *vars {
                add(var, found.start(), format!("{sdk} reads it itself"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads_of(file: &str, text: &str) -> BTreeMap<String, EnvRead> {
        let mut reads = BTreeMap::new();
        read_file(file, Path::new(file), text, &mut reads);
        reads
    }

    #[test]
    fn reads_in_each_language_are_found_with_their_line() {
        let python = "import os\nurl = os.environ['LLM_URL']\nkey = os.environ.get(\"LLM_KEY\", '')\nt = os.getenv('TIMEOUT_S')\n";
        let reads = reads_of("app.py", python);
        assert_eq!(reads["LLM_URL"].at, "app.py:2");
        assert_eq!(reads["LLM_KEY"].how, "os.environ.get");
        assert_eq!(reads["TIMEOUT_S"].at, "app.py:4");

        let node = "const port = process.env.PORT;\nconst u = process.env['REDIS_URL'];\nconst { TICKETS_API_URL, MODEL: model = 'x' } = process.env;\n";
        let reads = reads_of("server.ts", node);
        assert!(["PORT", "REDIS_URL", "TICKETS_API_URL", "MODEL"]
            .iter()
            .all(|n| reads.contains_key(*n)));

        let rust = "let u = std::env::var(\"OPENAI_BASE_URL\")?;\n#[arg(long, env = \"APP_PORT\")]\nlet k = env::var_os(\"X_KEY\");";
        let reads = reads_of("main.rs", rust);
        assert!(["OPENAI_BASE_URL", "APP_PORT", "X_KEY"]
            .iter()
            .all(|n| reads.contains_key(*n)));

        let go = "addr := os.Getenv(\"WEATHER_URL\")";
        assert!(reads_of("main.go", go).contains_key("WEATHER_URL"));
        let ruby = "ENV.fetch('CACHE_URL')\nENV[\"X\"]";
        let reads = reads_of("app.rb", ruby);
        assert!(reads.contains_key("CACHE_URL") && reads.contains_key("X"));
    }

    #[test]
    fn calls_of_the_services_own_env_helpers_name_its_variables() {
        let ts = "function number(name: string, fallback: number): number {\n  const raw = process.env[name];\n  return raw ? Number(raw) : fallback;\n}\nexport const c = { a: number(\"CHAT_DEADLINE_MS\", 5000), b: number(\"PORT\", 3000) };\nconst x = other(\"NOT_ENV\");\n";
        let rust = "fn var(name: &str) -> Option<String> {\n    std::env::var(name).ok()\n}\nfn millis(name: &str, d: u64) -> u64 {\n    match var(name) { _ => d }\n}\nlet r = var(\"REDIS_URL\");\nlet t = millis(\"ASKBOT_LLM_TIMEOUT_MS\", 4000);\n";
        let py = "def setting(key, default=None):\n    return os.environ.get(key, default)\n\nTIMEOUT = setting('LLM_TIMEOUT_S', '4')\n";
        let helpers = env_helpers([ts, rust, py].into_iter());
        assert_eq!(helpers, ["number", "var", "millis", "setting"]);
        let mut reads = BTreeMap::new();
        for (file, text) in [("config.ts", ts), ("config.rs", rust), ("app.py", py)] {
            read_helper_calls(file, text, &helpers, &mut reads);
        }
        let names: Vec<&str> = reads.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "ASKBOT_LLM_TIMEOUT_MS",
                "CHAT_DEADLINE_MS",
                "LLM_TIMEOUT_S",
                "PORT",
                "REDIS_URL"
            ]
        );
        assert_eq!(reads["CHAT_DEADLINE_MS"].at, "config.ts:5");
        assert_eq!(
            reads["ASKBOT_LLM_TIMEOUT_MS"].how,
            "millis(), which reads the environment"
        );
    }

    #[test]
    fn an_imported_sdk_reads_its_own_variables() {
        let reads = reads_of("app.py", "import os\nimport openai\n");
        assert_eq!(
            reads["OPENAI_BASE_URL"].how,
            "the openai SDK reads it itself"
        );
        assert_eq!(reads["OPENAI_API_KEY"].at, "app.py:2");
        let reads = reads_of("s.ts", "import OpenAI from \"openai\";\n");
        assert!(reads.contains_key("OPENAI_BASE_URL"));
        // A word in a comment or a longer module name is not an import.
        assert!(reads_of("a.py", "# uses openai\nimport openai_helpers\n").is_empty());
    }

    #[test]
    fn names_are_sorted_into_the_fake_they_address() {
        for (name, expected) in [
            ("OPENAI_BASE_URL", Role::LlmOpenAi),
            ("LLM_API_BASE", Role::LlmOpenAi),
            ("ANTHROPIC_BASE_URL", Role::LlmAnthropic),
            ("OPENAI_API_KEY", Role::LlmKey),
            ("ASSISTANT_LLM_TOKEN", Role::LlmKey),
            ("REDIS_URL", Role::Redis),
            ("CACHE_URL", Role::Redis),
            ("REDIS_HOST", Role::RedisHostPort),
            ("REDIS_PORT", Role::RedisHostPort),
            ("WEATHER_API_URL", Role::Weather),
            ("TICKETS_API_URL", Role::Tickets),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", Role::Otlp),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Role::OtlpTraces),
            ("OTEL_SERVICE_NAME", Role::Other),
            ("PORT", Role::Port),
            ("HTTP_PORT", Role::Port),
            ("DB_PORT", Role::Other),
            ("LLM_TIMEOUT_S", Role::Timeout),
            ("CIRCUIT_COOLDOWN_S", Role::Breaker),
            ("BREAKER_RESET_MS", Role::Breaker),
            ("BREAKER_THRESHOLD", Role::Other),
            ("DATABASE_URL", Role::OtherAddress),
            ("LLM_MODEL", Role::Other),
            ("STRIPE_SECRET_KEY", Role::Other),
        ] {
            assert_eq!(role(name), expected, "{name}");
        }
    }
}
