//! `<flavor> why <item>`: the recent decisions about one third-party item, newest first, read
//! from the decisions topic with the reader's own assignment (no consumer group joined, nothing
//! committed). See `docs/design.md`, "Decision records".

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use thirdparty_core::DecisionRecord;

use crate::config::KafkaConfig;

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
    let since_ms = SystemTime::now()
        .checked_sub(since)
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut times = TopicPartitionList::new();
    for p in &partitions {
        times.add_partition_offset(topic, *p, Offset::Offset(i64::try_from(since_ms)?))?;
    }
    let starts = consumer
        .offsets_for_times(times, timeout)
        .context("looking up offsets by time")?;
    // Where each partition ends now: read up to there, then stop.
    let mut ends = std::collections::BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, timeout)?;
        // A broker that cannot look offsets up by time (librdkafka's mock cluster) answers -1,
        // as one with nothing that recent does: read the partition then, and let the time
        // filter below decide.
        let start = match starts.find_partition(topic, *p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) if o >= 0 => o,
            _ => low,
        };
        if start.max(low) < high {
            ends.insert(*p, high);
            assignment.add_partition_offset(topic, *p, Offset::Offset(start.max(low)))?;
        }
    }
    consumer.assign(&assignment)?;
    let oldest = time::Duration::try_from(since)
        .ok()
        .and_then(|since| time::OffsetDateTime::now_utc().checked_sub(since))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ends.is_empty() {
        if Instant::now() > deadline {
            bail!("reading {topic} took longer than 2 minutes");
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.context("reading the decisions topic")?;
        if let Some(payload) = message.payload()
            && let Ok(record) = serde_json::from_slice::<DecisionRecord>(payload)
            && record.decision_time >= oldest
        {
            found.push(record);
        }
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&message.partition());
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
            r.outcome(),
            r.changelog_type.as_deref().unwrap_or("-"),
            r.case_id.as_deref().unwrap_or("-"),
            position,
            r.source_event_time.map(rfc).unwrap_or_else(|| "-".into()),
        ));
    }
    out
}
