//! Project automation, run as `cargo xtask <command>`.

use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Project automation for case-third-party-reader.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// What CI runs: format check, clippy with warnings denied, the whole test suite.
    Ci,
    /// Runs the sandbox Case API on 127.0.0.1:50051 with the demo seed data (Ctrl-C stops it).
    Sandbox {
        /// Address to listen on (loopback only).
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Ci => {
            cargo(&["fmt", "--all", "--", "--check"])?;
            cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
            cargo(&["test", "--workspace"])
        }
        Cmd::Sandbox { listen } => cargo(&[
            "run",
            "--quiet",
            "--package",
            "case-api-sandbox",
            "--",
            "--listen",
            &listen,
            "--seed",
            "bins/case-api-sandbox/seed/demo.json",
        ]),
    }
}

/// Runs cargo from the workspace root; fails if it fails.
fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?;
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed with {status}", args.join(" "));
    }
    Ok(())
}
