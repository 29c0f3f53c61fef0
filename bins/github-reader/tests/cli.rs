//! The GitHub reader's command line names itself.

#![allow(clippy::unwrap_used)]

#[test]
fn version_names_the_github_reader() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_github-reader"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("github-reader {}", env!("CARGO_PKG_VERSION"))
    );
}
