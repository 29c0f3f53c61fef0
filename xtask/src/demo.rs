//! `cargo xtask demo`: builds the readers and the sandbox, starts a Kafka broker (the embedded
//! one by default), the sandbox Case API with the demo seed and both readers, plays the scripted
//! scenario of [`crate::scenario`] one message at a time, checks every outcome against the
//! readers' `/metrics` and the final cases against the sandbox, prints the result, and stops
//! everything. Exits non-zero if anything deviates.
//!
//! Every process it starts is a child killed on drop, so an error anywhere leaves nothing behind.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use reader_runtime::testkit::{
    OtlpCollector, ReaderProcess, Span, SpanTree, TestBroker, attribute, free_port, group_progress,
    metric_by_label, metric_sum, produce, producer, wait_caught_up,
};
use thirdparty_core::{CaseApi, FilterReason};
use tokio::process::{Child, Command};

use crate::scenario::{self, Flavor, GROUP, Outcome, Step};

/// Where the demo seed lives, relative to the workspace root.
const SEED: &str = "bins/case-api-sandbox/seed/demo.json";
/// Partitions per topic.
const PARTITIONS: i32 = 2;
/// Where both readers also produce their decision records.
const DECISIONS_TOPIC: &str = "case_third_party_reader_decisions";
/// The longest wait for one message to be handled and committed.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait for a process to become ready or to exit.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait for a process to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Which Kafka broker the demo runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerKind {
    /// librdkafka's mock cluster, inside the xtask process: nothing to install.
    Embedded,
    /// Tansu, an Apache-Kafka-compatible broker, as a child process (must be installed).
    Tansu,
}

/// Runs the demo from the workspace `root`.
pub fn run(root: &Path, broker: BrokerKind) -> Result<()> {
    let started = Instant::now();
    if broker == BrokerKind::Tansu {
        tansu_installed()?;
    }
    let bins = build(root)?;
    println!("Built in {:.1} s.", started.elapsed().as_secs_f64());
    let dir = target_dir(root).join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = demo(root, &dir, broker, &bins) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    // Dropping the runtime drops whatever the demo still held: children are killed.
    drop(runtime);
    println!("\nTook {:.1} s.", started.elapsed().as_secs_f64());
    if result.is_err() {
        println!("Logs: {}", dir.display());
    }
    result
}

/// The binaries the demo runs.
#[derive(Debug)]
pub(crate) struct Binaries {
    pub(crate) jira_reader: PathBuf,
    pub(crate) servicenow_reader: PathBuf,
    pub(crate) github_reader: PathBuf,
    pub(crate) sandbox: PathBuf,
}

/// `cargo build` of the readers and the sandbox; returns their executables.
pub(crate) fn build(root: &Path) -> Result<Binaries> {
    build_with(root, &[])
}

/// `cargo build` of the readers and the sandbox with extra features (`jira-reader/x`, ...).
pub(crate) fn build_with(root: &Path, features: &[&str]) -> Result<Binaries> {
    println!("Building jira-reader, servicenow-reader, github-reader and case-api-sandbox...");
    let mut args = vec![
        "build",
        "--message-format=json-render-diagnostics",
        "-p",
        "jira-reader",
        "-p",
        "servicenow-reader",
        "-p",
        "github-reader",
        "-p",
        "case-api-sandbox",
    ];
    let features = features.join(",");
    if !features.is_empty() {
        args.extend(["--features", features.as_str()]);
    }
    let output = crate::cargo_command()
        .args(args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("`cargo build` failed with {}", output.status);
    }
    let mut executables = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = message["target"]["name"].as_str();
        let executable = message["executable"].as_str();
        if let (Some(name), Some(executable)) = (name, executable) {
            executables.insert(name.to_owned(), PathBuf::from(executable));
        }
    }
    let mut take = |name: &str| {
        executables
            .remove(name)
            .with_context(|| format!("cargo build reported no `{name}` executable"))
    };
    Ok(Binaries {
        jira_reader: take("jira-reader")?,
        servicenow_reader: take("servicenow-reader")?,
        github_reader: take("github-reader")?,
        sandbox: take("case-api-sandbox")?,
    })
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

async fn demo(root: &Path, dir: &Path, kind: BrokerKind, bins: &Binaries) -> Result<()> {
    let mut topics: Vec<(&str, i32)> = Flavor::ALL
        .iter()
        .map(|f| (f.topic(), PARTITIONS))
        .collect();
    topics.push((DECISIONS_TOPIC, PARTITIONS));
    let broker = start_broker(kind, dir, &topics).await?;
    let bootstrap = broker.bootstrap();
    println!("Kafka ({}) on {bootstrap}", broker_name(&broker));

    let sandbox = Sandbox::start(&bins.sandbox, &root.join(SEED), dir, None).await?;
    println!("Sandbox Case API on {}", sandbox.endpoint);
    // The Jira reader exports its traces to an in-process OTLP collector.
    let (collector, otlp) = OtlpCollector::start().await?;

    let mut readers = Readers {
        jira: start_reader(
            Flavor::Jira,
            &bins.jira_reader,
            &bootstrap,
            &sandbox,
            dir,
            Some(otlp),
        )?,
        servicenow: start_reader(
            Flavor::ServiceNow,
            &bins.servicenow_reader,
            &bootstrap,
            &sandbox,
            dir,
            None,
        )?,
        github: start_reader(
            Flavor::GitHub,
            &bins.github_reader,
            &bootstrap,
            &sandbox,
            dir,
            None,
        )?,
    };
    readers.jira.wait_ready(START_TIMEOUT).await?;
    readers.servicenow.wait_ready(START_TIMEOUT).await?;
    readers.github.wait_ready(START_TIMEOUT).await?;
    println!(
        "Readers ready: jira (health {}), servicenow (health {}), github (health {}); logs in {}",
        readers.jira.health,
        readers.servicenow.health,
        readers.github.health,
        dir.display()
    );

    let steps = scenario::steps();
    println!("\nPlaying {} messages, one at a time:", steps.len());
    let played = Instant::now();
    let deviations = play(&steps, &bootstrap, &readers).await?;
    println!(
        "Played in {:.1} s (each message produced, handled and committed before the next).",
        played.elapsed().as_secs_f64()
    );
    for flavor in Flavor::ALL {
        wait_caught_up(&bootstrap, GROUP, flavor.topic(), STEP_TIMEOUT).await?;
    }
    let totals_ok = print_totals(&steps, &readers).await?;
    let cases_ok = print_cases(root, &sandbox).await?;
    let recovered = crate::recovery::run(
        &bins.jira_reader,
        &dir.join("jira-reader.toml"),
        &bootstrap,
        &sandbox,
        &root.join(SEED),
    )
    .await?;

    let scrape = readers.jira.metrics().await?;
    let stop_errors = stop(readers, sandbox).await;
    let decisions = print_decisions(&bootstrap).await?;
    print_scrape(&scrape);
    let traced = print_traces(&collector).await;
    drop(broker);

    let mut problems = Vec::new();
    if deviations > 0 {
        problems.push(format!(
            "{deviations} of {} messages deviated from the script",
            steps.len()
        ));
    }
    if !totals_ok {
        problems.push("the metric totals deviate from the script".to_owned());
    }
    if !cases_ok {
        problems.push("some cases are not in the expected state".to_owned());
    }
    if !recovered {
        problems.push("the recovery story deviated".to_owned());
    }
    if decisions == 0 {
        problems.push(format!("no decision record reached {DECISIONS_TOPIC}"));
    }
    if !traced {
        problems.push("the jira reader's traces did not reach the collector".to_owned());
    }
    problems.extend(stop_errors);
    if !problems.is_empty() {
        bail!("demo failed: {}", problems.join("; "));
    }
    println!("Everything as expected.");
    Ok(())
}

/// SIGTERM to both readers (each must exit 0) and the sandbox; returns what went wrong.
async fn stop(readers: Readers, sandbox: Sandbox) -> Vec<String> {
    let Readers {
        jira,
        servicenow,
        github,
    } = readers;
    let mut errors = Vec::new();
    for (name, reader) in [
        ("jira", jira),
        ("servicenow", servicenow),
        ("github", github),
    ] {
        match reader.terminate(STOP_TIMEOUT).await {
            Ok(Some(0)) => {}
            Ok(code) => errors.push(format!("the {name} reader exited with {code:?}, not 0")),
            Err(e) => errors.push(format!("the {name} reader: {e:#}")),
        }
    }
    if let Err(e) = sandbox.stop().await {
        errors.push(format!("sandbox: {e:#}"));
    }
    if errors.is_empty() {
        println!("\nStopped the three readers (exit 0) and the sandbox.");
    }
    errors
}

/// Prints the Jira reader's own series from one scrape of its `/metrics` (the exporter's
/// comment lines, zero counts and most latency quantiles left out).
fn print_scrape(scrape: &str) {
    println!(
        "\nOne scrape of the jira reader's /metrics (its series; zero counts but the lag, and the latency's \
         quantiles but p99, left out; the scripted events are dated 2024, hence the latencies):"
    );
    for line in scrape.lines() {
        let other_quantile = line.contains("quantile=") && !line.contains("quantile=\"0.99\"");
        let zero_count = line.ends_with(" 0") && !line.starts_with("dd_case_kafka_consumer_lag");
        if line.starts_with('#') || zero_count || other_quantile || line.contains("_sum{") {
            continue;
        }
        if line.starts_with("dd_case") || line.starts_with("case_case") {
            println!("  {line}");
        }
    }
}

/// Prints one applied and one filtered change's trace tree, as the Jira reader exported them
/// (flushed at its shutdown); false when none arrived.
async fn print_traces(collector: &OtlpCollector) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = collector.spans();
        if !spans.is_empty() || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let tree = SpanTree { spans: &spans };
    let roots = tree.roots();
    let decided = |root: &Span, key: &str, value: Option<&str>| {
        root.events.iter().any(|e| {
            attribute(&e.attributes, key).is_some_and(|v| value.is_none_or(|want| v == want))
        })
    };
    let applied = roots
        .iter()
        .find(|r| decided(r, "decision", Some("applied")));
    let filtered = roots.iter().find(|r| decided(r, "reason", None));
    println!(
        "\nTraces: the jira reader exported {} spans in {} traces over OTLP/gRPC.",
        spans.len(),
        roots.len()
    );
    for (what, root) in [
        ("An applied change", applied),
        ("A filtered change", filtered),
    ] {
        let Some(root) = root else {
            continue;
        };
        let mut out = String::new();
        tree.render(root, 1, &mut out);
        println!("{what}:\n{out}");
    }
    applied.is_some() && filtered.is_some()
}

// ---- Kafka ------------------------------------------------------------------------------

/// The broker seam: all the demo needs is a bootstrap address and its topics created.
async fn start_broker(kind: BrokerKind, dir: &Path, topics: &[(&str, i32)]) -> Result<TestBroker> {
    let broker = match kind {
        BrokerKind::Embedded => TestBroker::embedded()?,
        BrokerKind::Tansu => {
            tansu_installed()?;
            TestBroker::tansu(&dir.join("tansu")).await?
        }
    };
    for (topic, partitions) in topics {
        broker.create_topic(topic, *partitions).await?;
    }
    Ok(broker)
}

fn broker_name(broker: &TestBroker) -> &'static str {
    match broker {
        TestBroker::Embedded(_) => "embedded mock cluster",
        TestBroker::Tansu(_) => "Tansu",
    }
}

/// Installs Tansu at the pinned version when it is missing.
fn tansu_installed() -> Result<()> {
    crate::broker::ensure_tansu().map(|_| ())
}

/// Waits until the group has committed past `offset` of `topic`/`partition`.
async fn wait_committed(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let progress = group_progress(bootstrap, GROUP, topic).await?;
        if progress
            .get(&partition)
            .is_some_and(|(done, _)| *done > offset)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{topic}:{partition}:{offset} not handled after {STEP_TIMEOUT:?} \
                 (group progress {progress:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- Case API sandbox -------------------------------------------------------------------

/// The sandbox Case API as a child process (killed on drop).
pub(crate) struct Sandbox {
    child: Child,
    pub(crate) endpoint: String,
}

impl Sandbox {
    /// Starts the sandbox with `seed`, in memory or on the SQLite file `db`, logging to
    /// `dir/sandbox.log`, and waits until it serves.
    pub(crate) async fn start(
        binary: &Path,
        seed: &Path,
        dir: &Path,
        db: Option<&Path>,
    ) -> Result<Self> {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("sandbox.log")).context("creating sandbox.log")?;
        let mut command = Command::new(binary);
        if let Some(db) = db {
            command.arg("--db").arg(db);
        }
        let child = command
            .arg("--listen")
            .arg(&listen)
            .arg("--seed")
            .arg(seed)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut sandbox = Sandbox {
            child,
            endpoint: format!("http://{listen}"),
        };
        sandbox.wait_serving().await?;
        Ok(sandbox)
    }

    async fn wait_serving(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(api) = self.api().await
                && api.health_check().await.is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the sandbox exited before serving: {status} (see sandbox.log)");
            }
            if Instant::now() > deadline {
                bail!("the sandbox is not serving after {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn api(&self) -> Result<GrpcCaseApi> {
        GrpcCaseApi::connect(&GrpcCaseApiConfig::new(self.endpoint.clone()))
            .await
            .map_err(|e| anyhow!("connecting to the sandbox: {e}"))
    }

    /// SIGTERM, then waits for it to exit.
    pub(crate) async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .context("the sandbox did not stop in time")??;
        if !status.success() {
            bail!("the sandbox exited with {status}");
        }
        Ok(())
    }
}

// ---- Readers ----------------------------------------------------------------------------

struct Readers {
    jira: ReaderProcess,
    servicenow: ReaderProcess,
    github: ReaderProcess,
}

impl Readers {
    fn get(&self, flavor: Flavor) -> &ReaderProcess {
        match flavor {
            Flavor::Jira => &self.jira,
            Flavor::ServiceNow => &self.servicenow,
            Flavor::GitHub => &self.github,
        }
    }
}

/// Writes the reader's config into `dir` and starts it (not waiting for readiness).
fn start_reader(
    flavor: Flavor,
    binary: &Path,
    bootstrap: &str,
    sandbox: &Sandbox,
    dir: &Path,
    otlp: Option<SocketAddr>,
) -> Result<ReaderProcess> {
    let name = flavor.name();
    let tracing = otlp
        .map(|addr| format!("\n[tracing]\notlp_endpoint = \"http://{addr}\"\n"))
        .unwrap_or_default();
    let health: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
    let integration = match flavor {
        Flavor::Jira => "own_account_ids = [\"5b10ac8d82e05b22cc7d4ef5\"]",
        Flavor::ServiceNow => "own_user_names = [\"datadog\"]",
        Flavor::GitHub => "own_accounts = [\"datadog[bot]\"]",
    };
    let config = format!(
        r#"# Written by `cargo xtask demo`.
[kafka]
brokers = "{bootstrap}"
topic = "{topic}"
group_id = "{GROUP}"
auto_offset_reset = "earliest"
auto_commit_interval_ms = 100
drain_timeout_ms = 5000

[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
# Hand each scripted message over at once rather than after a long poll.
"fetch.wait.max.ms" = "20"

[case_api]
endpoint = "{endpoint}"
timeout_ms = 2000

[retry]
max_retries = 3
initial_backoff_ms = 50
max_backoff_ms = 500

[health]
listen = "{health}"

[decisions]
topic = "{DECISIONS_TOPIC}"

[integration]
{integration}
{tracing}"#,
        topic = flavor.topic(),
        endpoint = sandbox.endpoint,
    );
    let path = dir.join(format!("{name}-reader.toml"));
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    ReaderProcess::spawn(
        binary,
        &path,
        health,
        &dir.join(format!("{name}-reader.log")),
    )
}

// ---- Scenario and checks ----------------------------------------------------------------

/// Counts of outcomes as a reader's `/metrics` reports them.
type Tally = BTreeMap<Outcome, u64>;

async fn tally(reader: &ReaderProcess, flavor: Flavor) -> Result<Tally> {
    let text = reader.metrics().await?;
    let mut tally = Tally::new();
    let mut add = |outcome, value: f64| {
        if value > 0.0 {
            *tally.entry(outcome).or_insert(0) += value as u64;
        }
    };
    add(
        Outcome::Applied,
        metric_sum(&text, "dd_case_third_party_reader_changelog_processed", &[]),
    );
    let filtered = format!("dd_case_third_party_reader_{}_filtered", flavor.name());
    for (reason, value) in metric_by_label(&text, &filtered, "reason") {
        let reason = FilterReason::parse_with(&reason, integration_jira::REASONS)
            .with_context(|| format!("unknown filter reason `{reason}` in /metrics"))?;
        add(Outcome::Filtered(reason), value);
    }
    add(
        Outcome::DecodeFailed,
        metric_sum(&text, "dd_case_third_party_reader_decoding_failed", &[]),
    );
    add(
        Outcome::Discarded,
        metric_sum(&text, "dd_case_third_party_reader_discarded", &[]),
    );
    add(
        Outcome::Rejected,
        metric_sum(&text, "dd_case_third_party_reader_changelog_rejected", &[]),
    );
    Ok(tally)
}

/// The outcomes counted between two tallies, sorted.
fn since(before: &Tally, after: &Tally) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (outcome, count) in after {
        let new = count.saturating_sub(before.get(outcome).copied().unwrap_or(0));
        outcomes.extend(std::iter::repeat_n(*outcome, new as usize));
    }
    outcomes
}

fn sorted(outcomes: &[Outcome]) -> Vec<Outcome> {
    let mut outcomes = outcomes.to_vec();
    outcomes.sort();
    outcomes
}

/// "applied x3, filtered: no_change".
fn describe(outcomes: &[Outcome]) -> String {
    if outcomes.is_empty() {
        return "nothing counted".to_owned();
    }
    let mut counts: Vec<(Outcome, usize)> = Vec::new();
    for outcome in outcomes {
        match counts.iter_mut().find(|(o, _)| o == outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((*outcome, 1)),
        }
    }
    counts
        .iter()
        .map(|(o, n)| match n {
            1 => o.to_string(),
            n => format!("{o} x{n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Produces every step and checks what its reader counted; returns how many deviated.
async fn play(steps: &[Step], bootstrap: &str, readers: &Readers) -> Result<usize> {
    let producer = producer(bootstrap)?;
    let mut deviations = 0;
    let width = steps
        .iter()
        .map(|s| s.what.chars().count())
        .max()
        .unwrap_or(0);
    for step in steps {
        let reader = readers.get(step.flavor);
        let before = tally(reader, step.flavor).await?;
        let (partition, offset) =
            produce(&producer, step.topic(), None, &step.key, &step.value).await?;
        wait_committed(bootstrap, step.topic(), partition, offset).await?;
        let after = tally(reader, step.flavor).await?;
        let got = since(&before, &after);
        let ok = got == sorted(&step.expect);
        let mark = if ok { "✓" } else { "✗" };
        println!(
            "  {mark} {} {:<10} {:<width$}  {}",
            step.id,
            step.flavor.name(),
            step.what,
            describe(&step.expect)
        );
        if !ok {
            deviations += 1;
            println!("         got instead: {}", describe(&got));
        }
    }
    Ok(deviations)
}

/// Prints the per-flavor table from `/metrics`; true when it matches the script's sum.
async fn print_totals(steps: &[Step], readers: &Readers) -> Result<bool> {
    let mut actual = BTreeMap::new();
    let mut expected: BTreeMap<Flavor, Tally> = BTreeMap::new();
    for flavor in Flavor::ALL {
        actual.insert(flavor, tally(readers.get(flavor), flavor).await?);
        expected.insert(flavor, Tally::new());
    }
    for step in steps {
        let tally = expected.entry(step.flavor).or_default();
        for outcome in &step.expect {
            *tally.entry(*outcome).or_insert(0) += 1;
        }
    }

    let mut rows: Vec<Outcome> = actual
        .values()
        .chain(expected.values())
        .flat_map(|t| t.keys().copied())
        .collect();
    rows.extend([
        Outcome::Applied,
        Outcome::DecodeFailed,
        Outcome::Discarded,
        Outcome::Rejected,
    ]);
    rows.sort();
    rows.dedup();

    let label = |o: &Outcome| match o {
        Outcome::Applied => "processed (applied)".to_owned(),
        Outcome::Filtered(reason) => format!("filtered: {reason}"),
        Outcome::DecodeFailed => "decoding failed".to_owned(),
        Outcome::Discarded => "discarded".to_owned(),
        Outcome::Rejected => "rejected by the Case API".to_owned(),
    };
    let count = |t: Option<&Tally>, o: &Outcome| t.and_then(|t| t.get(o)).copied().unwrap_or(0);
    let width = rows.iter().map(|o| label(o).len()).max().unwrap_or(0);
    let mut ok = true;
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\nOutcomes per flavor (from each reader's /metrics):\n  {:<width$}  {:>6}  {:>10}  {:>6}",
        "", "jira", "servicenow", "github"
    );
    for row in &rows {
        let mut cells = String::new();
        for (flavor, cell_width) in [
            (Flavor::Jira, 6),
            (Flavor::ServiceNow, 10),
            (Flavor::GitHub, 6),
        ] {
            let got = count(actual.get(&flavor), row);
            let want = count(expected.get(&flavor), row);
            let cell = if got == want {
                got.to_string()
            } else {
                ok = false;
                format!("{got}≠{want}")
            };
            let _ = write!(cells, "  {cell:>cell_width$}");
        }
        let _ = writeln!(table, "  {:<width$}{cells}", label(row));
    }
    let totals: Vec<u64> = Flavor::ALL
        .iter()
        .map(|f| actual.get(f).map(|t| t.values().sum()).unwrap_or(0))
        .collect();
    let _ = writeln!(
        table,
        "  {:<width$}  {:>6}  {:>10}  {:>6}",
        "total", totals[0], totals[1], totals[2]
    );
    print!("{table}");
    if !ok {
        println!("  (got≠expected)");
    }
    Ok(ok)
}

/// Prints the final state of the affected cases; true when all match the script.
async fn print_cases(root: &Path, sandbox: &Sandbox) -> Result<bool> {
    let users = seeded_users(&root.join(SEED))?;
    let api = sandbox.api().await?;
    let header = [
        "", "case", "title", "status", "prio", "assignee", "due", "ver", "comments",
    ];
    let mut rows: Vec<[String; 9]> = Vec::new();
    let mut mismatches = Vec::new();
    for want in scenario::expected_cases() {
        let case = api
            .get_case(want.org_id, want.case_id)
            .await
            .map_err(|e| anyhow!("reading case {}: {e}", want.case_id))?
            .with_context(|| format!("case {} is gone", want.case_id))?;
        let comments = api
            .list_comments(want.org_id, want.case_id)
            .await
            .map_err(|e| anyhow!("listing comments of {}: {e}", want.case_id))?;
        let work_notes = comments.iter().filter(|c| c.is_work_note).count();
        let assignee = case
            .assignee_id
            .as_ref()
            .map(|id| users.get(id).cloned().unwrap_or_else(|| id.clone()));
        let due = case.due_date.map(|d| d.to_string());
        let opt = |v: Option<&str>| v.unwrap_or("-").to_owned();
        let fields = [
            ("title", case.title.clone(), want.title.to_owned()),
            ("status", case.status.clone(), want.status.to_owned()),
            (
                "priority",
                opt(case.priority.as_deref()),
                opt(want.priority),
            ),
            ("assignee", opt(assignee.as_deref()), opt(want.assignee)),
            ("due date", opt(due.as_deref()), opt(want.due_date)),
            (
                "version",
                case.version.to_string(),
                want.version.to_string(),
            ),
            (
                "comments",
                comments.len().to_string(),
                want.comments.to_string(),
            ),
        ];
        let wrong: Vec<String> = fields
            .iter()
            .filter(|(_, got, want)| got != want)
            .map(|(name, got, want)| format!("{name} {got}, expected {want}"))
            .collect();
        let matches = wrong.is_empty();
        if !matches {
            mismatches.push(format!("{}: {}", want.label, wrong.join("; ")));
        }
        let comment_cell = match work_notes {
            0 => comments.len().to_string(),
            n => format!("{} ({n} note)", comments.len()),
        };
        rows.push([
            if matches { "✓" } else { "✗" }.to_owned(),
            want.label.to_owned(),
            case.title.clone(),
            case.status.clone(),
            case.priority.clone().unwrap_or_else(|| "-".into()),
            assignee.unwrap_or_else(|| "-".into()),
            due.unwrap_or_else(|| "-".into()),
            case.version.to_string(),
            comment_cell,
        ]);
    }

    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::from(" ");
        for (cell, w) in cells.iter().zip(widths) {
            let pad = w.saturating_sub(cell.chars().count());
            let _ = write!(out, " {cell}{}", " ".repeat(pad));
        }
        out.trim_end().to_owned()
    };
    println!("\nCases after the scenario (read back from the sandbox):");
    println!("{}", line(&header.map(str::to_owned)));
    for row in &rows {
        println!("{}", line(row));
    }
    for mismatch in &mismatches {
        println!("  ✗ {mismatch}");
    }
    Ok(mismatches.is_empty())
}

/// User id -> display name, from the seed.
fn seeded_users(seed: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(seed).with_context(|| format!("reading {}", seed.display()))?;
    let seed: serde_json::Value = serde_json::from_str(&text).context("parsing the seed")?;
    let users = seed["users"].as_array().cloned().unwrap_or_default();
    Ok(users
        .iter()
        .filter_map(|u| {
            Some((
                u["id"].as_str()?.to_owned(),
                u["display_name"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// Reads the decisions topic (after the readers stopped, so every record is in) and prints how
/// many records of each decision it holds, with one example; returns the count.
async fn print_decisions(bootstrap: &str) -> Result<usize> {
    let kafka = reader_runtime::config::KafkaConfig {
        brokers: bootstrap.to_owned(),
        ..Default::default()
    };
    let records = tokio::task::spawn_blocking(move || {
        reader_runtime::why::read(&kafka, DECISIONS_TOPIC, Duration::from_secs(24 * 3600))
    })
    .await??;
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        *by_outcome.entry(record.outcome()).or_default() += 1;
    }
    println!(
        "\nDecision records on {DECISIONS_TOPIC} (key org:integration:site:id): {}",
        records.len()
    );
    for (outcome, count) in &by_outcome {
        println!("  {count:>3}  {outcome}");
    }
    if let Some(record) = records.first() {
        println!(
            "  e.g. {} -> {}",
            record.key(),
            serde_json::to_string(record)?
        );
    }
    Ok(records.len())
}
