//! Conversions between the generated wire types ([`crate::pb::case::v1`]) and
//! `thirdparty_core`'s model.
//!
//! Model -> wire is infallible (`From`); wire -> model is `TryFrom` and fails with a
//! [`WireError`] naming the offending field (missing required message, unspecified enum, bad
//! date or timestamp, duplicate per-field entry). Nothing here panics.

use std::collections::{BTreeMap, BTreeSet};

use prost_types::Timestamp;
use thirdparty_core as tp;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::pb::case::v1 as pb;

/// The wire form of a calendar date.
const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// A wire message that does not describe a valid model value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct WireError {
    /// The offending field (a dotted path into the message).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl WireError {
    /// A wire error on `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn missing(field: &str) -> Self {
        Self::new(field, "required but absent")
    }
}

/// A request that fails to convert is the caller's fault.
impl From<WireError> for tonic::Status {
    fn from(err: WireError) -> Self {
        tonic::Status::invalid_argument(err.to_string())
    }
}

/// An instant as a protobuf timestamp.
pub fn timestamp_to_pb(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        // Always in 0..1_000_000_000, so the cast cannot truncate.
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// A protobuf timestamp as an instant (UTC).
pub fn timestamp_from_pb(ts: &Timestamp, field: &str) -> Result<OffsetDateTime, WireError> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(WireError::new(
            field,
            format!("nanos {} out of range", ts.nanos),
        ));
    }
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| WireError::new(field, format!("timestamp out of range: {e}")))
}

fn required_timestamp(ts: Option<&Timestamp>, field: &str) -> Result<OffsetDateTime, WireError> {
    timestamp_from_pb(ts.ok_or_else(|| WireError::missing(field))?, field)
}

/// A date in its wire form `YYYY-MM-DD`.
pub fn date_to_pb(d: Date) -> String {
    d.format(DATE_FORMAT).unwrap_or_else(|_| d.to_string())
}

/// Parses a wire date `YYYY-MM-DD`.
pub fn date_from_pb(s: &str, field: &str) -> Result<Date, WireError> {
    Date::parse(s, DATE_FORMAT)
        .map_err(|e| WireError::new(field, format!("`{s}` is not a YYYY-MM-DD date: {e}")))
}

/// A case field as its wire enum.
pub fn case_field_to_pb(field: tp::CaseField) -> pb::CaseField {
    match field {
        tp::CaseField::Title => pb::CaseField::Title,
        tp::CaseField::Description => pb::CaseField::Description,
        tp::CaseField::Priority => pb::CaseField::Priority,
        tp::CaseField::Status => pb::CaseField::Status,
        tp::CaseField::Assignee => pb::CaseField::Assignee,
        tp::CaseField::DueDate => pb::CaseField::DueDate,
    }
}

/// A wire enum value as a case field (unspecified or unknown values are errors).
pub fn case_field_from_pb(value: i32, field: &str) -> Result<tp::CaseField, WireError> {
    match pb::CaseField::try_from(value) {
        Ok(pb::CaseField::Title) => Ok(tp::CaseField::Title),
        Ok(pb::CaseField::Description) => Ok(tp::CaseField::Description),
        Ok(pb::CaseField::Priority) => Ok(tp::CaseField::Priority),
        Ok(pb::CaseField::Status) => Ok(tp::CaseField::Status),
        Ok(pb::CaseField::Assignee) => Ok(tp::CaseField::Assignee),
        Ok(pb::CaseField::DueDate) => Ok(tp::CaseField::DueDate),
        Ok(pb::CaseField::Unspecified) => Err(WireError::new(field, "unspecified case field")),
        Err(_) => Err(WireError::new(field, format!("unknown case field {value}"))),
    }
}

fn custom_fields_to_pb(
    map: &BTreeMap<String, tp::CaseField>,
) -> std::collections::HashMap<String, i32> {
    map.iter()
        .map(|(k, f)| (k.clone(), case_field_to_pb(*f) as i32))
        .collect()
}

fn custom_fields_from_pb(
    map: std::collections::HashMap<String, i32>,
    field: &str,
) -> Result<BTreeMap<String, tp::CaseField>, WireError> {
    map.into_iter()
        .map(|(k, v)| {
            let f = case_field_from_pb(v, &format!("{field}[{k}]"))?;
            Ok((k, f))
        })
        .collect()
}

impl From<&tp::ExternalReference> for pb::ExternalReference {
    fn from(r: &tp::ExternalReference) -> Self {
        Self {
            integration: r.integration.clone(),
            reference: r.reference.clone(),
            site: r.site.clone(),
        }
    }
}

impl From<pb::ExternalReference> for tp::ExternalReference {
    fn from(r: pb::ExternalReference) -> Self {
        Self {
            integration: r.integration,
            site: r.site,
            reference: r.reference,
        }
    }
}

/// A conflict policy on the wire (`converge` is sent as itself, never as unspecified).
pub fn conflict_policy_to_pb(p: tp::ConflictPolicy) -> pb::ConflictPolicy {
    match p {
        tp::ConflictPolicy::Strict => pb::ConflictPolicy::Strict,
        tp::ConflictPolicy::Converge => pb::ConflictPolicy::Converge,
        tp::ConflictPolicy::ThirdPartyWins => pb::ConflictPolicy::ThirdPartyWins,
        tp::ConflictPolicy::Manual => pb::ConflictPolicy::Manual,
    }
}

/// A conflict policy from the wire: unspecified is `converge`, the default.
pub fn conflict_policy_from_pb(value: i32, field: &str) -> Result<tp::ConflictPolicy, WireError> {
    match pb::ConflictPolicy::try_from(value) {
        Ok(pb::ConflictPolicy::Unspecified | pb::ConflictPolicy::Converge) => {
            Ok(tp::ConflictPolicy::Converge)
        }
        Ok(pb::ConflictPolicy::Strict) => Ok(tp::ConflictPolicy::Strict),
        Ok(pb::ConflictPolicy::ThirdPartyWins) => Ok(tp::ConflictPolicy::ThirdPartyWins),
        Ok(pb::ConflictPolicy::Manual) => Ok(tp::ConflictPolicy::Manual),
        Err(_) => Err(WireError::new(
            field,
            format!("unknown conflict policy {value}"),
        )),
    }
}

impl From<&tp::Case> for pb::Case {
    fn from(c: &tp::Case) -> Self {
        Self {
            id: c.id.clone(),
            org_id: c.org_id,
            project_id: c.project_id.clone(),
            version: c.version,
            title: c.title.clone(),
            description: c.description.clone(),
            priority: c.priority.clone(),
            status: c.status.clone(),
            assignee_id: c.assignee_id.clone(),
            due_date: c.due_date.map(date_to_pb),
            created_at: Some(timestamp_to_pb(c.created_at)),
            external_references: c.external_references.iter().map(Into::into).collect(),
            source_watermarks: c
                .source_watermarks
                .iter()
                .map(|w| pb::SourceWatermark {
                    field: case_field_to_pb(w.field) as i32,
                    source: Some((&w.source).into()),
                    source_event_time: Some(timestamp_to_pb(w.at)),
                    change_keys: w.change_keys.clone(),
                })
                .collect(),
            last_writes: c
                .last_writes
                .iter()
                .map(|(f, w)| pb::FieldWrite {
                    field: case_field_to_pb(*f) as i32,
                    writer: Some(match &w.writer {
                        tp::Writer::Sync { source } => {
                            pb::field_write::Writer::SyncSource(source.into())
                        }
                        tp::Writer::Person { user_id } => pb::field_write::Writer::PersonUserId(
                            user_id.clone().unwrap_or_default(),
                        ),
                    }),
                    at: Some(timestamp_to_pb(w.at)),
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::Case> for tp::Case {
    type Error = WireError;

    fn try_from(c: pb::Case) -> Result<Self, WireError> {
        let mut source_watermarks: Vec<tp::SourceWatermark> = Vec::new();
        for w in c.source_watermarks {
            let field = case_field_from_pb(w.field, "case.source_watermarks.field")?;
            let source: tp::ExternalReference = w
                .source
                .ok_or_else(|| WireError::missing("case.source_watermarks.source"))?
                .into();
            let at = required_timestamp(
                w.source_event_time.as_ref(),
                "case.source_watermarks.source_event_time",
            )?;
            if source_watermarks
                .iter()
                .any(|m| m.field == field && m.source.same_item(&source))
            {
                return Err(WireError::new(
                    "case.source_watermarks",
                    format!("two watermarks for `{field}` of one item"),
                ));
            }
            source_watermarks.push(tp::SourceWatermark {
                field,
                source,
                at,
                change_keys: w.change_keys,
            });
        }
        let mut last_writes = BTreeMap::new();
        for w in c.last_writes {
            let field = case_field_from_pb(w.field, "case.last_writes.field")?;
            let writer = match w
                .writer
                .ok_or_else(|| WireError::missing("case.last_writes.writer"))?
            {
                pb::field_write::Writer::SyncSource(source) => tp::Writer::Sync {
                    source: source.into(),
                },
                pb::field_write::Writer::PersonUserId(id) => tp::Writer::Person {
                    user_id: Some(id).filter(|id| !id.is_empty()),
                },
            };
            let at = required_timestamp(w.at.as_ref(), "case.last_writes.at")?;
            if last_writes
                .insert(field, tp::FieldWrite { writer, at })
                .is_some()
            {
                return Err(WireError::new(
                    "case.last_writes",
                    format!("two last writes for `{field}`"),
                ));
            }
        }
        Ok(Self {
            id: c.id,
            org_id: c.org_id,
            project_id: c.project_id,
            version: c.version,
            title: c.title,
            description: c.description,
            priority: c.priority,
            status: c.status,
            assignee_id: c.assignee_id,
            due_date: c
                .due_date
                .as_deref()
                .map(|d| date_from_pb(d, "case.due_date"))
                .transpose()?,
            created_at: required_timestamp(c.created_at.as_ref(), "case.created_at")?,
            external_references: c.external_references.into_iter().map(Into::into).collect(),
            source_watermarks,
            last_writes,
        })
    }
}

impl From<&tp::FieldChange> for pb::FieldChange {
    fn from(change: &tp::FieldChange) -> Self {
        use pb::field_change::Change;
        let clear = |f: tp::CaseField| Change::Clear(case_field_to_pb(f) as i32);
        let change = match change {
            tp::FieldChange::Title(v) => Change::Title(v.clone()),
            tp::FieldChange::Description(v) => Change::Description(v.clone()),
            tp::FieldChange::Priority(Some(v)) => Change::Priority(v.clone()),
            tp::FieldChange::Priority(None) => clear(tp::CaseField::Priority),
            tp::FieldChange::Status(v) => Change::Status(v.clone()),
            tp::FieldChange::Assignee(Some(v)) => Change::AssigneeId(v.clone()),
            tp::FieldChange::Assignee(None) => clear(tp::CaseField::Assignee),
            tp::FieldChange::DueDate(Some(d)) => Change::DueDate(date_to_pb(*d)),
            tp::FieldChange::DueDate(None) => clear(tp::CaseField::DueDate),
        };
        Self {
            change: Some(change),
        }
    }
}

impl TryFrom<pb::FieldChange> for tp::FieldChange {
    type Error = WireError;

    fn try_from(change: pb::FieldChange) -> Result<Self, WireError> {
        use pb::field_change::Change;
        Ok(
            match change.change.ok_or_else(|| WireError::missing("change"))? {
                Change::Title(v) => tp::FieldChange::Title(v),
                Change::Description(v) => tp::FieldChange::Description(v),
                Change::Priority(v) => tp::FieldChange::Priority(Some(v)),
                Change::Status(v) => tp::FieldChange::Status(v),
                Change::AssigneeId(v) => tp::FieldChange::Assignee(Some(v)),
                Change::DueDate(d) => {
                    tp::FieldChange::DueDate(Some(date_from_pb(&d, "change.due_date")?))
                }
                Change::Clear(f) => match case_field_from_pb(f, "change.clear")? {
                    tp::CaseField::Priority => tp::FieldChange::Priority(None),
                    tp::CaseField::Assignee => tp::FieldChange::Assignee(None),
                    tp::CaseField::DueDate => tp::FieldChange::DueDate(None),
                    other => {
                        return Err(WireError::new(
                            "change.clear",
                            format!("`{other}` cannot be cleared"),
                        ));
                    }
                },
            },
        )
    }
}

impl From<&tp::CaseUpdate> for pb::CaseUpdate {
    fn from(u: &tp::CaseUpdate) -> Self {
        Self {
            org_id: u.org_id,
            case_id: u.case_id.clone(),
            expected_version: u.expected_version,
            change: Some((&u.change).into()),
            writer: Some(match &u.writer {
                tp::UpdateWriter::Sync(sync) => pb::case_update::Writer::Sync(pb::SyncWrite {
                    source: Some((&sync.source).into()),
                    source_event_time: Some(timestamp_to_pb(sync.source_event_time)),
                    change_key: sync.change_key.clone(),
                }),
                tp::UpdateWriter::Person { user_id } => {
                    pb::case_update::Writer::Person(pb::PersonWrite {
                        user_id: user_id.clone().unwrap_or_default(),
                    })
                }
            }),
        }
    }
}

impl TryFrom<pb::CaseUpdate> for tp::CaseUpdate {
    type Error = WireError;

    fn try_from(u: pb::CaseUpdate) -> Result<Self, WireError> {
        Ok(Self {
            org_id: u.org_id,
            case_id: u.case_id,
            expected_version: u.expected_version,
            change: u
                .change
                .ok_or_else(|| WireError::missing("update.change"))?
                .try_into()?,
            writer: match u
                .writer
                .ok_or_else(|| WireError::missing("update.writer"))?
            {
                pb::case_update::Writer::Sync(sync) => {
                    let source: tp::ExternalReference = sync
                        .source
                        .ok_or_else(|| WireError::missing("update.sync.source"))?
                        .into();
                    if source.integration.is_empty() || source.reference.is_empty() {
                        return Err(WireError::new(
                            "update.sync.source",
                            "integration and reference are required",
                        ));
                    }
                    if sync.change_key.is_empty() {
                        return Err(WireError::missing("update.sync.change_key"));
                    }
                    tp::UpdateWriter::Sync(tp::SyncWrite {
                        source,
                        source_event_time: required_timestamp(
                            sync.source_event_time.as_ref(),
                            "update.sync.source_event_time",
                        )?,
                        change_key: sync.change_key,
                    })
                }
                pb::case_update::Writer::Person(person) => tp::UpdateWriter::Person {
                    user_id: Some(person.user_id).filter(|id| !id.is_empty()),
                },
            },
        })
    }
}

impl From<&tp::Author> for pb::Author {
    fn from(a: &tp::Author) -> Self {
        Self {
            id: a.id.clone(),
            display_name: a.display_name.clone(),
        }
    }
}

impl From<pb::Author> for tp::Author {
    fn from(a: pb::Author) -> Self {
        Self {
            id: a.id,
            display_name: a.display_name,
        }
    }
}

impl From<&tp::NewComment> for pb::NewComment {
    fn from(c: &tp::NewComment) -> Self {
        Self {
            org_id: c.org_id,
            case_id: c.case_id.clone(),
            idempotency_key: c.idempotency_key.clone(),
            body: c.body.clone(),
            author: Some((&c.author).into()),
            is_work_note: c.is_work_note,
            integration: c.integration.clone(),
            source_event_time: Some(timestamp_to_pb(c.source_event_time)),
        }
    }
}

impl TryFrom<pb::NewComment> for tp::NewComment {
    type Error = WireError;

    fn try_from(c: pb::NewComment) -> Result<Self, WireError> {
        Ok(Self {
            org_id: c.org_id,
            case_id: c.case_id,
            idempotency_key: c.idempotency_key,
            body: c.body,
            author: c.author.map(Into::into).unwrap_or_default(),
            is_work_note: c.is_work_note,
            integration: c.integration,
            source_event_time: required_timestamp(
                c.source_event_time.as_ref(),
                "comment.source_event_time",
            )?,
        })
    }
}

impl From<&tp::Comment> for pb::Comment {
    fn from(c: &tp::Comment) -> Self {
        Self {
            id: c.id.clone(),
            case_id: c.case_id.clone(),
            idempotency_key: c.idempotency_key.clone(),
            body: c.body.clone(),
            author: Some((&c.author).into()),
            is_work_note: c.is_work_note,
        }
    }
}

impl From<pb::Comment> for tp::Comment {
    fn from(c: pb::Comment) -> Self {
        Self {
            id: c.id,
            case_id: c.case_id,
            idempotency_key: c.idempotency_key,
            body: c.body,
            author: c.author.map(Into::into).unwrap_or_default(),
            is_work_note: c.is_work_note,
        }
    }
}

/// A sync type as its wire enum.
pub fn sync_type_to_pb(t: tp::SyncType) -> pb::SyncType {
    match t {
        tp::SyncType::Bidirectional => pb::SyncType::StBidirectional,
        tp::SyncType::OneWayPull => pb::SyncType::StOneWayPull,
        tp::SyncType::OneWayPush => pb::SyncType::StOneWayPush,
    }
}

/// A wire enum value as a sync type (unspecified or unknown values are errors).
pub fn sync_type_from_pb(value: i32, field: &str) -> Result<tp::SyncType, WireError> {
    match pb::SyncType::try_from(value) {
        Ok(pb::SyncType::StBidirectional) => Ok(tp::SyncType::Bidirectional),
        Ok(pb::SyncType::StOneWayPull) => Ok(tp::SyncType::OneWayPull),
        Ok(pb::SyncType::StOneWayPush) => Ok(tp::SyncType::OneWayPush),
        Ok(pb::SyncType::StUnspecified) => Err(WireError::new(field, "unspecified sync type")),
        Err(_) => Err(WireError::new(field, format!("unknown sync type {value}"))),
    }
}

impl From<&tp::SyncSettings> for pb::SyncSettings {
    fn from(s: &tp::SyncSettings) -> Self {
        Self {
            org_id: s.org_id,
            project_id: s.project_id.clone(),
            integration: s.integration.clone(),
            integration_enabled: s.integration_enabled,
            project_sync_enabled: s.project_sync_enabled,
            sync_type: sync_type_to_pb(s.sync_type) as i32,
            field_sync: s
                .field_sync
                .iter()
                .map(|(f, enabled)| pb::FieldSync {
                    field: case_field_to_pb(*f) as i32,
                    enabled: *enabled,
                })
                .collect(),
            comment_sync_enabled: s.comment_sync_enabled,
            work_note_sync_enabled: s.work_note_sync_enabled,
            value_mappings: s
                .value_mappings
                .iter()
                .map(|(f, values)| pb::FieldValueMapping {
                    field: case_field_to_pb(*f) as i32,
                    values: values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                })
                .collect(),
            custom_fields: custom_fields_to_pb(&s.custom_fields),
            start_syncing_from: s.start_syncing_from.map(timestamp_to_pb),
            conflict_policy: conflict_policy_to_pb(s.conflict_policy) as i32,
            field_conflict_policies: s
                .field_conflict_policies
                .iter()
                .map(|(f, p)| pb::FieldConflictPolicy {
                    field: case_field_to_pb(*f) as i32,
                    policy: conflict_policy_to_pb(*p) as i32,
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::SyncSettings> for tp::SyncSettings {
    type Error = WireError;

    fn try_from(s: pb::SyncSettings) -> Result<Self, WireError> {
        let mut field_sync = BTreeMap::new();
        for fs in s.field_sync {
            let field = case_field_from_pb(fs.field, "settings.field_sync.field")?;
            if field_sync.insert(field, fs.enabled).is_some() {
                return Err(WireError::new(
                    "settings.field_sync",
                    format!("two switches for `{field}`"),
                ));
            }
        }
        let mut value_mappings = BTreeMap::new();
        for m in s.value_mappings {
            let field = case_field_from_pb(m.field, "settings.value_mappings.field")?;
            let values: BTreeMap<String, String> = m.values.into_iter().collect();
            if value_mappings.insert(field, values).is_some() {
                return Err(WireError::new(
                    "settings.value_mappings",
                    format!("two mappings for `{field}`"),
                ));
            }
        }
        let mut field_conflict_policies = BTreeMap::new();
        for p in s.field_conflict_policies {
            let field = case_field_from_pb(p.field, "settings.field_conflict_policies.field")?;
            let policy =
                conflict_policy_from_pb(p.policy, "settings.field_conflict_policies.policy")?;
            if field_conflict_policies.insert(field, policy).is_some() {
                return Err(WireError::new(
                    "settings.field_conflict_policies",
                    format!("two policies for `{field}`"),
                ));
            }
        }
        Ok(Self {
            conflict_policy: conflict_policy_from_pb(
                s.conflict_policy,
                "settings.conflict_policy",
            )?,
            field_conflict_policies,
            org_id: s.org_id,
            project_id: s.project_id,
            integration: s.integration,
            integration_enabled: s.integration_enabled,
            project_sync_enabled: s.project_sync_enabled,
            sync_type: sync_type_from_pb(s.sync_type, "settings.sync_type")?,
            field_sync,
            comment_sync_enabled: s.comment_sync_enabled,
            work_note_sync_enabled: s.work_note_sync_enabled,
            value_mappings,
            custom_fields: custom_fields_from_pb(s.custom_fields, "settings.custom_fields")?,
            start_syncing_from: s
                .start_syncing_from
                .as_ref()
                .map(|t| timestamp_from_pb(t, "settings.start_syncing_from"))
                .transpose()?,
        })
    }
}

impl From<&tp::SyncMetadata> for pb::SyncMetadata {
    fn from(m: &tp::SyncMetadata) -> Self {
        Self {
            org_id: m.org_id,
            integration: m.integration.clone(),
            project_id: m.project_id.clone(),
            scope: m
                .scope
                .iter()
                .map(|(k, values)| {
                    (
                        k.clone(),
                        pb::ScopeValues {
                            values: values.iter().cloned().collect(),
                        },
                    )
                })
                .collect(),
            custom_fields: custom_fields_to_pb(&m.custom_fields),
            own_user_ids: m.own_user_ids.iter().cloned().collect(),
        }
    }
}

impl TryFrom<pb::SyncMetadata> for tp::SyncMetadata {
    type Error = WireError;

    fn try_from(m: pb::SyncMetadata) -> Result<Self, WireError> {
        Ok(Self {
            org_id: m.org_id,
            integration: m.integration,
            project_id: m.project_id,
            scope: m
                .scope
                .into_iter()
                .map(|(k, v)| (k, v.values.into_iter().collect::<BTreeSet<_>>()))
                .collect(),
            custom_fields: custom_fields_from_pb(m.custom_fields, "metadata.custom_fields")?,
            own_user_ids: m.own_user_ids.into_iter().collect(),
        })
    }
}

impl From<&tp::SyncMetadataEntry> for pb::SyncMetadataEntry {
    fn from(e: &tp::SyncMetadataEntry) -> Self {
        Self {
            org_id: e.org_id,
            metadata: Some((&e.metadata).into()),
        }
    }
}

impl TryFrom<pb::SyncMetadataEntry> for tp::SyncMetadataEntry {
    type Error = WireError;

    fn try_from(e: pb::SyncMetadataEntry) -> Result<Self, WireError> {
        Ok(Self {
            org_id: e.org_id,
            metadata: e
                .metadata
                .ok_or_else(|| WireError::missing("entries.metadata"))?
                .try_into()?,
        })
    }
}

impl From<&tp::SyncMetadataPage> for pb::ListAllSyncMetadataResponse {
    fn from(page: &tp::SyncMetadataPage) -> Self {
        Self {
            entries: page.entries.iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.clone().unwrap_or_default(),
        }
    }
}

/// An empty `next_page_token` is the last page.
impl TryFrom<pb::ListAllSyncMetadataResponse> for tp::SyncMetadataPage {
    type Error = WireError;

    fn try_from(r: pb::ListAllSyncMetadataResponse) -> Result<Self, WireError> {
        Ok(Self {
            entries: r
                .entries
                .into_iter()
                .map(tp::SyncMetadataEntry::try_from)
                .collect::<Result<_, _>>()?,
            next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }
}

impl From<&tp::UserQuery> for pb::UserQuery {
    fn from(q: &tp::UserQuery) -> Self {
        Self {
            org_id: q.org_id,
            integration: q.integration.clone(),
            external_id: q.external_id.clone(),
            display_name: q.display_name.clone(),
            email: q.email.clone(),
        }
    }
}

impl From<pb::UserQuery> for tp::UserQuery {
    fn from(q: pb::UserQuery) -> Self {
        Self {
            org_id: q.org_id,
            integration: q.integration,
            external_id: q.external_id,
            display_name: q.display_name,
            email: q.email,
        }
    }
}

impl From<&tp::User> for pb::User {
    fn from(u: &tp::User) -> Self {
        Self {
            id: u.id.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
        }
    }
}

impl From<pb::User> for tp::User {
    fn from(u: pb::User) -> Self {
        Self {
            id: u.id,
            display_name: u.display_name,
            email: u.email,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn case() -> tp::Case {
        tp::Case {
            id: "c1".into(),
            org_id: 7,
            project_id: "p1".into(),
            version: 3,
            title: "T".into(),
            description: "D".into(),
            priority: Some("P2".into()),
            status: "OPEN".into(),
            assignee_id: None,
            due_date: Some(date!(2024 - 10 - 08)),
            created_at: datetime!(2024-01-15 10:30:00.123456789 UTC),
            external_references: vec![tp::ExternalReference::new(
                "jira",
                "acme.atlassian.net",
                "10002",
            )],
            source_watermarks: vec![tp::SourceWatermark {
                field: tp::CaseField::Status,
                source: tp::ExternalReference::new("jira", "acme.atlassian.net", "10002"),
                at: datetime!(2024-02-01 08:00 +02:00),
                change_keys: vec!["a".into(), "b".into()],
            }],
            last_writes: [
                (
                    tp::CaseField::Status,
                    tp::FieldWrite {
                        writer: tp::Writer::Sync {
                            source: tp::ExternalReference::new(
                                "jira",
                                "acme.atlassian.net",
                                "10002",
                            ),
                        },
                        at: datetime!(2024-02-01 08:00 +02:00),
                    },
                ),
                (
                    tp::CaseField::Title,
                    tp::FieldWrite {
                        writer: tp::Writer::Person {
                            user_id: Some("u1".into()),
                        },
                        at: datetime!(2024-02-02 09:00 UTC),
                    },
                ),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn case_round_trips() {
        let c = case();
        let back = tp::Case::try_from(pb::Case::from(&c)).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn every_field_change_round_trips() {
        let changes = [
            tp::FieldChange::Title("t".into()),
            tp::FieldChange::Description(String::new()),
            tp::FieldChange::Priority(Some("P1".into())),
            tp::FieldChange::Priority(None),
            tp::FieldChange::Status("CLOSED".into()),
            tp::FieldChange::Assignee(Some("u".into())),
            tp::FieldChange::Assignee(None),
            tp::FieldChange::DueDate(Some(date!(2025 - 01 - 31))),
            tp::FieldChange::DueDate(None),
        ];
        for change in changes {
            let back = tp::FieldChange::try_from(pb::FieldChange::from(&change)).unwrap();
            assert_eq!(back, change);
        }
    }

    #[test]
    fn settings_and_metadata_round_trip() {
        let settings = tp::SyncSettings {
            org_id: 1,
            project_id: "p".into(),
            integration: "jira".into(),
            integration_enabled: true,
            project_sync_enabled: true,
            sync_type: tp::SyncType::OneWayPull,
            field_sync: [(tp::CaseField::Title, false)].into_iter().collect(),
            comment_sync_enabled: true,
            work_note_sync_enabled: false,
            value_mappings: [(
                tp::CaseField::Priority,
                [("1".to_string(), "P1".to_string())].into_iter().collect(),
            )]
            .into_iter()
            .collect(),
            custom_fields: [("customfield_10015".to_string(), tp::CaseField::DueDate)]
                .into_iter()
                .collect(),
            start_syncing_from: Some(datetime!(2024-01-01 0:00 UTC)),
            conflict_policy: tp::ConflictPolicy::Strict,
            field_conflict_policies: [(tp::CaseField::Status, tp::ConflictPolicy::Manual)]
                .into_iter()
                .collect(),
        };
        let back = tp::SyncSettings::try_from(pb::SyncSettings::from(&settings)).unwrap();
        assert_eq!(back, settings);
        for policy in tp::ConflictPolicy::ALL {
            let s = tp::SyncSettings {
                conflict_policy: policy,
                ..settings.clone()
            };
            assert_eq!(
                tp::SyncSettings::try_from(pb::SyncSettings::from(&s)).unwrap(),
                s
            );
        }
        let unspecified = pb::SyncSettings {
            conflict_policy: 0,
            ..pb::SyncSettings::from(&settings)
        };
        assert_eq!(
            tp::SyncSettings::try_from(unspecified)
                .unwrap()
                .conflict_policy,
            tp::ConflictPolicy::Converge,
            "unspecified is the default"
        );

        let metadata = tp::SyncMetadata {
            org_id: 1,
            integration: "jira".into(),
            project_id: "p".into(),
            scope: [(
                "account_id".to_string(),
                ["acme.atlassian.net".to_string()].into_iter().collect(),
            )]
            .into_iter()
            .collect(),
            custom_fields: BTreeMap::new(),
            own_user_ids: ["bot".to_string()].into_iter().collect(),
        };
        let back = tp::SyncMetadata::try_from(pb::SyncMetadata::from(&metadata)).unwrap();
        assert_eq!(back, metadata);

        let page = tp::SyncMetadataPage {
            entries: vec![tp::SyncMetadataEntry {
                org_id: 1,
                metadata: metadata.clone(),
            }],
            next_page_token: Some("1:7".into()),
        };
        let wire = pb::ListAllSyncMetadataResponse::from(&page);
        assert_eq!(wire.next_page_token, "1:7");
        assert_eq!(tp::SyncMetadataPage::try_from(wire).unwrap(), page);
        let last = tp::SyncMetadataPage {
            next_page_token: None,
            ..page
        };
        let wire = pb::ListAllSyncMetadataResponse::from(&last);
        assert_eq!(wire.next_page_token, "", "the last page has no token");
        assert_eq!(tp::SyncMetadataPage::try_from(wire).unwrap(), last);
        let no_metadata = pb::ListAllSyncMetadataResponse {
            entries: vec![pb::SyncMetadataEntry {
                org_id: 1,
                metadata: None,
            }],
            next_page_token: String::new(),
        };
        assert_eq!(
            tp::SyncMetadataPage::try_from(no_metadata)
                .unwrap_err()
                .field,
            "entries.metadata"
        );
    }

    #[test]
    fn bad_wire_data_is_a_typed_error() {
        let mut c = pb::Case::from(&case());
        c.due_date = Some("08/10/2024".into());
        let err = tp::Case::try_from(c).unwrap_err();
        assert_eq!(err.field, "case.due_date");

        let mut c = pb::Case::from(&case());
        c.created_at = None;
        assert!(tp::Case::try_from(c).is_err());

        let mut c = pb::Case::from(&case());
        c.created_at = Some(Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        });
        assert!(tp::Case::try_from(c).is_err());

        let mut c = pb::Case::from(&case());
        c.source_watermarks[0].field = 99;
        assert!(tp::Case::try_from(c).is_err());

        let mut c = pb::Case::from(&case());
        let w = c.source_watermarks[0].clone();
        c.source_watermarks.push(w);
        assert!(tp::Case::try_from(c).is_err());

        let mut c = pb::Case::from(&case());
        c.last_writes[0].writer = None;
        assert!(tp::Case::try_from(c).is_err());

        assert!(tp::FieldChange::try_from(pb::FieldChange { change: None }).is_err());
        let clear_title = pb::FieldChange {
            change: Some(pb::field_change::Change::Clear(pb::CaseField::Title as i32)),
        };
        assert!(tp::FieldChange::try_from(clear_title).is_err());

        let s = pb::SyncSettings {
            sync_type: 0,
            ..Default::default()
        };
        assert!(tp::SyncSettings::try_from(s).is_err());

        let bad_nanos = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(timestamp_from_pb(&bad_nanos, "t").is_err());
    }
}
