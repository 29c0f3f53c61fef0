//! `<flavor> why <item>`: the recent decisions about one third-party item, newest first, read
//! from the decisions topic with the reader's own assignment (no consumer group joined, nothing
//! committed). See `docs/design.md`, "Decision records".

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use thirdparty_core::DecisionRecord;

use crate::config::KafkaConfig;
use crate::kafka_range::{Ends, now_ms, offset_at_or_after};

/// Which item, and how far back.
#[derive(Debug, Clone)]
pub struct WhyQuery {
    /// The item's human key (`PROJ-12`, `INC0010023`) or stable id (`10002`, a sys_id).
    pub item: String,
    /// Only this site (`acme.atlassian.net`), compared ignoring ASCII case.
    pub site: Option<String>,
    /// Only this organization.
    pub org: Option<u64>,
    /// Records decided within this long before now.
    pub since: Duration,
    /// At most this many, newest first.
    pub limit: usize,
}

impl WhyQuery {
    fn matches(&self, record: &DecisionRecord) -> bool {
        let item = self.item.trim();
        let is_item = record.third_party_key.as_deref() == Some(item)
            || record.third_party_id.as_deref() == Some(item);
        let site_ok = self.site.as_deref().is_none_or(|site| {
            record
                .site
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(site.trim()))
        });
        let org_ok = self.org.is_none_or(|org| record.org_id == Some(org));
        is_item && site_ok && org_ok
    }
}

/// Reads `topic` from `since` ago up to its current end and returns the matching records,
/// newest first. Blocking: call it off the async workers.
pub fn find(kafka: &KafkaConfig, topic: &str, query: &WhyQuery) -> Result<Vec<DecisionRecord>> {
    if topic.is_empty() {
        bail!("no decisions topic: set [decisions] topic in the config");
    }
    let mut found = read(kafka, topic, query.since)?;
    found.retain(|record| query.matches(record));
    found.sort_by_key(|r| std::cmp::Reverse(r.decision_time));
    found.truncate(query.limit);
    Ok(found)
}

/// Every record of `topic` decided within `since` before now, in the order read, with the
/// reader's own assignment (no group joined, nothing committed). Blocking.
pub fn read(kafka: &KafkaConfig, topic: &str, since: Duration) -> Result<Vec<DecisionRecord>> {
    read_where(kafka, topic, since, Duration::from_secs(120), |_| true)
}

/// The records of `topic` decided within `since` before now that `keep` keeps, in the order
/// read, reading up to the topic's current end for at most `limit`. Blocking.
pub fn read_where(
    kafka: &KafkaConfig,
    topic: &str,
    since: Duration,
    limit: Duration,
    mut keep: impl FnMut(&DecisionRecord) -> bool,
) -> Result<Vec<DecisionRecord>> {
    let consumer: BaseConsumer = kafka
        .security
        .client_config(&kafka.brokers)?
        .set("group.id", "case-third-party-reader-why")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("creating the decisions consumer")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions (does it exist?)");
    }
    let started_ms = now_ms()?;
    let since_ms = started_ms.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    // Where each partition ends now: read up to there (and past it, see `Ends`), then stop.
    let mut ends = Ends::new(started_ms);
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, timeout)?;
        // An answer the timestamps contradict: read the partition, and let the time filter
        // below decide.
        let start = offset_at_or_after(&consumer, topic, *p, since_ms, (low, high))?.unwrap_or(low);
        if start < high {
            ends.add(*p, high, true);
            assignment.add_partition_offset(topic, *p, Offset::Offset(start))?;
        }
    }
    if assignment.count() == 0 {
        return Ok(Vec::new());
    }
    consumer.assign(&assignment)?;
    let oldest = time::Duration::try_from(since)
        .ok()
        .and_then(|since| time::OffsetDateTime::now_utc().checked_sub(since))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut found = Vec::new();
    let deadline = Instant::now() + limit;
    while !ends.finished() {
        if Instant::now() > deadline {
            bail!("reading {topic} took longer than {} s", limit.as_secs());
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.context("reading the decisions topic")?;
        if !ends.take(
            message.partition(),
            message.offset(),
            message.timestamp().to_millis(),
        ) {
            continue;
        }
        if let Some(payload) = message.payload()
            && let Ok(record) = serde_json::from_slice::<DecisionRecord>(payload)
            && record.decision_time >= oldest
            && keep(&record)
        {
            found.push(record);
        }
    }
    Ok(found)
}

/// One line per record: when, what, which case, where in Kafka, when it happened upstream.
pub fn render(records: &[DecisionRecord]) -> String {
    let mut out = String::new();
    for r in records {
        let position = match (&r.topic, r.partition, r.offset) {
            (Some(t), Some(p), Some(o)) => format!("{t}:{p}:{o}"),
            _ => "-".to_owned(),
        };
        let rfc = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "{}  {:<40}  {:<14}  case {:<36}  {}  event {}\n",
            rfc(r.decision_time),
            if r.replay {
                format!("{} by replay", r.outcome())
            } else {
                r.outcome()
            },
            r.changelog_type.as_deref().unwrap_or("-"),
            r.case_id.as_deref().unwrap_or("-"),
            position,
            r.source_event_time.map(rfc).unwrap_or_else(|| "-".into()),
        ));
    }
    out
}
