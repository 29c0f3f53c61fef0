//! `servicenow-reader run --kafka embedded`: the reader hosts librdkafka's mock cluster itself;
//! a producer in the test finds it through the logged bootstrap address, and the reader applies
//! a comment, a work note and a state change to the sandbox over gRPC.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::{DEMO_SEED_JSON, SandboxConfig, SandboxServer, Seed};
use reader_runtime::testkit::{
    ReaderProcess, free_port, metric_sum, produce, producer, wait_caught_up,
};
use serde_json::json;
use thirdparty_core::CaseApi;

const TOPIC: &str = "collaboration_integrations_servicenow";
const CASE: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a04";
const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_mode_consumes_and_applies_servicenow_events() {
    let sandbox = SandboxServer::bind(
        SandboxConfig {
            seed: Some(Seed::from_json(DEMO_SEED_JSON).unwrap()),
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "sn-embedded-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let health: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("reader.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nauto_offset_reset = \"earliest\"\nauto_commit_interval_ms = 100\n\
             [case_api]\nendpoint = \"{}\"\n[health]\nlisten = \"{health}\"\n",
            sandbox.endpoint()
        ),
    )
    .unwrap();
    let log = dir.join("reader.log");
    let mut reader = ReaderProcess::spawn_with(
        env!("CARGO_BIN_EXE_servicenow-reader").as_ref(),
        &config,
        &["--kafka", "embedded", "--embedded-partitions", "2"],
        health,
        &log,
    )
    .unwrap();
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let bootstrap = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "embedded kafka started")
        .and_then(|l| l["bootstrap"].as_str().map(str::to_owned))
        .expect("the reader logs the embedded bootstrap address");

    let event = json!({
        "type": "datadog_x_incident", "orgId": 123456, "sysId": SYS_ID, "instanceName": "acme",
        "updatedAt": "2024-06-01 10:00:00", "updatedBy": "beth.anglin",
        "data": {"comment": "Customer confirmed the fix.\n\nClosing soon.", "workNote": "Internal: RCA in CHG0031", "state": "2"}
    });
    let echo = json!({
        "type": "datadog_x_incident", "orgId": 123456, "sysId": SYS_ID, "instanceName": "acme",
        "updatedAt": "2024-06-01 10:00:05", "updatedBy": "DataDog", "data": {"comment": "our own write"}
    });
    let p = producer(&bootstrap).unwrap();
    produce(
        &p,
        TOPIC,
        None,
        SYS_ID,
        &serde_json::to_vec(&event).unwrap(),
    )
    .await
    .unwrap();
    produce(&p, TOPIC, None, SYS_ID, &serde_json::to_vec(&echo).unwrap())
        .await
        .unwrap();
    produce(&p, TOPIC, None, SYS_ID, b"not json").await.unwrap();
    wait_caught_up(
        &bootstrap,
        "case-management",
        TOPIC,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(sandbox.endpoint()))
        .await
        .unwrap();
    let case = api.get_case(123456, CASE).await.unwrap().unwrap();
    assert_eq!(case.status, "IN_PROGRESS");
    let comments = api.list_comments(123456, CASE).await.unwrap();
    let entries: Vec<(&str, bool)> = comments
        .iter()
        .map(|c| (c.body.as_str(), c.is_work_note))
        .collect();
    assert_eq!(
        entries,
        [
            ("Customer confirmed the fix.\n\nClosing soon.", false),
            ("Internal: RCA in CHG0031", true)
        ]
    );
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_servicenow_filtered",
            &[("reason", "break_synchronization_cycle")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_decoding_failed", &[]),
        1.0
    );
    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
}
