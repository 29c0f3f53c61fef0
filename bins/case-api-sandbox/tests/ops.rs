//! Fault injection, latency, bearer tokens, TLS and health over real TCP.

mod common;

use std::time::Duration;

use case_api::pb::sandbox::v1 as admin;
use case_api::{GrpcCaseApi, TlsConfig};
use case_api_sandbox::ServerTls;
use common::*;
use thirdparty_core::{CaseApi, CaseApiError};

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
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

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
    assert_eq!((counts.orgs, counts.cases), (2, 7));
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
