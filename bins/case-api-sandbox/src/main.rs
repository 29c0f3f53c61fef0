//! `case-api-sandbox`: the sandbox Case Management gRPC server.
//!
//! ```text
//! case-api-sandbox --listen 127.0.0.1:50051 --db sandbox.db --seed seed/demo.json --token dev
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use case_api_sandbox::{SandboxConfig, Seed, ServerTls, serve, store::location};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A sandbox Case Management gRPC server (SQLite, seed data, fault injection).
#[derive(Debug, Parser)]
#[command(name = "case-api-sandbox", version)]
struct Cli {
    /// Address to listen on.
    #[arg(
        long,
        env = "CASE_API_SANDBOX_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    listen: SocketAddr,
    /// SQLite database file (created if absent); in memory when omitted.
    #[arg(long, env = "CASE_API_SANDBOX_DB")]
    db: Option<PathBuf>,
    /// Seed document (JSON) loaded at start, e.g. bins/case-api-sandbox/seed/demo.json.
    #[arg(long, env = "CASE_API_SANDBOX_SEED")]
    seed: Option<PathBuf>,
    /// Require `authorization: Bearer <token>` on every call (health excepted).
    #[arg(long, env = "CASE_API_SANDBOX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM certificate chain to serve TLS with.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key to serve TLS with.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let seed = cli
        .seed
        .as_deref()
        .map(Seed::from_file)
        .transpose()
        .context("loading the seed")?;
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls {
            cert_pem: std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
            key_pem: std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
        }),
        _ => None,
    };
    let config = SandboxConfig {
        db: location(cli.db.as_deref()),
        seed,
        token: cli.token,
        tls,
    };
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    serve(config, listener, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}
