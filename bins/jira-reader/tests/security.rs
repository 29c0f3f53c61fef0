//! Security, end to end: the real `jira-reader` binary talks to the sandbox Case API over TLS
//! (a self-signed certificate it is told to trust) with a bearer token; a wrong token is refused
//! and retried until the reader exits without storing the offset; and a full scenario's logs,
//! at debug level, carry no comment or description body.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use case_api::{GrpcCaseApi, GrpcCaseApiConfig, TlsConfig};
use case_api_sandbox::{SandboxConfig, ServerTls};
use common::env::{ReaderConfig, World, demo_seed};
use common::{CASE_10002, GROUP, TOPIC, comment_created};
use reader_runtime::testkit::{
    ReaderProcess, group_progress, http_get, metric_sum, produce, producer, wait_caught_up,
};
use serde_json::{Value, json};
use thirdparty_core::CaseApi;

const TOKEN: &str = "s3cret-reader-token";
const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z

fn issue_updated(issue_id: &str, ts_ms: i64, items: Value, description: &str) -> Vec<u8> {
    common::issue_updated_with(issue_id, ts_ms, items, Some(description))
}

fn item(field: &str, from_s: Option<&str>, to: Option<&str>, to_s: Option<&str>) -> Value {
    // A status change names the status it left (To Do is 10000 in the demo seed).
    let from = (field == "status").then_some("10000");
    common::item(field, from, from_s, to, to_s)
}

struct Env {
    world: World,
    /// The sandbox's self-signed certificate (PEM), when it serves TLS.
    cert_pem: Option<String>,
}

impl Env {
    /// The embedded broker and the seeded sandbox; over TLS with `TOKEN` required when `tls`.
    async fn start(tls: bool) -> Env {
        let mut config = SandboxConfig {
            seed: Some(demo_seed()),
            ..Default::default()
        };
        let mut cert_pem = None;
        if tls {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            config.tls = Some(ServerTls {
                cert_pem: cert.cert.pem().into_bytes(),
                key_pem: cert.signing_key.serialize_pem().into_bytes(),
            });
            config.token = Some(TOKEN.into());
            cert_pem = Some(cert.cert.pem());
        }
        let world = World::builder("security").sandbox(config).start().await;
        Env { world, cert_pem }
    }

    /// A reader config (with the CA, domain and `token` when over TLS).
    fn config(&self, name: &str, retries: u32, token: &str) -> ReaderConfig {
        let mut config = self.world.reader_config().retry(retries, 20, 100);
        if let Some(pem) = &self.cert_pem {
            let ca = self.world.path("ca.pem");
            std::fs::write(&ca, pem).unwrap();
            let token_file = self.world.path(&format!("{name}.token"));
            std::fs::write(&token_file, format!("{token}\n")).unwrap();
            config = config
                .case_api(format!("tls_ca_file = {:?}", ca.display().to_string()))
                .case_api("tls_domain = \"localhost\"")
                .case_api(format!(
                    "token_file = {:?}",
                    token_file.display().to_string()
                ));
        }
        config
    }

    fn reader(&self, name: &str, retries: u32, token: &str) -> ReaderProcess {
        self.config(name, retries, token).spawn(name).0
    }

    async fn api(&self) -> GrpcCaseApi {
        let mut config = GrpcCaseApiConfig::new(self.world.sandbox.endpoint());
        if let Some(pem) = &self.cert_pem {
            config = config
                .with_tls(TlsConfig {
                    ca_cert_pem: Some(pem.clone().into_bytes()),
                    domain_name: Some("localhost".into()),
                })
                .with_bearer_token(TOKEN.to_owned());
        }
        GrpcCaseApi::connect(&config).await.unwrap()
    }

    fn log(&self, name: &str) -> String {
        self.world.log(name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_the_right_token_events_are_applied() {
    let env = Env::start(true).await;
    assert!(
        env.world
            .sandbox
            .endpoint()
            .starts_with("https://127.0.0.1:")
    );
    let mut reader = env.reader("right", 3, TOKEN);
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let status = item("status", Some("To Do"), Some("3"), Some("In Progress"));
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &issue_updated("10002", T0, json!([status]), ""),
    )
    .await
    .unwrap();
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &comment_created("10002", "50001", T0 + 1, "over TLS"),
    )
    .await
    .unwrap();
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    let api = env.api().await;
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_eq!(case.status, "IN_PROGRESS");
    let comments = api.list_comments(123456, CASE_10002).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, "over TLS");
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[]
        ),
        2.0
    );
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_retries", &[]),
        0.0
    );
    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
    assert!(
        !env.log("right").contains(TOKEN),
        "the token is never logged"
    );
}

/// A token rotated while the reader runs (the Secret's file rewritten) is picked up: the calls
/// refused with the old one are retried, then the change is applied, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_is_picked_up_without_a_restart() {
    let env = Env::start(true).await;
    let mut reader = env.reader("rotated", 400, "the-old-token");
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &comment_created("10002", "50011", T0 + 1, "after the rotation"),
    )
    .await
    .unwrap();
    // Refused with the old token first.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !env.log("rotated").contains("backing off") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            env.log("rotated")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(env.world.dir.join("rotated.token"), format!("{TOKEN}\n")).unwrap();
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let comments = env
        .api()
        .await
        .list_comments(123456, CASE_10002)
        .await
        .unwrap();
    assert!(comments.iter().any(|c| c.body == "after the rotation"));
    assert!(
        reader.try_wait().unwrap().is_none(),
        "the reader kept running"
    );
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        metric_sum(&metrics, "dd_case_third_party_reader_retries", &[]),
        0.0,
        "no exit"
    );
    assert!(metric_sum(&metrics, "dd_case_third_party_reader_retry_attempts", &[]) >= 1.0);
    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
    let log = env.log("rotated");
    assert!(log.contains("case api token reloaded"), "{log}");
    assert!(
        !log.contains(TOKEN) && !log.contains("the-old-token"),
        "a token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_retried_and_the_reader_exits_3_without_storing_the_offset() {
    let env = Env::start(true).await;
    let mut reader = env.reader("wrong", 2, "not-the-token");
    // `/ready` follows the Case API's gRPC health, which needs no token: the reader turns ready.
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    let status = item("status", Some("To Do"), Some("3"), Some("In Progress"));
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &issue_updated("10002", T0, json!([status]), ""),
    )
    .await
    .unwrap();

    // Unauthorized is retry class: after its retries the reader crashes with exit code 3.
    let code = reader.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(code, Some(3), "{}", env.log("wrong"));
    let progress = group_progress(&env.world.kafka.bootstrap(), GROUP, TOPIC)
        .await
        .unwrap();
    assert_eq!(progress[&0], (0, 1), "no offset stored: {progress:?}");
    let log = env.log("wrong");
    assert!(log.contains("unauthorized"), "{log}");
    assert!(!log.contains("not-the-token"), "the token is never logged");
    assert_eq!(
        env.world.sandbox.faults().calls("*"),
        0,
        "refused calls never reach a handler"
    );
    let case = env
        .api()
        .await
        .get_case(123456, CASE_10002)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((case.status.as_str(), case.version), ("OPEN", 1));
}

/// A marker that must not appear in any log line.
fn marker(what: &str) -> String {
    format!("SECRET-{what}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scenario_logs_no_comment_or_description_body_even_at_debug_level() {
    let env = Env::start(true).await;
    let config = env.config("hygiene", 3, TOKEN);
    let health = config.health();
    let config = config.write("hygiene");
    let log_path = env.world.path("hygiene.log");
    let file = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_jira-reader"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !matches!(http_get(health, "/ready").await, Ok((200, _))) {
        assert!(std::time::Instant::now() < deadline, "reader not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (desc_field, desc_old, desc_new, desc_stale) = (
        marker("description-field"),
        marker("description-old"),
        marker("description-new"),
        marker("description-stale"),
    );
    let (applied, filtered, discarded, truncated) = (
        marker("comment-applied"),
        marker("comment-filtered"),
        marker("comment-discarded"),
        marker("comment-truncated"),
    );
    let mut messages = vec![
        issue_updated(
            "10002",
            T0,
            json!([item("description", Some(&desc_old), None, Some(&desc_new))]),
            &desc_field,
        ),
        issue_updated(
            "10002",
            T0 + 1,
            json!([
                item("status", Some("To Do"), Some("3"), Some("In Progress")),
                item("summary", None, None, Some("Checkout p99 above SLO")),
            ]),
            &desc_field,
        ),
        comment_created("10002", "60001", T0 + 2, &applied),
        // The same comment again: idempotent, not written twice.
        comment_created("10002", "60001", T0 + 2, &applied),
        // No case for issue 99999: filtered.
        comment_created("99999", "60002", T0 + 3, &filtered),
        issue_updated(
            "99999",
            T0 + 3,
            json!([item("description", None, None, Some(&desc_stale))]),
            &desc_field,
        ),
        // Older than the description's watermark: filtered as out of order.
        issue_updated(
            "10002",
            T0 - 60_000,
            json!([item("description", None, None, Some(&desc_stale))]),
            &desc_stale,
        ),
    ];
    // Wrong type next to a body: discarded.
    let mut wrong: Value =
        serde_json::from_slice(&comment_created("10002", "60003", T0 + 4, &discarded)).unwrap();
    wrong["webhook"]["issue"]["id"] = json!(["10002"]);
    messages.push(serde_json::to_vec(&wrong).unwrap());
    let mut wrong: Value =
        serde_json::from_slice(&comment_created("10002", "60004", T0 + 4, &discarded)).unwrap();
    wrong["webhook"]["comment"]["body"] = json!({"content": [discarded]});
    messages.push(serde_json::to_vec(&wrong).unwrap());
    // Truncated right after the body: undecodable.
    let whole = comment_created("10002", "60005", T0 + 5, &truncated);
    let text = String::from_utf8(whole).unwrap();
    let end = text.find(&truncated).unwrap() + truncated.len() + 1;
    messages.push(text.as_bytes()[..end].to_vec());

    let p = producer(&env.world.kafka.bootstrap()).unwrap();
    for m in &messages {
        produce(&p, TOPIC, Some(0), "PROJ-12", m).await.unwrap();
    }
    wait_caught_up(
        &env.world.kafka.bootstrap(),
        GROUP,
        TOPIC,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let api = env.api().await;
    let case = api.get_case(123456, CASE_10002).await.unwrap().unwrap();
    assert_eq!(case.status, "IN_PROGRESS");
    assert_eq!(case.description, desc_new);
    let comments = api.list_comments(123456, CASE_10002).await.unwrap();
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(comments[0].body, applied);

    let pid = child.id().unwrap();
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("\"DEBUG\""),
        "the reader logged at debug level"
    );
    // Every path a body can take was exercised.
    for outcome in [
        "changelog processed",
        "duplicate_event",
        "no_corresponding_case",
        "out_of_order_event",
        "message discarded",
        "message undecodable",
    ] {
        assert!(log.contains(outcome), "no {outcome} in the log");
    }
    for body in [
        &desc_field,
        &desc_old,
        &desc_new,
        &desc_stale,
        &applied,
        &filtered,
        &discarded,
        &truncated,
    ] {
        let line = log.lines().find(|l| l.contains(body.as_str()));
        assert!(line.is_none(), "{body} in the log: {line:?}");
    }
    assert!(!log.contains(TOKEN), "the token is never logged");
}
