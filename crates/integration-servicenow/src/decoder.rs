//! The ServiceNow diff event -> normalized changelogs.

use thirdparty_core::json::{self, Json};
use thirdparty_core::{Author, Changelog, ChangelogType, DecodeError, Decoder};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::{INTEGRATION, METADATA_INSTANCE_NAME};

/// The event types this decoder handles: diffs of incidents linked to a case.
pub const INCIDENT_EVENT_TYPES: &[&str] = &["datadog_x_incident"];

/// The largest message value the decoder accepts by default (1 MiB); larger values are
/// [`DecodeError::TooLarge`]. ServiceNow journal entries are far smaller.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// Decodes a ServiceNow diff event (`docs/design.md`, "Kafka messages") into changelogs ("The changelog").
///
/// One event yields, in this order: a `create_comment` for `data.comment`, a `create_comment`
/// with `is_work_note` for `data.workNote`, an `update_status` (`to_id` = the state code) for
/// `data.state`; none of them yields no changelog. Every changelog carries `third_party_id` =
/// `sysId`, `case_reference` = `data.correlationId` (when non-empty), the author `updatedBy`,
/// `event_timestamp` = `updatedAt` (RFC 3339 or ServiceNow's `2024-01-15 10:30:00`, UTC,
/// normalized to UTC) and the metadata `instance_name`. Bodies are kept byte for byte; a present
/// but empty body still yields a changelog (the filter drops it as `empty_comment`).
///
/// Errors: oversized input is [`DecodeError::TooLarge`]; bytes that are not a JSON object are
/// [`DecodeError::Malformed`]; a `type` other than [`INCIDENT_EVENT_TYPES`] is
/// [`DecodeError::UnsupportedEvent`]; a missing or mistyped field is [`DecodeError::Invalid`]
/// naming it (`sysId`, `data.state`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceNowDecoder {
    max_event_bytes: usize,
}

impl Default for ServiceNowDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceNowDecoder {
    /// A decoder accepting values up to [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// The same decoder with another size limit, in bytes.
    pub fn with_max_event_bytes(self, max_event_bytes: usize) -> Self {
        Self { max_event_bytes }
    }

    /// The size limit, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }
}

impl Decoder for ServiceNowDecoder {
    fn integration(&self) -> &'static str {
        INTEGRATION
    }

    fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
        if value.len() > self.max_event_bytes {
            return Err(DecodeError::TooLarge {
                size: value.len(),
                limit: self.max_event_bytes,
            });
        }
        // Valid JSON of the wrong shape fails validation: discarded, not skipped.
        decode_event(&json::parse(value)?)
    }
}

// The keys of the event the decoder reads; every other key is skipped.
thirdparty_core::json_object!(
    /// The Kafka message value: one incident event.
    Event {
        "type" => event_type: Json<'a>,
        "orgId" => org_id: Json<'a>,
        "sysId" => sys_id: Json<'a>,
        "instanceName" => instance_name: Json<'a>,
        "updatedAt" => updated_at: Json<'a>,
        "updatedBy" => updated_by: Json<'a>,
        "data" => data: Json<'a, Data<'a>>,
    }
);
thirdparty_core::json_object!(
    /// `data`: what changed.
    Data {
        "comment" => comment: Json<'a>,
        "workNote" => work_note: Json<'a>,
        "state" => state: Json<'a>,
        "correlationId" => correlation_id: Json<'a>,
    }
);

fn decode_event(event: &Event<'_>) -> Result<Vec<Changelog>, DecodeError> {
    let event_type = event.event_type.required_str("type")?;
    if !INCIDENT_EVENT_TYPES.contains(&event_type) {
        return Err(DecodeError::unsupported_event(event_type));
    }
    let org_id = event.org_id.org_id("orgId")?;
    let sys_id = event.sys_id.required_str("sysId")?;
    let instance_name = event.instance_name.required_str("instanceName")?;
    let updated_at = updated_at(&event.updated_at)?;
    let updated_by = event
        .updated_by
        .str_at("updatedBy")?
        .filter(|s| !s.is_empty());
    let data = event.data.required_object("data")?;
    let comment = data.comment.str_at("data.comment")?;
    let work_note = data.work_note.str_at("data.workNote")?;
    let state = state(&data.state)?;
    let correlation_id = data
        .correlation_id
        .str_at("data.correlationId")?
        .filter(|s| !s.is_empty());

    let base = {
        let mut c = Changelog::new(
            INTEGRATION,
            org_id,
            ChangelogType::CreateComment,
            sys_id,
            updated_at,
        );
        // `updatedBy` is a user name, not a display name: nothing is invented.
        c.author = updated_by.map(|name| Author {
            id: Some(name.to_owned()),
            display_name: None,
        });
        c.case_reference = correlation_id.map(str::to_owned);
        c.site = thirdparty_core::normalize_site(instance_name);
        c.metadata
            .insert(METADATA_INSTANCE_NAME.to_owned(), instance_name.to_owned());
        c
    };

    let mut changelogs = Vec::with_capacity(3);
    if let Some(body) = comment {
        let mut c = base.clone();
        c.body = Some(body.to_owned());
        changelogs.push(c);
    }
    if let Some(body) = work_note {
        let mut c = base.clone();
        c.body = Some(body.to_owned());
        c.is_work_note = true;
        changelogs.push(c);
    }
    if let Some(code) = state {
        let mut c = base;
        c.changelog_type = ChangelogType::UpdateStatus;
        c.to_id = Some(code);
        changelogs.push(c);
    }
    Ok(changelogs)
}

/// `updatedAt`: RFC 3339, or ServiceNow's `YYYY-MM-DD hh:mm:ss[.fff]` in UTC; normalized to UTC.
fn updated_at(value: &Json<'_>) -> Result<OffsetDateTime, DecodeError> {
    const FIELD: &str = "updatedAt";
    let text = value.required_str(FIELD)?;
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let servicenow = format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        PrimitiveDateTime::parse(text, servicenow)
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    });
    let Some(parsed) = parsed else {
        return Err(DecodeError::invalid(
            FIELD,
            "expected RFC 3339 or `YYYY-MM-DD hh:mm:ss` (UTC)",
        ));
    };
    // Normalized to UTC so the same instant always yields the same idempotency key, and checked
    // to be printable as RFC 3339 (the changelog's JSON form and the key need it).
    parsed
        .checked_to_offset(UtcOffset::UTC)
        .filter(|t| t.format(&Rfc3339).is_ok())
        .ok_or_else(|| DecodeError::invalid(FIELD, "out of the RFC 3339 range once in UTC"))
}

/// `data.state`: a state code, as a non-empty string or an integer (ServiceNow sends both;
/// negative codes exist too: a change request starts at `-5`, New).
fn state(value: &Json<'_>) -> Result<Option<String>, DecodeError> {
    const FIELD: &str = "data.state";
    match value {
        Json::Null => Ok(None),
        Json::Str(code) if code.trim().is_empty() => Err(json::empty(FIELD)),
        Json::Str(code) => Ok(Some(code.as_ref().to_owned())),
        Json::Number(n) => match n
            .as_i64()
            .map(|c| c.to_string())
            .or_else(|| n.as_u64().map(|c| c.to_string()))
        {
            Some(code) => Ok(Some(code)),
            None => Err(DecodeError::invalid(
                FIELD,
                "expected an integer state code, found a fractional number",
            )),
        },
        other => Err(other.wrong("a string or integer state code").at(FIELD)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn decode(value: &Value) -> Result<Vec<Changelog>, DecodeError> {
        ServiceNowDecoder::new().decode(&serde_json::to_vec(value).unwrap())
    }

    fn decode_fixture(name: &str) -> Vec<Value> {
        let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        ServiceNowDecoder::new()
            .decode(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect()
    }

    fn event() -> Value {
        json!({
            "type": "datadog_x_incident",
            "orgId": 123456,
            "sysId": "abc123",
            "instanceName": "company",
            "updatedAt": "2024-01-15T10:30:00Z",
            "updatedBy": "john.doe",
            "data": {"comment": "Issue resolved", "state": "7", "correlationId": "case-uuid"}
        })
    }

    /// Sets (or adds) the value at `pointer`.
    fn with(mut value: Value, pointer: &str, new: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        value
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.to_owned(), new);
        value
    }

    fn without(mut value: Value, parent: &str, key: &str) -> Value {
        value
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        value
    }

    fn invalid_field(result: Result<Vec<Changelog>, DecodeError>) -> String {
        match result {
            Err(DecodeError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn seed_event_matches_the_spec_json_field_for_field() {
        let changelogs = decode(&event()).unwrap();
        let json: Vec<Value> = changelogs
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        let common = |extra: Value| {
            let mut v = json!({
                "integration": "servicenow", "org_id": 123456, "third_party_id": "abc123",
                "event_timestamp": "2024-01-15T10:30:00Z",
                "author": {"id": "john.doe"},
                "case_reference": "case-uuid",
                "metadata": {"instance_name": "company"}
            });
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(
            json,
            vec![
                common(json!({"changelog_type": "create_comment", "body": "Issue resolved"})),
                common(json!({"changelog_type": "update_status", "to_id": "7"})),
            ]
        );
    }

    #[test]
    fn fixture_all_three_yields_comment_work_note_state_in_order() {
        let json = decode_fixture("all_three.json");
        assert_eq!(
            json,
            vec![
                json!({
                    "integration": "servicenow", "org_id": 123456,
                    "changelog_type": "create_comment",
                    "third_party_id": "9d3e5f7a1b2c4d6e8f0a1b2c3d4e5f6a",
                    "event_timestamp": "2024-03-04T16:45:12Z",
                    "author": {"id": "beth.anglin"},
                    "body": "Root cause identified: expired TLS certificate on the load balancer.",
                    "metadata": {"instance_name": "company"}
                }),
                json!({
                    "integration": "servicenow", "org_id": 123456,
                    "changelog_type": "create_comment",
                    "third_party_id": "9d3e5f7a1b2c4d6e8f0a1b2c3d4e5f6a",
                    "event_timestamp": "2024-03-04T16:45:12Z",
                    "author": {"id": "beth.anglin"},
                    "body": "Rotated the certificate via change CHG0030042; monitoring for 24h.",
                    "is_work_note": true,
                    "metadata": {"instance_name": "company"}
                }),
                json!({
                    "integration": "servicenow", "org_id": 123456,
                    "changelog_type": "update_status",
                    "third_party_id": "9d3e5f7a1b2c4d6e8f0a1b2c3d4e5f6a",
                    "event_timestamp": "2024-03-04T16:45:12Z",
                    "author": {"id": "beth.anglin"},
                    "to_id": "6",
                    "metadata": {"instance_name": "company"}
                }),
            ]
        );
    }

    #[test]
    fn fixture_work_note_only_with_servicenow_timestamp() {
        let json = decode_fixture("work_note_only.json");
        assert_eq!(
            json,
            vec![json!({
                "integration": "servicenow", "org_id": 123456,
                "changelog_type": "create_comment",
                "third_party_id": "46d44a5dc0a8010e0106a1b2c3d4e5f6",
                "event_timestamp": "2024-02-20T09:15:00Z",
                "author": {"id": "abel.tuter"},
                "body": "Escalated to the network team, waiting on packet captures.",
                "is_work_note": true,
                "case_reference": "3f2b6c1e-7d4a-4e2b-9a51-2c8d0e6f1a7b",
                "metadata": {"instance_name": "company"}
            })]
        );
    }

    #[test]
    fn fixture_numeric_state_becomes_a_string_code() {
        let json = decode_fixture("numeric_state.json");
        assert_eq!(json.len(), 1);
        assert_eq!(json[0]["changelog_type"], "update_status");
        assert_eq!(json[0]["to_id"], "1");
    }

    #[test]
    fn fixture_multiline_body_is_kept_byte_for_byte() {
        let raw = std::fs::read(format!(
            "{}/fixtures/multiline_body.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let source: Value = serde_json::from_slice(&raw).unwrap();
        let expected = source["data"]["comment"].as_str().unwrap();
        assert!(expected.contains("\n\n"), "fixture must hold a blank line");
        let changelogs = ServiceNowDecoder::new().decode(&raw).unwrap();
        assert_eq!(changelogs.len(), 1);
        assert_eq!(changelogs[0].body.as_deref(), Some(expected));
    }

    #[test]
    fn every_fixture_decodes() {
        let dir = format!("{}/fixtures", env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let changelogs = ServiceNowDecoder::new()
                .decode(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!changelogs.is_empty(), "{}", path.display());
            n += 1;
        }
        assert!(n >= 8, "{n} fixtures");
    }

    #[test]
    fn servicenow_and_rfc3339_timestamps_agree_and_normalize_to_utc() {
        let at =
            |s: &str| decode(&with(event(), "/updatedAt", json!(s))).unwrap()[0].event_timestamp;
        let expected = time::macros::datetime!(2024-01-15 10:30:00 UTC);
        assert_eq!(at("2024-01-15 10:30:00"), expected);
        assert_eq!(at("2024-01-15T10:30:00Z"), expected);
        assert_eq!(at("2024-01-15T11:30:00+01:00"), expected);
        assert_eq!(at("2024-01-15T11:30:00+01:00").offset(), UtcOffset::UTC);
        assert_eq!(
            at("2024-01-15 10:30:00.250"),
            expected + time::Duration::milliseconds(250)
        );
        for bad in [
            "15/01/2024 10:30",
            "2024-01-15",
            "2024-13-01 00:00:00",
            "9999-12-31T23:59:59-01:00",
            "",
        ] {
            assert_eq!(
                invalid_field(decode(&with(event(), "/updatedAt", json!(bad)))),
                "updatedAt",
                "{bad}"
            );
        }
    }

    #[test]
    fn numeric_and_string_states() {
        let to_id = |v: Value| {
            decode(&with(event(), "/data/state", v)).unwrap()[1]
                .to_id
                .clone()
        };
        assert_eq!(to_id(json!(7)), Some("7".into()));
        assert_eq!(to_id(json!("7")), Some("7".into()));
        assert_eq!(to_id(json!(-5)), Some("-5".into()));
        for bad in [json!(7.5), json!(""), json!(true), json!(["7"]), json!({})] {
            assert_eq!(
                invalid_field(decode(&with(event(), "/data/state", bad.clone()))),
                "data.state",
                "{bad}"
            );
        }
    }

    #[test]
    fn absent_parts_are_omitted_not_invented() {
        let mut e = without(event(), "/data", "correlationId");
        e = without(e, "", "updatedBy");
        e = without(e, "/data", "state");
        let json = serde_json::to_value(&decode(&e).unwrap()[0]).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "body",
                "changelog_type",
                "event_timestamp",
                "integration",
                "metadata",
                "org_id",
                "third_party_id"
            ]
        );
        // An empty correlationId or updatedBy is no reference and no author either.
        let e = with(
            with(event(), "/data/correlationId", json!("")),
            "/updatedBy",
            json!(""),
        );
        let c = &decode(&e).unwrap()[0];
        assert_eq!((&c.case_reference, &c.author), (&None, &None));
        // Nulls are absent values.
        let e = with(
            with(event(), "/data/comment", Value::Null),
            "/data/state",
            Value::Null,
        );
        assert!(decode(&e).unwrap().is_empty());
    }

    #[test]
    fn an_event_without_comment_work_note_or_state_yields_nothing() {
        let e = with(
            event(),
            "/data",
            json!({"correlationId": "case-uuid", "priority": "2"}),
        );
        assert_eq!(decode(&e), Ok(vec![]));
    }

    #[test]
    fn empty_comment_still_yields_a_changelog_for_the_filter() {
        let e = with(event(), "/data", json!({"comment": ""}));
        let changelogs = decode(&e).unwrap();
        assert_eq!(changelogs.len(), 1);
        assert_eq!(changelogs[0].body.as_deref(), Some(""));
    }

    #[test]
    fn unsupported_types_are_unsupported_events() {
        for t in ["datadog_x_problem", "incident", "DATADOG_X_INCIDENT"] {
            // Whatever else is wrong with the event, its type decides first.
            let e = with(json!({"type": "", "orgId": "nope"}), "/type", json!(t));
            assert_eq!(decode(&e), Err(DecodeError::UnsupportedEvent(t.into())));
        }
        // A 4 MiB `type` (under a limit that lets it through) is repeated truncated.
        let long = with(event(), "/type", json!("x".repeat(4 << 20)));
        let err = ServiceNowDecoder::new()
            .with_max_event_bytes(8 << 20)
            .decode(&serde_json::to_vec(&long).unwrap())
            .unwrap_err();
        assert!(matches!(err, DecodeError::UnsupportedEvent(_)), "{err:?}");
        let shown = err.to_string();
        assert!(shown.len() < 300, "{} bytes", shown.len());
        assert!(
            shown.ends_with(&format!("…({} bytes)`", 4 << 20)),
            "{shown}"
        );
    }

    #[test]
    fn missing_or_mistyped_fields_name_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (without(event(), "", "type"), "type"),
            (with(event(), "/type", json!(1)), "type"),
            (without(event(), "", "orgId"), "orgId"),
            (with(event(), "/orgId", json!("123456")), "orgId"),
            (with(event(), "/orgId", json!(-1)), "orgId"),
            (with(event(), "/orgId", json!(1.5)), "orgId"),
            (with(event(), "/orgId", json!(0)), "orgId"),
            (without(event(), "", "sysId"), "sysId"),
            (with(event(), "/sysId", json!("")), "sysId"),
            (with(event(), "/sysId", json!(42)), "sysId"),
            (without(event(), "", "instanceName"), "instanceName"),
            (with(event(), "/instanceName", json!(null)), "instanceName"),
            (without(event(), "", "updatedAt"), "updatedAt"),
            (with(event(), "/updatedAt", json!(1705314600)), "updatedAt"),
            (
                with(event(), "/updatedBy", json!({"name": "x"})),
                "updatedBy",
            ),
            (without(event(), "", "data"), "data"),
            (with(event(), "/data", json!("comment")), "data"),
            (with(event(), "/data/comment", json!(["a"])), "data.comment"),
            (with(event(), "/data/workNote", json!(1)), "data.workNote"),
            (
                with(event(), "/data/correlationId", json!(1)),
                "data.correlationId",
            ),
        ];
        for (e, field) in cases {
            assert_eq!(invalid_field(decode(&e)), field, "{e}");
        }
    }

    #[test]
    fn non_json_and_wrong_shapes_are_malformed() {
        let d = ServiceNowDecoder::new();
        for bytes in [&b""[..], b"not json", b"{\"type\":", b"\xff\xfe"] {
            assert!(
                matches!(d.decode(bytes), Err(DecodeError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Valid JSON that is not an object fails validation: discarded, not skipped.
        for bytes in [&b"[1,2]"[..], b"\"datadog_x_incident\"", b"null"] {
            assert!(
                matches!(d.decode(bytes), Err(DecodeError::Invalid { .. })),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            d.decode(deep.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_values_are_too_large() {
        let bytes = serde_json::to_vec(&event()).unwrap();
        let d = ServiceNowDecoder::new().with_max_event_bytes(bytes.len() - 1);
        assert_eq!(
            d.decode(&bytes),
            Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: bytes.len() - 1
            })
        );
        assert!(
            ServiceNowDecoder::new()
                .with_max_event_bytes(bytes.len())
                .decode(&bytes)
                .is_ok()
        );
        assert_eq!(
            ServiceNowDecoder::default().max_event_bytes(),
            DEFAULT_MAX_EVENT_BYTES
        );
    }

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
            Just(json!("2024-01-15 10:30:00")),
            Just(json!("datadog_x_incident")),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A field of a generated event: kept valid, left out, or replaced by any JSON value.
    #[derive(Debug, Clone)]
    enum Choice {
        Valid,
        Absent,
        Any(Value),
    }

    impl Choice {
        fn resolve(self, valid: &Value) -> Option<Value> {
            match self {
                Choice::Valid => Some(valid.clone()),
                Choice::Absent => None,
                Choice::Any(v) => Some(v),
            }
        }
    }

    fn maybe_valid() -> impl Strategy<Value = Choice> {
        prop_oneof![
            4 => Just(Choice::Valid),
            1 => Just(Choice::Absent),
            2 => any_json().prop_map(Choice::Any),
        ]
    }

    /// Every JSON pointer into a document (the root excluded).
    fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    pointers(v, &p, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    out.push(p.clone());
                    pointers(v, &p, out);
                }
            }
            _ => {}
        }
    }

    fn full_event() -> Value {
        json!({
            "type": "datadog_x_incident", "orgId": 123456, "sysId": "abc123",
            "instanceName": "company", "updatedAt": "2024-01-15 10:30:00",
            "updatedBy": "john.doe",
            "data": {"comment": "a\n\nb", "workNote": "n", "state": 7, "correlationId": "c"}
        })
    }

    /// Checks what holds of every successful decode.
    fn check_decoded(result: &Result<Vec<Changelog>, DecodeError>) {
        if let Ok(changelogs) = result {
            assert!(changelogs.len() <= 3);
            for c in changelogs {
                assert_eq!(c.integration, INTEGRATION);
                assert!(c.org_id > 0);
                assert!(!c.third_party_id.is_empty());
                assert!(c.metadata_value(METADATA_INSTANCE_NAME).is_some());
                // The JSON form always serializes and round-trips.
                let json = serde_json::to_string(c).unwrap();
                let mut back: Changelog = serde_json::from_str(&json).unwrap();
                // The site is not part of the JSON form (metadata `instance_name` names it).
                back.site.clone_from(&c.site);
                assert_eq!(&back, c);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn replacing_any_value_never_panics(
            index in any::<prop::sample::Index>(),
            new in any_json(),
        ) {
            let mut doc = full_event();
            let mut all = Vec::new();
            pointers(&doc, "", &mut all);
            let pointer = index.get(&all).clone();
            *doc.pointer_mut(&pointer).unwrap() = new;
            check_decoded(&decode(&doc));
        }

        #[test]
        fn adding_any_field_never_panics(
            key in ".{0,12}",
            new in any_json(),
            in_data in any::<bool>(),
        ) {
            let mut doc = full_event();
            let target = if in_data { doc.pointer_mut("/data") } else { Some(&mut doc) };
            target.unwrap().as_object_mut().unwrap().insert(key, new);
            check_decoded(&decode(&doc));
        }

        #[test]
        fn byte_mutations_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = serde_json::to_vec(&full_event()).unwrap();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let d = ServiceNowDecoder::new();
            check_decoded(&d.decode(&bytes));
            check_decoded(&d.decode(&bytes[..cut.index(bytes.len())]));
        }

        #[test]
        fn events_with_any_field_values_never_panic(
            top in prop::collection::vec(maybe_valid(), 6),
            data in prop::collection::vec(maybe_valid(), 4),
        ) {
            let event = full_event();
            let mut doc = serde_json::Map::new();
            let mut inner = serde_json::Map::new();
            let keys = ["type", "orgId", "sysId", "instanceName", "updatedAt", "updatedBy"];
            for (key, choice) in keys.into_iter().zip(top) {
                if let Some(v) = choice.resolve(&event[key]) {
                    doc.insert(key.to_owned(), v);
                }
            }
            for (key, choice) in ["comment", "workNote", "state", "correlationId"]
                .into_iter()
                .zip(data)
            {
                if let Some(v) = choice.resolve(&event["data"][key]) {
                    inner.insert(key.to_owned(), v);
                }
            }
            doc.insert("data".to_owned(), Value::Object(inner));
            check_decoded(&decode(&Value::Object(doc)));
        }

        #[test]
        fn any_json_document_never_panics(doc in any_json()) {
            check_decoded(&decode(&doc));
        }

        #[test]
        fn bodies_survive_byte_for_byte(comment in any::<String>(), note in any::<String>()) {
            let e = with(full_event(), "/data/comment", json!(comment));
            let e = with(e, "/data/workNote", json!(note));
            let changelogs = decode(&e).unwrap();
            prop_assert_eq!(changelogs[0].body.as_deref(), Some(comment.as_str()));
            prop_assert_eq!(changelogs[1].body.as_deref(), Some(note.as_str()));
            prop_assert!(changelogs[1].is_work_note && !changelogs[0].is_work_note);
        }
    }
}
