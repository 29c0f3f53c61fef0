//! Which ServiceNow changelogs must not be applied, and why.

use async_trait::async_trait;
use thirdparty_core::{
    Case, CaseApiError, CaseField, Changelog, ChangelogType, FieldChange, FilterReason, Filterer,
    PreFilterContext, SyncSettings,
};

use thirdparty_core::rules::{OwnAccounts, comment_gate, is_sync_cycle};

use crate::METADATA_INSTANCE_NAME;

/// The own-user names of [`ServiceNowFilterer::default`]: `datadog` (`docs/design.md`, "Names operators key on").
pub const DEFAULT_OWN_USER_NAMES: &[&str] = &["datadog"];

/// The ServiceNow pre-filter and filter.
///
/// Pre-filter (no I/O beyond the cached org metadata of [`PreFilterContext`]), in order:
/// 1. a changelog type other than `create_comment` / `update_status` ->
///    `unsupported_changelog_type` (defensive: the decoder yields no other);
/// 2. `updatedBy` equal, ignoring ASCII case and surrounding blanks, to a configured own-user
///    name -> `break_synchronization_cycle`;
/// 3. `updatedBy` equal, the same way, to an `own_user_ids` entry of the organization's sync
///    metadata for the event's instance -> `break_synchronization_cycle` (the shared rule,
///    `thirdparty_core::rules::is_sync_cycle`: an own user of one instance is anybody on
///    another);
/// 4. no sync metadata entry of the organization accepting the event's `instance_name` ->
///    `instance_not_configured`.
///
/// The case is looked up with the default [`Filterer::case_lookup`]: `correlationId` as case id,
/// falling back to `sysId` as external reference (`missing_case_reference` when neither exists).
///
/// Filter (pure), in order: `integration_disabled`, `project_sync_disabled`, `sync_type_not_pull`
/// (push-only), `created_before_start_syncing_from`; then for comments `comment_sync_disabled`,
/// for work notes `work_note_sync_disabled`, then `empty_comment` (blank body) and `case_closed`;
/// for state changes `field_sync_disabled`, `out_of_order_event` (older than the status
/// watermark of this incident) or `duplicate_event` (this very state change was applied at that
/// time: a different state in the same second is a new change), `field_value_not_mapped` (no
/// case status for the state code), the status's conflict policy (`state_conflict` or
/// `manual_conflict` when a person changed the case status since the last synced write) and
/// `no_change` (the case already has that status). A state change may touch a closed case: it may reopen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNowFilterer {
    own_user_names: OwnAccounts,
}

impl Default for ServiceNowFilterer {
    fn default() -> Self {
        Self::new(DEFAULT_OWN_USER_NAMES.iter().copied())
    }
}

impl ServiceNowFilterer {
    /// A filterer treating changes by these ServiceNow user names (any ASCII case) as echoes of
    /// our own writes. Blank names are ignored.
    pub fn new<I, S>(own_user_names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            own_user_names: OwnAccounts::new(own_user_names),
        }
    }

    /// The configured own-user names, lowercased.
    pub fn own_user_names(&self) -> Vec<&str> {
        self.own_user_names.iter().collect()
    }
}

#[async_trait]
impl Filterer for ServiceNowFilterer {
    async fn pre_filter(
        &self,
        changelog: &mut Changelog,
        ctx: &PreFilterContext<'_>,
    ) -> Result<Option<FilterReason>, CaseApiError> {
        if !matches!(
            changelog.changelog_type,
            ChangelogType::CreateComment | ChangelogType::UpdateStatus
        ) {
            return Ok(Some(FilterReason::UnsupportedChangelogType));
        }
        if self.own_user_names.is_author(changelog) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let scopes = ctx.org_metadata(changelog.org_id).await?;
        if is_sync_cycle(
            changelog,
            &self.own_user_names,
            &scopes,
            METADATA_INSTANCE_NAME,
        ) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let instance = changelog.metadata_value(METADATA_INSTANCE_NAME);
        if !scopes
            .iter()
            .any(|m| m.accepts(METADATA_INSTANCE_NAME, instance))
        {
            return Ok(Some(FilterReason::InstanceNotConfigured));
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
        match changelog.changelog_type {
            ChangelogType::CreateComment => comment_gate(changelog, case, settings),
            ChangelogType::UpdateStatus => filter_status(changelog, case, settings),
            _ => Some(FilterReason::UnsupportedChangelogType),
        }
    }
}

fn filter_status(
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
) -> Option<FilterReason> {
    if !settings.field_synced(CaseField::Status) {
        return Some(FilterReason::FieldSyncDisabled);
    }
    if let Some(reason) = case.changelog_ordering_reason(CaseField::Status, changelog) {
        return Some(reason);
    }
    let Some(code) = changelog.to_id.as_deref() else {
        return Some(FilterReason::InvalidFieldValue);
    };
    let Some(status) = settings.map_value(CaseField::Status, code) else {
        return Some(FilterReason::FieldValueNotMapped);
    };
    // A state change carries no previous state: only a person's edit of the case status since
    // the last synced write conflicts (under `converge` and `manual`).
    let policy = settings.conflict_policy(CaseField::Status);
    if let Some(reason) = case.conflict_reason(CaseField::Status, policy, None) {
        return Some(reason);
    }
    if case.holds(&FieldChange::Status(status.to_owned())) {
        return Some(FilterReason::NoChange);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use thirdparty_core::cache::{DEFAULT_TTL, MetadataCache};
    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::testkit::mark_applied;
    use thirdparty_core::{
        Author, CaseLookup, ExternalReference, ManualClock, SyncMetadata, SyncType,
    };
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;
    use crate::INTEGRATION;

    const T: OffsetDateTime = datetime!(2024-03-01 12:00 UTC);

    fn changelog(kind: ChangelogType) -> Changelog {
        let mut c = Changelog::new(INTEGRATION, 123456, kind, "sys1", T);
        c.author = Some(Author {
            id: Some("john.doe".into()),
            display_name: Some("john.doe".into()),
        });
        c.case_reference = Some("case-1".into());
        c.site = "company".into();
        c.metadata
            .insert(METADATA_INSTANCE_NAME.into(), "company".into());
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
            version: 1,
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
                BTreeMap::from([
                    ("1".into(), "OPEN".into()),
                    ("2".into(), "IN_PROGRESS".into()),
                    ("7".into(), "CLOSED".into()),
                ]),
            )]),
            custom_fields: BTreeMap::new(),
            start_syncing_from: Some(datetime!(2024-01-01 0:00 UTC)),
            conflict_policy: Default::default(),
            field_conflict_policies: Default::default(),
        }
    }

    fn filter(c: &Changelog, case: &Case, s: &SyncSettings) -> Option<FilterReason> {
        ServiceNowFilterer::default().filter(c, case, s)
    }

    #[test]
    fn passing_changelogs_pass() {
        assert_eq!(filter(&comment("hi", false), &case(), &settings()), None);
        assert_eq!(filter(&comment("hi", true), &case(), &settings()), None);
        assert_eq!(filter(&state("2"), &case(), &settings()), None);
        let mut s = settings();
        s.sync_type = SyncType::OneWayPull;
        s.start_syncing_from = None;
        assert_eq!(filter(&state("2"), &case(), &s), None);
    }

    #[test]
    fn project_level_reasons_come_first_in_order() {
        let mut s = settings();
        s.integration_enabled = false;
        s.project_sync_enabled = false;
        s.sync_type = SyncType::OneWayPush;
        s.start_syncing_from = Some(T + time::Duration::DAY);
        let expected = [
            FilterReason::IntegrationDisabled,
            FilterReason::ProjectSyncDisabled,
            FilterReason::SyncTypeNotPull,
            FilterReason::CreatedBeforeStartSyncingFrom,
        ];
        for c in [comment("hi", false), comment("hi", true), state("2")] {
            let mut s = s.clone();
            for reason in &expected {
                assert_eq!(filter(&c, &case(), &s), Some(*reason));
                match reason {
                    FilterReason::IntegrationDisabled => s.integration_enabled = true,
                    FilterReason::ProjectSyncDisabled => s.project_sync_enabled = true,
                    FilterReason::SyncTypeNotPull => s.sync_type = SyncType::OneWayPull,
                    _ => s.start_syncing_from = Some(T),
                }
            }
            // An event exactly at start_syncing_from is synced.
            assert_eq!(filter(&c, &case(), &s), None);
        }
    }

    #[test]
    fn comment_reasons() {
        let mut s = settings();
        s.comment_sync_enabled = false;
        assert_eq!(
            filter(&comment("hi", false), &case(), &s),
            Some(FilterReason::CommentSyncDisabled)
        );
        // Work notes have their own switch.
        assert_eq!(filter(&comment("hi", true), &case(), &s), None);
        let mut s = settings();
        s.work_note_sync_enabled = false;
        assert_eq!(
            filter(&comment("hi", true), &case(), &s),
            Some(FilterReason::WorkNoteSyncDisabled)
        );
        assert_eq!(filter(&comment("hi", false), &case(), &s), None);

        for blank in ["", " ", "\n\n\t"] {
            assert_eq!(
                filter(&comment(blank, false), &case(), &settings()),
                Some(FilterReason::EmptyComment)
            );
        }
        let mut no_body = comment("x", false);
        no_body.body = None;
        assert_eq!(
            filter(&no_body, &case(), &settings()),
            Some(FilterReason::EmptyComment)
        );

        let mut closed = case();
        closed.status = "Closed".into();
        for work_note in [false, true] {
            assert_eq!(
                filter(&comment("late", work_note), &closed, &settings()),
                Some(FilterReason::CaseClosed)
            );
        }
    }

    #[test]
    fn status_reasons() {
        let mut s = settings();
        s.field_sync.insert(CaseField::Status, false);
        assert_eq!(
            filter(&state("2"), &case(), &s),
            Some(FilterReason::FieldSyncDisabled)
        );

        let mut newer = case();
        let mut later = state("2");
        later.event_timestamp = T + time::Duration::SECOND;
        mark_applied(&mut newer, &later);
        assert_eq!(
            filter(&state("2"), &newer, &settings()),
            Some(FilterReason::OutOfOrderEvent)
        );
        // The same change in the same instant as the watermark is the change that set it,
        // replayed; another state in the same second (ServiceNow's precision) is a new change.
        let mut same = case();
        mark_applied(&mut same, &state("2"));
        assert_eq!(
            filter(&state("2"), &same, &settings()),
            Some(FilterReason::DuplicateEvent)
        );
        assert_eq!(filter(&state("7"), &same, &settings()), None);

        assert_eq!(
            filter(&state("3"), &case(), &settings()),
            Some(FilterReason::FieldValueNotMapped)
        );
        assert_eq!(
            filter(&state("1"), &case(), &settings()),
            Some(FilterReason::NoChange)
        );
        let mut no_code = state("2");
        no_code.to_id = None;
        assert_eq!(
            filter(&no_code, &case(), &settings()),
            Some(FilterReason::InvalidFieldValue)
        );
    }

    #[test]
    fn a_state_change_may_reopen_a_closed_case() {
        let mut closed = case();
        closed.status = "CLOSED".into();
        assert_eq!(filter(&state("1"), &closed, &settings()), None);
        assert_eq!(
            filter(&state("7"), &closed, &settings()),
            Some(FilterReason::NoChange)
        );
    }

    #[test]
    fn other_changelog_types_are_unsupported() {
        let c = changelog(ChangelogType::UpdatePriority);
        assert_eq!(
            filter(&c, &case(), &settings()),
            Some(FilterReason::UnsupportedChangelogType)
        );
    }

    #[test]
    fn case_lookup_by_correlation_id_then_sys_id() {
        let f = ServiceNowFilterer::default();
        assert_eq!(
            f.case_lookup(&comment("x", false)),
            Ok(CaseLookup::ById {
                case_id: "case-1".into(),
                fallback_reference: Some(ExternalReference::new(INTEGRATION, "company", "sys1")),
            })
        );
        let mut c = comment("x", false);
        c.case_reference = None;
        assert_eq!(
            f.case_lookup(&c),
            Ok(CaseLookup::ByExternalReference(ExternalReference::new(
                INTEGRATION,
                "company",
                "sys1"
            )))
        );
        c.third_party_id = String::new();
        assert_eq!(f.case_lookup(&c), Err(FilterReason::MissingCaseReference));
        c.case_reference = Some(String::new());
        assert_eq!(f.case_lookup(&c), Err(FilterReason::MissingCaseReference));
    }

    fn metadata(instances: &[&str], own_ids: &[&str]) -> SyncMetadata {
        SyncMetadata {
            org_id: 123456,
            integration: INTEGRATION.into(),
            project_id: "proj".into(),
            scope: BTreeMap::from([(
                METADATA_INSTANCE_NAME.to_owned(),
                instances.iter().map(|s| (*s).to_owned()).collect(),
            )]),
            custom_fields: BTreeMap::new(),
            own_user_ids: own_ids
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>(),
        }
    }

    async fn pre_filter(
        filterer: &ServiceNowFilterer,
        api: &InMemoryCaseApi,
        mut c: Changelog,
    ) -> Option<FilterReason> {
        let cache = MetadataCache::new(100, DEFAULT_TTL, Arc::new(ManualClock::new(T)));
        let ctx = PreFilterContext::new(&cache, api, INTEGRATION);
        filterer.pre_filter(&mut c, &ctx).await.unwrap()
    }

    fn by(user: &str) -> Changelog {
        let mut c = comment("x", false);
        c.author = Some(Author {
            id: Some(user.into()),
            display_name: Some(user.into()),
        });
        c
    }

    #[tokio::test]
    async fn echoes_of_own_users_break_the_cycle() {
        let api = InMemoryCaseApi::new();
        api.insert_metadata(metadata(&["company"], &["svc.case-sync"]));
        let default = ServiceNowFilterer::default();
        for user in [
            "datadog",
            "DataDog",
            "DATADOG",
            " datadog ",
            "svc.case-sync",
            "SVC.Case-Sync",
        ] {
            assert_eq!(
                pre_filter(&default, &api, by(user)).await,
                Some(FilterReason::BreakSynchronizationCycle),
                "{user}"
            );
        }
        for user in ["john.doe", "datadog.bot", "data dog"] {
            assert_eq!(pre_filter(&default, &api, by(user)).await, None, "{user}");
        }
        let custom = ServiceNowFilterer::new(["case.sync", "  "]);
        assert_eq!(custom.own_user_names(), ["case.sync"]);
        assert_eq!(
            pre_filter(&custom, &api, by("Case.Sync")).await,
            Some(FilterReason::BreakSynchronizationCycle)
        );
        assert_eq!(pre_filter(&custom, &api, by("datadog")).await, None);
        // No author: nothing to compare, not an echo.
        let mut anonymous = by("x");
        anonymous.author = None;
        assert_eq!(pre_filter(&default, &api, anonymous).await, None);
    }

    #[tokio::test]
    async fn unconfigured_instances_are_dropped() {
        let api = InMemoryCaseApi::new();
        api.insert_metadata(metadata(&["company", "company-eu"], &[]));
        let f = ServiceNowFilterer::default();
        let on = |instance: &str| {
            let mut c = by("john.doe");
            c.metadata
                .insert(METADATA_INSTANCE_NAME.into(), instance.into());
            c
        };
        assert_eq!(pre_filter(&f, &api, on("company-eu")).await, None);
        assert_eq!(
            pre_filter(&f, &api, on("company-dev")).await,
            Some(FilterReason::InstanceNotConfigured)
        );
        let mut none = on("x");
        none.metadata.clear();
        assert_eq!(
            pre_filter(&f, &api, none).await,
            Some(FilterReason::InstanceNotConfigured)
        );
        // An organization without ServiceNow metadata has no instance configured.
        assert_eq!(
            pre_filter(&f, &InMemoryCaseApi::new(), on("company")).await,
            Some(FilterReason::InstanceNotConfigured)
        );
        // A scope listing no instances accepts all of them.
        let open = InMemoryCaseApi::new();
        open.insert_metadata(metadata(&[], &[]));
        assert_eq!(pre_filter(&f, &open, on("anything")).await, None);
    }

    #[tokio::test]
    async fn pre_filter_drops_unsupported_types_without_io() {
        let api = InMemoryCaseApi::new();
        let reason = pre_filter(
            &ServiceNowFilterer::default(),
            &api,
            changelog(ChangelogType::Unsupported("priority".into())),
        )
        .await;
        assert_eq!(reason, Some(FilterReason::UnsupportedChangelogType));
        assert_eq!(api.calls().list_sync_metadata, 0);
    }

    #[tokio::test]
    async fn metadata_errors_are_returned() {
        let api = InMemoryCaseApi::new();
        api.fail_next([CaseApiError::Unavailable("down".into())]);
        let cache = MetadataCache::new(100, DEFAULT_TTL, Arc::new(ManualClock::new(T)));
        let ctx = PreFilterContext::new(&cache, &api, INTEGRATION);
        let mut c = by("john.doe");
        assert_eq!(
            ServiceNowFilterer::default().pre_filter(&mut c, &ctx).await,
            Err(CaseApiError::Unavailable("down".into()))
        );
    }
}
