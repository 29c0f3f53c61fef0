//! Key-ordered concurrency inside a partition, end to end: the real `jira-reader` with
//! `max_in_flight = 64` on one partition handles the messages of 16 issues concurrently, each
//! issue's strictly in order (its comments land on its case in the order they were produced,
//! nothing twice), and the group's committed offset reaches the end; with `max_in_flight = 1`
//! the same stream gives the same cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use case_api::pb::sandbox::v1::SetLatencyRequest;
use case_api::pb::sandbox::v1::sandbox_admin_client::SandboxAdminClient;
use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::{DEMO_SEED_JSON, Seed};
use common::env::World;
use common::{GROUP, TOPIC, comment_created};
use reader_runtime::testkit::{group_progress, produce, producer, wait_caught_up};
use serde_json::{Value, json};
use thirdparty_core::CaseApi;

const ORG: u64 = 123456;
const JIRA_PROJECT: &str = "b7e2c1a4-5d3f-4e8a-9c61-0f2d4a7b8e01";
const ISSUES: usize = 16;
const COMMENTS: usize = 6;
const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z

fn issue(i: usize) -> String {
    format!("{}", 30_000 + i)
}

fn case_of(i: usize) -> String {
    format!("case-concurrent-{i}")
}

/// The demo seed plus one case per issue, in the demo's Jira project.
fn seed() -> Seed {
    let mut seed: Value = serde_json::from_str(DEMO_SEED_JSON).unwrap();
    let cases = seed["cases"].as_array_mut().unwrap();
    for i in 0..ISSUES {
        cases.push(json!({
            "id": case_of(i), "org_id": ORG, "project_id": JIRA_PROJECT, "version": 1,
            "title": format!("Concurrent {i}"), "description": "", "priority": "P3",
            "status": "OPEN", "assignee_id": null, "due_date": null,
            "created_at": "2024-01-15T09:45:00Z",
            "external_references": [
                {"integration": "jira", "site": "acme.atlassian.net", "reference": issue(i)}
            ]
        }));
    }
    Seed::from_json(&seed.to_string()).unwrap()
}

async fn run(max_in_flight: usize) -> Vec<Vec<String>> {
    let world = World::builder("concurrency").seed(seed()).start().await;
    let (kafka, sandbox) = (&world.kafka, &world.sandbox);
    // Calls take a while, as a real Case API's do: concurrent handling overlaps them.
    SandboxAdminClient::connect(sandbox.endpoint())
        .await
        .unwrap()
        .set_latency(SetLatencyRequest {
            method: "*".into(),
            millis: 5,
        })
        .await
        .unwrap();
    // Round robin over the issues: each issue's comments are spread over the partition.
    let p = producer(&kafka.bootstrap()).unwrap();
    for n in 0..COMMENTS {
        for i in 0..ISSUES {
            let ts = T0 + (n * ISSUES + i) as i64;
            let value = comment_created(
                &issue(i),
                &format!("{}-{n}", issue(i)),
                ts,
                &format!("comment {n}"),
            );
            produce(&p, TOPIC, Some(0), "k", &value).await.unwrap();
        }
    }
    let (reader, _) = world
        .reader_config()
        .kafka(format!("max_in_flight = {max_in_flight}"))
        .timeout_ms(2000)
        .spawn_ready("reader")
        .await;
    let started = std::time::Instant::now();
    wait_caught_up(&kafka.bootstrap(), GROUP, TOPIC, Duration::from_secs(60))
        .await
        .unwrap();
    println!(
        "max_in_flight {max_in_flight}: {} messages handled and committed {:.2} s after ready",
        ISSUES * COMMENTS,
        started.elapsed().as_secs_f64()
    );
    let progress = group_progress(&kafka.bootstrap(), GROUP, TOPIC)
        .await
        .unwrap();
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
    assert_eq!(
        progress
            .values()
            .map(|(committed, _)| committed)
            .sum::<i64>(),
        (ISSUES * COMMENTS) as i64,
        "{progress:?}"
    );
    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(sandbox.endpoint()))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for i in 0..ISSUES {
        let comments = api.list_comments(ORG, &case_of(i)).await.unwrap();
        bodies.push(comments.into_iter().map(|c| c.body).collect());
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_items_messages_stay_in_order_while_items_run_concurrently() {
    let expected: Vec<String> = (0..COMMENTS).map(|n| format!("comment {n}")).collect();
    for max_in_flight in [64, 1] {
        let bodies = run(max_in_flight).await;
        for (i, comments) in bodies.iter().enumerate() {
            assert_eq!(
                comments,
                &expected,
                "max_in_flight {max_in_flight}: issue {} out of order or duplicated",
                issue(i)
            );
        }
    }
}
