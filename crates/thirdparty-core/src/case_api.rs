//! The case-management API as the pipeline and processors see it, and a tracing decorator.

use std::fmt;

use async_trait::async_trait;
use tracing::Instrument;

use crate::case::{
    Case, CaseUpdate, Comment, CommentOutcome, ExternalReference, NewComment, SyncMetadata,
    SyncMetadataPage, SyncSettings, User, UserQuery,
};
use crate::error::CaseApiError;

/// The calls the reader makes to the case-management system.
///
/// Contract, for every implementation (the gRPC client, the in-memory fake):
/// - calls are independent and may run concurrently; implementations are `Send + Sync`;
/// - `update_case` is an optimistic-locked write of one field: it succeeds only if the case is
///   still at `expected_version`, bumps the version, records the writer of the field and, for a
///   synced change, stores its source time and change key as the field's watermark for its
///   item, all in the same write; otherwise it fails with
///   [`CaseApiError::VersionMismatch`] and changes nothing;
/// - references are keyed by (integration, site, id): two sites with the same id are two items;
/// - `add_comment` is idempotent by `idempotency_key`: a repeat returns the first comment with
///   `created: false` and changes nothing;
/// - absence is `Ok(None)` for look-ups, never an error; [`CaseApiError::NotFound`] is reserved
///   for writes to something that does not exist;
/// - errors carry their class (see [`crate::HandleError::class`]); implementations must not retry
///   internally beyond transport reconnects, the runtime owns retries.
#[async_trait]
pub trait CaseApi: Send + Sync + fmt::Debug {
    /// The case with this id, if it exists.
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError>;

    /// The case linked to a third-party item (integration, site and id), if any.
    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError>;

    /// Writes one field at an expected version; returns the case after the write.
    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError>;

    /// Adds a comment to a case's timeline, idempotently by key.
    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError>;

    /// The comments of a case, oldest first.
    async fn list_comments(&self, org_id: u64, case_id: &str)
    -> Result<Vec<Comment>, CaseApiError>;

    /// A case project's sync settings for an integration, if configured.
    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError>;

    /// Every sync scope an organization has configured for an integration.
    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError>;

    /// The case user behind a third-party user, if one matches.
    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError>;

    /// One page of every organization's sync scopes for an integration (`ListAllSyncMetadata`),
    /// for cache warming: `page_token` is `None` for the first page, then the previous page's
    /// `next_page_token`; `page_size` bounds the entries (0: the implementation's default).
    /// Entries come ordered by organization, an organization's in the order
    /// [`CaseApi::list_sync_metadata`] gives them, so gathering one organization's entries
    /// across pages yields exactly its `list_sync_metadata` answer. A token the implementation
    /// did not issue is [`CaseApiError::InvalidArgument`].
    ///
    /// Optional: the default answers [`CaseApiError::Unimplemented`] (as a Case API without the
    /// RPC does), and warming then leaves the cache cold. Wrappers must forward it.
    async fn list_all_sync_metadata(
        &self,
        integration: &str,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        let _ = (integration, page_token, page_size);
        Err(CaseApiError::Unimplemented(
            "list_all_sync_metadata is not offered by this case api".into(),
        ))
    }
}

/// Wraps a [`CaseApi`] so every call runs in a span named as `docs/design.md` ("Names operators key on") names it (`get_case`,
/// `get_settings`, `update_case`, `create_timeline_cell`, ...).
#[derive(Debug)]
pub struct Traced<A>(pub A);

#[async_trait]
impl<A: CaseApi> CaseApi for Traced<A> {
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError> {
        self.0
            .get_case(org_id, case_id)
            .instrument(tracing::info_span!("get_case", org_id, case_id))
            .await
    }

    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        self.0
            .find_case_by_external_reference(org_id, reference)
            .instrument(tracing::info_span!(
                "get_case",
                org_id,
                integration = %reference.integration,
                site = %reference.site,
                reference = %reference.reference
            ))
            .await
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        let span = tracing::info_span!(
            "update_case",
            org_id = update.org_id,
            case_id = %update.case_id,
            field = %update.change.field(),
            expected_version = update.expected_version,
        );
        self.0.update_case(update).instrument(span).await
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        let span = tracing::info_span!(
            "create_timeline_cell",
            org_id = comment.org_id,
            case_id = %comment.case_id,
            is_work_note = comment.is_work_note,
        );
        self.0.add_comment(comment).instrument(span).await
    }

    async fn list_comments(
        &self,
        org_id: u64,
        case_id: &str,
    ) -> Result<Vec<Comment>, CaseApiError> {
        self.0
            .list_comments(org_id, case_id)
            .instrument(tracing::info_span!("list_comments", org_id, case_id))
            .await
    }

    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        self.0
            .get_project_settings(org_id, project_id, integration)
            .instrument(tracing::info_span!(
                "get_settings",
                org_id,
                project_id,
                integration
            ))
            .await
    }

    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError> {
        self.0
            .list_sync_metadata(org_id, integration)
            .instrument(tracing::info_span!(
                "list_sync_metadata",
                org_id,
                integration
            ))
            .await
    }

    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError> {
        self.0
            .resolve_user(query)
            .instrument(tracing::info_span!("resolve_user", org_id = query.org_id))
            .await
    }

    async fn list_all_sync_metadata(
        &self,
        integration: &str,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        let first_page = page_token.is_none();
        self.0
            .list_all_sync_metadata(integration, page_token, page_size)
            .instrument(tracing::info_span!(
                "list_all_sync_metadata",
                integration,
                page_size,
                first_page
            ))
            .await
    }
}

#[async_trait]
impl<A: CaseApi + ?Sized> CaseApi for std::sync::Arc<A> {
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError> {
        (**self).get_case(org_id, case_id).await
    }

    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        (**self)
            .find_case_by_external_reference(org_id, reference)
            .await
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        (**self).update_case(update).await
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        (**self).add_comment(comment).await
    }

    async fn list_comments(
        &self,
        org_id: u64,
        case_id: &str,
    ) -> Result<Vec<Comment>, CaseApiError> {
        (**self).list_comments(org_id, case_id).await
    }

    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        (**self)
            .get_project_settings(org_id, project_id, integration)
            .await
    }

    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError> {
        (**self).list_sync_metadata(org_id, integration).await
    }

    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError> {
        (**self).resolve_user(query).await
    }

    async fn list_all_sync_metadata(
        &self,
        integration: &str,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        (**self)
            .list_all_sync_metadata(integration, page_token, page_size)
            .await
    }
}
