//! The decisions topic: every decision record (`thirdparty_core::DecisionRecord`) produced as
//! JSON, keyed `org:integration:site:id`, by an idempotent producer on its own thread. Handing a
//! record over never blocks and never fails the handling of a change: when the queue is full or
//! the topic cannot be reached, the record is counted as dropped and the reader goes on. See
//! `docs/design.md`, "Decision records".

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::counter;
use rdkafka::ClientContext;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;
use thirdparty_core::{DecisionRecord, DecisionSink};

use crate::config::{ConfigError, KafkaConfig};
use crate::health::Health;
use crate::kafka_security::SecurityError;

/// Records handed to the producer and acknowledged by the brokers.
pub const DECISION_RECORDS_PRODUCED: &str = "dd.case_third_party_reader.decision_records.produced";
/// Records that never reached the topic (`error`: `queue_full`, `delivery`, `encode`).
pub const DECISION_RECORDS_DROPPED: &str = "dd.case_third_party_reader.decision_records.dropped";

/// `[decisions]`: where decision records go besides the log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionsConfig {
    /// Kafka topic of the records (on the `[kafka]` brokers, with `[kafka.security]`); empty:
    /// records are only logged.
    pub topic: String,
    /// How long the producer keeps trying to deliver a record before it counts it as dropped
    /// (`delivery_timeout_ms`, in milliseconds).
    #[serde(
        rename = "delivery_timeout_ms",
        with = "crate::config::duration_as::millis"
    )]
    pub delivery_timeout: Duration,
    /// Records waiting for delivery at most; beyond, new records are dropped (and counted).
    pub queue_max_records: u32,
}

impl Default for DecisionsConfig {
    fn default() -> Self {
        Self {
            topic: String::new(),
            delivery_timeout: Duration::from_secs(120),
            queue_max_records: 100_000,
        }
    }
}

impl DecisionsConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: &str| ConfigError::Invalid {
            field: format!("decisions.{field}"),
            reason: reason.to_owned(),
        };
        if self.topic.trim() != self.topic {
            return Err(invalid("topic", "must not have surrounding whitespace"));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3_600)).contains(&self.delivery_timeout) {
            return Err(invalid(
                "delivery_timeout_ms",
                "must be between 1000 and 3600000 (an hour)",
            ));
        }
        if !(1..=10_000_000).contains(&self.queue_max_records) {
            return Err(invalid(
                "queue_max_records",
                "must be between 1 and 10000000",
            ));
        }
        Ok(())
    }
}

/// Counts deliveries; runs on the producer's own thread.
#[derive(Debug)]
pub struct DeliveryCounter {
    flavor: String,
    /// Told of a fatal producer error (the live reader's; none in `replay`).
    health: OnceLock<Arc<Health>>,
}

impl ClientContext for DeliveryCounter {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // A fatal error arrives with its underlying code and a reason naming it fatal.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) || reason.contains("Fatal") {
            // The idempotent producer cannot go on (out of sequence, fenced): records would be
            // dropped from now on; a restart gets a new producer.
            tracing::error!(error = %error, reason, "decisions producer fatal error");
            if let Some(health) = self.health.get() {
                health.kafka_fatal(format!("decisions producer: {reason}"));
            }
            return;
        }
        tracing::warn!(error = %error, reason, "decisions producer error");
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                counter!(DECISION_RECORDS_PRODUCED, "flavor" => self.flavor.clone()).increment(1)
            }
            Err((error, _)) => {
                counter!(DECISION_RECORDS_DROPPED, "flavor" => self.flavor.clone(), "error" => "delivery")
                    .increment(1);
                tracing::warn!(error = %error, "decision record not delivered");
            }
        }
    }
}

/// The decisions topic's producer.
pub struct KafkaDecisionSink {
    producer: ThreadedProducer<DeliveryCounter>,
    topic: String,
    flavor: String,
}

impl std::fmt::Debug for KafkaDecisionSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaDecisionSink")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The producer could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionsError {
    /// A `[kafka.security]` secret file cannot be used.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// librdkafka refused the configuration.
    #[error("decisions producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

impl KafkaDecisionSink {
    /// A producer to `decisions.topic` on the `[kafka]` brokers, with `[kafka.security]`.
    pub fn new(
        kafka: &KafkaConfig,
        decisions: &DecisionsConfig,
        flavor: &str,
    ) -> Result<Self, DecisionsError> {
        let mut config = kafka.security.client_config(&kafka.brokers)?;
        config
            // At most once per record in the topic, in order per key, even across retries.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "50")
            .set("compression.type", "zstd")
            .set(
                "message.timeout.ms",
                decisions.delivery_timeout.as_millis().to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                decisions.queue_max_records.to_string(),
            );
        let producer = config.create_with_context(DeliveryCounter {
            flavor: flavor.to_owned(),
            health: OnceLock::new(),
        })?;
        tracing::info!(topic = %decisions.topic, "decision records go to kafka");
        Ok(Self {
            producer,
            topic: decisions.topic.clone(),
            flavor: flavor.to_owned(),
        })
    }

    /// Makes a fatal error of the producer fail `health`'s `/live` (the live reader's).
    pub fn report_fatal_to(&self, health: Arc<Health>) {
        let _ = self.producer.context().health.set(health);
    }

    /// Waits (bounded) for the records still queued; at shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer.flush(timeout) {
            let left = self.producer.in_flight_count();
            tracing::warn!(error = %err, left, "decision records not flushed at shutdown");
        }
    }
}

impl DecisionSink for KafkaDecisionSink {
    fn record(&self, record: &DecisionRecord) {
        let value = match serde_json::to_vec(record) {
            Ok(value) => value,
            Err(err) => {
                counter!(DECISION_RECORDS_DROPPED, "flavor" => self.flavor.clone(), "error" => "encode")
                    .increment(1);
                tracing::warn!(error = %err, "decision record not encoded");
                return;
            }
        };
        let key = record.key();
        let sent = self
            .producer
            .send(BaseRecord::to(&self.topic).key(&key).payload(&value));
        if let Err((err, _)) = sent {
            counter!(DECISION_RECORDS_DROPPED, "flavor" => self.flavor.clone(), "error" => "queue_full")
                .increment(1);
            tracing::debug!(error = %err, "decision record dropped");
        }
    }
}
