//! What faultline refuses before it runs anything, each with an error that names where the
//! problem is and what to change (issue 16 items 6, 17, 19): the built binary, as a user runs it.

use std::process::Command;

fn faultline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_url_whose_userinfo_names_localhost_cannot_attach_to_another_host() {
    let output = faultline(&[
        "scenario",
        "outage",
        "--attach",
        "http://localhost:1@0.0.0.0:19998",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--attach"), "{stderr}");
    assert!(stderr.contains("user name or password"), "{stderr}");
    let output = faultline(&["scenario", "outage", "--attach", "http://0.0.0.0:19998"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("only to this machine"), "{stderr}");
}

#[test]
fn out_set_to_a_file_is_refused_before_the_load_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let started = std::time::Instant::now();
    let output = faultline(&["scenario", "outage", "--out", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out"), "{stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");
    // Refused at once: outage's load alone lasts a minute.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_scenario_file_that_is_not_utf8_is_an_error_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"name = \"x\"\ndescription = \"caf\xe9\"\n").unwrap();
    let output = faultline(&["validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2:19: the file is not UTF-8", path.display())),
        "{stderr}"
    );
}

#[test]
fn a_huge_value_is_not_echoed_whole_in_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let huge = "x".repeat(1_000_000);
    std::fs::write(
        &path,
        format!(
            "name = \"x\"\n[load]\nusers = 1\nduration = \"{huge}\"\n[[load.flows]]\n\
             name = \"ask\"\nmessages = [\"hi\"]\n"
        ),
    )
    .unwrap();
    let output = faultline(&["validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
    assert!(
        stderr.contains(":4:"),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
    assert!(stderr.len() < 4_000, "{} bytes of stderr", stderr.len());
}
