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
