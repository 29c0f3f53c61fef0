//! Project automation, run as `cargo xtask <command>`.

mod bench;
mod broker;
mod chaos;
mod demo;
mod fips_provider;
mod fuzz;
mod image;
mod new_integration;
mod observability;
mod recovery;
mod scenario;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

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
    /// Plays a scripted Jira and ServiceNow scenario through both readers, on a local Kafka and
    /// the sandbox Case API, checks every outcome, and prints what became of each message.
    Demo {
        /// The Kafka broker to run on.
        #[arg(long, value_enum, default_value = "embedded")]
        broker: demo::BrokerKind,
    },
    /// Installs Tansu at the pinned version if missing (cached in ~/.cargo/bin) and runs it on
    /// loopback until interrupted.
    Broker {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 9092)]
        port: u16,
        /// `memory://tansu/`, or `sqlite://tansu.db` (relative to the working directory) to keep
        /// the log and committed offsets across restarts.
        #[arg(long, default_value = "memory://tansu/")]
        storage: String,
        /// Install (if missing) and exit.
        #[arg(long)]
        install_only: bool,
    },
    /// The end-to-end scenarios on Tansu (installed if missing): crash and restart, a member
    /// joining mid-stream, a poisoned message and the skip list.
    E2e,
    /// Throughput, latency, decode speed and cache effectiveness as ratios to limits measured in
    /// the same run; writes target/bench/report.{json,md} and prints the table.
    Bench {
        /// Smaller runs (under 3 minutes).
        #[arg(long)]
        quick: bool,
        /// The Kafka broker to run on.
        #[arg(long, value_enum, default_value = "embedded")]
        broker: demo::BrokerKind,
    },
    /// At-least-once under faults: both flavors on Tansu (SQLite) and the sandbox (SQLite) while
    /// readers are SIGKILLed, the broker restarts and the Case API fails; compares every case
    /// with the state computed from the workload and accounts for every message; writes
    /// target/chaos/report.json.
    Chaos {
        /// A smaller run (under 5 minutes).
        #[arg(long)]
        quick: bool,
        /// The workload and fault schedule seed.
        #[arg(long, default_value_t = 20_261_127)]
        seed: u64,
        /// Runs readers built to store each offset before handling its message (feature
        /// `negative-control`, never shipped) and succeeds only if the run catches them.
        #[arg(long)]
        negative_control: bool,
    },
    /// Runs each cargo-fuzz target of `fuzz/` (the Jira and ServiceNow decoders, the changelog
    /// round trip) for N seconds on nightly, installing cargo-fuzz if missing; prints executions
    /// and findings per target and fails on any finding.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Builds OpenSSL 3.0.8's FIPS provider (FIPS 140-2, CMVP #4282) from the openssl-src crate's
    /// source (cached in ~/.cache) and writes fips.so, fipsmodule.cnf and an openssl.cnf that
    /// puts librdkafka's TLS on it (use with OPENSSL_CONF and OPENSSL_MODULES).
    FipsProvider {
        /// Output directory (default: target/fips-provider in the workspace).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generates a new integration crate (crates/integration-NAME) and its reader binary
    /// (bins/NAME-reader), registered in the workspace, compiling and passing the contract suite
    /// on an example message; see docs/adding-an-integration.md. `--check` generates one into a
    /// temporary copy of the workspace and runs its tests (CI).
    NewIntegration {
        /// The integration's name: lowercase letters, digits and `-` (`linear`, `azure-boards`).
        #[arg(required_unless_present = "check")]
        name: Option<String>,
        /// Generate `example-tracker` into a temporary copy of the workspace and test it.
        #[arg(long)]
        check: bool,
    },
    /// Checks the dashboards, monitors, SLO and alerting rules of deploy/observability/: every
    /// metric they name is one the reader emits (from its telemetry constants) or an allowed
    /// platform metric, and every query on the per-flavor filtered counters covers every
    /// flavor; then `promtool check rules` and `promtool test rules` (Debian's prometheus
    /// package, installed when promtool is missing).
    ObservabilityCheck,
    /// Tests the runtime images without a Docker engine: builds the Dockerfile's root file system
    /// (mmdebstrap of bookworm with deploy/runtime-packages.txt; installed when missing) and runs
    /// the release binaries in it with chroot: --version, validate-config on every Helm-rendered
    /// config, fips-check (the FIPS image with OpenSSL's FIPS provider). Needs root.
    ImageTest,
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain on one line; no backtrace, whatever RUST_BACKTRACE says.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Cmd) -> Result<()> {
    match command {
        Cmd::Ci => {
            cargo(&["fmt", "--all", "--", "--check"])?;
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])?;
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
        Cmd::Demo { broker } => demo::run(workspace_root()?, broker),
        Cmd::Broker {
            install_only: true, ..
        } => broker::ensure_tansu().map(|path| eprintln!("tansu: {}", path.display())),
        Cmd::Broker { port, storage, .. } => broker::run(port, &storage),
        Cmd::E2e => broker::e2e(workspace_root()?),
        Cmd::Bench { quick, broker } => bench::run(workspace_root()?, quick, broker),
        Cmd::Chaos {
            quick,
            seed,
            negative_control,
        } => chaos::run(workspace_root()?, quick, seed, negative_control),
        Cmd::Fuzz { seconds } => fuzz::run(workspace_root()?, seconds),
        Cmd::FipsProvider { out } => fips_provider::run(workspace_root()?, out),
        Cmd::ImageTest => image::image_test(workspace_root()?),
        Cmd::ObservabilityCheck => observability::check(workspace_root()?),
        Cmd::NewIntegration { check: true, .. } => new_integration::check(workspace_root()?),
        Cmd::NewIntegration { name, .. } => {
            new_integration::run(workspace_root()?, name.as_deref().unwrap_or_default())
        }
    }
}

/// Runs cargo from the workspace root; fails if it fails.
fn cargo(args: &[&str]) -> Result<()> {
    let root = workspace_root()?;
    let status = cargo_command()
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

/// The cargo that runs xtask (`$CARGO`), without the variables `cargo run` sets for xtask
/// itself: leaking them into a nested build changes build-script fingerprints (ring reruns on
/// `CARGO_MANIFEST_DIR`), so every `cargo xtask` would rebuild ring, rustls and tonic, and the
/// next plain `cargo build` again.
pub(crate) fn cargo_command() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            command.env_remove(name);
        }
    }
    command
}

/// The workspace root (xtask's parent directory).
fn workspace_root() -> Result<&'static Path> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")
}

/// Installs Debian packages (test tooling) with apt-get, through sudo when not root.
pub(crate) fn apt_install(packages: &[&str]) -> Result<()> {
    let root = is_root();
    let run = |args: &[&str]| -> Result<()> {
        let mut command = if root {
            Command::new(args[0])
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg(args[0]);
            sudo
        };
        let status = command
            .args(&args[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running {}", args.join(" ")))?;
        if !status.success() {
            bail!("`{}` failed with {status}", args.join(" "));
        }
        Ok(())
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run(&install)
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The target directory cargo uses for the workspace (`$CARGO_TARGET_DIR`, else `target`).
pub(crate) fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
}
