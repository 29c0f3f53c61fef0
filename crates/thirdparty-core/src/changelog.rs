//! The normalized changelog: one change to one field (or one comment) of one third-party item.
//!
//! Its JSON form (snake_case keys, RFC 3339 timestamps, absent values omitted) is a contract:
//! the `decode` and `explain` commands print it and tests compare it field for field.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// Prefix of the changelog type of a field no integration knows how to apply.
pub const UNSUPPORTED_PREFIX: &str = "unsupported_";

/// One normalized change decoded from a third-party webhook.
///
/// A webhook may yield several changelogs (one per changed field, one per comment); each one is
/// filtered, processed and counted on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changelog {
    /// The integration that produced it (the name its decoder gives itself).
    pub integration: String,
    /// The organization that owns the integration.
    pub org_id: u64,
    /// What changed.
    pub changelog_type: ChangelogType,
    /// The site the item lives on (a cloud site, an instance, a host): third-party ids are
    /// unique only inside their site, so every reference is keyed by (integration, site, id).
    /// See `docs/design.md`, "References are scoped to their site". Not part of the JSON form
    /// (the integration's `metadata` already names the site there); accepted when present.
    #[serde(default, skip_serializing)]
    pub site: String,
    /// The third-party item's stable id (an issue id, a record's sys id).
    pub third_party_id: String,
    /// The third-party item's human key (`PROJ-12`, `owner/repo#7`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_key: Option<String>,
    /// When the change happened in the third-party system.
    #[serde(with = "time::serde::rfc3339")]
    pub event_timestamp: OffsetDateTime,
    /// Who made the change, as the third-party system names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    /// Previous value's id (a status id, a user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_id: Option<String>,
    /// Previous value's label (a status name, a user name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_string: Option<String>,
    /// New value's id (a status id, a state code, a user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_id: Option<String>,
    /// New value's label (a status name, a user name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_string: Option<String>,
    /// Comment text, byte for byte (only for `create_comment`). Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The source's id of the comment, used to build the comment's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<String>,
    /// True for work notes (internal comments).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_work_note: bool,
    /// A direct reference to the case, when the source carries one (a correlation id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_reference: Option<String>,
    /// Integration-specific scope (`account_id`, `project_id`, `instance_name`, ...), matched
    /// against the organization's sync metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Changelog {
    /// A changelog with the required fields set and everything else absent.
    pub fn new(
        integration: impl Into<String>,
        org_id: u64,
        changelog_type: ChangelogType,
        third_party_id: impl Into<String>,
        event_timestamp: OffsetDateTime,
    ) -> Self {
        Self {
            integration: integration.into(),
            org_id,
            changelog_type,
            site: String::new(),
            third_party_id: third_party_id.into(),
            third_party_key: None,
            event_timestamp,
            author: None,
            from_id: None,
            from_string: None,
            to_id: None,
            to_string: None,
            body: None,
            comment_id: None,
            is_work_note: false,
            case_reference: None,
            metadata: BTreeMap::new(),
        }
    }

    /// The item this changelog is about, keyed by (integration, site, id).
    pub fn item(&self) -> crate::case::ExternalReference {
        crate::case::ExternalReference::new(&self.integration, &self.site, &self.third_party_id)
    }

    /// A stable key of this change: the same change seen again (same item, type, values and
    /// comment) has the same key, two different changes have different keys even at the same
    /// source time. 64-bit FNV-1a over the parts, in hex.
    pub fn change_key(&self) -> String {
        let mut hash = Fnv1a::default();
        hash.field(self.integration.as_bytes());
        hash.field(self.site.as_bytes());
        hash.field(self.third_party_id.as_bytes());
        hash.field(self.changelog_type.name().as_bytes());
        for part in [
            &self.from_id,
            &self.from_string,
            &self.to_id,
            &self.to_string,
            &self.comment_id,
        ] {
            match part {
                Some(v) => {
                    hash.field(b"1");
                    hash.field(v.as_bytes());
                }
                None => hash.field(b"0"),
            }
        }
        format!("{:016x}", hash.0)
    }

    /// A metadata value by key, if present and non-empty.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A site as references key it: trimmed and lowercased (host and instance names are not case
/// sensitive), so one site always yields the same references and idempotency keys.
pub fn normalize_site(site: &str) -> String {
    site.trim().to_ascii_lowercase()
}

/// A value that is present and not blank (`from`, `to`, names).
pub fn present(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str).filter(|v| !v.trim().is_empty())
}

/// 64-bit FNV-1a: a stable, dependency-free digest (not for security).
#[derive(Debug)]
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Adds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Adds one length-prefixed part (so `("ab", "c")` and `("a", "bc")` differ).
    pub fn field(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    /// The digest of some bytes.
    pub fn digest(bytes: &[u8]) -> u64 {
        let mut h = Self::default();
        h.write(bytes);
        h.0
    }
}

/// The author of a change as the third-party system names them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Author {
    /// Stable id (an account id, a user name, a numeric user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A field of a case that third-party changes can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseField {
    /// The case title.
    Title,
    /// The case description.
    Description,
    /// The case priority name.
    Priority,
    /// The case status name.
    Status,
    /// The assigned user.
    Assignee,
    /// The due date.
    DueDate,
}

impl CaseField {
    /// Every field, in a stable order.
    pub const ALL: [CaseField; 6] = [
        CaseField::Title,
        CaseField::Description,
        CaseField::Priority,
        CaseField::Status,
        CaseField::Assignee,
        CaseField::DueDate,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseField::Title => "title",
            CaseField::Description => "description",
            CaseField::Priority => "priority",
            CaseField::Status => "status",
            CaseField::Assignee => "assignee",
            CaseField::DueDate => "due_date",
        }
    }

    /// Parses the stable snake_case name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The changelog type that updates this field.
    pub fn update_type(self) -> ChangelogType {
        match self {
            CaseField::Title => ChangelogType::UpdateTitle,
            CaseField::Description => ChangelogType::UpdateDescription,
            CaseField::Priority => ChangelogType::UpdatePriority,
            CaseField::Status => ChangelogType::UpdateStatus,
            CaseField::Assignee => ChangelogType::UpdateAssignee,
            CaseField::DueDate => ChangelogType::UpdateDueDate,
        }
    }
}

impl fmt::Display for CaseField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a changelog changes. Serialized as a snake_case string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChangelogType {
    /// `update_title`
    UpdateTitle,
    /// `update_description`
    UpdateDescription,
    /// `update_priority`
    UpdatePriority,
    /// `update_status`
    UpdateStatus,
    /// `update_assignee`
    UpdateAssignee,
    /// `update_due_date`
    UpdateDueDate,
    /// `create_comment` (comments and work notes)
    CreateComment,
    /// `unsupported_{field_id}`: a field no integration applies as such (custom fields stay here
    /// until the pre-filter finds them configured).
    Unsupported(String),
}

impl ChangelogType {
    /// The stable snake_case name (`unsupported_customfield_10015` for unsupported fields).
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow;
        match self {
            ChangelogType::UpdateTitle => Cow::Borrowed("update_title"),
            ChangelogType::UpdateDescription => Cow::Borrowed("update_description"),
            ChangelogType::UpdatePriority => Cow::Borrowed("update_priority"),
            ChangelogType::UpdateStatus => Cow::Borrowed("update_status"),
            ChangelogType::UpdateAssignee => Cow::Borrowed("update_assignee"),
            ChangelogType::UpdateDueDate => Cow::Borrowed("update_due_date"),
            ChangelogType::CreateComment => Cow::Borrowed("create_comment"),
            ChangelogType::Unsupported(field) => Cow::Owned(format!("{UNSUPPORTED_PREFIX}{field}")),
        }
    }

    /// A low-cardinality name for metric tags: every unsupported field counts as `unsupported`.
    pub fn metric_tag(&self) -> &'static str {
        match self {
            ChangelogType::UpdateTitle => "update_title",
            ChangelogType::UpdateDescription => "update_description",
            ChangelogType::UpdatePriority => "update_priority",
            ChangelogType::UpdateStatus => "update_status",
            ChangelogType::UpdateAssignee => "update_assignee",
            ChangelogType::UpdateDueDate => "update_due_date",
            ChangelogType::CreateComment => "create_comment",
            ChangelogType::Unsupported(_) => "unsupported",
        }
    }

    /// Parses a stable name; anything starting with `unsupported_` is an unsupported field.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "update_title" => ChangelogType::UpdateTitle,
            "update_description" => ChangelogType::UpdateDescription,
            "update_priority" => ChangelogType::UpdatePriority,
            "update_status" => ChangelogType::UpdateStatus,
            "update_assignee" => ChangelogType::UpdateAssignee,
            "update_due_date" => ChangelogType::UpdateDueDate,
            "create_comment" => ChangelogType::CreateComment,
            other => {
                let field = other.strip_prefix(UNSUPPORTED_PREFIX)?;
                if field.is_empty() {
                    return None;
                }
                ChangelogType::Unsupported(field.to_owned())
            }
        })
    }

    /// The case field this type updates, if it updates one.
    pub fn case_field(&self) -> Option<CaseField> {
        match self {
            ChangelogType::UpdateTitle => Some(CaseField::Title),
            ChangelogType::UpdateDescription => Some(CaseField::Description),
            ChangelogType::UpdatePriority => Some(CaseField::Priority),
            ChangelogType::UpdateStatus => Some(CaseField::Status),
            ChangelogType::UpdateAssignee => Some(CaseField::Assignee),
            ChangelogType::UpdateDueDate => Some(CaseField::DueDate),
            ChangelogType::CreateComment | ChangelogType::Unsupported(_) => None,
        }
    }
}

impl fmt::Display for ChangelogType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for ChangelogType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for ChangelogType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ChangelogType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown changelog type `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn json_form_matches_the_spec_keys() {
        let mut c = Changelog::new(
            "toy",
            123456,
            ChangelogType::UpdateStatus,
            "10002",
            datetime!(2024-01-15 10:30:00 UTC),
        );
        c.third_party_key = Some("PROJ-12".into());
        c.author = Some(Author {
            id: Some("5b10a".into()),
            display_name: Some("Jane Doe".into()),
        });
        c.from_id = Some("10003".into());
        c.from_string = Some("To Do".into());
        c.to_id = Some("3".into());
        c.to_string = Some("In Progress".into());
        c.metadata
            .insert("account_id".into(), "acme.example.com".into());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "integration": "toy", "org_id": 123456, "changelog_type": "update_status",
                "third_party_id": "10002", "third_party_key": "PROJ-12",
                "event_timestamp": "2024-01-15T10:30:00Z",
                "author": {"id": "5b10a", "display_name": "Jane Doe"},
                "from_id": "10003", "from_string": "To Do", "to_id": "3", "to_string": "In Progress",
                "metadata": {"account_id": "acme.example.com"}
            })
        );
        let back: Changelog = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unsupported_types_round_trip() {
        let t = ChangelogType::Unsupported("customfield_10015".into());
        assert_eq!(t.name(), "unsupported_customfield_10015");
        assert_eq!(
            ChangelogType::parse("unsupported_customfield_10015"),
            Some(t)
        );
        assert_eq!(ChangelogType::parse("unsupported_"), None);
        assert_eq!(ChangelogType::parse("nonsense"), None);
        for f in CaseField::ALL {
            assert_eq!(CaseField::parse(f.as_str()), Some(f));
            assert_eq!(f.update_type().case_field(), Some(f));
        }
    }
}
