//! Metric and span names (fixed: `docs/design.md`, "Names operators key on") and the typed events that emit them.
//!
//! Every metric goes through the `metrics` facade; the runtime installs the DogStatsD and
//! Prometheus exporters. Log lines never carry comment or description bodies, and repeat other
//! payload strings (ids, unsupported field ids) truncated.

use crate::decision::DecisionRecord;
use std::sync::Arc;

use metrics::{counter, gauge, histogram};

use crate::changelog::Changelog;
use crate::error::{HandleError, truncate_for_log};
use crate::filter_reason::FilterReason;

/// Time from the third-party event to the end of processing, in milliseconds (distribution).
pub const END_TO_END_LATENCY: &str = "case.case_third_party_reader.end_to_end_latency";
/// Changelogs applied (count).
pub const CHANGELOG_PROCESSED: &str = "dd.case_third_party_reader.changelog_processed";
/// Messages that cannot become changelogs (count; tags `flavor`, `error`): bytes that are not
/// a readable payload (`error` = `malformed`, `too_large`) and payloads that parse but have the
/// wrong shape (`invalid`). Event types a flavor does not sync are [`DISCARDED`], not failures.
pub const DECODING_FAILED: &str = "dd.case_third_party_reader.decoding_failed";
/// Process exits on an exhausted retryable error: counted once, when the last try failed and
/// the reader stops without storing the offset (count; tags `flavor`, `error`). Each retry
/// before that is a [`RETRY_ATTEMPTS`].
pub const RETRIES: &str = "dd.case_third_party_reader.retries";
/// Changelogs older than the field's watermark (count; tags `integration`, `org_id`).
pub const OUT_OF_ORDER_EVENT: &str = "dd.case_third_party_reader.out_of_order_event";
/// Valid messages of an event type the flavor does not sync, acknowledged without a change
/// (count; tags `flavor`, `error` = `unsupported_event`). Routine: GitHub, for one, sends every
/// action of a subscribed event.
pub const DISCARDED: &str = "dd.case_third_party_reader.discarded";
/// Changelogs the API rejected as invalid (count; tags `flavor`, `changelog_type`, `error`).
pub const CHANGELOG_REJECTED: &str = "dd.case_third_party_reader.changelog_rejected";
/// Messages whose bytes are not a readable payload (count; tags `flavor`, `error` =
/// `malformed`, `too_large`): the Kafka consumer's view of the parse half of
/// [`DECODING_FAILED`].
pub const KAFKA_DECODE_ERROR: &str = "dd.case.kafka_consumer.decode_error";
/// Messages skipped by the operator skip list (count; tags `flavor`, `topic`, `partition`).
pub const MESSAGE_SKIPPED: &str = "dd.case.kafka_consumer.message_skipped";
/// Retry attempts: every retry of a retryable error (count; tags `flavor`, `error`).
pub const RETRY_ATTEMPTS: &str = "dd.case_third_party_reader.retry_attempts";
/// Messages behind the partition's high watermark (gauge; tags `flavor`, `topic`, `partition`).
pub const CONSUMER_LAG: &str = "dd.case.kafka_consumer.lag";
/// Age in seconds of the oldest message not yet handled (gauge; tags `flavor`, `topic`,
/// `partition`).
pub const CONSUMER_LAG_SECONDS: &str = "dd.case.kafka_consumer.lag_seconds";
/// Organizations whose sync metadata the last start-up warm-up put in the cache before the
/// reader reported ready (gauge; tag `flavor`): 0 when warming was off, unsupported by the Case
/// API or failed at once (`Pipeline::warm_caches`).
pub const CACHE_WARMED_ORGS: &str = "dd.case_third_party_reader.cache_warmed_orgs";

/// The metrics the alerts and the latency SLO are written on (`deploy/observability/`), besides
/// every flavor's filtered counter: `cargo xtask observability-check` holds the monitors and
/// rules to exactly these, and the reader's DogStatsD end-to-end test proves each is emitted.
pub const ALERTED: &[&str] = &[
    CHANGELOG_PROCESSED,
    DECODING_FAILED,
    DISCARDED,
    CHANGELOG_REJECTED,
    RETRIES,
    CONSUMER_LAG,
    END_TO_END_LATENCY,
];

/// The name of the filtered counter of a flavor: `dd.case_third_party_reader.{flavor}.filtered`.
pub fn filtered_metric_name(flavor: &str) -> String {
    format!("dd.case_third_party_reader.{flavor}.filtered")
}

/// Span names, in the hierarchy of `docs/design.md`.
pub mod spans {
    /// Root span prefix: the root is `handler_{flavor}`.
    pub const HANDLER_PREFIX: &str = "handler_";
    /// Decoding a message.
    pub const DECODE_EVENT: &str = "decode_event";
    /// The pre-filter.
    pub const PREFILTER: &str = "prefilter_third_party_changelog";
    /// Look-ups and the filter.
    pub const FILTER: &str = "filter_third_party_changelog";
    /// Case look-up (under the filter span).
    pub const GET_CASE: &str = "get_case";
    /// Settings look-up (under the filter span).
    pub const GET_SETTINGS: &str = "get_settings";
    /// Processing.
    pub const PROCESS: &str = "process_changelog";
    /// A case write (under the process span).
    pub const UPDATE_CASE: &str = "update_case";
    /// A comment write (under the process span).
    pub const CREATE_TIMELINE_CELL: &str = "create_timeline_cell";
}

/// A log-friendly RFC 3339 rendering of a timestamp.
fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Emits the pipeline's metrics for one flavor.
#[derive(Debug, Clone)]
pub struct Telemetry {
    // Shared, so the label and name of every metric call are a reference count, not a copy.
    flavor: Arc<str>,
    filtered_name: Arc<str>,
    /// The integration's latency tags: (tag, changelog metadata key).
    latency_tags: &'static [(&'static str, &'static str)],
}

impl Telemetry {
    /// Telemetry for `flavor`.
    pub fn new(flavor: &str) -> Self {
        Self {
            flavor: Arc::from(flavor),
            filtered_name: Arc::from(filtered_metric_name(flavor)),
            latency_tags: &[],
        }
    }

    /// The same telemetry, tagging the end-to-end latency with the integration's own tags
    /// ([`crate::Decoder::latency_tags`]).
    pub fn with_latency_tags(mut self, tags: &'static [(&'static str, &'static str)]) -> Self {
        self.latency_tags = tags;
        self
    }

    /// The flavor.
    pub fn flavor(&self) -> &str {
        &self.flavor
    }

    /// A changelog was applied `latency_ms` after its source event.
    pub fn processed(&self, changelog: &Changelog, latency_ms: f64, record: &DecisionRecord) {
        let org_id = changelog.org_id.to_string();
        let changelog_type = changelog.changelog_type.metric_tag();
        counter!(CHANGELOG_PROCESSED,
            "org_id" => org_id.clone(), "flavor" => self.flavor.clone(), "changelog_type" => changelog_type)
        .increment(1);
        let mut labels = Vec::with_capacity(3 + self.latency_tags.len());
        labels.push(metrics::Label::new("org_id", org_id));
        labels.push(metrics::Label::new("changelog_type", changelog_type));
        labels.push(metrics::Label::new("flavor", self.flavor.clone()));
        for (tag, key) in self.latency_tags {
            let value = changelog.metadata_value(key).unwrap_or("").to_owned();
            labels.push(metrics::Label::new(*tag, value));
        }
        histogram!(END_TO_END_LATENCY, labels).record(latency_ms);
        tracing::info!(
            org_id = changelog.org_id,
            changelog_type = %truncate_for_log(&changelog.changelog_type.name()),
            third_party_id = %truncate_for_log(&changelog.third_party_id),
            evt_timestamp = %rfc3339(changelog.event_timestamp),
            latency_ms,
            third_party_key = %key_for_log(record),
            site = %truncate_for_log(&changelog.site),
            case_id = record.case_id.as_deref().unwrap_or(""),
            position = %position_for_log(record),
            decision = "applied",
            "changelog processed"
        );
    }

    /// A changelog was dropped for `reason`.
    /// `record` is `None` for a count that is not a decision (a lost version race, retried).
    pub fn filtered(
        &self,
        changelog: &Changelog,
        reason: FilterReason,
        record: Option<&DecisionRecord>,
    ) {
        let org_id = changelog.org_id.to_string();
        counter!(self.filtered_name.clone(),
            "org_id" => org_id.clone(),
            "flavor" => self.flavor.clone(),
            "changelog_type" => changelog.changelog_type.metric_tag(),
            "reason" => reason.as_str())
        .increment(1);
        if reason == FilterReason::OutOfOrderEvent {
            counter!(OUT_OF_ORDER_EVENT,
                "integration" => changelog.integration.clone(), "org_id" => org_id)
            .increment(1);
        }
        tracing::info!(
            org_id = changelog.org_id,
            changelog_type = %truncate_for_log(&changelog.changelog_type.name()),
            third_party_id = %truncate_for_log(&changelog.third_party_id),
            evt_timestamp = %rfc3339(changelog.event_timestamp),
            author = &*truncate_for_log(
                changelog.author.as_ref().and_then(|a| a.id.as_deref()).unwrap_or("")
            ),
            is_from_datadog = reason == FilterReason::BreakSynchronizationCycle,
            reason = reason.as_str(),
            third_party_key = %record.map(key_for_log).unwrap_or_default(),
            site = %truncate_for_log(&changelog.site),
            case_id = record.and_then(|r| r.case_id.as_deref()).unwrap_or(""),
            position = %record.map(position_for_log).unwrap_or_default(),
            decision = if record.is_some() { "filtered" } else { "retried" },
            "changelog filtered"
        );
    }

    /// A changelog was rejected by a skip-class API error.
    pub fn rejected(&self, changelog: &Changelog, error: &HandleError, record: &DecisionRecord) {
        counter!(CHANGELOG_REJECTED,
            "flavor" => self.flavor.clone(),
            "changelog_type" => changelog.changelog_type.metric_tag(),
            "error" => error.kind())
        .increment(1);
        tracing::warn!(
            org_id = changelog.org_id,
            changelog_type = %truncate_for_log(&changelog.changelog_type.name()),
            third_party_id = %truncate_for_log(&changelog.third_party_id),
            error = %error,
            third_party_key = %key_for_log(record),
            site = %truncate_for_log(&changelog.site),
            case_id = record.case_id.as_deref().unwrap_or(""),
            position = %position_for_log(record),
            decision = "rejected",
            "changelog rejected"
        );
    }

    /// A message did not become changelogs: an event type the flavor does not sync
    /// ([`DISCARDED`]), or a payload that failed to decode ([`DECODING_FAILED`]: unreadable
    /// bytes, skip class, also [`KAFKA_DECODE_ERROR`]; the wrong shape, discard class).
    pub fn decode_failed(&self, error: &HandleError, record: &DecisionRecord) {
        let position = position_for_log(record);
        if matches!(
            error,
            HandleError::Decode(crate::DecodeError::UnsupportedEvent(_))
        ) {
            // Event types the webhook sends but we do not sync are routine: a warning, not an
            // error page.
            counter!(DISCARDED, "flavor" => self.flavor.clone(), "error" => error.kind())
                .increment(1);
            tracing::warn!(error = %error, class = "discard", %position, decision = "discarded", "message discarded");
            return;
        }
        counter!(DECODING_FAILED, "flavor" => self.flavor.clone(), "error" => error.kind())
            .increment(1);
        if error.class() == crate::ErrorClass::Discard {
            // Valid JSON of the wrong shape: the upstream format may have changed.
            tracing::error!(error = %error, class = "discard", %position, decision = "discarded", "message discarded");
            return;
        }
        counter!(KAFKA_DECODE_ERROR, "flavor" => self.flavor.clone(), "error" => error.kind())
            .increment(1);
        tracing::warn!(error = %error, class = "skip", %position, decision = "undecodable", "message undecodable");
    }

    /// A retryable error happened and the runtime backs off to try again.
    pub fn retry_attempt(&self, error: &HandleError) {
        counter!(RETRY_ATTEMPTS, "flavor" => self.flavor.clone(), "error" => error.kind())
            .increment(1);
        tracing::warn!(error = %error, class = "retry", "retryable error");
    }

    /// The last try of a retryable error failed: the reader stops without storing the offset
    /// (and a restarted one handles the message again).
    pub fn retries_exhausted(&self, error: &HandleError) {
        counter!(RETRIES, "flavor" => self.flavor.clone(), "error" => error.kind()).increment(1);
    }

    /// A cache warm-up ended with `orgs` organizations' sync metadata cached ([`CACHE_WARMED_ORGS`]).
    pub fn cache_warmed(&self, orgs: u64) {
        // A gauge of a count: exact far beyond any number of organizations.
        gauge!(CACHE_WARMED_ORGS, "flavor" => self.flavor.clone()).set(orgs as f64);
    }

    /// A message was skipped by the operator skip list: counted in `message_skipped` and as
    /// filtered with reason `skipped_by_operator` (its changelogs were never decoded).
    pub fn message_skipped(&self, position: &crate::MessagePosition) {
        counter!(self.filtered_name.clone(),
            "flavor" => self.flavor.clone(),
            "changelog_type" => "unknown",
            "reason" => FilterReason::SkippedByOperator.as_str())
        .increment(1);
        counter!(MESSAGE_SKIPPED,
            "flavor" => self.flavor.clone(),
            "topic" => position.topic.clone(),
            "partition" => position.partition.to_string())
        .increment(1);
        tracing::warn!(
            topic = %position.topic,
            partition = position.partition,
            offset = position.offset,
            reason = FilterReason::SkippedByOperator.as_str(),
            "message skipped by operator"
        );
    }
}

/// The record's third-party key, truncated for a log line.
fn key_for_log(record: &DecisionRecord) -> String {
    record
        .third_party_key
        .as_deref()
        .map(|k| truncate_for_log(k).into_owned())
        .unwrap_or_default()
}

/// `topic:partition:offset` of the record's message, or empty.
fn position_for_log(record: &DecisionRecord) -> String {
    match (&record.topic, record.partition, record.offset) {
        (Some(topic), Some(partition), Some(offset)) => format!("{topic}:{partition}:{offset}"),
        _ => String::new(),
    }
}
