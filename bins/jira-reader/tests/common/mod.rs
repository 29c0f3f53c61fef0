//! Jira messages and demo-seed ids shared by the end-to-end tests of `jira-reader`, and the
//! world they run in with the reader's config ([`env`]).

#![allow(dead_code, clippy::unwrap_used)]

pub mod env;

use serde_json::{Value, json};

/// The topic the reader consumes.
pub const TOPIC: &str = "collaboration_integrations_jira";
/// The reader's consumer group.
pub const GROUP: &str = "case-management";
/// The demo seed's case linked to Jira issue 10002 (PROJ-12).
pub const CASE_10002: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a01";
/// A Jira user who is not one of our sync users.
pub const PRIYA: &str = "712020:0a1b2c3d-priya";

/// A `jira:issue_updated` message for issue `issue_id` of PROJ in the demo seed.
pub fn issue_updated(issue_id: &str, ts_ms: i64, items: Value) -> Vec<u8> {
    issue_updated_with(issue_id, ts_ms, items, None)
}

/// [`issue_updated`], with the issue's current description in its fields.
pub fn issue_updated_with(
    issue_id: &str,
    ts_ms: i64,
    items: Value,
    description: Option<&str>,
) -> Vec<u8> {
    let mut fields = json!({
        "project": {"id": "10000", "key": "PROJ"}, "issuetype": {"id": "10001", "name": "Bug"}});
    if let Some(description) = description {
        fields["description"] = json!(description);
    }
    serde_json::to_vec(&json!({
        "orgId": 123456, "integration": "jira", "jiraAccountId": "acme.atlassian.net",
        "receivedAt": "2024-06-01T10:00:00Z",
        "webhook": {
            "timestamp": ts_ms, "webhookEvent": "jira:issue_updated",
            "user": {"accountId": PRIYA, "displayName": "Priya Natarajan"},
            "issue": {"id": issue_id, "key": format!("PROJ-{issue_id}"), "fields": fields},
            "changelog": {"id": format!("{ts_ms}"), "items": items}
        }
    }))
    .unwrap()
}

/// A `comment_created` message (trimmed issue, no changelog).
pub fn comment_created(issue_id: &str, comment_id: &str, ts_ms: i64, body: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "orgId": 123456, "integration": "jira", "jiraAccountId": "acme.atlassian.net",
        "receivedAt": "2024-06-01T10:00:00Z",
        "webhook": {
            "timestamp": ts_ms, "webhookEvent": "comment_created",
            "comment": {"id": comment_id, "body": body,
                "author": {"accountId": PRIYA, "displayName": "Priya Natarajan"},
                "created": "2024-06-01T10:00:00.000+0000"},
            "issue": {"id": issue_id, "key": format!("PROJ-{issue_id}"), "fields": {
                "project": {"id": "10000"}, "issuetype": {"id": "10001"}}}
        }
    }))
    .unwrap()
}

/// The demo project's status change from To Do (10000) to In Progress (3).
pub fn to_do_to_in_progress() -> Value {
    item(
        "status",
        Some("10000"),
        Some("To Do"),
        Some("3"),
        Some("In Progress"),
    )
}

/// One changelog item.
pub fn item(
    field: &str,
    from: Option<&str>,
    from_s: Option<&str>,
    to: Option<&str>,
    to_s: Option<&str>,
) -> Value {
    json!({"field": field, "fieldtype": "jira", "fieldId": field,
           "from": from, "fromString": from_s, "to": to, "toString": to_s})
}
