//! Applying a GitHub changelog that passed every filter.
//!
//! - title, description, status, priority: one versioned [`CaseApi::update_case`]
//!   (`expected_version` = the case's version; the event time becomes the field's watermark);
//!   version mismatches come back unchanged so the pipeline re-reads and re-filters;
//! - assignee: the shared assignee rules ([`thirdparty_core::assignee`]); an issue has several
//!   assignees and a case one, so unassigning someone the case does not hold is `no_change`;
//! - comments: created with the idempotency key `github:{host}:{issue_id}:{comment_id}` and the
//!   GitHub author preserved; a replay is `duplicate_event`.

use async_trait::async_trait;
use thirdparty_core::assignee::{AssigneeChange, assignee_change, resolve_user_id};
use thirdparty_core::rules::{self, field_update};
use thirdparty_core::{
    Case, CaseApi, CaseApiError, Changelog, ChangelogType, FieldChange, FilterReason,
    ProcessOutcome, Processor, SyncSettings, present,
};

use crate::INTEGRATION;
use crate::filterer::planned_change;

/// The GitHub processor. Stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitHubProcessor;

impl GitHubProcessor {
    /// The processor.
    pub fn new() -> Self {
        Self
    }
}

/// The idempotency key of a GitHub comment: `github:{host}:{issue_id}:{comment_id}`.
pub fn comment_idempotency_key(host: &str, issue_id: &str, comment_id: &str) -> String {
    format!("{INTEGRATION}:{host}:{issue_id}:{comment_id}")
}

#[async_trait]
impl Processor for GitHubProcessor {
    async fn process(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
        api: &dyn CaseApi,
    ) -> Result<ProcessOutcome, CaseApiError> {
        let change = match &changelog.changelog_type {
            ChangelogType::CreateComment => return add_comment(changelog, case, api).await,
            ChangelogType::UpdateAssignee => {
                if present(changelog.to_id.as_ref()).is_none()
                    && present(changelog.to_string.as_ref()).is_none()
                {
                    let removed = resolve_user_id(
                        changelog,
                        present(changelog.from_id.as_ref()),
                        present(changelog.from_string.as_ref()),
                        api,
                    )
                    .await?;
                    if removed.is_none() || removed != case.assignee_id {
                        return Ok(ProcessOutcome::Filtered(FilterReason::NoChange));
                    }
                }
                match assignee_change(changelog, case, settings, api).await? {
                    AssigneeChange::Write(change) => Ok(change),
                    AssigneeChange::Drop(reason) => Err(reason),
                }
            }
            _ => planned_change(changelog, case, settings),
        };
        match change {
            Ok(change) => update(changelog, case, change, api).await,
            Err(reason) => Ok(ProcessOutcome::Filtered(reason)),
        }
    }
}

async fn update(
    changelog: &Changelog,
    case: &Case,
    change: FieldChange,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    api.update_case(&field_update(changelog, case, change))
        .await?;
    Ok(ProcessOutcome::Applied)
}

async fn add_comment(
    changelog: &Changelog,
    case: &Case,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    // Without the comment id there is no idempotency key: a replay would duplicate it.
    let key = present(changelog.comment_id.as_ref()).map(|comment_id| {
        comment_idempotency_key(&changelog.site, &changelog.third_party_id, comment_id)
    });
    rules::add_comment(changelog, case, key, api).await
}
