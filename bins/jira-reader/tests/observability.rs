//! What an on-call reads, end to end, from the real `jira-reader` on librdkafka's mock cluster:
//! the DogStatsD datagrams of a full scenario (names, types, tags, the latency's Jira tags; every
//! metric the alerts are written on, `telemetry::ALERTED`), the
//! consumer-lag gauges rising behind a slow Case API and falling back to 0, `retries` counted
//! once when the reader exits on exhausted retries (after each `retry_attempts`), and `/live`
//! failing on a fatal Kafka client error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use case_api::pb::sandbox::v1::sandbox_admin_client::SandboxAdminClient;
use case_api::pb::sandbox::v1::{InjectFaultRequest, SetLatencyRequest};
use common::env::World;
use common::{GROUP, TOPIC, issue_updated, item};
use reader_runtime::testkit::{
    ReaderProcess, TestBroker, free_port, http_get, metric_sum, produce, producer, wait_caught_up,
};
use serde_json::{Value, json};
use thirdparty_core::telemetry;

const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z

/// One DogStatsD line: `name:value|type|#tag:value,...`.
#[derive(Debug, Clone)]
struct Line {
    name: String,
    value: f64,
    kind: String,
    tags: BTreeMap<String, String>,
}

fn parse_line(line: &str) -> Option<Line> {
    let (name, rest) = line.split_once(':')?;
    let mut parts = rest.split('|');
    let value = parts.next()?.parse().ok()?;
    let kind = parts.next()?.to_owned();
    let mut tags = BTreeMap::new();
    for part in parts {
        if let Some(list) = part.strip_prefix('#') {
            for tag in list.split(',') {
                let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
                tags.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    Some(Line {
        name: name.to_owned(),
        value,
        kind,
        tags,
    })
}

struct Env {
    world: World,
    statsd: UdpSocket,
    lines: Vec<Line>,
}

impl Env {
    async fn start(partitions: i32) -> Env {
        let world = World::start("observability", partitions).await;
        let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
        statsd
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Env {
            world,
            statsd,
            lines: Vec::new(),
        }
    }

    /// Writes a config (`endpoint`: the Case API, the sandbox's unless given) and spawns the
    /// reader; `ready`: waits for `/ready`.
    async fn reader(
        &self,
        name: &str,
        endpoint: Option<&str>,
        ready: bool,
    ) -> (ReaderProcess, SocketAddr) {
        let mut config = self
            .world
            .reader_config()
            .property("heartbeat.interval.ms", "300")
            .property("statistics.interval.ms", "200")
            .retry(2, 20, 50)
            .statsd(self.statsd.local_addr().unwrap().port());
        if let Some(endpoint) = endpoint {
            config = config.endpoint(endpoint);
        }
        if ready {
            config.spawn_ready(name).await
        } else {
            config.spawn(name)
        }
    }

    fn log(&self, name: &str) -> String {
        self.world.log(name)
    }

    /// Reads datagrams until `done` holds for everything read so far, or `timeout`.
    fn read_until(&mut self, timeout: Duration, done: impl Fn(&[Line]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        while !done(&self.lines) {
            if Instant::now() > deadline {
                return false;
            }
            let Ok(n) = self.statsd.recv(&mut buf) else {
                continue;
            };
            let datagram = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(n <= 1432, "a datagram of {n} bytes: {datagram}");
            for line in datagram.lines().filter(|l| !l.is_empty()) {
                let parsed = parse_line(line).unwrap_or_else(|| panic!("not DogStatsD: {line}"));
                self.lines.push(parsed);
            }
        }
        true
    }

    async fn produce(&self, values: &[Vec<u8>]) {
        let p = producer(&self.world.kafka.bootstrap()).unwrap();
        for value in values {
            produce(&p, TOPIC, Some(0), "k", value).await.unwrap();
        }
    }
}

/// Lines named `name` whose tags include every `(key, value)` of `tags`.
fn find<'a>(lines: &'a [Line], name: &str, tags: &[(&str, &str)]) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| l.name == name)
        .filter(|l| {
            tags.iter()
                .all(|(k, v)| l.tags.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

fn count(lines: &[Line], name: &str, tags: &[(&str, &str)]) -> f64 {
    find(lines, name, tags)
        .iter()
        .inspect(|l| assert_eq!(l.kind, "c", "{l:?}"))
        .map(|l| l.value)
        .sum()
}

fn status_change(issue: &str, ts: i64) -> Vec<u8> {
    issue_updated(
        issue,
        ts,
        json!([item(
            "status",
            Some("1"),
            Some("To Do"),
            Some("3"),
            Some("In Progress")
        )]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dogstatsd_carries_every_metric_of_a_scenario_with_its_type_and_tags() {
    let mut env = Env::start(1).await;
    let (reader, _) = env.reader("scenario", None, true).await;
    // The first write is refused as invalid: that change is rejected, the next one applied.
    SandboxAdminClient::connect(env.world.sandbox.endpoint())
        .await
        .unwrap()
        .inject_fault(InjectFaultRequest {
            method: "UpdateCase".into(),
            code: 3,
            count: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut unsupported: Value = serde_json::from_slice(&status_change("10002", T0)).unwrap();
    unsupported["webhook"]["webhookEvent"] = json!("worklog_updated");
    env.produce(&[
        status_change("10002", T0 - 1),
        status_change("10002", T0),
        status_change("77777", T0),
        b"{not json".to_vec(),
        br#"{"integration": "jira", "webhook": {}}"#.to_vec(),
        serde_json::to_vec(&unsupported).unwrap(),
    ])
    .await;
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let flavor = ("flavor", "jira");
    let filtered = telemetry::filtered_metric_name("jira");
    let seen = env.read_until(Duration::from_secs(20), |lines| {
        [
            telemetry::CHANGELOG_PROCESSED,
            telemetry::END_TO_END_LATENCY,
            telemetry::CHANGELOG_REJECTED,
            filtered.as_str(),
            telemetry::DISCARDED,
            telemetry::KAFKA_DECODE_ERROR,
        ]
        .iter()
        .all(|name| !find(lines, name, &[]).is_empty())
            && find(lines, telemetry::DECODING_FAILED, &[]).len() >= 2
            && !find(lines, telemetry::CONSUMER_LAG, &[("partition", "0")]).is_empty()
            && !find(
                lines,
                telemetry::CONSUMER_LAG_SECONDS,
                &[("partition", "0")],
            )
            .is_empty()
    });
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
    let lines = &env.lines;
    assert!(seen, "missing metrics; got {lines:#?}");

    // Every metric the alerts and the SLO are written on (`deploy/observability/`) is emitted
    // (`retries`, counted on an exit, by `retries_counts_the_exit_once_after_each_retry_attempt`).
    for name in telemetry::ALERTED
        .iter()
        .filter(|n| **n != telemetry::RETRIES)
    {
        assert!(!find(lines, name, &[]).is_empty(), "{name} never sent");
    }
    assert_eq!(
        count(
            lines,
            telemetry::CHANGELOG_REJECTED,
            &[
                flavor,
                ("changelog_type", "update_status"),
                ("error", "invalid_argument")
            ]
        ),
        1.0
    );
    let applied = [
        flavor,
        ("org_id", "123456"),
        ("changelog_type", "update_status"),
    ];
    assert_eq!(count(lines, telemetry::CHANGELOG_PROCESSED, &applied), 1.0);
    assert_eq!(
        count(
            lines,
            &filtered,
            &[
                flavor,
                ("org_id", "123456"),
                ("reason", "no_corresponding_case"),
                ("changelog_type", "update_status")
            ]
        ),
        1.0
    );
    // Parse and shape failures are both `decoding_failed`; only the parse half is the Kafka
    // consumer's decode error; an unsupported event type is discarded, not failed.
    assert_eq!(
        count(
            lines,
            telemetry::DECODING_FAILED,
            &[flavor, ("error", "malformed")]
        ),
        1.0
    );
    assert_eq!(
        count(
            lines,
            telemetry::DECODING_FAILED,
            &[flavor, ("error", "invalid")]
        ),
        1.0
    );
    assert_eq!(count(lines, telemetry::DECODING_FAILED, &[]), 2.0);
    assert_eq!(
        count(
            lines,
            telemetry::KAFKA_DECODE_ERROR,
            &[flavor, ("error", "malformed")]
        ),
        1.0
    );
    assert_eq!(count(lines, telemetry::KAFKA_DECODE_ERROR, &[]), 1.0);
    assert_eq!(
        count(
            lines,
            telemetry::DISCARDED,
            &[flavor, ("error", "unsupported_event")]
        ),
        1.0
    );
    assert_eq!(count(lines, telemetry::RETRIES, &[]), 0.0);

    // The latency is a distribution, with the integration's own tags.
    let latency = find(lines, telemetry::END_TO_END_LATENCY, &[]);
    assert_eq!(latency.len(), 1, "{latency:?}");
    assert_eq!(latency[0].kind, "d");
    for (k, v) in applied.iter().copied().chain([
        ("jira_account_id", "acme.atlassian.net"),
        ("jira_project_id", "10000"),
    ]) {
        assert_eq!(
            latency[0].tags.get(k).map(String::as_str),
            Some(v),
            "{latency:?}"
        );
    }
    assert!(latency[0].value > 0.0);

    // The lag gauges, per topic and partition.
    for name in [telemetry::CONSUMER_LAG, telemetry::CONSUMER_LAG_SECONDS] {
        let gauges = find(lines, name, &[flavor, ("topic", TOPIC), ("partition", "0")]);
        assert!(!gauges.is_empty(), "{name}");
        assert!(gauges.iter().all(|l| l.kind == "g"), "{gauges:?}");
    }
    // And the same on /metrics.
    let labels = [("topic", TOPIC), ("partition", "0"), ("flavor", "jira")];
    assert!(metrics.contains("dd_case_kafka_consumer_lag{"), "{metrics}");
    assert!(
        metrics.contains("dd_case_kafka_consumer_lag_seconds{"),
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_kafka_consumer_lag_seconds", &labels),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_rises_behind_a_slow_case_api_and_falls_back_to_zero() {
    let mut env = Env::start(1).await;
    let (reader, _) = env.reader("lag", None, true).await;
    let mut admin = SandboxAdminClient::connect(env.world.sandbox.endpoint())
        .await
        .unwrap();
    admin
        .set_latency(SetLatencyRequest {
            method: "*".into(),
            millis: 40,
        })
        .await
        .unwrap();
    // Produced now, so their timestamps are now: the oldest unhandled one ages while it waits.
    let values: Vec<Vec<u8>> = (0..40).map(|i| status_change("10002", T0 + i)).collect();
    env.produce(&values).await;
    let labels = [("flavor", "jira"), ("topic", TOPIC), ("partition", "0")];
    let behind = env.read_until(Duration::from_secs(30), |lines| {
        find(lines, telemetry::CONSUMER_LAG, &labels)
            .iter()
            .any(|l| l.value >= 10.0)
            && find(lines, telemetry::CONSUMER_LAG_SECONDS, &labels)
                .iter()
                .any(|l| l.value >= 0.5)
    });
    assert!(behind, "{:#?}", env.lines);
    let scraped = reader.metrics().await.unwrap();
    assert!(
        metric_sum(&scraped, "dd_case_kafka_consumer_lag", &labels) > 0.0,
        "{scraped}"
    );
    admin
        .set_latency(SetLatencyRequest {
            method: "*".into(),
            millis: 0,
        })
        .await
        .unwrap();
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    env.lines.clear();
    let caught_up = env.read_until(Duration::from_secs(10), |lines| {
        let last = |name| find(lines, name, &labels).last().map(|l| l.value);
        last(telemetry::CONSUMER_LAG) == Some(0.0)
            && last(telemetry::CONSUMER_LAG_SECONDS) == Some(0.0)
    });
    let scraped = reader.metrics().await.unwrap();
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
    assert!(caught_up, "{:#?}", env.lines);
    assert_eq!(
        metric_sum(&scraped, "dd_case_kafka_consumer_lag", &labels),
        0.0,
        "{scraped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_counts_the_exit_once_after_each_retry_attempt() {
    let mut env = Env::start(1).await;
    // Nothing listens there: every call is UNAVAILABLE.
    let down = format!("http://127.0.0.1:{}", free_port());
    env.produce(&[status_change("10002", T0)]).await;
    let (reader, _) = env.reader("down", Some(&down), false).await;
    let code = reader.wait_exit(Duration::from_secs(60)).await.unwrap();
    assert_eq!(code, Some(3), "{}", env.log("down"));
    // Sent before the process ended: nothing more arrives.
    env.read_until(Duration::from_secs(2), |_| false);
    let lines = &env.lines;
    assert_eq!(
        count(
            lines,
            telemetry::RETRY_ATTEMPTS,
            &[("flavor", "jira"), ("error", "unavailable")]
        ),
        2.0,
        "{lines:#?}"
    );
    assert_eq!(
        count(
            lines,
            telemetry::RETRIES,
            &[("flavor", "jira"), ("error", "unavailable")]
        ),
        1.0,
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_kafka_client_error_fails_live() {
    let env = Env::start(1).await;
    let (reader, health) = env.reader("fenced", None, true).await;
    assert_eq!(http_get(health, "/live").await.unwrap().0, 200);
    // Another member with our `group.instance.id` took over: librdkafka makes it fatal.
    let TestBroker::Embedded(kafka) = &env.world.kafka else {
        unreachable!("an embedded broker");
    };
    kafka.request_errors(
        rdkafka::types::RDKafkaApiKey::Heartbeat,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID; 20],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = http_get(health, "/live").await.unwrap();
        if status != 200 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    reader.kill().await.unwrap();
    assert_eq!(status, 503, "{body}\n{}", env.log("fenced"));
    assert!(body.contains("kafka client fatal error"), "{body}");
    assert!(
        body.contains("FENCED") || body.contains("Fenced") || body.contains("fenced"),
        "{body}"
    );
}
