//! The Dockerfile, checked offline (no image is built here: no container registry is
//! reachable): hadolint's rules (tests/python/requirements-packaging.txt installs it), and
//! what the image must be for deploy/kubernetes/ and for users: multi-stage, the binary as the
//! entrypoint, a numeric non-root user (Kubernetes' runAsNonRoot checks it), and a build
//! context that holds every file the build reads (.dockerignore leaves target/ out, so a file
//! newly compiled in with include_str! must be let in there and copied).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn hadolint(dockerfile: &str) -> Result<(), String> {
    let hadolint = common::python().with_file_name("hadolint");
    assert!(
        hadolint.exists(),
        "no {}: run scripts/test (it installs tests/python/requirements-packaging.txt)",
        hadolint.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Dockerfile");
    std::fs::write(&path, dockerfile).unwrap();
    let output = Command::new(hadolint).arg(&path).output().unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// One instruction: its keyword (upper case) and its arguments, continuation lines joined.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (keyword, args) = l.trim().split_once(char::is_whitespace).unwrap_or((&l, ""));
            (keyword.to_uppercase(), args.trim().to_owned())
        })
        .collect()
}

/// Whether .dockerignore (`*`, then `!path` exceptions) lets `path` into the build context.
fn in_context(dockerignore: &str, path: &str) -> bool {
    let mut included = true;
    for rule in dockerignore.lines().map(str::trim) {
        if rule.is_empty() || rule.starts_with('#') {
            continue;
        }
        let (negated, pattern) = match rule.strip_prefix('!') {
            Some(p) => (true, p.trim_end_matches('/')),
            None => (false, rule.trim_end_matches('/')),
        };
        let matches = pattern == "*" || path == pattern || path.starts_with(&format!("{pattern}/"));
        if matches {
            included = negated;
        }
    }
    included
}

/// The top-level folders outside src/ that the sources compile in (include_str!/include_bytes!).
fn compiled_in_folders(src: &Path) -> Vec<String> {
    let pattern = regex::Regex::new(r#"include_(?:str|bytes)!\(\s*"([^"]+)""#).unwrap();
    let mut folders = Vec::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for capture in pattern.captures_iter(&text) {
                    let included = path.parent().unwrap().join(&capture[1]);
                    let Ok(resolved) = included.canonicalize() else {
                        continue;
                    };
                    let relative = resolved
                        .strip_prefix(repo().canonicalize().unwrap())
                        .unwrap();
                    let top = relative.components().next().unwrap();
                    let top = top.as_os_str().to_string_lossy().into_owned();
                    if top != "src" && !folders.contains(&top) {
                        folders.push(top);
                    }
                }
            }
        }
    }
    folders
}

/// What the image must be; the problems found, empty when it is.
fn check_dockerfile(dockerfile: &str, dockerignore: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let instructions = instructions(dockerfile);
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    if stages.len() < 2 {
        problems.push("not multi-stage: the runtime image would carry the Rust toolchain".into());
        return problems;
    }
    let builder = instructions[stages[0]]
        .1
        .split_whitespace()
        .last()
        .unwrap_or_default();
    let last_stage = &instructions[*stages.last().unwrap()..];
    let copies_binary = last_stage.iter().any(|(k, a)| {
        k == "COPY" && a.contains(&format!("--from={builder}")) && a.ends_with("/faultline")
    });
    if !copies_binary {
        problems
            .push("the runtime stage does not copy the faultline binary from the builder".into());
    }
    match last_stage.iter().rev().find(|(k, _)| k == "USER") {
        Some((_, user)) => {
            let uid = user.split(':').next().unwrap_or_default();
            if !matches!(uid.parse::<u32>(), Ok(n) if n > 0) {
                problems.push(format!(
                    "USER {user}: not a numeric non-root user (runAsNonRoot cannot verify a name)"
                ));
            }
        }
        None => problems.push("the runtime stage runs as root (no USER)".into()),
    }
    match last_stage.iter().rev().find(|(k, _)| k == "ENTRYPOINT") {
        Some((_, e)) if e.replace(' ', "") == r#"["faultline"]"# => {}
        other => problems.push(format!(
            "the entrypoint is {other:?}, not [\"faultline\"] (the manifests pass only args)"
        )),
    }

    // The build context: every COPY source of the builder exists and is let in, and every
    // folder compiled in is copied.
    let builder_stage = &instructions[stages[0]..stages[1]];
    let mut copied = Vec::new();
    for (_, args) in builder_stage.iter().filter(|(k, _)| k == "COPY") {
        let words: Vec<&str> = args
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for source in &words[..words.len().saturating_sub(1)] {
            let source = source.trim_end_matches('/');
            if !repo().join(source).exists() {
                problems.push(format!("COPY {source}: no such file in the repository"));
            }
            if !in_context(dockerignore, source) {
                problems.push(format!(
                    "COPY {source}: .dockerignore leaves it out of the context"
                ));
            }
            copied.push(source.to_owned());
        }
    }
    for folder in compiled_in_folders(&repo().join("src")).iter().chain(
        // Cargo.toml declares the benches; cargo refuses a manifest whose targets are missing.
        ["Cargo.toml", "Cargo.lock", "src", "benches"]
            .map(String::from)
            .iter(),
    ) {
        if !copied.contains(folder) {
            problems.push(format!(
                "the builder stage does not copy {folder}, which the build reads"
            ));
        }
    }
    problems
}

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("Dockerfile")).unwrap()
}

fn dockerignore() -> String {
    std::fs::read_to_string(repo().join(".dockerignore")).unwrap()
}

#[test]
fn the_dockerfile_passes_hadolint() {
    hadolint(&dockerfile()).unwrap();
}

#[test]
fn hadolint_fails_an_unpinned_base_image() {
    let flawed = dockerfile().replace("FROM debian:bookworm-slim", "FROM debian");
    assert!(hadolint(&flawed).unwrap_err().contains("DL3006"));
}

#[test]
fn the_image_is_multi_stage_non_root_with_the_binary_as_entrypoint() {
    let problems = check_dockerfile(&dockerfile(), &dockerignore());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        compiled_in_folders(&repo().join("src")).contains(&"scenarios".to_owned()),
        "the built-in scenarios are no longer found as compiled in"
    );
}

#[test]
fn each_mistake_in_the_dockerfile_is_named() {
    let cases = [
        ("USER 10001:10001\n", "", "root"),
        ("USER 10001:10001", "USER faultline", "numeric"),
        ("COPY mocks mocks\n", "", "mocks"),
        (
            "ENTRYPOINT [\"faultline\"]",
            "ENTRYPOINT [\"sh\"]",
            "entrypoint",
        ),
        (
            "COPY --from=builder",
            "COPY --from=build",
            "copy the faultline binary",
        ),
    ];
    for (from, to, named) in cases {
        let text = dockerfile();
        assert!(
            text.contains(from),
            "the Dockerfile no longer contains {from:?}"
        );
        let problems = check_dockerfile(&text.replacen(from, to, 1), &dockerignore()).join("\n");
        assert!(problems.contains(named), "{from:?} -> {to:?}: {problems}");
    }
    let problems = check_dockerfile(&dockerfile(), &dockerignore().replace("!mocks/\n", ""));
    assert!(
        problems.join("\n").contains(".dockerignore"),
        "{problems:?}"
    );
}
