//! A sandbox Case Management gRPC server: every `case.v1` service over SQLite, the standard
//! gRPC health service, and `sandbox.v1.SandboxAdmin` (fault injection, seeding), for local runs
//! and tests. Production points the readers at the real Case API instead.
//!
//! Start it in-process with [`SandboxServer::start`] (e.g. on `127.0.0.1:0`) or run it until a
//! future completes with [`serve`]; the `case-api-sandbox` binary wraps the same code.

pub mod auth;
pub mod faults;
pub mod seed;
pub mod service;
pub mod store;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use case_api::pb::case::v1::case_service_server::CaseServiceServer;
use case_api::pb::case::v1::project_settings_service_server::ProjectSettingsServiceServer;
use case_api::pb::case::v1::sync_metadata_service_server::SyncMetadataServiceServer;
use case_api::pb::case::v1::timeline_service_server::TimelineServiceServer;
use case_api::pb::case::v1::user_service_server::UserServiceServer;
use case_api::pb::sandbox::v1::sandbox_admin_server::SandboxAdminServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::Router;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use auth::RequireBearer;
pub use faults::Faults;
pub use seed::{Seed, SeedError, SeedOrg, SeedUser};
pub use service::Sandbox;
pub use store::{DbLocation, MetadataPage, SeedCounts, SharedStore, Store, StoreError};

/// The demo seed committed with the crate (`seed/demo.json`).
pub const DEMO_SEED_JSON: &str = include_str!("../seed/demo.json");

/// How to run the sandbox.
#[derive(Clone, Default)]
pub struct SandboxConfig {
    /// Where the data lives (in memory by default).
    pub db: DbLocation,
    /// Data loaded at start (upserted into an existing file database).
    pub seed: Option<Seed>,
    /// When set, every call but the health service's must carry
    /// `authorization: Bearer <token>` (UNAUTHENTICATED otherwise).
    pub token: Option<String>,
    /// Serve TLS with this certificate and key.
    pub tls: Option<ServerTls>,
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("db", &self.db)
            .field("seed", &self.seed.as_ref().map(|_| "<seed>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// A PEM certificate chain and private key to serve TLS with.
#[derive(Clone)]
pub struct ServerTls {
    /// PEM certificate chain.
    pub cert_pem: Vec<u8>,
    /// PEM private key.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Why the sandbox could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The store failed to open or to load the seed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The seed file is unreadable or invalid.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The gRPC transport failed (bad TLS material, serve error).
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Binding or inspecting the listener failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("server task: {0}")]
    Task(String),
}

/// Opens the store, loads the seed and assembles every service.
async fn build(config: SandboxConfig, faults: Arc<Faults>) -> Result<Router, SandboxError> {
    let store = SharedStore::open(config.db).await?;
    if let Some(seed) = config.seed {
        let counts = store.run(move |s| s.load_seed(&seed)).await?;
        tracing::info!(?counts, "seed loaded");
    }
    let sandbox = Sandbox::new(store, faults);
    let auth = RequireBearer::new(config.token.as_deref());

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<CaseServiceServer<Sandbox>>().await;
    reporter
        .set_serving::<TimelineServiceServer<Sandbox>>()
        .await;
    reporter
        .set_serving::<ProjectSettingsServiceServer<Sandbox>>()
        .await;
    reporter
        .set_serving::<SyncMetadataServiceServer<Sandbox>>()
        .await;
    reporter.set_serving::<UserServiceServer<Sandbox>>().await;

    let mut server = Server::builder();
    if let Some(tls) = config.tls {
        let identity = Identity::from_pem(tls.cert_pem, tls.key_pem);
        server = server.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    Ok(server
        .add_service(health)
        .add_service(CaseServiceServer::with_interceptor(
            sandbox.clone(),
            auth.clone(),
        ))
        .add_service(TimelineServiceServer::with_interceptor(
            sandbox.clone(),
            auth.clone(),
        ))
        .add_service(ProjectSettingsServiceServer::with_interceptor(
            sandbox.clone(),
            auth.clone(),
        ))
        .add_service(SyncMetadataServiceServer::with_interceptor(
            sandbox.clone(),
            auth.clone(),
        ))
        .add_service(UserServiceServer::with_interceptor(
            sandbox.clone(),
            auth.clone(),
        ))
        .add_service(SandboxAdminServer::with_interceptor(sandbox, auth)))
}

/// Serves on `listener` until `shutdown` completes, then drains in-flight calls and returns.
pub async fn serve(
    config: SandboxConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    let tls = config.tls.is_some();
    let router = build(config, Arc::new(Faults::default())).await?;
    tracing::info!(addr = ?listener.local_addr()?, tls, "case-api sandbox serving");
    router
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    tracing::info!("case-api sandbox stopped");
    Ok(())
}

/// The accepted connections, with `TCP_NODELAY` (tonic leaves it off for an incoming stream it
/// is handed: concurrent calls on one connection then wait on delayed ACKs, ~40 ms each).
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// A sandbox running in the background of the current Tokio runtime.
///
/// Dropping the handle stops the server too (without waiting for it).
#[derive(Debug)]
pub struct SandboxServer {
    addr: SocketAddr,
    tls: bool,
    faults: Arc<Faults>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SandboxError>>>,
}

impl SandboxServer {
    /// Starts serving on `listener` (store and seed errors are returned here, before serving).
    pub async fn start(config: SandboxConfig, listener: TcpListener) -> Result<Self, SandboxError> {
        let addr = listener.local_addr()?;
        let tls = config.tls.is_some();
        let faults = Arc::new(Faults::default());
        let router = build(config, faults.clone()).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming(listener), async {
                    let _ = stopped.await;
                })
                .await
                .map_err(SandboxError::from)
        });
        tracing::info!(%addr, tls, "case-api sandbox started");
        Ok(Self {
            addr,
            tls,
            faults,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Binds `addr` (e.g. `127.0.0.1:0`) and starts serving on it.
    pub async fn bind(config: SandboxConfig, addr: SocketAddr) -> Result<Self, SandboxError> {
        Self::start(config, TcpListener::bind(addr).await?).await
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URI clients connect to (`http://` or `https://` and the address).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The server's fault rules and call counts (the same ones the admin service changes).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops accepting calls, waits for in-flight ones, and returns how the server ended.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| SandboxError::Task(e.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
