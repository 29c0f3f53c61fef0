//! Consumer lag per assigned partition, as two gauges (`docs/design.md`, "Consumer lag"):
//!
//! - [`CONSUMER_LAG`]: messages between the partition's high watermark and the offset the
//!   reader stored last (handled, not yet or already committed), from librdkafka's statistics
//!   (`consumer_lag_stored`, else `consumer_lag` before anything is stored);
//! - [`CONSUMER_LAG_SECONDS`]: the age of the oldest message of the partition not yet handled,
//!   by its Kafka timestamp (the partition task tells it as messages are received and
//!   handled), 0 when the partition waits for new ones.
//!
//! Both are set on each statistics report (`statistics.interval.ms`, 5 s unless the
//! pass-through sets another), on librdkafka's poll thread; a revoked partition's gauges drop to
//! 0, so the reader that takes it over is the one that reports it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::gauge;
use serde::Deserialize;
use thirdparty_core::telemetry::{CONSUMER_LAG, CONSUMER_LAG_SECONDS};

/// How often librdkafka reports statistics by default, in milliseconds.
pub const STATISTICS_INTERVAL_MS: u32 = 5_000;

/// What the gauges are made of, per assigned partition.
#[derive(Debug)]
pub struct Lag {
    flavor: String,
    partitions: Mutex<HashMap<(String, i32), Partition>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Partition {
    /// Kafka timestamp (ms since the epoch) of the oldest message not yet handled.
    oldest_unhandled: Option<i64>,
}

/// The parts of librdkafka's statistics JSON the lag is read from.
#[derive(Debug, Deserialize)]
struct Statistics {
    #[serde(default)]
    topics: HashMap<String, TopicStatistics>,
}

#[derive(Debug, Deserialize)]
struct TopicStatistics {
    #[serde(default)]
    partitions: HashMap<String, PartitionStatistics>,
}

#[derive(Debug, Deserialize)]
struct PartitionStatistics {
    partition: i32,
    #[serde(default = "unknown")]
    consumer_lag: i64,
    #[serde(default = "unknown")]
    consumer_lag_stored: i64,
}

fn unknown() -> i64 {
    -1
}

impl Lag {
    /// No partition assigned yet.
    pub fn new(flavor: impl Into<String>) -> Self {
        Self {
            flavor: flavor.into(),
            partitions: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<(String, i32), Partition>) -> R) -> R {
        let mut partitions = self
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut partitions)
    }

    /// The partition was assigned to this reader.
    pub fn assigned(&self, topic: &str, partition: i32) {
        self.with(|p| {
            p.entry((topic.to_owned(), partition)).or_default();
        });
    }

    /// The partition was revoked: its gauges drop to 0 and are no longer set.
    pub fn revoked(&self, topic: &str, partition: i32) {
        self.with(|p| {
            p.remove(&(topic.to_owned(), partition));
        });
        self.set(topic, partition, 0.0, 0.0);
    }

    /// The oldest message of the partition not yet handled is stamped `timestamp_ms` (none: all
    /// handled, or its timestamp is unknown).
    pub fn oldest_unhandled(&self, topic: &str, partition: i32, timestamp_ms: Option<i64>) {
        self.with(|p| {
            if let Some(entry) = p.get_mut(&(topic.to_owned(), partition)) {
                entry.oldest_unhandled = timestamp_ms;
            }
        });
    }

    /// Sets both gauges of every assigned partition from one statistics report (librdkafka's
    /// JSON); a report that does not parse sets nothing.
    pub fn report(&self, statistics_json: &[u8]) {
        let statistics: Statistics = match serde_json::from_slice(statistics_json) {
            Ok(statistics) => statistics,
            Err(err) => {
                tracing::debug!(error = %err, "kafka statistics unreadable; lag not reported");
                return;
            }
        };
        let now_ms = now_ms();
        let assigned = self.with(|p| p.clone());
        for ((topic, partition), state) in assigned {
            let messages = statistics
                .topics
                .get(&topic)
                .and_then(|t| t.partitions.values().find(|s| s.partition == partition))
                .and_then(|s| {
                    [s.consumer_lag_stored, s.consumer_lag]
                        .into_iter()
                        .find(|lag| *lag >= 0)
                });
            let seconds = age_seconds(state.oldest_unhandled, now_ms);
            match messages {
                Some(messages) => self.set(&topic, partition, messages as f64, seconds),
                None => self.set_seconds(&topic, partition, seconds),
            }
        }
    }

    fn set(&self, topic: &str, partition: i32, messages: f64, seconds: f64) {
        gauge!(CONSUMER_LAG,
            "flavor" => self.flavor.clone(),
            "topic" => topic.to_owned(),
            "partition" => partition.to_string())
        .set(messages);
        self.set_seconds(topic, partition, seconds);
    }

    fn set_seconds(&self, topic: &str, partition: i32, seconds: f64) {
        gauge!(CONSUMER_LAG_SECONDS,
            "flavor" => self.flavor.clone(),
            "topic" => topic.to_owned(),
            "partition" => partition.to_string())
        .set(seconds);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds from the message's timestamp to now; 0 with no message in handling, and never
/// negative (a producer's clock ahead of ours).
fn age_seconds(timestamp_ms: Option<i64>, now_ms: i64) -> f64 {
    match timestamp_ms {
        Some(ts) => (now_ms.saturating_sub(ts)).max(0) as f64 / 1_000.0,
        None => 0.0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    fn gauges(snapshotter: &metrics_util::debugging::Snapshotter) -> Vec<(String, String, f64)> {
        let mut out: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Gauge(v) => {
                    let partition = key
                        .key()
                        .labels()
                        .find(|l| l.key() == "partition")
                        .map(|l| l.value().to_owned())
                        .unwrap_or_default();
                    Some((key.key().name().to_owned(), partition, v.into_inner()))
                }
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        out
    }

    /// A statistics report as librdkafka writes it (trimmed): partition -1 is its internal
    /// "unassigned" partition, and a partition with nothing stored yet has
    /// `consumer_lag_stored` -1.
    const STATISTICS: &str = r#"{
        "name": "rdkafka#consumer-1", "type": "consumer", "ts": 1,
        "brokers": {},
        "topics": {"jira-events": {"topic": "jira-events", "partitions": {
            "0": {"partition": 0, "hi_offset": 120, "stored_offset": 20, "committed_offset": 10,
                  "consumer_lag": 110, "consumer_lag_stored": 100},
            "1": {"partition": 1, "hi_offset": 7, "stored_offset": -1001, "committed_offset": 3,
                  "consumer_lag": 4, "consumer_lag_stored": -1},
            "-1": {"partition": -1, "consumer_lag": -1, "consumer_lag_stored": -1}
        }}}
    }"#;

    #[test]
    fn gauges_per_assigned_partition_from_statistics_and_the_message_in_handling() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let lag = Lag::new("jira");
            lag.assigned("jira-events", 0);
            lag.assigned("jira-events", 1);
            lag.oldest_unhandled("jira-events", 0, Some(now_ms() - 90_000));
            lag.report(STATISTICS.as_bytes());
        });
        let got = gauges(&snapshotter);
        assert_eq!(got[0], (CONSUMER_LAG.into(), "0".into(), 100.0));
        assert_eq!(got[1], (CONSUMER_LAG.into(), "1".into(), 4.0));
        assert_eq!(got[2].1, "0");
        assert!((89.0..120.0).contains(&got[2].2), "{got:?}");
        assert_eq!(got[3], (CONSUMER_LAG_SECONDS.into(), "1".into(), 0.0));
        assert_eq!(got.len(), 4, "{got:?}");
    }

    #[test]
    fn a_handled_or_revoked_partition_reports_zero_and_bad_statistics_set_nothing() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let lag = Lag::new("jira");
            lag.report(b"{not json");
            lag.assigned("jira-events", 0);
            lag.oldest_unhandled("jira-events", 0, Some(now_ms() - 5_000));
            lag.oldest_unhandled("jira-events", 0, None);
            lag.report(STATISTICS.as_bytes());
            lag.revoked("jira-events", 0);
            lag.report(STATISTICS.as_bytes());
        });
        assert_eq!(
            gauges(&snapshotter),
            vec![
                (CONSUMER_LAG.into(), "0".into(), 0.0),
                (CONSUMER_LAG_SECONDS.into(), "0".into(), 0.0),
            ]
        );
    }

    #[test]
    fn age_is_never_negative() {
        assert_eq!(age_seconds(Some(2_000), 1_000), 0.0);
        assert_eq!(age_seconds(Some(1_000), 3_500), 2.5);
        assert_eq!(age_seconds(None, 3_500), 0.0);
    }
}
