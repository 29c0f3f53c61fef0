//! Every filter reason a GitHub change can meet, reached through the pipeline from a real
//! webhook body, foretold by `explain`, and writing nothing to the case.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::testkit::mark_edited_in_case;
use thirdparty_core::{
    CaseField, ConflictPolicy, Decision, FilterReason as R, MessageOutcome, Payload, SyncSettings,
    SyncType,
};
use time::macros::datetime;

use crate::support::*;

/// A row: the reason, the message, the settings and an edit of the Hello-World case.
struct Row {
    name: &'static str,
    reason: R,
    message: Vec<u8>,
    settings: SyncSettings,
    case: fn(&mut thirdparty_core::Case),
    /// Handled once before (a redelivery, an older change after a newer one).
    before: Option<Vec<u8>>,
}

fn row(name: &'static str, reason: R, message: Vec<u8>) -> Row {
    Row {
        name,
        reason,
        message,
        settings: settings(),
        case: |_| {},
        before: None,
    }
}

fn with(mut webhook: Value, pointer: &str, value: Value) -> Value {
    *webhook.pointer_mut(pointer).unwrap() = value;
    webhook
}

fn issues(webhook: Value) -> Vec<u8> {
    message("issues", webhook)
}

fn title_edit(title: &str, at: &str) -> Vec<u8> {
    let webhook = body("issues.edited.title");
    let webhook = with(webhook, "/issue/id", json!(444500041_u64));
    let webhook = with(webhook, "/repository/id", json!(186853002_u64));
    let webhook = with(webhook, "/issue/title", json!(title));
    issues(with(webhook, "/issue/updated_at", json!(at)))
}

fn closed_hello_world() -> Value {
    let webhook = body("issues.reopened");
    let webhook = with(webhook, "/action", json!("closed"));
    with(webhook, "/issue/updated_at", json!("2019-05-15T15:30:00Z"))
}

fn table() -> Vec<Row> {
    let settings_with = |edit: fn(&mut SyncSettings)| {
        let mut s = settings();
        edit(&mut s);
        s
    };
    vec![
        row(
            "our App's bot",
            R::BreakSynchronizationCycle,
            issues(with(
                body("issues.assigned"),
                "/sender",
                json!({"login": "datadog[bot]", "id": 41898282, "type": "Bot"}),
            )),
        ),
        row(
            "another host",
            R::NoMatchingMetadata,
            serde_json::to_vec(&with(
                serde_json::from_slice(&fixture("issues.assigned")).unwrap(),
                "/host",
                json!("github.example.com"),
            ))
            .unwrap(),
        ),
        row(
            "a label no priority maps",
            R::UnsupportedChangelogType,
            issues(with(
                body("issues.labeled"),
                "/label/name",
                json!("documentation"),
            )),
        ),
        row(
            "an issue no case links",
            R::NoCorrespondingCase,
            issues(with(body("issues.assigned"), "/issue/id", json!(99))),
        ),
        Row {
            case: |c| c.project_id = "project-without-settings".into(),
            ..row(
                "a case whose project has no settings",
                R::ProjectNotFound,
                fixture("issues.assigned"),
            )
        },
        Row {
            settings: settings_with(|s| s.integration_enabled = false),
            ..row(
                "integration off",
                R::IntegrationDisabled,
                fixture("issues.assigned"),
            )
        },
        Row {
            settings: settings_with(|s| s.project_sync_enabled = false),
            ..row(
                "project sync off",
                R::ProjectSyncDisabled,
                fixture("issues.assigned"),
            )
        },
        Row {
            settings: settings_with(|s| s.sync_type = SyncType::OneWayPush),
            ..row("push only", R::SyncTypeNotPull, fixture("issues.assigned"))
        },
        Row {
            settings: settings_with(|s| {
                s.start_syncing_from = Some(datetime!(2020-01-01 0:00 UTC))
            }),
            ..row(
                "before start_syncing_from",
                R::CreatedBeforeStartSyncingFrom,
                fixture("issues.assigned"),
            )
        },
        Row {
            settings: settings_with(|s| s.comment_sync_enabled = false),
            ..row(
                "comments off",
                R::CommentSyncDisabled,
                fixture("issue_comment.created"),
            )
        },
        row(
            "a blank comment",
            R::EmptyComment,
            message(
                "issue_comment",
                with(
                    body("issue_comment.created"),
                    "/comment/body",
                    json!("  \n"),
                ),
            ),
        ),
        Row {
            case: |c| c.status = "CLOSED".into(),
            ..row(
                "a closed case",
                R::CaseClosed,
                fixture("issue_comment.created"),
            )
        },
        Row {
            settings: settings_with(|s| {
                s.field_sync.insert(CaseField::Title, false);
            }),
            ..row(
                "title switch off",
                R::FieldSyncDisabled,
                title_edit("New", "2019-05-15T16:00:00Z"),
            )
        },
        row(
            "a blank title",
            R::InvalidFieldValue,
            title_edit("   ", "2019-05-15T16:00:00Z"),
        ),
        Row {
            before: Some(title_edit("Newer", "2019-05-15T17:00:00Z")),
            ..row(
                "an older title edit after a newer one",
                R::OutOfOrderEvent,
                title_edit("Older", "2019-05-15T16:00:00Z"),
            )
        },
        Row {
            before: Some(title_edit("Once", "2019-05-15T16:00:00Z")),
            ..row(
                "a redelivered title edit",
                R::DuplicateEvent,
                title_edit("Once", "2019-05-15T16:00:00Z"),
            )
        },
        Row {
            settings: settings_with(|s| {
                s.value_mappings
                    .get_mut(&CaseField::Status)
                    .unwrap()
                    .clear()
            }),
            ..row(
                "no status for closed",
                R::FieldValueNotMapped,
                issues(closed_hello_world()),
            )
        },
        Row {
            settings: settings_with(|s| s.conflict_policy = ConflictPolicy::Strict),
            case: |c| c.status = "IN_PROGRESS".into(),
            ..row(
                "closed while the case is not open (strict)",
                R::StateConflict,
                issues(closed_hello_world()),
            )
        },
        Row {
            settings: settings_with(|s| s.conflict_policy = ConflictPolicy::Manual),
            case: |c| {
                c.status = "IN_PROGRESS".into();
                mark_edited_in_case(c, CaseField::Status, datetime!(2019-05-15 15:00 UTC));
            },
            ..row(
                "closed after a person moved the case (manual)",
                R::ManualConflict,
                issues(closed_hello_world()),
            )
        },
        row(
            "reopened while open",
            R::NoChange,
            fixture("issues.reopened"),
        ),
        row(
            "assigned to someone no case user is",
            R::AssigneeResolutionFailed,
            issues(with(
                body("issues.assigned"),
                "/assignee",
                json!({"login": "stranger", "id": 1}),
            )),
        ),
        row(
            "unassigning someone the case does not hold",
            R::NoChange,
            fixture("issues.unassigned"),
        ),
    ]
}

/// The core reasons a GitHub change cannot meet, and why.
const NOT_GITHUB: [(R, &str); 7] = [
    (R::WorkNoteSyncDisabled, "GitHub has no work notes"),
    (R::IssueTypeNotSynced, "no issue-type scope"),
    (R::CustomFieldNotConfigured, "no custom fields"),
    (
        R::InstanceNotConfigured,
        "the host is scoped by no_matching_metadata",
    ),
    (R::MissingCaseReference, "every changelog names its issue"),
    (R::SkippedByOperator, "the skip list, before any decoder"),
    (
        R::CaseVersionMismatch,
        "a race, counted and retried: tested in the core",
    ),
];

#[tokio::test]
async fn every_github_reason_is_reached_and_foretold() {
    let mut reached = BTreeSet::new();
    for row in table() {
        let api = api_with(row.settings.clone());
        let mut case = api.case(CASE_HELLO_WORLD_1).unwrap();
        (row.case)(&mut case);
        api.insert_case(case);
        let api: Arc<InMemoryCaseApi> = Arc::new(api);
        let p = pipeline(api.clone());
        if let Some(before) = &row.before {
            handle(&p, before).await;
        }
        let snapshot = api.snapshot();
        let MessageOutcome::Handled(predicted) =
            p.explain(&Payload::new(row.message.clone())).await.unwrap()
        else {
            panic!("{}: not handled", row.name)
        };
        assert_eq!(
            predicted
                .iter()
                .map(|r| r.decision.clone())
                .collect::<Vec<_>>(),
            [Decision::Filtered(row.reason)],
            "{}: explain",
            row.name
        );
        let handled = handle(&p, &row.message).await;
        assert_eq!(
            handled
                .iter()
                .map(|r| r.decision.clone())
                .collect::<Vec<_>>(),
            [Decision::Filtered(row.reason)],
            "{}",
            row.name
        );
        let after = api.snapshot();
        let touched = |s: &thirdparty_core::testkit::in_memory::Snapshot| {
            let c = &s.cases[CASE_HELLO_WORLD_1];
            (
                c.title.clone(),
                c.status.clone(),
                c.assignee_id.clone(),
                c.priority.clone(),
            )
        };
        assert_eq!(touched(&after), touched(&snapshot), "{}: written", row.name);
        if row.reason != R::ManualConflict {
            assert_eq!(
                after.comments.len(),
                snapshot.comments.len(),
                "{}",
                row.name
            );
        }
        reached.insert(row.reason);
    }
    let mut all: BTreeSet<R> = reached.clone();
    for (reason, why) in NOT_GITHUB {
        assert!(!why.is_empty());
        assert!(
            all.insert(reason),
            "{reason} both reached and listed as not GitHub's"
        );
    }
    let core: BTreeSet<R> = R::ALL.iter().copied().collect();
    assert_eq!(
        all, core,
        "a core reason needs a GitHub decision (table or NOT_GITHUB)"
    );
}
