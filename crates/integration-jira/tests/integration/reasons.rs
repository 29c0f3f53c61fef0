//! One table, through the pipeline: every filter reason a Jira changelog can end with.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use thirdparty_core::ExternalReference;
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::testkit::{mark_edited_in_case, mark_item_at};
use thirdparty_core::{
    CaseField, ConflictPolicy, Decision, ErrorClass, FilterReason, MessageOutcome, Payload,
    SyncType,
};
use time::macros::datetime;

use crate::support::*;

/// The reasons a Jira changelog can be filtered with; the table must reach each one.
const JIRA_REASONS: [FilterReason; 23] = [
    FilterReason::BreakSynchronizationCycle,
    integration_jira::FIELD_JIRA_BI_SYNC_DISABLED,
    FilterReason::FieldValueNotMapped,
    FilterReason::StateConflict,
    FilterReason::ManualConflict,
    FilterReason::NoCorrespondingCase,
    FilterReason::ProjectNotFound,
    FilterReason::CreatedBeforeStartSyncingFrom,
    FilterReason::IntegrationDisabled,
    FilterReason::ProjectSyncDisabled,
    FilterReason::UnsupportedChangelogType,
    FilterReason::NoMatchingMetadata,
    FilterReason::CustomFieldNotConfigured,
    FilterReason::AssigneeResolutionFailed,
    FilterReason::CaseVersionMismatch,
    FilterReason::SyncTypeNotPull,
    FilterReason::NoChange,
    FilterReason::EmptyComment,
    FilterReason::OutOfOrderEvent,
    FilterReason::InvalidFieldValue,
    FilterReason::DuplicateEvent,
    FilterReason::CommentSyncDisabled,
    FilterReason::IssueTypeNotSynced,
];

/// The reasons no Jira changelog reaches, and why.
const NOT_JIRA: [(FilterReason, &str); 6] = [
    (
        FilterReason::InstanceNotConfigured,
        "ServiceNow instances; Jira scopes are no_matching_metadata",
    ),
    (
        FilterReason::CaseClosed,
        "not part of the Jira filter (closed cases still take Jira changes)",
    ),
    (
        FilterReason::MissingCaseReference,
        "the decoder rejects a webhook without an issue id, so every changelog has one",
    ),
    (
        FilterReason::SkippedByOperator,
        "pipeline-level (skip list), before any decoder; covered by thirdparty-core",
    ),
    (FilterReason::WorkNoteSyncDisabled, "Jira has no work notes"),
    (
        FilterReason::FieldSyncDisabled,
        "Jira uses field_jira_bi_sync_disabled",
    ),
];

type WorldEdit = fn(&mut World);
type MessageEdit = fn(&mut Value);

struct Row {
    name: &'static str,
    reason: FilterReason,
    fixture: &'static str,
    /// The changelog of the message whose decision is checked.
    changelog_type: &'static str,
    world: WorldEdit,
    message: MessageEdit,
    /// Calls on the API after seeding (fault injection).
    api: fn(&InMemoryCaseApi),
    /// Handle the message once before the checked run.
    replay: bool,
}

fn row(
    name: &'static str,
    reason: FilterReason,
    fixture: &'static str,
    changelog_type: &'static str,
) -> Row {
    Row {
        name,
        reason,
        fixture,
        changelog_type,
        world: |_| {},
        message: |_| {},
        api: |_| {},
        replay: false,
    }
}

impl Row {
    fn world(mut self, edit: WorldEdit) -> Self {
        self.world = edit;
        self
    }
    fn message(mut self, edit: MessageEdit) -> Self {
        self.message = edit;
        self
    }
    fn api(mut self, edit: fn(&InMemoryCaseApi)) -> Self {
        self.api = edit;
        self
    }
    fn replayed(mut self) -> Self {
        self.replay = true;
        self
    }
}

/// Keeps only the changelog item with this `fieldId`.
fn only_item(doc: &mut Value, field_id: &str) {
    let items = doc["webhook"]["changelog"]["items"].as_array_mut().unwrap();
    items.retain(|i| i["fieldId"] == json!(field_id));
    assert_eq!(items.len(), 1, "{field_id}");
}

fn item<'a>(doc: &'a mut Value, field_id: &str) -> &'a mut Value {
    doc["webhook"]["changelog"]["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["fieldId"] == json!(field_id))
        .unwrap()
}

const UPDATED: &str = "cloud_issue_updated";
const COMMENT: &str = "cloud_comment_created";

fn table() -> Vec<Row> {
    use FilterReason as R;
    vec![
        // --- pre-filter ---
        row(
            "actor is the org's Cloud sync user",
            R::BreakSynchronizationCycle,
            UPDATED,
            "update_status",
        )
        .message(|d| {
            d["webhook"]["user"] = json!({"accountId": CLOUD_SYNC_BOT, "displayName": "Case Sync"})
        }),
        row(
            "comment author is the Server sync user",
            R::BreakSynchronizationCycle,
            "server_comment_created",
            "create_comment",
        )
        .message(|d| {
            d["webhook"]["comment"]["author"] =
                json!({"name": "DataDog-Sync", "displayName": "Datadog"})
        }),
        row(
            "actor is a configured sync account",
            R::BreakSynchronizationCycle,
            UPDATED,
            "update_title",
        )
        .message(|d| d["webhook"]["user"] = json!({"accountId": CONFIGURED_SYNC_ACCOUNT})),
        row(
            "unknown Jira site",
            R::NoMatchingMetadata,
            UPDATED,
            "update_status",
        )
        .message(|d| d["jiraAccountId"] = json!("globex.atlassian.net")),
        row(
            "unconfigured Jira project",
            R::NoMatchingMetadata,
            COMMENT,
            "create_comment",
        )
        .message(|d| d["webhook"]["issue"]["fields"]["project"]["id"] = json!("10999")),
        row(
            "issue type not synced",
            R::IssueTypeNotSynced,
            UPDATED,
            "update_status",
        )
        .message(|d| d["webhook"]["issue"]["fields"]["issuetype"]["id"] = json!("10004")),
        row(
            "system field we do not apply",
            R::UnsupportedChangelogType,
            UPDATED,
            "unsupported_labels",
        )
        .message(|d| {
            d["webhook"]["changelog"]["items"] = json!([{
                "field": "labels", "fieldtype": "jira", "fieldId": "labels",
                "from": null, "fromString": "", "to": null, "toString": "customer-impact"
            }]);
        }),
        row(
            "Server custom field without id",
            R::UnsupportedChangelogType,
            "server_issue_updated",
            "unsupported_story_points",
        ),
        row(
            "custom field the project does not map",
            R::CustomFieldNotConfigured,
            UPDATED,
            "unsupported_customfield_10015",
        ),
        // --- look-up ---
        row(
            "issue linked to no case",
            R::NoCorrespondingCase,
            UPDATED,
            "update_status",
        )
        .message(|d| d["webhook"]["issue"]["id"] = json!("10999")),
        row(
            "case project without Jira settings",
            R::ProjectNotFound,
            UPDATED,
            "update_status",
        )
        .world(|w| w.case_mut(CASE_PROJ_12).project_id = "proj-unconfigured".into()),
        // --- filter ---
        row(
            "integration disabled",
            R::IntegrationDisabled,
            UPDATED,
            "update_status",
        )
        .world(|w| w.settings_mut("proj-1").integration_enabled = false),
        row(
            "project sync disabled",
            R::ProjectSyncDisabled,
            COMMENT,
            "create_comment",
        )
        .world(|w| w.settings_mut("proj-1").project_sync_enabled = false),
        row(
            "push-only project",
            R::SyncTypeNotPull,
            UPDATED,
            "update_priority",
        )
        .world(|w| w.settings_mut("proj-1").sync_type = SyncType::OneWayPush),
        row(
            "event before start_syncing_from",
            R::CreatedBeforeStartSyncingFrom,
            UPDATED,
            "update_status",
        )
        .world(|w| {
            w.settings_mut("proj-1").start_syncing_from = Some(datetime!(2024-02-01 00:00 UTC))
        }),
        row(
            "comment sync disabled",
            R::CommentSyncDisabled,
            COMMENT,
            "create_comment",
        )
        .world(|w| w.settings_mut("proj-1").comment_sync_enabled = false),
        row("blank comment", R::EmptyComment, COMMENT, "create_comment")
            .message(|d| d["webhook"]["comment"]["body"] = json!(" \n\t ")),
        row(
            "status switch off",
            integration_jira::FIELD_JIRA_BI_SYNC_DISABLED,
            UPDATED,
            "update_status",
        )
        .world(|w| {
            w.settings_mut("proj-1")
                .field_sync
                .insert(CaseField::Status, false);
        }),
        row(
            "newer status already applied",
            R::OutOfOrderEvent,
            UPDATED,
            "update_status",
        )
        .world(|w| {
            mark_item_at(
                w.case_mut(CASE_PROJ_12),
                CaseField::Status,
                &ExternalReference::new("jira", "acme.atlassian.net", "10002"),
                datetime!(2024-01-15 11:00 UTC),
            );
        }),
        row(
            "unmapped status id",
            R::FieldValueNotMapped,
            UPDATED,
            "update_status",
        )
        .message(|d| item(d, "status")["to"] = json!("10099")),
        row(
            "unmapped priority id",
            R::FieldValueNotMapped,
            UPDATED,
            "update_priority",
        )
        .message(|d| item(d, "priority")["to"] = json!("6")),
        row(
            "status changed on the case meanwhile",
            R::StateConflict,
            UPDATED,
            "update_status",
        )
        .world(|w| edit_in_case(w, CaseField::Status, |c| c.status = "CLOSED".into())),
        row(
            "priority changed on the case meanwhile",
            R::StateConflict,
            UPDATED,
            "update_priority",
        )
        .world(|w| edit_in_case(w, CaseField::Priority, |c| c.priority = Some("P1".into()))),
        row(
            "assignee changed on the case meanwhile",
            R::StateConflict,
            UPDATED,
            "update_assignee",
        )
        .world(|w| {
            edit_in_case(w, CaseField::Assignee, |c| {
                c.assignee_id = Some("user-priya".into());
            });
        }),
        row(
            "status changed on the case meanwhile, policy manual",
            R::ManualConflict,
            UPDATED,
            "update_status",
        )
        .world(|w| {
            edit_in_case(w, CaseField::Status, |c| c.status = "CLOSED".into());
            w.settings_mut("proj-1").conflict_policy = ConflictPolicy::Manual;
        }),
        row("title already set", R::NoChange, UPDATED, "update_title").world(|w| {
            w.case_mut(CASE_PROJ_12).title = "Checkout p99 latency above SLO in eu-west".into()
        }),
        row(
            "status already at the target",
            R::NoChange,
            UPDATED,
            "update_status",
        )
        .world(|w| w.case_mut(CASE_PROJ_12).status = "IN_PROGRESS".into())
        .message(|d| item(d, "status")["from"] = json!("3")),
        row("blank title", R::InvalidFieldValue, UPDATED, "update_title")
            .message(|d| item(d, "summary")["toString"] = json!("   ")),
        row(
            "unparsable due date",
            R::InvalidFieldValue,
            UPDATED,
            "update_due_date",
        )
        .message(|d| {
            let due = item(d, "duedate");
            due["to"] = json!("next sprint");
            due["toString"] = json!("next sprint");
        }),
        row(
            "status without a target id",
            R::InvalidFieldValue,
            UPDATED,
            "update_status",
        )
        .message(|d| item(d, "status")["to"] = json!(null)),
        // --- processor ---
        row(
            "assignee unknown to case management",
            R::AssigneeResolutionFailed,
            UPDATED,
            "update_assignee",
        )
        .message(|d| {
            let a = item(d, "assignee");
            a["to"] = json!("5c0000000000000000000000");
            a["toString"] = json!("Contractor Without Account");
        }),
        row(
            "case keeps changing under us",
            R::CaseVersionMismatch,
            UPDATED,
            "update_status",
        )
        .message(|d| only_item(d, "status"))
        .api(|api| api.conflict_next_updates(4)),
        row(
            "comment replayed",
            R::DuplicateEvent,
            COMMENT,
            "create_comment",
        )
        .replayed(),
        row(
            "Server comment replayed",
            R::DuplicateEvent,
            "server_comment_created",
            "create_comment",
        )
        .replayed(),
        row(
            "due date replayed",
            R::DuplicateEvent,
            UPDATED,
            "update_due_date",
        )
        .message(|d| only_item(d, "duedate"))
        .replayed(),
    ]
}

#[tokio::test]
async fn every_jira_filter_reason_is_reached_through_the_pipeline() {
    let mut reached = BTreeSet::new();
    for row in table() {
        let mut world = World::seeded();
        (row.world)(&mut world);
        let api = Arc::new(world.api());
        (row.api)(&api);
        let pipeline = pipeline(api.clone());
        let mut message = fixture_json(row.fixture);
        (row.message)(&mut message);
        let bytes = serde_json::to_vec(&message).unwrap();
        if row.replay {
            handle(&pipeline, &bytes).await;
        }
        let before = api.snapshot();
        if row.reason == FilterReason::CaseVersionMismatch {
            // Retried, never dropped nor counted as filtered: the retry after the lost races
            // applies.
            let err = pipeline
                .handle(&Payload::new(bytes.clone()))
                .await
                .expect_err(row.name);
            assert_eq!(err.class(), ErrorClass::Retry, "{}: {err:?}", row.name);
            let statuses = |s: &thirdparty_core::testkit::in_memory::Snapshot| {
                s.cases
                    .values()
                    .map(|c| c.status.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                statuses(&api.snapshot()),
                statuses(&before),
                "{}: written anyway",
                row.name
            );
            let reports = handle(&pipeline, &bytes).await;
            assert!(
                reports.iter().all(|r| r.decision == Decision::Applied),
                "{}: {reports:?}",
                row.name
            );
            reached.insert(row.reason);
            continue;
        }
        // `explain` foretells the decision (the processor's too) and writes nothing.
        let MessageOutcome::Handled(predicted) = pipeline
            .explain(&Payload::new(bytes.clone()))
            .await
            .expect(row.name)
        else {
            panic!("{}: not handled", row.name)
        };
        let predicted = predicted
            .iter()
            .find(|r| r.changelog.changelog_type.name() == row.changelog_type)
            .map(|r| r.decision.clone());
        assert_eq!(
            predicted,
            Some(Decision::Filtered(row.reason)),
            "{}: explain foretold another decision",
            row.name
        );
        assert_eq!(api.snapshot(), before, "{}: explain wrote", row.name);
        let reports = handle(&pipeline, &bytes).await;
        let report = reports
            .iter()
            .find(|r| r.changelog.changelog_type.name() == row.changelog_type)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no {} changelog in {reports:?}",
                    row.name, row.changelog_type
                )
            });
        assert_eq!(
            report.decision,
            Decision::Filtered(row.reason),
            "{}: {:?}",
            row.name,
            report.changelog
        );
        if row.reason == FilterReason::ManualConflict {
            // The status is left alone; a conflict entry is on the case timeline, once.
            let after = api.snapshot();
            assert_eq!(after.cases[CASE_PROJ_12].status, "CLOSED", "{}", row.name);
            let added: Vec<_> = after.comments[before.comments.len()..].to_vec();
            assert_eq!(added.len(), 1, "{}: {added:?}", row.name);
            assert!(added[0].idempotency_key.starts_with("conflict:"));
            assert!(added[0].is_work_note);
            assert!(
                added[0].body.contains("says In Progress"),
                "{}",
                added[0].body
            );
            assert!(
                added[0].body.contains("the case says CLOSED"),
                "{}",
                added[0].body
            );
            let again = handle(&pipeline, &bytes).await;
            assert!(
                again
                    .iter()
                    .any(|r| r.decision == Decision::Filtered(row.reason))
            );
            assert_eq!(
                api.snapshot().comments.len(),
                after.comments.len(),
                "idempotent"
            );
        } else if reports.len() == 1 {
            assert_eq!(
                api.snapshot(),
                before,
                "{}: a filtered change was written",
                row.name
            );
        }
        reached.insert(row.reason);
    }
    let wanted: BTreeSet<FilterReason> = JIRA_REASONS.into_iter().collect();
    assert_eq!(reached, wanted, "reasons reached vs the Jira-relevant set");
}

#[test]
fn every_reason_is_classified_as_jira_relevant_or_not() {
    let mut all: BTreeSet<FilterReason> = JIRA_REASONS.into_iter().collect();
    for (reason, why) in NOT_JIRA {
        assert!(!why.is_empty());
        assert!(all.insert(reason), "{reason} listed twice");
    }
    let core: BTreeSet<FilterReason> = FilterReason::ALL
        .iter()
        .chain(integration_jira::REASONS)
        .copied()
        .collect();
    assert_eq!(
        all, core,
        "a new core reason needs a Jira decision (table or NOT_JIRA)"
    );
}

/// A person's edit of a field of case PROJ-12 in the case-management system.
fn edit_in_case(w: &mut World, field: CaseField, edit: impl FnOnce(&mut thirdparty_core::Case)) {
    let case = w.case_mut(CASE_PROJ_12);
    edit(case);
    mark_edited_in_case(case, field, datetime!(2024-01-15 10:00 UTC));
}

#[test]
fn jiras_own_reasons_are_documented_and_parse() {
    let readme = include_str!("../../../../README.md");
    for &r in integration_jira::REASONS {
        let row = format!("| `{}` | {} |", r.as_str(), r.description());
        assert!(readme.contains(&row), "README.md lacks the row: {row}");
        assert_eq!(FilterReason::parse(r.as_str()), None, "not a core reason");
        assert_eq!(
            FilterReason::parse_with(r.as_str(), integration_jira::REASONS),
            Some(r)
        );
    }
}
