//! A [`CaseApi`] that writes nothing and answers what each write would have done: how a dry
//! run (`explain`, `run --dry-run`, a `replay` before `--apply`) lets the processor take every
//! decision it takes live (assignee resolution, an assignee state conflict, a comment whose key
//! already exists, a no-op) from read-only look-ups. See `docs/design.md`, "Dry runs decide
//! like live runs".

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::case::{
    Case, CaseUpdate, Comment, CommentOutcome, ExternalReference, NewComment, SyncMetadata,
    SyncMetadataPage, SyncSettings, User, UserQuery,
};
use crate::case_api::CaseApi;
use crate::error::CaseApiError;

/// Forwards every read to the wrapped API; answers every write from reads, writing nothing:
///
/// - `update_case`: reads the case; a case at another version is
///   [`CaseApiError::VersionMismatch`], a missing one [`CaseApiError::NotFound`], as the write
///   would be; otherwise the case as the write would leave it (value, writer, watermark,
///   version + 1);
/// - `add_comment`: lists the case's comments; a key already used returns that comment with
///   `created: false`, as the write would; otherwise the comment it would create.
///
/// What it cannot foresee: a write the server would refuse for a reason no read shows (for
/// example an `INVALID_ARGUMENT` on a value), and a race with a writer between the read and the
/// real write.
#[derive(Debug)]
pub struct ReadOnly<'a> {
    inner: &'a dyn CaseApi,
}

impl<'a> ReadOnly<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a dyn CaseApi) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl CaseApi for ReadOnly<'_> {
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError> {
        self.inner.get_case(org_id, case_id).await
    }

    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        self.inner
            .find_case_by_external_reference(org_id, reference)
            .await
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        let Some(mut case) = self.inner.get_case(update.org_id, &update.case_id).await? else {
            return Err(CaseApiError::NotFound(format!("case {}", update.case_id)));
        };
        if case.version != update.expected_version {
            return Err(CaseApiError::VersionMismatch {
                case_id: update.case_id.clone(),
                expected: update.expected_version,
            });
        }
        case.record_update(update, OffsetDateTime::now_utc());
        Ok(case)
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        let existing = self
            .inner
            .list_comments(comment.org_id, &comment.case_id)
            .await?;
        if let Some(first) = existing
            .into_iter()
            .find(|c| c.idempotency_key == comment.idempotency_key)
        {
            return Ok(CommentOutcome {
                comment: first,
                created: false,
            });
        }
        Ok(CommentOutcome {
            comment: Comment {
                id: String::new(),
                case_id: comment.case_id.clone(),
                idempotency_key: comment.idempotency_key.clone(),
                body: comment.body.clone(),
                author: comment.author.clone(),
                is_work_note: comment.is_work_note,
            },
            created: true,
        })
    }

    async fn list_comments(
        &self,
        org_id: u64,
        case_id: &str,
    ) -> Result<Vec<Comment>, CaseApiError> {
        self.inner.list_comments(org_id, case_id).await
    }

    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        self.inner
            .get_project_settings(org_id, project_id, integration)
            .await
    }

    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError> {
        self.inner.list_sync_metadata(org_id, integration).await
    }

    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError> {
        self.inner.resolve_user(query).await
    }

    async fn list_all_sync_metadata(
        &self,
        integration: &str,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        self.inner
            .list_all_sync_metadata(integration, page_token, page_size)
            .await
    }
}
