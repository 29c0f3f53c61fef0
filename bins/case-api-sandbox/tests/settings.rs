//! Settings, sync metadata and users from the demo seed, and the cached settings client.

mod common;

use common::*;
use thirdparty_core::{CaseApi, CaseApiError, CaseField, SyncType, UserQuery};
use time::macros::datetime;

#[tokio::test]
async fn settings_come_from_the_seed() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;

    let jira = api
        .get_project_settings(ACME, ACME_JIRA_PROJECT, "jira")
        .await
        .unwrap()
        .expect("acme jira settings");
    assert_eq!(jira.sync_type, SyncType::Bidirectional);
    for (id, name) in [
        ("1", "P1"),
        ("2", "P2"),
        ("3", "P3"),
        ("4", "P4"),
        ("5", "P5"),
    ] {
        assert_eq!(jira.map_value(CaseField::Priority, id), Some(name));
    }
    assert_eq!(jira.map_value(CaseField::Status, "10000"), Some("OPEN"));
    assert_eq!(jira.map_value(CaseField::Status, "3"), Some("IN_PROGRESS"));
    assert_eq!(jira.map_value(CaseField::Status, "10001"), Some("CLOSED"));
    assert_eq!(
        jira.custom_fields.get("customfield_10015"),
        Some(&CaseField::DueDate)
    );
    assert_eq!(
        jira.start_syncing_from,
        Some(datetime!(2024-01-01 0:00 UTC))
    );

    let snow = api
        .get_project_settings(ACME, ACME_SNOW_PROJECT, "servicenow")
        .await
        .unwrap()
        .expect("acme servicenow settings");
    assert_eq!(snow.sync_type, SyncType::OneWayPull);
    for (state, name) in [
        ("1", "OPEN"),
        ("2", "IN_PROGRESS"),
        ("3", "IN_PROGRESS"),
        ("6", "CLOSED"),
        ("7", "CLOSED"),
    ] {
        assert_eq!(
            snow.map_value(CaseField::Status, state),
            Some(name),
            "state {state}"
        );
    }
    assert!(!snow.field_synced(CaseField::Title));

    assert_eq!(
        api.get_project_settings(ACME, ACME_JIRA_PROJECT, "servicenow")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        api.get_project_settings(GLOBEX, ACME_JIRA_PROJECT, "jira")
            .await
            .unwrap(),
        None,
        "other org"
    );
    let err = api
        .get_project_settings(ACME, "", "jira")
        .await
        .unwrap_err();
    assert!(matches!(err, CaseApiError::InvalidArgument(_)), "{err:?}");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sync_metadata_comes_from_the_seed() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;

    let jira = api.list_sync_metadata(ACME, "jira").await.unwrap();
    assert_eq!(jira.len(), 1);
    let m = &jira[0];
    assert_eq!(m.project_id, ACME_JIRA_PROJECT);
    assert!(m.accepts("account_id", Some("acme.atlassian.net")));
    assert!(!m.accepts("account_id", Some("evil.atlassian.net")));
    assert!(m.accepts("project_id", Some("10000")));
    assert!(m.accepts("issue_type_id", Some("10001")));
    assert!(m.own_user_ids.contains("5b10ac8d82e05b22cc7d4ef5"));
    assert_eq!(
        m.custom_fields.get("customfield_10015"),
        Some(&CaseField::DueDate)
    );

    let snow = api.list_sync_metadata(ACME, "servicenow").await.unwrap();
    assert_eq!(snow.len(), 1);
    assert!(snow[0].accepts("instance_name", Some("acme")));
    assert!(snow[0].own_user_ids.contains("datadog"));

    let globex = api.list_sync_metadata(GLOBEX, "jira").await.unwrap();
    assert!(
        globex[0].accepts("issue_type_id", Some("anything")),
        "empty list accepts all"
    );
    assert!(
        api.list_sync_metadata(ACME, "zendesk")
            .await
            .unwrap()
            .is_empty()
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_organization_s_sync_metadata_is_listed_and_unimplemented_is_typed() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;

    let page = api.list_all_sync_metadata("jira", None, 0).await.unwrap();
    let orgs: Vec<u64> = page.entries.iter().map(|e| e.org_id).collect();
    assert_eq!(orgs, [ACME, GLOBEX]);
    assert_eq!(page.next_page_token, None);
    for entry in &page.entries {
        assert_eq!(
            vec![entry.metadata.clone()],
            api.list_sync_metadata(entry.org_id, "jira").await.unwrap()
        );
    }
    let first = api.list_all_sync_metadata("jira", None, 1).await.unwrap();
    let second = api
        .list_all_sync_metadata("jira", first.next_page_token.clone(), 1)
        .await
        .unwrap();
    assert_eq!((first.entries.len(), second.entries.len()), (1, 1));
    assert_eq!(second.entries[0].org_id, GLOBEX);
    assert_eq!(second.next_page_token, None);
    assert!(matches!(
        api.list_all_sync_metadata("", None, 0).await,
        Err(CaseApiError::InvalidArgument(_))
    ));
    assert!(matches!(
        api.list_all_sync_metadata("jira", Some("12:x".into()), 0)
            .await,
        Err(CaseApiError::InvalidArgument(_))
    ));

    // A Case API without the RPC answers UNIMPLEMENTED: the client says so, typed.
    server.faults().inject(
        "ListAllSyncMetadata",
        tonic::Code::Unimplemented,
        1,
        "unknown method",
    );
    assert_eq!(
        api.list_all_sync_metadata("jira", None, 0).await,
        Err(CaseApiError::Unimplemented("unknown method".into()))
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn users_resolve_by_external_id_then_email_then_display_name() {
    let server = start(demo_config(None)).await;
    let api = client(&server, None).await;
    let query = |external_id: Option<&str>, email: Option<&str>, name: Option<&str>| UserQuery {
        org_id: ACME,
        integration: "jira".into(),
        external_id: external_id.map(Into::into),
        email: email.map(Into::into),
        display_name: name.map(Into::into),
    };

    let jane = api
        .resolve_user(&query(
            Some("5b10a2844c20165700ede21g"),
            None,
            Some("John Smith"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        jane.display_name, "Jane Doe",
        "external id wins over display name"
    );

    let john = api
        .resolve_user(&query(
            Some("unknown-account"),
            Some("JOHN.SMITH@acme.example"),
            None,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(john.id, "1b8d4f62-3a5c-4e7f-9b2d-0c3e4f5a6b72");

    let priya = api
        .resolve_user(&query(None, None, Some("priya natarajan")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(priya.email.as_deref(), Some("priya.natarajan@acme.example"));

    // A Jira id does not name anyone in ServiceNow, and another org's users are invisible.
    let mut snow = query(Some("5b10a2844c20165700ede21g"), None, None);
    snow.integration = "servicenow".into();
    assert_eq!(api.resolve_user(&snow).await.unwrap(), None);
    let mut globex = query(Some("akim"), None, None);
    assert_eq!(api.resolve_user(&globex).await.unwrap(), None);
    globex.org_id = GLOBEX;
    assert_eq!(
        api.resolve_user(&globex)
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "Alex Kim"
    );

    assert_eq!(
        api.resolve_user(&query(None, None, Some("Nobody")))
            .await
            .unwrap(),
        None
    );
    let err = api
        .resolve_user(&query(None, None, None))
        .await
        .unwrap_err();
    assert!(matches!(err, CaseApiError::InvalidArgument(_)), "{err:?}");

    server.shutdown().await.unwrap();
}
