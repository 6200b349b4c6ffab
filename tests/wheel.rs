//! The pip wheel (pyproject.toml: maturin with `bindings = "bin"`, as ruff and uv ship theirs):
//! built, installed into a fresh virtualenv with no package index by the GitHub Action's own
//! install step, and run from there.
//!
//! Cheap by design: maturin builds with `--profile dev` into this crate's target/, where the
//! tests' own build of the `faultline` binary already is, so cargo finds it fresh and compiles
//! nothing; `--compression-method stored` skips zipping a debug binary of ~90 MB. The wheel a
//! user gets is the release one (`maturin build --release`); only the profile differs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} exited {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn build_wheel(out: &Path) -> PathBuf {
    let maturin = common::python().with_file_name("maturin");
    assert!(
        maturin.exists(),
        "no {}: run scripts/test (it installs tests/python/requirements-packaging.txt)",
        maturin.display()
    );
    run(Command::new(maturin)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--profile", "dev", "--locked", "--quiet"])
        .args(["--compression-method", "stored", "--out"])
        .arg(out));
    let wheels: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "maturin wrote {wheels:?}");
    wheels.into_iter().next().unwrap()
}

/// The script of the step named `name` in action.yml (read with PyYAML, which
/// kubernetes-validate brings into the test Python).
fn action_step_script(name: &str) -> String {
    let action = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml");
    let program = "import json, sys, yaml\n\
                   steps = yaml.safe_load(open(sys.argv[1]))['runs']['steps']\n\
                   print(next(s['run'] for s in steps if s.get('name') == sys.argv[2]), end='')";
    run(Command::new(common::python())
        .args(["-c", program])
        .arg(action)
        .arg(name))
}

/// The wheel, installed the way the GitHub Action installs faultline (its "Install faultline"
/// step: a fresh virtualenv, `pip install faultline`), with pip pointed at the built wheel
/// instead of PyPI.
#[test]
fn pip_installs_the_wheel_into_a_fresh_virtualenv_and_faultline_runs_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let wheel = build_wheel(&dist);
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    // The wheel's version is the crate's: maturin takes it from Cargo.toml.
    assert!(
        name.starts_with(&format!(
            "faultline-{}-py3-none-",
            env!("CARGO_PKG_VERSION")
        )),
        "{name}"
    );

    let venv = dir.path().join("venv");
    let github_path = dir.path().join("github_path");
    std::fs::write(&github_path, "").unwrap();
    let installed = run(Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(action_step_script("Install faultline"))
        .env("FAULTLINE_VERSION", env!("CARGO_PKG_VERSION"))
        .env("FAULTLINE_VENV", &venv)
        .env("GITHUB_PATH", &github_path)
        // pip reads its options from the environment too: the wheel, and no index.
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", &dist));
    assert_eq!(
        installed.trim(),
        format!("faultline {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        std::fs::read_to_string(&github_path).unwrap().trim(),
        venv.join("bin").to_str().unwrap()
    );

    // Found on the virtualenv's PATH, as `pip install faultline` users run it.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let found = run(Command::new("sh")
        .args(["-c", "command -v faultline"])
        .env("PATH", &path));
    assert_eq!(Path::new(found.trim()), venv.join("bin/faultline"));
    // And it is the whole program, not a stub: it lists the built-in scenarios.
    let list = run(Command::new("faultline").arg("list").env("PATH", &path));
    assert!(list.contains("outage"), "{list}");
}
