//! A table of events through the whole pipeline reaching every ServiceNow-relevant reason.

use std::collections::BTreeSet;
use std::sync::Arc;

use integration_servicenow::{ServiceNowFilterer, comment_idempotency_key};
use serde_json::{Value, json};
use thirdparty_core::ExternalReference;
use thirdparty_core::testkit::mark_item_at;
use thirdparty_core::{
    Author, CaseField, Changelog, ChangelogType, Decision, DecodeError, ErrorClass, FilterReason,
    Filterer, HandleError, MessageOutcome, Payload, SyncType,
};
use time::macros::datetime;

use crate::world::*;

use Decision::{Applied, Filtered};
use FilterReason as R;

/// What to do before handling the row's event.
#[derive(Debug, Clone, Copy)]
enum Prep {
    Nothing,
    /// Handle the event once first (a replay).
    HandleOnce,
    /// Make the next `n` case updates lose the version race.
    ConflictUpdates(u32),
}

#[derive(Debug)]
struct Row {
    name: &'static str,
    tweak: fn(&mut World),
    event: fn() -> Value,
    prep: Prep,
    expected: Vec<Decision>,
}

fn row(
    name: &'static str,
    tweak: fn(&mut World),
    event: fn() -> Value,
    expected: Vec<Decision>,
) -> Row {
    Row {
        name,
        tweak,
        event,
        prep: Prep::Nothing,
        expected,
    }
}

fn untouched(_: &mut World) {}

fn comment_only() -> Value {
    fixture_json("comment_only.json")
}

fn work_note_only() -> Value {
    fixture_json("work_note_only.json")
}

fn state_change() -> Value {
    fixture_json("state_change.json")
}

fn table() -> Vec<Row> {
    vec![
        row(
            "echo of the default own name",
            untouched,
            || fixture_json("datadog_echo.json"),
            vec![
                Filtered(R::BreakSynchronizationCycle),
                Filtered(R::BreakSynchronizationCycle),
            ],
        ),
        row(
            "echo of an own user id from the org metadata",
            untouched,
            || {
                let mut e = comment_event("synced");
                e["updatedBy"] = json!("SVC.Case-Sync");
                e
            },
            vec![Filtered(R::BreakSynchronizationCycle)],
        ),
        row(
            "unconfigured instance",
            untouched,
            || fixture_json("unconfigured_instance.json"),
            vec![Filtered(R::InstanceNotConfigured)],
        ),
        row(
            "org without ServiceNow metadata",
            |w| w.metadata.clear(),
            comment_only,
            vec![Filtered(R::InstanceNotConfigured)],
        ),
        row(
            "integration disabled",
            |w| w.settings_mut().integration_enabled = false,
            comment_only,
            vec![Filtered(R::IntegrationDisabled)],
        ),
        row(
            "project sync disabled",
            |w| w.settings_mut().project_sync_enabled = false,
            state_change,
            vec![Filtered(R::ProjectSyncDisabled)],
        ),
        row(
            "push-only sync type",
            |w| w.settings_mut().sync_type = SyncType::OneWayPush,
            state_change,
            vec![Filtered(R::SyncTypeNotPull)],
        ),
        row(
            "pull-only sync type applies",
            |w| w.settings_mut().sync_type = SyncType::OneWayPull,
            state_change,
            vec![Applied],
        ),
        row(
            "before start_syncing_from",
            |w| w.settings_mut().start_syncing_from = Some(datetime!(2024-03-05 00:00 UTC)),
            || fixture_json("all_three.json"),
            vec![Filtered(R::CreatedBeforeStartSyncingFrom); 3],
        ),
        row(
            "comment sync disabled",
            |w| w.settings_mut().comment_sync_enabled = false,
            comment_only,
            vec![Filtered(R::CommentSyncDisabled)],
        ),
        row(
            "work-note sync disabled",
            |w| w.settings_mut().work_note_sync_enabled = false,
            work_note_only,
            vec![Filtered(R::WorkNoteSyncDisabled)],
        ),
        row(
            "comment switches are independent",
            |w| w.settings_mut().work_note_sync_enabled = false,
            || fixture_json("all_three.json"),
            vec![Applied, Filtered(R::WorkNoteSyncDisabled), Applied],
        ),
        row(
            "blank comment",
            untouched,
            || comment_event(" \n\n\t "),
            vec![Filtered(R::EmptyComment)],
        ),
        row(
            "empty comment",
            untouched,
            || comment_event(""),
            vec![Filtered(R::EmptyComment)],
        ),
        row(
            "comments on a closed case",
            |w| w.case_mut(CASE_B).status = "CLOSED".into(),
            || fixture_json("all_three.json"),
            vec![
                Filtered(R::CaseClosed),
                Filtered(R::CaseClosed),
                Filtered(R::NoChange),
            ],
        ),
        row(
            "a state change reopens a closed case",
            |w| w.case_mut(CASE_B).status = "CLOSED".into(),
            || fixture_json("numeric_state.json"),
            vec![Applied],
        ),
        row(
            "status sync disabled",
            |w| {
                w.settings_mut().field_sync.insert(CaseField::Status, false);
            },
            state_change,
            vec![Filtered(R::FieldSyncDisabled)],
        ),
        row(
            "older than the status watermark",
            |w| {
                mark_item_at(
                    w.case_mut(CASE_A),
                    CaseField::Status,
                    &ExternalReference::new("servicenow", INSTANCE, SYS_A),
                    datetime!(2024-02-20 10:02:42 UTC),
                );
            },
            state_change,
            vec![Filtered(R::OutOfOrderEvent)],
        ),
        row(
            "unmapped state code",
            untouched,
            || {
                let mut e = state_change();
                e["data"]["state"] = json!("3");
                e
            },
            vec![Filtered(R::FieldValueNotMapped)],
        ),
        row(
            "the case already has the status",
            |w| w.case_mut(CASE_A).status = "IN_PROGRESS".into(),
            state_change,
            vec![Filtered(R::NoChange)],
        ),
        row(
            "no case by correlationId nor sys_id",
            untouched,
            || {
                let mut e = comment_only();
                e["sysId"] = json!("0000000000000000000000000000dead");
                e["data"]["correlationId"] = json!("00000000-0000-4000-8000-000000000000");
                e
            },
            vec![Filtered(R::NoCorrespondingCase)],
        ),
        row(
            "the case's project has no ServiceNow settings",
            |w| w.case_mut(CASE_A).project_id = "proj-unsynced".into(),
            comment_only,
            vec![Filtered(R::ProjectNotFound)],
        ),
        Row {
            prep: Prep::HandleOnce,
            ..row(
                "replayed comment",
                untouched,
                comment_only,
                vec![Filtered(R::DuplicateEvent)],
            )
        },
        Row {
            prep: Prep::HandleOnce,
            ..row(
                "replayed state change",
                untouched,
                state_change,
                vec![Filtered(R::DuplicateEvent)],
            )
        },
        Row {
            prep: Prep::ConflictUpdates(4),
            ..row(
                "every re-read loses the version race",
                untouched,
                state_change,
                vec![Filtered(R::CaseVersionMismatch)],
            )
        },
        Row {
            prep: Prep::ConflictUpdates(3),
            ..row(
                "the last re-read wins the version race",
                untouched,
                state_change,
                vec![Applied],
            )
        },
        row(
            "everything applies",
            untouched,
            || fixture_json("all_three.json"),
            vec![Applied, Applied, Applied],
        ),
    ]
}

#[tokio::test]
async fn table_reaches_every_servicenow_reason() {
    let mut reached = BTreeSet::new();
    for row in table() {
        let mut world = World::new();
        (row.tweak)(&mut world);
        let api = Arc::new(world.api());
        let pipeline = pipeline(api.clone());
        let event = bytes(&(row.event)());
        match row.prep {
            Prep::Nothing => {}
            Prep::HandleOnce => {
                decisions(&pipeline, &event).await;
            }
            Prep::ConflictUpdates(n) => api.conflict_next_updates(n),
        }
        if row.expected == [Filtered(R::CaseVersionMismatch)] {
            // Retried, never dropped nor counted as filtered: the retry after the lost races
            // applies.
            let err = pipeline
                .handle(&Payload::new(event.clone()))
                .await
                .expect_err(row.name);
            assert_eq!(
                err.class(),
                ErrorClass::Retry,
                "row `{}`: {err:?}",
                row.name
            );
            assert_eq!(
                decisions(&pipeline, &event).await,
                [Applied],
                "row `{}`",
                row.name
            );
            reached.insert(R::CaseVersionMismatch);
            continue;
        }
        let got = decisions(&pipeline, &event).await;
        assert_eq!(got, row.expected, "row `{}`", row.name);
        reached.extend(got.iter().filter_map(|d| match d {
            Filtered(reason) => Some(*reason),
            _ => None,
        }));
    }
    let required = [
        R::BreakSynchronizationCycle,
        R::InstanceNotConfigured,
        R::IntegrationDisabled,
        R::ProjectSyncDisabled,
        R::SyncTypeNotPull,
        R::CreatedBeforeStartSyncingFrom,
        R::CommentSyncDisabled,
        R::WorkNoteSyncDisabled,
        R::EmptyComment,
        R::CaseClosed,
        R::FieldSyncDisabled,
        R::OutOfOrderEvent,
        R::FieldValueNotMapped,
        R::NoChange,
        R::NoCorrespondingCase,
        R::ProjectNotFound,
        R::DuplicateEvent,
        R::CaseVersionMismatch,
    ];
    // `missing_case_reference` cannot come from a decoded event (the decoder requires `sysId`):
    // see `missing_case_reference_comes_from_the_default_lookup`.
    let missing: Vec<_> = required.iter().filter(|r| !reached.contains(r)).collect();
    assert!(missing.is_empty(), "not reached: {missing:?}");
}

fn missing_case_reference() -> FilterReason {
    let mut c = Changelog::new(
        "servicenow",
        ORG,
        ChangelogType::CreateComment,
        "",
        datetime!(2024-02-20 09:00 UTC),
    );
    c.body = Some("orphan".into());
    ServiceNowFilterer::default().case_lookup(&c).unwrap_err()
}

#[test]
fn missing_case_reference_comes_from_the_default_lookup() {
    assert_eq!(missing_case_reference(), R::MissingCaseReference);
}

#[tokio::test]
async fn undecodable_events_are_classified_not_handled() {
    let pipeline = pipeline(Arc::new(World::new().api()));
    let mut other_type = comment_only();
    other_type["type"] = json!("datadog_x_problem");
    let mut no_sys_id = comment_only();
    no_sys_id.as_object_mut().unwrap().remove("sysId");
    let cases = [
        (bytes(&other_type), ErrorClass::Discard, "unsupported_event"),
        (bytes(&no_sys_id), ErrorClass::Discard, "invalid"),
        (
            b"{\"type\": \"datadog_x_inc".to_vec(),
            ErrorClass::Skip,
            "malformed",
        ),
    ];
    for (value, class, kind) in cases {
        match pipeline.handle(&Payload::new(value)).await {
            Ok(MessageOutcome::Undecodable(err)) => {
                assert_eq!((err.class(), err.kind()), (class, kind), "{err}");
            }
            other => panic!("{other:?}"),
        }
    }
    // The unsupported type is named in the error.
    let outcome = pipeline.handle(&Payload::new(bytes(&other_type))).await;
    assert_eq!(
        outcome,
        Ok(MessageOutcome::Undecodable(HandleError::Decode(
            DecodeError::UnsupportedEvent("datadog_x_problem".into())
        )))
    );
}

#[tokio::test]
async fn replaying_an_event_creates_no_duplicate_comment() {
    let api = Arc::new(World::new().api());
    let pipeline = pipeline(api.clone());
    let event = fixture("all_three.json");
    assert_eq!(
        decisions(&pipeline, &event).await,
        [Applied, Applied, Applied]
    );
    let first = api.snapshot();
    for _ in 0..3 {
        assert_eq!(
            decisions(&pipeline, &event).await,
            // Comments on the now closed case stop at the filter; the state change is the one
            // that set the status watermark, replayed.
            [
                Filtered(R::CaseClosed),
                Filtered(R::CaseClosed),
                Filtered(R::DuplicateEvent)
            ]
        );
    }
    assert_eq!(api.snapshot(), first);
    assert_eq!(api.comments(CASE_B).len(), 2);

    // On an open case the replay reaches the API and the idempotency key stops it.
    let event = fixture("comment_only.json");
    assert_eq!(decisions(&pipeline, &event).await, [Applied]);
    for _ in 0..3 {
        assert_eq!(
            decisions(&pipeline, &event).await,
            [Filtered(R::DuplicateEvent)]
        );
    }
    assert_eq!(api.comments(CASE_A).len(), 1);
}

#[tokio::test]
async fn the_same_instant_in_either_timestamp_format_is_one_comment() {
    let api = Arc::new(World::new().api());
    let pipeline = pipeline(api.clone());
    let mut rfc3339 = comment_event("once");
    rfc3339["updatedAt"] = json!("2024-02-25T10:00:00Z");
    let mut servicenow = rfc3339.clone();
    servicenow["updatedAt"] = json!("2024-02-25 10:00:00");
    assert_eq!(decisions(&pipeline, &bytes(&rfc3339)).await, [Applied]);
    assert_eq!(
        decisions(&pipeline, &bytes(&servicenow)).await,
        [Filtered(R::DuplicateEvent)]
    );
}

#[tokio::test]
async fn comments_and_work_notes_land_as_distinct_entries_byte_for_byte() {
    let api = Arc::new(World::new().api());
    let pipeline = pipeline(api.clone());
    for name in [
        "comment_only.json",
        "work_note_only.json",
        "multiline_body.json",
    ] {
        assert_eq!(
            decisions(&pipeline, &fixture(name)).await,
            [Applied],
            "{name}"
        );
    }
    let comments = api.comments(CASE_A);
    let expected_bodies: Vec<String> = [
        "comment_only.json",
        "work_note_only.json",
        "multiline_body.json",
    ]
    .iter()
    .map(|name| {
        let data = &fixture_json(name)["data"];
        data.get("comment")
            .or(data.get("workNote"))
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    })
    .collect();
    assert_eq!(
        comments.iter().map(|c| c.body.clone()).collect::<Vec<_>>(),
        expected_bodies
    );
    assert_eq!(
        comments.iter().map(|c| c.is_work_note).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert_eq!(
        comments[1].author,
        Author {
            id: Some("abel.tuter".into()),
            display_name: None
        }
    );
    assert!(
        comments[1].idempotency_key.starts_with(&format!(
            "servicenow:{INSTANCE}:{SYS_A}:2024-02-20T09:15:00Z:work_note:"
        )),
        "{}",
        comments[1].idempotency_key
    );
}

#[tokio::test]
async fn status_changes_carry_version_and_watermark() {
    let api = Arc::new(World::new().api());
    let pipeline = pipeline(api.clone());
    assert_eq!(
        decisions(&pipeline, &fixture("state_change.json")).await,
        [Applied]
    );
    let case = api.case(CASE_A).unwrap();
    assert_eq!((case.status.as_str(), case.version), ("IN_PROGRESS", 2));
    let mark = case.source_watermarks.first().expect("a status watermark");
    assert_eq!(
        (mark.field, mark.source.site.as_str(), mark.at),
        (
            CaseField::Status,
            INSTANCE,
            datetime!(2024-02-20 10:02:41 UTC)
        )
    );
    // A comment and a work note of one event get two keys.
    let decoded = thirdparty_core::Decoder::decode(
        &integration_servicenow::ServiceNowDecoder::new(),
        &fixture("all_three.json"),
    )
    .unwrap();
    assert_ne!(
        comment_idempotency_key(&decoded[0]),
        comment_idempotency_key(&decoded[1])
    );
}
