//! The world an end-to-end test of `jira-reader` runs in (a work directory, a broker with the
//! topic, the sandbox Case API) and the reader's TOML config, built with test defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use case_api_sandbox::{DEMO_SEED_JSON, SandboxConfig, SandboxServer, Seed};
use reader_runtime::testkit::{ReaderProcess, TestBroker, free_port};

use super::TOPIC;

/// The `jira-reader` binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_jira-reader");

/// Which broker a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Broker {
    /// librdkafka's mock cluster, in-process (the default test run).
    Embedded,
    /// A Tansu process working in `<dir>/tansu` (`cargo xtask e2e`).
    Tansu,
}

/// The demo seed (`DEMO_SEED_JSON`).
pub fn demo_seed() -> Seed {
    Seed::from_json(DEMO_SEED_JSON).unwrap()
}

/// The sandbox Case API with `config`, on a free loopback port.
pub async fn sandbox(config: SandboxConfig) -> SandboxServer {
    SandboxServer::bind(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The sandbox Case API on the demo seed, on a free loopback port.
pub async fn demo_sandbox() -> SandboxServer {
    sandbox(SandboxConfig {
        seed: Some(demo_seed()),
        ..Default::default()
    })
    .await
}

/// A fresh directory `jira-<name>-<pid>-<port>` in the temporary directory, for a test's
/// configs and logs.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "jira-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A free loopback address, for a reader's health server.
pub fn free_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// A test's world: its work directory, a broker with [`TOPIC`], the sandbox Case API.
pub struct World {
    /// The broker, with [`TOPIC`] (and any other topic asked for) created.
    pub kafka: TestBroker,
    /// The sandbox Case API.
    pub sandbox: SandboxServer,
    /// The work directory: configs, logs, Tansu's files.
    pub dir: PathBuf,
}

/// How to build a [`World`]: by default the embedded broker, [`TOPIC`] with one partition, the
/// sandbox on the demo seed.
pub struct WorldBuilder {
    name: String,
    broker: Broker,
    partitions: i32,
    topics: Vec<(String, i32)>,
    sandbox: SandboxConfig,
}

impl World {
    /// A builder for the world of the test `name` (which names its work directory).
    pub fn builder(name: &str) -> WorldBuilder {
        WorldBuilder {
            name: name.to_owned(),
            broker: Broker::Embedded,
            partitions: 1,
            topics: Vec::new(),
            sandbox: SandboxConfig {
                seed: Some(demo_seed()),
                ..Default::default()
            },
        }
    }

    /// The default world of the test `name`, with `partitions` partitions of [`TOPIC`].
    pub async fn start(name: &str, partitions: i32) -> World {
        Self::builder(name).partitions(partitions).start().await
    }

    /// A reader config on this world's broker and sandbox, to be written in its directory.
    pub fn reader_config(&self) -> ReaderConfig {
        ReaderConfig::new(&self.dir, &self.kafka.bootstrap(), &self.sandbox.endpoint())
    }

    /// The path of `file` in the work directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The log of the reader `name` (`<dir>/<name>.log`); empty when there is none yet.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl WorldBuilder {
    /// Runs on `broker`.
    pub fn broker(mut self, broker: Broker) -> Self {
        self.broker = broker;
        self
    }

    /// [`TOPIC`] has `partitions` partitions.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Creates `topic` too, with `partitions` partitions (after [`TOPIC`]).
    pub fn topic(mut self, topic: &str, partitions: i32) -> Self {
        self.topics.push((topic.to_owned(), partitions));
        self
    }

    /// The sandbox starts on `seed` instead of the demo seed.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.sandbox.seed = Some(seed);
        self
    }

    /// The sandbox's whole config (its seed included).
    pub fn sandbox(mut self, config: SandboxConfig) -> Self {
        self.sandbox = config;
        self
    }

    /// Creates the directory, starts the broker and creates the topics, binds the sandbox.
    pub async fn start(self) -> World {
        let dir = work_dir(&self.name);
        let kafka = match self.broker {
            Broker::Embedded => TestBroker::embedded().unwrap(),
            Broker::Tansu => TestBroker::tansu(&dir.join("tansu")).await.unwrap(),
        };
        kafka.create_topic(TOPIC, self.partitions).await.unwrap();
        for (topic, partitions) in &self.topics {
            kafka.create_topic(topic, *partitions).await.unwrap();
        }
        let sandbox = sandbox(self.sandbox).await;
        World {
            kafka,
            sandbox,
            dir,
        }
    }
}

/// A reader's TOML config. Its base sections have test defaults: `[kafka]` reads from the
/// earliest offset, commits every 100 ms and drains for 5 s; `[kafka.properties]` has a 6 s
/// session, a 500 ms heartbeat and a 20 ms fetch wait; `[case_api]` a 1 s timeout; `[health]`
/// listens on a free loopback port. TOML forbids a table twice: keys of `[kafka]`,
/// `[kafka.properties]` and `[case_api]` go through the methods, other tables through
/// [`ReaderConfig::section`].
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    dir: PathBuf,
    brokers: String,
    endpoint: String,
    timeout_ms: u64,
    kafka: Vec<String>,
    properties: Vec<(String, String)>,
    case_api: Vec<String>,
    sections: Vec<String>,
    health: SocketAddr,
}

impl ReaderConfig {
    /// A config on `brokers` and the Case API at `endpoint`, written in `dir`.
    pub fn new(dir: &Path, brokers: &str, endpoint: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            brokers: brokers.to_owned(),
            endpoint: endpoint.to_owned(),
            timeout_ms: 1000,
            kafka: Vec::new(),
            properties: [
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "500"),
                ("fetch.wait.max.ms", "20"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
            case_api: Vec::new(),
            sections: Vec::new(),
            health: free_addr(),
        }
    }

    /// Adds a line to `[kafka]`, e.g. `max_in_flight = 64`.
    pub fn kafka(mut self, line: impl Into<String>) -> Self {
        self.kafka.push(line.into());
        self
    }

    /// Sets `key` of `[kafka.properties]` to `value` (a string), replacing any value it had.
    pub fn property(mut self, key: &str, value: &str) -> Self {
        match self.properties.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.properties.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    /// The Case API is at `endpoint` (instead of the sandbox's).
    pub fn endpoint(mut self, endpoint: &str) -> Self {
        endpoint.clone_into(&mut self.endpoint);
        self
    }

    /// The Case API's `timeout_ms`.
    pub fn timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Adds a line to `[case_api]`, e.g. `tls_domain = "localhost"`.
    pub fn case_api(mut self, line: impl Into<String>) -> Self {
        self.case_api.push(line.into());
        self
    }

    /// Appends a whole section, its header included (`[retry]`, `[statsd]`, `[tracing]`...).
    pub fn section(mut self, text: impl Into<String>) -> Self {
        self.sections.push(text.into());
        self
    }

    /// Appends `[retry]` with these retries and backoffs.
    pub fn retry(self, max_retries: u32, initial_backoff_ms: u64, max_backoff_ms: u64) -> Self {
        self.section(format!(
            "[retry]\nmax_retries = {max_retries}\ninitial_backoff_ms = {initial_backoff_ms}\n\
             max_backoff_ms = {max_backoff_ms}"
        ))
    }

    /// Appends `[statsd]`, sending to `127.0.0.1:<port>`.
    pub fn statsd(self, port: u16) -> Self {
        self.section(format!(
            "[statsd]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}"
        ))
    }

    /// The address `[health] listen` names.
    pub fn health(&self) -> SocketAddr {
        self.health
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let mut text = format!(
            "[kafka]\nbrokers = \"{}\"\nauto_offset_reset = \"earliest\"\n\
             auto_commit_interval_ms = 100\ndrain_timeout_ms = 5000\n",
            self.brokers
        );
        for line in &self.kafka {
            text.push_str(&format!("{line}\n"));
        }
        text.push_str("[kafka.properties]\n");
        for (key, value) in &self.properties {
            text.push_str(&format!("{key:?} = {value:?}\n"));
        }
        text.push_str(&format!(
            "[case_api]\nendpoint = \"{}\"\ntimeout_ms = {}\n",
            self.endpoint, self.timeout_ms
        ));
        for line in &self.case_api {
            text.push_str(&format!("{line}\n"));
        }
        for section in &self.sections {
            text.push_str(section.trim_end());
            text.push('\n');
        }
        text.push_str(&format!("[health]\nlisten = \"{}\"\n", self.health));
        text
    }

    /// Writes the config to `<dir>/<name>.toml`; returns its path.
    pub fn write(&self, name: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, self.render()).unwrap();
        path
    }

    /// Writes the config to `<dir>/<name>.toml` and spawns `jira-reader run` on it, logging to
    /// `<dir>/<name>.log`; returns the reader and its health address.
    pub fn spawn(&self, name: &str) -> (ReaderProcess, SocketAddr) {
        self.spawn_with_env(name, &[])
    }

    /// [`ReaderConfig::spawn`], with extra environment variables.
    pub fn spawn_with_env(&self, name: &str, env: &[(&str, &str)]) -> (ReaderProcess, SocketAddr) {
        let config = self.write(name);
        let reader = ReaderProcess::spawn_with_env(
            BINARY.as_ref(),
            &config,
            &[],
            env,
            self.health,
            &self.dir.join(format!("{name}.log")),
        )
        .unwrap();
        (reader, self.health)
    }

    /// [`ReaderConfig::spawn`], then waits up to 30 s for `/ready`.
    pub async fn spawn_ready(&self, name: &str) -> (ReaderProcess, SocketAddr) {
        let (mut reader, health) = self.spawn(name);
        reader.wait_ready(Duration::from_secs(30)).await.unwrap();
        (reader, health)
    }
}
