//! Applying a ServiceNow changelog that passed every filter.

use async_trait::async_trait;
use thirdparty_core::error::truncate_for_log;
use thirdparty_core::rules::{self, field_update};
use thirdparty_core::{
    Case, CaseApi, CaseApiError, CaseField, Changelog, ChangelogType, FieldChange, FilterReason,
    Fnv1a, ProcessOutcome, Processor, SyncSettings,
};
use time::format_description::well_known::Rfc3339;

use crate::INTEGRATION;

/// The idempotency key of a comment or work note:
/// `servicenow:{instance}:{sysId}:{updatedAt as RFC 3339}:{comment|work_note}:{body digest}`.
///
/// ServiceNow diff events carry no journal-entry id, so the item (instance and sysId: a sysId
/// belongs to its instance), the instant of the change, the kind of entry and a digest of the
/// body (64-bit FNV-1a, hex) identify it: a replay of the event yields the same key, a comment
/// and a work note of the same event yield two keys, and two different comments on one
/// incident within the same second (`updatedAt` has second precision) do not collide.
pub fn comment_idempotency_key(changelog: &Changelog) -> String {
    let kind = if changelog.is_work_note {
        "work_note"
    } else {
        "comment"
    };
    // The decoder only yields timestamps printable as RFC 3339; the fallback keeps the key
    // stable for hand-built changelogs that are not.
    let at = changelog
        .event_timestamp
        .format(&Rfc3339)
        .unwrap_or_else(|_| changelog.event_timestamp.unix_timestamp_nanos().to_string());
    let digest = Fnv1a::digest(changelog.body.as_deref().unwrap_or_default().as_bytes());
    format!(
        "{INTEGRATION}:{}:{}:{at}:{kind}:{digest:016x}",
        changelog.site, changelog.third_party_id
    )
}

/// Applies ServiceNow changelogs.
///
/// - `update_status`: the state code mapped through the project's settings, written with
///   [`CaseApi::update_case`] at `expected_version = case.version` and
///   `source_event_time = event_timestamp` (the status watermark); a version mismatch is
///   returned unchanged for the pipeline to re-read and re-filter;
/// - `create_comment`: a timeline entry through [`CaseApi::add_comment`] with the body byte for
///   byte, the ServiceNow author, `is_work_note` for work notes, and the key of
///   [`comment_idempotency_key`]; a key already used ends as `duplicate_event`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceNowProcessor;

impl ServiceNowProcessor {
    /// The processor.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Processor for ServiceNowProcessor {
    async fn process(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
        api: &dyn CaseApi,
    ) -> Result<ProcessOutcome, CaseApiError> {
        match changelog.changelog_type {
            ChangelogType::UpdateStatus => update_status(changelog, case, settings, api).await,
            ChangelogType::CreateComment => add_comment(changelog, case, api).await,
            _ => Ok(ProcessOutcome::Filtered(
                FilterReason::UnsupportedChangelogType,
            )),
        }
    }
}

async fn update_status(
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    // The filter checked both; re-checked so the processor never writes a guessed value.
    let Some(code) = changelog.to_id.as_deref() else {
        return Ok(ProcessOutcome::Filtered(FilterReason::InvalidFieldValue));
    };
    let Some(status) = settings.map_value(CaseField::Status, code) else {
        return Ok(ProcessOutcome::Filtered(FilterReason::FieldValueNotMapped));
    };
    let update = field_update(changelog, case, FieldChange::Status(status.to_owned()));
    api.update_case(&update).await?;
    tracing::info!(
        case_id = %case.id,
        sys_id = %truncate_for_log(&changelog.third_party_id),
        state = %truncate_for_log(code),
        status,
        "case status updated from ServiceNow"
    );
    Ok(ProcessOutcome::Applied)
}

async fn add_comment(
    changelog: &Changelog,
    case: &Case,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    let key = comment_idempotency_key(changelog);
    rules::add_comment(changelog, case, Some(key), api).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::{Author, SyncType};
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;

    const T: OffsetDateTime = datetime!(2024-03-01 12:00:30.5 UTC);

    fn changelog(kind: ChangelogType) -> Changelog {
        let mut c = Changelog::new(INTEGRATION, 123456, kind, "sys1", T);
        c.site = "company".into();
        c.author = Some(Author {
            id: Some("john.doe".into()),
            display_name: Some("john.doe".into()),
        });
        c
    }

    fn comment(body: &str, work_note: bool) -> Changelog {
        let mut c = changelog(ChangelogType::CreateComment);
        c.body = Some(body.into());
        c.is_work_note = work_note;
        c
    }

    fn state(code: &str) -> Changelog {
        let mut c = changelog(ChangelogType::UpdateStatus);
        c.to_id = Some(code.into());
        c
    }

    fn case() -> Case {
        Case {
            id: "case-1".into(),
            org_id: 123456,
            project_id: "proj".into(),
            version: 4,
            title: "t".into(),
            description: String::new(),
            priority: None,
            status: "OPEN".into(),
            assignee_id: None,
            due_date: None,
            created_at: datetime!(2024-01-01 0:00 UTC),
            external_references: vec![],
            source_watermarks: Vec::new(),
            last_writes: Default::default(),
        }
    }

    fn settings() -> SyncSettings {
        SyncSettings {
            org_id: 123456,
            project_id: "proj".into(),
            integration: INTEGRATION.into(),
            integration_enabled: true,
            project_sync_enabled: true,
            sync_type: SyncType::Bidirectional,
            field_sync: BTreeMap::new(),
            comment_sync_enabled: true,
            work_note_sync_enabled: true,
            value_mappings: BTreeMap::from([(
                CaseField::Status,
                BTreeMap::from([("2".into(), "IN_PROGRESS".into())]),
            )]),
            custom_fields: BTreeMap::new(),
            start_syncing_from: None,
            conflict_policy: Default::default(),
            field_conflict_policies: Default::default(),
        }
    }

    fn api() -> InMemoryCaseApi {
        let api = InMemoryCaseApi::new();
        api.insert_case(case());
        api
    }

    async fn process(c: &Changelog, api: &InMemoryCaseApi) -> Result<ProcessOutcome, CaseApiError> {
        ServiceNowProcessor::new()
            .process(c, &case(), &settings(), api)
            .await
    }

    #[test]
    fn idempotency_keys_name_item_instant_kind_and_body() {
        assert_eq!(
            comment_idempotency_key(&comment("a", false)),
            "servicenow:company:sys1:2024-03-01T12:00:30.5Z:comment:af63dc4c8601ec8c"
        );
        assert_eq!(
            comment_idempotency_key(&comment("b", true)),
            "servicenow:company:sys1:2024-03-01T12:00:30.5Z:work_note:af63df4c8601f1a5"
        );
        assert_ne!(
            comment_idempotency_key(&comment("a", false)),
            comment_idempotency_key(&comment("a2", false)),
            "two comments in the same second stay distinct"
        );
        assert_eq!(Fnv1a::digest(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[tokio::test]
    async fn status_is_written_at_the_case_version_with_the_event_time() {
        let api = api();
        assert_eq!(
            process(&state("2"), &api).await,
            Ok(ProcessOutcome::Applied)
        );
        let after = api.case("case-1").unwrap();
        assert_eq!(after.status, "IN_PROGRESS");
        assert_eq!(after.version, 5);
        let change = state("2");
        let mark = after.watermark(CaseField::Status, &change.item()).unwrap();
        assert_eq!(mark.at, T);
        assert_eq!(mark.change_keys, vec![change.change_key()]);
    }

    #[tokio::test]
    async fn version_mismatch_is_returned_unchanged() {
        let api = api();
        api.conflict_next_updates(1);
        assert_eq!(
            process(&state("2"), &api).await,
            Err(CaseApiError::VersionMismatch {
                case_id: "case-1".into(),
                expected: 4
            })
        );
        assert_eq!(api.case("case-1").unwrap().status, "OPEN");
    }

    #[tokio::test]
    async fn other_api_errors_are_returned() {
        let api = api();
        api.fail_next([CaseApiError::Unavailable("down".into())]);
        assert_eq!(
            process(&comment("x", false), &api).await,
            Err(CaseApiError::Unavailable("down".into()))
        );
    }

    #[tokio::test]
    async fn comments_and_work_notes_are_distinct_entries_and_replays_are_duplicates() {
        let api = api();
        let body = "line 1\n\n  line 3  \n";
        assert_eq!(
            process(&comment(body, false), &api).await,
            Ok(ProcessOutcome::Applied)
        );
        assert_eq!(
            process(&comment(body, true), &api).await,
            Ok(ProcessOutcome::Applied)
        );
        assert_eq!(
            process(&comment(body, false), &api).await,
            Ok(ProcessOutcome::Filtered(FilterReason::DuplicateEvent))
        );
        assert_eq!(
            process(&comment(body, true), &api).await,
            Ok(ProcessOutcome::Filtered(FilterReason::DuplicateEvent))
        );
        let comments = api.comments("case-1");
        assert_eq!(comments.len(), 2);
        assert!(comments.iter().all(|c| c.body == body));
        assert_eq!(
            comments.iter().map(|c| c.is_work_note).collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(
            comments[0].author,
            Author {
                id: Some("john.doe".into()),
                display_name: Some("john.doe".into())
            }
        );
    }

    #[tokio::test]
    async fn unmappable_or_unsupported_changelogs_write_nothing() {
        let api = api();
        assert_eq!(
            process(&state("9"), &api).await,
            Ok(ProcessOutcome::Filtered(FilterReason::FieldValueNotMapped))
        );
        let mut no_code = state("2");
        no_code.to_id = None;
        assert_eq!(
            process(&no_code, &api).await,
            Ok(ProcessOutcome::Filtered(FilterReason::InvalidFieldValue))
        );
        let mut no_body = comment("x", false);
        no_body.body = None;
        assert_eq!(
            process(&no_body, &api).await,
            Ok(ProcessOutcome::Filtered(FilterReason::EmptyComment))
        );
        assert_eq!(
            process(&changelog(ChangelogType::UpdateTitle), &api).await,
            Ok(ProcessOutcome::Filtered(
                FilterReason::UnsupportedChangelogType
            ))
        );
        assert_eq!(api.calls().update_case + api.calls().add_comment, 0);
    }
}
