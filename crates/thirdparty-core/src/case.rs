//! What the pipeline reads from and writes to the case-management system, free of any wire
//! format: cases, field updates, comments, project sync settings, per-org sync metadata, users.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::changelog::{Author, CaseField};

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// A case as the case-management system holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The case id (a UUID in production).
    pub id: String,
    /// Owning organization.
    pub org_id: u64,
    /// The case project, whose sync settings apply.
    pub project_id: String,
    /// Optimistic-lock version; every write must name it and bumps it.
    pub version: u64,
    /// Title.
    pub title: String,
    /// Description (markdown). Never logged.
    #[serde(default)]
    pub description: String,
    /// Priority name (`P1`..`P5`), if set.
    #[serde(default)]
    pub priority: Option<String>,
    /// Status name (`OPEN`, `IN_PROGRESS`, `CLOSED`, ...).
    pub status: String,
    /// Assigned user id, if any.
    #[serde(default)]
    pub assignee_id: Option<String>,
    /// Due date, if any (`YYYY-MM-DD` in JSON).
    #[serde(default, with = "iso_date::option")]
    pub due_date: Option<Date>,
    /// When the case was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Third-party items linked to the case.
    #[serde(default)]
    pub external_references: Vec<ExternalReference>,
    /// Per field and source item, the source-event time of the last change of that item
    /// applied to the field (the out-of-order watermark), written in the same versioned update
    /// as the field.
    #[serde(default)]
    pub source_watermarks: Vec<SourceWatermark>,
    /// Per field, who wrote it last and when: the sync (with the source time) or a person in
    /// the case-management system (with the time of the edit). The conflict policies decide on
    /// it (`docs/design.md`, "Conflicts and ordering").
    #[serde(default)]
    pub last_writes: BTreeMap<CaseField, FieldWrite>,
}

/// The out-of-order watermark of one field for one source item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceWatermark {
    /// The field.
    pub field: CaseField,
    /// The third-party item whose changes it orders.
    pub source: ExternalReference,
    /// Source-event time of the latest applied change of that item to that field.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The keys ([`crate::Changelog::change_key`]) of the changes applied at exactly `at`: the
    /// same change seen again is a replay, a different change at the same time is not.
    #[serde(default)]
    pub change_keys: Vec<String>,
}

/// Who wrote a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Writer {
    /// The sync, applying a change of this third-party item.
    Sync {
        /// The source item.
        source: ExternalReference,
    },
    /// A person in the case-management system.
    Person {
        /// The user id, when known.
        #[serde(default)]
        user_id: Option<String>,
    },
}

/// The last write of a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldWrite {
    /// Who wrote it.
    pub writer: Writer,
    /// For the sync, the source-event time of the change; for a person, when they edited it.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Case {
    /// Whether the case is closed (status `CLOSED`, any case).
    pub fn is_closed(&self) -> bool {
        self.status.eq_ignore_ascii_case("closed")
    }

    /// The current value of a field as the case names it (`None` when unset).
    pub fn field_value(&self, field: CaseField) -> Option<String> {
        match field {
            CaseField::Title => Some(self.title.clone()),
            CaseField::Description => Some(self.description.clone()),
            CaseField::Priority => self.priority.clone(),
            CaseField::Status => Some(self.status.clone()),
            CaseField::Assignee => self.assignee_id.clone(),
            CaseField::DueDate => self.due_date.map(|d| d.to_string()),
        }
    }

    /// The watermark of a field for one source item, if a change of it was ever applied.
    pub fn watermark(
        &self,
        field: CaseField,
        source: &ExternalReference,
    ) -> Option<&SourceWatermark> {
        self.source_watermarks
            .iter()
            .find(|w| w.field == field && w.source.same_item(source))
    }

    /// The ordering check of a field change: an event older than the field's watermark for its
    /// item is `out_of_order_event`; one at the watermark whose change was already applied is a
    /// replay (`duplicate_event`); a different change at the same source time is a new change,
    /// applied in delivery order (some sources have one-second precision).
    pub fn ordering_reason(
        &self,
        field: CaseField,
        source: &ExternalReference,
        event_time: OffsetDateTime,
        change_key: &str,
    ) -> Option<crate::FilterReason> {
        let mark = self.watermark(field, source)?;
        if event_time < mark.at {
            return Some(crate::FilterReason::OutOfOrderEvent);
        }
        if event_time == mark.at && mark.change_keys.iter().any(|k| k == change_key) {
            return Some(crate::FilterReason::DuplicateEvent);
        }
        None
    }

    /// [`Case::ordering_reason`] for a changelog's change of `field`: its item, source time and
    /// change key.
    pub fn changelog_ordering_reason(
        &self,
        field: CaseField,
        changelog: &crate::Changelog,
    ) -> Option<crate::FilterReason> {
        self.ordering_reason(
            field,
            &changelog.item(),
            changelog.event_timestamp,
            &changelog.change_key(),
        )
    }

    /// Whether the last write of a field is a person's edit in the case-management system (so
    /// a person changed it after the sync last wrote it).
    pub fn edited_in_case(&self, field: CaseField) -> bool {
        matches!(
            self.last_writes.get(&field),
            Some(FieldWrite {
                writer: Writer::Person { .. },
                ..
            })
        )
    }

    /// What a field's conflict policy says about a change that passed the ordering check.
    /// `consistent` is whether the change's `from` value is the case's current value (`None`
    /// for changes that carry no `from`). `None` means apply; otherwise the reason to drop it.
    ///
    /// - `strict`: `state_conflict` when `from` differs (changes without `from` apply);
    /// - `converge`: apply when `from` matches, or when nobody changed the field in the case
    ///   since the sync last wrote it; `state_conflict` otherwise;
    /// - `third_party_wins`: apply;
    /// - `manual`: as `converge`, but the conflict is `manual_conflict` (the pipeline leaves a
    ///   conflict entry on the case timeline).
    pub fn conflict_reason(
        &self,
        field: CaseField,
        policy: ConflictPolicy,
        consistent: Option<bool>,
    ) -> Option<crate::FilterReason> {
        use crate::FilterReason;
        match policy {
            ConflictPolicy::Strict => {
                (consistent == Some(false)).then_some(FilterReason::StateConflict)
            }
            ConflictPolicy::ThirdPartyWins => None,
            ConflictPolicy::Converge | ConflictPolicy::Manual => {
                if consistent == Some(true) || !self.edited_in_case(field) {
                    return None;
                }
                Some(if policy == ConflictPolicy::Manual {
                    FilterReason::ManualConflict
                } else {
                    FilterReason::StateConflict
                })
            }
        }
    }

    /// A change that writes a field's current value again.
    pub fn current(&self, field: CaseField) -> FieldChange {
        match field {
            CaseField::Title => FieldChange::Title(self.title.clone()),
            CaseField::Description => FieldChange::Description(self.description.clone()),
            CaseField::Priority => FieldChange::Priority(self.priority.clone()),
            CaseField::Status => FieldChange::Status(self.status.clone()),
            CaseField::Assignee => FieldChange::Assignee(self.assignee_id.clone()),
            CaseField::DueDate => FieldChange::DueDate(self.due_date),
        }
    }

    /// Whether the case already holds the value a change would write.
    pub fn holds(&self, change: &FieldChange) -> bool {
        match change {
            FieldChange::Title(v) => &self.title == v,
            FieldChange::Description(v) => &self.description == v,
            FieldChange::Priority(v) => &self.priority == v,
            FieldChange::Status(v) => &self.status == v,
            FieldChange::Assignee(v) => &self.assignee_id == v,
            FieldChange::DueDate(v) => &self.due_date == v,
        }
    }

    /// Applies a change in memory (used by fakes and the sandbox; the server is the authority).
    pub fn apply(&mut self, change: &FieldChange) {
        match change {
            FieldChange::Title(v) => self.title.clone_from(v),
            FieldChange::Description(v) => self.description.clone_from(v),
            FieldChange::Priority(v) => self.priority.clone_from(v),
            FieldChange::Status(v) => self.status.clone_from(v),
            FieldChange::Assignee(v) => self.assignee_id.clone_from(v),
            FieldChange::DueDate(v) => self.due_date = *v,
        }
    }

    /// Applies a versioned write in memory, as the Case API does in one transaction (used by
    /// fakes and the sandbox): the value, the writer of record and, for a synced change, the
    /// item's watermark (never moved backwards), then the version bump. The caller checks the
    /// version first. `now` is the time of a person's edit.
    pub fn record_update(&mut self, update: &CaseUpdate, now: OffsetDateTime) {
        let field = update.change.field();
        self.apply(&update.change);
        let write = match &update.writer {
            UpdateWriter::Sync(sync) => {
                self.advance_watermark(field, sync);
                FieldWrite {
                    writer: Writer::Sync {
                        source: sync.source.clone(),
                    },
                    at: sync.source_event_time,
                }
            }
            UpdateWriter::Person { user_id } => FieldWrite {
                writer: Writer::Person {
                    user_id: user_id.clone(),
                },
                at: now,
            },
        };
        self.last_writes.insert(field, write);
        self.version += 1;
    }

    fn advance_watermark(&mut self, field: CaseField, sync: &SyncWrite) {
        let at = sync.source_event_time;
        let found = self
            .source_watermarks
            .iter_mut()
            .find(|w| w.field == field && w.source.same_item(&sync.source));
        let Some(mark) = found else {
            self.source_watermarks.push(SourceWatermark {
                field,
                source: sync.source.clone(),
                at,
                change_keys: vec![sync.change_key.clone()],
            });
            return;
        };
        if at > mark.at {
            mark.at = at;
            mark.change_keys = vec![sync.change_key.clone()];
        } else if at == mark.at && !mark.change_keys.contains(&sync.change_key) {
            mark.change_keys.push(sync.change_key.clone());
        }
    }
}

/// A link from a case to a third-party item, keyed by (integration, site, id): ids are unique
/// only inside their site (`docs/design.md`, "References are scoped to their site").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExternalReference {
    /// The integration (its name for itself).
    pub integration: String,
    /// The site the item lives on (a cloud site, an instance, a host).
    #[serde(default)]
    pub site: String,
    /// The item's stable id on that site.
    pub reference: String,
}

impl ExternalReference {
    /// A reference.
    pub fn new(
        integration: impl Into<String>,
        site: impl Into<String>,
        reference: impl Into<String>,
    ) -> Self {
        Self {
            integration: integration.into(),
            site: site.into(),
            reference: reference.into(),
        }
    }

    /// Whether both name the same item: integration and site compared ignoring ASCII case
    /// (host names), the id exactly.
    pub fn same_item(&self, other: &ExternalReference) -> bool {
        self.reference == other.reference
            && self.integration.eq_ignore_ascii_case(&other.integration)
            && self.site.eq_ignore_ascii_case(&other.site)
    }
}

/// The new value of one case field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum FieldChange {
    /// New title.
    Title(String),
    /// New description.
    Description(String),
    /// New priority name, or none.
    Priority(Option<String>),
    /// New status name.
    Status(String),
    /// New assignee user id, or unassigned.
    Assignee(Option<String>),
    /// New due date, or none (`YYYY-MM-DD` in JSON).
    DueDate(#[serde(with = "iso_date::option")] Option<Date>),
}

impl FieldChange {
    /// The field this change writes.
    pub fn field(&self) -> CaseField {
        match self {
            FieldChange::Title(_) => CaseField::Title,
            FieldChange::Description(_) => CaseField::Description,
            FieldChange::Priority(_) => CaseField::Priority,
            FieldChange::Status(_) => CaseField::Status,
            FieldChange::Assignee(_) => CaseField::Assignee,
            FieldChange::DueDate(_) => CaseField::DueDate,
        }
    }
}

/// A versioned write of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseUpdate {
    /// Owning organization.
    pub org_id: u64,
    /// The case to write.
    pub case_id: String,
    /// The version the writer read; the write fails with a version mismatch otherwise.
    pub expected_version: u64,
    /// The new value.
    pub change: FieldChange,
    /// Who writes it: the sync (a third-party change) or a person.
    pub writer: UpdateWriter,
}

/// Who makes a [`CaseUpdate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateWriter {
    /// The sync applies a third-party change.
    Sync(SyncWrite),
    /// A person edits the case in the case-management system.
    Person {
        /// The user id, when known.
        user_id: Option<String>,
    },
}

/// A synced change, as the write records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncWrite {
    /// The third-party item the change comes from.
    pub source: ExternalReference,
    /// Source-event time of the change: becomes the field's watermark for that item.
    pub source_event_time: OffsetDateTime,
    /// The change's key ([`crate::Changelog::change_key`]), kept with the watermark so a replay
    /// at the same source time is recognized.
    pub change_key: String,
}

impl UpdateWriter {
    /// The writer of a synced changelog.
    pub fn sync(changelog: &crate::Changelog) -> Self {
        UpdateWriter::Sync(SyncWrite {
            source: changelog.item(),
            source_event_time: changelog.event_timestamp,
            change_key: changelog.change_key(),
        })
    }
}

/// A comment (or work note) to add to a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    /// Owning organization.
    pub org_id: u64,
    /// The case.
    pub case_id: String,
    /// Source-derived key: creating twice with the same key returns the first comment.
    pub idempotency_key: String,
    /// Text, byte for byte.
    pub body: String,
    /// The third-party author, preserved.
    pub author: Author,
    /// Internal note rather than public comment.
    pub is_work_note: bool,
    /// The integration the comment comes from.
    pub integration: String,
    /// When it was written in the source.
    pub source_event_time: OffsetDateTime,
}

/// A comment on a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The timeline entry id.
    pub id: String,
    /// The case.
    pub case_id: String,
    /// The idempotency key it was created with.
    pub idempotency_key: String,
    /// Text.
    pub body: String,
    /// The third-party author.
    pub author: Author,
    /// Internal note rather than public comment.
    pub is_work_note: bool,
}

/// What creating a comment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentOutcome {
    /// The comment (new, or the one first created with the same key).
    pub comment: Comment,
    /// False when the key was already used and the existing comment came back.
    pub created: bool,
}

/// Which directions a project syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncType {
    /// `ST_BIDIRECTIONAL`: both ways.
    #[serde(rename = "ST_BIDIRECTIONAL")]
    Bidirectional,
    /// `ST_ONE_WAY_PULL`: third party to case only.
    #[serde(rename = "ST_ONE_WAY_PULL")]
    OneWayPull,
    /// `ST_ONE_WAY_PUSH`: case to third party only; this reader applies nothing.
    #[serde(rename = "ST_ONE_WAY_PUSH")]
    OneWayPush,
}

impl SyncType {
    /// Whether third-party changes flow into cases.
    pub fn pulls(self) -> bool {
        matches!(self, SyncType::Bidirectional | SyncType::OneWayPull)
    }
}

/// A case project's sync settings for one integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    /// Owning organization.
    pub org_id: u64,
    /// The case project.
    pub project_id: String,
    /// The integration.
    pub integration: String,
    /// The integration is enabled for the organization.
    pub integration_enabled: bool,
    /// Sync is enabled for this project.
    pub project_sync_enabled: bool,
    /// Directions synced.
    pub sync_type: SyncType,
    /// Per-field sync switches; a field not listed is synced.
    #[serde(default)]
    pub field_sync: BTreeMap<CaseField, bool>,
    /// Comments are synced.
    #[serde(default = "yes")]
    pub comment_sync_enabled: bool,
    /// Work notes are synced.
    #[serde(default = "yes")]
    pub work_note_sync_enabled: bool,
    /// Per field, third-party value id -> case value name (priority ids, status ids, states).
    #[serde(default)]
    pub value_mappings: BTreeMap<CaseField, BTreeMap<String, String>>,
    /// Third-party custom field id -> the case field it maps to (e.g. `customfield_10015` ->
    /// `due_date`).
    #[serde(default)]
    pub custom_fields: BTreeMap<String, CaseField>,
    /// Changes older than this are not applied.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_syncing_from: Option<OffsetDateTime>,
    /// How a third-party change that conflicts with the case is resolved, for every field not
    /// listed in `field_conflict_policies`.
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// Per-field conflict policies that override `conflict_policy`.
    #[serde(default)]
    pub field_conflict_policies: BTreeMap<CaseField, ConflictPolicy>,
}

/// How a third-party change that conflicts with the case is resolved (`docs/design.md`,
/// "Conflicts and ordering"). Every policy first drops changes older than the field's
/// watermark for their item (`out_of_order_event`) and replays (`duplicate_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Drop the change (`state_conflict`) when its `from` differs from the case's value.
    Strict,
    /// Apply when `from` matches, or when nobody changed the field in the case since the sync
    /// last wrote it: late and lost third-party events converge on the third party's latest
    /// value, a person's edit in the case is protected (`state_conflict`).
    #[default]
    Converge,
    /// Apply every change newer than the field's watermark.
    ThirdPartyWins,
    /// As `converge`, but a conflict leaves a visible entry on the case timeline
    /// (`manual_conflict`) for a person to resolve.
    Manual,
}

impl ConflictPolicy {
    /// Every policy.
    pub const ALL: [ConflictPolicy; 4] = [
        ConflictPolicy::Strict,
        ConflictPolicy::Converge,
        ConflictPolicy::ThirdPartyWins,
        ConflictPolicy::Manual,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::Strict => "strict",
            ConflictPolicy::Converge => "converge",
            ConflictPolicy::ThirdPartyWins => "third_party_wins",
            ConflictPolicy::Manual => "manual",
        }
    }
}

impl std::fmt::Display for ConflictPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn yes() -> bool {
    true
}

impl SyncSettings {
    /// The checks every integration applies first, in order: the integration and the project
    /// are enabled, the sync type pulls third-party changes, and the event is not older than
    /// `start_syncing_from`.
    pub fn pull_gate(&self, event_time: OffsetDateTime) -> Option<crate::FilterReason> {
        use crate::FilterReason;
        if !self.integration_enabled {
            return Some(FilterReason::IntegrationDisabled);
        }
        if !self.project_sync_enabled {
            return Some(FilterReason::ProjectSyncDisabled);
        }
        if !self.sync_type.pulls() {
            return Some(FilterReason::SyncTypeNotPull);
        }
        if self
            .start_syncing_from
            .is_some_and(|start| event_time < start)
        {
            return Some(FilterReason::CreatedBeforeStartSyncingFrom);
        }
        None
    }

    /// The conflict policy of a field.
    pub fn conflict_policy(&self, field: CaseField) -> ConflictPolicy {
        self.field_conflict_policies
            .get(&field)
            .copied()
            .unwrap_or(self.conflict_policy)
    }

    /// Whether a field's sync switch is on (absent means on).
    pub fn field_synced(&self, field: CaseField) -> bool {
        self.field_sync.get(&field).copied().unwrap_or(true)
    }

    /// The case value mapped to a third-party value id for a field.
    pub fn map_value(&self, field: CaseField, third_party_id: &str) -> Option<&str> {
        self.value_mappings
            .get(&field)?
            .get(third_party_id)
            .map(String::as_str)
    }
}

/// One sync scope of an organization, as the pre-filter needs it without a settings lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncMetadata {
    /// Owning organization.
    pub org_id: u64,
    /// The integration.
    pub integration: String,
    /// The case project whose settings apply to items in this scope.
    pub project_id: String,
    /// Scope keys matched against a changelog's `metadata`: a key matches when its list is
    /// empty (any value) or holds the changelog's value (`account_id`, `project_id`,
    /// `instance_name`, ... as the integration names its scope).
    #[serde(default)]
    pub scope: BTreeMap<String, BTreeSet<String>>,
    /// Third-party custom field id -> case field, for this scope.
    #[serde(default)]
    pub custom_fields: BTreeMap<String, CaseField>,
    /// The organization's own sync users in the third party (changes by them are echoes).
    #[serde(default)]
    pub own_user_ids: BTreeSet<String>,
}

impl SyncMetadata {
    /// Whether the scope key `key` accepts `value` (an absent key or empty list accepts all).
    /// Values compare ignoring ASCII case: scope values are ids, host and instance names.
    pub fn accepts(&self, key: &str, value: Option<&str>) -> bool {
        match self.scope.get(key) {
            None => true,
            Some(allowed) if allowed.is_empty() => true,
            Some(allowed) => {
                value.is_some_and(|v| allowed.iter().any(|a| a.eq_ignore_ascii_case(v)))
            }
        }
    }
}

/// One sync scope of one organization, as [`crate::CaseApi::list_all_sync_metadata`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMetadataEntry {
    /// The organization the scope belongs to (the cache key warming files it under).
    pub org_id: u64,
    /// The scope, as [`crate::CaseApi::list_sync_metadata`] returns it for that organization.
    pub metadata: SyncMetadata,
}

/// One page of [`crate::CaseApi::list_all_sync_metadata`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncMetadataPage {
    /// Ordered by organization, then as `list_sync_metadata` orders an organization's scopes;
    /// one organization's entries may continue on the next page.
    pub entries: Vec<SyncMetadataEntry>,
    /// The token of the next page; `None` when nothing follows.
    pub next_page_token: Option<String>,
}

/// How to find the case user behind a third-party user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserQuery {
    /// Owning organization.
    pub org_id: u64,
    /// The integration.
    pub integration: String,
    /// The third-party user id (an account id or user name).
    pub external_id: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
}

/// A case-management user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id (UUID).
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_are_iso_in_json() {
        let change = FieldChange::DueDate(Some(date!(2024 - 10 - 08)));
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"field": "due_date", "value": "2024-10-08"})
        );
        assert_eq!(serde_json::from_value::<FieldChange>(json).unwrap(), change);
        let cleared = serde_json::to_value(FieldChange::DueDate(None)).unwrap();
        assert_eq!(
            cleared,
            serde_json::json!({"field": "due_date", "value": null})
        );
    }
}
