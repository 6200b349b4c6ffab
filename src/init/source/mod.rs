//! What a service's source says about it, before it runs: which environment variables it
//! reads ([`env`]) and which POST routes it declares ([`routes`]).
//!
//! The walk is bounded (depth, files, bytes) and never follows symlinks or enters dependency,
//! build or test folders (`node_modules`, virtualenvs, `target`, `tests`): a service's own code
//! is small, and a scan must not crawl a disk.

mod env;
mod routes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use env::{role, EnvRead, Role};
pub use routes::RouteRead;

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

/// Scans the source under `root` (bounded) for the variables it reads.
pub fn scan(root: &Path) -> Scan {
    let mut scan = Scan::default();
    let mut walk = Walk {
        entries: 0,
        bytes: 0,
        files: Vec::new(),
    };
    walk.visit(root, 0, &mut scan.limits);
    let files: Vec<(String, PathBuf, String)> = walk
        .files
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            Some((shown, path, text))
        })
        .collect();
    scan.files_read = files.len();
    let helpers = env::env_helpers(files.iter().map(|(_, _, text)| text.as_str()));
    for (shown, path, text) in &files {
        env::read_file(shown, path, text, &mut scan.reads);
        env::read_helper_calls(shown, text, &helpers, &mut scan.reads);
        routes::read_routes(shown, text, &mut scan.routes);
    }
    scan
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
    if env::ENV_EXAMPLE_FILES.contains(&name) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
