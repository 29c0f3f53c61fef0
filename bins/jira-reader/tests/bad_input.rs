//! The bad-input corpus, end to end: the real `jira-reader` binary on the embedded broker (and on
//! Tansu, through `cargo xtask e2e`) reads truncated JSON, wrong types, oversized bodies (10 MB on
//! Tansu), 10,000-deep nesting, invalid UTF-8, unknown events, missing ids and duplicate keys on
//! one partition. Each one is counted as a decoding failure
//! (skip class) or discarded with its reason (discard class) and acknowledged; a valid message
//! after them on the same partition is applied; the reader's peak RSS stays bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use common::env::{Broker, World, demo_sandbox};
use common::{CASE_10002, GROUP, PRIYA, TOPIC};
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use reader_runtime::testkit::{
    group_progress, metric_by_label, metric_sum, produce, wait_caught_up,
};
use serde_json::{Value, json};
use thirdparty_core::CaseApi;

/// The bound on the reader's peak RSS (`VmHWM`) over the whole corpus, 10 MB body included.
const PEAK_RSS_BOUND_MIB: f64 = 64.0;

/// A valid `jira:issue_updated` envelope for issue 10002 (case `CASE_10002`).
fn status_update(ts_ms: i64) -> Value {
    json!({
        "orgId": 123456, "integration": "jira", "jiraAccountId": "acme.atlassian.net",
        "receivedAt": "2024-06-01T10:00:00Z",
        "webhook": {
            "timestamp": ts_ms, "webhookEvent": "jira:issue_updated",
            "user": {"accountId": PRIYA, "displayName": "Priya Natarajan"},
            "issue": {"id": "10002", "key": "PROJ-12", "fields": {
                "project": {"id": "10000", "key": "PROJ"}, "issuetype": {"id": "10001", "name": "Bug"}}},
            "changelog": {"id": format!("{ts_ms}"), "items": [
                {"field": "status", "fieldtype": "jira", "fieldId": "status",
                 "from": "10000", "fromString": "To Do", "to": "3", "toString": "In Progress"}]}
        }
    })
}

/// Above `integration_jira::DEFAULT_MAX_PAYLOAD_BYTES` (4 MiB), below the mock cluster's 5 MiB.
const BIG: usize = 4 * 1024 * 1024 + 512 * 1024;
/// 10 MB, for a broker that keeps it (Tansu).
const TEN_MB: usize = 10 * 1024 * 1024;

/// A valid envelope whose comment body makes it `size` bytes long or a little more.
fn comment_of_size(size: usize) -> Vec<u8> {
    let mut big = status_update(2);
    big["webhook"]["comment"] = json!({"id": "1", "body": "x".repeat(size)});
    serde_json::to_vec(&big).unwrap()
}

/// `size` bytes of an envelope with an unterminated string.
fn unterminated(size: usize) -> Vec<u8> {
    let mut value = br#"{"orgId": 123456, "webhook": {"webhookEvent": ""#.to_vec();
    value.resize(size, b'y');
    value
}

/// How the reader must account for one bad message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Skip class: `decoding_failed` (malformed or too large).
    Undecodable,
    /// Discard class, the wrong shape: `decoding_failed` with error `invalid`.
    WrongShape,
    /// Discard class, an event type Jira's reader does not sync: `discarded`.
    Unsupported,
}

/// The corpus: (name, value, expected outcome); its oversized bodies are `big` bytes (above
/// 5 MiB: a second one, unterminated).
fn corpus(big: usize) -> Vec<(&'static str, Vec<u8>, Expect)> {
    let valid = serde_json::to_vec(&status_update(1_717_236_000_000)).unwrap();
    let mut out = Vec::new();
    out.push(("empty value", Vec::new(), Expect::Undecodable));
    out.push((
        "truncated JSON",
        valid[..valid.len() / 2].to_vec(),
        Expect::Undecodable,
    ));
    out.push(("truncated to one byte", b"{".to_vec(), Expect::Undecodable));
    // Invalid UTF-8 inside a JSON string (0xC3 0x28 is not a valid sequence), and raw bytes.
    let mut utf8 = serde_json::to_vec(&status_update(1)).unwrap();
    let at = utf8.windows(5).position(|w| w == b"PROJ-").unwrap();
    utf8[at] = 0xC3;
    utf8[at + 1] = 0x28;
    out.push(("invalid UTF-8 in a string", utf8, Expect::Undecodable));
    out.push((
        "invalid UTF-8 bytes",
        vec![0xFF, 0xFE, 0x00, 0x80, 0xC0],
        Expect::Undecodable,
    ));
    // 10,000-deep nesting: in the webhook, and as the whole document.
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    out.push((
        "10,000-deep arrays in the webhook",
        format!(r#"{{"orgId": 123456, "integration": "jira", "webhook": {deep_array}}}"#)
            .into_bytes(),
        Expect::Undecodable,
    ));
    out.push((
        "10,000-deep objects",
        format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000)).into_bytes(),
        Expect::Undecodable,
    ));
    // A body above the decoder's 4 MiB limit. librdkafka's mock cluster keeps at most 5 MiB of
    // log per partition (it drops a message above that at once, and older segments when a new
    // message pushes the log over), so on it there is one 4.5 MiB body; Tansu takes 10 MB ones.
    out.push((
        "oversized comment body",
        comment_of_size(big),
        Expect::Undecodable,
    ));
    if big > 5 * 1024 * 1024 {
        out.push((
            "oversized unterminated document",
            unterminated(big),
            Expect::Undecodable,
        ));
    }
    // Valid JSON of the wrong shape or types.
    out.push(("a JSON array", b"[1, 2, 3]".to_vec(), Expect::WrongShape));
    out.push(("a JSON string", br#""hello""#.to_vec(), Expect::WrongShape));
    let mut wrong = status_update(3);
    wrong["orgId"] = json!("not a number");
    out.push((
        "orgId is a string",
        serde_json::to_vec(&wrong).unwrap(),
        Expect::WrongShape,
    ));
    let mut wrong = status_update(4);
    wrong["webhook"]["issue"] = json!([1, 2]);
    out.push((
        "issue is an array",
        serde_json::to_vec(&wrong).unwrap(),
        Expect::WrongShape,
    ));
    let mut wrong = status_update(5);
    wrong["webhook"]["timestamp"] = json!({"ms": 1});
    out.push((
        "timestamp is an object",
        serde_json::to_vec(&wrong).unwrap(),
        Expect::WrongShape,
    ));
    let mut wrong = status_update(6);
    wrong["webhook"]["changelog"]["items"] = json!("status");
    out.push((
        "changelog items is a string",
        serde_json::to_vec(&wrong).unwrap(),
        Expect::WrongShape,
    ));
    // Unknown events.
    let mut unknown = status_update(7);
    unknown["webhook"]["webhookEvent"] = json!("jira:worklog_updated");
    out.push((
        "unknown webhookEvent",
        serde_json::to_vec(&unknown).unwrap(),
        Expect::Unsupported,
    ));
    let mut unknown = status_update(8);
    unknown["webhook"]["webhookEvent"] = json!("");
    out.push((
        "empty webhookEvent",
        serde_json::to_vec(&unknown).unwrap(),
        Expect::Unsupported,
    ));
    // Missing ids.
    let mut missing = status_update(9);
    missing["webhook"]["issue"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    out.push((
        "missing issue id",
        serde_json::to_vec(&missing).unwrap(),
        Expect::WrongShape,
    ));
    let mut missing = status_update(10);
    missing.as_object_mut().unwrap().remove("orgId");
    out.push((
        "missing orgId",
        serde_json::to_vec(&missing).unwrap(),
        Expect::WrongShape,
    ));
    let mut missing = status_update(11);
    missing["webhook"].as_object_mut().unwrap().remove("issue");
    out.push((
        "missing issue",
        serde_json::to_vec(&missing).unwrap(),
        Expect::WrongShape,
    ));
    // Duplicate keys: the decoder keeps the last one (serde_json), so a valid value followed by
    // a bad one is judged on the bad one.
    let text = String::from_utf8(serde_json::to_vec(&status_update(12)).unwrap()).unwrap();
    out.push((
        "duplicate orgId, last a string",
        text.replacen(r#""orgId":123456"#, r#""orgId":123456,"orgId":"x""#, 1)
            .into_bytes(),
        Expect::WrongShape,
    ));
    out.push((
        "duplicate webhookEvent, last unknown",
        text.replacen(
            r#""webhookEvent":"jira:issue_updated""#,
            r#""webhookEvent":"jira:issue_updated","webhookEvent":"jira:worklog_deleted""#,
            1,
        )
        .into_bytes(),
        Expect::Unsupported,
    ));
    out
}

/// The peak RSS (`VmHWM` of `/proc/<pid>/status`) of the process `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_accounted_for_acked_and_the_partition_moves_on() {
    corpus_end_to_end(Broker::Embedded, BIG).await;
}

/// The same on Tansu, with 10 MB bodies (run by `cargo xtask e2e`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Tansu: run by `cargo xtask e2e`"]
async fn tansu_every_bad_input_is_accounted_for_acked_and_the_partition_moves_on() {
    corpus_end_to_end(Broker::Tansu, TEN_MB).await;
}

async fn corpus_end_to_end(broker: Broker, big: usize) {
    let world = World::builder("bad-input").broker(broker).start().await;
    let (kafka, sandbox) = (&world.kafka, &world.sandbox);
    let (reader, _) = world
        .reader_config()
        .retry(3, 20, 100)
        .spawn_ready("reader")
        .await;

    // The mock cluster takes messages above the 1 MB default when the producer allows them.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("message.timeout.ms", "10000")
        .set("message.max.bytes", "16000000")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let corpus = corpus(big);
    let mut last_bad = 0;
    for (name, value, _) in &corpus {
        let (partition, offset) = produce(&producer, TOPIC, Some(0), "PROJ-12", value)
            .await
            .unwrap_or_else(|e| panic!("producing {name}: {e:#}"));
        assert_eq!(partition, 0);
        last_bad = offset;
        // librdkafka's mock cluster keeps about 5 MiB of log per partition and drops older
        // segments when a new message pushes it over: each message is consumed before the next
        // is produced, so the 4.5 MiB ones are read, not truncated away.
        wait_caught_up(&kafka.bootstrap(), GROUP, TOPIC, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("after {name}: {e:#}"));
    }
    let valid = serde_json::to_vec(&status_update(1_717_236_000_000)).unwrap();
    let (_, valid_offset) = produce(&producer, TOPIC, Some(0), "PROJ-12", &valid)
        .await
        .unwrap();
    assert_eq!(valid_offset, last_bad + 1);

    wait_caught_up(&kafka.bootstrap(), GROUP, TOPIC, Duration::from_secs(60))
        .await
        .unwrap();
    let progress = group_progress(&kafka.bootstrap(), GROUP, TOPIC)
        .await
        .unwrap();
    assert_eq!(
        progress[&0],
        (valid_offset + 1, valid_offset + 1),
        "{progress:?}"
    );

    // The valid message after the corpus was applied: the partition moved on.
    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(sandbox.endpoint()))
        .await
        .unwrap();
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_eq!(case.status, "IN_PROGRESS");

    // Every bad message accounted for: unreadable and wrongly shaped ones as decoding failures,
    // unsupported event types as discarded; nothing applied but the valid one.
    let metrics = reader.metrics().await.unwrap();
    let count = |expect: Expect| corpus.iter().filter(|c| c.2 == expect).count() as f64;
    // A payload that cannot become changelogs is a decoding failure, unreadable or of the wrong
    // shape; an event type the reader does not sync is discarded.
    let undecodable = count(Expect::Undecodable) + count(Expect::WrongShape);
    let discarded = count(Expect::Unsupported);
    let log = world.log("reader");
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_decoding_failed", &[]),
        undecodable,
        "{:?}\n{log}",
        metric_by_label(
            &metrics,
            "dd_case_third_party_reader_decoding_failed",
            "error"
        )
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_discarded", &[]),
        discarded,
        "{:?}\n{log}",
        metric_by_label(&metrics, "dd_case_third_party_reader_discarded", "error")
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[]
        ),
        1.0
    );
    let too_large = metric_by_label(
        &metrics,
        "dd_case_third_party_reader_decoding_failed",
        "error",
    );
    let oversized = corpus
        .iter()
        .filter(|c| c.0.starts_with("oversized"))
        .count() as f64;
    assert_eq!(
        too_large.get("too_large"),
        Some(&oversized),
        "{too_large:?}"
    );

    let peak = peak_rss_mib(reader.id().unwrap());
    eprintln!("jira-reader peak RSS over the corpus: {peak:.1} MiB");
    assert!(
        peak < PEAK_RSS_BOUND_MIB,
        "peak RSS {peak:.1} MiB above {PEAK_RSS_BOUND_MIB} MiB"
    );
    drop(reader);
    let dir = world.dir.clone();
    drop(world);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The 10 MB bodies, through the reader's pipeline (the Jira decoder, filterer and processor on
/// the sandbox Case API): too large, undecodable (skip class), nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_bodies_are_too_large() {
    use integration_jira::{JiraDecoder, JiraFilterer, JiraProcessor};
    use std::sync::Arc;
    use thirdparty_core::{
        DecodeError, ErrorClass, HandleError, MessageOutcome, Payload, Pipeline,
    };

    let sandbox = demo_sandbox().await;
    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(sandbox.endpoint()))
        .await
        .unwrap();
    let pipeline = Pipeline::builder(
        Arc::new(JiraDecoder::new()),
        Arc::new(JiraFilterer::new(Vec::<String>::new())),
        Arc::new(JiraProcessor::new()),
        Arc::new(api.clone()),
    )
    .build();
    for value in [comment_of_size(TEN_MB), unterminated(TEN_MB)] {
        let size = value.len();
        let outcome = pipeline.handle(&Payload::new(value)).await.unwrap();
        let MessageOutcome::Undecodable(error) = outcome else {
            panic!("a {size}-byte body was not rejected: {outcome:?}");
        };
        assert_eq!(error.class(), ErrorClass::Skip, "{error}");
        assert!(
            matches!(error, HandleError::Decode(DecodeError::TooLarge { size: s, .. }) if s == size),
            "{error}"
        );
    }
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_eq!(case.version, 1, "nothing written");
}
