//! Decision records end to end: the real `jira-reader` logs one line per decision with the
//! issue key and the case id, and produces the same record to `[decisions] topic`, keyed
//! `org:integration:site:id`; a decisions topic it cannot write to costs records, never changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::env::World;
use common::{CASE_10002, GROUP, TOPIC, issue_updated, item};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use reader_runtime::testkit::{
    ReaderProcess, TestBroker, metric_sum, produce, producer, wait_caught_up,
};
use serde_json::json;
use thirdparty_core::{DecisionKind, DecisionRecord};

const DECISIONS: &str = "case_third_party_reader_decisions";
const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z

struct Env {
    world: World,
}

impl Env {
    async fn start() -> Env {
        Env {
            world: World::builder("decisions")
                .topic(DECISIONS, 2)
                .start()
                .await,
        }
    }

    async fn reader(&self, name: &str, decisions: &str) -> ReaderProcess {
        self.world
            .reader_config()
            .section(format!("[decisions]\n{decisions}"))
            .spawn_ready(name)
            .await
            .0
    }

    fn log(&self, name: &str) -> String {
        self.world.log(name)
    }

    /// A status change on 10002 (applied), one on an issue no case links (filtered), and a
    /// message that is not JSON (undecodable).
    async fn produce_three(&self) {
        let p = producer(&self.world.kafka.bootstrap()).unwrap();
        let status = item(
            "status",
            Some("1"),
            Some("To Do"),
            Some("3"),
            Some("In Progress"),
        );
        for value in [
            issue_updated("10002", T0, json!([status.clone()])),
            issue_updated("77777", T0, json!([status])),
            b"{not json".to_vec(),
        ] {
            produce(&p, TOPIC, Some(0), "k", &value).await.unwrap();
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

/// Reads `count` records (key, record) of the decisions topic from the start.
fn read_decisions(bootstrap: &str, count: usize) -> Vec<(String, DecisionRecord)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "decisions-reader-test")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[DECISIONS]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            let record: DecisionRecord =
                serde_json::from_slice(message.payload().unwrap()).unwrap();
            out.push((key, record));
        }
    }
    out.sort_by_key(|(_, r)| r.offset);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_is_logged_with_key_and_case_and_produced_to_the_decisions_topic() {
    let env = Env::start().await;
    let reader = env
        .reader("reader", &format!("topic = \"{DECISIONS}\""))
        .await;
    env.produce_three().await;
    let records = read_decisions(&env.world.kafka.bootstrap(), 3);
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
    assert_eq!(records.len(), 3, "{records:?}");

    let (key, applied) = &records[0];
    assert_eq!(key, "123456:jira:acme.atlassian.net:10002");
    assert_eq!(applied.decision, DecisionKind::Applied);
    assert_eq!(applied.case_id.as_deref(), Some(CASE_10002));
    assert_eq!(applied.third_party_key.as_deref(), Some("PROJ-10002"));
    assert_eq!(applied.changelog_type.as_deref(), Some("update_status"));
    assert_eq!(
        (applied.topic.as_deref(), applied.partition, applied.offset),
        (Some(TOPIC), Some(0), Some(0))
    );
    assert!(applied.source_event_time.is_some());

    let (key, filtered) = &records[1];
    assert_eq!(key, "123456:jira:acme.atlassian.net:77777");
    assert_eq!(filtered.decision, DecisionKind::Filtered);
    assert_eq!(filtered.reason.as_deref(), Some("no_corresponding_case"));
    assert_eq!(filtered.case_id, None);

    let (key, undecodable) = &records[2];
    assert_eq!(key, &format!("jira:message:{TOPIC}:0:2"));
    assert_eq!(undecodable.decision, DecisionKind::Undecodable);
    assert_eq!(undecodable.error.as_deref(), Some("malformed"));

    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_decision_records_produced",
            &[]
        ),
        3.0
    );
    // The end-to-end latency carries Jira's own tags (the integration's `latency_tags`).
    let latency = metrics
        .lines()
        .find(|l| {
            l.starts_with("case_case_third_party_reader_end_to_end_latency") && !l.starts_with('#')
        })
        .unwrap_or_else(|| panic!("no latency metric: {metrics}"));
    assert!(
        latency.contains("jira_account_id=\"acme.atlassian.net\"")
            && latency.contains("jira_project_id=\"10000\""),
        "{latency}"
    );
    // `why` finds an item's decisions in the topic, by key or id, on its site.
    let config = env.world.dir.join("reader.toml");
    let why = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_jira-reader"))
            .arg("--config")
            .arg(&config)
            .arg("why")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = why(&["PROJ-10002", "--site", "ACME.atlassian.net"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("applied") && out.contains(CASE_10002), "{out}");
    assert!(out.contains(&format!("{TOPIC}:0:0")), "{out}");
    let (code, out) = why(&["77777"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("filtered (no_corresponding_case)"), "{out}");
    let (code, out) = why(&["PROJ-10002", "--site", "other.atlassian.net"]);
    assert_eq!(code, Some(1), "another site's item is another item: {out}");

    // The info line of each decision names the item, the case and the message.
    let log = env.log("reader");
    let line = log
        .lines()
        .find(|l| l.contains("changelog processed"))
        .unwrap();
    for needle in [
        "\"third_party_key\":\"PROJ-10002\"",
        &format!("\"case_id\":\"{CASE_10002}\""),
        &format!("\"position\":\"{TOPIC}:0:0\""),
        "\"decision\":\"applied\"",
    ] {
        assert!(line.contains(needle), "{needle} missing: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decisions_topic_that_cannot_be_written_costs_records_never_changes() {
    let env = Env::start().await;
    // Nobody may write to the decisions topic: every record fails.
    let TestBroker::Embedded(kafka) = &env.world.kafka else {
        unreachable!("the embedded broker")
    };
    kafka
        .topic_error(
            DECISIONS,
            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
    let reader = env
        .reader(
            "reader",
            &format!("topic = \"{DECISIONS}\"\ndelivery_timeout_ms = 1000"),
        )
        .await;
    env.produce_three().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let dropped = loop {
        let metrics = reader.metrics().await.unwrap();
        let dropped = metric_sum(
            &metrics,
            "dd_case_third_party_reader_decision_records_dropped",
            &[],
        );
        if dropped >= 3.0 || Instant::now() > deadline {
            break dropped;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        dropped,
        3.0,
        "{}\n{}",
        reader.metrics().await.unwrap(),
        env.log("reader")
    );
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[]
        ),
        1.0,
        "the change was applied all the same"
    );
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
}
