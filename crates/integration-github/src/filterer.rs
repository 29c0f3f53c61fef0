//! Which GitHub changelogs must not be applied, and why.
//!
//! Pre-filter (no I/O beyond the cached metadata and settings), in order:
//! 1. sync cycle: the author (the webhook's `sender`, a comment's `user`) is one of our own
//!    GitHub accounts, by id or login ignoring ASCII case: configured on the filterer (our
//!    App's bot, `datadog[bot]` by default), or listed in `own_user_ids` of a metadata entry for
//!    the item's host -> `break_synchronization_cycle`;
//! 2. scope: no metadata entry accepts the host (`account_id`) and the repository id
//!    (`project_id`) -> `no_matching_metadata`;
//! 3. `unsupported_label`: the scope's project maps the label's name to a priority (its
//!    `value_mappings.priority`, keyed by label name) -> rewritten to `update_priority` (a label
//!    added sets that priority, one removed clears it); otherwise `unsupported_changelog_type`.
//!
//! Filter (pure), in order: the pull gate (`integration_disabled`, `project_sync_disabled`,
//! `sync_type_not_pull`, `created_before_start_syncing_from`); comments: `comment_sync_disabled`,
//! `empty_comment`, `case_closed`; fields: `field_sync_disabled`, `out_of_order_event` /
//! `duplicate_event` (the field's watermark for this issue), then per field: title
//! `invalid_field_value` when blank; status `field_value_not_mapped` when neither
//! `closed:{reason}` nor `closed` (nor `open`) is mapped; a priority label removed while the
//! case holds another priority `no_change`; the field's conflict policy (`state_conflict` /
//! `manual_conflict`; the status checks its `from` against the case); finally `no_change`. The assignee's checks need user look-ups: the processor decides
//! those.

use async_trait::async_trait;
use thirdparty_core::rules::{OwnAccounts, comment_gate, is_sync_cycle};
use thirdparty_core::{
    Case, CaseApiError, CaseField, Changelog, ChangelogType, FieldChange, FilterReason, Filterer,
    PreFilterContext, SyncSettings, present,
};

use crate::{LABEL, META_ACCOUNT_ID, META_PROJECT_ID, STATE_CLOSED};

/// The own logins of [`GitHubFilterer::default`]: our GitHub App's bot.
pub const DEFAULT_OWN_LOGINS: &[&str] = &["datadog[bot]"];

/// The GitHub filterer.
#[derive(Debug, Clone)]
pub struct GitHubFilterer {
    /// Our own accounts: logins (`datadog[bot]`) or numeric ids.
    own: OwnAccounts,
}

impl Default for GitHubFilterer {
    fn default() -> Self {
        Self::new(DEFAULT_OWN_LOGINS.iter().copied())
    }
}

impl GitHubFilterer {
    /// A filterer treating changes by these GitHub accounts (logins or ids, any ASCII case) as
    /// echoes of our own writes. Blank entries are ignored.
    pub fn new<I, S>(own: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            own: OwnAccounts::new(own),
        }
    }
}

#[async_trait]
impl Filterer for GitHubFilterer {
    async fn pre_filter(
        &self,
        changelog: &mut Changelog,
        ctx: &PreFilterContext<'_>,
    ) -> Result<Option<FilterReason>, CaseApiError> {
        if self.own.is_author(changelog) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let entries = ctx.org_metadata(changelog.org_id).await?;
        if is_sync_cycle(changelog, &self.own, &entries, META_ACCOUNT_ID) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let host = changelog.metadata_value(META_ACCOUNT_ID);
        let mut on_host = entries.iter().filter(|e| e.accepts(META_ACCOUNT_ID, host));
        let repository = changelog.metadata_value(META_PROJECT_ID);
        let Some(scope) = on_host.find(|e| e.accepts(META_PROJECT_ID, repository)) else {
            return Ok(Some(FilterReason::NoMatchingMetadata));
        };
        if changelog.changelog_type != ChangelogType::Unsupported(LABEL.to_owned()) {
            return Ok(None);
        }
        let label = present(changelog.to_string.as_ref())
            .or_else(|| present(changelog.from_string.as_ref()))
            .map(str::to_owned);
        let settings = ctx
            .project_settings(changelog.org_id, &scope.project_id)
            .await?;
        let mapped = match (&label, &settings) {
            (Some(label), Some(settings)) => priority_key(settings, label).map(str::to_owned),
            _ => None,
        };
        let Some(key) = mapped else {
            return Ok(Some(FilterReason::UnsupportedChangelogType));
        };
        // The mapping's own key, so the filter and processor map it like any priority id.
        changelog.changelog_type = ChangelogType::UpdatePriority;
        if changelog.to_string.is_some() {
            changelog.to_id = Some(key);
        } else {
            changelog.from_id = Some(key);
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
                    return Some(FilterReason::FieldSyncDisabled);
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

/// The key of `settings`' priority mapping for a label name (exact, else ignoring ASCII case:
/// GitHub label names are unique per repository regardless of case).
fn priority_key<'a>(settings: &'a SyncSettings, label: &str) -> Option<&'a str> {
    let mapping = settings.value_mappings.get(&CaseField::Priority)?;
    if let Some((key, _)) = mapping.get_key_value(label) {
        return Some(key);
    }
    mapping
        .keys()
        .find(|key| key.eq_ignore_ascii_case(label.trim()))
        .map(String::as_str)
}

/// The case status for a GitHub state: `closed:{reason}` falls back to `closed`.
fn status_for<'a>(settings: &'a SyncSettings, state: &str) -> Option<&'a str> {
    settings.map_value(CaseField::Status, state).or_else(|| {
        state
            .strip_prefix(STATE_CLOSED)
            .filter(|rest| rest.starts_with(':'))
            .and_then(|_| settings.map_value(CaseField::Status, STATE_CLOSED))
    })
}

/// Whether the case's status is one the GitHub state `from` maps to.
fn status_consistent(settings: &SyncSettings, case: &Case, from: Option<&str>) -> Option<bool> {
    let from = from?;
    Some(status_for(settings, from).is_some_and(|status| status == case.status))
}

/// The write a title, description, status or priority changelog asks for on this case, or why
/// it must not be made. Pure; shared by the filter and the processor.
pub(crate) fn planned_change(
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
) -> Result<FieldChange, FilterReason> {
    let (change, consistent) = match &changelog.changelog_type {
        ChangelogType::UpdateTitle => {
            let title =
                present(changelog.to_string.as_ref()).ok_or(FilterReason::InvalidFieldValue)?;
            (FieldChange::Title(title.to_owned()), None)
        }
        ChangelogType::UpdateDescription => (
            FieldChange::Description(changelog.to_string.clone().unwrap_or_default()),
            None,
        ),
        ChangelogType::UpdateStatus => {
            let to = present(changelog.to_id.as_ref()).ok_or(FilterReason::InvalidFieldValue)?;
            let status = status_for(settings, to).ok_or(FilterReason::FieldValueNotMapped)?;
            let consistent = status_consistent(settings, case, present(changelog.from_id.as_ref()));
            (FieldChange::Status(status.to_owned()), consistent)
        }
        ChangelogType::UpdatePriority => match present(changelog.to_id.as_ref()) {
            Some(to) => {
                let priority = settings
                    .map_value(CaseField::Priority, to)
                    .ok_or(FilterReason::FieldValueNotMapped)?;
                (FieldChange::Priority(Some(priority.to_owned())), None)
            }
            None => {
                // A priority label removed: clears the priority it set, if the case still has it.
                // Another priority (another label's, or a person's) is not this label's to clear.
                let from = present(changelog.from_id.as_ref())
                    .and_then(|from| settings.map_value(CaseField::Priority, from));
                if from.is_none() || case.priority.as_deref() != from {
                    return Err(FilterReason::NoChange);
                }
                (FieldChange::Priority(None), Some(true))
            }
        },
        _ => return Err(FilterReason::UnsupportedChangelogType),
    };
    let field = change.field();
    if let Some(reason) = case.conflict_reason(field, settings.conflict_policy(field), consistent) {
        return Err(reason);
    }
    if case.holds(&change) {
        return Err(FilterReason::NoChange);
    }
    Ok(change)
}
