//! The `jira-reader` command line: `decode` output against golden files (`docs/design.md`, "The changelog"; field
//! for field), one-line errors, `validate-config`, and `explain` against the sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_jira-reader");

/// Every key `docs/design.md` ("The changelog") allows in a changelog.
const CHANGELOG_KEYS: &[&str] = &[
    "integration",
    "org_id",
    "changelog_type",
    "third_party_id",
    "third_party_key",
    "event_timestamp",
    "author",
    "from_id",
    "from_string",
    "to_id",
    "to_string",
    "metadata",
    "body",
    "is_work_note",
    "comment_id",
    "case_reference",
];

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("CTPR_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/integration-jira/fixtures")
}

#[test]
fn decode_prints_the_spec_changelog_for_every_fixture() {
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap();
        let out = run(&["decode", path.to_str().unwrap()], None);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let golden: Vec<serde_json::Value> =
            std::fs::read_to_string(golden_dir.join(format!("{name}.jsonl")))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        assert_eq!(got, golden, "{name}");
        for changelog in &got {
            for key in changelog.as_object().unwrap().keys() {
                assert!(
                    CHANGELOG_KEYS.contains(&key.as_str()),
                    "{name}: unexpected key {key}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures");
}

#[test]
fn decode_reads_stdin_and_fails_with_one_line_on_bad_input() {
    let fixture = std::fs::read(fixtures().join("cloud_comment_created.json")).unwrap();
    let out = run(&["decode"], Some(&fixture));
    assert!(out.status.success());
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["changelog_type"], "create_comment");
    assert_eq!(line["comment_id"], "10050");

    for bad in [
        &b"{\"orgId\": 1, "[..],
        b"\xff\xfe",
        b"{\"orgId\": 1, \"webhook\": {\"webhookEvent\": \"jira:issue_deleted\"}}",
    ] {
        let out = run(&["decode"], Some(bad));
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn validate_config_prints_ok_or_names_the_field() {
    let dir = std::env::temp_dir().join(format!("jira-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[integration]\nown_account_ids = [\"a\"]\n",
    )
    .unwrap();
    let out = run(&["validate-config", good.to_str().unwrap()], None);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "ok\n");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[integration]\nown_acount_ids = [\"a\"]\n").unwrap();
    let out = run(&["validate-config", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("own_acount_ids")
    );
}

#[test]
fn version_and_usage_name_the_flavor_binary() {
    let out = run(&["--version"], None);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("jira-reader {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["--help"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: jira-reader"));
}
