//! Recovery after a configuration fix, end to end with the real `jira-reader`: a project's
//! settings are missing, so 20 changes are filtered `project_not_found` (and recorded in the
//! decisions topic); the settings are fixed; `replay` (dry run) foretells
//! `project_not_found -> would_apply: 20` and writes nothing; `replay --apply` applies them; a
//! second replay finds them duplicates; the live group's committed offsets never move; `why`
//! shows both decisions. On librdkafka's mock cluster in the default run, on Tansu with
//! `cargo xtask e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use case_api::pb::sandbox::v1::sandbox_admin_client::SandboxAdminClient;
use case_api::pb::sandbox::v1::{ClearFaultsRequest, SeedRequest, SetLatencyRequest};
use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::{DEMO_SEED_JSON, Seed};
use common::env::{Broker, World};
use common::{GROUP, TOPIC, comment_created, issue_updated, to_do_to_in_progress};
use reader_runtime::testkit::{ReaderProcess, group_progress, produce, producer, wait_caught_up};
use serde_json::{Value, json};
use thirdparty_core::CaseApi;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const DECISIONS: &str = "case_third_party_reader_decisions";
const ORG: u64 = 123456;
/// A project onboarded late: its cases exist, its settings do not (yet).
const LATE_PROJECT: &str = "d0c5a1e2-late-4b1e-9a7f-000000000001";
/// The issues of the late project: 10500..10504.
const ISSUES: [&str; 5] = ["10500", "10501", "10502", "10503", "10504"];
const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z

fn case_of(issue: &str) -> String {
    format!("case-late-{issue}")
}

/// The demo seed plus the late project's five cases (no settings for it).
fn seed() -> Seed {
    let mut seed: Value = serde_json::from_str(DEMO_SEED_JSON).unwrap();
    let cases = seed["cases"].as_array_mut().unwrap();
    for issue in ISSUES {
        cases.push(json!({
            "id": case_of(issue), "org_id": ORG, "project_id": LATE_PROJECT, "version": 1,
            "title": format!("Late {issue}"), "description": "", "priority": "P3",
            "status": "OPEN", "assignee_id": null, "due_date": null,
            "created_at": "2024-01-15T09:45:00Z",
            "external_references": [
                {"integration": "jira", "site": "acme.atlassian.net", "reference": issue}
            ]
        }));
    }
    Seed::from_json(&seed.to_string()).unwrap()
}

/// The fix: the late project gets the same Jira settings as the demo's Jira project.
fn settings_fix() -> String {
    let seed: Value = serde_json::from_str(DEMO_SEED_JSON).unwrap();
    let mut settings = seed["project_settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["org_id"] == ORG && s["integration"] == "jira")
        .unwrap()
        .clone();
    settings["project_id"] = json!(LATE_PROJECT);
    json!({ "project_settings": [settings] }).to_string()
}

struct Env {
    world: World,
    /// The health address of the config's reader.
    health: SocketAddr,
}

impl Env {
    async fn start(broker: Broker) -> Env {
        let world = World::builder("replay")
            .broker(broker)
            .partitions(2)
            .topic(DECISIONS, 1)
            .seed(seed())
            .start()
            .await;
        let config = world
            .reader_config()
            .kafka(format!("group_id = \"{GROUP}\""))
            .timeout_ms(2000)
            .section(format!("[decisions]\ntopic = \"{DECISIONS}\""));
        config.write("reader");
        Env {
            health: config.health(),
            world,
        }
    }

    fn config(&self) -> PathBuf {
        self.world.path("reader.toml")
    }

    async fn api(&self) -> GrpcCaseApi {
        GrpcCaseApi::connect(&GrpcCaseApiConfig::new(self.world.sandbox.endpoint()))
            .await
            .unwrap()
    }

    /// Runs `jira-reader <args>` with the config; returns (exit code, stdout, stderr).
    async fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_jira-reader"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .await
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `replay` with these arguments; returns its `before -> after: n` lines.
    async fn replay(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["replay"];
        all.extend_from_slice(args);
        let (code, out, err) = self.cli(&all).await;
        assert_eq!(
            code,
            Some(0),
            "replay {args:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        eprintln!("replay {args:?}:\n{out}");
        out.lines()
            .filter(|l| l.starts_with("  ") && l.contains(" -> "))
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// The late cases' statuses and comment counts.
    async fn late_cases(&self) -> Vec<(String, usize)> {
        let api = self.api().await;
        let mut out = Vec::new();
        for issue in ISSUES {
            let case = api.get_case(ORG, &case_of(issue)).await.unwrap().unwrap();
            let comments = api.list_comments(ORG, &case.id).await.unwrap();
            out.push((case.status, comments.len()));
        }
        out
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

async fn recovery_after_a_settings_fix(broker: Broker) {
    let env = Env::start(broker).await;
    let bootstrap = env.world.kafka.bootstrap();
    let mut live = ReaderProcess::spawn(
        env!("CARGO_BIN_EXE_jira-reader").as_ref(),
        &env.config(),
        env.health,
        &env.world.dir.join("live.log"),
    )
    .unwrap();
    live.wait_ready(Duration::from_secs(30)).await.unwrap();

    // 20 changes of the late project: a status change and three comments per issue.
    let from = OffsetDateTime::now_utc() - time::Duration::seconds(2);
    let p = producer(&bootstrap).unwrap();
    for (i, issue) in ISSUES.iter().enumerate() {
        let partition = Some((i % 2) as i32);
        let status = to_do_to_in_progress();
        let ts = T0 + i as i64 * 1000;
        produce(
            &p,
            TOPIC,
            partition,
            issue,
            &issue_updated(issue, ts, json!([status])),
        )
        .await
        .unwrap();
        for c in 0..3 {
            let comment = comment_created(
                issue,
                &format!("7{i}{c:03}"),
                ts + 100 + c,
                &format!("comment {c} on {issue}"),
            );
            produce(&p, TOPIC, partition, issue, &comment)
                .await
                .unwrap();
        }
    }
    wait_caught_up(&bootstrap, GROUP, TOPIC, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        live.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
    let untouched: Vec<(String, usize)> = ISSUES.iter().map(|_| ("OPEN".into(), 0)).collect();
    assert_eq!(env.late_cases().await, untouched, "all 20 were filtered");

    // Later traffic the live group has not read yet (its reader is down): outside the window.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let to = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..3 {
        let status = to_do_to_in_progress();
        let message = issue_updated("10002", T0 + 60_000 + i, json!([status]));
        produce(&p, TOPIC, Some(0), "10002", &message)
            .await
            .unwrap();
    }
    let committed = group_progress(&bootstrap, GROUP, TOPIC).await.unwrap();
    assert_eq!(
        committed.values().map(|(done, _)| done).sum::<i64>(),
        20,
        "{committed:?}"
    );

    let (from, to) = (rfc3339(from), rfc3339(to));
    let window = ["--from", from.as_str(), "--to", to.as_str()];
    // Before the fix, a dry run says nothing would change.
    assert_eq!(
        env.replay(&window).await,
        ["project_not_found -> project_not_found: 20"]
    );

    // The fix.
    let mut admin = SandboxAdminClient::connect(env.world.sandbox.endpoint())
        .await
        .unwrap();
    admin
        .seed(SeedRequest {
            json: settings_fix(),
        })
        .await
        .unwrap();

    // Dry run, by time and by offsets: foretells, writes nothing, details in JSON lines.
    let details = env.world.dir.join("dry-run.jsonl");
    let mut args = window.to_vec();
    args.extend(["--output", details.to_str().unwrap()]);
    assert_eq!(
        env.replay(&args).await,
        ["project_not_found -> would_apply: 20"]
    );
    let lines: Vec<Value> = std::fs::read_to_string(&details)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    let first = &lines[0];
    assert_eq!(first["before"], "project_not_found");
    assert_eq!(first["after"], "would_apply");
    assert_eq!(first["settings"]["project_id"], LATE_PROJECT);
    assert!(
        first["case"]["id"]
            .as_str()
            .unwrap()
            .starts_with("case-late-")
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.to_string().contains("comment 0 on")),
        "no body in the detail"
    );
    assert_eq!(
        env.replay(&["--partition", "0", "--offsets", "0..7"]).await,
        ["project_not_found -> would_apply: 8"]
    );
    assert_eq!(
        env.late_cases().await,
        untouched,
        "a dry run writes nothing"
    );

    // Apply only what was dropped as project_not_found; interrupted half way (a slow Case
    // API), then run again: the rest is applied, nothing twice.
    let mut args = window.to_vec();
    args.extend(["--reason", "project_not_found", "--apply"]);
    admin
        .set_latency(SetLatencyRequest {
            method: "*".into(),
            millis: 60,
        })
        .await
        .unwrap();
    let config = env.config();
    let mut all = vec!["--config", config.to_str().unwrap(), "replay"];
    all.extend(args.iter().copied());
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_jira-reader"))
        .args(&all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once something is applied.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while env.late_cases().await == untouched {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay applied nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("interrupted replay:\n{stdout}");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stopped at"), "{stdout}");
    let first: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("project_not_found -> applied: "))
        .map_or(0, |n| n.parse().unwrap());
    assert!((1..20).contains(&first), "interrupted half way: {stdout}");
    admin.clear_faults(ClearFaultsRequest {}).await.unwrap();
    assert_eq!(
        env.replay(&args).await,
        [format!("project_not_found -> applied: {}", 20 - first)]
    );
    let applied: Vec<(String, usize)> = ISSUES.iter().map(|_| ("IN_PROGRESS".into(), 3)).collect();
    assert_eq!(env.late_cases().await, applied);

    // Again: every change is a duplicate now, and nothing is dropped as project_not_found.
    let mut args = window.to_vec();
    args.push("--apply");
    assert_eq!(env.replay(&args).await, ["applied -> duplicate_event: 20"]);
    let mut args = window.to_vec();
    args.extend(["--reason", "project_not_found"]);
    assert!(env.replay(&args).await.is_empty());
    assert_eq!(env.late_cases().await, applied, "written once");

    // The live group never moved, and the replays committed nothing under any group.
    assert_eq!(
        group_progress(&bootstrap, GROUP, TOPIC).await.unwrap(),
        committed
    );
    let replay_group = format!("{GROUP}-replay");
    let replay_progress = group_progress(&bootstrap, &replay_group, TOPIC)
        .await
        .unwrap();
    assert!(
        replay_progress.values().all(|(done, _)| *done == 0),
        "{replay_progress:?}"
    );

    // `why` shows the first decision and the replay's.
    let (code, out, err) = env
        .cli(&["why", "PROJ-10500", "--site", "acme.atlassian.net"])
        .await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("filtered (project_not_found)"), "{out}");
    assert!(out.contains("applied by replay"), "{out}");
    assert!(out.contains(&case_of("10500")), "{out}");
    assert!(
        !out.contains("would_apply"),
        "a dry run records nothing: {out}"
    );
}

mod embedded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recovery_after_a_settings_fix() {
        super::recovery_after_a_settings_fix(super::Broker::Embedded).await;
    }
}

mod tansu {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Tansu: run `cargo xtask e2e`"]
    async fn recovery_after_a_settings_fix() {
        super::recovery_after_a_settings_fix(super::Broker::Tansu).await;
    }
}
