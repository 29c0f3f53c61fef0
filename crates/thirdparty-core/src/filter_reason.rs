//! The closed set of reasons a changelog is dropped instead of applied.
//!
//! Every name is stable: it is the `reason` tag of `dd.case_third_party_reader.{flavor}.filtered`
//! and appears in `explain` output and logs. Most are the original service's names
//! (`docs/design.md`, "Names operators key on"). Adding a reason is a reviewed change:
//! dashboards and alerts key on these names.
//!
//! The core's reasons mean the same for every integration. A reason only one integration can
//! reach, under a name of its own, is that integration's: it declares an [`IntegrationReason`]
//! constant and lists it in its flavor's reasons, so the core names no integration.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! filter_reasons {
    ($( $(#[doc = $doc:literal])+ $variant:ident => $name:literal, )+) => {
        /// Why a changelog was dropped. See each variant for the stage that reaches it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FilterReason {
            $( $(#[doc = $doc])+ $variant, )+
            /// A reason one integration owns (its name and meaning are in that integration's
            /// docs); see [`IntegrationReason`].
            Integration(IntegrationReason),
        }

        impl FilterReason {
            /// Every core reason, in declaration order (integrations list their own).
            pub const ALL: &'static [FilterReason] = &[$(FilterReason::$variant,)+];

            /// The stable snake_case name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FilterReason::$variant => $name,)+
                    FilterReason::Integration(reason) => reason.name,
                }
            }

            /// The doc line of the reason (shown by `explain` and the README reference).
            pub fn description(self) -> &'static str {
                match self {
                    $(FilterReason::$variant => concat!($($doc),+).trim_ascii(),)+
                    FilterReason::Integration(reason) => reason.description,
                }
            }

            /// Parses the stable name of a core reason.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(FilterReason::$variant),)+ _ => None }
            }
        }
    };
}

filter_reasons! {
    /// The change was made by one of our own sync users: applying it would echo our own write.
    BreakSynchronizationCycle => "break_synchronization_cycle",
    /// The third-party value (priority id, status id, state code) has no case value mapped to it.
    FieldValueNotMapped => "field_value_not_mapped",
    /// The change conflicts with the case under the field's conflict policy: `strict`, its `from` differs from the case's value; `converge`, it does and a person changed the field in the case since the sync last wrote it.
    StateConflict => "state_conflict",
    /// No case is linked to the third-party item.
    NoCorrespondingCase => "no_corresponding_case",
    /// The case's project has no sync settings for this integration.
    ProjectNotFound => "project_not_found",
    /// The change happened before the project's `start_syncing_from` time.
    CreatedBeforeStartSyncingFrom => "created_before_start_syncing_from",
    /// The integration is disabled for the organization.
    IntegrationDisabled => "integration_disabled",
    /// Sync is disabled for the case's project.
    ProjectSyncDisabled => "project_sync_disabled",
    /// The changed field is not one the integration applies, and no custom mapping names it.
    UnsupportedChangelogType => "unsupported_changelog_type",
    /// No sync metadata of the organization matches the item's scope (account and project).
    NoMatchingMetadata => "no_matching_metadata",
    /// A custom field changed, but the item's project maps no case field to it.
    CustomFieldNotConfigured => "custom_field_not_configured",
    /// The new assignee matches no user of the organization.
    AssigneeResolutionFailed => "assignee_resolution_failed",
    /// The case kept changing under us: every bounded re-read and re-filter lost the version
    /// race. Kept in the closed set for the names operators key on, but never a decision: the
    /// message goes back to the retry policy (backoff, then handled again whole), so a busy case
    /// delays a change but never loses it, and the lost race is counted as a retry attempt
    /// (`retry_attempts{error=version_mismatch}`), not as filtered.
    CaseVersionMismatch => "case_version_mismatch",
    /// The item's site (an instance of the third-party system) is not configured for the organization.
    InstanceNotConfigured => "instance_not_configured",
    /// The project's sync type does not pull from the third party (push only).
    SyncTypeNotPull => "sync_type_not_pull",
    /// The case already holds the new value: only the change's time is recorded (the field's watermark), so an older event cannot undo it.
    NoChange => "no_change",
    /// The comment has no text once whitespace is ignored.
    EmptyComment => "empty_comment",
    /// The case is closed; only a status change may touch it.
    CaseClosed => "case_closed",
    /// A newer change to the same field was already applied (per-field source-time watermark).
    OutOfOrderEvent => "out_of_order_event",
    /// The new value cannot be applied (unparsable due date, empty title, missing value id).
    InvalidFieldValue => "invalid_field_value",
    /// The event names no case and no third-party item to find one by.
    MissingCaseReference => "missing_case_reference",
    /// A replay: the comment's idempotency key was seen, or this very change (same item, field and values) was applied at the field's watermark time.
    DuplicateEvent => "duplicate_event",
    /// An operator listed the message's `topic:partition:offset` in the skip list.
    SkippedByOperator => "skipped_by_operator",
    /// Comment sync is disabled for the project.
    CommentSyncDisabled => "comment_sync_disabled",
    /// Work-note sync is disabled for the project.
    WorkNoteSyncDisabled => "work_note_sync_disabled",
    /// The item's issue type is not among the types the project syncs.
    IssueTypeNotSynced => "issue_type_not_synced",
    /// The project's sync switch for this field is off (integrations without per-field bidirectional switches).
    FieldSyncDisabled => "field_sync_disabled",
    /// The change conflicts with a person's edit in the case and the field's conflict policy is `manual`: not applied, a conflict entry is left on the case timeline instead.
    ManualConflict => "manual_conflict",
}

/// A filter reason one integration owns: a stable snake_case name and the one-line meaning shown
/// by `explain` and the README, declared as a constant by the integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationReason {
    name: &'static str,
    description: &'static str,
}

impl IntegrationReason {
    /// A reason named `name` (stable, snake_case) that means `description`.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        Self { name, description }
    }
}

impl FilterReason {
    /// Parses a stable name among the core reasons and `extra` (an integration's own).
    pub fn parse_with(name: &str, extra: &[FilterReason]) -> Option<Self> {
        Self::parse(name).or_else(|| extra.iter().copied().find(|r| r.as_str() == name))
    }
}

impl Serialize for FilterReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FilterReason {
    /// A core reason's name (an integration's own reasons are parsed with
    /// [`FilterReason::parse_with`]).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown filter reason `{name}`")))
    }
}

impl fmt::Display for FilterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original service's names the core owns (the fourteenth, a per-field switch of one
    /// integration, is that integration's own reason).
    const SEED_REASONS: [&str; 13] = [
        "break_synchronization_cycle",
        "field_value_not_mapped",
        "state_conflict",
        "no_corresponding_case",
        "project_not_found",
        "created_before_start_syncing_from",
        "integration_disabled",
        "project_sync_disabled",
        "unsupported_changelog_type",
        "no_matching_metadata",
        "custom_field_not_configured",
        "assignee_resolution_failed",
        "case_version_mismatch",
    ];

    #[test]
    fn the_core_reasons_include_the_seeds() {
        assert!(FilterReason::ALL.len() >= 26, "{}", FilterReason::ALL.len());
        for name in SEED_REASONS {
            assert!(
                FilterReason::parse(name).is_some(),
                "missing seed reason {name}"
            );
        }
    }

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &r in FilterReason::ALL {
            let name = r.as_str();
            assert!(seen.insert(name), "duplicate {name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert_eq!(FilterReason::parse(name), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(name));
            assert!(!r.description().is_empty());
        }
    }

    #[test]
    fn the_readme_documents_every_reason() {
        let readme = include_str!("../../../README.md");
        for &r in FilterReason::ALL {
            let row = format!("| `{}` | {} |", r.as_str(), r.description());
            assert!(readme.contains(&row), "README.md lacks the row: {row}");
        }
    }
}
