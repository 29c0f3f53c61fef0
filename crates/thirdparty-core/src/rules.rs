//! What every integration decides the same way, with one behaviour and one wording: the sync
//! cycle (our own writes echoed back), comment gating, the versioned update a field change
//! becomes, and the timeline entry a comment becomes. (The settings' pull gate is [`SyncSettings::pull_gate`].) See `docs/design.md`,
//! "Stages".

use std::collections::BTreeSet;

use crate::case::{
    Case, CaseUpdate, FieldChange, NewComment, SyncMetadata, SyncSettings, UpdateWriter,
};
use crate::case_api::CaseApi;
use crate::changelog::{Changelog, present};
use crate::error::CaseApiError;
use crate::filter_reason::FilterReason;
use crate::processor::ProcessOutcome;

/// Our own accounts in a third-party system, as configured on a reader (a bot login, a service
/// account id), compared ignoring ASCII case and surrounding blanks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAccounts(BTreeSet<String>);

impl OwnAccounts {
    /// These accounts; blank entries are ignored.
    pub fn new<I, S>(accounts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(
            accounts
                .into_iter()
                .map(|a| a.into().trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
        )
    }

    /// The accounts, lowercased.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    fn contains(&self, name: &str) -> bool {
        self.0.contains(&name.trim().to_ascii_lowercase())
    }

    /// Whether one of these accounts made the change (its author's id or display name); no
    /// I/O, so pre-filters check it before they read the metadata.
    pub fn is_author(&self, changelog: &Changelog) -> bool {
        author_names(changelog).iter().any(|n| self.contains(n))
    }
}

/// The author's names a sync cycle is matched on: its id and its display name (a login), each
/// when present.
fn author_names(changelog: &Changelog) -> Vec<&str> {
    let Some(author) = &changelog.author else {
        return Vec::new();
    };
    [author.id.as_ref(), author.display_name.as_ref()]
        .into_iter()
        .filter_map(present)
        .collect()
}

/// Whether the change was made by one of our own accounts, so applying it would echo our own
/// write (`break_synchronization_cycle`): the author's id or display name is in `configured`,
/// or in `own_user_ids` of a metadata entry for the item's site (`site_key` names the scope key
/// holding the site: an account, an instance, a host), ignoring ASCII case. An own account of
/// one site is anybody on another.
pub fn is_sync_cycle(
    changelog: &Changelog,
    configured: &OwnAccounts,
    entries: &[SyncMetadata],
    site_key: &str,
) -> bool {
    if configured.is_author(changelog) {
        return true;
    }
    let names = author_names(changelog);
    let site = changelog.metadata_value(site_key);
    entries
        .iter()
        .filter(|e| e.accepts(site_key, site))
        .flat_map(|e| &e.own_user_ids)
        .any(|own| {
            names
                .iter()
                .any(|n| own.trim().eq_ignore_ascii_case(n.trim()))
        })
}

/// Whether a comment (or work note) may be added: the project syncs that kind
/// (`comment_sync_disabled`, `work_note_sync_disabled`), the body has text (`empty_comment`)
/// and the case is open (`case_closed`).
pub fn comment_gate(
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
) -> Option<FilterReason> {
    if changelog.is_work_note && !settings.work_note_sync_enabled {
        return Some(FilterReason::WorkNoteSyncDisabled);
    }
    if !changelog.is_work_note && !settings.comment_sync_enabled {
        return Some(FilterReason::CommentSyncDisabled);
    }
    if changelog
        .body
        .as_deref()
        .is_none_or(|b| b.trim().is_empty())
    {
        return Some(FilterReason::EmptyComment);
    }
    if case.is_closed() {
        return Some(FilterReason::CaseClosed);
    }
    None
}

/// The versioned write of one field change: at the case's version, by the sync, with the
/// change's time and key as the field's watermark for its item.
pub fn field_update(changelog: &Changelog, case: &Case, change: FieldChange) -> CaseUpdate {
    CaseUpdate {
        org_id: case.org_id,
        case_id: case.id.clone(),
        expected_version: case.version,
        change,
        writer: UpdateWriter::sync(changelog),
    }
}

/// Adds a changelog's comment (or work note) to its case's timeline under `idempotency_key`,
/// derived from the source so a replay never duplicates it: `empty_comment` without text,
/// `invalid_field_value` without a key (the source gave no id to derive one from),
/// `duplicate_event` when the key was used already. The body and the author are kept as sent.
pub async fn add_comment(
    changelog: &Changelog,
    case: &Case,
    idempotency_key: Option<String>,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    let Some(body) = changelog.body.as_ref().filter(|b| !b.trim().is_empty()) else {
        return Ok(ProcessOutcome::Filtered(FilterReason::EmptyComment));
    };
    let Some(idempotency_key) = idempotency_key else {
        return Ok(ProcessOutcome::Filtered(FilterReason::InvalidFieldValue));
    };
    let comment = NewComment {
        org_id: case.org_id,
        case_id: case.id.clone(),
        idempotency_key,
        body: body.clone(),
        author: changelog.author.clone().unwrap_or_default(),
        is_work_note: changelog.is_work_note,
        integration: changelog.integration.clone(),
        source_event_time: changelog.event_timestamp,
    };
    let outcome = api.add_comment(&comment).await?;
    if !outcome.created {
        return Ok(ProcessOutcome::Filtered(FilterReason::DuplicateEvent));
    }
    tracing::debug!(
        case_id = %case.id,
        comment_id = %outcome.comment.id,
        is_work_note = changelog.is_work_note,
        "comment added to the case timeline"
    );
    Ok(ProcessOutcome::Applied)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::{Author, ChangelogType};

    fn by(id: &str, name: &str, site: &str) -> Changelog {
        let mut c = Changelog::new(
            "toy",
            1,
            ChangelogType::UpdateTitle,
            "1",
            datetime!(2024-01-01 0:00 UTC),
        );
        c.author = Some(Author {
            id: Some(id.into()),
            display_name: Some(name.into()),
        });
        c.metadata.insert("account_id".into(), site.into());
        c
    }

    fn entry(site: &str, own: &[&str]) -> SyncMetadata {
        SyncMetadata {
            org_id: 1,
            integration: "toy".into(),
            project_id: "p".into(),
            scope: BTreeMap::from([("account_id".into(), BTreeSet::from([site.to_owned()]))]),
            custom_fields: BTreeMap::new(),
            own_user_ids: own.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn own_accounts_match_id_or_login_and_metadata_only_on_its_site() {
        let configured = OwnAccounts::new(["Sync-Bot[bot]", " "]);
        let entries = [entry("a.example.com", &["svc-7"])];
        let key = "account_id";
        assert!(is_sync_cycle(
            &by("1", "sync-bot[bot]", "x"),
            &configured,
            &entries,
            key
        ));
        assert!(is_sync_cycle(
            &by("SVC-7", "Service", "a.example.com"),
            &configured,
            &entries,
            key
        ));
        assert!(
            !is_sync_cycle(
                &by("svc-7", "Service", "b.example.com"),
                &configured,
                &entries,
                key
            ),
            "an own account of one site is anybody on another"
        );
        assert!(!is_sync_cycle(
            &by("2", "Jane", "a.example.com"),
            &configured,
            &entries,
            key
        ));
        assert_eq!(configured.iter().collect::<Vec<_>>(), ["sync-bot[bot]"]);
    }
}
