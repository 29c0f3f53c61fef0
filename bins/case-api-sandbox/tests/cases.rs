//! Cases and comments over real TCP: look-ups, versioned updates with watermarks, concurrent
//! writers, idempotent comments.

mod common;

use std::collections::BTreeSet;

use common::*;
use thirdparty_core::{
    Author, CaseApi, CaseApiError, CaseField, CaseUpdate, ExternalReference, FieldChange,
    NewComment, SyncWrite, UpdateWriter,
};
use time::macros::{date, datetime};

fn update(
    case_id: &str,
    version: u64,
    change: FieldChange,
    at: time::OffsetDateTime,
) -> CaseUpdate {
    CaseUpdate {
        org_id: ACME,
        case_id: case_id.into(),
        expected_version: version,
        change,
        writer: UpdateWriter::Sync(SyncWrite {
            source: jira(case_reference(case_id)),
            source_event_time: at,
            change_key: format!("change-at-{at}"),
        }),
    }
}

/// A Jira issue of the demo's Cloud site.
fn jira(reference: &str) -> ExternalReference {
    ExternalReference::new("jira", "acme.atlassian.net", reference)
}

/// The Jira issue the demo links to a case (10002 for `CASE_10002`).
fn case_reference(case_id: &str) -> &'static str {
    if case_id == CASE_10002 {
        "10002"
    } else {
        "unlinked"
    }
}

#[tokio::test]
async fn get_find_update_round_trip_writes_the_watermark() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;

    let found = api
        .find_case_by_external_reference(ACME, &jira("10002"))
        .await
        .unwrap()
        .expect("case linked to 10002");
    assert_eq!(found.id, CASE_10002);
    assert_eq!(found.status, "OPEN");
    assert_eq!(found.version, 1);
    assert!(found.source_watermarks.is_empty());
    let other_site = ExternalReference::new("jira", "jira.acme.internal", "10002");
    assert_eq!(
        api.find_case_by_external_reference(ACME, &other_site)
            .await
            .unwrap(),
        None,
        "issue 10002 of another Jira site is another item"
    );
    let got = api.get_case(ACME, CASE_10002).await.unwrap().unwrap();
    assert_eq!(got, found);

    let at = datetime!(2024-05-01 10:30:00.250 +02:00);
    let updated = api
        .update_case(&update(
            CASE_10002,
            1,
            FieldChange::Status("IN_PROGRESS".into()),
            at,
        ))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.status, "IN_PROGRESS");
    assert_eq!(
        updated
            .watermark(CaseField::Status, &jira("10002"))
            .map(|w| w.at),
        Some(at)
    );
    assert_eq!(
        api.get_case(ACME, CASE_10002).await.unwrap().unwrap(),
        updated
    );

    // Optional fields set and cleared, each bumping the version and writing its watermark.
    let later = datetime!(2024-05-02 08:00 UTC);
    let updated = api
        .update_case(&update(
            CASE_10002,
            2,
            FieldChange::DueDate(Some(date!(2024 - 10 - 08))),
            later,
        ))
        .await
        .unwrap();
    assert_eq!(updated.due_date, Some(date!(2024 - 10 - 08)));
    let updated = api
        .update_case(&update(CASE_10002, 3, FieldChange::Priority(None), later))
        .await
        .unwrap();
    assert_eq!((updated.version, updated.priority.clone()), (4, None));
    assert_eq!(
        updated
            .watermark(CaseField::Priority, &jira("10002"))
            .map(|w| w.at),
        Some(later)
    );

    // An older source event never moves a watermark backwards.
    let earlier = datetime!(2024-04-01 0:00 UTC);
    let updated = api
        .update_case(&update(
            CASE_10002,
            4,
            FieldChange::Status("CLOSED".into()),
            earlier,
        ))
        .await
        .unwrap();
    assert_eq!(updated.status, "CLOSED");
    assert_eq!(
        updated
            .watermark(CaseField::Status, &jira("10002"))
            .map(|w| w.at),
        Some(at)
    );

    // The seed's links to ServiceNow work the same way.
    let snow = api
        .find_case_by_external_reference(
            ACME,
            &ExternalReference::new("servicenow", "acme", "9d385017c611228701d22104cc95c371"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snow.project_id, ACME_SNOW_PROJECT);

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn absent_things_are_none_and_bad_writes_are_typed_errors() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;

    assert_eq!(api.get_case(ACME, "no-such-case").await.unwrap(), None);
    assert_eq!(
        api.get_case(GLOBEX, CASE_10002).await.unwrap(),
        None,
        "other org"
    );
    assert_eq!(
        api.find_case_by_external_reference(ACME, &jira("99999"))
            .await
            .unwrap(),
        None
    );
    assert!(
        api.list_comments(ACME, "no-such-case")
            .await
            .unwrap()
            .is_empty()
    );

    let at = datetime!(2024-05-01 0:00 UTC);
    let err = api
        .update_case(&update(
            "no-such-case",
            1,
            FieldChange::Title("x".into()),
            at,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, CaseApiError::NotFound(_)), "{err:?}");
    let err = api
        .update_case(&update(
            CASE_10002,
            1,
            FieldChange::Status(String::new()),
            at,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, CaseApiError::InvalidArgument(_)), "{err:?}");
    let err = api
        .update_case(&update(
            CASE_10002,
            7,
            FieldChange::Title("stale".into()),
            at,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CaseApiError::VersionMismatch {
            case_id: CASE_10002.into(),
            expected: 7
        }
    );
    let unchanged = api.get_case(ACME, CASE_10002).await.unwrap().unwrap();
    assert_eq!(unchanged.version, 1, "refused writes change nothing");
    assert_eq!(unchanged.title, "Checkout latency spike in us-east-1");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_concurrent_updates_at_one_version_exactly_one_wins() {
    let server = start(demo_config(None)).await;
    // Two clients, two connections: the race happens on the server.
    let a = client(&server, None).await;
    let b = client(&server, None).await;
    let at = datetime!(2024-05-01 0:00 UTC);

    for round in 0..10u64 {
        let version = 1 + round;
        let ua = update(
            CASE_10002,
            version,
            FieldChange::Title(format!("a{round}")),
            at,
        );
        let ub = update(
            CASE_10002,
            version,
            FieldChange::Title(format!("b{round}")),
            at,
        );
        let (ra, rb) = tokio::join!(a.update_case(&ua), b.update_case(&ub));
        let (winner, loser) = match (ra, rb) {
            (Ok(w), Err(l)) => (w, l),
            (Err(l), Ok(w)) => (w, l),
            other => panic!("round {round}: expected exactly one winner, got {other:?}"),
        };
        assert_eq!(winner.version, version + 1);
        assert_eq!(
            loser,
            CaseApiError::VersionMismatch {
                case_id: CASE_10002.into(),
                expected: version
            }
        );
        let stored = a.get_case(ACME, CASE_10002).await.unwrap().unwrap();
        assert_eq!(stored, winner, "the loser changed nothing");
    }

    server.shutdown().await.unwrap();
}

fn comment(key: &str, body: &str) -> NewComment {
    NewComment {
        org_id: ACME,
        case_id: CASE_10002.into(),
        idempotency_key: key.into(),
        body: body.into(),
        author: Author {
            id: Some("5b10a2844c20165700ede21g".into()),
            display_name: Some("Jane Doe".into()),
        },
        is_work_note: false,
        integration: "jira".into(),
        source_event_time: datetime!(2024-05-01 12:00 UTC),
    }
}

#[tokio::test]
async fn a_repeated_comment_key_returns_the_first_comment() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;

    let first = api
        .add_comment(&comment("jira:10002:comment:10500", "Rolled back v2.3.1"))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.comment.body, "Rolled back v2.3.1");
    assert_eq!(
        first.comment.author.display_name.as_deref(),
        Some("Jane Doe")
    );

    let again = api
        .add_comment(&comment(
            "jira:10002:comment:10500",
            "edited body, same key",
        ))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.comment, first.comment);

    let mut note = comment(
        "servicenow:abc:2024-05-01T12:00:00Z",
        "internal: paging DBA",
    );
    note.is_work_note = true;
    let second = api.add_comment(&note).await.unwrap();
    assert!(second.created);
    assert_ne!(second.comment.id, first.comment.id);

    let listed = api.list_comments(ACME, CASE_10002).await.unwrap();
    assert_eq!(listed, vec![first.comment.clone(), second.comment.clone()]);
    let ids: BTreeSet<_> = listed.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), 2, "no duplicate");
    assert!(
        api.list_comments(GLOBEX, CASE_10002)
            .await
            .unwrap()
            .is_empty()
    );

    let err = api.add_comment(&comment("", "no key")).await.unwrap_err();
    assert!(matches!(err, CaseApiError::InvalidArgument(_)), "{err:?}");
    let mut missing = comment("k", "b");
    missing.case_id = "no-such-case".into();
    let err = api.add_comment(&missing).await.unwrap_err();
    assert!(matches!(err, CaseApiError::NotFound(_)), "{err:?}");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_file_database_keeps_writes_across_restarts() {
    let dir = std::env::temp_dir().join(format!("case-api-sandbox-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sandbox.db");
    let _ = std::fs::remove_file(&db);
    let config = case_api_sandbox::SandboxConfig {
        db: case_api_sandbox::DbLocation::File(db.clone()),
        ..demo_config(None)
    };

    let server = start(config.clone()).await;
    let api = client(&server, None).await;
    let at = datetime!(2024-05-01 0:00 UTC);
    api.update_case(&update(
        CASE_10002,
        1,
        FieldChange::Title("persisted".into()),
        at,
    ))
    .await
    .unwrap();
    api.add_comment(&comment("k1", "kept")).await.unwrap();
    server.shutdown().await.unwrap();

    let restarted = start(case_api_sandbox::SandboxConfig {
        seed: None,
        ..config
    })
    .await;
    let api = client(&restarted, None).await;
    let case = api.get_case(ACME, CASE_10002).await.unwrap().unwrap();
    assert_eq!((case.title.as_str(), case.version), ("persisted", 2));
    assert_eq!(api.list_comments(ACME, CASE_10002).await.unwrap().len(), 1);
    restarted.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
