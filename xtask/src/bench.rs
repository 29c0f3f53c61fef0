//! `cargo xtask bench [--quick] [--broker tansu]`: throughput, latency, decode speed and cache
//! effectiveness, each reported as a ratio against a limit measured in the same run, on the same
//! broker and the same sandbox (the machine is shared and noisy: absolute figures move, ratios
//! much less).
//!
//! One run, in this order:
//! 1. decode: the criterion benchmark `integration-jira/benches/decode.rs` (typed Jira decode of
//!    an ~8 KiB webhook against a `serde_json::Value` parse of the same bytes), each function
//!    measured in alternating runs, keeping each one's lowest median (the machine is shared and
//!    its speed drifts from run to run: one slow run of one function would skew the ratio);
//! 2. limit A: a bare rdkafka consumer with the reader's client settings reads topic T;
//! 3. filtered: the release jira-reader reads T, where every event is dropped by the pre-filter
//!    (the Jira project has no sync metadata);
//! 4. limit B: sequential `UpdateCase` round trips from one client to the sandbox;
//! 5. applied: the reader applies title changes over many seeded cases at 1, 2 and 4
//!    partitions (a fresh reader and topic each);
//! 6. latency: a fresh reader on one partition, events produced at a steady rate with their
//!    webhook timestamp = produce time; p50 and p99 from the reader's `end_to_end_latency`;
//! 7. key order: the sandbox adds 5 ms to every Case API call (`SetLatency`); a fresh reader at
//!    `max_in_flight` 1, 8 and 64 (twice) on one partition adds comments round-robin to 256
//!    issues (each linked to its own case, seeded through the admin `Seed` RPC); limit C,
//!    alternating with the runs at 64: `UpdateCase` from 64 concurrent callers; an order run at
//!    64 packs each issue's comments 16 messages apart; then every case's comments are read
//!    back: each issue's must be each run's in source order, exactly once (the bench fails
//!    otherwise, after writing the report).
//!
//! Throughput is measured from the readers' `/metrics` counters, from the first event handled to
//! the last (so the group join is not counted), with the topic filled before the reader starts.
//! The sandbox is the release `case-api-sandbox` binary, a process of its own on a loopback port
//! (in memory), so neither the bench's debug build nor its feeder slows it; its per-method call
//! counts come from its admin `CallCounts` RPC, so they are exact (settings and metadata RPCs per
//! 1,000 events). Peak RSS is each reader's `VmHWM`.
//!
//! Writes `target/bench/report.json`, `report.md` and `throughput.svg`, and prints the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use case_api::pb::sandbox::v1 as admin;
use case_api::pb::sandbox::v1::sandbox_admin_client::SandboxAdminClient;
use case_api_sandbox::{DEMO_SEED_JSON, Seed};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use reader_runtime::config::KafkaConfig;
use reader_runtime::testkit::{TestBroker, free_port, http_get, metric_by_label, metric_sum};
use serde_json::{Value, json};
use thirdparty_core::CaseApi as _;
use tokio::process::{Child, Command};

use crate::demo::{BrokerKind, Sandbox};

/// The ~8 KiB webhook the decode benchmark uses; every Kafka message is derived from it.
const WEBHOOK: &str = include_str!("../../crates/integration-jira/benches/issue_updated_8k.json");
/// Changelog items in [`WEBHOOK`]: the filtered traffic yields this many changelogs per event.
const WEBHOOK_ITEMS: u64 = 7;
/// The org, Jira site and project the demo seed configures for Jira.
const ORG_ID: u64 = 123_456;
const PROJECT_ID: &str = "b7e2c1a4-5d3f-4e8a-9c61-0f2d4a7b8e01";
/// A Jira project without sync metadata: the pre-filter drops its events.
const UNCONFIGURED_JIRA_PROJECT: &str = "10999";
/// An author that is not one of our sync accounts (John Smith in the demo seed).
const AUTHOR: &str = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077";
/// Jira issue ids of the seeded bench cases start here.
const FIRST_ISSUE: u64 = 900_000;
/// Partition counts of the applied traffic.
const PARTITIONS: [i32; 3] = [1, 2, 4];
/// The comment webhook every key-order message is derived from.
const COMMENT_WEBHOOK: &str =
    include_str!("../../crates/integration-jira/fixtures/cloud_comment_created.json");
/// A step of the key-order phase.
#[derive(Debug, Clone, Copy)]
enum KeyedStep {
    /// A fresh reader with `max_in_flight`, on one partition, over the issues in round-robin
    /// groups of `group` (see [`keyed_order`]).
    Reader { max_in_flight: usize, group: u64 },
    /// Limit C.
    LimitC,
}

/// Key order: the steps, in order. The measured runs go round-robin over all the issues (an
/// issue's next comment comes [`KEYED_ITEMS`] messages later, at the edge of the reader's window
/// at 64 in flight (256 messages), so almost nothing waits on its own issue). The reader at 64 and limit C, which are compared, run
/// twice, alternating (C, 64, 64, C), each keeping its best: the machine is shared and its load
/// drifts (as the decode benchmark does). Last, the order run at 64 goes round-robin over
/// groups of [`ORDER_GROUP`] issues: an issue's comments come 16 messages apart, so several of
/// them are in flight and in the window at once, and handling them concurrently would reorder
/// them.
const KEYED_STEPS: [KeyedStep; 7] = [
    KeyedStep::Reader {
        max_in_flight: 1,
        group: KEYED_ITEMS,
    },
    KeyedStep::Reader {
        max_in_flight: 8,
        group: KEYED_ITEMS,
    },
    KeyedStep::LimitC,
    KeyedStep::Reader {
        max_in_flight: 64,
        group: KEYED_ITEMS,
    },
    KeyedStep::Reader {
        max_in_flight: 64,
        group: KEYED_ITEMS,
    },
    KeyedStep::LimitC,
    KeyedStep::Reader {
        max_in_flight: 64,
        group: ORDER_GROUP,
    },
];
/// Key order: issues per round-robin group of the order run.
const ORDER_GROUP: u64 = 16;
/// Key order: distinct Jira issues, each linked to its own case.
const KEYED_ITEMS: u64 = 256;
/// Key order: case numbers (and issues, from [`FIRST_ISSUE`]) of the key-order cases start here,
/// far above the seeded bench cases.
const KEYED_FIRST_CASE: u64 = 1_000_000;
/// Key order: the latency the sandbox adds to every Case API call.
const KEYED_LATENCY_MS: u64 = 5;
/// Key order: the concurrent callers of limit C (as many as the reader's `max_in_flight`).
const CONCURRENT_CLIENTS: u64 = 64;
/// The reader's librdkafka pass-through, shared by the bare consumer (limit A).
/// `fetch.wait.max.ms`: librdkafka's mock cluster holds a fetch that finds no data for the whole
/// wait, even when data arrives meanwhile (a real broker answers as soon as `fetch.min.bytes`
/// is there), so on it every idle fetch adds up to this much latency.
const KAFKA_PROPERTIES: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "500"),
    ("fetch.wait.max.ms", "5"),
];
/// Unconsumed events per partition the feeder allows (well under the mock cluster's ~5 MiB
/// partition retention).
const MAX_BACKLOG: u64 = 300;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How much traffic each phase gets.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Messages on topic T (limit A and filtered traffic).
    filtered_events: u64,
    /// Messages per applied run.
    applied_events: u64,
    /// Seeded cases the applied traffic spreads over (a multiple of 4).
    cases: u64,
    /// Duration of the limit-B loop.
    limit_b: Duration,
    /// Duration of the latency phase.
    latency: Duration,
    /// Key order: comments per issue per run at `max_in_flight` 1 (the slow one), and above.
    keyed_changes: (u64, u64),
    /// Criterion warm-up and measurement times per run, in seconds, and runs per function.
    criterion: (u32, u32, u32),
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                filtered_events: 20_000,
                applied_events: 3_000,
                cases: 400,
                limit_b: Duration::from_secs(3),
                latency: Duration::from_secs(5),
                keyed_changes: (1, 10),
                criterion: (1, 1, 3),
            }
        } else {
            Self {
                filtered_events: 100_000,
                applied_events: 15_000,
                cases: 2_000,
                limit_b: Duration::from_secs(10),
                latency: Duration::from_secs(15),
                keyed_changes: (4, 30),
                criterion: (2, 3, 4),
            }
        }
    }

    /// Key order: comments per issue in a run at `max_in_flight`.
    fn keyed_changes(&self, max_in_flight: usize) -> u64 {
        if max_in_flight == 1 {
            self.keyed_changes.0
        } else {
            self.keyed_changes.1
        }
    }
}

/// Runs the benchmark from the workspace `root`.
pub fn run(root: &Path, quick: bool, broker: BrokerKind) -> Result<()> {
    let started = Instant::now();
    let sizes = Sizes::new(quick);
    if broker == BrokerKind::Tansu {
        crate::broker::ensure_tansu()?;
    }
    let bins = build(root)?;
    let dir = target_dir(root).join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    println!("Decode benchmark (criterion)...");
    let decode = decode_bench(root, &dir, sizes)?;
    println!(
        "  typed {:.1} µs, Value {:.1} µs",
        decode.typed_ns / 1e3,
        decode.value_ns / 1e3
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let measured = runtime.block_on(async {
        tokio::select! {
            result = measure(&dir, broker, &bins, sizes) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    drop(runtime);
    let measured = measured.with_context(|| format!("logs in {}", dir.display()))?;

    let report = Report {
        quick,
        broker,
        decode,
        measured,
        sizes,
        seconds: started.elapsed().as_secs_f64(),
    };
    report.write(&dir)?;
    print!("{}", report.table());
    println!(
        "\nWrote {0}/report.json, {0}/report.md and {0}/throughput.svg in {1:.0} s.",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    let disorder = &report.measured.out_of_order;
    if let Some(first) = disorder.first() {
        bail!(
            "key order broken: {} of {} issues did not get their comments in source order, \
             exactly once (first: {first}; all in report.json)",
            disorder.len(),
            KEYED_ITEMS
        );
    }
    Ok(())
}

// ---- build and decode ---------------------------------------------------------------------

/// The release executables the bench runs.
#[derive(Debug)]
struct Bins {
    reader: PathBuf,
    sandbox: PathBuf,
    /// case-api's `update_round_trips` example: limit B from the reader's own client code.
    grpc_limit: PathBuf,
}

/// `cargo build --release` of jira-reader, case-api-sandbox and case-api's
/// `update_round_trips` example; returns the executables.
fn build(root: &Path) -> Result<Bins> {
    println!("Building jira-reader, case-api-sandbox and the limit-B client (release)...");
    let output = crate::cargo_command()
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
            "-p",
            "jira-reader",
            "-p",
            "case-api-sandbox",
            "-p",
            "case-api",
            "--bins",
            "--example",
            "update_round_trips",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("`cargo build --release` failed with {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let executable = |name: &str| {
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|m| m["target"]["name"] == name && m["executable"].is_string())
            .and_then(|m| m["executable"].as_str().map(PathBuf::from))
            .with_context(|| format!("cargo build reported no {name} executable"))
    };
    Ok(Bins {
        reader: executable("jira-reader")?,
        sandbox: executable("case-api-sandbox")?,
        grpc_limit: executable("update_round_trips")?,
    })
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Times per decode, from criterion: each function's lowest median over its runs.
#[derive(Debug, Clone, Copy)]
struct Decode {
    typed_ns: f64,
    value_ns: f64,
}

/// Builds the criterion benchmark, runs each function `runs` times, alternating which goes
/// first, and keeps each one's lowest median (criterion's `estimates.json`, written under
/// `dir/criterion`).
fn decode_bench(root: &Path, dir: &Path, sizes: Sizes) -> Result<Decode> {
    let (warm_up, measurement, runs) = sizes.criterion;
    let output = crate::cargo_command()
        .args([
            "bench",
            "--no-run",
            "--message-format=json-render-diagnostics",
            "-p",
            "integration-jira",
            "--bench",
            "decode",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench --no-run")?;
    if !output.status.success() {
        bail!("`cargo bench --no-run` failed with {}", output.status);
    }
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|m| m["target"]["name"] == "decode" && m["executable"].is_string())
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo bench reported no decode executable")?;
    let home = dir.join("criterion");
    let run = |name: &str| -> Result<f64> {
        let status = std::process::Command::new(&executable)
            .args([
                "--bench",
                "--warm-up-time",
                &warm_up.to_string(),
                "--measurement-time",
                &measurement.to_string(),
                &format!("jira_decode_8k/{name}"),
            ])
            .env("CRITERION_HOME", &home)
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .context("running the decode benchmark")?;
        if !status.success() {
            bail!("the decode benchmark failed with {status}");
        }
        let path = home.join(format!("jira_decode_8k/{name}/new/estimates.json"));
        let estimates: Value = serde_json::from_slice(
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?;
        estimates["median"]["point_estimate"]
            .as_f64()
            .with_context(|| format!("no median in {}", path.display()))
    };
    let (mut typed_ns, mut value_ns) = (f64::INFINITY, f64::INFINITY);
    for round in 0..runs.max(1) {
        let order = if round % 2 == 0 {
            ["typed", "value"]
        } else {
            ["value", "typed"]
        };
        for name in order {
            let ns = run(name)?;
            let best = if name == "typed" {
                &mut typed_ns
            } else {
                &mut value_ns
            };
            *best = best.min(ns);
        }
    }
    Ok(Decode { typed_ns, value_ns })
}

// ---- the measured phases ------------------------------------------------------------------

/// Everything measured against the broker and the sandbox.
#[derive(Debug, Default)]
struct Measured {
    broker: String,
    bare_consumer_eps: f64,
    filtered_eps: f64,
    filtered_changelogs: u64,
    filtered_case_lookups: u64,
    filtered_reasons: BTreeMap<String, f64>,
    grpc_limit_cps: f64,
    grpc_limit_calls: u64,
    applied: Vec<Applied>,
    settings_rpcs: u64,
    metadata_rpcs: u64,
    applied_total: u64,
    latency_rate_eps: f64,
    latency_events: u64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mib: f64,
    /// Limit C: `UpdateCase` calls/s of [`CONCURRENT_CLIENTS`] callers at the key-order latency,
    /// per measurement.
    concurrent_grpc_runs: Vec<f64>,
    concurrent_grpc_calls: u64,
    keyed: Vec<Keyed>,
    /// Issues whose comments the order check read back.
    keyed_checked_items: u64,
    /// One line per issue whose comments are not exactly its changes in source order.
    out_of_order: Vec<String>,
    /// Wall time of the key-order phase (seeding, limit C, three readers, the check).
    keyed_seconds: f64,
}

/// One key-order run.
#[derive(Debug, Clone, Copy)]
struct Keyed {
    /// The run's number (from 1), which tags its comments.
    run: usize,
    max_in_flight: usize,
    /// Issues per round-robin group ([`KEYED_ITEMS`]: a measured run; less: the order run).
    group: u64,
    /// Comments per issue.
    changes: u64,
    events: u64,
    eps: f64,
    case_api_calls_per_event: f64,
}

/// One applied run.
#[derive(Debug, Clone, Copy)]
struct Applied {
    partitions: i32,
    events: u64,
    eps: f64,
    case_api_calls_per_event: f64,
}

/// Per-method call counts of the sandbox, from its admin API.
struct CallCounts {
    admin: SandboxAdminClient<tonic::transport::Channel>,
}

/// One `CallCounts` answer: calls per full method path.
type Calls = std::collections::HashMap<String, u64>;

impl CallCounts {
    async fn connect(endpoint: &str) -> Result<Self> {
        let admin = SandboxAdminClient::connect(endpoint.to_owned())
            .await
            .context("connecting to the sandbox admin service")?;
        Ok(Self { admin })
    }

    async fn now(&mut self) -> Result<Calls> {
        Ok(self
            .admin
            .call_counts(admin::CallCountsRequest {})
            .await
            .context("CallCounts")?
            .into_inner()
            .calls)
    }
}

/// Calls of `method` (a method name, or `*` for all) in `calls`.
fn count(calls: &Calls, method: &str) -> u64 {
    calls
        .iter()
        .filter(|(path, _)| method == "*" || path.rsplit('/').next() == Some(method))
        .map(|(_, n)| n)
        .sum()
}

async fn measure(dir: &Path, kind: BrokerKind, bins: &Bins, sizes: Sizes) -> Result<Measured> {
    let binary = bins.reader.as_path();
    let broker = match kind {
        BrokerKind::Embedded => TestBroker::embedded()?,
        BrokerKind::Tansu => TestBroker::tansu(&dir.join("tansu")).await?,
    };
    let bootstrap = broker.bootstrap();
    let mut m = Measured {
        broker: match broker {
            TestBroker::Embedded(_) => "embedded mock cluster".into(),
            TestBroker::Tansu(_) => "Tansu".into(),
        },
        ..Measured::default()
    };
    println!("Kafka ({}) on {bootstrap}", m.broker);

    let seed_file = dir.join("sandbox-seed.json");
    std::fs::write(&seed_file, seed(sizes.cases)?)
        .with_context(|| format!("writing {}", seed_file.display()))?;
    let sandbox = Sandbox::start(&bins.sandbox, &seed_file, dir, None).await?;
    let endpoint = sandbox.endpoint.clone();
    println!("Sandbox Case API on {endpoint} (release binary, in memory)");
    let mut calls = CallCounts::connect(&endpoint).await?;
    let producer = bulk_producer(&bootstrap)?;
    let mut clock = EventClock::new();
    let template: Value = serde_json::from_str(WEBHOOK).context("parsing the webhook")?;

    // Limit A and filtered traffic, on topic T.
    let topic = "bench-jira-filtered";
    broker.create_topic(topic, 1).await?;
    let filtered: Vec<(String, Vec<u8>)> = (0..sizes.filtered_events)
        .map(|i| {
            let issue = FIRST_ISSUE + i % sizes.cases;
            let value = filtered_message(&template, issue, clock.next())?;
            Ok((issue.to_string(), value))
        })
        .collect::<Result<_>>()?;
    println!(
        "Topic T: {} events of {} bytes (fed while consumed, one copy per consumer)",
        filtered.len(),
        filtered[0].1.len()
    );
    let bare_topic = "bench-jira-filtered-bare";
    broker.create_topic(bare_topic, 1).await?;
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let (fed, bare) = tokio::join!(
        feed(&producer, bare_topic, 1, &filtered, rx),
        bare_consumer(&bootstrap, bare_topic, sizes.filtered_events, tx)
    );
    fed?;
    m.bare_consumer_eps = bare?;
    println!(
        "  limit A (bare consumer): {:.0} events/s",
        m.bare_consumer_eps
    );

    let lookups =
        |calls: &Calls| count(calls, "GetCase") + count(calls, "FindCaseByExternalReference");
    let lookups_before = lookups(&calls.now().await?);
    let mut reader = Reader::start(binary, dir, "filtered", &bootstrap, topic, &endpoint, None)?;
    reader.wait_ready().await?;
    let filtered_name = "dd_case_third_party_reader_jira_filtered";
    let expected = sizes.filtered_events * WEBHOOK_ITEMS;
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let (fed, rate) = tokio::join!(
        feed(&producer, topic, 1, &filtered, rx),
        reader.rate(
            expected,
            |text| metric_sum(text, filtered_name, &[]),
            WEBHOOK_ITEMS,
            tx
        )
    );
    fed?;
    drop(filtered);
    m.filtered_eps = rate? / WEBHOOK_ITEMS as f64;
    m.filtered_changelogs = expected;
    m.filtered_reasons = metric_by_label(&reader.metrics().await?, filtered_name, "reason");
    m.filtered_case_lookups = lookups(&calls.now().await?) - lookups_before;
    m.peak_rss_mib = m.peak_rss_mib.max(reader.peak_rss_mib()?);
    reader.stop().await?;
    println!("  filtered traffic: {:.0} events/s", m.filtered_eps);

    // Limit B.
    let before = count(&calls.now().await?, "UpdateCase");
    m.grpc_limit_cps = grpc_limit(&bins.grpc_limit, &endpoint, sizes, &mut clock, 1).await?;
    m.grpc_limit_calls = count(&calls.now().await?, "UpdateCase") - before;
    println!(
        "  limit B (UpdateCase round trips): {:.0} calls/s",
        m.grpc_limit_cps
    );

    // Applied traffic at 1, 2 and 4 partitions.
    let processed =
        |text: &str| metric_sum(text, "dd_case_third_party_reader_changelog_processed", &[]);
    for partitions in PARTITIONS {
        let topic = format!("bench-jira-applied-{partitions}");
        broker.create_topic(&topic, partitions).await?;
        let messages: Vec<(String, Vec<u8>)> = (0..sizes.applied_events)
            .map(|i| {
                let issue = FIRST_ISSUE + i % sizes.cases;
                let value = applied_message(&template, issue, i, clock.next())?;
                Ok((issue.to_string(), value))
            })
            .collect::<Result<_>>()?;
        let before = calls.now().await?;
        let name = format!("applied-{partitions}");
        let mut reader = Reader::start(binary, dir, &name, &bootstrap, &topic, &endpoint, None)?;
        reader.wait_ready().await?;
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let (fed, eps) = tokio::join!(
            feed(&producer, &topic, partitions, &messages, rx),
            reader.rate(sizes.applied_events, processed, 1, tx)
        );
        fed?;
        let eps = eps?;
        drop(messages);
        m.peak_rss_mib = m.peak_rss_mib.max(reader.peak_rss_mib()?);
        reader.stop().await?;
        let after = calls.now().await?;
        let delta = |method: &str| count(&after, method) - count(&before, method);
        m.settings_rpcs += delta("GetProjectSettings");
        m.metadata_rpcs += delta("ListSyncMetadata");
        m.applied_total += sizes.applied_events;
        let per_event = delta("*") as f64 / sizes.applied_events as f64;
        println!(
            "  applied, {partitions} partition(s): {eps:.0} events/s ({per_event:.2} Case API calls per event)"
        );
        m.applied.push(Applied {
            partitions,
            events: sizes.applied_events,
            eps,
            case_api_calls_per_event: per_event,
        });
    }

    // Latency at a steady rate below capacity.
    let topic = "bench-jira-latency";
    broker.create_topic(topic, 1).await?;
    let mut reader = Reader::start(binary, dir, "latency", &bootstrap, topic, &endpoint, None)?;
    reader.wait_ready().await?;
    let capacity = m.applied.first().map(|a| a.eps).unwrap_or(100.0);
    m.latency_rate_eps = (capacity * 0.5).clamp(10.0, 200.0).round();
    let sent = paced(
        &latency_producer(&bootstrap)?,
        topic,
        &template,
        m.latency_rate_eps,
        sizes,
        &mut clock,
    )
    .await?;
    m.latency_events = sent;
    reader.wait_count(sent, processed).await?;
    let text = reader.metrics().await?;
    let latency = "case_case_third_party_reader_end_to_end_latency";
    m.p50_ms = metric_sum(&text, latency, &[("quantile", "0.5")]);
    m.p99_ms = metric_sum(&text, latency, &[("quantile", "0.99")]);
    m.peak_rss_mib = m.peak_rss_mib.max(reader.peak_rss_mib()?);
    reader.stop().await?;
    println!(
        "  latency at {:.0} events/s: p50 {:.1} ms, p99 {:.1} ms",
        m.latency_rate_eps, m.p50_ms, m.p99_ms
    );

    // Key order: every Case API call KEYED_LATENCY_MS slower, one partition, KEYED_ITEMS issues.
    let keyed_started = Instant::now();
    let cases = json!({
        "cases": (0..KEYED_ITEMS)
            .map(|j| bench_case(KEYED_FIRST_CASE + j))
            .collect::<Vec<_>>(),
    });
    let seeded = calls
        .admin
        .seed(admin::SeedRequest {
            json: cases.to_string(),
        })
        .await
        .context("seeding the key-order cases")?
        .into_inner();
    if u64::from(seeded.cases) != KEYED_ITEMS {
        bail!(
            "the sandbox seeded {} key-order cases, not {KEYED_ITEMS}",
            seeded.cases
        );
    }
    calls
        .admin
        .set_latency(admin::SetLatencyRequest {
            method: "*".into(),
            millis: KEYED_LATENCY_MS,
        })
        .await
        .context("SetLatency")?;
    println!(
        "Key order: {KEYED_LATENCY_MS} ms added to every Case API call, {KEYED_ITEMS} issues on one partition"
    );
    let comment: Value = serde_json::from_str(COMMENT_WEBHOOK).context("parsing the comment")?;
    for step in KEYED_STEPS {
        let (max_in_flight, group) = match step {
            KeyedStep::Reader {
                max_in_flight,
                group,
            } => (max_in_flight, group),
            KeyedStep::LimitC => {
                let before = count(&calls.now().await?, "UpdateCase");
                let cps = grpc_limit(
                    &bins.grpc_limit,
                    &endpoint,
                    sizes,
                    &mut clock,
                    CONCURRENT_CLIENTS,
                )
                .await?;
                m.concurrent_grpc_calls += count(&calls.now().await?, "UpdateCase") - before;
                m.concurrent_grpc_runs.push(cps);
                println!(
                    "  limit C (UpdateCase, {CONCURRENT_CLIENTS} concurrent callers): {cps:.0} calls/s"
                );
                continue;
            }
        };
        let run = m.keyed.len() + 1;
        let changes = sizes.keyed_changes(max_in_flight);
        let topic = format!("bench-jira-keyed-{run}");
        broker.create_topic(&topic, 1).await?;
        let messages: Vec<(String, Vec<u8>)> = keyed_order(KEYED_ITEMS, group, changes)
            .map(|(j, k)| {
                let issue = FIRST_ISSUE + KEYED_FIRST_CASE + j;
                let id = run as u64 * 100_000_000 + j * 10_000 + k;
                let body = keyed_body(run, k);
                let value = comment_message(&comment, issue, id, &body, clock.next())?;
                Ok((issue.to_string(), value))
            })
            .collect::<Result<_>>()?;
        let events = messages.len() as u64;
        let before = calls.now().await?;
        let name = format!("keyed-{run}-{max_in_flight}");
        let mut reader = Reader::start(
            binary,
            dir,
            &name,
            &bootstrap,
            &topic,
            &endpoint,
            Some(max_in_flight),
        )?;
        reader.wait_ready().await?;
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let (fed, eps) = tokio::join!(
            feed(&producer, &topic, 1, &messages, rx),
            reader.rate(events, processed, 1, tx)
        );
        fed?;
        let eps = eps?;
        drop(messages);
        m.peak_rss_mib = m.peak_rss_mib.max(reader.peak_rss_mib()?);
        reader.stop().await?;
        let after = calls.now().await?;
        let per_event = (count(&after, "*") - count(&before, "*")) as f64 / events as f64;
        let what = if group == KEYED_ITEMS {
            String::new()
        } else {
            format!(" (order run, issues in groups of {group})")
        };
        println!(
            "  max_in_flight {max_in_flight}{what}: {eps:.0} events/s ({per_event:.2} Case API calls per event)"
        );
        m.keyed.push(Keyed {
            run,
            max_in_flight,
            group,
            changes,
            events,
            eps,
            case_api_calls_per_event: per_event,
        });
    }
    calls
        .admin
        .clear_faults(admin::ClearFaultsRequest {})
        .await
        .context("ClearFaults")?;
    let api = sandbox.api().await?;
    for j in 0..KEYED_ITEMS {
        let case = case_id(KEYED_FIRST_CASE + j);
        let comments = api
            .list_comments(ORG_ID, &case)
            .await
            .map_err(|e| anyhow!("listing the comments of case {case}: {e}"))?;
        let bodies: Vec<&str> = comments.iter().map(|c| c.body.as_str()).collect();
        let issue = FIRST_ISSUE + KEYED_FIRST_CASE + j;
        if let Some(problem) = disorder(&bodies, &m.keyed) {
            m.out_of_order.push(format!("issue {issue}: {problem}"));
        }
        m.keyed_checked_items += 1;
    }
    m.keyed_seconds = keyed_started.elapsed().as_secs_f64();
    println!(
        "  order check: {} of {} issues out of order ({:.0} s for the key-order runs)",
        m.out_of_order.len(),
        m.keyed_checked_items,
        m.keyed_seconds
    );

    drop(calls);
    sandbox.stop().await?;
    drop(broker);
    Ok(m)
}

/// The demo seed plus `cases` cases in the Jira project, each referenced by one Jira issue (as
/// the sandbox's `--seed` JSON, checked here).
fn seed(cases: u64) -> Result<String> {
    let mut doc: Value = serde_json::from_str(DEMO_SEED_JSON).context("parsing the demo seed")?;
    let list = doc["cases"]
        .as_array_mut()
        .context("the demo seed has a `cases` list")?;
    for i in 0..cases {
        list.push(bench_case(i));
    }
    let json = doc.to_string();
    Seed::from_json(&json).context("the bench seed")?;
    Ok(json)
}

/// Bench case `i` (as seed JSON), in the Jira project, referenced by Jira issue
/// `FIRST_ISSUE + i`.
fn bench_case(i: u64) -> Value {
    json!({
        "id": case_id(i),
        "org_id": ORG_ID,
        "project_id": PROJECT_ID,
        "version": 1,
        "title": format!("Bench case {i}"),
        "description": "",
        "priority": "P3",
        "status": "OPEN",
        "assignee_id": null,
        "due_date": null,
        "created_at": "2024-01-15T09:45:00Z",
        "external_references": [{
            "integration": "jira",
            "site": "acme.atlassian.net",
            "reference": (FIRST_ISSUE + i).to_string()
        }]
    })
}

/// Strictly increasing event times (epoch ms), starting an hour ago so they stay in the past;
/// the latency phase uses the wall clock, which is later still.
#[derive(Debug)]
struct EventClock {
    next_ms: i64,
}

impl EventClock {
    fn new() -> Self {
        Self {
            next_ms: now_ms() - 3_600_000,
        }
    }

    fn next(&mut self) -> i64 {
        self.next_ms += 1;
        self.next_ms
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The webhook of `issue` at `timestamp`, by a user who is not one of our sync accounts.
fn message(template: &Value, issue: u64, timestamp: i64) -> Value {
    let mut message = template.clone();
    let webhook = &mut message["webhook"];
    webhook["timestamp"] = json!(timestamp);
    webhook["user"]["accountId"] = json!(AUTHOR);
    webhook["user"]["displayName"] = json!("John Smith");
    webhook["issue"]["id"] = json!(issue.to_string());
    webhook["issue"]["key"] = json!(format!("PROJ-{issue}"));
    message
}

/// Every item of the webhook, in a project without sync metadata: all pre-filtered.
fn filtered_message(template: &Value, issue: u64, timestamp: i64) -> Result<Vec<u8>> {
    let mut message = message(template, issue, timestamp);
    message["webhook"]["issue"]["fields"]["project"]["id"] = json!(UNCONFIGURED_JIRA_PROJECT);
    Ok(serde_json::to_vec(&message)?)
}

/// Comment `body` (Jira comment id `id`) on `issue` at `timestamp`, by a user who is not one of
/// our sync accounts.
fn comment_message(
    template: &Value,
    issue: u64,
    id: u64,
    body: &str,
    timestamp: i64,
) -> Result<Vec<u8>> {
    let mut message = template.clone();
    let webhook = &mut message["webhook"];
    webhook["timestamp"] = json!(timestamp);
    webhook["issue"]["id"] = json!(issue.to_string());
    webhook["issue"]["key"] = json!(format!("PROJ-{issue}"));
    let comment = &mut webhook["comment"];
    comment["id"] = json!(id.to_string());
    comment["body"] = json!(body);
    comment["author"]["accountId"] = json!(AUTHOR);
    comment["author"]["displayName"] = json!("John Smith");
    Ok(serde_json::to_vec(&message)?)
}

/// One title change (a summary item) to a new title, applied to the case of `issue`.
fn applied_message(template: &Value, issue: u64, n: u64, timestamp: i64) -> Result<Vec<u8>> {
    let mut message = message(template, issue, timestamp);
    let title = format!("Checkout p99 latency above SLO in eu-west (revision {n}, {timestamp})");
    message["webhook"]["issue"]["fields"]["summary"] = json!(title);
    message["webhook"]["changelog"]["items"] = json!([{
        "field": "summary",
        "fieldtype": "jira",
        "fieldId": "summary",
        "from": null,
        "fromString": "Checkout latency above SLO",
        "to": null,
        "toString": title,
    }]);
    Ok(serde_json::to_vec(&message)?)
}

/// Key-order traffic over `items` issues, `changes` each, as (issue index, change number from
/// 1): the issues in consecutive groups of `group`, each group's changes round-robin over its
/// issues (change 1 of each, then change 2 of each...), so an issue's consecutive changes are
/// `group` messages apart.
fn keyed_order(items: u64, group: u64, changes: u64) -> impl Iterator<Item = (u64, u64)> {
    let group = group.max(1);
    (0..items).step_by(group as usize).flat_map(move |first| {
        (1..=changes).flat_map(move |k| (first..(first + group).min(items)).map(move |j| (j, k)))
    })
}

/// The text of key-order comment `k` (from 1) of key-order run `run`.
fn keyed_body(run: usize, k: u64) -> String {
    format!("r{run} c{k}")
}

/// What is wrong with one issue's comments (`bodies`, in insertion order) when they are not
/// exactly, for each of the `runs`, its comments in source order; `None` when they are.
fn disorder(bodies: &[&str], runs: &[Keyed]) -> Option<String> {
    let mut unclaimed = bodies.len();
    for run in runs {
        let tag = format!("r{} ", run.run);
        let found: Vec<&str> = bodies
            .iter()
            .filter_map(|body| body.strip_prefix(&tag))
            .collect();
        unclaimed = unclaimed.saturating_sub(found.len());
        let expected: Vec<String> = (1..=run.changes).map(|k| format!("c{k}")).collect();
        if found != expected {
            return Some(format!(
                "run {} (max_in_flight {}): expected c1..c{} in insertion order, found [{}]",
                run.run,
                run.max_in_flight,
                run.changes,
                found.join(" ")
            ));
        }
    }
    (unclaimed > 0).then(|| format!("{unclaimed} comment(s) of no run"))
}

// ---- Kafka --------------------------------------------------------------------------------

/// A producer that sends each message at once (the latency phase: the produce time is the
/// event time, so a linger would count as the reader's latency).
fn latency_producer(bootstrap: &str) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "0")
        .create()
        .context("creating a producer")
}

/// A producer that batches, to fill topics quickly (filling is not measured).
fn bulk_producer(bootstrap: &str) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .create()
        .context("creating a producer")
}

/// Produces `messages` to `topic` (a message's partition is its numeric key mod `partitions`,
/// so a case always lands on one partition) while keeping at most [`MAX_BACKLOG`] unconsumed
/// events per partition, as `consumed` reports them: the embedded mock cluster keeps only
/// ~5 MiB per partition (about 600 of these events), so topics cannot be filled up front.
async fn feed(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    messages: &[(String, Vec<u8>)],
    consumed: tokio::sync::watch::Receiver<u64>,
) -> Result<()> {
    let max_backlog = MAX_BACKLOG * partitions as u64;
    let mut pending = std::collections::VecDeque::new();
    for (produced, (key, value)) in (0u64..).zip(messages) {
        while produced.saturating_sub(*consumed.borrow()) >= max_backlog {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let partition = key
            .parse::<u64>()
            .map(|k| (k % partitions as u64) as i32)
            .unwrap_or(0);
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(value)
            .partition(partition);
        let future = producer
            .send_result(record)
            .map_err(|(e, _)| anyhow!("producing to {topic}: {e}"))?;
        pending.push_back(future);
        while pending.len() > 64 {
            if let Some(future) = pending.pop_front() {
                delivered(topic, future.await)?;
            }
        }
    }
    for future in pending {
        delivered(topic, future.await)?;
    }
    Ok(())
}

fn delivered<T, E: std::fmt::Display, M, C>(
    topic: &str,
    result: Result<Result<T, (E, M)>, C>,
) -> Result<()> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("producing to {topic}: {e}"),
        Err(_) => bail!("producing to {topic}: delivery cancelled"),
    }
}

/// The reader's Kafka settings (also written into its TOML).
fn kafka_config(bootstrap: &str, topic: &str, group: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: bootstrap.to_owned(),
        topic: topic.to_owned(),
        group_id: group.to_owned(),
        auto_offset_reset: reader_runtime::config::OffsetReset::Earliest,
        auto_commit_interval: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(5),
        properties: KAFKA_PROPERTIES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// Limit A: a consumer with the reader's client settings reads `count` messages of `topic`;
/// events/s from the first message to the last.
async fn bare_consumer(
    bootstrap: &str,
    topic: &str,
    count: u64,
    progress: tokio::sync::watch::Sender<u64>,
) -> Result<f64> {
    let config = kafka_config(bootstrap, topic, "bench-bare-consumer");
    let consumer: StreamConsumer = reader_runtime::kafka::client_config(&config)?
        .create()
        .context("creating the bare consumer")?;
    consumer.subscribe(&[topic])?;
    let mut first = None;
    let mut seen = 0u64;
    let mut bytes = 0usize;
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("the bare consumer received nothing for 30 s")??;
        first.get_or_insert_with(Instant::now);
        bytes += message.payload().map_or(0, <[u8]>::len);
        seen += 1;
        if seen.is_multiple_of(16) {
            progress.send_replace(seen);
        }
        if Instant::now() > deadline {
            bail!("the bare consumer read only {seen} of {count} messages");
        }
    }
    let elapsed = first.map(|t| t.elapsed()).unwrap_or_default();
    std::hint::black_box(bytes);
    Ok((count - 1) as f64 / elapsed.as_secs_f64())
}

/// Produces one applied event at a time at `rate` events/s for the latency phase, each stamped
/// with its produce time; returns how many.
async fn paced(
    producer: &FutureProducer,
    topic: &str,
    template: &Value,
    rate: f64,
    sizes: Sizes,
    clock: &mut EventClock,
) -> Result<u64> {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + sizes.latency;
    let mut sent = 0u64;
    while Instant::now() < end {
        interval.tick().await;
        let issue = FIRST_ISSUE + sent % sizes.cases;
        // Later than every event time used so far, so no event is out of order.
        let timestamp = now_ms().max(clock.next());
        let value = applied_message(template, issue, sent, timestamp)?;
        let key = issue.to_string();
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(&value)
                    .partition(0),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| anyhow!("producing to {topic}: {e}"))?;
        sent += 1;
    }
    Ok(sent)
}

// ---- Case API -----------------------------------------------------------------------------

/// Limits B and C: `UpdateCase` title writes over the seeded cases from `concurrency`
/// concurrent callers (limit B: 1, sequential round trips), each calling one at a time, by the
/// release `update_round_trips` client (the reader's `GrpcCaseApi`: this debug build would
/// measure its own overhead, not the round trips); its event times follow `clock`'s.
async fn grpc_limit(
    client: &Path,
    endpoint: &str,
    sizes: Sizes,
    clock: &mut EventClock,
    concurrency: u64,
) -> Result<f64> {
    let first_ms = clock.next();
    let output = Command::new(client)
        .arg(endpoint)
        .arg(ORG_ID.to_string())
        .arg(CASE_ID_PREFIX)
        .arg(sizes.cases.to_string())
        .arg(sizes.limit_b.as_secs_f64().to_string())
        .arg(first_ms.to_string())
        .arg(concurrency.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", client.display()))?;
    if !output.status.success() {
        bail!("{} failed with {}", client.display(), output.status);
    }
    let result: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("the output of {}", client.display()))?;
    // The writes used event times from first_ms to below next_ms.
    clock.next_ms = result["next_ms"]
        .as_i64()
        .context("no `next_ms` in its output")?;
    result["calls_per_s"]
        .as_f64()
        .context("no `calls_per_s` in its output")
}

/// Case ids of the seeded bench cases: this prefix and the case's number on 12 digits.
const CASE_ID_PREFIX: &str = "00000000-0000-4000-8000-";

fn case_id(i: u64) -> String {
    format!("{CASE_ID_PREFIX}{i:012}")
}

// ---- the reader ---------------------------------------------------------------------------

/// The release jira-reader as a child process (killed on drop).
struct Reader {
    child: Child,
    health: SocketAddr,
    name: String,
}

impl Reader {
    /// Starts the reader on `topic`, with `max_in_flight` when set (else the reader's default).
    fn start(
        binary: &Path,
        dir: &Path,
        name: &str,
        bootstrap: &str,
        topic: &str,
        endpoint: &str,
        max_in_flight: Option<usize>,
    ) -> Result<Self> {
        let health: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
        let mut kafka = kafka_config(bootstrap, topic, &format!("bench-{name}"));
        let mut max_in_flight_line = String::new();
        if let Some(max_in_flight) = max_in_flight {
            kafka.max_in_flight = max_in_flight;
            max_in_flight_line = format!("max_in_flight = {}\n", kafka.max_in_flight);
        }
        let mut properties = String::new();
        for (key, value) in &kafka.properties {
            let _ = writeln!(properties, "{key:?} = {value:?}");
        }
        let config = format!(
            r#"# Written by `cargo xtask bench`.
[kafka]
brokers = "{brokers}"
topic = "{topic}"
group_id = "{group}"
auto_offset_reset = "{reset}"
auto_commit_interval_ms = {commit}
drain_timeout_ms = {drain}
{max_in_flight_line}
[kafka.properties]
{properties}
[case_api]
endpoint = "{endpoint}"
timeout_ms = 2000

[retry]
max_retries = 3
initial_backoff_ms = 50
max_backoff_ms = 500

[health]
listen = "{health}"
"#,
            brokers = kafka.brokers,
            group = kafka.group_id,
            reset = kafka.auto_offset_reset.as_str(),
            commit = kafka.auto_commit_interval.as_millis(),
            drain = kafka.drain_timeout.as_millis(),
        );
        let path = dir.join(format!("reader-{name}.toml"));
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let log = dir.join(format!("reader-{name}.log"));
        let log =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&path)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child,
            health,
            name: name.to_owned(),
        })
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok((200, _)) = http_get(self.health, "/ready").await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the {} reader exited before it was ready: {status}",
                    self.name
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the {} reader is not ready after {READY_TIMEOUT:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn metrics(&self) -> Result<String> {
        match http_get(self.health, "/metrics").await? {
            (200, body) => Ok(body),
            (status, _) => bail!("/metrics of the {} reader answered {status}", self.name),
        }
    }

    /// Polls `count_of(/metrics)` until it reaches `expected`; the rate from the first sample
    /// above zero to the last.
    /// `progress` gets the count divided by `per_event` (events handled) at every sample.
    async fn rate(
        &self,
        expected: u64,
        count_of: impl Fn(&str) -> f64,
        per_event: u64,
        progress: tokio::sync::watch::Sender<u64>,
    ) -> Result<f64> {
        let mut first: Option<(Instant, f64)> = None;
        let mut last = (Instant::now(), 0.0);
        let mut progress_at = Instant::now();
        loop {
            let count = count_of(&self.metrics().await?);
            progress.send_replace(count as u64 / per_event);
            let now = Instant::now();
            if count > last.1 {
                progress_at = now;
            }
            if count > 0.0 && first.is_none() {
                first = Some((now, count));
            }
            last = (now, count);
            if count >= expected as f64 {
                break;
            }
            if progress_at.elapsed() > Duration::from_secs(30) {
                bail!(
                    "the {} reader stalled at {count} of {expected} (see reader-{}.log)",
                    self.name,
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (t0, c0) = first.unwrap_or(last);
        let elapsed = last.0.duration_since(t0).as_secs_f64();
        if elapsed <= 0.0 {
            bail!(
                "the {} reader finished within one sample: more events needed",
                self.name
            );
        }
        Ok((last.1 - c0) / elapsed)
    }

    async fn wait_count(&mut self, expected: u64, count_of: impl Fn(&str) -> f64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.metrics().await?;
            if count_of(&text) >= expected as f64 {
                return Ok(());
            }
            if Instant::now() > deadline {
                let filtered =
                    metric_by_label(&text, "dd_case_third_party_reader_jira_filtered", "reason");
                bail!(
                    "the {} reader applied {} of {expected} (filtered: {filtered:?})",
                    self.name,
                    count_of(&text)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `VmHWM` of the process, in MiB.
    fn peak_rss_mib(&self) -> Result<f64> {
        let pid = self.child.id().context("the reader has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmHWM in /proc/<pid>/status")?;
        Ok(kib / 1024.0)
    }

    /// SIGTERM; the reader must drain and exit 0.
    async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .with_context(|| format!("the {} reader did not stop in time", self.name))??;
        if !status.success() {
            bail!("the {} reader exited with {status}", self.name);
        }
        Ok(())
    }
}

// ---- the report ---------------------------------------------------------------------------

struct Report {
    quick: bool,
    broker: BrokerKind,
    decode: Decode,
    measured: Measured,
    sizes: Sizes,
    seconds: f64,
}

/// One row: name, value, unit, target (as text) and whether it is met.
type Row = (
    &'static str,
    f64,
    &'static str,
    Option<(&'static str, bool)>,
);

impl Report {
    fn applied_eps(&self, partitions: i32) -> f64 {
        self.measured
            .applied
            .iter()
            .find(|a| a.partitions == partitions)
            .map_or(0.0, |a| a.eps)
    }

    /// The best key-order run at `max_in_flight`, in events/s.
    fn keyed_eps(&self, max_in_flight: usize) -> f64 {
        self.measured
            .keyed
            .iter()
            .filter(|k| k.max_in_flight == max_in_flight && k.group == KEYED_ITEMS)
            .map(|k| k.eps)
            .fold(0.0, f64::max)
    }

    /// The order run, in events/s.
    fn order_run_eps(&self) -> f64 {
        self.measured
            .keyed
            .iter()
            .filter(|k| k.group != KEYED_ITEMS)
            .map(|k| k.eps)
            .fold(0.0, f64::max)
    }

    /// Limit C: the best measurement.
    fn concurrent_grpc_cps(&self) -> f64 {
        self.measured
            .concurrent_grpc_runs
            .iter()
            .copied()
            .fold(0.0, f64::max)
    }

    fn rows(&self) -> Vec<Row> {
        let m = &self.measured;
        let filtered_ratio = m.filtered_eps / m.bare_consumer_eps;
        let applied_ratio = self.applied_eps(1) / m.grpc_limit_cps;
        let scaling = self.applied_eps(4) / self.applied_eps(1);
        let decode_ratio = self.decode.value_ns / self.decode.typed_ns;
        let cache_rpcs = self.settings_rpcs_per_1000();
        let key_speedup = self.keyed_eps(64) / self.keyed_eps(1);
        let concurrent_ratio = self.keyed_eps(64) / self.concurrent_grpc_cps();
        let out_of_order = m.out_of_order.len() as f64;
        vec![
            (
                "limit A: bare consumer",
                m.bare_consumer_eps,
                "events/s",
                None,
            ),
            ("filtered traffic", m.filtered_eps, "events/s", None),
            (
                "filtered_vs_bare_consumer",
                filtered_ratio,
                "",
                Some((">= 0.9", filtered_ratio >= 0.9)),
            ),
            (
                "limit B: UpdateCase round trips",
                m.grpc_limit_cps,
                "calls/s",
                None,
            ),
            (
                "applied, 1 partition",
                self.applied_eps(1),
                "events/s",
                None,
            ),
            (
                "applied, 2 partitions",
                self.applied_eps(2),
                "events/s",
                None,
            ),
            (
                "applied, 4 partitions",
                self.applied_eps(4),
                "events/s",
                None,
            ),
            (
                "applied_vs_grpc_limit",
                applied_ratio,
                "",
                Some((">= 0.8", applied_ratio >= 0.8)),
            ),
            (
                "partition_scaling_4",
                scaling,
                "",
                Some((">= 3 (2 cores here)", scaling >= 3.0)),
            ),
            (
                "typed decode (8 KiB)",
                self.decode.typed_ns / 1e3,
                "µs",
                None,
            ),
            (
                "Value parse (8 KiB)",
                self.decode.value_ns / 1e3,
                "µs",
                None,
            ),
            (
                "decode_vs_value_parse",
                decode_ratio,
                "",
                Some((">= 2", decode_ratio >= 2.0)),
            ),
            (
                "settings_rpcs_per_1000_events",
                cache_rpcs,
                "",
                Some(("<= 5", cache_rpcs <= 5.0)),
            ),
            (
                "pre-filter: lookups avoided",
                self.prefilter_avoided() * 100.0,
                "%",
                None,
            ),
            ("p50_latency_ms", m.p50_ms, "ms", None),
            (
                "p99_latency_ms",
                m.p99_ms,
                "ms",
                Some(("<= 25", m.p99_ms <= 25.0)),
            ),
            (
                "peak_rss_mib",
                m.peak_rss_mib,
                "MiB",
                Some(("<= 64", m.peak_rss_mib <= 64.0)),
            ),
            (
                "key order (5 ms calls): max_in_flight 1",
                self.keyed_eps(1),
                "events/s",
                None,
            ),
            (
                "key order (5 ms calls): max_in_flight 8",
                self.keyed_eps(8),
                "events/s",
                None,
            ),
            (
                "key order (5 ms calls): max_in_flight 64 (best of 2)",
                self.keyed_eps(64),
                "events/s",
                None,
            ),
            (
                "key_parallel_speedup",
                key_speedup,
                "",
                Some((">= 10", key_speedup >= 10.0)),
            ),
            (
                "limit C: UpdateCase, 64 concurrent callers (5 ms, best of 2)",
                self.concurrent_grpc_cps(),
                "calls/s",
                None,
            ),
            (
                "applied_vs_concurrent_grpc_limit",
                concurrent_ratio,
                "",
                Some((">= 0.4", concurrent_ratio >= 0.4)),
            ),
            (
                "key order: order run (max_in_flight 64, issues 16 apart)",
                self.order_run_eps(),
                "events/s",
                None,
            ),
            (
                "items_out_of_order",
                out_of_order,
                "issue(s)",
                Some(("= 0", m.out_of_order.is_empty())),
            ),
        ]
    }

    /// Settings + metadata RPCs per 1,000 applied events (each applied run starts a reader with
    /// cold caches, so the cold loads are included).
    fn settings_rpcs_per_1000(&self) -> f64 {
        let m = &self.measured;
        (m.settings_rpcs + m.metadata_rpcs) as f64 * 1000.0 / m.applied_total.max(1) as f64
    }

    /// Of the filtered traffic's changelogs, the share that needed no case or settings look-up.
    fn prefilter_avoided(&self) -> f64 {
        let m = &self.measured;
        1.0 - m.filtered_case_lookups as f64 / m.filtered_changelogs.max(1) as f64
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nBenchmark ({}, broker: {}, {} cores)\n",
            if self.quick { "quick" } else { "full" },
            self.measured.broker,
            cores()
        );
        let _ = writeln!(out, "| figure | value | target |");
        let _ = writeln!(out, "|---|---:|---|");
        for (name, value, unit, target) in self.rows() {
            let value = match unit {
                "" => format!("{value:.2}"),
                "%" => format!("{value:.1} %"),
                "ms" | "µs" | "MiB" => format!("{value:.1} {unit}"),
                _ => format!("{value:.0} {unit}"),
            };
            let target = match target {
                Some((text, true)) => format!("{text} ✓"),
                Some((text, false)) => format!("{text} ✗"),
                None => String::new(),
            };
            let _ = writeln!(out, "| {name} | {value} | {target} |");
        }
        out
    }

    fn json(&self) -> Value {
        let m = &self.measured;
        let mut figures = serde_json::Map::new();
        for (name, value, _, _) in self.rows() {
            if !name.contains(' ') {
                figures.insert(name.to_owned(), json!(value));
            }
        }
        let mut doc = json!({
            "quick": self.quick,
            "broker": format!("{:?}", self.broker).to_lowercase(),
            "cores": cores(),
            "seconds": self.seconds,
            "prefilter_avoided_lookup_share": self.prefilter_avoided(),
            "raw": {
                "bare_consumer_events_per_s": m.bare_consumer_eps,
                "filtered_events_per_s": m.filtered_eps,
                "filtered_events": self.sizes.filtered_events,
                "filtered_changelogs": m.filtered_changelogs,
                "filtered_reasons": m.filtered_reasons,
                "filtered_case_lookup_rpcs": m.filtered_case_lookups,
                "grpc_limit_calls_per_s": m.grpc_limit_cps,
                "grpc_limit_calls": m.grpc_limit_calls,
                "applied": m.applied.iter().map(|a| json!({
                    "partitions": a.partitions,
                    "events": a.events,
                    "events_per_s": a.eps,
                    "case_api_calls_per_event": a.case_api_calls_per_event,
                })).collect::<Vec<_>>(),
                "applied_events_total": m.applied_total,
                "settings_rpcs": m.settings_rpcs,
                "metadata_rpcs": m.metadata_rpcs,
                "seeded_cases": self.sizes.cases,
                "decode_typed_ns": self.decode.typed_ns,
                "decode_value_ns": self.decode.value_ns,
                "webhook_bytes": WEBHOOK.trim_end().len(),
                "latency_rate_events_per_s": m.latency_rate_eps,
                "latency_events": m.latency_events,
                "key_order": {
                    "case_api_latency_ms": KEYED_LATENCY_MS,
                    "issues": KEYED_ITEMS,
                    "partitions": 1,
                    "runs": m.keyed.iter().map(|k| json!({
                        "run": k.run,
                        "max_in_flight": k.max_in_flight,
                        "round_robin_group": k.group,
                        "comments_per_issue": k.changes,
                        "events": k.events,
                        "events_per_s": k.eps,
                        "case_api_calls_per_event": k.case_api_calls_per_event,
                    })).collect::<Vec<_>>(),
                    "concurrent_grpc_limit_clients": CONCURRENT_CLIENTS,
                    "concurrent_grpc_limit_calls_per_s": m.concurrent_grpc_runs,
                    "concurrent_grpc_limit_calls": m.concurrent_grpc_calls,
                    "checked_issues": m.keyed_checked_items,
                    "out_of_order": m.out_of_order,
                    "seconds": m.keyed_seconds,
                },
            },
        });
        if let Some(map) = doc.as_object_mut() {
            map.extend(figures);
        }
        doc
    }

    /// Events/s against partitions, with limit B for scale.
    fn svg(&self) -> String {
        let (w, h, left, bottom, top, right) = (560.0, 340.0, 70.0, 50.0, 40.0, 20.0);
        let limit_b = self.measured.grpc_limit_cps;
        let max = PARTITIONS
            .iter()
            .map(|p| self.applied_eps(*p))
            .fold(limit_b, f64::max)
            * 1.15;
        let x = |p: i32| left + (f64::from(p) - 0.5) / 4.0 * (w - left - right);
        let y = |v: f64| h - bottom - v / max * (h - bottom - top);
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{tx}" y="22" text-anchor="middle" font-size="14">Applied events/s against partitions ({cores} cores)</text>
<line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{b}" stroke="black"/>
<text x="{tx}" y="{xl}" text-anchor="middle">partitions</text>
"#,
            tx = w / 2.0,
            cores = cores(),
            b = h - bottom,
            r = w - right,
            xl = h - 12.0,
        );
        for i in 0..=4 {
            let v = max / 1.15 * f64::from(i) / 4.0;
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#ddd"/><text x="{lx}" y="{ty:.1}" text-anchor="end">{v:.0}</text>"##,
                y = y(v),
                r = w - right,
                lx = left - 6.0,
                ty = y(v) + 4.0,
            );
        }
        for p in 1..=4 {
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{y}" text-anchor="middle">{p}</text>"#,
                x = x(p),
                y = h - bottom + 16.0,
            );
        }
        let points: Vec<String> = PARTITIONS
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(*p), y(self.applied_eps(*p))))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
            points.join(" ")
        );
        for p in PARTITIONS {
            let v = self.applied_eps(p);
            let _ = writeln!(
                svg,
                r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="#1f77b4"/><text x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{v:.0}</text>"##,
                cx = x(p),
                cy = y(v),
                ty = y(v) - 8.0,
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#d62728" stroke-dasharray="6 4"/><text x="{r}" y="{ty:.1}" text-anchor="end" fill="#d62728">limit B: {limit_b:.0} UpdateCase/s (one client)</text>"##,
            y = y(limit_b),
            r = w - right,
            ty = y(limit_b) - 6.0,
        );
        svg.push_str("</svg>\n");
        svg
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(&self.json())?;
        std::fs::write(dir.join("report.json"), json + "\n")?;
        std::fs::write(dir.join("throughput.svg"), self.svg())?;
        let m = &self.measured;
        let mut md = String::from("# Benchmark report\n");
        md.push_str(&self.table());
        let _ = write!(
            md,
            "\n![applied events/s against partitions](throughput.svg)\n\n\
             Every ratio compares figures measured in this run, on the same broker ({broker}) \
             and the same sandbox (the release binary, in memory). Topic T: {fe} events of the ~8 KiB webhook on one \
             partition; applied runs: {ae} title changes over {cases} seeded cases each; \
             latency: {le} events at {lr:.0} events/s on one partition (webhook timestamp = \
             produce time). Settings/metadata RPCs: {s} + {md_} over {at} applied events, cold \
             caches of three readers included. Key order: {kl} ms added to every Case API call; \
             {ki} issues (a case each) on one partition get {k1} comments each at max_in_flight \
             1 and {kn} at 8 and at 64, round-robin over the issues; limit C: UpdateCase from \
             {cc} concurrent callers on one connection at the same latency, measured alternately \
             with the run at 64 (C, 64, 64, C), each keeping its best; the order run at 64 goes \
             round-robin over groups of {og} issues, so an issue's comments are {og} messages \
             apart, several in the in-flight window at once; {checked} issues' comments read \
             back after {runs} runs, {bad} not exactly each run's in source order.\n",
            broker = m.broker,
            fe = self.sizes.filtered_events,
            ae = self.sizes.applied_events,
            cases = self.sizes.cases,
            le = m.latency_events,
            lr = m.latency_rate_eps,
            s = m.settings_rpcs,
            md_ = m.metadata_rpcs,
            at = m.applied_total,
            kl = KEYED_LATENCY_MS,
            ki = KEYED_ITEMS,
            k1 = self.sizes.keyed_changes.0,
            kn = self.sizes.keyed_changes.1,
            runs = m.keyed.len(),
            og = ORDER_GROUP,
            cc = CONCURRENT_CLIENTS,
            checked = m.keyed_checked_items,
            bad = m.out_of_order.len(),
        );
        std::fs::write(dir.join("report.md"), md)?;
        Ok(())
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_traffic_goes_round_robin_within_groups() {
        let order: Vec<(u64, u64)> = keyed_order(3, 3, 2).collect();
        assert_eq!(order, [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)]);
        let order: Vec<(u64, u64)> = keyed_order(5, 2, 2).collect();
        assert_eq!(
            order,
            [
                (0, 1),
                (1, 1),
                (0, 2),
                (1, 2),
                (2, 1),
                (3, 1),
                (2, 2),
                (3, 2),
                (4, 1),
                (4, 2)
            ]
        );
    }

    #[test]
    fn the_order_check_takes_only_each_run_in_source_order_exactly_once() {
        let run = |run, changes| Keyed {
            run,
            max_in_flight: 64,
            group: KEYED_ITEMS,
            changes,
            events: 0,
            eps: 0.0,
            case_api_calls_per_event: 0.0,
        };
        let runs = [run(1, 2), run(2, 3)];
        let check = |list: &[(usize, u64)]| {
            let bodies: Vec<String> = list.iter().map(|(r, k)| keyed_body(*r, *k)).collect();
            let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
            disorder(&refs, &runs)
        };
        assert_eq!(check(&[(1, 1), (1, 2), (2, 1), (2, 2), (2, 3)]), None);
        // Runs interleaved with one another are fine: each run's own order is what counts.
        assert_eq!(check(&[(2, 1), (1, 1), (2, 2), (1, 2), (2, 3)]), None);
        assert_eq!(
            check(&[(1, 1), (1, 2), (2, 2), (2, 1), (2, 3)]).as_deref(),
            Some("run 2 (max_in_flight 64): expected c1..c3 in insertion order, found [c2 c1 c3]")
        );
        assert!(check(&[(1, 1), (1, 1), (1, 2), (2, 1), (2, 2), (2, 3)]).is_some());
        assert!(check(&[(1, 1), (1, 2), (2, 1), (2, 3)]).is_some());
        assert!(check(&[(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (2, 4)]).is_some());
        // r12 is not r1.
        assert_eq!(
            check(&[(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (12, 1)]).as_deref(),
            Some("1 comment(s) of no run")
        );
    }
}
