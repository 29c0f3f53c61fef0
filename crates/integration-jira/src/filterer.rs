//! The two Jira filtering stages.
//!
//! Pre-filter (no I/O but the metadata cache refresh), in order:
//! 1. sync cycle: the author is one of our own sync accounts (configured on the filterer, or
//!    listed in `own_user_ids` of an org metadata entry for the item's Jira site) ->
//!    `break_synchronization_cycle`;
//! 2. scope: no metadata entry accepts the item's `account_id` and `project_id` ->
//!    `no_matching_metadata`; some do, but none accepts its `issue_type_id` ->
//!    `issue_type_not_synced`;
//! 3. `unsupported_X`: a matching entry maps `X` to a case field -> rewritten to that field's
//!    update type (e.g. a custom due-date field becomes `update_due_date`); else
//!    `custom_field_not_configured` for `customfield_*`, `unsupported_changelog_type` otherwise.
//!
//! Filter (pure), in order: `integration_disabled`, `project_sync_disabled`,
//! `sync_type_not_pull`, `created_before_start_syncing_from`; comments: `comment_sync_disabled`,
//! `empty_comment`; fields: `field_jira_bi_sync_disabled`, `out_of_order_event` /
//! `duplicate_event` (the field's watermark for this issue), then per field (priority and
//! status: `invalid_field_value` without a target id, `field_value_not_mapped`, then the
//! field's conflict policy on the `from` value: `state_conflict` or `manual_conflict`; title:
//! `invalid_field_value` when blank; due date: `invalid_field_value` when unparsable; title,
//! description and due date carry no `from` check, so only a person's edit in the case since
//! the last synced write conflicts, under `converge` and `manual`) and finally `no_change`. The
//! assignee's conflict and no-op need a user look-up: the processor decides those.

use async_trait::async_trait;
use thirdparty_core::{
    Case, CaseApiError, CaseField, Changelog, ChangelogType, FieldChange, FilterReason, Filterer,
    PreFilterContext, SyncMetadata, SyncSettings,
};

use thirdparty_core::rules::{OwnAccounts, comment_gate, is_sync_cycle};

use crate::dates;
use crate::{META_ACCOUNT_ID, META_ISSUE_TYPE_ID, META_PROJECT_ID};

/// Prefix of Jira custom field ids.
const CUSTOM_FIELD_PREFIX: &str = "customfield_";

/// The Jira filterer.
#[derive(Debug, Clone, Default)]
pub struct JiraFilterer {
    /// Our own sync accounts (Cloud accountIds, Server usernames).
    own_account_ids: OwnAccounts,
}

impl JiraFilterer {
    /// A filterer that also treats these Jira accounts (Cloud accountIds or Server usernames,
    /// compared ignoring ASCII case) as our own sync users, whatever the org metadata says.
    pub fn new<I, S>(own_account_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            own_account_ids: OwnAccounts::new(own_account_ids),
        }
    }
}

/// The case field a metadata entry maps a custom field to (exact id first, then ignoring ASCII
/// case).
fn custom_field(entry: &SyncMetadata, field_id: &str) -> Option<CaseField> {
    entry.custom_fields.get(field_id).copied().or_else(|| {
        entry
            .custom_fields
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(field_id))
            .map(|(_, field)| *field)
    })
}

#[async_trait]
impl Filterer for JiraFilterer {
    async fn pre_filter(
        &self,
        changelog: &mut Changelog,
        ctx: &PreFilterContext<'_>,
    ) -> Result<Option<FilterReason>, CaseApiError> {
        if self.own_account_ids.is_author(changelog) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let entries = ctx.org_metadata(changelog.org_id).await?;
        if is_sync_cycle(changelog, &self.own_account_ids, &entries, META_ACCOUNT_ID) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let account = changelog.metadata_value(META_ACCOUNT_ID);

        let project = changelog.metadata_value(META_PROJECT_ID);
        let issue_type = changelog.metadata_value(META_ISSUE_TYPE_ID);
        let in_project: Vec<&SyncMetadata> = entries
            .iter()
            .filter(|e| e.accepts(META_ACCOUNT_ID, account) && e.accepts(META_PROJECT_ID, project))
            .collect();
        if in_project.is_empty() {
            return Ok(Some(FilterReason::NoMatchingMetadata));
        }
        let matching: Vec<&SyncMetadata> = in_project
            .into_iter()
            .filter(|e| e.accepts(META_ISSUE_TYPE_ID, issue_type))
            .collect();
        if matching.is_empty() {
            return Ok(Some(FilterReason::IssueTypeNotSynced));
        }

        if let ChangelogType::Unsupported(field_id) = &changelog.changelog_type {
            let mapped = matching.iter().find_map(|e| custom_field(e, field_id));
            if let Some(field) = mapped {
                tracing::debug!(
                    field_id = %thirdparty_core::error::truncate_for_log(field_id),
                    case_field = %field,
                    "custom field mapped by sync metadata"
                );
                changelog.changelog_type = field.update_type();
            } else if field_id.starts_with(CUSTOM_FIELD_PREFIX) {
                return Ok(Some(FilterReason::CustomFieldNotConfigured));
            } else {
                return Ok(Some(FilterReason::UnsupportedChangelogType));
            }
        }
        Ok(None)
    }

    fn filter(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
    ) -> Option<FilterReason> {
        if let Some(reason) = settings.pull_gate(changelog.event_timestamp) {
            return Some(reason);
        }
        match &changelog.changelog_type {
            ChangelogType::CreateComment => comment_gate(changelog, case, settings),
            // The pre-filter rewrites or drops these; never apply one that slipped through.
            ChangelogType::Unsupported(_) => Some(FilterReason::UnsupportedChangelogType),
            other => {
                let field = other.case_field()?;
                if !settings.field_synced(field) {
                    return Some(crate::FIELD_JIRA_BI_SYNC_DISABLED);
                }
                if let Some(reason) = case.changelog_ordering_reason(field, changelog) {
                    return Some(reason);
                }
                if field == CaseField::Assignee {
                    return None;
                }
                planned_change(changelog, case, settings).err()
            }
        }
    }
}

/// A value that is present and not blank.
pub(crate) use thirdparty_core::present;

/// The write a title, description, priority, status or due-date changelog asks for on this
/// case, or why it must not be made. Pure; shared by the filter and the processor.
pub(crate) fn planned_change(
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
) -> Result<FieldChange, FilterReason> {
    let change = match &changelog.changelog_type {
        ChangelogType::UpdateTitle => {
            let title =
                present(changelog.to_string.as_ref()).ok_or(FilterReason::InvalidFieldValue)?;
            if let Some(reason) = conflict(CaseField::Title, case, settings, None) {
                return Err(reason);
            }
            FieldChange::Title(title.to_owned())
        }
        ChangelogType::UpdateDescription => {
            if let Some(reason) = conflict(CaseField::Description, case, settings, None) {
                return Err(reason);
            }
            FieldChange::Description(changelog.to_string.clone().unwrap_or_default())
        }
        ChangelogType::UpdatePriority => FieldChange::Priority(Some(mapped_target(
            CaseField::Priority,
            changelog,
            case,
            settings,
        )?)),
        ChangelogType::UpdateStatus => {
            FieldChange::Status(mapped_target(CaseField::Status, changelog, case, settings)?)
        }
        ChangelogType::UpdateDueDate => {
            let date = due_date(changelog)?;
            if let Some(reason) = conflict(CaseField::DueDate, case, settings, None) {
                return Err(reason);
            }
            FieldChange::DueDate(date)
        }
        ChangelogType::UpdateAssignee
        | ChangelogType::CreateComment
        | ChangelogType::Unsupported(_) => return Err(FilterReason::UnsupportedChangelogType),
    };
    if case.holds(&change) {
        return Err(FilterReason::NoChange);
    }
    Ok(change)
}

/// The case value a priority or status change writes, after the conflict check: the `from` id,
/// mapped to a case value, is consistent when it is the case's current value (an absent `from`
/// when the case has none); the field's conflict policy decides on an inconsistent one.
fn mapped_target(
    field: CaseField,
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
) -> Result<String, FilterReason> {
    let to = present(changelog.to_id.as_ref()).ok_or(FilterReason::InvalidFieldValue)?;
    let target = settings
        .map_value(field, to.trim())
        .ok_or(FilterReason::FieldValueNotMapped)?;
    let current = case.field_value(field);
    let consistent = match present(changelog.from_id.as_ref()) {
        Some(from) => match (settings.map_value(field, from.trim()), current.as_deref()) {
            (Some(expected), Some(current)) => expected.eq_ignore_ascii_case(current),
            _ => false,
        },
        None => current.is_none(),
    };
    if let Some(reason) = conflict(field, case, settings, Some(consistent)) {
        return Err(reason);
    }
    Ok(target.to_owned())
}

/// The field's conflict policy applied to a change (`consistent`: whether its `from` is the
/// case's current value, `None` for changes checked without `from`).
pub(crate) fn conflict(
    field: CaseField,
    case: &Case,
    settings: &SyncSettings,
    consistent: Option<bool>,
) -> Option<FilterReason> {
    case.conflict_reason(field, settings.conflict_policy(field), consistent)
}

/// The new due date: `to` (ISO date or date-time), else `toString`; none when both are absent.
pub(crate) fn due_date(changelog: &Changelog) -> Result<Option<time::Date>, FilterReason> {
    let to_id = present(changelog.to_id.as_ref());
    let to_string = present(changelog.to_string.as_ref());
    if to_id.is_none() && to_string.is_none() {
        return Ok(None);
    }
    to_id
        .and_then(dates::parse_due_date)
        .or_else(|| to_string.and_then(dates::parse_due_date))
        .map(Some)
        .ok_or(FilterReason::InvalidFieldValue)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use thirdparty_core::cache::{DEFAULT_TTL, MetadataCache};
    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::testkit::{mark_applied, mark_edited_in_case};
    use thirdparty_core::{Author, CaseApiError, ConflictPolicy, ManualClock, SyncType};
    use time::OffsetDateTime;
    use time::macros::{date, datetime};

    use super::*;

    const AT: OffsetDateTime = datetime!(2024-01-15 10:30 UTC);

    fn changelog(changelog_type: ChangelogType) -> Changelog {
        let mut c = Changelog::new("jira", 1, changelog_type, "10002", AT);
        for (k, v) in [
            (META_ACCOUNT_ID, "acme.atlassian.net"),
            (META_PROJECT_ID, "10000"),
            (META_ISSUE_TYPE_ID, "10001"),
        ] {
            c.metadata.insert(k.into(), v.into());
        }
        c
    }

    fn ids(from: Option<&str>, to: Option<&str>, c: Changelog) -> Changelog {
        Changelog {
            from_id: from.map(Into::into),
            to_id: to.map(Into::into),
            ..c
        }
    }

    fn case() -> Case {
        Case {
            id: "case-1".into(),
            org_id: 1,
            project_id: "p".into(),
            version: 3,
            title: "Title".into(),
            description: "Old".into(),
            priority: Some("P3".into()),
            status: "OPEN".into(),
            assignee_id: None,
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
            value_mappings: BTreeMap::from([
                (
                    CaseField::Priority,
                    BTreeMap::from([("3".into(), "P3".into()), ("2".into(), "P2".into())]),
                ),
                (
                    CaseField::Status,
                    BTreeMap::from([
                        ("10000".into(), "open".into()),
                        ("3".into(), "IN_PROGRESS".into()),
                    ]),
                ),
            ]),
            custom_fields: BTreeMap::new(),
            start_syncing_from: None,
            conflict_policy: Default::default(),
            field_conflict_policies: Default::default(),
        }
    }

    fn filter(c: &Changelog, case: &Case, s: &SyncSettings) -> Option<FilterReason> {
        JiraFilterer::default().filter(c, case, s)
    }

    #[test]
    fn settings_switches_come_first_in_order() {
        let empty_comment = changelog(ChangelogType::CreateComment);
        let mut s = settings();
        s.integration_enabled = false;
        s.project_sync_enabled = false;
        s.sync_type = SyncType::OneWayPush;
        s.comment_sync_enabled = false;
        s.start_syncing_from = Some(datetime!(2025-01-01 0:00 UTC));
        let expected = [
            FilterReason::IntegrationDisabled,
            FilterReason::ProjectSyncDisabled,
            FilterReason::SyncTypeNotPull,
            FilterReason::CreatedBeforeStartSyncingFrom,
            FilterReason::CommentSyncDisabled,
            FilterReason::EmptyComment,
        ];
        for reason in expected {
            assert_eq!(filter(&empty_comment, &case(), &s), Some(reason));
            match reason {
                FilterReason::IntegrationDisabled => s.integration_enabled = true,
                FilterReason::ProjectSyncDisabled => s.project_sync_enabled = true,
                FilterReason::SyncTypeNotPull => s.sync_type = SyncType::OneWayPull,
                FilterReason::CreatedBeforeStartSyncingFrom => s.start_syncing_from = Some(AT),
                FilterReason::CommentSyncDisabled => s.comment_sync_enabled = true,
                _ => {}
            }
        }
        let mut comment = empty_comment;
        comment.body = Some("hi".into());
        assert_eq!(
            filter(&comment, &case(), &s),
            None,
            "start == event time is kept"
        );
    }

    #[test]
    fn state_conflicts_map_from_back_to_case_values() {
        let status =
            |from: Option<&str>| ids(from, Some("3"), changelog(ChangelogType::UpdateStatus));
        let s = SyncSettings {
            conflict_policy: ConflictPolicy::Strict,
            ..settings()
        };
        assert_eq!(
            filter(&status(Some("10000")), &case(), &s),
            None,
            "OPEN vs open"
        );
        assert_eq!(
            filter(&status(Some("3")), &case(), &s),
            Some(FilterReason::StateConflict)
        );
        assert_eq!(
            filter(&status(Some("777")), &case(), &s),
            Some(FilterReason::StateConflict),
            "an unmapped from is no value the case can hold"
        );
        assert_eq!(
            filter(&status(None), &case(), &s),
            Some(FilterReason::StateConflict),
            "a case always has a status"
        );
        let priority =
            |from: Option<&str>| ids(from, Some("2"), changelog(ChangelogType::UpdatePriority));
        let mut unprioritized = case();
        unprioritized.priority = None;
        assert_eq!(filter(&priority(None), &unprioritized, &s), None);
        assert_eq!(
            filter(&priority(None), &case(), &s),
            Some(FilterReason::StateConflict)
        );
        assert_eq!(
            filter(&priority(Some("3")), &unprioritized, &s),
            Some(FilterReason::StateConflict)
        );
        assert_eq!(
            filter(
                &ids(
                    Some("3"),
                    Some("9"),
                    changelog(ChangelogType::UpdatePriority)
                ),
                &case(),
                &s
            ),
            Some(FilterReason::FieldValueNotMapped),
            "mapping is checked before the conflict"
        );
        assert_eq!(
            filter(
                &ids(
                    Some("3"),
                    Some(" "),
                    changelog(ChangelogType::UpdatePriority)
                ),
                &case(),
                &s
            ),
            Some(FilterReason::InvalidFieldValue)
        );
    }

    #[test]
    fn conflict_policies_decide_an_inconsistent_from() {
        // Jira says In Progress -> Done (10001), the case is OPEN: the event that moved the
        // issue to In Progress was lost, or someone changed the case.
        let late = ids(
            Some("3"),
            Some("10001"),
            changelog(ChangelogType::UpdateStatus),
        );
        let under = |policy| SyncSettings {
            conflict_policy: policy,
            ..settings()
        };
        let mut edited = case();
        mark_edited_in_case(&mut edited, CaseField::Status, AT);
        let mut synced = case();
        mark_applied(
            &mut synced,
            &ids(
                Some("3"),
                Some("10000"),
                changelog(ChangelogType::UpdateStatus),
            ),
        );
        let mut newer = late.clone();
        newer.event_timestamp = AT + time::Duration::SECOND;
        let mut s = settings();
        s.value_mappings
            .get_mut(&CaseField::Status)
            .unwrap()
            .insert("10001".into(), "CLOSED".into());
        let cases = [
            (
                ConflictPolicy::Strict,
                &case(),
                Some(FilterReason::StateConflict),
            ),
            (ConflictPolicy::Converge, &case(), None),
            (ConflictPolicy::Converge, &synced, None),
            (
                ConflictPolicy::Converge,
                &edited,
                Some(FilterReason::StateConflict),
            ),
            (ConflictPolicy::ThirdPartyWins, &edited, None),
            (ConflictPolicy::Manual, &synced, None),
            (
                ConflictPolicy::Manual,
                &edited,
                Some(FilterReason::ManualConflict),
            ),
        ];
        for (policy, case, expected) in cases {
            let s = SyncSettings {
                conflict_policy: policy,
                ..s.clone()
            };
            assert_eq!(filter(&newer, case, &s), expected, "{policy}");
        }
        // A per-field policy overrides the project's.
        let mut per_field = under(ConflictPolicy::Strict);
        per_field.value_mappings = s.value_mappings.clone();
        per_field
            .field_conflict_policies
            .insert(CaseField::Status, ConflictPolicy::ThirdPartyWins);
        assert_eq!(filter(&newer, &edited, &per_field), None);
        // Fields without a `from` check conflict only with a person's edit.
        let mut title = changelog(ChangelogType::UpdateTitle);
        title.to_string = Some("New".into());
        let mut title_edited = case();
        mark_edited_in_case(&mut title_edited, CaseField::Title, AT);
        assert_eq!(filter(&title, &case(), &settings()), None);
        assert_eq!(
            filter(&title, &title_edited, &settings()),
            Some(FilterReason::StateConflict)
        );
        assert_eq!(
            filter(&title, &title_edited, &under(ConflictPolicy::Strict)),
            None
        );
    }

    #[test]
    fn watermarks_drop_older_events_as_out_of_order_and_the_same_change_as_a_replay() {
        let c = ids(
            Some("10000"),
            Some("3"),
            changelog(ChangelogType::UpdateStatus),
        );
        let mut marked = case();
        mark_applied(&mut marked, &c);
        assert_eq!(
            filter(&c, &marked, &settings()),
            Some(FilterReason::DuplicateEvent),
            "the change that set the watermark, replayed"
        );
        // A different change in the same instant is a new change, not a replay.
        let mut moved = case();
        moved.status = "IN_PROGRESS".into();
        mark_applied(&mut moved, &c);
        let back = ids(
            Some("3"),
            Some("10000"),
            changelog(ChangelogType::UpdateStatus),
        );
        assert_eq!(filter(&back, &moved, &settings()), None);
        assert_eq!(
            filter(&c, &moved, &settings()),
            Some(FilterReason::DuplicateEvent)
        );

        let mut later = c.clone();
        later.event_timestamp = AT + time::Duration::milliseconds(1);
        mark_applied(&mut marked, &later);
        assert_eq!(
            filter(&c, &marked, &settings()),
            Some(FilterReason::OutOfOrderEvent)
        );
        let mut title = changelog(ChangelogType::UpdateTitle);
        title.to_string = Some("New".into());
        assert_eq!(filter(&title, &marked, &settings()), None, "per field");
        // Another site's issue with the same id has its own watermark.
        let mut elsewhere = c.clone();
        elsewhere.site = "jira.other.example".into();
        assert_eq!(filter(&elsewhere, &marked, &settings()), None, "per site");
    }

    #[test]
    fn text_and_date_fields() {
        let s = settings();
        let mut title = changelog(ChangelogType::UpdateTitle);
        assert_eq!(
            filter(&title, &case(), &s),
            Some(FilterReason::InvalidFieldValue)
        );
        title.to_string = Some("Title".into());
        assert_eq!(filter(&title, &case(), &s), Some(FilterReason::NoChange));
        let description = changelog(ChangelogType::UpdateDescription);
        assert_eq!(
            planned_change(&description, &case(), &s),
            Ok(FieldChange::Description(String::new())),
            "a removed description clears it"
        );
        let mut due = changelog(ChangelogType::UpdateDueDate);
        assert_eq!(
            filter(&due, &case(), &s),
            Some(FilterReason::NoChange),
            "none -> none"
        );
        due.to_string = Some("2024-07-01 00:00:00.0".into());
        assert_eq!(
            planned_change(&due, &case(), &s),
            Ok(FieldChange::DueDate(Some(date!(2024 - 07 - 01)))),
            "toString when `to` is absent"
        );
        due.to_id = Some("01/07/2024".into());
        due.to_string = Some("1/Jul/24".into());
        assert_eq!(
            filter(&due, &case(), &s),
            Some(FilterReason::InvalidFieldValue)
        );
        let mut s = s;
        s.field_sync.insert(CaseField::DueDate, false);
        assert_eq!(
            filter(&due, &case(), &s),
            Some(crate::FIELD_JIRA_BI_SYNC_DISABLED)
        );
    }

    #[test]
    fn assignee_and_unsupported_types() {
        let assignee = ids(
            Some("x"),
            Some("y"),
            changelog(ChangelogType::UpdateAssignee),
        );
        assert_eq!(
            filter(&assignee, &case(), &settings()),
            None,
            "decided by the processor"
        );
        let unsupported = changelog(ChangelogType::Unsupported("labels".into()));
        assert_eq!(
            filter(&unsupported, &case(), &settings()),
            Some(FilterReason::UnsupportedChangelogType)
        );
    }

    fn entry(accounts: &[&str], custom: &[(&str, CaseField)], own: &[&str]) -> SyncMetadata {
        SyncMetadata {
            org_id: 1,
            integration: "jira".into(),
            project_id: "p".into(),
            scope: BTreeMap::from([(
                META_ACCOUNT_ID.to_owned(),
                accounts
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect::<BTreeSet<_>>(),
            )]),
            custom_fields: custom.iter().map(|(k, f)| ((*k).to_owned(), *f)).collect(),
            own_user_ids: own.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    async fn pre_filter(
        filterer: &JiraFilterer,
        api: &InMemoryCaseApi,
        c: &mut Changelog,
    ) -> Result<Option<FilterReason>, CaseApiError> {
        let clock = Arc::new(ManualClock::new(AT));
        let cache = MetadataCache::new(10, DEFAULT_TTL, clock);
        let ctx = PreFilterContext::new(&cache, api, "jira");
        filterer.pre_filter(c, &ctx).await
    }

    fn authored(id: &str, c: Changelog) -> Changelog {
        Changelog {
            author: Some(Author {
                id: Some(id.into()),
                display_name: None,
            }),
            ..c
        }
    }

    #[tokio::test]
    async fn configured_sync_accounts_need_no_metadata_and_ignore_case() {
        let api = InMemoryCaseApi::new();
        let filterer = JiraFilterer::new([" Svc-Case-Sync ", ""]);
        let mut c = authored("svc-case-sync", changelog(ChangelogType::UpdateTitle));
        assert_eq!(
            pre_filter(&filterer, &api, &mut c).await,
            Ok(Some(FilterReason::BreakSynchronizationCycle))
        );
        assert_eq!(api.calls().list_sync_metadata, 0);
    }

    #[tokio::test]
    async fn own_users_count_for_their_own_jira_site_only() {
        let api = InMemoryCaseApi::new();
        api.insert_metadata(entry(&["acme.atlassian.net"], &[], &["bot"]));
        api.insert_metadata(entry(&["jira.acme.internal"], &[], &["admin"]));
        let filterer = JiraFilterer::default();
        let mut c = authored("BOT", changelog(ChangelogType::UpdateTitle));
        assert_eq!(
            pre_filter(&filterer, &api, &mut c).await,
            Ok(Some(FilterReason::BreakSynchronizationCycle))
        );
        let mut c = authored("admin", changelog(ChangelogType::UpdateTitle));
        assert_eq!(pre_filter(&filterer, &api, &mut c).await, Ok(None));
    }

    #[tokio::test]
    async fn custom_fields_are_rewritten_to_any_mapped_case_field() {
        let api = InMemoryCaseApi::new();
        api.insert_metadata(entry(
            &["acme.atlassian.net"],
            &[
                ("customfield_10015", CaseField::DueDate),
                ("story_points", CaseField::Priority),
            ],
            &[],
        ));
        let filterer = JiraFilterer::default();
        for (field, want) in [
            ("CustomField_10015", Ok(ChangelogType::UpdateDueDate)),
            ("story_points", Ok(ChangelogType::UpdatePriority)),
            (
                "customfield_10020",
                Err(FilterReason::CustomFieldNotConfigured),
            ),
            ("labels", Err(FilterReason::UnsupportedChangelogType)),
        ] {
            let mut c = changelog(ChangelogType::Unsupported(field.into()));
            let reason = pre_filter(&filterer, &api, &mut c).await.unwrap();
            match want {
                Ok(t) => {
                    assert_eq!(reason, None, "{field}");
                    assert_eq!(c.changelog_type, t);
                }
                Err(r) => assert_eq!(reason, Some(r), "{field}"),
            }
        }
    }

    #[tokio::test]
    async fn metadata_errors_are_returned_for_the_pipeline_to_classify() {
        let api = InMemoryCaseApi::new();
        api.fail_next([CaseApiError::Unavailable("down".into())]);
        let mut c = changelog(ChangelogType::UpdateTitle);
        assert_eq!(
            pre_filter(&JiraFilterer::default(), &api, &mut c).await,
            Err(CaseApiError::Unavailable("down".into()))
        );
    }
}
