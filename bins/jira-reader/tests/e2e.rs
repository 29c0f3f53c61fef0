//! End to end: the real `jira-reader` binary consumes, decides and applies, against the sandbox
//! Case API over gRPC and a Kafka broker. Every scenario runs twice: on the embedded broker
//! (librdkafka's mock cluster over loopback TCP, in the default test run) and on Tansu, a real
//! Kafka-compatible broker (`cargo xtask e2e`, which installs Tansu and runs the ignored tests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use common::env::{Broker, ReaderConfig, World};
use common::{
    CASE_10002, GROUP, TOPIC, comment_created, issue_updated, item, to_do_to_in_progress,
};
use reader_runtime::testkit::{
    ReaderProcess, group_progress, http_get, metric_sum, produce, producer, wait_caught_up,
};
use serde_json::{Value, json};
use thirdparty_core::CaseApi;

struct Env {
    world: World,
    /// Where the readers send DogStatsD packets.
    statsd: std::net::UdpSocket,
}

impl Env {
    async fn start(broker: Broker, partitions: i32) -> Env {
        let world = World::builder("e2e")
            .broker(broker)
            .partitions(partitions)
            .start()
            .await;
        let statsd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        statsd
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Env { world, statsd }
    }

    /// A reader config with `retries` retries and the skip list `skip`.
    fn config(&self, retries: u32, skip: &[&str]) -> ReaderConfig {
        let skip: Vec<String> = skip.iter().map(|s| format!("{s:?}")).collect();
        self.world
            .reader_config()
            .retry(retries, 20, 100)
            .statsd(self.statsd.local_addr().unwrap().port())
            .section(format!("[skip]\nmessages = [{}]", skip.join(", ")))
    }

    /// Starts the reader `name` and waits for it to be ready; returns it and its config's path.
    async fn reader(&self, name: &str, retries: u32, skip: &[&str]) -> (ReaderProcess, PathBuf) {
        let (reader, _) = self.config(retries, skip).spawn_ready(name).await;
        (reader, self.world.path(&format!("{name}.toml")))
    }

    async fn api(&self) -> GrpcCaseApi {
        GrpcCaseApi::connect(&GrpcCaseApiConfig::new(self.world.sandbox.endpoint()))
            .await
            .unwrap()
    }
}

async fn applies_filters_and_acks_undecodable_messages(broker: Broker) {
    let env = Env::start(broker, 2).await;
    let (reader, _) = env.reader("main", 3, &[]).await;
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let t0 = 1_717_236_000_000; // 2024-06-01T10:00:00Z
    let messages = [
        issue_updated("10002", t0, json!([to_do_to_in_progress()])),
        issue_updated(
            "10002",
            t0 + 1,
            json!([item(
                "summary",
                None,
                Some("old"),
                None,
                Some("Checkout p99 above SLO")
            )]),
        ),
        issue_updated(
            "10002",
            t0 + 2,
            json!([item(
                "priority",
                Some("4"),
                Some("Low"),
                Some("1"),
                Some("Highest")
            )]),
        ),
        comment_created("10002", "20001", t0 + 3, "Rolled back the cache config."),
        b"{\"orgId\": 123456, \"webhook\": ".to_vec(),
        issue_updated(
            "99999",
            t0 + 4,
            json!([item("summary", None, None, None, Some("x"))]),
        ),
    ];
    for m in &messages {
        produce(&p, TOPIC, Some(0), "PROJ-12", m).await.unwrap();
    }
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let api = env.api().await;
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_eq!(case.status, "IN_PROGRESS");
    assert_eq!(case.title, "Checkout p99 above SLO");
    assert_eq!(
        case.priority.as_deref(),
        Some("P2"),
        "priority from P4 conflicts with P2"
    );
    assert_eq!(case.version, 3, "two writes on version 1");
    let comments = api.list_comments(123456, CASE_10002).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, "Rolled back the cache config.");

    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[]
        ),
        3.0
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_jira_filtered",
            &[("reason", "state_conflict")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_jira_filtered",
            &[("reason", "no_corresponding_case")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_decoding_failed", &[]),
        1.0
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_kafka_consumer_decode_error", &[]),
        1.0
    );

    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
}

async fn exhausted_retries_exit_non_zero_without_storing_the_offset_and_a_restart_applies_once(
    broker: Broker,
) {
    let env = Env::start(broker, 1).await;
    env.world
        .sandbox
        .faults()
        .inject("UpdateCase", tonic::Code::Unavailable, 1_000, "down");
    let (reader, config) = env.reader("crash", 2, &[]).await;
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let t0 = 1_717_236_000_000;
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &comment_created("10002", "30001", t0, "before the outage"),
    )
    .await
    .unwrap();
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &issue_updated("10002", t0 + 1, json!([to_do_to_in_progress()])),
    )
    .await
    .unwrap();
    let code = reader.wait_exit(Duration::from_secs(60)).await.unwrap();
    assert_eq!(code, Some(3), "crash-on-retry exit code");
    // Only the comment's offset (0) was stored: the committed position is 1, not 2.
    let progress = group_progress(&env.world.kafka.bootstrap(), GROUP, TOPIC)
        .await
        .unwrap();
    assert_eq!(progress[&0], (1, 2), "{progress:?}");

    env.world.sandbox.faults().clear();
    let log = env.world.dir.join("restart.log");
    let health = first_health(&config);
    let mut again = ReaderProcess::spawn(
        env!("CARGO_BIN_EXE_jira-reader").as_ref(),
        &config,
        health,
        &log,
    )
    .unwrap();
    again.wait_ready(Duration::from_secs(30)).await.unwrap();
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let api = env.api().await;
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_eq!((case.status.as_str(), case.version), ("IN_PROGRESS", 2));
    assert_eq!(
        api.list_comments(123456, CASE_10002).await.unwrap().len(),
        1
    );
    assert_eq!(
        again.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
}

async fn a_poisoned_message_stalls_only_its_partition_until_the_skip_list_names_it(broker: Broker) {
    let env = Env::start(broker, 2).await;
    env.world
        .sandbox
        .faults()
        .inject("UpdateCase", tonic::Code::Unavailable, 100_000, "poison");
    let (reader, config) = env.reader("poison", 100_000, &[]).await;
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let t0 = 1_717_236_000_000;
    let (_, poison_offset) = produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &issue_updated(
            "10002",
            t0,
            json!([item("summary", None, None, None, Some("poison"))]),
        ),
    )
    .await
    .unwrap();
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &comment_created("10002", "40001", t0 + 1, "after the poison"),
    )
    .await
    .unwrap();
    produce(
        &p,
        TOPIC,
        Some(1),
        "k",
        &comment_created("10002", "40002", t0 + 2, "other partition"),
    )
    .await
    .unwrap();

    let api = env.api().await;
    // The other partition is not blocked.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let comments = api.list_comments(123456, CASE_10002).await.unwrap();
        if comments.iter().any(|c| c.body == "other partition") {
            assert!(
                !comments.iter().any(|c| c.body == "after the poison"),
                "partition 0 went past the poison"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "partition 1 stalled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The operator names the message; the running reader picks it up without a restart.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "messages = []",
        &format!("messages = [\"{TOPIC}:0:{poison_offset}\"]"),
    );
    std::fs::write(&config, text).unwrap();
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let comments = api.list_comments(123456, CASE_10002).await.unwrap();
    assert!(comments.iter().any(|c| c.body == "after the poison"));
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_ne!(case.title, "poison");
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(&metrics, "dd_case_kafka_consumer_message_skipped", &[]),
        1.0
    );
    assert!(metric_sum(&metrics, "dd_case_third_party_reader_retry_attempts", &[]) >= 1.0);
    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
}

/// The Case API commits a field update and a comment but their replies are lost (UNAVAILABLE
/// after the commit): the reader retries each message, recognizes its own write on the second
/// attempt (`duplicate_event`: the re-read case carries the change's watermark and change key;
/// the comment's idempotency key finds the first one) and applies each exactly once.
async fn a_reply_lost_after_the_commit_is_retried_and_applied_once(broker: Broker) {
    let env = Env::start(broker, 1).await;
    for method in ["UpdateCase", "CreateComment"] {
        env.world
            .sandbox
            .faults()
            .lose_replies(method, tonic::Code::Unavailable, 1, "reply lost");
    }
    let log = env.world.path("lost-replies.log");
    let (mut reader, _) = env.config(3, &[]).spawn_with_env(
        "lost-replies",
        &[("RUST_LOG", "info,message_outcome=debug")],
    );
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let t0 = 1_717_236_000_000;
    let status = issue_updated("10002", t0, json!([to_do_to_in_progress()]));
    let comment = comment_created("10002", "80001", t0 + 1, "Committed, reply lost.");
    for m in [&status, &comment] {
        produce(&p, TOPIC, Some(0), "PROJ-12", m).await.unwrap();
    }
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    // Each write happened exactly once, nothing is lost.
    let api = env.api().await;
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_eq!(
        (case.status.as_str(), case.version),
        ("IN_PROGRESS", 2),
        "one write on version 1"
    );
    let comments = api.list_comments(123456, CASE_10002).await.unwrap();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].body, "Committed, reply lost.");
    let faults = env.world.sandbox.faults();
    assert_eq!(
        (
            faults.lost_replies("UpdateCase"),
            faults.lost_replies("CreateComment")
        ),
        (1, 1)
    );
    // The retried field change is dropped before the write (its watermark), the retried
    // comment is answered by the existing one.
    assert_eq!(faults.calls("UpdateCase"), 1);
    assert_eq!(faults.calls("CreateComment"), 2);

    // The reader retried each message once, and the second attempt's decision was
    // `duplicate_event` for both.
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_retry_attempts", &[]),
        2.0
    );
    for changelog_type in ["update_status", "create_comment"] {
        assert_eq!(
            metric_sum(
                &metrics,
                "dd_case_third_party_reader_jira_filtered",
                &[
                    ("reason", "duplicate_event"),
                    ("changelog_type", changelog_type)
                ]
            ),
            1.0,
            "{changelog_type}"
        );
    }
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[]
        ),
        0.0,
        "the attempts that wrote never got to record it"
    );
    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let retries = lines
        .iter()
        .filter(|l| l["message"] == "retryable error")
        .count();
    let outcomes: Vec<(i64, &str)> = lines
        .iter()
        .filter(|l| l["target"] == "message_outcome")
        .map(|l| {
            (
                l["offset"].as_i64().unwrap(),
                l["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(retries, 2, "one retry per message");
    assert_eq!(
        outcomes,
        [
            (0, "filtered:duplicate_event"),
            (1, "filtered:duplicate_event")
        ],
        "one outcome per message, from its second attempt"
    );
}

/// Waits until the reader's `/ready` reports at least one assigned partition.
async fn wait_for_partitions(reader: &ReaderProcess) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, body)) = http_get(reader.health, "/ready").await {
            let count: usize = body
                .trim()
                .strip_prefix("ok: ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if count > 0 {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no partition was assigned to the new member"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_third_reader_joining_mid_stream_loses_nothing_and_applies_nothing_twice(broker: Broker) {
    const N: usize = 600;
    let env = Env::start(broker, 4).await;
    let (first, _) = env.reader("member-1", 3, &[]).await;
    let (second, _) = env.reader("member-2", 3, &[]).await;
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let t0 = 1_717_236_000_000;
    let mut third = None;
    for i in 0..N {
        let message = comment_created(
            "10002",
            &format!("5{i:05}"),
            t0 + i as i64,
            &format!("comment {i}"),
        );
        produce(&p, TOPIC, Some((i % 4) as i32), "k", &message)
            .await
            .unwrap();
        if i == N / 3 {
            let joined = env.reader("member-3", 3, &[]).await.0;
            wait_for_partitions(&joined).await;
            third = Some(joined);
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    let third = third.unwrap();
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(90),
    )
    .await
    .unwrap();

    let api = env.api().await;
    let comments = api.list_comments(123456, CASE_10002).await.unwrap();
    assert_eq!(comments.len(), N, "every comment exactly once");
    let mut processed = 0.0;
    let mut replays = 0.0;
    let mut members_that_worked = 0;
    for reader in [&first, &second, &third] {
        let metrics = reader.metrics().await.unwrap();
        let n = metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[],
        );
        processed += n;
        members_that_worked += usize::from(n > 0.0);
        replays += metric_sum(
            &metrics,
            "dd_case_third_party_reader_jira_filtered",
            &[("reason", "duplicate_event")],
        );
    }
    assert_eq!(
        processed, N as f64,
        "each message applied once across the group"
    );
    match broker {
        // A coordinator that follows the cooperative protocol never gives a partition to a new
        // member before its old owner revoked it (after draining and committing).
        Broker::Embedded => assert_eq!(replays, 0.0, "no message handled twice across rebalances"),
        // Tansu 0.6 completes a rebalance before every member has rejoined, so for a few
        // seconds two members own a partition: the replays are recognized and not applied.
        Broker::Tansu => eprintln!("tansu: {replays} messages handled twice, none applied twice"),
    }
    assert_eq!(
        members_that_worked, 3,
        "the joining member took partitions over mid-stream"
    );
    for reader in [first, second, third] {
        assert_eq!(
            reader.terminate(Duration::from_secs(30)).await.unwrap(),
            Some(0)
        );
    }
}

/// A producer compressing with `codec` (librdkafka's `compression.type`).
fn compressing_producer(bootstrap: &str, codec: &str) -> rdkafka::producer::FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "10000")
        .set("compression.type", codec)
        .set("linger.ms", "0")
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_compressed_with_each_codec_are_read() {
    let env = Env::start(Broker::Embedded, 1).await;
    let (reader, _) = env.reader("compressed", 0, &[]).await;
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    for (i, codec) in codecs.iter().enumerate() {
        let p = compressing_producer(&env.world.kafka.bootstrap(), codec);
        // A body long and repetitive enough that each codec actually compresses it.
        let body = format!("[{codec}] {}", "the VPN drops every 5 minutes. ".repeat(40));
        let comment_id = (30_000 + i).to_string();
        let message = comment_created("10002", &comment_id, 1_717_236_000_000, &body);
        produce(&p, TOPIC, Some(0), "PROJ-12", &message)
            .await
            .unwrap();
    }
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let comments = env
        .api()
        .await
        .list_comments(123456, CASE_10002)
        .await
        .unwrap();
    for codec in codecs {
        assert!(
            comments
                .iter()
                .any(|c| c.body.starts_with(&format!("[{codec}] "))),
            "the {codec} message was not applied: {comments:?}"
        );
    }
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_prints_each_decision_and_writes_nothing() {
    let env = Env::start(Broker::Embedded, 1).await;
    let config = env.config(0, &[]).write("explain");
    let message = issue_updated(
        "10002",
        1_717_236_000_000,
        json!([
            to_do_to_in_progress(),
            item(
                "priority",
                Some("4"),
                Some("Low"),
                Some("1"),
                Some("Highest")
            ),
            item(
                "status",
                Some("10000"),
                Some("To Do"),
                Some("77"),
                Some("Unmapped")
            ),
        ]),
    );
    let file = env.world.dir.join("message.json");
    std::fs::write(&file, &message).unwrap();
    let before = env.api().await.get_case(123456, CASE_10002).await.unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_jira-reader"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "explain",
            file.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<(&str, Option<&str>)> = lines
        .iter()
        .map(|l| (l["decision"].as_str().unwrap(), l["reason"].as_str()))
        .collect();
    assert_eq!(
        decisions,
        [
            ("would_apply", None),
            ("filtered", Some("state_conflict")),
            ("filtered", Some("field_value_not_mapped"))
        ]
    );
    assert_eq!(lines[0]["changelog"]["changelog_type"], "update_status");
    // The case found and the settings that decided it.
    assert_eq!(lines[0]["case"]["id"], CASE_10002);
    assert_eq!(lines[0]["item"]["key"], "PROJ-10002");
    assert_eq!(lines[0]["settings"]["field"], "status");
    assert_eq!(lines[0]["settings"]["value_mapping"]["3"], "IN_PROGRESS");
    assert_eq!(lines[1]["settings"]["field"], "priority");
    assert!(
        lines[1]["settings"]["conflict_policy"].is_string(),
        "{}",
        lines[1]
    );
    let after = env.api().await.get_case(123456, CASE_10002).await.unwrap();
    assert_eq!(before, after, "explain wrote nothing");
}

async fn a_reader_killed_mid_stream_and_restarted_applies_every_effect_once(broker: Broker) {
    const N: usize = 300;
    let env = Env::start(broker, 2).await;
    let (first, config) = env.reader("killed", 3, &[]).await;
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let t0 = 1_717_236_000_000;
    for i in 0..N {
        let message = comment_created(
            "10002",
            &format!("6{i:05}"),
            t0 + i as i64,
            &format!("kill {i}"),
        );
        produce(&p, TOPIC, Some((i % 2) as i32), "k", &message)
            .await
            .unwrap();
    }
    // Kill it with SIGKILL once it is part-way through.
    let api = env.api().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while api.list_comments(123456, CASE_10002).await.unwrap().len() < N / 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().await.unwrap();
    let at_kill = api.list_comments(123456, CASE_10002).await.unwrap().len();
    let health = first_health(&config);
    let mut second = ReaderProcess::spawn(
        env!("CARGO_BIN_EXE_jira-reader").as_ref(),
        &config,
        health,
        &env.world.dir.join("restarted.log"),
    )
    .unwrap();
    second.wait_ready(Duration::from_secs(60)).await.unwrap();
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    let comments = api.list_comments(123456, CASE_10002).await.unwrap();
    let mut keys: Vec<&str> = comments
        .iter()
        .map(|c| c.idempotency_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(
        comments.len(),
        N,
        "every comment once ({at_kill} before the kill)"
    );
    assert_eq!(keys.len(), N);
    assert_eq!(
        second.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
}

/// The health address written in a reader config.
fn first_health(config: &std::path::Path) -> std::net::SocketAddr {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text.lines().find(|l| l.starts_with("listen")).unwrap();
    line.split('"').nth(1).unwrap().parse().unwrap()
}

/// Every scenario, once per broker.
macro_rules! scenarios {
    ($broker:expr $(, #[$attr:meta])?) => {
        use super::*;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])?
        async fn applies_filters_and_acks_undecodable_messages() {
            super::applies_filters_and_acks_undecodable_messages($broker).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])?
        async fn exhausted_retries_exit_non_zero_without_storing_the_offset() {
            super::exhausted_retries_exit_non_zero_without_storing_the_offset_and_a_restart_applies_once($broker).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])?
        async fn a_poisoned_message_stalls_its_partition_until_skipped() {
            super::a_poisoned_message_stalls_only_its_partition_until_the_skip_list_names_it($broker).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])?
        async fn a_reply_lost_after_the_commit_is_retried_and_applied_once() {
            super::a_reply_lost_after_the_commit_is_retried_and_applied_once($broker).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])?
        async fn a_third_reader_joining_mid_stream() {
            super::a_third_reader_joining_mid_stream_loses_nothing_and_applies_nothing_twice($broker).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])?
        async fn a_reader_killed_mid_stream_and_restarted() {
            super::a_reader_killed_mid_stream_and_restarted_applies_every_effect_once($broker).await;
        }
    };
}

mod embedded {
    scenarios!(Broker::Embedded);
}

mod tansu {
    scenarios!(Broker::Tansu, #[ignore = "needs Tansu: run `cargo xtask e2e`"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_decides_but_writes_nothing_and_commits_nothing() {
    let env = Env::start(Broker::Embedded, 1).await;
    let config = env.config(0, &[]);
    let health = config.health();
    let config = config.write("dry");
    let log = env.world.path("dry.log");
    let mut reader = ReaderProcess::spawn_with(
        env!("CARGO_BIN_EXE_jira-reader").as_ref(),
        &config,
        &["--dry-run"],
        health,
        &log,
    )
    .unwrap();
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let before = env.api().await.get_case(123456, CASE_10002).await.unwrap();
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let t0 = 1_717_236_000_000;
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &issue_updated("10002", t0, json!([to_do_to_in_progress()])),
    )
    .await
    .unwrap();
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &comment_created("10002", "70001", t0 + 1, "dry"),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&log)
        .unwrap()
        .matches("changelog would apply (dry run)")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the dry run decided nothing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.api().await.get_case(123456, CASE_10002).await.unwrap(),
        before
    );
    assert!(
        env.api()
            .await
            .list_comments(123456, CASE_10002)
            .await
            .unwrap()
            .is_empty()
    );
    for group in [GROUP, "case-management-dry-run"] {
        let progress = group_progress(&env.world.kafka.bootstrap(), group, TOPIC)
            .await
            .unwrap();
        assert_eq!(progress[&0].0, 0, "{group} committed {progress:?}");
    }
    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
}
