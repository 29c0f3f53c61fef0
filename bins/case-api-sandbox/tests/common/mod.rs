//! Shared helpers: start the sandbox on 127.0.0.1:0 with the demo seed, build clients.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use case_api::pb::sandbox::v1::sandbox_admin_client::SandboxAdminClient;
use case_api::{BearerAuth, GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::{DEMO_SEED_JSON, SandboxConfig, SandboxServer, Seed};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Acme (Jira Cloud + ServiceNow).
pub const ACME: u64 = 123_456;
/// Globex (Jira Server + push-only ServiceNow).
pub const GLOBEX: u64 = 789_012;
/// The Acme case linked to Jira issue 10002.
pub const CASE_10002: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a01";
/// The Acme Jira project.
pub const ACME_JIRA_PROJECT: &str = "b7e2c1a4-5d3f-4e8a-9c61-0f2d4a7b8e01";
/// The Acme ServiceNow project.
pub const ACME_SNOW_PROJECT: &str = "c4d9e8f7-1a2b-4c3d-8e9f-a0b1c2d3e402";

pub fn demo_config(token: Option<&str>) -> SandboxConfig {
    SandboxConfig {
        seed: Some(Seed::from_json(DEMO_SEED_JSON).unwrap()),
        token: token.map(str::to_owned),
        ..SandboxConfig::default()
    }
}

pub async fn start(config: SandboxConfig) -> SandboxServer {
    SandboxServer::bind(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub fn client_config(server: &SandboxServer, token: Option<&str>) -> GrpcCaseApiConfig {
    let mut config = GrpcCaseApiConfig::new(server.endpoint())
        .with_timeout(Duration::from_secs(5))
        .with_connect_timeout(Duration::from_secs(2));
    config.bearer_token = token.map(str::to_owned);
    config
}

pub async fn client(server: &SandboxServer, token: Option<&str>) -> GrpcCaseApi {
    GrpcCaseApi::connect(&client_config(server, token))
        .await
        .unwrap()
}

pub type Admin = SandboxAdminClient<InterceptedService<Channel, BearerAuth>>;

pub async fn admin(server: &SandboxServer, token: Option<&str>) -> Admin {
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    SandboxAdminClient::with_interceptor(channel, BearerAuth::new(token).unwrap())
}
