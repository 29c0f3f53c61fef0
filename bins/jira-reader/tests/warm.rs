//! Cache warming end to end, with the real `jira-reader` on librdkafka's mock cluster and the
//! sandbox with the demo seed: `/ready` answers 503 "warming caches" until the sync-metadata
//! cache is filled from `ListAllSyncMetadata`, then messages of the demo data's organizations cost
//! no `ListSyncMetadata`; a Case API that answers UNIMPLEMENTED leaves the reader cold but
//! ready.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::env::World;
use common::{GROUP, TOPIC, issue_updated, to_do_to_in_progress};
use reader_runtime::testkit::{
    ReaderProcess, http_get, metric_sum, produce, producer, wait_caught_up,
};
use serde_json::{Value, json};

const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z
const LIST: &str = "/case.v1.SyncMetadataService/ListSyncMetadata";
const LIST_ALL: &str = "/case.v1.SyncMetadataService/ListAllSyncMetadata";
/// The demo seed's organizations with Jira sync metadata.
const ACME: u64 = 123_456;
const GLOBEX: u64 = 789_012;

struct Env {
    world: World,
}

impl Env {
    async fn start(name: &str) -> Env {
        Env {
            world: World::start(name, 2).await,
        }
    }

    fn spawn_reader(&self) -> ReaderProcess {
        self.world
            .reader_config()
            .property("heartbeat.interval.ms", "300")
            .timeout_ms(2000)
            .section("[pipeline]\nwarm_timeout_s = 20")
            .spawn("reader")
            .0
    }

    fn log(&self) -> String {
        self.world.log("reader")
    }

    fn calls(&self) -> HashMap<String, u64> {
        self.world.sandbox.faults().call_counts()
    }

    fn count(&self, path: &str) -> u64 {
        self.calls().get(path).copied().unwrap_or(0)
    }

    /// Polls `/ready` until it answers 200: every 503 body seen before, and the sandbox's call
    /// counts at the first 200.
    async fn wait_ready(&self, reader: &mut ReaderProcess) -> (Vec<String>, HashMap<String, u64>) {
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut not_ready = Vec::new();
        loop {
            match http_get(reader.health, "/ready").await {
                Ok((200, _)) => return (not_ready, self.calls()),
                Ok((_, body)) => not_ready.push(body.trim().to_owned()),
                Err(_) => {}
            }
            assert!(
                reader.try_wait().unwrap().is_none(),
                "the reader exited\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "not ready: {:?}\n{}",
                not_ready.last(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A status change on one issue of each of the demo data's Jira organizations (Acme's issue
    /// 10002 is linked to a case and applied; Globex's issue 10100 too), handled to the end.
    async fn produce_for_every_org(&self) {
        let status = to_do_to_in_progress();
        let acme = issue_updated("10002", T0, json!([status.clone()]));
        let mut globex: Value =
            serde_json::from_slice(&issue_updated("10100", T0 + 1, json!([status]))).unwrap();
        globex["orgId"] = json!(GLOBEX);
        globex["jiraAccountId"] = json!("jira.globex.internal");
        globex["webhook"]["issue"]["key"] = json!("OPS-1");
        globex["webhook"]["issue"]["fields"]["project"] = json!({"id": "10100", "key": "OPS"});
        let p = producer(&self.world.kafka.bootstrap()).unwrap();
        for (partition, value) in [(0, acme), (1, serde_json::to_vec(&globex).unwrap())] {
            produce(&p, TOPIC, Some(partition), "k", &value)
                .await
                .unwrap();
        }
        wait_caught_up(
            &self.world.kafka.bootstrap(),
            GROUP,
            TOPIC,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    }
}

/// The value of `key` (a number) in the log line carrying `message`.
fn logged_number(log: &str, message: &str, key: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(message))?;
    let value: Value = serde_json::from_str(line).ok()?;
    value.get(key)?.as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_warm_up_and_warmed_organizations_cost_no_metadata_look_up() {
    let env = Env::start("warm").await;
    // A slow listing keeps the warm-up visible on `/ready` for a while.
    env.world
        .sandbox
        .faults()
        .set_latency("ListAllSyncMetadata", Duration::from_millis(800));
    let started = Instant::now();
    let mut reader = env.spawn_reader();
    let (not_ready, at_ready) = env.wait_ready(&mut reader).await;
    let ready_after = started.elapsed();
    let log = env.log();

    assert!(
        not_ready.iter().any(|b| b.starts_with("warming caches")),
        "{not_ready:?}"
    );
    assert!(
        at_ready.get(LIST_ALL).copied().unwrap_or(0) >= 1,
        "ListAllSyncMetadata before /ready: {at_ready:?}"
    );
    assert_eq!(at_ready.get(LIST).copied().unwrap_or(0), 0, "{at_ready:?}");
    let warmed = logged_number(&log, "sync metadata cache warmed", "orgs");
    assert_eq!(warmed, Some(2), "{log}");
    let elapsed_ms = logged_number(&log, "sync metadata cache warmed", "elapsed_ms").unwrap();
    println!(
        "warm-up of the demo seed: {elapsed_ms} ms (800 ms of it injected latency); \
         ready after {ready_after:?}; /ready said {:?}",
        not_ready.iter().collect::<std::collections::BTreeSet<_>>()
    );
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_cache_warmed_orgs",
            &[("flavor", "jira")]
        ),
        2.0,
        "{metrics}"
    );

    env.produce_for_every_org().await;
    let calls = env.calls();
    assert_eq!(calls.get(LIST).copied().unwrap_or(0), 0, "{calls:?}");
    assert_eq!(
        calls.get(LIST_ALL).copied(),
        at_ready.get(LIST_ALL).copied()
    );
    let log = env.log();
    let mut decided = 0;
    for line in log.lines().filter(|l| l.contains("\"decision\"")) {
        let line: Value = serde_json::from_str(line).unwrap();
        let org = line["org_id"].as_u64();
        assert!(org == Some(ACME) || org == Some(GLOBEX), "{line}");
        assert_ne!(line["reason"], "no_matching_metadata", "{line}");
        decided += 1;
    }
    assert!(decided >= 2, "a decision per organization\n{log}");
    assert!(
        env.count("/case.v1.CaseService/FindCaseByExternalReference") >= 2,
        "{calls:?}"
    );
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_api_without_the_listing_leaves_the_reader_cold_but_ready() {
    let env = Env::start("cold").await;
    env.world.sandbox.faults().inject(
        "ListAllSyncMetadata",
        tonic::Code::Unimplemented,
        1,
        "unknown method ListAllSyncMetadata",
    );
    let mut reader = env.spawn_reader();
    let (_, at_ready) = env.wait_ready(&mut reader).await;
    assert_eq!(at_ready.get(LIST_ALL).copied(), Some(1), "not tried again");
    let log = env.log();
    assert!(
        log.contains("the case api cannot list all sync metadata; starting with a cold cache"),
        "{log}"
    );
    assert_eq!(
        metric_sum(
            &reader.metrics().await.unwrap(),
            "dd_case_third_party_reader_cache_warmed_orgs",
            &[("flavor", "jira")]
        ),
        0.0
    );

    env.produce_for_every_org().await;
    assert_eq!(env.count(LIST), 2, "one look-up per organization, cold");
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
}
