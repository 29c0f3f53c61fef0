//! `cargo xtask fuzz --seconds N`: runs every cargo-fuzz target of `fuzz/` for N seconds each,
//! seeded from the decoders' fixtures and guided by `fuzz/envelope.dict` (JSON syntax and the
//! envelope's field names), and prints executions and findings per target.
//!
//! cargo-fuzz is installed into ~/.cargo/bin when missing; the targets build on the nightly
//! toolchain (`cargo +nightly fuzz`, for the sanitizer flags). The corpus grows in
//! `target/fuzz/corpus/<target>` across runs; crashes are written to
//! `target/fuzz/artifacts/<target>/` and fail the run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The targets, with the fixture directories that seed their corpus.
const TARGETS: &[(&str, &[&str])] = &[
    ("jira_decoder", &["crates/integration-jira/fixtures"]),
    (
        "servicenow_decoder",
        &["crates/integration-servicenow/fixtures"],
    ),
    (
        "envelope_roundtrip",
        &[
            "crates/integration-jira/fixtures",
            "crates/integration-servicenow/fixtures",
        ],
    ),
];

/// What one target's run found.
#[derive(Debug)]
struct Outcome {
    target: &'static str,
    executions: u64,
    findings: Vec<PathBuf>,
}

pub fn run(root: &Path, seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let mut outcomes = Vec::new();
    for (target, seeds) in TARGETS {
        let corpus = root.join("target/fuzz/corpus").join(target);
        let artifacts = root.join("target/fuzz/artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        seed(root, seeds, &corpus)?;
        let before = list(&artifacts)?;
        eprintln!("== fuzz {target} for {seconds}s");
        let output = nightly_cargo()
            .args(["fuzz", "run", target])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(format!(
                "-dict={}",
                root.join("fuzz/envelope.dict").display()
            ))
            .arg("-print_final_stats=1")
            .current_dir(root)
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running cargo +nightly fuzz run {target}"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        let findings: Vec<PathBuf> = list(&artifacts)?
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if !output.status.success() && findings.is_empty() {
            eprintln!("{log}");
            bail!("cargo fuzz run {target} failed with {}", output.status);
        }
        let executions = executions(&log);
        outcomes.push(Outcome {
            target,
            executions,
            findings,
        });
    }
    println!("{:<20} {:>12} {:>9}", "target", "executions", "findings");
    for o in &outcomes {
        println!(
            "{:<20} {:>12} {:>9}",
            o.target,
            o.executions,
            o.findings.len()
        );
        for f in &o.findings {
            println!("  finding: {}", f.display());
        }
    }
    let total: usize = outcomes.iter().map(|o| o.findings.len()).sum();
    if total > 0 {
        bail!("{total} finding(s): reproduce with `cargo +nightly fuzz run <target> <file>`");
    }
    Ok(())
}

/// `stat::number_of_executed_units: N` (from `-print_final_stats=1`), else `Done N runs`.
fn executions(log: &str) -> u64 {
    let stat = log.lines().find_map(|l| {
        l.strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    });
    stat.or_else(|| {
        log.lines().find_map(|l| {
            l.strip_prefix("Done ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
    })
    .unwrap_or(0)
}

/// Copies the `*.json` fixtures into the corpus (idempotent: same names, same bytes).
fn seed(root: &Path, dirs: &[&str], corpus: &Path) -> Result<()> {
    for dir in dirs {
        let prefix = dir.replace('/', "_");
        for path in list(&root.join(dir))? {
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_name().context("a fixture has a name")?;
                let target = corpus.join(format!("{prefix}_{}", name.to_string_lossy()));
                std::fs::copy(&path, &target)
                    .with_context(|| format!("seeding {}", target.display()))?;
            }
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        paths.push(entry?.path());
    }
    paths.sort();
    Ok(paths)
}

/// `cargo +nightly` through the rustup proxy, without the variables of the `cargo run` that
/// started xtask (they would pin the stable cargo and toolchain).
fn nightly_cargo() -> Command {
    let mut command = Command::new("cargo");
    command.arg("+nightly");
    for name in ["CARGO", "RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC"] {
        command.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(name);
        }
    }
    command
}

/// Installs the nightly toolchain (minimal profile) unless rustup has it, and cargo-fuzz into
/// ~/.cargo/bin unless `cargo fuzz` already runs.
fn ensure_cargo_fuzz() -> Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !nightly {
        eprintln!("installing the nightly toolchain (once)");
        let status = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status()
            .context("running rustup toolchain install nightly")?;
        if !status.success() {
            bail!("rustup toolchain install nightly failed with {status}");
        }
    }
    let present = nightly_cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz into ~/.cargo/bin (once)");
    let status = crate::cargo_command()
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed with {status}");
    }
    Ok(())
}
