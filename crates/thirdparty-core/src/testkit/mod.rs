//! Test support for integration crates (feature `testkit`): an in-memory [`crate::CaseApi`],
//! the integration contract suite and the `CaseApi` contract suite.

// Test support: failing loudly is the point here.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod case_api_contract;
pub mod contract;
pub mod in_memory;

pub use in_memory::InMemoryCaseApi;

use crate::case::{Case, FieldWrite, UpdateWriter, Writer};
use crate::changelog::{CaseField, Changelog};

/// Records on `case` that the sync applied `changelog` (its item's watermark for the field and
/// the field's last writer), without changing the value or the version: how a test says "this
/// change was already applied".
pub fn mark_applied(case: &mut Case, changelog: &Changelog) {
    let Some(field) = changelog.changelog_type.case_field() else {
        return;
    };
    let (version, current) = (case.version, case.clone());
    let update = crate::case::CaseUpdate {
        org_id: case.org_id,
        case_id: case.id.clone(),
        expected_version: version,
        change: current.current(field),
        writer: UpdateWriter::sync(changelog),
    };
    case.record_update(&update, changelog.event_timestamp);
    case.version = version;
}

/// Records a person's edit of `field` in the case-management system at `at` as the field's last
/// write (the value and version are left alone).
pub fn mark_edited_in_case(case: &mut Case, field: CaseField, at: time::OffsetDateTime) {
    case.last_writes.insert(
        field,
        FieldWrite {
            writer: Writer::Person {
                user_id: Some("datadog-user".into()),
            },
            at,
        },
    );
}

/// Sets the watermark of `field` for `source` to `at` (no change key: any change at exactly
/// `at` is new), as if the sync had applied a change of that item then.
pub fn mark_item_at(
    case: &mut Case,
    field: CaseField,
    source: &crate::case::ExternalReference,
    at: time::OffsetDateTime,
) {
    case.source_watermarks
        .retain(|w| !(w.field == field && w.source.same_item(source)));
    case.source_watermarks.push(crate::case::SourceWatermark {
        field,
        source: source.clone(),
        at,
        change_keys: Vec::new(),
    });
    case.last_writes.insert(
        field,
        FieldWrite {
            writer: Writer::Sync {
                source: source.clone(),
            },
            at,
        },
    );
}
