//! Changes that pass every filter land on the case: values, versions, watermarks, comments.

use std::sync::Arc;

use serde_json::json;
use thirdparty_core::{
    Author, CaseField, ChangelogReport, Decision, FilterReason, MessageOutcome, Payload,
};
use time::OffsetDateTime;
use time::macros::{date, datetime};

use crate::support::*;

fn decisions(reports: &[ChangelogReport]) -> Vec<(String, Decision)> {
    reports
        .iter()
        .map(|r| (r.changelog.changelog_type.to_string(), r.decision.clone()))
        .collect()
}

fn applied(changelog_type: &str) -> (String, Decision) {
    (changelog_type.to_owned(), Decision::Applied)
}

fn filtered(changelog_type: &str, reason: FilterReason) -> (String, Decision) {
    (changelog_type.to_owned(), Decision::Filtered(reason))
}

fn assert_watermarks(case: &thirdparty_core::Case, fields: &[CaseField], at: OffsetDateTime) {
    for field in fields {
        let item = &case.external_references[0];
        assert_eq!(
            case.watermark(*field, item).map(|w| w.at),
            Some(at),
            "{field}"
        );
    }
}

#[tokio::test]
async fn cloud_history_applies_field_by_field() {
    let api = Arc::new(World::seeded().api());
    let pipeline = pipeline(api.clone());

    let created = handle(&pipeline, &fixture("cloud_issue_created")).await;
    assert_eq!(
        decisions(&created),
        vec![
            applied("update_assignee"),
            filtered(
                "unsupported_customfield_10020",
                FilterReason::CustomFieldNotConfigured
            ),
        ]
    );
    let case = api.case(CASE_PROJ_12).unwrap();
    assert_eq!(case.assignee_id.as_deref(), Some("user-jane"));
    assert_eq!(case.version, 2);
    assert_watermarks(
        &case,
        &[CaseField::Assignee],
        datetime!(2024-01-15 10:00 UTC),
    );

    let updated = handle(&pipeline, &fixture("cloud_issue_updated")).await;
    assert_eq!(
        decisions(&updated),
        vec![
            applied("update_status"),
            applied("update_priority"),
            applied("update_title"),
            applied("update_description"),
            applied("update_assignee"),
            applied("update_due_date"),
            filtered(
                "unsupported_customfield_10015",
                FilterReason::CustomFieldNotConfigured
            ),
        ]
    );
    let case = api.case(CASE_PROJ_12).unwrap();
    assert_eq!(case.status, "IN_PROGRESS");
    assert_eq!(case.priority.as_deref(), Some("P2"));
    assert_eq!(case.title, "Checkout p99 latency above SLO in eu-west");
    assert_eq!(
        case.description,
        "Customers in eu-west report p99 checkout latency above 2s.\n\nh3. Impact\n* ~5% of orders time out"
    );
    assert_eq!(case.assignee_id.as_deref(), Some("user-john"));
    assert_eq!(case.due_date, Some(date!(2024 - 06 - 30)));
    assert_eq!(case.version, 8, "one versioned write per applied change");
    assert_watermarks(
        &case,
        &[
            CaseField::Status,
            CaseField::Priority,
            CaseField::Title,
            CaseField::Description,
            CaseField::Assignee,
            CaseField::DueDate,
        ],
        datetime!(2024-01-15 10:29:58.123 UTC),
    );

    let comment = handle(&pipeline, &fixture("cloud_comment_created")).await;
    assert_eq!(decisions(&comment), vec![applied("create_comment")]);
    let comments = api.comments(CASE_PROJ_12);
    assert_eq!(comments.len(), 1);
    assert_eq!(
        comments[0].idempotency_key,
        "jira:acme.atlassian.net:10002:10050"
    );
    assert_eq!(
        comments[0].body,
        "Rolled back the cache config; p99 is recovering. Will confirm in 30 min."
    );
    assert_eq!(
        comments[0].author,
        Author {
            id: Some(JANE.into()),
            display_name: Some("Jane Doe".into())
        }
    );
    assert!(!comments[0].is_work_note);
    assert_eq!(
        api.case(CASE_PROJ_12).unwrap().version,
        8,
        "comments do not bump the version"
    );

    let closed = handle(&pipeline, &fixture("cloud_issue_updated_account_only")).await;
    assert_eq!(
        decisions(&closed),
        vec![
            applied("update_status"),
            applied("update_priority"),
            applied("update_assignee"),
        ]
    );
    let case = api.case(CASE_PROJ_12).unwrap();
    assert_eq!(case.status, "CLOSED");
    assert_eq!(case.priority.as_deref(), Some("P1"));
    assert_eq!(
        case.assignee_id.as_deref(),
        Some("user-priya"),
        "resolved by accountId alone"
    );
    assert_eq!(case.version, 11);
    assert_watermarks(
        &case,
        &[CaseField::Status, CaseField::Priority, CaseField::Assignee],
        datetime!(2024-01-15 11:00 UTC),
    );
    assert_watermarks(
        &case,
        &[CaseField::Title],
        datetime!(2024-01-15 10:29:58.123 UTC),
    );
}

#[tokio::test]
async fn a_configured_custom_field_is_rewritten_and_applied_as_the_due_date() {
    let api = Arc::new(World::seeded().api());
    let pipeline = pipeline(api.clone());
    let reports = handle(&pipeline, &fixture("cloud_custom_due_date")).await;
    assert_eq!(decisions(&reports), vec![applied("update_due_date")]);
    let changelog = serde_json::to_value(&reports[0].changelog).unwrap();
    assert_eq!(changelog["changelog_type"], json!("update_due_date"));
    assert_eq!(changelog["to_id"], json!("2024-02-01"));
    let case = api.case(CASE_OPS_7).unwrap();
    assert_eq!(case.due_date, Some(date!(2024 - 02 - 01)));
    assert_eq!(case.version, 2);
    assert_watermarks(
        &case,
        &[CaseField::DueDate],
        datetime!(2024-01-16 09:15 UTC),
    );
}

#[tokio::test]
async fn server_payloads_apply_with_usernames_and_offsets() {
    let api = Arc::new(World::seeded().api());
    let pipeline = pipeline(api.clone());
    let reports = handle(&pipeline, &fixture("server_issue_updated")).await;
    assert_eq!(
        decisions(&reports),
        vec![
            applied("update_status"),
            applied("update_priority"),
            applied("update_assignee"),
            applied("update_due_date"),
            filtered(
                "unsupported_story_points",
                FilterReason::UnsupportedChangelogType
            ),
        ]
    );
    let case = api.case(CASE_ONPREM_3).unwrap();
    assert_eq!(case.status, "IN_PROGRESS");
    assert_eq!(case.priority.as_deref(), Some("P2"));
    assert_eq!(case.assignee_id.as_deref(), Some("user-alice"));
    assert_eq!(case.due_date, Some(date!(2024 - 10 - 15)));
    assert_eq!(case.version, 5);
    assert_watermarks(
        &case,
        &[CaseField::Status],
        datetime!(2024-10-08 16:38:03.790 +8),
    );

    let comment = handle(&pipeline, &fixture("server_comment_created")).await;
    assert_eq!(decisions(&comment), vec![applied("create_comment")]);
    let comments = api.comments(CASE_ONPREM_3);
    assert_eq!(
        comments[0].idempotency_key,
        "jira:jira.acme.internal:20417:40127"
    );
    assert_eq!(
        comments[0].body,
        "Cleaned /var/lib/docker on agents 3-7, usage back to 41%.\r\n{code}df -h /var/lib/docker{code}",
        "byte for byte"
    );
    assert_eq!(comments[0].author.id.as_deref(), Some("asmith"));
    assert_eq!(
        comments[0].author.display_name.as_deref(),
        Some("Alice Smith")
    );
}

#[tokio::test]
async fn unassigning_and_clearing_the_due_date() {
    let mut world = World::seeded();
    let case = world.case_mut(CASE_PROJ_12);
    case.assignee_id = Some("user-jane".into());
    case.due_date = Some(date!(2024 - 03 - 01));
    let api = Arc::new(world.api());
    let pipeline = pipeline(api.clone());
    let mut message = fixture_json("cloud_issue_updated");
    message["webhook"]["changelog"]["items"] = json!([
        {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
         "from": JANE, "fromString": "Jane Doe", "to": null, "toString": null},
        {"field": "duedate", "fieldtype": "jira", "fieldId": "duedate",
         "from": "2024-03-01", "fromString": "2024-03-01 00:00:00.0", "to": null, "toString": null},
    ]);
    let reports = handle(&pipeline, &serde_json::to_vec(&message).unwrap()).await;
    assert_eq!(
        decisions(&reports),
        vec![applied("update_assignee"), applied("update_due_date")]
    );
    let case = api.case(CASE_PROJ_12).unwrap();
    assert_eq!(case.assignee_id, None);
    assert_eq!(case.due_date, None);
}

#[tokio::test]
async fn a_version_conflict_is_re_read_re_filtered_and_applied() {
    let api = Arc::new(World::seeded().api());
    api.conflict_next_updates(2);
    let pipeline = pipeline(api.clone());
    let mut message = fixture_json("cloud_issue_updated");
    message["webhook"]["changelog"]["items"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let reports = handle(&pipeline, &serde_json::to_vec(&message).unwrap()).await;
    assert_eq!(decisions(&reports), vec![applied("update_status")]);
    let case = api.case(CASE_PROJ_12).unwrap();
    assert_eq!(case.status, "IN_PROGRESS");
    assert_eq!(case.version, 4, "two foreign bumps, then our write");
    assert_eq!(api.calls().update_case, 3);
}

#[tokio::test]
async fn explain_decides_without_writing() {
    let api = Arc::new(World::seeded().api());
    let pipeline = pipeline(api.clone());
    let before = api.snapshot();
    let outcome = pipeline
        .explain(&Payload::new(fixture("cloud_issue_updated")))
        .await
        .unwrap();
    let MessageOutcome::Handled(reports) = outcome else {
        panic!("{outcome:?}");
    };
    let want = [
        Decision::WouldApply,
        Decision::WouldApply,
        Decision::WouldApply,
        Decision::WouldApply,
        // The assignee: its users resolved read-only, as the processor does.
        Decision::WouldApply,
        Decision::WouldApply,
        Decision::Filtered(FilterReason::CustomFieldNotConfigured),
    ];
    let got: Vec<Decision> = reports.iter().map(|r| r.decision.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(api.snapshot(), before);
    assert_eq!(api.calls().update_case, 0);
}

#[tokio::test]
async fn undecodable_and_unsupported_messages_are_acknowledged_not_retried() {
    let api = Arc::new(World::seeded().api());
    let pipeline = pipeline(api.clone());
    let mut deleted = fixture_json("cloud_issue_updated");
    deleted["webhook"]["webhookEvent"] = json!("jira:issue_deleted");
    for (bytes, kind) in [
        (b"{\"orgId\": 123456, \"webhook\": {".to_vec(), "malformed"),
        (serde_json::to_vec(&deleted).unwrap(), "unsupported_event"),
        (br#"{"orgId": 123456, "jiraAccountId": "acme.atlassian.net", "webhook": {"webhookEvent": "jira:issue_updated"}}"#.to_vec(), "invalid"),
    ] {
        match pipeline.handle(&Payload::new(bytes)).await {
            Ok(MessageOutcome::Undecodable(err)) => assert_eq!(err.kind(), kind),
            other => panic!("{kind}: {other:?}"),
        }
    }
    assert_eq!(api.calls().other_than_metadata(), 0);
}
