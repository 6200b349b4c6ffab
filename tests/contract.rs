//! The import rule that keeps [`faultline::evidence::Evidence`] the only contract between the
//! stages: what judges and reports a run (checks, report, evidence) reads the evidence, never
//! the code that produced it (fakes, load, target, reference); and parsing a scenario needs
//! nothing of the reference target. Read from the source, so a new `use` that breaks the rule
//! fails here with its file and line.

use std::path::{Path, PathBuf};

/// Modules that may import nothing from `forbidden`.
const RULES: &[(&str, &[&str])] = &[
    ("src/checks", &["fakes", "load", "target", "reference"]),
    ("src/report", &["fakes", "load", "target", "reference"]),
    ("src/evidence", &["fakes", "load", "target", "reference"]),
    ("src/scenario/parse", &["reference"]),
    ("src/scenario/parse.rs", &["reference"]),
];

fn rust_files(root: &Path) -> Vec<PathBuf> {
    if root.is_file() {
        return vec![root.to_path_buf()];
    }
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `(line, text)` of each line of `source` naming `crate::<module>` outside comments.
fn imports_of(source: &str, module: &str) -> Vec<(usize, String)> {
    let needles = [
        format!("crate::{module}::"),
        format!("crate::{module};"),
        format!("crate::{{{module}"),
        format!("crate::{module} "),
    ];
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| needles.iter().any(|n| line.contains(n.as_str())))
        .map(|(i, line)| (i + 1, line.trim().to_string()))
        .collect()
}

#[test]
fn checks_reports_and_evidence_import_nothing_from_the_stages_that_produce_evidence() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut read = 0;
    for (dir, forbidden) in RULES {
        for file in rust_files(&root.join(dir)) {
            let source = std::fs::read_to_string(&file).unwrap();
            read += 1;
            for module in *forbidden {
                for (line, text) in imports_of(&source, module) {
                    broken.push(format!(
                        "{}:{line}: `{text}` uses crate::{module}; read it from the evidence \
                         (or a shared module) instead",
                        file.strip_prefix(root).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(read > 20, "only {read} files read: are the paths right?");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_rule_catches_an_import() {
    // The scan itself is shown to find what it must, so an empty result above means something.
    let source =
        "use std::fmt;\nuse crate::fakes::journal::Journal;\n// crate::fakes:: in a comment\n";
    assert_eq!(
        imports_of(source, "fakes"),
        [(2, "use crate::fakes::journal::Journal;".to_string())]
    );
    assert!(imports_of("use crate::{fakes, load};", "fakes").len() == 1);
    assert!(imports_of(source, "load").is_empty());
}

/// Long files hide their seams; past this a file is split where its concepts part.
const MAX_LINES: usize = 1000;

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let long: Vec<String> = rust_files(&root.join("src"))
        .into_iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(&file).ok()?.lines().count();
            (lines > MAX_LINES).then(|| {
                format!(
                    "{}: {lines} lines; split it at a seam",
                    file.strip_prefix(root).unwrap().display()
                )
            })
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}
