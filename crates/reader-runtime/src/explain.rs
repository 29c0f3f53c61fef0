//! What `explain` and `replay --output` print for one changelog: the decision, the reason, the
//! case found and the settings that decided it, as one JSON object.

use serde_json::{Map, Value, json};
use thirdparty_core::{Changelog, ChangelogReport, ChangelogType, Decision, SyncSettings};

/// The decision's label in tables: the filter reason for a filtered changelog, else the
/// decision (`applied`, `would_apply`, `rejected`).
pub fn label(decision: &Decision) -> String {
    match decision {
        Decision::Applied => "applied".into(),
        Decision::WouldApply => "would_apply".into(),
        Decision::Filtered(reason) => reason.as_str().into(),
        Decision::Rejected(err) => format!("rejected ({})", err.kind()),
    }
}

/// One changelog's decision with the case and the settings behind it. Never holds a body.
pub fn report_json(report: &ChangelogReport) -> Value {
    let (decision, reason, detail) = match &report.decision {
        Decision::Applied => ("applied", None, None),
        Decision::WouldApply => ("would_apply", None, None),
        Decision::Filtered(r) => (
            "filtered",
            Some(r.as_str()),
            Some(r.description().to_owned()),
        ),
        Decision::Rejected(e) => ("rejected", None, Some(e.to_string())),
    };
    let c = &report.changelog;
    json!({
        "item": {
            "integration": c.integration,
            "org_id": c.org_id,
            "site": c.site,
            "id": c.third_party_id,
            "key": c.third_party_key,
        },
        "changelog_type": c.changelog_type.name(),
        "event_time": c.event_timestamp
            .format(&time::format_description::well_known::Rfc3339)
            .ok(),
        "decision": decision,
        "reason": reason,
        "detail": detail,
        "case": report.case_id.as_ref().map(|id| json!({
            "id": id, "project_id": report.project_id,
        })),
        "settings": report.settings.as_deref().map(|s| settings_json(s, c)),
    })
}

/// The settings that bear on this changelog: the gates every change passes, then what is
/// specific to its field, comment kind or custom field.
pub fn settings_json(settings: &SyncSettings, changelog: &Changelog) -> Value {
    let mut out = Map::new();
    out.insert("project_id".into(), json!(settings.project_id));
    out.insert(
        "integration_enabled".into(),
        json!(settings.integration_enabled),
    );
    out.insert(
        "project_sync_enabled".into(),
        json!(settings.project_sync_enabled),
    );
    out.insert(
        "sync_type".into(),
        serde_json::to_value(settings.sync_type).unwrap_or(Value::Null),
    );
    out.insert(
        "start_syncing_from".into(),
        json!(settings.start_syncing_from.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })),
    );
    match &changelog.changelog_type {
        ChangelogType::CreateComment if changelog.is_work_note => {
            out.insert(
                "work_note_sync_enabled".into(),
                json!(settings.work_note_sync_enabled),
            );
        }
        ChangelogType::CreateComment => {
            out.insert(
                "comment_sync_enabled".into(),
                json!(settings.comment_sync_enabled),
            );
        }
        ChangelogType::Unsupported(field) => {
            out.insert(
                "custom_field_maps_to".into(),
                json!(settings.custom_fields.get(field)),
            );
        }
        other => {
            if let Some(field) = other.case_field() {
                out.insert("field".into(), json!(field.to_string()));
                out.insert("field_synced".into(), json!(settings.field_synced(field)));
                out.insert(
                    "conflict_policy".into(),
                    json!(settings.conflict_policy(field).as_str()),
                );
                if let Some(mapping) = settings.value_mappings.get(&field) {
                    out.insert("value_mapping".into(), json!(mapping));
                }
            }
        }
    }
    Value::Object(out)
}
