//! Decision records: what became of each changelog (or of a message that never became one),
//! without any body, so that an operator can answer "why did this change not reach the case?"
//! and a replay can compare today's decision with the recorded one. See `docs/design.md`,
//! "Decision records".

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::skip_list::MessagePosition;
use crate::{Changelog, FilterReason, HandleError};

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionKind {
    /// Written to the case.
    Applied,
    /// Passed every check in a dry run; not written.
    WouldApply,
    /// Dropped for good, with a filter reason.
    Filtered,
    /// Refused by the Case API with a skip-class error.
    Rejected,
    /// The message could not be decoded (skip class).
    Undecodable,
    /// The message decoded but is not something the reader handles (discard class).
    Discarded,
}

impl DecisionKind {
    /// The name in records, logs and replay tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::WouldApply => "would_apply",
            Self::Filtered => "filtered",
            Self::Rejected => "rejected",
            Self::Undecodable => "undecodable",
            Self::Discarded => "discarded",
        }
    }
}

/// One decision, as logged and as produced to the decisions topic (JSON, keyed by
/// [`DecisionRecord::key`]). Never holds a comment or description body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Source topic, when the message came from Kafka.
    pub topic: Option<String>,
    /// Source partition.
    pub partition: Option<i32>,
    /// Source offset.
    pub offset: Option<i64>,
    /// The organization (absent for a message that could not be decoded).
    pub org_id: Option<u64>,
    /// The integration (the flavor's, for a message that could not be decoded).
    pub integration: String,
    /// The third-party site.
    pub site: Option<String>,
    /// The third-party item's stable id.
    pub third_party_id: Option<String>,
    /// The third-party item's human key (`PROJ-12`, `owner/repo#7`).
    pub third_party_key: Option<String>,
    /// The case the change was for, when one was found.
    pub case_id: Option<String>,
    /// The changelog type (`update_status`, `create_comment`, ...).
    pub changelog_type: Option<String>,
    /// What was decided.
    pub decision: DecisionKind,
    /// The filter reason, for `filtered`.
    pub reason: Option<String>,
    /// The error kind, for `rejected`, `undecodable` and `discarded`.
    pub error: Option<String>,
    /// When the change happened in the third-party system.
    #[serde(with = "time::serde::rfc3339::option")]
    pub source_event_time: Option<OffsetDateTime>,
    /// When the reader decided.
    #[serde(with = "time::serde::rfc3339")]
    pub decision_time: OffsetDateTime,
    /// The reader's version.
    pub reader_version: String,
    /// The changelog's place in its message (0-based), so a replay matches each changelog of a
    /// message with its own earlier decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog_index: Option<u32>,
    /// Decided by `replay --apply` rather than by the live reader.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

/// The version written into records.
pub const READER_VERSION: &str = env!("CARGO_PKG_VERSION");

impl DecisionRecord {
    /// The record of a changelog's decision.
    pub fn for_changelog(
        changelog: &Changelog,
        position: Option<&MessagePosition>,
        case_id: Option<&str>,
        decision: DecisionKind,
        reason: Option<FilterReason>,
        error: Option<&HandleError>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            topic: position.map(|p| p.topic.clone()),
            partition: position.map(|p| p.partition),
            offset: position.map(|p| p.offset),
            org_id: Some(changelog.org_id),
            integration: changelog.integration.clone(),
            site: Some(changelog.site.clone()),
            third_party_id: Some(changelog.third_party_id.clone()),
            third_party_key: changelog.third_party_key.clone(),
            case_id: case_id.map(str::to_owned),
            changelog_type: Some(changelog.changelog_type.name().into_owned()),
            decision,
            reason: reason.map(|r| r.as_str().to_owned()),
            error: error.map(|e| e.kind().to_owned()),
            source_event_time: Some(changelog.event_timestamp),
            decision_time: now,
            reader_version: READER_VERSION.to_owned(),
            changelog_index: None,
            replay: false,
        }
    }

    /// The record of a message that never became a changelog.
    pub fn for_message(
        integration: &str,
        position: Option<&MessagePosition>,
        error: &HandleError,
        now: OffsetDateTime,
    ) -> Self {
        let decision = match error.class() {
            crate::ErrorClass::Discard => DecisionKind::Discarded,
            _ => DecisionKind::Undecodable,
        };
        Self {
            topic: position.map(|p| p.topic.clone()),
            partition: position.map(|p| p.partition),
            offset: position.map(|p| p.offset),
            org_id: None,
            integration: integration.to_owned(),
            site: None,
            third_party_id: None,
            third_party_key: None,
            case_id: None,
            changelog_type: None,
            decision,
            reason: None,
            error: Some(error.kind().to_owned()),
            source_event_time: None,
            decision_time: now,
            reader_version: READER_VERSION.to_owned(),
            changelog_index: None,
            replay: false,
        }
    }

    /// The Kafka key: `org:integration:site:id`, so every decision about one item lands in one
    /// partition, in order. A message without an item is keyed by its position.
    pub fn key(&self) -> String {
        match (&self.org_id, &self.site, &self.third_party_id) {
            (Some(org), Some(site), Some(id)) => {
                format!("{org}:{}:{site}:{id}", self.integration)
            }
            _ => format!(
                "{}:message:{}:{}:{}",
                self.integration,
                self.topic.as_deref().unwrap_or(""),
                self.partition.unwrap_or(-1),
                self.offset.unwrap_or(-1)
            ),
        }
    }

    /// `filtered (project_not_found)`, `applied`, `rejected (invalid_argument)`.
    pub fn outcome(&self) -> String {
        match (&self.reason, &self.error) {
            (Some(reason), _) => format!("{} ({reason})", self.decision.as_str()),
            (None, Some(error)) => format!("{} ({error})", self.decision.as_str()),
            (None, None) => self.decision.as_str().to_owned(),
        }
    }
}

/// Where decision records go besides the log (the decisions topic). Implementations must never
/// block and never fail the handling of a change: a record that cannot be delivered is counted
/// and dropped.
pub trait DecisionSink: Send + Sync + std::fmt::Debug {
    /// Hands one record over; returns at once.
    fn record(&self, record: &DecisionRecord);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;
    use crate::{ChangelogType, DecodeError};

    #[test]
    fn a_changelog_record_carries_the_item_the_case_and_no_body() {
        let mut changelog = Changelog::new(
            "toy",
            123,
            ChangelogType::CreateComment,
            "10002",
            datetime!(2024-06-01 10:00 UTC),
        );
        changelog.site = "acme.example.com".into();
        changelog.third_party_key = Some("PROJ-12".into());
        changelog.body = Some("secret body text".into());
        let position = MessagePosition {
            topic: "collaboration_integrations_toy".into(),
            partition: 3,
            offset: 42,
        };
        let record = DecisionRecord::for_changelog(
            &changelog,
            Some(&position),
            Some("case-1"),
            DecisionKind::Filtered,
            Some(FilterReason::ProjectNotFound),
            None,
            datetime!(2024-06-01 10:00:05 UTC),
        );
        assert_eq!(record.key(), "123:toy:acme.example.com:10002");
        assert_eq!(record.outcome(), "filtered (project_not_found)");
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("secret body"), "{json}");
        assert!(json.contains(r#""third_party_key":"PROJ-12""#), "{json}");
        assert!(json.contains(r#""decision":"filtered""#), "{json}");
        assert!(
            json.contains(r#""source_event_time":"2024-06-01T10:00:00Z""#),
            "{json}"
        );
        let back: DecisionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_message_that_never_became_a_changelog_is_keyed_by_its_position() {
        let position = MessagePosition {
            topic: "t".into(),
            partition: 0,
            offset: 7,
        };
        let error = HandleError::Decode(DecodeError::Malformed("eof".into()));
        let record = DecisionRecord::for_message(
            "toy",
            Some(&position),
            &error,
            datetime!(2024-06-01 10:00 UTC),
        );
        assert_eq!(record.decision, DecisionKind::Undecodable);
        assert_eq!(record.key(), "toy:message:t:0:7");
        assert_eq!(record.outcome(), "undecodable (malformed)");
    }
}
