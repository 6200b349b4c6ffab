//! What a service's source says about it, before it runs:
//! - which environment variables it reads: `os.environ["X"]`, `process.env.X`,
//!   `std::env::var("X")`, `os.Getenv("X")`, `System.getenv("X")`, `ENV["X"]`, `getenv("X")`,
//!   clap's `env = "X"`, `.env.example` files; and the variables the official SDKs read by
//!   themselves when the source imports them (`OPENAI_BASE_URL` for `import openai`);
//! - which POST routes it declares (`@app.post("/v1/chat")`, `app.post('/chat', …)`,
//!   `.route("/chat", post(…))`), the first places to look for its chat route.
//!
//! The walk is bounded (depth, files, bytes) and never follows symlinks or enters dependency
//! folders (`node_modules`, virtualenvs, `target`): a service's own code is small, and a scan
//! must not crawl a disk. [`role`] then sorts each name into the fake it should point at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

/// Folders deeper than this are not entered.
const MAX_DEPTH: usize = 10;
/// Directory entries looked at, in all.
const MAX_ENTRIES: usize = 20_000;
/// Source files read, in all.
const MAX_FILES: usize = 2_000;
/// A file larger than this is skipped (generated or bundled code).
const MAX_FILE_BYTES: u64 = 512 * 1024;
/// Bytes read, in all.
const MAX_TOTAL_BYTES: u64 = 16 * 1024 * 1024;

/// Folders that hold dependencies, build output or tests, not the service's own code.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "target",
    "__pycache__",
    "venv",
    "site-packages",
    "dist",
    "build",
    "vendor",
    "coverage",
    "tests",
    "test",
    "__tests__",
    "spec",
];

/// Extensions of source files worth reading.
const SOURCE_EXTENSIONS: &[&str] = &[
    "py", "js", "mjs", "cjs", "ts", "mts", "cts", "tsx", "jsx", "rs", "go", "java", "kt", "rb",
    "php", "cs", "c", "cc", "cpp", "h", "ex", "exs", "scala", "swift",
];

/// Files that list a service's variables by name (`NAME=value` lines).
const ENV_EXAMPLE_FILES: &[&str] = &[
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

/// A POST route the source declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRead {
    pub path: String,
    pub at: String,
}

/// What a scan found, and how far it looked.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// By name; the first place each is read.
    pub reads: BTreeMap<String, EnvRead>,
    /// POST routes without path parameters, in the order found.
    pub routes: Vec<RouteRead>,
    pub files_read: usize,
    /// Why the scan stopped early or skipped files, if it did.
    pub limits: Vec<String>,
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
    if any(&["CIRCUIT", "BREAKER", "COOLDOWN"]) {
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
        (r"\basync_openai::", "async-openai", &["OPENAI_API_KEY"][..]),
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

/// Scans the source under `root` (bounded) for the variables it reads.
pub fn scan(root: &Path) -> Scan {
    let mut scan = Scan::default();
    let mut walk = Walk {
        entries: 0,
        bytes: 0,
        files: Vec::new(),
    };
    walk.visit(root, 0, &mut scan.limits);
    for path in walk.files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        scan.files_read += 1;
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        read_file(&shown, &path, &text, &mut scan.reads);
        read_routes(&shown, &text, &mut scan.routes);
    }
    scan
}

/// POST route declarations: FastAPI/Flask/Express/Fastify/Hono (`.post("/x"`), axum
/// (`.route("/x", post(`), Gin/Echo (`.POST("/x"`), Spring (`@PostMapping("/x")`), Flask's
/// `@app.route("/x", methods=["POST"])`.
static ROUTES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?:\.(?:post|POST)\(\s*["'`](/[^"'`\s]*)["'`])"#,
        r#"|(?:\.route\(\s*"(/[^"\s]*)"\s*,\s*(?:[\w:]+::)?post\()"#,
        r#"|(?:@PostMapping\(\s*(?:value\s*=\s*)?"(/[^"\s]*)")"#,
        r#"|(?:\.route\(\s*["'](/[^"'\s]*)["'][^)]*methods\s*=\s*\[[^\]]*["']POST["'])"#,
    ))
    .expect("a valid pattern")
});

fn read_routes(shown: &str, text: &str, routes: &mut Vec<RouteRead>) {
    for found in ROUTES.captures_iter(text) {
        let Some(path) = (1..=4).find_map(|group| found.get(group)) else {
            continue;
        };
        // `/chat/{id}`, `/chat/:id`, `/chat/<id>`: a route faultline cannot fill in.
        if path.as_str().contains(['{', ':', '<', '*']) {
            continue;
        }
        if routes.iter().any(|r| r.path == path.as_str()) {
            continue;
        }
        routes.push(RouteRead {
            path: path.as_str().to_string(),
            at: format!("{shown}:{}", text[..path.start()].matches('\n').count() + 1),
        });
    }
}

struct Walk {
    entries: usize,
    bytes: u64,
    files: Vec<PathBuf>,
}

impl Walk {
    fn visit(&mut self, dir: &Path, depth: usize, limits: &mut Vec<String>) {
        if depth > MAX_DEPTH {
            note(
                limits,
                format!("folders deeper than {MAX_DEPTH} were not read"),
            );
            return;
        }
        let Ok(listing) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = listing.flatten().collect();
        // Sorted, so the same tree gives the same draft.
        entries.sort_by_key(|entry| entry.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                note(
                    limits,
                    format!("stopped after {MAX_ENTRIES} files and folders"),
                );
                return;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            // symlink_metadata: a link (a shared virtualenv, a mounted tree) is not followed.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                let skipped = name.starts_with('.')
                    || SKIPPED_DIRS.contains(&name.as_str())
                    || entry.path().join("pyvenv.cfg").exists();
                if !skipped {
                    subdirs.push(entry.path());
                }
                continue;
            }
            if !meta.is_file() || !is_scanned_file(&name) {
                continue;
            }
            if meta.len() > MAX_FILE_BYTES {
                note(
                    limits,
                    format!("files over {} KiB were skipped", MAX_FILE_BYTES / 1024),
                );
                continue;
            }
            if self.files.len() >= MAX_FILES || self.bytes + meta.len() > MAX_TOTAL_BYTES {
                note(
                    limits,
                    format!(
                        "stopped after {} files ({} MiB)",
                        self.files.len(),
                        self.bytes / (1024 * 1024)
                    ),
                );
                return;
            }
            self.bytes += meta.len();
            self.files.push(entry.path());
        }
        for subdir in subdirs {
            self.visit(&subdir, depth + 1, limits);
        }
    }
}

fn note(limits: &mut Vec<String>, why: String) {
    if !limits.contains(&why) {
        limits.push(why);
    }
}

fn is_scanned_file(name: &str) -> bool {
    if ENV_EXAMPLE_FILES.contains(&name) {
        return true;
    }
    let is_test = name.starts_with("test_")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("_test.go")
        || name.ends_with("_test.py");
    let extension = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    !is_test && SOURCE_EXTENSIONS.contains(&extension)
}

/// Adds what one file reads to `reads` (the first place a name is read wins).
fn read_file(shown: &str, path: &Path, text: &str, reads: &mut BTreeMap<String, EnvRead>) {
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
            ("DATABASE_URL", Role::OtherAddress),
            ("LLM_MODEL", Role::Other),
            ("STRIPE_SECRET_KEY", Role::Other),
        ] {
            assert_eq!(role(name), expected, "{name}");
        }
    }

    #[test]
    fn post_routes_are_found_in_each_framework() {
        let mut routes = Vec::new();
        read_routes(
            "app.py",
            "@app.post(\"/v2/ask\")\n@app.get(\"/healthz\")\n",
            &mut routes,
        );
        read_routes(
            "s.ts",
            "app.post('/api/chat', h)\nrouter.post(\"/chat/:id\", h)\n",
            &mut routes,
        );
        read_routes(
            "main.rs",
            ".route(\"/v1/chat\", post(chat))\n.route(\"/x\", axum::routing::post(x))\n",
            &mut routes,
        );
        read_routes("a.go", "r.POST(\"/ask\", ask)", &mut routes);
        read_routes("A.java", "@PostMapping(\"/question\")", &mut routes);
        read_routes(
            "f.py",
            "@app.route(\"/q\", methods=[\"POST\"])",
            &mut routes,
        );
        let paths: Vec<&str> = routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/v2/ask",
                "/api/chat",
                "/v1/chat",
                "/x",
                "/ask",
                "/question",
                "/q"
            ]
        );
        assert_eq!(routes[0].at, "app.py:1");
    }

    #[test]
    fn the_walk_skips_dependencies_tests_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("app.py"), "os.environ['OWN']\n").unwrap();
        std::fs::create_dir_all(root.join("node_modules/x")).unwrap();
        std::fs::write(root.join("node_modules/x/i.js"), "process.env.DEP").unwrap();
        std::fs::create_dir_all(root.join("tests")).unwrap();
        std::fs::write(root.join("tests/t.py"), "os.environ['TEST_ONLY']").unwrap();
        std::fs::create_dir_all(root.join("venv2")).unwrap();
        std::fs::write(root.join("venv2/pyvenv.cfg"), "").unwrap();
        std::fs::write(root.join("venv2/lib.py"), "os.environ['VENV']").unwrap();
        std::fs::write(root.join(".env.example"), "EXAMPLE_URL=http://x\n").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("far.py"), "os.environ['FAR']").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join("linked")).unwrap();
        std::fs::write(root.join("big.js"), "x".repeat(600 * 1024)).unwrap();

        let scan = scan(root);
        let names: Vec<&str> = scan.reads.keys().map(String::as_str).collect();
        assert_eq!(names, ["EXAMPLE_URL", "OWN"]);
        assert_eq!(scan.reads["EXAMPLE_URL"].how, "listed in .env.example");
        assert!(scan.limits.iter().any(|l| l.contains("512 KiB")));
    }
}
