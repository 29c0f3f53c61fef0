//! The real `github-reader` end to end: real GitHub webhook bodies (the integration crate's
//! fixtures) in the Kafka envelope, on librdkafka's mock cluster in the default run and on
//! Tansu with `cargo xtask e2e`, against the sandbox Case API with the demo seed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::{DEMO_SEED_JSON, SandboxConfig, SandboxServer, Seed};
use reader_runtime::testkit::{
    ReaderProcess, TestBroker, free_port, metric_by_label, metric_sum, produce, producer,
    wait_caught_up,
};
use serde_json::{Value, json};
use thirdparty_core::CaseApi;

const TOPIC: &str = "collaboration_integrations_github";
const GROUP: &str = "case-management";
const ORG: u64 = 123456;
/// The demo seed's case linked to Codertocat/Hello-World#1 on github.com.
const CASE: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a08";

#[derive(Debug, Clone, Copy)]
enum Broker {
    Embedded,
    Tansu,
}

fn body(name: &str) -> Value {
    let path = format!(
        "{}/../../crates/integration-github/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

fn message(event: &str, webhook: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "orgId": ORG, "integration": "github", "host": "github.com", "event": event,
        "deliveryId": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "receivedAt": "2019-05-15T15:21:00Z", "webhook": webhook
    }))
    .unwrap()
}

async fn real_webhooks_reach_the_case(broker: Broker) {
    let dir =
        std::env::temp_dir().join(format!("github-e2e-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let kafka = match broker {
        Broker::Embedded => TestBroker::embedded().unwrap(),
        Broker::Tansu => TestBroker::tansu(&dir.join("tansu")).await.unwrap(),
    };
    kafka.create_topic(TOPIC, 2).await.unwrap();
    let sandbox = SandboxServer::bind(
        SandboxConfig {
            seed: Some(Seed::from_json(DEMO_SEED_JSON).unwrap()),
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let health: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config: PathBuf = dir.join("github-reader.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
brokers = "{brokers}"
auto_offset_reset = "earliest"
auto_commit_interval_ms = 100
drain_timeout_ms = 5000
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"fetch.wait.max.ms" = "20"
[case_api]
endpoint = "{endpoint}"
timeout_ms = 2000
[health]
listen = "{health}"
[integration]
own_accounts = ["datadog[bot]"]
"#,
            brokers = kafka.bootstrap(),
            endpoint = sandbox.endpoint(),
        ),
    )
    .unwrap();
    let mut reader = ReaderProcess::spawn(
        env!("CARGO_BIN_EXE_github-reader").as_ref(),
        &config,
        health,
        &dir.join("github-reader.log"),
    )
    .unwrap();
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();

    let mut by_bot = body("issues.unassigned");
    by_bot["sender"] = json!({"login": "datadog[bot]", "id": 41898282, "type": "Bot"});
    let mut closed = body("issues.reopened");
    closed["action"] = json!("closed");
    closed["issue"]["state"] = json!("closed");
    closed["issue"]["state_reason"] = json!("completed");
    closed["issue"]["updated_at"] = json!("2019-05-15T15:30:00Z");
    let messages = [
        message("issues", body("issues.labeled")),
        message("issues", body("issues.assigned")),
        message("issue_comment", body("issue_comment.created")),
        // Redelivered by GitHub: a duplicate.
        message("issue_comment", body("issue_comment.created")),
        message("issues", by_bot),
        message("issues", closed),
        message("issues", body("issues.opened")),
        message("issue_comment", body("issue_comment.created.pull_request")),
        b"{\"orgId\": 123456, \"webhook\": ".to_vec(),
    ];
    let p = producer(&kafka.bootstrap()).unwrap();
    for value in &messages {
        // One issue, one key: in order on one partition.
        produce(&p, TOPIC, None, "Codertocat/Hello-World#1", value)
            .await
            .unwrap();
    }
    wait_caught_up(&kafka.bootstrap(), GROUP, TOPIC, Duration::from_secs(60))
        .await
        .unwrap();
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );

    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(sandbox.endpoint()))
        .await
        .unwrap();
    let case = api.get_case(ORG, CASE).await.unwrap().unwrap();
    assert_eq!(
        (case.status.as_str(), case.priority.as_deref(), case.version),
        ("RESOLVED", Some("P2"), 4)
    );
    assert_eq!(
        case.assignee_id.as_deref(),
        Some("5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e83"),
        "Codertocat"
    );
    let comments = api.list_comments(ORG, CASE).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(
        comments[0].idempotency_key,
        "github:github.com:444500041:492700400"
    );

    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[]
        ),
        4.0,
        "{metrics}"
    );
    let filtered = metric_by_label(
        &metrics,
        "dd_case_third_party_reader_github_filtered",
        "reason",
    );
    assert_eq!(filtered.get("duplicate_event"), Some(&1.0), "{filtered:?}");
    assert_eq!(
        filtered.get("break_synchronization_cycle"),
        Some(&1.0),
        "{filtered:?}"
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_discarded", &[]),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_decoding_failed", &[]),
        1.0,
        "{metrics}"
    );
}

mod embedded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_webhooks_reach_the_case() {
        super::real_webhooks_reach_the_case(super::Broker::Embedded).await;
    }
}

mod tansu {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Tansu: run `cargo xtask e2e`"]
    async fn real_webhooks_reach_the_case() {
        super::real_webhooks_reach_the_case(super::Broker::Tansu).await;
    }
}
