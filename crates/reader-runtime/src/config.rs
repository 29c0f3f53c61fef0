//! The reader's configuration: a TOML file plus `CTPR_`-prefixed environment overrides, with
//! unknown fields rejected and every error naming the field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use thirdparty_core::{SkipEntry, SkipList};
use thiserror::Error;

pub use crate::kafka_security::{KafkaSecurityConfig, SaslMechanism, SecurityProtocol};

/// Prefix of environment overrides: `CTPR_KAFKA__BROKERS=host:9092` sets `kafka.brokers`.
pub const ENV_PREFIX: &str = "CTPR_";

/// What a revoke's drain leaves of health's poll-stall bound ([`crate::health::POLL_STALL`]) for
/// the rest of the poll thread's turn: the poll wait before the rebalance callback and the
/// synchronous offset commit after the drain.
pub const DRAIN_HEADROOM: Duration = Duration::from_secs(5);

const MILLISECOND: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const TEN_MINUTES: Duration = Duration::from_secs(600);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

/// Durations the file writes as whole numbers of the unit its key names (`timeout_ms = 2000`,
/// `cache_ttl_s = 300`), read into [`Duration`]s so the code never converts units.
pub(crate) mod duration_as {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// `*_ms` keys.
    pub(crate) mod millis {
        use super::*;

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            u64::deserialize(d).map(Duration::from_millis)
        }
    }

    /// `*_s` keys.
    pub(crate) mod secs {
        use super::*;

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            u64::deserialize(d).map(Duration::from_secs)
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not match the schema (unknown or mistyped field).
    #[error("invalid config: {0}")]
    Parse(String),
    /// An environment override is malformed.
    #[error("invalid environment override `{name}`: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Why.
        reason: String,
    },
    /// A field has a value that cannot work.
    #[error("invalid config field `{field}`: {reason}")]
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// Why.
        reason: String,
    },
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The whole configuration of one flavor's reader; `I` is the flavor's own `[integration]`
/// section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config<I> {
    /// Kafka consumer settings.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// The Case Management API.
    #[serde(default)]
    pub case_api: CaseApiConfig,
    /// Pipeline behaviour (dry run, caches, conflict retries).
    #[serde(default)]
    pub pipeline: PipelineSection,
    /// Backoff for retryable errors; after the last try the process exits non-zero.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Health, readiness and Prometheus metrics endpoint.
    #[serde(default)]
    pub health: HealthConfig,
    /// DogStatsD export.
    #[serde(default)]
    pub statsd: StatsdConfig,
    /// Operator skip list: messages to acknowledge without handling.
    #[serde(default)]
    pub skip: SkipConfig,
    /// Decision records: the Kafka topic they also go to.
    #[serde(default)]
    pub decisions: crate::decisions::DecisionsConfig,
    /// Traces over OTLP/gRPC (off unless an endpoint is set).
    #[serde(default)]
    pub tracing: TracingConfig,
    /// The flavor's own settings.
    #[serde(default)]
    pub integration: I,
}

/// Kafka consumer settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers (`host:port,host:port`).
    pub brokers: String,
    /// The topic to consume; empty means the flavor's default topic.
    pub topic: String,
    /// Consumer group.
    pub group_id: String,
    /// Where a group without committed offsets starts: `latest` or `earliest`.
    pub auto_offset_reset: OffsetReset,
    /// Interval of the automatic commit of stored offsets (`auto_commit_interval_ms`, in
    /// milliseconds).
    #[serde(rename = "auto_commit_interval_ms", with = "duration_as::millis")]
    pub auto_commit_interval: Duration,
    /// Longest wait for a partition's in-flight event when partitions are revoked or the reader
    /// shuts down (`drain_timeout_ms`, in milliseconds). Below 25000 and below
    /// `health.stall_timeout_s`: a revoke drains on the poll thread, and `/live` fails when that
    /// thread has not polled for 30 s.
    #[serde(rename = "drain_timeout_ms", with = "duration_as::millis")]
    pub drain_timeout: Duration,
    /// Messages of one partition in handling at once, at most: those of different items (org,
    /// integration, site, item id) are handled concurrently, those of one item in order (1: one
    /// message at a time, in offset order). Up to four times as many (at most 256, at least this
    /// many) are between receipt and their stored offset, so one slow message does not stop the
    /// others. 1 to 1024.
    pub max_in_flight: usize,
    /// Extra librdkafka properties, applied before the safety-critical ones (which win); no
    /// security key (`security.protocol`, `ssl.*`, `sasl.*`): those belong to `[kafka.security]`.
    pub properties: BTreeMap<String, String>,
    /// TLS and SASL towards the brokers.
    pub security: KafkaSecurityConfig,
}

/// Where a consumer group without committed offsets starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    /// At the end: only messages produced from now on.
    Latest,
    /// At the start of what the topic retains.
    Earliest,
}

impl OffsetReset {
    /// librdkafka's value for `auto.offset.reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Earliest => "earliest",
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: String::new(),
            group_id: "case-management".into(),
            auto_offset_reset: OffsetReset::Latest,
            auto_commit_interval: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            max_in_flight: 64,
            properties: BTreeMap::new(),
            security: KafkaSecurityConfig::default(),
        }
    }
}

/// The Case Management API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseApiConfig {
    /// Endpoint URL: `https://`, or `http://` (plaintext, only without `tls_ca_file` and
    /// `token_file`).
    pub endpoint: String,
    /// Per-call deadline (`timeout_ms`, in milliseconds).
    #[serde(rename = "timeout_ms", with = "duration_as::millis")]
    pub timeout: Duration,
    /// Connect timeout (`connect_timeout_ms`, in milliseconds).
    #[serde(rename = "connect_timeout_ms", with = "duration_as::millis")]
    pub connect_timeout: Duration,
    /// PEM file of the CA that signs the server's certificate (needs an `https://` endpoint).
    pub tls_ca_file: Option<PathBuf>,
    /// Server name to verify in the certificate (defaults to the endpoint's host).
    pub tls_domain: Option<String>,
    /// File holding the bearer token sent with every call (needs an `https://` endpoint).
    pub token_file: Option<PathBuf>,
}

impl Default for CaseApiConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50051".into(),
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            tls_ca_file: None,
            tls_domain: None,
            token_file: None,
        }
    }
}

/// Pipeline behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Decide and log, never write.
    pub dry_run: bool,
    /// Freshness of cached settings and sync metadata (`cache_ttl_s`, in seconds).
    #[serde(rename = "cache_ttl_s", with = "duration_as::secs")]
    pub cache_ttl: Duration,
    /// Freshness of a cached "no settings for the project" or "no sync metadata for the
    /// organization" answer (`negative_cache_ttl_s`, in seconds, 1 to `cache_ttl_s`): how long
    /// a newly configured project may still be ignored. SIGHUP clears both caches at once.
    #[serde(rename = "negative_cache_ttl_s", with = "duration_as::secs")]
    pub negative_cache_ttl: Duration,
    /// Entries per cache.
    pub cache_capacity: usize,
    /// Re-reads of a case after a version conflict before giving up on the changelog.
    pub max_conflict_retries: u32,
    /// Organizations whose sync metadata is loaded into the cache at start, before `/ready`
    /// (`docs/design.md`, "Delivery"); never more than `cache_capacity`. 0 turns warming off.
    pub warm_max_orgs: usize,
    /// How long warming may hold `/ready` back (`warm_timeout_s`, in seconds, 1 to 600); then
    /// the rest of the cache starts cold.
    #[serde(rename = "warm_timeout_s", with = "duration_as::secs")]
    pub warm_timeout: Duration,
}

impl Default for PipelineSection {
    fn default() -> Self {
        Self {
            dry_run: false,
            cache_ttl: Duration::from_secs(300),
            negative_cache_ttl: Duration::from_secs(30),
            cache_capacity: 10_000,
            max_conflict_retries: 3,
            warm_max_orgs: thirdparty_core::warm::DEFAULT_WARM_MAX_ORGS,
            warm_timeout: thirdparty_core::warm::DEFAULT_WARM_TIMEOUT,
        }
    }
}

/// Exponential backoff with jitter for retryable errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Tries after the first before the process exits non-zero.
    pub max_retries: u32,
    /// First backoff (`initial_backoff_ms`, in milliseconds).
    #[serde(rename = "initial_backoff_ms", with = "duration_as::millis")]
    pub initial_backoff: Duration,
    /// Longest backoff (`max_backoff_ms`, in milliseconds).
    #[serde(rename = "max_backoff_ms", with = "duration_as::millis")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Health, readiness and Prometheus metrics endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Address of `/live`, `/ready` and `/metrics`.
    pub listen: SocketAddr,
    /// `/live` fails when one event has been in handling longer than this (`stall_timeout_s`,
    /// in seconds).
    #[serde(rename = "stall_timeout_s", with = "duration_as::secs")]
    pub stall_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            stall_timeout: Duration::from_secs(300),
        }
    }
}

/// DogStatsD export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsdConfig {
    /// Send metrics to the agent (off: Prometheus only).
    pub enabled: bool,
    /// Agent host.
    pub host: String,
    /// Agent port.
    pub port: u16,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 8125,
        }
    }
}

/// Traces over OTLP/gRPC: the pipeline's spans (`docs/design.md`, "Traces"), exported in batches
/// to an agent or collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// OTLP/gRPC endpoint of the agent or collector (`http://127.0.0.1:4317`); empty: no traces
    /// are exported and no trace context is sent to the Case API (the default).
    pub otlp_endpoint: String,
    /// The spans' `service.name`.
    pub service_name: String,
    /// Share of traces kept, 0.0 to 1.0; parent-based: a span follows its parent's decision.
    pub sample_ratio: f64,
    /// Deadline of one export call, and of the flush at shutdown (`export_timeout_ms`, in
    /// milliseconds).
    #[serde(rename = "export_timeout_ms", with = "duration_as::millis")]
    pub export_timeout: Duration,
}

impl TracingConfig {
    /// Whether traces are exported (an endpoint is set).
    pub fn enabled(&self) -> bool {
        !self.otlp_endpoint.trim().is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled() {
            let endpoint = self.otlp_endpoint.trim();
            let Some(authority) = endpoint.strip_prefix("http://") else {
                return Err(invalid(
                    "tracing.otlp_endpoint",
                    "must start with http:// (OTLP/gRPC in plaintext, to a node-local agent or \
                     collector) or be empty (no traces)",
                ));
            };
            if authority.trim_end_matches('/').is_empty() {
                return Err(invalid("tracing.otlp_endpoint", "names no host"));
            }
        }
        if self.service_name.trim().is_empty() {
            return Err(invalid("tracing.service_name", "must not be empty"));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(invalid(
                "tracing.sample_ratio",
                "must be between 0.0 and 1.0",
            ));
        }
        if !(MILLISECOND..=MINUTE).contains(&self.export_timeout) {
            return Err(invalid(
                "tracing.export_timeout_ms",
                "must be between 1 and 60000 (a minute)",
            ));
        }
        Ok(())
    }
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "case-third-party-reader".into(),
            sample_ratio: 1.0,
            export_timeout: Duration::from_secs(5),
        }
    }
}

/// Operator skip list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SkipConfig {
    /// `topic:partition:offset` (or `partition:offset`) of messages to acknowledge unhandled.
    /// Reloaded from the file on change or SIGHUP, without a restart.
    pub messages: Vec<String>,
}

impl SkipConfig {
    /// The parsed entries.
    pub fn entries(&self) -> Result<Vec<SkipEntry>, ConfigError> {
        SkipList::parse_entries(self.messages.iter().map(String::as_str))
            .map_err(|e| invalid("skip.messages", e.to_string()))
    }
}

impl<I: DeserializeOwned + Default> Config<I> {
    /// Loads a file (or the defaults when `path` is `None`), applies environment overrides from
    /// `env`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_toml(&text, env)
    }

    /// Parses TOML text, applies overrides, validates.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            apply_override(&mut doc, &name, path, &value)?;
        }
        let config: Self = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }
}

impl<I> Config<I> {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let k = &self.kafka;
        if k.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must not be empty"));
        }
        if k.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", "must not be empty"));
        }
        if !(1..=1024).contains(&k.max_in_flight) {
            return Err(invalid("kafka.max_in_flight", "must be between 1 and 1024"));
        }
        if k.auto_commit_interval.is_zero() {
            return Err(invalid("kafka.auto_commit_interval_ms", "must be positive"));
        }
        for key in k.properties.keys() {
            if crate::kafka::SAFETY_KEYS.contains(&key.as_str()) {
                return Err(invalid(
                    &format!("kafka.properties.{key}"),
                    "is set by the reader for at-least-once delivery and cannot be overridden",
                ));
            }
            if crate::kafka_security::is_security_key(key) {
                return Err(invalid(
                    &format!("kafka.properties.{key}"),
                    "is a security setting: use [kafka.security], which the pass-through cannot \
                     weaken",
                ));
            }
        }
        k.security.validate()?;
        let endpoint = &self.case_api.endpoint;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(invalid(
                "case_api.endpoint",
                "must start with http:// or https://",
            ));
        }
        if endpoint.starts_with("http://") {
            // tonic would send the token in clear, and never use the CA nor the name.
            for (field, set) in [
                ("case_api.tls_ca_file", self.case_api.tls_ca_file.is_some()),
                ("case_api.tls_domain", self.case_api.tls_domain.is_some()),
                ("case_api.token_file", self.case_api.token_file.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        field,
                        "needs an https:// case_api.endpoint (http:// is plaintext: no TLS, \
                         and a bearer token would travel in clear)",
                    ));
                }
            }
        }
        if self.case_api.timeout.is_zero() {
            return Err(invalid("case_api.timeout_ms", "must be positive"));
        }
        if !(SECOND..=DAY).contains(&self.pipeline.cache_ttl) {
            return Err(invalid(
                "pipeline.cache_ttl_s",
                "must be between 1 and 86400 (a day)",
            ));
        }
        if !(SECOND..=self.pipeline.cache_ttl).contains(&self.pipeline.negative_cache_ttl) {
            return Err(invalid(
                "pipeline.negative_cache_ttl_s",
                "must be between 1 and pipeline.cache_ttl_s",
            ));
        }
        if !(SECOND..=TEN_MINUTES).contains(&self.pipeline.warm_timeout) {
            return Err(invalid(
                "pipeline.warm_timeout_s",
                "must be between 1 and 600 (10 minutes)",
            ));
        }
        if !(MILLISECOND..=TEN_MINUTES).contains(&k.drain_timeout) {
            return Err(invalid(
                "kafka.drain_timeout_ms",
                "must be between 1 and 600000 (10 minutes)",
            ));
        }
        if k.auto_commit_interval > HOUR {
            return Err(invalid(
                "kafka.auto_commit_interval_ms",
                "must be at most 3600000 (an hour)",
            ));
        }
        if self.case_api.timeout > TEN_MINUTES || self.case_api.connect_timeout > TEN_MINUTES {
            return Err(invalid(
                "case_api.timeout_ms",
                "timeouts must be at most 600000 (10 minutes)",
            ));
        }
        if self.retry.max_backoff > HOUR {
            return Err(invalid(
                "retry.max_backoff_ms",
                "must be at most 3600000 (an hour)",
            ));
        }
        if !(SECOND..=DAY).contains(&self.health.stall_timeout) {
            return Err(invalid(
                "health.stall_timeout_s",
                "must be between 1 and 86400 (a day)",
            ));
        }
        // A revoke drains on the poll thread: a drain that may outlast health's poll-stall bound
        // fails `/live` (and the pod is restarted mid-drain).
        let poll_bound = crate::health::POLL_STALL.saturating_sub(DRAIN_HEADROOM);
        if k.drain_timeout >= poll_bound {
            return Err(invalid(
                "kafka.drain_timeout_ms",
                format!(
                    "must be below {} ms: a revoke drains on the poll thread, and /live fails \
                     when it has not polled for {} s",
                    poll_bound.as_millis(),
                    crate::health::POLL_STALL.as_secs()
                ),
            ));
        }
        // Waiting longer for an in-flight event than /live lets one event run is waiting on a
        // reader the probe already calls dead.
        if k.drain_timeout >= self.health.stall_timeout {
            return Err(invalid(
                "kafka.drain_timeout_ms",
                "must be below health.stall_timeout_s (/live fails when one event is handled \
                 longer than that)",
            ));
        }
        if self.retry.initial_backoff.is_zero()
            || self.retry.initial_backoff > self.retry.max_backoff
        {
            return Err(invalid(
                "retry.initial_backoff_ms",
                "must be positive and at most retry.max_backoff_ms",
            ));
        }
        self.skip.entries()?;
        self.decisions.validate()?;
        self.tracing.validate()?;
        Ok(())
    }
}

/// Sets `a.b.c` (from `CTPR_A__B__C`, lower-cased) in the document. The value is read as a TOML
/// value when it parses as one (numbers, booleans, arrays), else as a string.
fn apply_override(
    doc: &mut toml::Table,
    name: &str,
    path: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if keys.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            name: name.to_owned(),
            reason: "empty path segment".into(),
        });
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, parents) = keys.split_last().ok_or_else(|| ConfigError::Env {
        name: name.to_owned(),
        reason: "no field named".into(),
    })?;
    let mut table = doc;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            name: name.to_owned(),
            reason: format!("`{key}` is not a table"),
        })?;
    }
    table.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Flavor {
        own_ids: Vec<String>,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c: Config<Flavor> = Config::from_toml("", env(&[])).unwrap();
        assert_eq!(c.kafka.group_id, "case-management");
        assert_eq!(c.kafka.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.kafka.auto_commit_interval, Duration::from_secs(5));
        assert_eq!(c.health.listen.port(), 8080);
        assert_eq!(c.pipeline.cache_ttl, Duration::from_secs(300));
        assert_eq!(c.pipeline.negative_cache_ttl, Duration::from_secs(30));
    }

    #[test]
    fn the_negative_cache_ttl_is_set_by_file_or_environment_and_bounded_by_the_ttl() {
        let c: Config<Flavor> =
            Config::from_toml("[pipeline]\nnegative_cache_ttl_s = 10", env(&[])).unwrap();
        assert_eq!(c.pipeline.negative_cache_ttl, Duration::from_secs(10));
        let c: Config<Flavor> =
            Config::from_toml("", env(&[("CTPR_PIPELINE__NEGATIVE_CACHE_TTL_S", "5")])).unwrap();
        assert_eq!(c.pipeline.negative_cache_ttl, Duration::from_secs(5));
        let c: Config<Flavor> = Config::from_toml(
            "[pipeline]\ncache_ttl_s = 60\nnegative_cache_ttl_s = 60",
            env(&[]),
        )
        .unwrap();
        assert_eq!(c.pipeline.negative_cache_ttl, Duration::from_secs(60));
        for text in [
            "[pipeline]\nnegative_cache_ttl_s = 0",
            "[pipeline]\ncache_ttl_s = 20",
            "[pipeline]\ncache_ttl_s = 60\nnegative_cache_ttl_s = 61",
        ] {
            let err = Config::<Flavor>::from_toml(text, env(&[])).unwrap_err();
            assert!(
                err.to_string().contains("pipeline.negative_cache_ttl_s"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn warming_is_bounded_by_organizations_and_time() {
        let c: Config<Flavor> = Config::from_toml("", env(&[])).unwrap();
        assert_eq!(c.pipeline.warm_max_orgs, 10_000);
        assert_eq!(c.pipeline.warm_timeout, Duration::from_secs(30));
        let c: Config<Flavor> = Config::from_toml(
            "[pipeline]\nwarm_max_orgs = 0\nwarm_timeout_s = 5",
            env(&[("CTPR_PIPELINE__WARM_TIMEOUT_S", "7")]),
        )
        .unwrap();
        assert_eq!(c.pipeline.warm_max_orgs, 0, "0: off");
        assert_eq!(c.pipeline.warm_timeout, Duration::from_secs(7));
        for text in [
            "[pipeline]\nwarm_timeout_s = 0",
            "[pipeline]\nwarm_timeout_s = 601",
        ] {
            let err = Config::<Flavor>::from_toml(text, env(&[])).unwrap_err();
            assert!(
                err.to_string().contains("pipeline.warm_timeout_s"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn tls_settings_and_a_token_need_an_https_endpoint() {
        for (field, value) in [
            ("tls_ca_file", "\"/etc/ca.pem\""),
            ("tls_domain", "\"cases.internal\""),
            ("token_file", "\"/var/run/token\""),
        ] {
            let text = format!("[case_api]\nendpoint = \"http://cases:50051\"\n{field} = {value}");
            let err = Config::<Flavor>::from_toml(&text, env(&[])).unwrap_err();
            assert!(
                err.to_string().contains(&format!("case_api.{field}")),
                "{err}"
            );
            assert!(err.to_string().contains("https://"), "{err}");
            let https = text.replace("http://", "https://");
            Config::<Flavor>::from_toml(&https, env(&[])).unwrap();
        }
        // The same refusal when the endpoint comes from the environment.
        let err = Config::<Flavor>::from_toml(
            "[case_api]\nendpoint = \"https://cases:443\"\ntoken_file = \"/var/run/token\"",
            env(&[("CTPR_CASE_API__ENDPOINT", "http://cases:50051")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("case_api.token_file"), "{err}");
        Config::<Flavor>::from_toml("[case_api]\nendpoint = \"http://cases:50051\"", env(&[]))
            .unwrap();
    }

    #[test]
    fn kafka_security_comes_from_the_file_or_the_environment_never_the_pass_through() {
        let dir = std::env::temp_dir().join(format!("ctpr-config-security-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let password = dir.join("password");
        std::fs::write(&password, "s3cret-kafka-password\n").unwrap();
        let password_path = password.display().to_string();
        let c: Config<Flavor> = Config::from_toml(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\n",
            env(&[
                ("CTPR_KAFKA__SECURITY__MECHANISM", "scram-sha-256"),
                ("CTPR_KAFKA__SECURITY__USERNAME", "reader"),
                ("CTPR_KAFKA__SECURITY__PASSWORD_FILE", &password_path),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.security.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.kafka.security.mechanism, Some(SaslMechanism::ScramSha256));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the config holds file paths, not secrets"
        );
        let err = Config::<Flavor>::from_toml(
            "[kafka.properties]\n\"sasl.password\" = \"x\"\n",
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka.properties.sasl.password"), "{err}");
        assert!(err.contains("[kafka.security]"), "{err}");
        let err = Config::<Flavor>::from_toml(
            "[kafka.security]\nprotocol = \"ssl\"\nca_file = \"/nonexistent/ca.pem\"\n",
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka.security.ca_file") && err.contains("/nonexistent/ca.pem"));
        let err = Config::<Flavor>::from_toml("[kafka.security]\npassword = \"x\"\n", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `password`"), "{err}");
    }

    #[test]
    fn a_drain_must_end_before_liveness_gives_up() {
        // The poll-stall bound (30 s) less the headroom: 25 s.
        let drain = |ms: u64, stall_s: u64| {
            Config::<Flavor>::from_toml(
                &format!("[kafka]\ndrain_timeout_ms = {ms}\n[health]\nstall_timeout_s = {stall_s}"),
                env(&[]),
            )
        };
        drain(24_999, 300).unwrap();
        for ms in [25_000, 30_000, 60_000, 600_000] {
            let err = drain(ms, 300).unwrap_err().to_string();
            assert!(err.contains("kafka.drain_timeout_ms"), "{err}");
            assert!(err.contains("25000") && err.contains("/live"), "{err}");
        }
        drain(9_999, 10).unwrap();
        let err = drain(10_000, 10).unwrap_err().to_string();
        assert!(
            err.contains("kafka.drain_timeout_ms") && err.contains("health.stall_timeout_s"),
            "{err}"
        );
        let err =
            Config::<Flavor>::from_toml("", env(&[("CTPR_KAFKA__DRAIN_TIMEOUT_MS", "40000")]))
                .unwrap_err();
        assert!(err.to_string().contains("kafka.drain_timeout_ms"), "{err}");
    }

    #[test]
    fn file_values_and_environment_overrides() {
        let text = r#"
            [kafka]
            brokers = "10.0.0.1:9092"
            [kafka.properties]
            "fetch.min.bytes" = "10"
            [integration]
            own_ids = ["a"]
            [skip]
            messages = ["t:0:1"]
        "#;
        let c: Config<Flavor> = Config::from_toml(
            text,
            env(&[
                ("CTPR_KAFKA__BROKERS", "127.0.0.1:1"),
                ("CTPR_PIPELINE__DRY_RUN", "true"),
                ("CTPR_INTEGRATION__OWN_IDS", r#"["x", "y"]"#),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.brokers, "127.0.0.1:1");
        assert_eq!(c.kafka.properties["fetch.min.bytes"], "10");
        assert!(c.pipeline.dry_run);
        assert_eq!(c.integration.own_ids, ["x", "y"]);
        assert_eq!(c.skip.entries().unwrap().len(), 1);
    }

    #[test]
    fn tracing_is_off_by_default_and_set_by_file_or_environment() {
        let c: Config<Flavor> = Config::from_toml("", env(&[])).unwrap();
        assert!(!c.tracing.enabled());
        assert_eq!(c.tracing.service_name, "case-third-party-reader");
        assert_eq!(c.tracing.sample_ratio, 1.0);
        assert_eq!(c.tracing.export_timeout, Duration::from_secs(5));
        let c: Config<Flavor> = Config::from_toml(
            "[tracing]\notlp_endpoint = \"http://127.0.0.1:4317\"\nsample_ratio = 0.25\n\
             export_timeout_ms = 2000",
            env(&[]),
        )
        .unwrap();
        assert!(c.tracing.enabled());
        assert_eq!(c.tracing.sample_ratio, 0.25);
        assert_eq!(c.tracing.export_timeout, Duration::from_secs(2));
        let c: Config<Flavor> = Config::from_toml(
            "",
            env(&[
                ("CTPR_TRACING__OTLP_ENDPOINT", "http://datadog-agent:4317"),
                ("CTPR_TRACING__SAMPLE_RATIO", "0"),
                ("CTPR_TRACING__SERVICE_NAME", "jira-reader"),
            ]),
        )
        .unwrap();
        assert_eq!(c.tracing.otlp_endpoint, "http://datadog-agent:4317");
        assert_eq!(c.tracing.sample_ratio, 0.0);
        assert_eq!(c.tracing.service_name, "jira-reader");
        for (text, field) in [
            (
                "otlp_endpoint = \"127.0.0.1:4317\"",
                "tracing.otlp_endpoint",
            ),
            (
                "otlp_endpoint = \"https://collector:4317\"",
                "tracing.otlp_endpoint",
            ),
            ("otlp_endpoint = \"http://\"", "tracing.otlp_endpoint"),
            ("service_name = \" \"", "tracing.service_name"),
            ("sample_ratio = 1.5", "tracing.sample_ratio"),
            ("sample_ratio = -0.1", "tracing.sample_ratio"),
            ("sample_ratio = nan", "tracing.sample_ratio"),
            ("export_timeout_ms = 0", "tracing.export_timeout_ms"),
            ("export_timeout_ms = 60001", "tracing.export_timeout_ms"),
        ] {
            let err = Config::<Flavor>::from_toml(&format!("[tracing]\n{text}"), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        let err = Config::<Flavor>::from_toml("[tracing]\nendpoint = \"x\"", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `endpoint`"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        let err = Config::<Flavor>::from_toml("[kafka]\nbrokerz = 1", env(&[])).unwrap_err();
        assert!(err.to_string().contains("brokerz"), "{err}");
        let err = Config::<Flavor>::from_toml("[kafka]\nauto_offset_reset = \"middle\"", env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("kafka.auto_offset_reset"), "{err}");
        let err = Config::<Flavor>::from_toml(
            "[kafka.properties]\n\"enable.auto.offset.store\" = \"true\"",
            env(&[]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("enable.auto.offset.store"),
            "{err}"
        );
        let err =
            Config::<Flavor>::from_toml("[skip]\nmessages = [\"nope\"]", env(&[])).unwrap_err();
        assert!(err.to_string().contains("skip.messages"), "{err}");
        let err = Config::<Flavor>::from_toml("", env(&[("CTPR_CASE_API__ENDPOINT", "ftp://x")]))
            .unwrap_err();
        assert!(err.to_string().contains("case_api.endpoint"), "{err}");
        let err = Config::<Flavor>::from_toml("[pipeline]\ncache_ttl_s = 1000000000000", env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("pipeline.cache_ttl_s"), "{err}");
        let err = Config::<Flavor>::from_toml(
            &format!("[kafka]\ndrain_timeout_ms = {}", i64::MAX),
            env(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("kafka.drain_timeout_ms"), "{err}");
        let err =
            Config::<Flavor>::from_toml("[pipeline]\ndry_run = \"yes\"", env(&[])).unwrap_err();
        assert!(err.to_string().contains("dry_run"), "{err}");
    }
}
