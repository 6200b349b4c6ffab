//! The pip wheel (pyproject.toml: maturin with `bindings = "bin"`, as ruff and uv ship theirs):
//! built, installed into a fresh virtualenv with no package index, and run from there.
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

#[test]
fn pip_installs_the_wheel_into_a_fresh_virtualenv_and_faultline_runs_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = build_wheel(&dir.path().join("dist"));
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
    run(Command::new(common::python())
        .args(["-m", "venv"])
        .arg(&venv));
    run(Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheel));

    // Found on the virtualenv's PATH, as `pip install faultline` users run it.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let version = run(Command::new("faultline")
        .arg("--version")
        .env("PATH", &path));
    assert_eq!(
        version.trim(),
        format!("faultline {}", env!("CARGO_PKG_VERSION"))
    );
    let installed = run(Command::new("sh")
        .args(["-c", "command -v faultline"])
        .env("PATH", &path));
    assert_eq!(Path::new(installed.trim()), venv.join("bin/faultline"));
    // And it is the whole program, not a stub: it lists the built-in scenarios.
    let list = run(Command::new(venv.join("bin/faultline")).arg("list"));
    assert!(list.contains("outage"), "{list}");
}
