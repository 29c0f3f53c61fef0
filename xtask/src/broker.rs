//! Tansu, the real Kafka-compatible broker of the end-to-end suite: installed at a pinned
//! version (cached in `~/.cargo/bin`), run on loopback, and the suite run against it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The pinned Tansu release.
pub const TANSU_VERSION: &str = "0.6.0";
/// Without these features Tansu has no storage engine at all.
const TANSU_FEATURES: &str = "dynostore,libsql";

/// The Tansu binary at the pinned version, installing it first if it is missing (about 15
/// minutes on 2 cores the first time).
pub fn ensure_tansu() -> Result<PathBuf> {
    if let Some(path) = installed() {
        return Ok(path);
    }
    eprintln!("installing tansu {TANSU_VERSION} (first time only; ~15 minutes on 2 cores)");
    let status = crate::cargo_command()
        .args([
            "install",
            "tansu",
            "--version",
            TANSU_VERSION,
            "--features",
            TANSU_FEATURES,
            "--locked",
        ])
        .status()
        .context("running cargo install tansu")?;
    if !status.success() {
        bail!("cargo install tansu failed with {status}");
    }
    installed().context("tansu installed but not found in ~/.cargo/bin or on PATH")
}

/// The installed Tansu, if it reports the pinned version.
fn installed() -> Option<PathBuf> {
    let path = reader_runtime::testkit::tansu_binary()?;
    let output = Command::new(&path).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout);
    version.contains(TANSU_VERSION).then_some(path)
}

/// Runs Tansu in the foreground on `127.0.0.1:port` until interrupted.
pub fn run(port: u16, storage: &str) -> Result<()> {
    let tansu = ensure_tansu()?;
    let url = format!("tcp://127.0.0.1:{port}");
    eprintln!("tansu {TANSU_VERSION} on {url}, storage {storage} (Ctrl-C stops it)");
    let status = Command::new(tansu)
        .arg("broker")
        .args(["--cluster-id", "case-third-party-reader"])
        .args(["--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", storage])
        .status()
        .context("running tansu")?;
    if !status.success() {
        bail!("tansu exited with {status}");
    }
    Ok(())
}

/// stunnel, the TLS terminator of the Kafka security tests: Debian's `stunnel4`, installed with
/// apt-get when missing.
pub fn ensure_stunnel() -> Result<PathBuf> {
    if let Some(path) = reader_runtime::testkit::stunnel_binary() {
        return Ok(path);
    }
    eprintln!("installing stunnel4 (Debian package) for the kafka security tests");
    crate::apt_install(&["stunnel4"])?;
    reader_runtime::testkit::stunnel_binary().context("stunnel4 installed but not found on PATH")
}

/// Runs the end-to-end scenarios against Tansu (they start and stop their own broker).
pub fn e2e(root: &std::path::Path) -> Result<()> {
    let tansu = ensure_tansu()?;
    let stunnel = ensure_stunnel()?;
    // (package, test binary, name filter, one test at a time, what it is)
    let suites = [
        (
            "jira-reader",
            "kafka_security",
            "",
            true,
            "the kafka security tests on tansu and stunnel",
        ),
        (
            "jira-reader",
            "e2e",
            "tansu::",
            true,
            "the end-to-end tests on tansu",
        ),
        (
            "jira-reader",
            "replay",
            "tansu::",
            false,
            "the replay scenario on tansu",
        ),
        (
            "github-reader",
            "e2e",
            "tansu::",
            false,
            "the github end-to-end test on tansu",
        ),
        (
            "jira-reader",
            "bad_input",
            "tansu_",
            false,
            "the bad-input corpus on tansu",
        ),
    ];
    for (package, test, filter, serial, what) in suites {
        let mut command = crate::cargo_command();
        command.args(["test", "-p", package, "--test", test]);
        if !filter.is_empty() {
            command.arg(filter);
        }
        command.args(["--", "--ignored"]);
        if serial {
            command.arg("--test-threads=1");
        }
        let status = command
            .env("TANSU_BIN", &tansu)
            .env("STUNNEL_BIN", &stunnel)
            .current_dir(root)
            .status()
            .with_context(|| format!("running {what}"))?;
        if !status.success() {
            bail!("{what} failed ({status})");
        }
    }
    Ok(())
}
