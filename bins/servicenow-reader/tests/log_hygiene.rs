//! Log hygiene, end to end: the real `servicenow-reader` at debug level applies, filters,
//! discards and skips comments and work notes that carry unique markers; no marker (no comment
//! or work-note body) appears in its logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::{DEMO_SEED_JSON, SandboxConfig, SandboxServer, Seed};
use reader_runtime::testkit::{TestBroker, free_port, http_get, produce, producer, wait_caught_up};
use serde_json::{Value, json};
use thirdparty_core::CaseApi;

const TOPIC: &str = "collaboration_integrations_servicenow";
const CASE: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a04";
const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

fn marker(what: &str) -> String {
    format!("SECRET-{what}-{}", std::process::id())
}

fn event(sys_id: &str, at: &str, by: &str, data: Value) -> Value {
    json!({
        "type": "datadog_x_incident", "orgId": 123456, "sysId": sys_id, "instanceName": "acme",
        "updatedAt": at, "updatedBy": by, "data": data
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scenario_logs_no_comment_or_work_note_body_even_at_debug_level() {
    let dir =
        std::env::temp_dir().join(format!("sn-hygiene-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let kafka = TestBroker::embedded().unwrap();
    kafka.create_topic(TOPIC, 1).await.unwrap();
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
    let config = dir.join("reader.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{}\"\nauto_offset_reset = \"earliest\"\n\
             auto_commit_interval_ms = 100\n[kafka.properties]\n\"fetch.wait.max.ms\" = \"20\"\n\
             [case_api]\nendpoint = \"{}\"\n[health]\nlisten = \"{health}\"\n",
            kafka.bootstrap(),
            sandbox.endpoint()
        ),
    )
    .unwrap();
    let log_path = dir.join("reader.log");
    let file = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_servicenow-reader"))
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

    let (comment, work_note) = (marker("comment"), marker("work-note"));
    let (echo_comment, echo_note) = (marker("echo-comment"), marker("echo-work-note"));
    let (orphan_comment, orphan_note) = (marker("orphan-comment"), marker("orphan-work-note"));
    let (discarded, truncated) = (marker("discarded"), marker("truncated"));
    let applied = event(
        SYS_ID,
        "2024-06-01 10:00:00",
        "beth.anglin",
        json!({"comment": comment, "workNote": work_note, "state": "2"}),
    );
    let mut messages = vec![
        serde_json::to_vec(&applied).unwrap(),
        // The same event again: idempotent.
        serde_json::to_vec(&applied).unwrap(),
        // Our own write echoed back: filtered.
        serde_json::to_vec(&event(
            SYS_ID,
            "2024-06-01 10:00:05",
            "DataDog",
            json!({"comment": echo_comment, "workNote": echo_note}),
        ))
        .unwrap(),
        // No case for this incident: filtered.
        serde_json::to_vec(&event(
            "00000000000000000000000000000000",
            "2024-06-01 10:00:06",
            "beth.anglin",
            json!({"comment": orphan_comment, "workNote": orphan_note}),
        ))
        .unwrap(),
        // A wrong type next to a body: discarded.
        serde_json::to_vec(&event(
            SYS_ID,
            "2024-06-01 10:00:07",
            "beth.anglin",
            json!({"comment": {"text": discarded}}),
        ))
        .unwrap(),
        serde_json::to_vec(&event(
            SYS_ID,
            &discarded,
            "beth.anglin",
            json!({"workNote": discarded}),
        ))
        .unwrap(),
    ];
    // Truncated right after a body: undecodable.
    let whole = serde_json::to_vec(&event(
        SYS_ID,
        "2024-06-01 10:00:08",
        "beth.anglin",
        json!({"comment": truncated}),
    ))
    .unwrap();
    let text = String::from_utf8(whole).unwrap();
    let end = text.find(&truncated).unwrap() + truncated.len() + 1;
    messages.push(text.as_bytes()[..end].to_vec());

    let p = producer(&kafka.bootstrap()).unwrap();
    for m in &messages {
        produce(&p, TOPIC, Some(0), SYS_ID, m).await.unwrap();
    }
    wait_caught_up(
        &kafka.bootstrap(),
        "case-management",
        TOPIC,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(sandbox.endpoint()))
        .await
        .unwrap();
    let comments = api.list_comments(123456, CASE).await.unwrap();
    let entries: Vec<(&str, bool)> = comments
        .iter()
        .map(|c| (c.body.as_str(), c.is_work_note))
        .collect();
    assert_eq!(
        entries,
        [(comment.as_str(), false), (work_note.as_str(), true)]
    );

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
    for outcome in [
        "changelog processed",
        "duplicate_event",
        "break_synchronization_cycle",
        "no_corresponding_case",
        "message discarded",
        "message undecodable",
    ] {
        assert!(log.contains(outcome), "no {outcome} in the log");
    }
    for body in [
        &comment,
        &work_note,
        &echo_comment,
        &echo_note,
        &orphan_comment,
        &orphan_note,
        &discarded,
        &truncated,
    ] {
        let line = log.lines().find(|l| l.contains(body.as_str()));
        assert!(line.is_none(), "{body} in the log: {line:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
