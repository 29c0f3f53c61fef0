//! Concurrency over real TCP: injected latency overlaps across concurrent calls instead of
//! adding up, every concurrent write lands once, and concurrent writes at one version stay
//! atomic (exactly one wins).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use case_api::GrpcCaseApi;
use case_api::pb::sandbox::v1 as admin;
use case_api_sandbox::{DEMO_SEED_JSON, DbLocation, SandboxConfig, Seed, SharedStore, StoreError};
use common::*;
use thirdparty_core::{CaseApi, CaseApiError, CaseUpdate, FieldChange, UpdateWriter};
use tokio::task::JoinSet;

/// Distinct cases written concurrently (and as many concurrent reads).
const CASES: usize = 32;
/// The latency injected into every `case.v1` call.
const LATENCY: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
enum Call {
    Read,
    Write,
}

fn case_id(i: usize) -> String {
    format!("concurrency-case-{i:02}")
}

/// A seed document with `CASES` Acme cases at version 1 (the demo seed holds the org).
fn cases_seed() -> String {
    let cases: Vec<serde_json::Value> = (0..CASES)
        .map(|i| {
            serde_json::json!({
                "id": case_id(i),
                "org_id": ACME,
                "project_id": ACME_JIRA_PROJECT,
                "version": 1,
                "title": format!("case {i}"),
                "status": "OPEN",
                "created_at": "2024-01-15T09:45:00Z",
            })
        })
        .collect();
    serde_json::json!({ "cases": cases }).to_string()
}

fn title_update(case_id: &str, version: u64, title: String) -> CaseUpdate {
    CaseUpdate {
        org_id: ACME,
        case_id: case_id.into(),
        expected_version: version,
        change: FieldChange::Title(title),
        writer: UpdateWriter::Person { user_id: None },
    }
}

async fn set_latency(admin: &mut Admin, latency: Duration) {
    admin
        .set_latency(admin::SetLatencyRequest {
            method: "*".into(),
            millis: u64::try_from(latency.as_millis()).unwrap(),
        })
        .await
        .unwrap();
}

/// Seeds the cases, injects `LATENCY` into every call, then runs `CASES` reads and `CASES`
/// writes (one per case) at once on one connection: the wall time must stay near one latency,
/// far from the `2 * CASES * LATENCY` of serialized calls, and every write must land once.
async fn latency_overlaps(config: SandboxConfig, label: &str) {
    let server = start(config).await;
    let api = client(&server, None).await;
    let mut admin = admin(&server, None).await;
    let counts = admin
        .seed(admin::SeedRequest { json: cases_seed() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts.cases as usize, CASES);
    // Warm the connection before timing.
    assert!(api.get_case(ACME, &case_id(0)).await.unwrap().is_some());
    set_latency(&mut admin, LATENCY).await;

    let started = Instant::now();
    let mut calls: JoinSet<(Call, Result<u64, CaseApiError>)> = JoinSet::new();
    for i in 0..CASES {
        let reader = api.clone();
        calls.spawn(async move {
            let read = reader.get_case(ACME, &case_id(i)).await;
            (Call::Read, read.map(|c| c.map_or(0, |c| c.version)))
        });
        let writer = api.clone();
        calls.spawn(async move {
            let update = title_update(&case_id(i), 1, format!("written {i}"));
            let written = writer.update_case(&update).await;
            (Call::Write, written.map(|c| c.version))
        });
    }
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    while let Some(joined) = calls.join_next().await {
        match joined.unwrap() {
            (Call::Read, version) => reads.push(version.unwrap()),
            (Call::Write, version) => writes.push(version.unwrap()),
        }
    }
    let elapsed = started.elapsed();
    let serialized = LATENCY * u32::try_from(2 * CASES).unwrap();
    eprintln!(
        "{label}: {} concurrent calls with {LATENCY:?} latency each took {elapsed:?} \
         (serialized: {serialized:?})",
        2 * CASES
    );
    assert_eq!(reads.len(), CASES);
    assert!(
        reads.iter().all(|&v| v == 1 || v == 2),
        "a read sees its case before or after the write: {reads:?}"
    );
    assert_eq!(writes, vec![2; CASES], "every write bumped its case once");
    assert!(elapsed >= LATENCY, "the latency applied: {elapsed:?}");
    assert!(
        elapsed < LATENCY * 8,
        "{label}: concurrent calls overlap their latency: {elapsed:?} (serialized: {serialized:?})"
    );

    set_latency(&mut admin, Duration::ZERO).await;
    for i in 0..CASES {
        let case = api.get_case(ACME, &case_id(i)).await.unwrap().unwrap();
        assert_eq!(
            (case.version, case.title.as_str()),
            (2, format!("written {i}").as_str()),
            "every write landed exactly once"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_overlaps_across_concurrent_calls_in_memory() {
    latency_overlaps(demo_config(None), "in memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_overlaps_across_concurrent_calls_on_a_file() {
    let dir = std::env::temp_dir().join(format!(
        "case-api-sandbox-concurrency-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sandbox.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let config = SandboxConfig {
        db: DbLocation::File(db),
        ..demo_config(None)
    };
    latency_overlaps(config, "on a file").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_at_one_version_exactly_one_wins() {
    const WRITERS: usize = 16;
    let server = start(demo_config(None)).await;
    // A few connections, so the writes race on the server, not in one client.
    let mut clients: Vec<GrpcCaseApi> = Vec::new();
    for _ in 0..4 {
        clients.push(client(&server, None).await);
    }
    let mut admin = admin(&server, None).await;
    let before = clients[0]
        .get_case(ACME, CASE_10002)
        .await
        .unwrap()
        .unwrap();
    // The same latency for every call: the writes reach the store together.
    set_latency(&mut admin, LATENCY).await;

    let mut writes = JoinSet::new();
    for i in 0..WRITERS {
        let api = clients[i % clients.len()].clone();
        let update = title_update(CASE_10002, before.version, format!("writer {i}"));
        writes.spawn(async move { (i, api.update_case(&update).await) });
    }
    let mut winners = Vec::new();
    let mut refused = 0;
    while let Some(joined) = writes.join_next().await {
        match joined.unwrap() {
            (i, Ok(case)) => winners.push((i, case)),
            (_, Err(err)) => {
                assert_eq!(
                    err,
                    CaseApiError::VersionMismatch {
                        case_id: CASE_10002.into(),
                        expected: before.version
                    }
                );
                refused += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins: {winners:?}");
    assert_eq!(refused, WRITERS - 1);
    let (winner, won) = winners.remove(0);
    assert_eq!(won.version, before.version + 1);
    assert_eq!(won.title, format!("writer {winner}"));

    set_latency(&mut admin, Duration::ZERO).await;
    let stored = clients[0]
        .get_case(ACME, CASE_10002)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, won, "the refused writers changed nothing");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_store_operation_fails_its_call_only() {
    let store = SharedStore::open(DbLocation::InMemory).await.unwrap();
    let seed = Seed::from_json(DEMO_SEED_JSON).unwrap();
    store.run(move |s| s.load_seed(&seed)).await.unwrap();

    let err = store
        .run(|_| -> Result<(), StoreError> { panic!("a bug in an operation") })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Task(_)), "{err:?}");
    let case = store
        .run(|s| s.get_case(ACME, CASE_10002))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.version, 1, "the store thread serves on");
}
