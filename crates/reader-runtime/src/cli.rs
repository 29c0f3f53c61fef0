//! The command line every flavor binary shares: `run`, `decode`, `explain`, `validate-config`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use case_api::{GrpcCaseApi, GrpcCaseApiConfig, TlsConfig};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use rdkafka::mocking::MockCluster;
use thirdparty_core::{
    DecisionSink, FilterReason, MessageOutcome, Payload, Pipeline, PipelineConfig, SkipList,
};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::decisions::KafkaDecisionSink;
use crate::flavor::{Flavor, Stages};
use crate::health::{self, Health};
use crate::kafka::{Reader, StopReason};
use crate::telemetry;
use crate::tracing_export::TraceExport;

/// A third-party reader.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Config file (TOML); `CTPR_*` environment variables override it.
    #[arg(long, global = true, env = "CTPR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume, decide and apply (the default).
    Run(RunArgs),
    /// Decode one message value (file or stdin) and print each changelog as a JSON line.
    Decode {
        /// File holding the message value; stdin when absent.
        file: Option<PathBuf>,
    },
    /// Decide one message against the Case API as a live run would (every look-up, the
    /// processor's too), writing nothing; print each changelog's decision, reason, case and the
    /// settings that decided it, one JSON line each.
    Explain {
        /// File holding the message value; stdin when absent.
        file: Option<PathBuf>,
    },
    /// The recent decisions about one third-party item (from the decisions topic), newest
    /// first: `why PROJ-12 --site acme.atlassian.net`.
    Why {
        /// The item's key (`PROJ-12`, `INC0010023`) or id (`10002`, a sys_id).
        item: String,
        /// Only this site (Jira site, ServiceNow instance).
        #[arg(long)]
        site: Option<String>,
        /// Only this organization.
        #[arg(long)]
        org: Option<u64>,
        /// How far back to read, in hours.
        #[arg(long, default_value_t = 168)]
        since_hours: u64,
        /// At most this many records.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Re-read a range of the source topic (own assignment: never joins the live group, never
    /// commits), re-decide every selected message with today's settings and print how each
    /// decision changes (`project_not_found -> would_apply: 20`). Writes nothing without
    /// `--apply`; with it, applies, and can be interrupted and run again safely.
    Replay(ReplayArgs),
    /// Load and check a config file; print `ok` or what is wrong.
    ValidateConfig {
        /// The file to check (defaults to --config).
        file: Option<PathBuf>,
    },
    /// Report the TLS crypto modules; exit 0 only in a `fips` build whose Case API TLS module is
    /// in FIPS mode and, when the config's Kafka protocol uses TLS, whose OpenSSL runs the FIPS
    /// provider (exit 4 otherwise).
    FipsCheck,
}

#[derive(Debug, Args, Default)]
struct RunArgs {
    /// Decide and log, never write.
    #[arg(long)]
    dry_run: bool,
    /// `embedded` starts librdkafka's mock cluster in-process; anything else is a broker list.
    #[arg(long)]
    kafka: Option<String>,
    /// Partitions of the topic created in the embedded cluster.
    #[arg(long, default_value_t = 4)]
    embedded_partitions: i32,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// From this time (RFC 3339, e.g. 2024-06-01T10:00:00Z), on every partition.
    #[arg(long, conflicts_with_all = ["partition", "offsets"], required_unless_present = "partition")]
    from: Option<String>,
    /// Up to this time, excluded (default: now).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Only this partition, with --offsets.
    #[arg(long, requires = "offsets")]
    partition: Option<i32>,
    /// FIRST..LAST (both included) or FIRST.. (to the current end), with --partition.
    #[arg(long, requires = "partition")]
    offsets: Option<String>,
    /// Only messages whose recorded decision was this filter reason (repeatable; needs
    /// [decisions] topic).
    #[arg(long = "reason", value_name = "REASON")]
    reasons: Vec<String>,
    /// Only messages of this organization.
    #[arg(long)]
    org: Option<u64>,
    /// Only messages about this item (key or id: PROJ-12, 10002, INC0010023, a sys_id).
    #[arg(long)]
    item: Option<String>,
    /// With --item: only on this site (Jira site, ServiceNow instance).
    #[arg(long, requires = "item")]
    site: Option<String>,
    /// Apply the changes (without it: decide and print, write nothing).
    #[arg(long)]
    apply: bool,
    /// Also write one JSON line per changelog (position, before, after, case, settings) here.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Exit code of a `fips` build whose TLS crypto module is not in FIPS mode, or whose Kafka TLS
/// would not run on OpenSSL's FIPS provider.
pub const EXIT_NOT_FIPS: u8 = 4;

/// Exit code when a message exhausted its retries (`run`: its offset is not stored, so it is
/// redelivered after the restart; `replay --apply`: the replay stopped there).
pub const EXIT_RETRIES_EXHAUSTED: u8 = 3;

/// Exit code when the async runtime cannot start.
pub const EXIT_NO_RUNTIME: u8 = 2;

/// Exit code of a `replay` stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The command line, named for the flavor's binary (`jira-reader 0.1.0` for `--version`, and in
/// usage lines) rather than for this crate.
fn parse_cli<F: Flavor>() -> Cli {
    // One name per process, for clap's `&'static str`.
    let binary: &'static str = Box::leak(format!("{}-reader", F::NAME).into_boxed_str());
    let matches = Cli::command()
        .name(binary)
        .bin_name(binary)
        .version(env!("CARGO_PKG_VERSION"))
        .get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    }
}

/// Runs a flavor's command line; returns the process exit code.
pub fn main<F: Flavor>() -> ExitCode {
    let cli = parse_cli::<F>();
    // Before anything can open a connection: a `fips` build runs on the FIPS module or not at all.
    let crypto = match case_api::crypto::init() {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err}; refusing to start");
            return ExitCode::from(EXIT_NOT_FIPS);
        }
    };
    if let Some(Command::FipsCheck) = cli.command {
        println!("{crypto}");
        if let Some(kafka_tls) = crate::kafka_security::kafka_tls_status() {
            println!("{kafka_tls}");
        }
        if !crypto.fips_mode {
            eprintln!("error: not a FIPS build (built without the `fips` feature)");
            return ExitCode::FAILURE;
        }
        let Some(path) = cli.config.as_deref() else {
            return ExitCode::SUCCESS;
        };
        let config = match load::<F>(Some(path)) {
            Ok(config) => config,
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(err) = crate::kafka_security::check_fips(&config.kafka.security) {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_NOT_FIPS);
        }
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_NO_RUNTIME);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => run::<F>(cli.config.as_deref(), RunArgs::default()).await,
            Some(Command::Run(args)) => run::<F>(cli.config.as_deref(), args).await,
            Some(Command::Decode { file }) => decode::<F>(cli.config.as_deref(), file.as_deref()),
            Some(Command::Explain { file }) => {
                explain::<F>(cli.config.as_deref(), file.as_deref()).await
            }
            Some(Command::ValidateConfig { file }) => {
                validate::<F>(file.as_deref().or(cli.config.as_deref()))
            }
            Some(Command::FipsCheck) => Ok(ExitCode::SUCCESS),
            Some(Command::Replay(args)) => replay::<F>(cli.config.as_deref(), args).await,
            Some(Command::Why {
                item,
                site,
                org,
                since_hours,
                limit,
            }) => {
                let query = crate::why::WhyQuery {
                    item,
                    site,
                    org,
                    since: Duration::from_secs(since_hours.saturating_mul(3600)),
                    limit,
                };
                why::<F>(cli.config.as_deref(), query).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn why<F: Flavor>(config: Option<&Path>, query: crate::why::WhyQuery) -> Result<ExitCode> {
    let config = load::<F>(config)?;
    let item = query.item.clone();
    let records = tokio::task::spawn_blocking(move || {
        crate::why::find(&config.kafka, &config.decisions.topic, &query)
    })
    .await??;
    if records.is_empty() {
        println!("no decision about {item} in the decisions topic for that window");
        return Ok(ExitCode::FAILURE);
    }
    print!("{}", crate::why::render(&records));
    Ok(ExitCode::SUCCESS)
}

async fn replay<F: Flavor>(config_path: Option<&Path>, args: ReplayArgs) -> Result<ExitCode> {
    let mut config = load::<F>(config_path)?;
    let range = match (&args.from, args.partition, &args.offsets) {
        (Some(from), _, _) => crate::replay::Range::time(from, args.to.as_deref())?,
        (None, Some(partition), Some(offsets)) => {
            crate::replay::Range::offsets(partition, offsets)?
        }
        _ => anyhow::bail!("give --from [--to], or --partition with --offsets"),
    };
    let reasons = args
        .reasons
        .iter()
        .map(|name| {
            FilterReason::parse_with(name.trim(), F::REASONS).with_context(|| {
                let names: Vec<&str> = FilterReason::ALL
                    .iter()
                    .chain(F::REASONS)
                    .map(|r| r.as_str())
                    .collect();
                format!(
                    "--reason {name:?} is no filter reason; one of: {}",
                    names.join(", ")
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let query = crate::replay::ReplayQuery {
        range,
        reasons,
        org: args.org,
        item: args.item,
        site: args.site,
        apply: args.apply,
        output: args.output,
    };
    // Logs go to stderr at `warn` unless RUST_LOG says otherwise: the table is the output.
    telemetry::init_cli_logging();
    config.pipeline.dry_run = !query.apply;
    let topic = source_topic::<F>(&config);
    let api = Arc::new(case_api_client(&config.case_api)?);
    let skip_list = Arc::new(SkipList::new(config.skip.entries()?));
    let decisions = match (config.decisions.topic.is_empty(), query.apply) {
        (false, true) => Some(Arc::new(
            KafkaDecisionSink::new(&config.kafka, &config.decisions, F::NAME)
                .context("starting the decisions producer")?,
        )),
        _ => None,
    };
    let sink = decisions.clone().map(|d| {
        Arc::new(crate::replay::ReplayedSink(d as Arc<dyn DecisionSink>)) as Arc<dyn DecisionSink>
    });
    let pipeline = pipeline::<F>(&config, api, skip_list, sink);
    let stop = CancellationToken::new();
    let signals = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });
    let replayer = crate::replay::Replayer {
        kafka: &config.kafka,
        topic: &topic,
        decisions_topic: &config.decisions.topic,
        pipeline: &pipeline,
        decoder: F::stages(&config.integration).decoder,
        retry: &config.retry,
        stop,
    };
    let (slices, summary) = replayer.run(&query).await?;
    if let Some(decisions) = decisions {
        tokio::task::spawn_blocking(move || decisions.flush(Duration::from_secs(10))).await?;
    }
    print!("{}", summary.render(&topic, &slices, &query));
    Ok(match &summary.stopped {
        None => ExitCode::SUCCESS,
        Some((why, _)) if why == "interrupted" => ExitCode::from(EXIT_INTERRUPTED),
        Some(_) => ExitCode::from(EXIT_RETRIES_EXHAUSTED),
    })
}

/// The source topic: `[kafka] topic`, else the flavor's default.
fn source_topic<F: Flavor>(config: &Config<F::Settings>) -> String {
    if config.kafka.topic.is_empty() {
        F::DEFAULT_TOPIC.to_owned()
    } else {
        config.kafka.topic.clone()
    }
}

fn load<F: Flavor>(path: Option<&Path>) -> Result<Config<F::Settings>> {
    Ok(Config::load(path, std::env::vars())?)
}

fn read_input(file: Option<&Path>) -> Result<Vec<u8>> {
    match file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display())),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            Ok(buf)
        }
    }
}

fn validate<F: Flavor>(path: Option<&Path>) -> Result<ExitCode> {
    match load::<F>(path) {
        Ok(_) => {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("{err:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn decode<F: Flavor>(config: Option<&Path>, file: Option<&Path>) -> Result<ExitCode> {
    let config = load::<F>(config)?;
    let stages = F::stages(&config.integration);
    let input = read_input(file)?;
    match stages.decoder.decode(&input) {
        Ok(changelogs) => {
            let mut out = std::io::stdout().lock();
            for changelog in changelogs {
                serde_json::to_writer(&mut out, &changelog)?;
                out.write_all(b"\n")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Builds the Case API client from the config.
pub fn case_api_client(config: &crate::config::CaseApiConfig) -> Result<GrpcCaseApi> {
    let mut client = GrpcCaseApiConfig::new(config.endpoint.clone())
        .with_timeout(config.timeout)
        .with_connect_timeout(config.connect_timeout);
    if config.tls_ca_file.is_some() || config.endpoint.starts_with("https://") {
        let ca_cert_pem = match &config.tls_ca_file {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        client = client.with_tls(TlsConfig {
            ca_cert_pem,
            domain_name: config.tls_domain.clone(),
        });
    }
    if let Some(path) = &config.token_file {
        let token =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        client = client.with_bearer_token(token.trim().to_owned());
    }
    GrpcCaseApi::new(&client).context("configuring the case api client")
}

fn pipeline<F: Flavor>(
    config: &Config<F::Settings>,
    api: Arc<GrpcCaseApi>,
    skip_list: Arc<SkipList>,
    decisions: Option<Arc<dyn DecisionSink>>,
) -> Pipeline {
    let Stages {
        decoder,
        filterer,
        processor,
    } = F::stages(&config.integration);
    let p = &config.pipeline;
    let mut builder = Pipeline::builder(decoder, filterer, processor, api).skip_list(skip_list);
    if let Some(sink) = decisions {
        builder = builder.decision_sink(sink);
    }
    builder
        .config(PipelineConfig {
            flavor: F::NAME.into(),
            max_conflict_retries: p.max_conflict_retries,
            dry_run: p.dry_run,
            cache_ttl: time::Duration::try_from(p.cache_ttl).unwrap_or(time::Duration::MAX),
            negative_cache_ttl: time::Duration::try_from(p.negative_cache_ttl)
                .unwrap_or(time::Duration::MAX),
            cache_capacity: p.cache_capacity,
            warm_max_orgs: p.warm_max_orgs,
            warm_timeout: p.warm_timeout,
            warm_page_size: thirdparty_core::warm::DEFAULT_WARM_PAGE_SIZE,
        })
        .build()
}

async fn explain<F: Flavor>(config: Option<&Path>, file: Option<&Path>) -> Result<ExitCode> {
    let config = load::<F>(config)?;
    let input = read_input(file)?;
    let api = Arc::new(case_api_client(&config.case_api)?);
    let pipeline = pipeline::<F>(&config, api, Arc::default(), None);
    let outcome = pipeline
        .explain(&Payload::new(input))
        .await
        .context("the case api failed (retryable); nothing was decided")?;
    let mut out = std::io::stdout().lock();
    let reports = match outcome {
        MessageOutcome::Handled(reports) => reports,
        MessageOutcome::Undecodable(err) => {
            let line = serde_json::json!({
                "decision": err.class().as_str(), "error": err.to_string(),
            });
            writeln!(out, "{line}")?;
            return Ok(ExitCode::FAILURE);
        }
        MessageOutcome::Skipped => return Ok(ExitCode::SUCCESS),
    };
    for report in reports {
        let mut line = crate::explain::report_json(&report);
        line["changelog"] = serde_json::to_value(&report.changelog)?;
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn run<F: Flavor>(config_path: Option<&Path>, args: RunArgs) -> Result<ExitCode> {
    let mut config = load::<F>(config_path)?;
    let traces = TraceExport::start(&config.tracing, F::NAME).context("starting trace export")?;
    telemetry::init_logging(traces.as_ref());
    if traces.is_some() {
        tracing::info!(
            endpoint = %config.tracing.otlp_endpoint.trim(),
            service_name = %config.tracing.service_name,
            sample_ratio = config.tracing.sample_ratio,
            "trace export enabled"
        );
    }
    // A `fips` build carries Kafka traffic over TLS only on OpenSSL's FIPS provider.
    if let Err(err) = crate::kafka_security::check_fips(&config.kafka.security) {
        tracing::error!(error = %err, "refusing to start");
        eprintln!("error: {err}; refusing to start");
        return Ok(ExitCode::from(EXIT_NOT_FIPS));
    }
    if args.dry_run {
        config.pipeline.dry_run = true;
    }
    if config.pipeline.dry_run {
        // A dry run never commits and never takes partitions from the real readers.
        config.kafka.group_id = format!("{}-dry-run", config.kafka.group_id);
    }
    let topic = source_topic::<F>(&config);
    // Kept alive for the whole run: the embedded cluster lives in this process.
    let _embedded = match args.kafka.as_deref() {
        Some("embedded") => {
            let cluster = MockCluster::new(1).context("starting the embedded kafka")?;
            cluster
                .create_topic(&topic, args.embedded_partitions, 1)
                .context("creating the topic in the embedded kafka")?;
            config.kafka.brokers = cluster.bootstrap_servers();
            tracing::info!(bootstrap = %config.kafka.brokers, %topic, "embedded kafka started");
            Some(cluster)
        }
        Some(brokers) => {
            config.kafka.brokers = brokers.to_owned();
            None
        }
        None => None,
    };

    let metrics_render = telemetry::install_metrics(&config.statsd)?;
    let health = Arc::new(Health::new(config.health.stall_timeout));
    let listener = health::bind(config.health.listen)
        .await
        .with_context(|| format!("binding the health server on {}", config.health.listen))?;
    let stop = CancellationToken::new();
    let health_server = tokio::spawn(health::serve(
        listener,
        health.clone(),
        metrics_render,
        stop.clone(),
    ));

    let api = Arc::new(case_api_client(&config.case_api)?);
    tokio::spawn(watch_case_api(api.clone(), health.clone(), stop.clone()));
    if let Some(path) = &config.case_api.token_file {
        tokio::spawn(crate::case_api_token::watch(
            path.clone(),
            api.bearer_auth().clone(),
            F::NAME,
            stop.clone(),
        ));
    }

    let skip_list = Arc::new(SkipList::new(config.skip.entries()?));
    // A dry run's decisions are not the reader's: they stay out of the decisions topic.
    let decisions = match (config.decisions.topic.is_empty(), config.pipeline.dry_run) {
        (false, false) => Some(Arc::new(
            KafkaDecisionSink::new(&config.kafka, &config.decisions, F::NAME)
                .context("starting the decisions producer")?,
        )),
        _ => None,
    };
    if let Some(decisions) = &decisions {
        decisions.report_fatal_to(health.clone());
    }
    let pipeline = Arc::new(pipeline::<F>(
        &config,
        api,
        skip_list.clone(),
        decisions.clone().map(|d| d as Arc<dyn DecisionSink>),
    ));
    tokio::spawn(reload_skip_list::<F>(
        config_path.map(Path::to_owned),
        skip_list,
        pipeline.clone(),
        stop.clone(),
    ));
    // `/ready` waits for the sync-metadata cache to be warmed (a dry run's too: it only reads);
    // the consumer joins its group meanwhile. Bounded, and never fails the start.
    tokio::spawn(warm_caches(
        pipeline.clone(),
        WarmingGate::new(health.clone()),
    ));
    tracing::info!(
        flavor = F::NAME, %topic, brokers = %config.kafka.brokers,
        dry_run = config.pipeline.dry_run, "reader starting"
    );
    let reader = Reader::start(
        &config.kafka,
        &topic,
        pipeline,
        config.retry.clone(),
        health,
    )?;
    let signals = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        signals.cancel();
    });
    let reason = reader.run(stop.clone()).await;
    stop.cancel();
    if let Some(decisions) = decisions {
        let _ = tokio::task::spawn_blocking(move || decisions.flush(Duration::from_secs(5))).await;
    }
    let _ = health_server.await;
    // The spans of the last messages are exported before the process ends.
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    // So are the last metrics: `retries` is counted just before an exit.
    let _ = tokio::task::spawn_blocking(|| crate::statsd::flush(Duration::from_secs(2))).await;
    match reason {
        StopReason::Requested => {
            tracing::info!("reader stopped");
            Ok(ExitCode::SUCCESS)
        }
        StopReason::RetriesExhausted(why) => {
            tracing::error!(reason = %why, "exiting after exhausted retries; the offset was not stored");
            Ok(ExitCode::from(EXIT_RETRIES_EXHAUSTED))
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Holds `/ready` back ("warming caches") from its creation until it is dropped, however the
/// warm-up ends.
#[derive(Debug)]
struct WarmingGate(Arc<Health>);

impl WarmingGate {
    fn new(health: Arc<Health>) -> Self {
        health.warming(true);
        Self(health)
    }
}

impl Drop for WarmingGate {
    fn drop(&mut self) {
        self.0.warming(false);
    }
}

/// Fills the pipeline's sync-metadata cache (`Pipeline::warm_caches`: bounded by
/// `warm_max_orgs` and `warm_timeout_s`, logs how it ended), then opens `gate`.
async fn warm_caches(pipeline: Arc<Pipeline>, gate: WarmingGate) {
    pipeline.warm_caches().await;
    drop(gate);
}

/// Checks the Case API's gRPC health every 5 s for `/ready`.
async fn watch_case_api(api: Arc<GrpcCaseApi>, health: Arc<Health>, stop: CancellationToken) {
    loop {
        let serving = api.health_check().await.is_ok();
        health.case_api(serving);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(if serving { 5 } else { 1 })) => {}
        }
    }
}

/// Reloads the skip list when the config file changes (checked every second) or on SIGHUP; on
/// SIGHUP also clears the pipeline's settings and sync-metadata caches.
async fn reload_skip_list<F: Flavor>(
    path: Option<PathBuf>,
    skip_list: Arc<SkipList>,
    pipeline: Arc<Pipeline>,
    stop: CancellationToken,
) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = path.as_deref().and_then(modified);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = {
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = hup_recv => true,
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            }
        };
        #[cfg(not(unix))]
        let forced = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        if forced {
            clear_caches_on_sighup(&pipeline);
        }
        let Some(path) = path.as_deref() else {
            continue;
        };
        let now = modified(path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match load::<F>(Some(path)).and_then(|c| Ok(c.skip.entries()?)) {
            Ok(entries) => {
                let count = entries.len();
                skip_list.replace(entries);
                tracing::info!(entries = count, "skip list reloaded");
            }
            Err(err) => {
                metrics::counter!("dd.case_third_party_reader.config_reload_failed", "flavor" => F::NAME, "what" => "skip_list")
                    .increment(1);
                tracing::error!(error = %format!("{err:#}"), "config reload failed; keeping the previous skip list");
            }
        }
    }
}

/// What SIGHUP does to the pipeline: forgets every cached settings and sync-metadata answer, so
/// a project or organization configured since is seen at once.
fn clear_caches_on_sighup(pipeline: &Pipeline) {
    pipeline.clear_caches();
    tracing::info!("caches cleared on sighup");
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Instant;

    use async_trait::async_trait;
    use serde::Deserialize;
    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::{
        Case, CaseApi, CaseApiError, Changelog, DecodeError, Decoder, FilterReason, Filterer,
        PreFilterContext, ProcessOutcome, Processor, SyncMetadata, SyncSettings,
    };

    use super::*;

    #[derive(Debug)]
    struct Stub;

    impl Decoder for Stub {
        fn integration(&self) -> &'static str {
            "stub"
        }

        fn decode(&self, _value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
            Ok(Vec::new())
        }
    }

    #[async_trait]
    impl Filterer for Stub {
        async fn pre_filter(
            &self,
            _changelog: &mut Changelog,
            _ctx: &PreFilterContext<'_>,
        ) -> Result<Option<FilterReason>, CaseApiError> {
            Ok(None)
        }

        fn filter(&self, _: &Changelog, _: &Case, _: &SyncSettings) -> Option<FilterReason> {
            None
        }
    }

    #[async_trait]
    impl Processor for Stub {
        async fn process(
            &self,
            _: &Changelog,
            _: &Case,
            _: &SyncSettings,
            _: &dyn CaseApi,
        ) -> Result<ProcessOutcome, CaseApiError> {
            Ok(ProcessOutcome::Applied)
        }
    }

    #[derive(Debug, Default, Clone, Deserialize)]
    struct NoSettings {}

    struct StubFlavor;

    impl Flavor for StubFlavor {
        const NAME: &'static str = "stub";
        const DEFAULT_TOPIC: &'static str = "stub";
        type Settings = NoSettings;

        fn stages(_: &NoSettings) -> Stages {
            Stages {
                decoder: Arc::new(Stub),
                filterer: Arc::new(Stub),
                processor: Arc::new(Stub),
            }
        }
    }

    #[tokio::test]
    async fn the_warm_up_holds_ready_back_until_it_ends_however_it_ends() {
        let api = Arc::new(InMemoryCaseApi::new());
        api.insert_metadata(SyncMetadata {
            org_id: 7,
            integration: "stub".into(),
            project_id: "p".into(),
            scope: Default::default(),
            custom_fields: Default::default(),
            own_user_ids: Default::default(),
        });
        let health = Arc::new(Health::new(Duration::from_secs(60)));
        health.assigned(1);
        health.case_api(true);
        for unsupported in [false, true] {
            if unsupported {
                api.without_list_all();
            }
            let Stages {
                decoder,
                filterer,
                processor,
            } = StubFlavor::stages(&NoSettings {});
            let pipeline =
                Arc::new(Pipeline::builder(decoder, filterer, processor, api.clone()).build());
            let gate = WarmingGate::new(health.clone());
            assert_eq!(health.ready().unwrap_err(), "warming caches");
            warm_caches(pipeline.clone(), gate).await;
            assert!(health.ready().is_ok(), "unsupported: {unsupported}");
            assert_eq!(pipeline.metadata_cache().len(), usize::from(!unsupported));
        }
        // A warm-up that never ends normally (its task cancelled) opens the gate too.
        let gate = WarmingGate::new(health.clone());
        let task = tokio::spawn(async move {
            let _gate = gate;
            std::future::pending::<()>().await;
        });
        assert!(health.ready().is_err());
        task.abort();
        let _ = task.await;
        assert!(health.ready().is_ok());
    }

    #[tokio::test]
    async fn sighup_clears_the_pipeline_caches() {
        // Installs tokio's SIGHUP handler before any SIGHUP is sent: the signal's default action
        // would end the test process.
        let _hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
        let Stages {
            decoder,
            filterer,
            processor,
        } = StubFlavor::stages(&NoSettings {});
        let api = Arc::new(InMemoryCaseApi::new());
        let pipeline = Arc::new(Pipeline::builder(decoder, filterer, processor, api).build());
        let nothing = || async { Ok::<_, ()>(Arc::<[SyncMetadata]>::from(Vec::new())) };
        let settings = || async { Ok::<_, ()>(None) };
        let key = (1, "stub".to_owned());
        let cache = pipeline.metadata_cache();
        cache.get_or_try_load(&key, nothing).await.unwrap();
        let settings_key = (1, "project".to_owned(), "stub".to_owned());
        let settings_cache = pipeline.settings_cache();
        settings_cache
            .get_or_try_load(&settings_key, settings)
            .await
            .unwrap();
        assert_eq!((cache.len(), settings_cache.len()), (1, 1));

        // No config file: SIGHUP still clears the caches.
        let stop = CancellationToken::new();
        let task = tokio::spawn(reload_skip_list::<StubFlavor>(
            None,
            Arc::default(),
            pipeline.clone(),
            stop.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        // The task installs its own listener when it first runs: signal until it has acted.
        while !(cache.is_empty() && settings_cache.is_empty()) {
            assert!(
                Instant::now() < deadline,
                "SIGHUP left the caches as they were"
            );
            let sent = std::process::Command::new("kill")
                .args(["-HUP", &std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        task.await.unwrap();
    }
}
