//! Support for end-to-end tests and the demo (feature `testkit`): an embedded Kafka (librdkafka's
//! mock cluster, real client code paths over loopback TCP), a producer, consumer-group progress,
//! reader processes, a scrape of their `/metrics`, and an OTLP trace collector.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

mod otlp;
mod secure;
pub use otlp::{OtlpCollector, Span, SpanTree, attribute, hex, text};
pub use secure::{Stunnel, TestPki, stunnel_binary, tls_client_props};

/// librdkafka's mock cluster, in-process, listening on loopback.
pub struct EmbeddedKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKafka")
            .field("bootstrap", &self.cluster.bootstrap_servers())
            .finish()
    }
}

impl EmbeddedKafka {
    /// Starts a one-broker cluster with these topics (name, partitions).
    pub fn start(topics: &[(&str, i32)]) -> Result<Self> {
        let cluster = MockCluster::new(1).context("starting the mock cluster")?;
        for (topic, partitions) in topics {
            cluster
                .create_topic(topic, *partitions, 1)
                .with_context(|| format!("creating {topic}"))?;
        }
        Ok(Self { cluster })
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates a topic.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .with_context(|| format!("creating {topic}"))
    }

    /// Makes the next requests of `api` (one per error, in order) fail with those errors (for
    /// example a `Heartbeat` answered `RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID`: a fatal consumer
    /// error).
    pub fn request_errors(
        &self,
        api: rdkafka::types::RDKafkaApiKey,
        errors: &[rdkafka::types::RDKafkaRespErr],
    ) {
        self.cluster.request_errors(api, errors);
    }

    /// Makes every metadata answer about `topic` carry `error` (for example
    /// `RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED`: nobody may write to it).
    pub fn topic_error(&self, topic: &str, error: rdkafka::types::RDKafkaRespErr) -> Result<()> {
        self.cluster
            .topic_error(topic, error)
            .with_context(|| format!("setting an error on {topic}"))
    }
}

/// Where the Tansu binary is: `$TANSU_BIN`, else `tansu` in `~/.cargo/bin`, else on `PATH`.
pub fn tansu_binary() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return Some(path.into());
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    if let Some(candidate) = cargo_home.map(|h| h.join("bin/tansu"))
        && candidate.is_file()
    {
        return Some(candidate);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    })
}

/// A Tansu broker (a real Apache-Kafka-compatible broker) as a child process on loopback.
#[derive(Debug)]
pub struct TansuBroker {
    child: Option<Child>,
    binary: std::path::PathBuf,
    port: u16,
    /// The port clients are told to reconnect to (a TLS terminator's), when not `port`.
    advertised_port: Option<u16>,
    /// `--authentication`: clients must authenticate with SASL.
    authentication: bool,
    storage: String,
    workdir: std::path::PathBuf,
}

impl TansuBroker {
    /// Starts Tansu with `storage` (`memory://tansu/`, or `sqlite://tansu.db` relative to
    /// `workdir`) and waits until it accepts connections.
    pub async fn start(storage: &str, workdir: &Path) -> Result<Self> {
        Self::start_with(storage, workdir, None, false).await
    }

    /// [`TansuBroker::start`], advertising `127.0.0.1:advertised_port` in metadata (a TLS
    /// terminator in front of it) and, with `authentication`, requiring SASL.
    pub async fn start_with(
        storage: &str,
        workdir: &Path,
        advertised_port: Option<u16>,
        authentication: bool,
    ) -> Result<Self> {
        let binary = tansu_binary()
            .context("tansu is not installed: run `cargo xtask broker --install-only`")?;
        std::fs::create_dir_all(workdir)?;
        let mut broker = Self {
            child: None,
            binary,
            port: free_port(),
            advertised_port,
            authentication,
            storage: storage.to_owned(),
            workdir: workdir.to_owned(),
        };
        broker.spawn().await?;
        Ok(broker)
    }

    async fn spawn(&mut self) -> Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!(
            "tcp://127.0.0.1:{}",
            self.advertised_port.unwrap_or(self.port)
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.workdir.join("tansu.log"))?;
        let child = Command::new(&self.binary)
            .arg("broker")
            .args(["--cluster-id", "case-third-party-reader"])
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", &self.storage])
            .args(self.authentication.then_some("--authentication"))
            .current_dir(&self.workdir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!(
                    "tansu did not listen on {} (see {})",
                    self.port,
                    self.workdir.join("tansu.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The plaintext port Tansu listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Tansu binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Restarts the broker with SASL authentication required or not (Tansu 0.6.0 creates SCRAM
    /// users only on a broker that does not require authentication, and keeps them only in
    /// SQLite storage).
    pub async fn restart_with_authentication(&mut self, authentication: bool) -> Result<()> {
        self.authentication = authentication;
        self.restart().await
    }

    /// Kills the broker and starts it again on the same port and storage.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        self.spawn().await
    }

    /// Creates a topic through the Kafka admin API.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        create_topic_with(&self.bootstrap(), &[], topic, partitions).await
    }
}

/// Creates a topic through the Kafka admin API of `bootstrap`, with extra client properties
/// (security settings).
pub async fn create_topic_with(
    bootstrap: &str,
    props: &[(String, String)],
    topic: &str,
    partitions: i32,
) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in props {
        config.set(key, value);
    }
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = config.create()?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for result in results {
        if let Err((name, code)) = result
            && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
        {
            bail!("creating {name}: {code}");
        }
    }
    Ok(())
}

/// The broker an end-to-end test runs against: the same tests run on both.
#[derive(Debug)]
pub enum TestBroker {
    /// librdkafka's mock cluster, in-process.
    Embedded(EmbeddedKafka),
    /// A Tansu process.
    Tansu(Box<TansuBroker>),
}

impl TestBroker {
    /// An embedded cluster.
    pub fn embedded() -> Result<Self> {
        Ok(Self::Embedded(EmbeddedKafka::start(&[])?))
    }

    /// A Tansu broker on in-memory storage, working in `workdir`.
    pub async fn tansu(workdir: &Path) -> Result<Self> {
        Ok(Self::Tansu(Box::new(
            TansuBroker::start("memory://tansu/", workdir).await?,
        )))
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> String {
        match self {
            Self::Embedded(k) => k.bootstrap(),
            Self::Tansu(t) => t.bootstrap(),
        }
    }

    /// Creates a topic.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        match self {
            Self::Embedded(k) => k.create_topic(topic, partitions),
            Self::Tansu(t) => t.create_topic(topic, partitions).await,
        }
    }
}

/// A producer to any cluster.
pub fn producer(bootstrap: &str) -> Result<FutureProducer> {
    producer_with(bootstrap, &[])
}

/// A producer with extra client properties (security settings).
pub fn producer_with(bootstrap: &str, props: &[(String, String)]) -> Result<FutureProducer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "0");
    for (key, value) in props {
        config.set(key, value);
    }
    config.create().context("creating a producer")
}

/// Produces one message; returns its partition and offset.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    key: &str,
    value: &[u8],
) -> Result<(i32, i64)> {
    let mut record = FutureRecord::to(topic).key(key).payload(value);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    let delivered = producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .context("producing")?;
    Ok((delivered.partition, delivered.offset))
}

/// Per partition: (committed offset of `group`, high watermark).
pub async fn group_progress(
    bootstrap: &str,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>> {
    group_progress_with(bootstrap, &[], group, topic).await
}

/// [`group_progress`] with extra client properties (security settings).
pub async fn group_progress_with(
    bootstrap: &str,
    props: &[(String, String)],
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>> {
    let (bootstrap, group, topic) = (bootstrap.to_owned(), group.to_owned(), topic.to_owned());
    let props = props.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false");
        for (key, value) in &props {
            config.set(key, value);
        }
        let consumer: BaseConsumer = config.create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&topic, *p);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(5))?;
        let mut out = BTreeMap::new();
        for p in partitions {
            let (_, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(5))?;
            let done = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            };
            out.insert(p, (done, high));
        }
        Ok::<_, anyhow::Error>(out)
    })
    .await?
}

/// Waits until `group` has committed every message of `topic`.
pub async fn wait_caught_up(
    bootstrap: &str,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let progress = group_progress(bootstrap, group, topic).await?;
        if progress.values().all(|(done, high)| done >= high) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("group {group} did not catch up on {topic}: {progress:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A reader running as a child process (killed when dropped).
#[derive(Debug)]
pub struct ReaderProcess {
    child: Child,
    /// The health server's address.
    pub health: SocketAddr,
}

impl ReaderProcess {
    /// Starts `binary --config <config> run`; the config must set `health.listen` to `health`.
    pub fn spawn(binary: &Path, config: &Path, health: SocketAddr, log: &Path) -> Result<Self> {
        Self::spawn_with(binary, config, &[], health, log)
    }

    /// Starts `binary --config <config> run <extra...>`.
    pub fn spawn_with(
        binary: &Path,
        config: &Path,
        extra: &[&str],
        health: SocketAddr,
        log: &Path,
    ) -> Result<Self> {
        Self::spawn_with_env(binary, config, extra, &[], health, log)
    }

    /// Starts `binary --config <config> run <extra...>` with extra environment variables
    /// (`RUST_LOG` is `info` unless `env` sets it).
    pub fn spawn_with_env(
        binary: &Path,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        health: SocketAddr,
        log: &Path,
    ) -> Result<Self> {
        let log = std::fs::File::create(log).context("creating the reader log")?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg("run")
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self { child, health })
    }

    /// Waits until `/ready` answers 200.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = http_get(self.health, "/ready").await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("reader exited before it was ready: {status}");
            }
            if Instant::now() > deadline {
                bail!("reader not ready after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> Result<String> {
        let (status, body) = http_get(self.health, "/metrics").await?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(body)
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn terminate(mut self, timeout: Duration) -> Result<Option<i32>> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("reader did not exit in time")??;
        Ok(status.code())
    }

    /// The exit status if the process has exited (without waiting).
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills with SIGKILL and reaps.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(mut self, timeout: Duration) -> Result<Option<i32>> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("reader did not exit in time")??;
        Ok(status.code())
    }
}

/// A minimal HTTP/1.0 GET on loopback: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .context("connect timeout")??;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .context("read timeout")??;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sums the samples of a Prometheus metric whose labels include all of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let ok = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            ok.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Every label value of `label` seen on metric `name`, with its summed value.
pub fn metric_by_label(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some((metric, rest)) = series.split_once('{') else {
            continue;
        };
        if metric != name {
            continue;
        }
        let needle = format!("{label}=\"");
        let Some(start) = rest.find(&needle) else {
            continue;
        };
        let tail = &rest[start + needle.len()..];
        let Some(end) = tail.find('"') else { continue };
        *out.entry(tail[..end].to_owned()).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}
