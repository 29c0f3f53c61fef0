//! `cargo xtask chaos [--quick] [--seed N]`: at-least-once with idempotent effects, under faults.
//!
//! Tansu on SQLite storage (a restart keeps the log and the committed offsets), the sandbox Case
//! API on a SQLite file, two readers of each flavor in the shipped consumer group, and a
//! deterministic workload (see [`workload`]) whose expected final case state is computed from the
//! workload alone. While the workload is produced at a steady rate:
//! - a reader is SIGKILLed at spread-out moments and restarted at once;
//! - the broker is killed and restarted on the same storage;
//! - the Case API answers UNAVAILABLE to everything for a while (readers that exhaust their
//!   retries exit with code 3 and are restarted, as a supervisor would);
//! - bursts of ABORTED hit `UpdateCase`, latency is added, and one case in five is edited in
//!   "Datadog" concurrently (real version conflicts).
//!
//! Then faults are cleared, the group must commit every message, the readers are stopped with
//! SIGTERM, and the harness compares: every message on the topics against the readers' logged
//! outcomes (`message_outcome` lines, written before an offset is stored), and every case and
//! its comments against the expected state. Writes `target/chaos/report.json`, prints a
//! one-line summary, and fails unless lost updates, duplicate comments, wrong fields and
//! unaccounted messages are all 0 and every planned fault happened.

mod verify;
mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use case_api::GrpcCaseApi;
use case_api::pb::sandbox::v1 as admin;
use case_api::pb::sandbox::v1::sandbox_admin_client::SandboxAdminClient;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reader_runtime::testkit::{ReaderProcess, TansuBroker, free_port, wait_caught_up};
use serde_json::json;
use thirdparty_core::{CaseApi, CaseField, CaseUpdate, FieldChange};
use tokio::sync::Mutex;

use crate::demo::{Binaries, Sandbox};

/// The integrations the chaos workload drives (GitHub has none yet: its readers are not run).
pub(crate) const FLAVORS: [Flavor; 2] = [Flavor::Jira, Flavor::ServiceNow];
use crate::scenario::{Flavor, GROUP};
use workload::{ExpectedCase, ORG, Rng, Workload};

/// gRPC codes the faults use.
/// Messages per partition handled at once by every chaos reader (the default).
const MAX_IN_FLIGHT: usize = 64;
const ABORTED: i32 = 10;
const UNAVAILABLE: i32 = 14;
/// Partitions per topic.
const PARTITIONS: i32 = 4;
/// Reader processes per flavor.
const READERS_PER_FLAVOR: usize = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// `RUST_LOG` of the readers: info, plus the per-message outcome lines.
const READER_LOG: &str = "info,message_outcome=debug";

/// How big a run is and which faults it injects.
#[derive(Debug, Clone, Copy)]
struct Plan {
    jira_cases: usize,
    servicenow_cases: usize,
    events: usize,
    /// The workload is produced evenly over this long; the faults happen in this window.
    produce_for: Duration,
    reader_kills: u32,
    broker_restarts: u32,
    outage: Duration,
    aborted_bursts: u32,
    /// Calls aborted per burst.
    aborted_per_burst: u32,
    /// Bursts of writes (`UpdateCase` and `CreateComment`) that commit and then lose their
    /// reply; calls per method per burst.
    lost_reply_bursts: u32,
    lost_replies_per_burst: u32,
    latency_ms: u64,
    /// How long the readers get to commit everything once the faults stop.
    catch_up: Duration,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                jira_cases: 100,
                servicenow_cases: 100,
                events: 4_000,
                produce_for: Duration::from_secs(60),
                reader_kills: 8,
                broker_restarts: 1,
                outage: Duration::from_secs(10),
                aborted_bursts: 4,
                aborted_per_burst: 6,
                lost_reply_bursts: 4,
                lost_replies_per_burst: 2,
                latency_ms: 15,
                catch_up: Duration::from_secs(180),
            }
        } else {
            Self {
                jira_cases: 120,
                servicenow_cases: 120,
                events: 20_400,
                produce_for: Duration::from_secs(200),
                reader_kills: 24,
                broker_restarts: 2,
                outage: Duration::from_secs(30),
                aborted_bursts: 12,
                aborted_per_burst: 6,
                lost_reply_bursts: 12,
                lost_replies_per_burst: 2,
                latency_ms: 15,
                catch_up: Duration::from_secs(300),
            }
        }
    }
}

/// Runs the chaos harness. With `negative_control`, the readers are built to store each offset
/// before its message is handled (a test-only feature): the run must then fail, and this
/// succeeds only if it does.
pub fn run(root: &Path, quick: bool, seed: u64, negative_control: bool) -> Result<()> {
    if !negative_control {
        return run_with(
            root,
            quick,
            seed,
            &crate::demo::build(root)?,
            "target/chaos",
        );
    }
    let features = [
        "jira-reader/negative-control",
        "servicenow-reader/negative-control",
    ];
    let built = crate::demo::build_with(root, &features)?;
    // Kept aside: the next ordinary build replaces the executables in the target directory.
    let aside = root.join("target/chaos-negative-control/bin");
    std::fs::create_dir_all(&aside)?;
    let copy = |from: &Path| -> Result<PathBuf> {
        let to = aside.join(from.file_name().context("an executable without a name")?);
        std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
        Ok(to)
    };
    let bins = Binaries {
        jira_reader: copy(&built.jira_reader)?,
        servicenow_reader: copy(&built.servicenow_reader)?,
        github_reader: copy(&built.github_reader)?,
        sandbox: copy(&built.sandbox)?,
    };
    println!("Negative control: readers that store each offset before handling its message.");
    match run_with(
        root,
        quick,
        seed,
        &bins,
        "target/chaos-negative-control/run",
    ) {
        Ok(()) => bail!(
            "negative control: the chaos run passed with readers that store offsets before \
             handling; it must catch them"
        ),
        Err(e) => {
            println!("negative control: the chaos run caught the broken readers: {e:#}");
            Ok(())
        }
    }
}

fn run_with(root: &Path, quick: bool, seed: u64, bins: &Binaries, out: &str) -> Result<()> {
    let started = Instant::now();
    crate::broker::ensure_tansu()?;
    let dir = root.join(out);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("readers"))?;
    let plan = Plan::new(quick);
    let workload = workload::generate(seed, plan.jira_cases, plan.servicenow_cases, plan.events);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = chaos(&dir, bins, plan, quick, seed, &workload, started) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    // Dropping the runtime kills whatever is still running (kill_on_drop children).
    drop(runtime);
    if result.is_err() {
        println!("Logs: {}", dir.display());
    }
    result
}

/// What the fault injector did.
#[derive(Debug, Default)]
struct Faults {
    reader_kills: u32,
    broker_restarts: u32,
    api_outage_s: f64,
    aborted_injected: u32,
    latency_s: f64,
}

async fn chaos(
    dir: &Path,
    bins: &Binaries,
    plan: Plan,
    quick: bool,
    seed: u64,
    workload: &Workload,
    started: Instant,
) -> Result<()> {
    println!(
        "Chaos run{}: {} events over {} cases, {} readers, seed {seed}",
        if quick { " (quick)" } else { "" },
        workload.messages.len(),
        workload.cases.len(),
        2 * READERS_PER_FLAVOR
    );
    let mut broker = TansuBroker::start("sqlite://tansu.db", &dir.join("tansu")).await?;
    for flavor in FLAVORS {
        broker.create_topic(flavor.topic(), PARTITIONS).await?;
    }
    let bootstrap = broker.bootstrap();
    let seed_path = dir.join("seed.json");
    std::fs::write(&seed_path, &workload.seed_json)?;
    let sandbox = Sandbox::start(
        &bins.sandbox,
        &seed_path,
        dir,
        Some(&dir.join("sandbox.db")),
    )
    .await?;
    let mut admin = SandboxAdminClient::connect(sandbox.endpoint.clone())
        .await
        .context("connecting to the sandbox admin service")?;
    println!(
        "Tansu (SQLite) on {bootstrap}, sandbox (SQLite) on {}; logs in {}",
        sandbox.endpoint,
        dir.display()
    );

    let slots = Arc::new(Mutex::new(start_readers(
        dir,
        bins,
        &bootstrap,
        &sandbox.endpoint,
    )?));
    for slot in slots.lock().await.iter_mut() {
        if let Some(reader) = slot.process.as_mut() {
            reader.wait_ready(READY_TIMEOUT).await?;
        }
    }
    println!("Readers ready.");

    let stop_supervisor = Arc::new(AtomicBool::new(false));
    let supervisor = tokio::spawn(supervise(
        slots.clone(),
        dir.join("readers"),
        stop_supervisor.clone(),
    ));
    let stop_editor = Arc::new(AtomicBool::new(false));
    let editor = tokio::spawn(edit_in_datadog(
        sandbox.api().await?,
        workload
            .cases
            .iter()
            .filter(|c| c.edited_in_datadog.is_some())
            .cloned()
            .collect(),
        seed,
        stop_editor.clone(),
    ));
    let produced = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn(produce(
        bootstrap.clone(),
        workload.messages.clone(),
        plan.produce_for,
        produced.clone(),
    ));

    // The fault timeline, in the window the workload is produced in.
    let mut rng = Rng::new(seed ^ 0x000C_4A05);
    let timeline = timeline(plan, &mut rng);
    let chaos_started = Instant::now();
    let mut faults = Faults::default();
    let mut latency_since = None;
    for (at, action) in timeline {
        let wait = at.saturating_sub(chaos_started.elapsed());
        tokio::time::sleep(wait).await;
        match action {
            Action::KillReader => {
                let mut slots = slots.lock().await;
                let index = rng.below(slots.len());
                slots[index].kill_and_restart(&dir.join("readers")).await?;
                faults.reader_kills += 1;
            }
            Action::RestartBroker => {
                broker.restart().await.context("restarting the broker")?;
                faults.broker_restarts += 1;
                println!(
                    "  {:>5.1} s  broker restarted ({} of {} messages produced)",
                    chaos_started.elapsed().as_secs_f64(),
                    produced.load(Ordering::Relaxed),
                    workload.messages.len()
                );
            }
            Action::Outage => {
                inject(&mut admin, "*", UNAVAILABLE, 0, plan.outage).await?;
                faults.api_outage_s += plan.outage.as_secs_f64();
                println!(
                    "  {:>5.1} s  Case API UNAVAILABLE for {} s",
                    chaos_started.elapsed().as_secs_f64(),
                    plan.outage.as_secs()
                );
            }
            Action::AbortedBurst => {
                inject(
                    &mut admin,
                    "UpdateCase",
                    ABORTED,
                    plan.aborted_per_burst,
                    Duration::ZERO,
                )
                .await?;
                faults.aborted_injected += plan.aborted_per_burst;
            }
            Action::LostReplies => {
                for method in ["UpdateCase", "CreateComment"] {
                    lose_replies(&mut admin, method, plan.lost_replies_per_burst).await?;
                }
            }
            Action::Latency(on) => {
                let millis = if on { plan.latency_ms } else { 0 };
                admin
                    .set_latency(admin::SetLatencyRequest {
                        method: "*".into(),
                        millis,
                    })
                    .await
                    .context("setting latency")?;
                if on {
                    latency_since = Some(Instant::now());
                } else if let Some(since) = latency_since.take() {
                    faults.latency_s += since.elapsed().as_secs_f64();
                }
            }
        }
    }
    producer.await??;
    println!(
        "Produced {} messages; {} reader kills, {} broker restarts; waiting for the readers to catch up...",
        workload.messages.len(),
        faults.reader_kills,
        faults.broker_restarts
    );
    // The editor finishes the edit it is in (it may need the faults gone for that).
    stop_editor.store(true, Ordering::Relaxed);
    admin
        .clear_faults(admin::ClearFaultsRequest {})
        .await
        .context("clearing faults")?;
    let edits = editor.await?;

    let caught_up = async {
        for flavor in FLAVORS {
            wait_caught_up(&bootstrap, GROUP, flavor.topic(), plan.catch_up).await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    stop_supervisor.store(true, Ordering::Relaxed);
    supervisor.await??;
    let mut slots = Arc::try_unwrap(slots)
        .map_err(|_| anyhow!("the reader slots are still shared"))?
        .into_inner();
    let mut unclean_stops = Vec::new();
    for slot in &mut slots {
        if let Some(reader) = slot.process.take() {
            match reader.terminate(STOP_TIMEOUT).await {
                Ok(Some(0)) => {}
                other => unclean_stops.push(format!("{}: {other:?}", slot.name())),
            }
        }
    }
    let reader_exits: Vec<String> = slots
        .iter()
        .flat_map(|s| {
            s.exits
                .iter()
                .map(move |code| format!("{}: {code:?}", s.name()))
        })
        .collect();

    let lost_replies: u64 = admin
        .call_counts(admin::CallCountsRequest {})
        .await
        .context("reading the sandbox's call counts")?
        .into_inner()
        .lost_replies
        .values()
        .sum();
    let mut policies = BTreeMap::new();
    for case in &workload.cases {
        *policies.entry(case.policy.as_str()).or_insert(0u64) += 1;
    }
    let api = sandbox.api().await?;
    let verdict = verify::verify(&bootstrap, dir, &api, workload, &edits.values).await;
    drop(api);
    let _ = sandbox.stop().await;
    drop(broker);
    let verdict = verdict?;

    let report = json!({
        "events": workload.messages.len(),
        "cases": workload.cases.len(),
        "reader_kills": faults.reader_kills,
        "broker_restarts": faults.broker_restarts,
        "api_outage_s": faults.api_outage_s,
        "lost_updates": verdict.lost_updates,
        "duplicate_comments": verdict.duplicate_comments,
        "wrong_fields": verdict.wrong_fields,
        "unaccounted_messages": verdict.unaccounted_messages,
        "misrouted": verdict.misrouted,
        "diverged": verdict.diverged,
        "sites": {"jira": workload::JIRA_SITES.len(), "servicenow": workload::INSTANCES.len()},
        "same_second_changes": workload.same_second_changes,
        "reordered_transitions": workload.reordered_transitions,
        "lost_replies": lost_replies,
        "handled_more_than_once": verdict.handled_more_than_once,
        "conflict_policies": policies,
        "conflict_entries": verdict.conflict_entries,
        "quick": quick,
        "seed": seed,
        "seconds": started.elapsed().as_secs_f64(),
        "raw": {
            "messages_on_topics": verdict.messages_on_topics,
            "handled_more_than_once": verdict.handled_more_than_once,
            "outcomes": verdict.outcomes,
            "workload_kinds": workload.kinds,
            "aborted_injected": faults.aborted_injected,
            "latency_ms": plan.latency_ms,
            "latency_s": faults.latency_s,
            "datadog_edits": edits.writes,
            "datadog_edit_conflicts": edits.conflicts,
            "reader_exits": reader_exits,
            "unclean_stops": unclean_stops,
            "expected_comments": verdict.expected_comments,
            "problems": verdict.problems,
            "partitions": PARTITIONS,
            "readers": 2 * READERS_PER_FLAVOR,
        }
    });
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    for problem in verdict.problems.iter().take(20) {
        println!("  problem: {problem}");
    }
    println!(
        "chaos: {} events, {} reader kills, {} broker restarts, {:.0} s API outage, {} ABORTED, {} lost replies, {} Datadog edits -> lost_updates {}, duplicate_comments {}, wrong_fields {}, unaccounted_messages {}, misrouted {}, diverged {} ({} handled twice; {:.0} s; {})",
        workload.messages.len(),
        faults.reader_kills,
        faults.broker_restarts,
        faults.api_outage_s,
        faults.aborted_injected,
        lost_replies,
        edits.writes,
        verdict.lost_updates,
        verdict.duplicate_comments,
        verdict.wrong_fields,
        verdict.unaccounted_messages,
        verdict.misrouted,
        verdict.diverged,
        verdict.handled_more_than_once,
        started.elapsed().as_secs_f64(),
        path.display()
    );

    let mut failures = Vec::new();
    if let Err(e) = caught_up {
        failures.push(format!("the readers did not catch up: {e:#}"));
    }
    for (name, value) in [
        ("lost_updates", verdict.lost_updates),
        ("duplicate_comments", verdict.duplicate_comments),
        ("wrong_fields", verdict.wrong_fields),
        ("unaccounted_messages", verdict.unaccounted_messages),
        ("misrouted", verdict.misrouted),
        ("diverged", verdict.diverged),
    ] {
        if value > 0 {
            failures.push(format!("{name} = {value}"));
        }
    }
    for (pattern, count) in [
        ("same_second_changes", workload.same_second_changes),
        ("reordered_transitions", workload.reordered_transitions),
        ("lost_replies", lost_replies),
        ("handled_more_than_once", verdict.handled_more_than_once),
    ] {
        if count == 0 {
            failures.push(format!("the run had no {pattern}"));
        }
    }
    if faults.reader_kills < plan.reader_kills || faults.broker_restarts < plan.broker_restarts {
        failures.push("fewer faults than planned".into());
    }
    if !unclean_stops.is_empty() {
        failures.push(format!(
            "readers did not stop cleanly: {}",
            unclean_stops.join(", ")
        ));
    }
    if !failures.is_empty() {
        bail!("chaos run failed: {}", failures.join("; "));
    }
    Ok(())
}

// ---- Faults -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Action {
    KillReader,
    RestartBroker,
    Outage,
    AbortedBurst,
    LostReplies,
    Latency(bool),
}

/// When each fault happens, from the start of production.
fn timeline(plan: Plan, rng: &mut Rng) -> Vec<(Duration, Action)> {
    let window = plan.produce_for.as_secs_f64();
    let at = |fraction: f64| Duration::from_secs_f64(window * fraction);
    let mut events = Vec::new();
    // Kills spread over the window (and a little past it, while the readers catch up), each
    // jittered within its slot.
    let kills = f64::from(plan.reader_kills);
    for k in 0..plan.reader_kills {
        let jitter = (rng.below(1000) as f64 / 1000.0 - 0.5) * 0.8;
        let fraction = (f64::from(k) + 0.5 + jitter) / kills * 1.05;
        events.push((at(fraction), Action::KillReader));
    }
    for r in 0..plan.broker_restarts {
        let fraction = f64::from(r + 1) / f64::from(plan.broker_restarts + 1) + 0.03;
        events.push((at(fraction), Action::RestartBroker));
    }
    events.push((at(0.42), Action::Outage));
    for b in 0..plan.aborted_bursts {
        let fraction = (f64::from(b) + 0.5) / f64::from(plan.aborted_bursts);
        events.push((at(fraction), Action::AbortedBurst));
    }
    for b in 0..plan.lost_reply_bursts {
        let fraction = (f64::from(b) + 0.25) / f64::from(plan.lost_reply_bursts);
        events.push((at(fraction), Action::LostReplies));
    }
    events.push((at(0.1), Action::Latency(true)));
    events.push((at(0.3), Action::Latency(false)));
    events.sort_by_key(|(at, _)| *at);
    events
}

/// The next `count` calls of `method` commit, then fail UNAVAILABLE instead of replying.
async fn lose_replies(
    admin: &mut SandboxAdminClient<tonic::transport::Channel>,
    method: &str,
    count: u32,
) -> Result<()> {
    admin
        .inject_fault(admin::InjectFaultRequest {
            method: method.into(),
            code: UNAVAILABLE,
            count,
            message: "reply lost after the commit".into(),
            duration_ms: 0,
            lose_reply: true,
        })
        .await
        .context("injecting lost replies")?;
    Ok(())
}

async fn inject(
    admin: &mut SandboxAdminClient<tonic::transport::Channel>,
    method: &str,
    code: i32,
    count: u32,
    duration: Duration,
) -> Result<()> {
    admin
        .inject_fault(admin::InjectFaultRequest {
            method: method.into(),
            code,
            count,
            message: String::new(),
            duration_ms: duration.as_millis() as u64,
            lose_reply: false,
        })
        .await
        .with_context(|| format!("injecting a fault on {method}"))?;
    Ok(())
}

// ---- Readers ------------------------------------------------------------------------------

/// One reader's place: restarted whenever it dies.
struct Slot {
    flavor: Flavor,
    index: usize,
    binary: PathBuf,
    config: PathBuf,
    health: SocketAddr,
    process: Option<ReaderProcess>,
    incarnation: u32,
    /// Exit codes of the times it died on its own (not killed by the harness).
    exits: Vec<Option<i32>>,
}

impl Slot {
    fn name(&self) -> String {
        format!("{}-{}", self.flavor.name(), self.index)
    }

    fn start(&mut self, logs: &Path) -> Result<()> {
        self.incarnation += 1;
        let log = logs.join(format!("{}-{:03}.log", self.name(), self.incarnation));
        self.process = Some(ReaderProcess::spawn_with_env(
            &self.binary,
            &self.config,
            &[],
            &[("RUST_LOG", READER_LOG)],
            self.health,
            &log,
        )?);
        Ok(())
    }

    async fn kill_and_restart(&mut self, logs: &Path) -> Result<()> {
        if let Some(reader) = self.process.take() {
            reader.kill().await?;
        }
        self.start(logs)
    }
}

fn start_readers(
    dir: &Path,
    bins: &Binaries,
    bootstrap: &str,
    endpoint: &str,
) -> Result<Vec<Slot>> {
    let mut slots = Vec::new();
    for flavor in FLAVORS {
        let binary = match flavor {
            Flavor::Jira => bins.jira_reader.clone(),
            Flavor::ServiceNow => bins.servicenow_reader.clone(),
            Flavor::GitHub => bins.github_reader.clone(),
        };
        for index in 0..READERS_PER_FLAVOR {
            let health: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
            let integration = match flavor {
                Flavor::Jira => format!("own_account_ids = [\"{}\"]", workload::JIRA_BOT),
                Flavor::ServiceNow => {
                    format!("own_user_names = [\"{}\"]", workload::SERVICENOW_BOT)
                }
                Flavor::GitHub => "own_accounts = [\"datadog[bot]\"]".to_owned(),
            };
            let config = format!(
                r#"# Written by `cargo xtask chaos`.
[kafka]
brokers = "{bootstrap}"
topic = "{topic}"
group_id = "{GROUP}"
auto_offset_reset = "earliest"
auto_commit_interval_ms = 500
drain_timeout_ms = 5000
# Key-ordered concurrency on: the chaos is run against the concurrent partition tasks.
max_in_flight = {MAX_IN_FLIGHT}

[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"fetch.wait.max.ms" = "100"

[case_api]
endpoint = "{endpoint}"
timeout_ms = 2000

[retry]
max_retries = 6
initial_backoff_ms = 100
max_backoff_ms = 2000

[health]
listen = "{health}"

[integration]
{integration}
"#,
                topic = flavor.topic(),
            );
            let path = dir.join(format!("{}-{index}.toml", flavor.name()));
            std::fs::write(&path, config)?;
            let mut slot = Slot {
                flavor,
                index,
                binary: binary.clone(),
                config: path,
                health,
                process: None,
                incarnation: 0,
                exits: Vec::new(),
            };
            slot.start(&dir.join("readers"))?;
            slots.push(slot);
        }
    }
    Ok(slots)
}

/// Restarts every reader that exits on its own (exhausted retries exit with 3), like a
/// Kubernetes Deployment would, until told to stop.
async fn supervise(
    slots: Arc<Mutex<Vec<Slot>>>,
    logs: PathBuf,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    while !stop.load(Ordering::Relaxed) {
        {
            let mut slots = slots.lock().await;
            for slot in slots.iter_mut() {
                let exited = match slot.process.as_mut() {
                    Some(reader) => reader.try_wait()?,
                    None => None,
                };
                if let Some(status) = exited {
                    println!(
                        "  reader {} exited on its own ({status}); restarting",
                        slot.name()
                    );
                    slot.exits.push(status.code());
                    slot.process = None;
                    slot.start(&logs)?;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

// ---- Traffic ------------------------------------------------------------------------------

/// Produces the workload in order, evenly over `over`; fails if a message cannot be delivered.
async fn produce(
    bootstrap: String,
    messages: Vec<workload::Message>,
    over: Duration,
    produced: Arc<AtomicU64>,
) -> Result<()> {
    // One request in flight per connection keeps each partition in workload order across
    // retries (a broker restart makes the client retry).
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "300000")
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .set("retry.backoff.ms", "200")
        .create()
        .context("creating the producer")?;
    let started = Instant::now();
    let total = messages.len();
    for (chunk_index, chunk) in messages.chunks(100).enumerate() {
        let mut deliveries = Vec::with_capacity(chunk.len());
        for (offset, message) in chunk.iter().enumerate() {
            let index = (chunk_index * 100 + offset).to_string();
            let record = FutureRecord::to(message.flavor.topic())
                .key(&message.key)
                .payload(&message.payload)
                .headers(OwnedHeaders::new().insert(Header {
                    key: verify::INDEX_HEADER,
                    value: Some(index.as_bytes()),
                }));
            deliveries.push(producer.send(record, Duration::from_secs(300)));
        }
        for delivery in deliveries {
            delivery
                .await
                .map_err(|(e, _)| anyhow!("a workload message was not delivered: {e}"))?;
        }
        let done = (chunk_index * 100 + chunk.len()) as u64;
        produced.store(done, Ordering::Relaxed);
        let due = over.mul_f64(done as f64 / total as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    Ok(())
}

/// What the Datadog-side editor wrote.
#[derive(Debug, Default)]
struct Edits {
    /// The last value written per case id.
    values: BTreeMap<String, Option<String>>,
    writes: u64,
    /// Writes that failed with a version mismatch (or a fault) and were retried.
    conflicts: u64,
}

/// Edits the cases' Datadog-side field (priority of Jira cases, status of ServiceNow cases, both
/// also written by the third party) with versioned updates, as a user in Datadog would, until
/// told to stop.
async fn edit_in_datadog(
    api: GrpcCaseApi,
    cases: Vec<ExpectedCase>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Edits {
    let mut edits = Edits::default();
    let mut rng = Rng::new(seed ^ 0xED17);
    if cases.is_empty() {
        return edits;
    }
    while !stop.load(Ordering::Relaxed) {
        let case = &cases[rng.below(cases.len())];
        let Some(field) = case.edited_in_datadog else {
            continue;
        };
        let value = edit_once(&api, case, field, &mut edits.conflicts).await;
        edits.values.insert(case.case_id.clone(), value);
        edits.writes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    edits
}

/// One edit: read, write at the read version, re-read on failure, until it is written (faults
/// end); returns the value written.
async fn edit_once(
    api: &GrpcCaseApi,
    case: &ExpectedCase,
    field: CaseField,
    conflicts: &mut u64,
) -> Option<String> {
    let mut intended: Option<Option<String>> = None;
    loop {
        let current = match api.get_case(ORG, &case.case_id).await {
            Ok(Some(current)) => current,
            _ => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // A failed write may still have happened (e.g. a reply lost after the commit): only the
        // editor writes its values (the third party never uses them), so finding the intended
        // value means it did.
        if let Some(value) = &intended
            && current.field_value(field) == *value
        {
            return value.clone();
        }
        // Values the third party never writes (see `workload`), alternating.
        let (change, value) = match field {
            CaseField::Priority => {
                let value = workload::EDITOR_PRIORITIES
                    .into_iter()
                    .find(|v| current.priority.as_deref() != Some(*v))
                    .unwrap_or(workload::EDITOR_PRIORITIES[0])
                    .to_owned();
                (FieldChange::Priority(Some(value.clone())), Some(value))
            }
            _ => {
                let value = workload::EDITOR_STATUSES
                    .into_iter()
                    .find(|v| current.status != *v)
                    .unwrap_or(workload::EDITOR_STATUSES[0])
                    .to_owned();
                (FieldChange::Status(value.clone()), Some(value))
            }
        };
        intended = Some(value.clone());
        let update = CaseUpdate {
            org_id: ORG,
            case_id: case.case_id.clone(),
            expected_version: current.version,
            change,
            writer: thirdparty_core::UpdateWriter::Person {
                user_id: Some("datadog-editor".into()),
            },
        };
        match api.update_case(&update).await {
            Ok(_) => return value,
            Err(_) => {
                *conflicts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
