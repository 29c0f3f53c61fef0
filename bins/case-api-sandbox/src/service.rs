//! The gRPC services over the store: `case.v1` (every service) and `sandbox.v1.SandboxAdmin`.

use std::sync::Arc;
use std::time::Duration;

use case_api::pb::case::v1 as pb;
use case_api::pb::sandbox::v1 as admin;
use thirdparty_core as tp;
use tonic::{Code, Request, Response, Status};

use crate::faults::Faults;
use crate::seed::Seed;
use crate::store::SharedStore;

const GET_CASE: &str = "/case.v1.CaseService/GetCase";
const FIND_CASE: &str = "/case.v1.CaseService/FindCaseByExternalReference";
const UPDATE_CASE: &str = "/case.v1.CaseService/UpdateCase";
const LIST_COMMENTS: &str = "/case.v1.CaseService/ListComments";
const CREATE_COMMENT: &str = "/case.v1.TimelineService/CreateComment";
const GET_SETTINGS: &str = "/case.v1.ProjectSettingsService/GetProjectSettings";
const LIST_METADATA: &str = "/case.v1.SyncMetadataService/ListSyncMetadata";
const LIST_ALL_METADATA: &str = "/case.v1.SyncMetadataService/ListAllSyncMetadata";

/// Entries of a `ListAllSyncMetadata` page when the request asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// The most entries a `ListAllSyncMetadata` page holds, whatever the request asks.
pub const MAX_PAGE_SIZE: u32 = 1000;
const RESOLVE_USER: &str = "/case.v1.UserService/ResolveUser";

/// Every sandbox service: one store, one set of fault rules. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    store: SharedStore,
    faults: Arc<Faults>,
}

impl Sandbox {
    /// The services over `store`, subject to `faults`.
    pub fn new(store: SharedStore, faults: Arc<Faults>) -> Self {
        Self { store, faults }
    }

    async fn guard(&self, path: &str) -> Result<(), Status> {
        self.faults.check(path).await
    }

    /// The reply to a call of `path` that was handled (its writes committed), unless a
    /// lost-reply rule matches: then the caller gets the rule's status instead, the writes stay.
    fn reply<T>(&self, path: &str, message: T) -> Result<Response<T>, Status> {
        match self.faults.after(path) {
            Some(status) => Err(status),
            None => Ok(Response::new(message)),
        }
    }
}

fn required(value: &str, name: &str) -> Result<(), Status> {
    if value.trim().is_empty() {
        Err(Status::invalid_argument(format!("`{name}` is required")))
    } else {
        Ok(())
    }
}

/// A `ListAllSyncMetadata` page token: the `(org_id, seq)` of the last entry of the previous
/// page, written `{org_id}:{seq}` (opaque to clients).
fn page_token(after: (u64, i64)) -> String {
    format!("{}:{}", after.0, after.1)
}

/// The `(org_id, seq)` of a page token this server issued.
fn parse_page_token(token: &str) -> Result<(u64, i64), Status> {
    let invalid = || {
        Status::invalid_argument(format!(
            "page token `{}` was not issued by this server",
            tp::error::truncate_for_log(token)
        ))
    };
    let (org_id, seq) = token.split_once(':').ok_or_else(invalid)?;
    Ok((
        org_id.parse().map_err(|_| invalid())?,
        seq.parse().map_err(|_| invalid())?,
    ))
}

fn validate_change(change: &tp::FieldChange) -> Result<(), Status> {
    match change {
        tp::FieldChange::Title(v) => required(v, "change.title"),
        tp::FieldChange::Status(v) => required(v, "change.status"),
        tp::FieldChange::Priority(Some(v)) => required(v, "change.priority"),
        tp::FieldChange::Assignee(Some(v)) => required(v, "change.assignee_id"),
        tp::FieldChange::Description(_)
        | tp::FieldChange::Priority(None)
        | tp::FieldChange::Assignee(None)
        | tp::FieldChange::DueDate(_) => Ok(()),
    }
}

#[tonic::async_trait]
impl pb::case_service_server::CaseService for Sandbox {
    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::GetCaseResponse>, Status> {
        self.guard(GET_CASE).await?;
        let r = request.into_inner();
        required(&r.case_id, "case_id")?;
        let case = self
            .store
            .run(move |s| s.get_case(r.org_id, &r.case_id))
            .await?;
        self.reply(
            GET_CASE,
            pb::GetCaseResponse {
                case: case.as_ref().map(Into::into),
            },
        )
    }

    async fn find_case_by_external_reference(
        &self,
        request: Request<pb::FindCaseByExternalReferenceRequest>,
    ) -> Result<Response<pb::FindCaseByExternalReferenceResponse>, Status> {
        self.guard(FIND_CASE).await?;
        let r = request.into_inner();
        required(&r.integration, "integration")?;
        required(&r.reference, "reference")?;
        let reference = tp::ExternalReference::new(r.integration, r.site, r.reference);
        let case = self
            .store
            .run(move |s| s.find_case(r.org_id, &reference))
            .await?;
        self.reply(
            FIND_CASE,
            pb::FindCaseByExternalReferenceResponse {
                case: case.as_ref().map(Into::into),
            },
        )
    }

    async fn update_case(
        &self,
        request: Request<pb::UpdateCaseRequest>,
    ) -> Result<Response<pb::UpdateCaseResponse>, Status> {
        self.guard(UPDATE_CASE).await?;
        let update = request
            .into_inner()
            .update
            .ok_or_else(|| Status::invalid_argument("`update` is required"))?;
        let update = tp::CaseUpdate::try_from(update)?;
        required(&update.case_id, "update.case_id")?;
        validate_change(&update.change)?;
        let (case_id, field, expected) = (
            update.case_id.clone(),
            update.change.field(),
            update.expected_version,
        );
        let result = self.store.run(move |s| s.update_case(&update)).await;
        match &result {
            Ok(case) => tracing::info!(%case_id, %field, version = case.version, "case updated"),
            Err(e) => tracing::info!(%case_id, %field, expected, error = %e, "case update refused"),
        }
        let case = result?;
        self.reply(
            UPDATE_CASE,
            pb::UpdateCaseResponse {
                case: Some((&case).into()),
            },
        )
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        self.guard(LIST_COMMENTS).await?;
        let r = request.into_inner();
        required(&r.case_id, "case_id")?;
        let comments = self
            .store
            .run(move |s| s.list_comments(r.org_id, &r.case_id))
            .await?;
        self.reply(
            LIST_COMMENTS,
            pb::ListCommentsResponse {
                comments: comments.iter().map(Into::into).collect(),
            },
        )
    }
}

#[tonic::async_trait]
impl pb::timeline_service_server::TimelineService for Sandbox {
    async fn create_comment(
        &self,
        request: Request<pb::CreateCommentRequest>,
    ) -> Result<Response<pb::CreateCommentResponse>, Status> {
        self.guard(CREATE_COMMENT).await?;
        let comment = request
            .into_inner()
            .comment
            .ok_or_else(|| Status::invalid_argument("`comment` is required"))?;
        let comment = tp::NewComment::try_from(comment)?;
        required(&comment.case_id, "comment.case_id")?;
        required(&comment.idempotency_key, "comment.idempotency_key")?;
        let case_id = comment.case_id.clone();
        let outcome = self.store.run(move |s| s.create_comment(&comment)).await?;
        tracing::info!(
            %case_id,
            comment_id = %outcome.comment.id,
            created = outcome.created,
            "comment"
        );
        self.reply(
            CREATE_COMMENT,
            pb::CreateCommentResponse {
                comment: Some((&outcome.comment).into()),
                created: outcome.created,
            },
        )
    }
}

#[tonic::async_trait]
impl pb::project_settings_service_server::ProjectSettingsService for Sandbox {
    async fn get_project_settings(
        &self,
        request: Request<pb::GetProjectSettingsRequest>,
    ) -> Result<Response<pb::GetProjectSettingsResponse>, Status> {
        self.guard(GET_SETTINGS).await?;
        let r = request.into_inner();
        required(&r.project_id, "project_id")?;
        required(&r.integration, "integration")?;
        let settings = self
            .store
            .run(move |s| s.get_settings(r.org_id, &r.project_id, &r.integration))
            .await?;
        self.reply(
            GET_SETTINGS,
            pb::GetProjectSettingsResponse {
                settings: settings.as_ref().map(Into::into),
            },
        )
    }
}

#[tonic::async_trait]
impl pb::sync_metadata_service_server::SyncMetadataService for Sandbox {
    async fn list_sync_metadata(
        &self,
        request: Request<pb::ListSyncMetadataRequest>,
    ) -> Result<Response<pb::ListSyncMetadataResponse>, Status> {
        self.guard(LIST_METADATA).await?;
        let r = request.into_inner();
        required(&r.integration, "integration")?;
        let metadata = self
            .store
            .run(move |s| s.list_metadata(r.org_id, &r.integration))
            .await?;
        self.reply(
            LIST_METADATA,
            pb::ListSyncMetadataResponse {
                metadata: metadata.iter().map(Into::into).collect(),
            },
        )
    }

    async fn list_all_sync_metadata(
        &self,
        request: Request<pb::ListAllSyncMetadataRequest>,
    ) -> Result<Response<pb::ListAllSyncMetadataResponse>, Status> {
        self.guard(LIST_ALL_METADATA).await?;
        let r = request.into_inner();
        required(&r.integration, "integration")?;
        let after = Some(r.page_token.as_str())
            .filter(|t| !t.is_empty())
            .map(parse_page_token)
            .transpose()?;
        let limit = match r.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let page = self
            .store
            .run(move |s| s.list_all_metadata(&r.integration, after, limit))
            .await?;
        self.reply(
            LIST_ALL_METADATA,
            pb::ListAllSyncMetadataResponse {
                entries: page.entries.iter().map(Into::into).collect(),
                next_page_token: page.next.map(page_token).unwrap_or_default(),
            },
        )
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for Sandbox {
    async fn resolve_user(
        &self,
        request: Request<pb::ResolveUserRequest>,
    ) -> Result<Response<pb::ResolveUserResponse>, Status> {
        self.guard(RESOLVE_USER).await?;
        let query: tp::UserQuery = request
            .into_inner()
            .query
            .ok_or_else(|| Status::invalid_argument("`query` is required"))?
            .into();
        let names_something = [&query.external_id, &query.email, &query.display_name]
            .into_iter()
            .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()));
        if !names_something {
            return Err(Status::invalid_argument(
                "the query names no external id, e-mail or display name",
            ));
        }
        let user = self.store.run(move |s| s.resolve_user(&query)).await?;
        self.reply(
            RESOLVE_USER,
            pb::ResolveUserResponse {
                user: user.as_ref().map(Into::into),
            },
        )
    }
}

#[tonic::async_trait]
impl admin::sandbox_admin_server::SandboxAdmin for Sandbox {
    async fn inject_fault(
        &self,
        request: Request<admin::InjectFaultRequest>,
    ) -> Result<Response<admin::InjectFaultResponse>, Status> {
        let r = request.into_inner();
        required(&r.method, "method")?;
        if !(1..=16).contains(&r.code) {
            return Err(Status::invalid_argument(format!(
                "`code` {} is not a gRPC error code (1..16)",
                r.code
            )));
        }
        let code = Code::from_i32(r.code);
        let lose_reply = r.lose_reply;
        if r.duration_ms > 0 {
            let duration = Duration::from_millis(r.duration_ms);
            if lose_reply {
                self.faults
                    .lose_replies_for(&r.method, code, duration, &r.message);
            } else {
                self.faults
                    .inject_for(&r.method, code, duration, &r.message);
            }
            tracing::info!(method = %r.method, ?code, duration_ms = r.duration_ms, lose_reply, "outage injected");
            return Ok(Response::new(admin::InjectFaultResponse {}));
        }
        if r.count == 0 {
            return Err(Status::invalid_argument(
                "`count` or `duration_ms` must be positive",
            ));
        }
        if lose_reply {
            self.faults
                .lose_replies(&r.method, code, r.count, &r.message);
        } else {
            self.faults.inject(&r.method, code, r.count, &r.message);
        }
        tracing::info!(method = %r.method, ?code, count = r.count, lose_reply, "fault injected");
        Ok(Response::new(admin::InjectFaultResponse {}))
    }

    async fn set_latency(
        &self,
        request: Request<admin::SetLatencyRequest>,
    ) -> Result<Response<admin::SetLatencyResponse>, Status> {
        let r = request.into_inner();
        required(&r.method, "method")?;
        self.faults
            .set_latency(&r.method, Duration::from_millis(r.millis));
        tracing::info!(method = %r.method, millis = r.millis, "latency set");
        Ok(Response::new(admin::SetLatencyResponse {}))
    }

    async fn clear_faults(
        &self,
        _request: Request<admin::ClearFaultsRequest>,
    ) -> Result<Response<admin::ClearFaultsResponse>, Status> {
        self.faults.clear();
        tracing::info!("faults cleared");
        Ok(Response::new(admin::ClearFaultsResponse {}))
    }

    async fn call_counts(
        &self,
        _request: Request<admin::CallCountsRequest>,
    ) -> Result<Response<admin::CallCountsResponse>, Status> {
        Ok(Response::new(admin::CallCountsResponse {
            calls: self.faults.call_counts().into_iter().collect(),
            lost_replies: self.faults.lost_reply_counts().into_iter().collect(),
        }))
    }

    async fn seed(
        &self,
        request: Request<admin::SeedRequest>,
    ) -> Result<Response<admin::SeedResponse>, Status> {
        let seed = Seed::from_json(&request.into_inner().json)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let counts = self.store.run(move |s| s.load_seed(&seed)).await?;
        tracing::info!(?counts, "seed loaded");
        Ok(Response::new(admin::SeedResponse {
            orgs: counts.orgs,
            cases: counts.cases,
            project_settings: counts.project_settings,
            sync_metadata: counts.sync_metadata,
            users: counts.users,
        }))
    }
}
