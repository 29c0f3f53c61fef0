//! Fault injection, latency, bearer tokens, TLS and health over real TCP.

mod common;

use std::time::Duration;

use case_api::pb::sandbox::v1 as admin;
use case_api::{GrpcCaseApi, TlsConfig};
use case_api_sandbox::ServerTls;
use common::*;
use thirdparty_core::{
    Author, CaseApi, CaseApiError, ExternalReference, FieldChange, NewComment, SyncWrite,
    UpdateWriter,
};
use time::macros::datetime;

#[tokio::test]
async fn injected_faults_fail_the_next_n_calls() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;
    let mut admin = admin(&server, None).await;

    admin
        .inject_fault(admin::InjectFaultRequest {
            method: "GetCase".into(),
            code: tonic::Code::Unavailable as i32,
            count: 2,
            message: String::new(),
            duration_ms: 0,
            lose_reply: false,
        })
        .await
        .unwrap();
    for _ in 0..2 {
        let err = api.get_case(ACME, CASE_10002).await.unwrap_err();
        assert!(matches!(err, CaseApiError::Unavailable(_)), "{err:?}");
    }
    assert!(api.get_case(ACME, CASE_10002).await.unwrap().is_some());

    admin
        .inject_fault(admin::InjectFaultRequest {
            method: "*".into(),
            code: tonic::Code::Internal as i32,
            count: 1,
            message: "boom".into(),
            duration_ms: 0,
            lose_reply: false,
        })
        .await
        .unwrap();
    let err = api.list_sync_metadata(ACME, "jira").await.unwrap_err();
    assert_eq!(err, CaseApiError::Internal("Internal: boom".into()));

    admin
        .inject_fault(admin::InjectFaultRequest {
            method: "/case.v1.CaseService/UpdateCase".into(),
            code: tonic::Code::PermissionDenied as i32,
            count: 3,
            message: String::new(),
            duration_ms: 0,
            lose_reply: false,
        })
        .await
        .unwrap();
    admin
        .clear_faults(admin::ClearFaultsRequest {})
        .await
        .unwrap();
    assert!(api.list_comments(ACME, CASE_10002).await.is_ok());

    admin
        .inject_fault(admin::InjectFaultRequest {
            method: "GetCase".into(),
            code: tonic::Code::Unavailable as i32,
            count: 0,
            message: String::new(),
            duration_ms: 60_000,
            lose_reply: false,
        })
        .await
        .unwrap();
    for _ in 0..3 {
        let err = api.get_case(ACME, CASE_10002).await.unwrap_err();
        assert!(matches!(err, CaseApiError::Unavailable(_)), "{err:?}");
    }
    admin
        .clear_faults(admin::ClearFaultsRequest {})
        .await
        .unwrap();
    let counts = admin
        .call_counts(admin::CallCountsRequest {})
        .await
        .unwrap()
        .into_inner()
        .calls;
    assert_eq!(counts.get("/case.v1.CaseService/GetCase"), Some(&6));

    let bad = admin
        .inject_fault(admin::InjectFaultRequest {
            method: "*".into(),
            code: 0,
            count: 1,
            message: String::new(),
            duration_ms: 0,
            lose_reply: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    server.shutdown().await.unwrap();
}

/// A lost reply: the call is handled and its write commits, then the caller gets the injected
/// status instead of the reply. The retry must recognize the write (a field update by its
/// watermark and change key, a comment by its idempotency key).
#[tokio::test]
async fn a_lost_reply_commits_the_write_and_fails_the_call() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;
    let mut admin = admin(&server, None).await;
    for method in ["UpdateCase", "CreateComment"] {
        admin
            .inject_fault(admin::InjectFaultRequest {
                method: method.into(),
                code: tonic::Code::Unavailable as i32,
                count: 1,
                message: String::new(),
                duration_ms: 0,
                lose_reply: true,
            })
            .await
            .unwrap();
    }

    let before = api.get_case(ACME, CASE_10002).await.unwrap().unwrap();
    let at = datetime!(2024-06-01 10:00 UTC);
    let update = thirdparty_core::CaseUpdate {
        org_id: ACME,
        case_id: CASE_10002.into(),
        expected_version: before.version,
        change: FieldChange::Status("IN_PROGRESS".into()),
        writer: UpdateWriter::Sync(SyncWrite {
            source: ExternalReference::new("jira", "acme.atlassian.net", "10002"),
            source_event_time: at,
            change_key: "status:IN_PROGRESS".into(),
        }),
    };
    let err = api.update_case(&update).await.unwrap_err();
    assert!(matches!(err, CaseApiError::Unavailable(_)), "{err:?}");
    let after = api.get_case(ACME, CASE_10002).await.unwrap().unwrap();
    assert_eq!(after.status, "IN_PROGRESS", "the write committed");
    assert_eq!(after.version, before.version + 1);
    assert_eq!(
        after.ordering_reason(
            thirdparty_core::CaseField::Status,
            &ExternalReference::new("jira", "acme.atlassian.net", "10002"),
            at,
            "status:IN_PROGRESS",
        ),
        Some(thirdparty_core::FilterReason::DuplicateEvent),
        "a retry of the change is recognized as a replay"
    );
    // The rule's one call is used up: the next write replies.
    let mut next = update.clone();
    next.expected_version = after.version;
    next.change = FieldChange::Title("Checkout p99 above SLO".into());
    next.writer = UpdateWriter::Sync(SyncWrite {
        source: ExternalReference::new("jira", "acme.atlassian.net", "10002"),
        source_event_time: at,
        change_key: "summary".into(),
    });
    assert_eq!(
        api.update_case(&next).await.unwrap().version,
        after.version + 1
    );

    let comment = NewComment {
        org_id: ACME,
        case_id: CASE_10002.into(),
        idempotency_key: "jira:acme.atlassian.net:10002:20001".into(),
        body: "Rolled back the cache config.".into(),
        author: Author {
            id: Some("712020:0a1b2c3d-priya".into()),
            display_name: Some("Priya Natarajan".into()),
        },
        is_work_note: false,
        integration: "jira".into(),
        source_event_time: at,
    };
    let err = api.add_comment(&comment).await.unwrap_err();
    assert!(matches!(err, CaseApiError::Unavailable(_)), "{err:?}");
    let retried = api.add_comment(&comment).await.unwrap();
    assert!(!retried.created, "the retry finds the committed comment");
    let comments = api.list_comments(ACME, CASE_10002).await.unwrap();
    assert_eq!(comments, vec![retried.comment], "exactly one comment");

    let counts = admin
        .call_counts(admin::CallCountsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        counts.lost_replies,
        [
            ("/case.v1.CaseService/UpdateCase".to_owned(), 1),
            ("/case.v1.TimelineService/CreateComment".to_owned(), 1),
        ]
        .into()
    );
    assert_eq!(
        counts.calls.get("/case.v1.CaseService/UpdateCase"),
        Some(&2)
    );
    assert_eq!(server.faults().lost_replies("*"), 2);

    server.shutdown().await.unwrap();
}

/// A lost-reply rule waits for a call that succeeds: a write the store refuses replies with its
/// own error and leaves the rule in place.
#[tokio::test]
async fn a_refused_write_does_not_consume_a_lost_reply_rule() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;
    server
        .faults()
        .lose_replies("UpdateCase", tonic::Code::Unavailable, 1, "");
    let case = api.get_case(ACME, CASE_10002).await.unwrap().unwrap();
    let mut update = thirdparty_core::CaseUpdate {
        org_id: ACME,
        case_id: CASE_10002.into(),
        expected_version: case.version + 5,
        change: FieldChange::Status("IN_PROGRESS".into()),
        writer: UpdateWriter::Sync(SyncWrite {
            source: ExternalReference::new("jira", "acme.atlassian.net", "10002"),
            source_event_time: datetime!(2024-06-01 10:00 UTC),
            change_key: "status:IN_PROGRESS".into(),
        }),
    };
    let err = api.update_case(&update).await.unwrap_err();
    assert!(
        matches!(err, CaseApiError::VersionMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(server.faults().lost_replies("*"), 0);
    update.expected_version = case.version;
    let err = api.update_case(&update).await.unwrap_err();
    assert!(matches!(err, CaseApiError::Unavailable(_)), "{err:?}");
    assert_eq!(server.faults().lost_replies("UpdateCase"), 1);

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn latency_over_the_deadline_is_deadline_exceeded() {
    let server = start(demo_config(None)).await;
    let api = GrpcCaseApi::connect(
        &client_config(&server, None).with_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let mut admin = admin(&server, None).await;

    admin
        .set_latency(admin::SetLatencyRequest {
            method: "*".into(),
            millis: 1_000,
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = api.get_case(ACME, CASE_10002).await.unwrap_err();
    assert!(matches!(err, CaseApiError::DeadlineExceeded(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the client gave up at its deadline"
    );

    admin
        .clear_faults(admin::ClearFaultsRequest {})
        .await
        .unwrap();
    assert!(api.get_case(ACME, CASE_10002).await.unwrap().is_some());

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bearer_token_is_required_when_configured() {
    let server = start(demo_config(Some("s3cret"))).await;

    let anonymous = client(&server, None).await;
    let err = anonymous.get_case(ACME, CASE_10002).await.unwrap_err();
    assert!(matches!(err, CaseApiError::Unauthorized(_)), "{err:?}");

    let wrong = client(&server, Some("guess")).await;
    let err = wrong.list_sync_metadata(ACME, "jira").await.unwrap_err();
    assert!(matches!(err, CaseApiError::Unauthorized(_)), "{err:?}");
    let mut wrong_admin = admin(&server, Some("guess")).await;
    let err = wrong_admin
        .clear_faults(admin::ClearFaultsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    let right = client(&server, Some("s3cret")).await;
    assert!(right.get_case(ACME, CASE_10002).await.unwrap().is_some());
    assert_eq!(
        server.faults().calls("*"),
        1,
        "refused calls never reach a handler"
    );

    // Probes need no token.
    anonymous.health_check().await.unwrap();

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_health_service_reports_serving() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;
    api.health_check().await.unwrap();
    for service in [
        "case.v1.CaseService",
        "case.v1.TimelineService",
        "case.v1.ProjectSettingsService",
        "case.v1.SyncMetadataService",
        "case.v1.UserService",
    ] {
        api.health_check_service(service).await.unwrap();
    }
    assert!(api.health_check_service("no.such.Service").await.is_err());
    server.shutdown().await.unwrap();

    // Once the server is gone, the probe fails as unavailable.
    let err = api.health_check().await.unwrap_err();
    assert!(
        matches!(
            err,
            CaseApiError::Unavailable(_) | CaseApiError::DeadlineExceeded(_)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn tls_with_a_token_round_trips() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let config = case_api_sandbox::SandboxConfig {
        tls: Some(ServerTls {
            cert_pem: cert_pem.clone().into_bytes(),
            key_pem: cert.signing_key.serialize_pem().into_bytes(),
        }),
        ..demo_config(Some("s3cret"))
    };
    let server = start(config).await;
    assert!(server.endpoint().starts_with("https://127.0.0.1:"));

    let trusted = client_config(&server, Some("s3cret")).with_tls(TlsConfig {
        ca_cert_pem: Some(cert_pem.into_bytes()),
        domain_name: Some("localhost".into()),
    });
    let api = GrpcCaseApi::connect(&trusted).await.unwrap();
    let case = api.get_case(ACME, CASE_10002).await.unwrap().unwrap();
    assert_eq!(case.id, CASE_10002);
    api.health_check().await.unwrap();

    // A client that does not trust the certificate cannot talk to it.
    let untrusted = client_config(&server, Some("s3cret")).with_tls(TlsConfig {
        ca_cert_pem: None,
        domain_name: Some("localhost".into()),
    });
    let api = GrpcCaseApi::new(&untrusted).unwrap();
    let err = api.get_case(ACME, CASE_10002).await.unwrap_err();
    assert!(matches!(err, CaseApiError::Unavailable(_)), "{err:?}");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_seed_rpc_loads_documents_and_rejects_bad_ones() {
    let server = start(case_api_sandbox::SandboxConfig::default()).await;
    let api = client(&server, None).await;
    let mut admin = admin(&server, None).await;
    assert_eq!(api.get_case(ACME, CASE_10002).await.unwrap(), None);

    let counts = admin
        .seed(admin::SeedRequest {
            json: case_api_sandbox::DEMO_SEED_JSON.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((counts.orgs, counts.cases), (2, 8));
    assert!(api.get_case(ACME, CASE_10002).await.unwrap().is_some());

    let err = admin
        .seed(admin::SeedRequest {
            json: r#"{"users": [{"org_id": 42, "id": "u", "display_name": "X"}]}"#.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "unknown org");
    let err = admin
        .seed(admin::SeedRequest { json: "{".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    server.shutdown().await.unwrap();
}
