//! The `CaseApi` contract suite (`thirdparty_core::testkit::case_api_contract`), run for the
//! sandbox's SQLite store (through a thin `CaseApi` over it) and for the gRPC client against the
//! sandbox server: the store, the wire and the in-memory fake behave alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::{
    DbLocation, SandboxConfig, SandboxServer, Seed, SeedOrg, SeedUser, SharedStore, StoreError,
};
use thirdparty_core::testkit::case_api_contract::{INTEGRATION, World};
use thirdparty_core::{
    Case, CaseApi, CaseApiError, CaseUpdate, Comment, CommentOutcome, ExternalReference,
    NewComment, SyncMetadata, SyncMetadataPage, SyncSettings, User, UserQuery,
};

fn seed(world: World) -> Seed {
    Seed {
        orgs: world
            .orgs
            .iter()
            .map(|&id| SeedOrg {
                id,
                name: format!("org {id}"),
            })
            .collect(),
        project_settings: world.settings,
        sync_metadata: world.metadata,
        users: world
            .users
            .into_iter()
            .map(|(org_id, user, ids)| SeedUser {
                org_id,
                id: user.id,
                display_name: user.display_name,
                email: user.email,
                external_ids: BTreeMap::from([(INTEGRATION.to_owned(), ids)]),
            })
            .collect(),
        cases: world.cases,
    }
}

/// The store's errors as the gRPC service classifies them (`StoreError` -> status -> client).
fn api_error(err: StoreError) -> CaseApiError {
    match err {
        StoreError::NotFound(what) => CaseApiError::NotFound(what),
        StoreError::VersionMismatch {
            case_id, expected, ..
        } => CaseApiError::VersionMismatch { case_id, expected },
        StoreError::InvalidArgument(why) => CaseApiError::InvalidArgument(why),
        other => CaseApiError::Internal(other.to_string()),
    }
}

/// A `CaseApi` straight over the sandbox's store.
#[derive(Debug)]
struct StoreApi(SharedStore);

#[async_trait]
impl CaseApi for StoreApi {
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError> {
        let case_id = case_id.to_owned();
        self.0
            .run(move |s| s.get_case(org_id, &case_id))
            .await
            .map_err(api_error)
    }

    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        let reference = reference.clone();
        self.0
            .run(move |s| s.find_case(org_id, &reference))
            .await
            .map_err(api_error)
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        let update = update.clone();
        self.0
            .run(move |s| s.update_case(&update))
            .await
            .map_err(api_error)
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        let comment = comment.clone();
        self.0
            .run(move |s| s.create_comment(&comment))
            .await
            .map_err(api_error)
    }

    async fn list_comments(
        &self,
        org_id: u64,
        case_id: &str,
    ) -> Result<Vec<Comment>, CaseApiError> {
        let case_id = case_id.to_owned();
        self.0
            .run(move |s| s.list_comments(org_id, &case_id))
            .await
            .map_err(api_error)
    }

    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        let (project_id, integration) = (project_id.to_owned(), integration.to_owned());
        self.0
            .run(move |s| s.get_settings(org_id, &project_id, &integration))
            .await
            .map_err(api_error)
    }

    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError> {
        let integration = integration.to_owned();
        self.0
            .run(move |s| s.list_metadata(org_id, &integration))
            .await
            .map_err(api_error)
    }

    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError> {
        let query = query.clone();
        self.0
            .run(move |s| s.resolve_user(&query))
            .await
            .map_err(api_error)
    }

    /// The store's paging with the service's token (`{org_id}:{seq}`) and page sizes.
    async fn list_all_sync_metadata(
        &self,
        integration: &str,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        let after = page_token
            .map(|t| {
                let (org, seq) = t.split_once(':').unwrap_or_default();
                match (org.parse(), seq.parse()) {
                    (Ok(org), Ok(seq)) => Ok((org, seq)),
                    _ => Err(CaseApiError::InvalidArgument(format!("page token `{t}`"))),
                }
            })
            .transpose()?;
        let limit = match page_size {
            0 => case_api_sandbox::service::DEFAULT_PAGE_SIZE,
            n => n.min(case_api_sandbox::service::MAX_PAGE_SIZE),
        };
        let integration = integration.to_owned();
        let page = self
            .0
            .run(move |s| s.list_all_metadata(&integration, after, limit))
            .await
            .map_err(api_error)?;
        Ok(SyncMetadataPage {
            entries: page.entries,
            next_page_token: page.next.map(|(org, seq)| format!("{org}:{seq}")),
        })
    }
}

/// A fresh in-memory store seeded with the world.
async fn seeded_store(world: World) -> Arc<dyn CaseApi> {
    let store = SharedStore::open(DbLocation::InMemory).await.unwrap();
    let seed = seed(world);
    store.run(move |s| s.load_seed(&seed)).await.unwrap();
    Arc::new(StoreApi(store))
}

/// The gRPC client against a sandbox server seeded with the world (the server lives as long as
/// the client).
struct Served {
    _server: SandboxServer,
    client: GrpcCaseApi,
}

impl AsRef<dyn CaseApi> for Served {
    fn as_ref(&self) -> &(dyn CaseApi + 'static) {
        &self.client
    }
}

async fn seeded_grpc(world: World) -> Served {
    let server = SandboxServer::bind(
        SandboxConfig {
            seed: Some(seed(world)),
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(server.endpoint()))
        .await
        .unwrap();
    Served {
        _server: server,
        client,
    }
}

mod store {
    thirdparty_core::case_api_contract_tests!(crate::seeded_store);
}

mod grpc {
    thirdparty_core::case_api_contract_tests!(crate::seeded_grpc);
}
