//! Applying a Jira changelog that passed every filter.
//!
//! - field changes: one versioned [`CaseApi::update_case`] (`expected_version` = the case's
//!   version, `source_event_time` = the event time, which becomes the field's watermark);
//!   version mismatches come back unchanged so the pipeline re-reads and re-filters;
//! - assignee: the new Jira user resolved to a case user (`assignee_resolution_failed`), the
//!   previous one too for the conflict check (the field's conflict policy), an absent new user
//!   unassigns, the same user is `no_change`;
//! - due date: `to` parsed as an ISO date or date-time (else `toString`), cleared when absent,
//!   `invalid_field_value` when unparsable;
//! - comments: created with the idempotency key `jira:{site}:{issue_id}:{comment_id}` and the
//!   Jira author preserved; a replay is `duplicate_event`.

use async_trait::async_trait;
use thirdparty_core::{
    Case, CaseApi, CaseApiError, Changelog, ChangelogType, FieldChange, FilterReason,
    ProcessOutcome, Processor, SyncSettings,
};

use crate::INTEGRATION;
use crate::filterer::{planned_change, present};
use thirdparty_core::assignee::{AssigneeChange, assignee_change};
use thirdparty_core::rules::{self, field_update};

/// The Jira processor. Stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct JiraProcessor;

impl JiraProcessor {
    /// The processor.
    pub fn new() -> Self {
        Self
    }
}

/// The idempotency key of a Jira comment: `jira:{site}:{issue_id}:{comment_id}` (comment ids
/// are per-site sequences, like issue ids).
pub fn comment_idempotency_key(site: &str, issue_id: &str, comment_id: &str) -> String {
    format!("{INTEGRATION}:{site}:{issue_id}:{comment_id}")
}

#[async_trait]
impl Processor for JiraProcessor {
    async fn process(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
        api: &dyn CaseApi,
    ) -> Result<ProcessOutcome, CaseApiError> {
        match &changelog.changelog_type {
            ChangelogType::CreateComment => add_comment(changelog, case, api).await,
            ChangelogType::UpdateAssignee => {
                match assignee_change(changelog, case, settings, api).await? {
                    AssigneeChange::Write(change) => update(changelog, case, change, api).await,
                    AssigneeChange::Drop(reason) => Ok(ProcessOutcome::Filtered(reason)),
                }
            }
            ChangelogType::Unsupported(_) => Ok(ProcessOutcome::Filtered(
                FilterReason::UnsupportedChangelogType,
            )),
            _ => match planned_change(changelog, case, settings) {
                Ok(change) => update(changelog, case, change, api).await,
                Err(reason) => Ok(ProcessOutcome::Filtered(reason)),
            },
        }
    }
}

async fn update(
    changelog: &Changelog,
    case: &Case,
    change: FieldChange,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    let update = field_update(changelog, case, change);
    api.update_case(&update).await?;
    tracing::debug!(
        case_id = %case.id,
        field = %update.change.field(),
        version = case.version,
        "jira change applied"
    );
    Ok(ProcessOutcome::Applied)
}

async fn add_comment(
    changelog: &Changelog,
    case: &Case,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    // Without the Jira comment id there is no idempotency key: a replay would duplicate it.
    let key = present(changelog.comment_id.as_ref()).map(|comment_id| {
        comment_idempotency_key(&changelog.site, &changelog.third_party_id, comment_id)
    });
    rules::add_comment(changelog, case, key, api).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::{Author, SyncType, User};
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;

    const AT: OffsetDateTime = datetime!(2024-01-15 10:30 UTC);

    fn case() -> Case {
        Case {
            id: "case-1".into(),
            org_id: 1,
            project_id: "p".into(),
            version: 7,
            title: "Title".into(),
            description: String::new(),
            priority: None,
            status: "OPEN".into(),
            assignee_id: Some("user-john".into()),
            due_date: None,
            created_at: AT,
            external_references: Vec::new(),
            source_watermarks: Vec::new(),
            last_writes: Default::default(),
        }
    }

    fn settings() -> SyncSettings {
        SyncSettings {
            org_id: 1,
            project_id: "p".into(),
            integration: "jira".into(),
            integration_enabled: true,
            project_sync_enabled: true,
            sync_type: SyncType::Bidirectional,
            field_sync: BTreeMap::new(),
            comment_sync_enabled: true,
            work_note_sync_enabled: true,
            value_mappings: BTreeMap::new(),
            custom_fields: BTreeMap::new(),
            start_syncing_from: None,
            conflict_policy: Default::default(),
            field_conflict_policies: Default::default(),
        }
    }

    fn api() -> InMemoryCaseApi {
        let api = InMemoryCaseApi::new();
        api.insert_case(case());
        api.insert_user(
            User {
                id: "user-john".into(),
                display_name: "John Smith".into(),
                email: None,
            },
            &["john-cloud", "john-migrated"],
        );
        api
    }

    fn assignee(from: Option<&str>, to: Option<&str>) -> Changelog {
        let mut c = Changelog::new("jira", 1, ChangelogType::UpdateAssignee, "10002", AT);
        c.site = "acme.atlassian.net".into();
        c.from_id = from.map(Into::into);
        c.to_id = to.map(Into::into);
        c
    }

    async fn process(c: &Changelog, case: &Case, api: &InMemoryCaseApi) -> ProcessOutcome {
        process_under(c, case, &settings(), api).await
    }

    async fn process_under(
        c: &Changelog,
        case: &Case,
        settings: &SyncSettings,
        api: &InMemoryCaseApi,
    ) -> ProcessOutcome {
        JiraProcessor::new()
            .process(c, case, settings, api)
            .await
            .unwrap()
    }

    fn under(policy: thirdparty_core::ConflictPolicy) -> SyncSettings {
        SyncSettings {
            conflict_policy: policy,
            ..settings()
        }
    }

    #[tokio::test]
    async fn assignee_conflicts_follow_the_policy() {
        use thirdparty_core::ConflictPolicy as P;
        let api = api();
        // Jira says the issue moves from nobody to John; the case has someone else.
        let from_absent = assignee(None, Some("john-cloud"));
        let mut case = case();
        case.assignee_id = Some("user-other".into());
        assert_eq!(
            process_under(&from_absent, &case, &under(P::Strict), &api).await,
            ProcessOutcome::Filtered(FilterReason::StateConflict)
        );
        let mut edited = case.clone();
        thirdparty_core::testkit::mark_edited_in_case(
            &mut edited,
            thirdparty_core::CaseField::Assignee,
            AT,
        );
        assert_eq!(
            process_under(&from_absent, &edited, &under(P::Converge), &api).await,
            ProcessOutcome::Filtered(FilterReason::StateConflict),
            "a person set it in the case"
        );
        assert_eq!(
            process_under(&from_absent, &edited, &under(P::Manual), &api).await,
            ProcessOutcome::Filtered(FilterReason::ManualConflict)
        );
        let mut fresh = api.case("case-1").unwrap();
        fresh.assignee_id = Some("user-other".into());
        api.insert_case(fresh.clone());
        assert_eq!(
            process_under(&from_absent, &fresh, &under(P::Converge), &api).await,
            ProcessOutcome::Applied,
            "nobody edited it in the case: converge on Jira's value"
        );
        let mut edited = api.case("case-1").unwrap();
        edited.assignee_id = Some("user-other".into());
        thirdparty_core::testkit::mark_edited_in_case(
            &mut edited,
            thirdparty_core::CaseField::Assignee,
            AT,
        );
        api.insert_case(edited.clone());
        assert_eq!(
            process_under(&from_absent, &edited, &under(P::ThirdPartyWins), &api).await,
            ProcessOutcome::Applied
        );
        assert_eq!(
            api.case("case-1").unwrap().assignee_id.as_deref(),
            Some("user-john")
        );
    }

    #[tokio::test]
    async fn assignee_outcomes() {
        let api = api();
        let same_user = assignee(Some("john-cloud"), Some("john-migrated"));
        assert_eq!(
            process(&same_user, &case(), &api).await,
            ProcessOutcome::Filtered(FilterReason::NoChange),
            "two Jira ids, one case user"
        );
        let unknown = assignee(Some("john-cloud"), Some("nobody"));
        assert_eq!(
            process(&unknown, &case(), &api).await,
            ProcessOutcome::Filtered(FilterReason::AssigneeResolutionFailed)
        );
        let from_absent = assignee(None, None);
        assert_eq!(
            process_under(
                &from_absent,
                &case(),
                &under(thirdparty_core::ConflictPolicy::Strict),
                &api
            )
            .await,
            ProcessOutcome::Filtered(FilterReason::StateConflict),
            "from absent while the case has an assignee"
        );
        let mut unassigned = case();
        unassigned.assignee_id = None;
        api.insert_case(unassigned.clone());
        let from_stranger = assignee(Some("ex-employee"), Some("john-cloud"));
        assert_eq!(
            process(&from_stranger, &unassigned, &api).await,
            ProcessOutcome::Applied,
            "an unknown previous user maps to no case user, like the case's"
        );
        let stored = api.case("case-1").unwrap();
        assert_eq!(stored.assignee_id.as_deref(), Some("user-john"));
        assert_eq!(stored.version, 8);
        assert_eq!(
            stored
                .watermark(thirdparty_core::CaseField::Assignee, &from_stranger.item())
                .map(|w| w.at),
            Some(AT)
        );
    }

    #[tokio::test]
    async fn version_mismatches_come_back_unchanged() {
        let api = api();
        let mut stale = case();
        stale.version = 6;
        let mut title = Changelog::new("jira", 1, ChangelogType::UpdateTitle, "10002", AT);
        title.to_string = Some("New".into());
        let err = JiraProcessor::new()
            .process(&title, &stale, &settings(), &api)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CaseApiError::VersionMismatch {
                case_id: "case-1".into(),
                expected: 6
            }
        );
        assert_eq!(api.case("case-1").unwrap().title, "Title");
    }

    #[tokio::test]
    async fn comments_are_idempotent_and_keep_their_author() {
        let api = api();
        let mut c = Changelog::new("jira", 1, ChangelogType::CreateComment, "10002", AT);
        c.site = "acme.atlassian.net".into();
        c.body = Some("  keep  spacing ".into());
        c.author = Some(Author {
            id: Some("jdoe".into()),
            display_name: Some("John Doe".into()),
        });
        assert_eq!(
            process(&c, &case(), &api).await,
            ProcessOutcome::Filtered(FilterReason::InvalidFieldValue),
            "no comment id, no idempotency key"
        );
        c.comment_id = Some("10050".into());
        assert_eq!(process(&c, &case(), &api).await, ProcessOutcome::Applied);
        assert_eq!(
            process(&c, &case(), &api).await,
            ProcessOutcome::Filtered(FilterReason::DuplicateEvent)
        );
        let comments = api.comments("case-1");
        assert_eq!(comments.len(), 1);
        assert_eq!(
            comments[0].idempotency_key,
            comment_idempotency_key("acme.atlassian.net", "10002", "10050")
        );
        assert_eq!(
            comments[0].idempotency_key,
            "jira:acme.atlassian.net:10002:10050"
        );
        assert_eq!(comments[0].body, "  keep  spacing ");
        assert_eq!(comments[0].author.id.as_deref(), Some("jdoe"));
        c.body = None;
        assert_eq!(
            process(&c, &case(), &api).await,
            ProcessOutcome::Filtered(FilterReason::EmptyComment)
        );
    }
}
