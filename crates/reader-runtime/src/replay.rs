//! `<flavor> replay`: re-reads a range of the source topic (by time or by offsets) with its own
//! assignment (no consumer group joined, nothing committed), re-decides every selected message
//! with today's settings and reports how each decision changes against the decision records
//! (`project_not_found -> would_apply: 20`). A dry run by default; `--apply` applies, and can be
//! interrupted and run again: every effect is idempotent. See `docs/design.md`, "Replay".

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use thirdparty_core::{
    DecisionKind, DecisionRecord, DecisionSink, Decoder, FilterReason, MessageOutcome,
    MessagePosition, Payload, Pipeline,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{KafkaConfig, RetryConfig};
use crate::kafka_range::{Ends, now_ms, offset_at_or_after, timestamp_at};
use crate::retry::{Handled, handle_with_retry};

/// Which messages of the source topic to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Range {
    /// Messages whose Kafka timestamp is in `[from, to)`, on every partition; the start and end
    /// offsets come from the broker's offsets-for-times look-up.
    Time {
        /// The first instant.
        from: OffsetDateTime,
        /// The instant after the last.
        to: OffsetDateTime,
    },
    /// Offsets `first..=last` of one partition (`last` absent: to the partition's current end).
    Offsets {
        /// The partition.
        partition: i32,
        /// The first offset.
        first: i64,
        /// The last offset, included.
        last: Option<i64>,
    },
}

impl Range {
    /// Parses `A..B` (both included) or `A..` (to the end) for `--offsets`.
    pub fn offsets(partition: i32, text: &str) -> Result<Range> {
        let Some((first, last)) = text.split_once("..") else {
            bail!("--offsets {text:?}: expected FIRST..LAST (both included) or FIRST..");
        };
        let first: i64 = first
            .trim()
            .parse()
            .with_context(|| format!("--offsets {text:?}: the first offset"))?;
        let last = match last.trim() {
            "" => None,
            last => Some(
                last.parse::<i64>()
                    .with_context(|| format!("--offsets {text:?}: the last offset"))?,
            ),
        };
        if first < 0 || last.is_some_and(|last| last < first) {
            bail!("--offsets {text:?}: offsets are >= 0 and FIRST <= LAST");
        }
        if partition < 0 {
            bail!("--partition {partition}: partitions are >= 0");
        }
        Ok(Range::Offsets {
            partition,
            first,
            last,
        })
    }

    /// `--from`/`--to` (RFC 3339); `to` defaults to now.
    pub fn time(from: &str, to: Option<&str>) -> Result<Range> {
        let parse = |flag: &str, text: &str| {
            OffsetDateTime::parse(text.trim(), &Rfc3339).with_context(|| {
                format!("{flag} {text:?}: expected an RFC 3339 time like 2024-06-01T10:00:00Z")
            })
        };
        let from = parse("--from", from)?;
        let to = match to {
            Some(to) => parse("--to", to)?,
            None => OffsetDateTime::now_utc(),
        };
        if from >= to {
            bail!("--from must be before --to");
        }
        Ok(Range::Time { from, to })
    }
}

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayQuery {
    /// The messages to read.
    pub range: Range,
    /// Only messages with a changelog last recorded as filtered for one of these reasons
    /// (needs the decisions topic).
    pub reasons: Vec<FilterReason>,
    /// Only messages with a changelog of this organization.
    pub org: Option<u64>,
    /// Only messages about this item (its key or id).
    pub item: Option<String>,
    /// With `item`: only on this site (ignoring ASCII case).
    pub site: Option<String>,
    /// Apply (otherwise decide only, writing nothing).
    pub apply: bool,
    /// Where to write one JSON line per changelog.
    pub output: Option<PathBuf>,
}

/// One partition's part of the range: offsets `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// The partition.
    pub partition: i32,
    /// The first offset read.
    pub start: i64,
    /// The offset after the last read.
    pub end: i64,
    /// `end` is the partition's high watermark when the replay started: messages past it that
    /// were written before the start are read too (see [`crate::kafka_range::Ends`]).
    pub open_end: bool,
}

impl Slice {
    fn holds(&self, partition: i32, offset: i64) -> bool {
        partition == self.partition && offset >= self.start && (self.open_end || offset < self.end)
    }
}

/// How a replay went.
#[derive(Debug, Default)]
pub struct Summary {
    /// Messages of the range read from the source topic (in the time window, for `--from`).
    pub read: u64,
    /// Messages re-decided (the rest were outside the time window or the filters).
    pub selected: u64,
    /// `(before, after)` -> changelogs (or messages that never became changelogs).
    pub transitions: BTreeMap<(String, String), u64>,
    /// Why the replay stopped early, and where.
    pub stopped: Option<(String, MessagePosition)>,
}

impl Summary {
    /// The table: one `before -> after: count` line per transition.
    pub fn render(&self, topic: &str, slices: &[Slice], query: &ReplayQuery) -> String {
        let mut out = String::new();
        let ranges: Vec<String> = slices
            .iter()
            .map(|s| format!("{}:{}..{}", s.partition, s.start, s.end - 1))
            .collect();
        let window = match &query.range {
            Range::Time { from, to } => format!(
                " from {} to {}",
                from.format(&Rfc3339).unwrap_or_default(),
                to.format(&Rfc3339).unwrap_or_default()
            ),
            Range::Offsets { .. } => String::new(),
        };
        out.push_str(&format!(
            "replay of {topic}{window} (partition:offsets read {})\n",
            if ranges.is_empty() {
                "none".to_owned()
            } else {
                ranges.join(", ")
            }
        ));
        out.push_str(&format!(
            "{} messages read, {} re-decided\n",
            self.read, self.selected
        ));
        out.push_str(if query.apply {
            "applied; before -> after:\n"
        } else {
            "dry run, nothing written; before -> after (run again with --apply to apply):\n"
        });
        for ((before, after), count) in &self.transitions {
            out.push_str(&format!("  {before} -> {after}: {count}\n"));
        }
        if let Some((why, at)) = &self.stopped {
            out.push_str(&format!(
                "stopped at {}:{}:{} ({why}); running the same replay again is safe: what was \
                 applied is a duplicate then\n",
                at.topic, at.partition, at.offset
            ));
        }
        out
    }
}

/// Marks the records a replay produces, so `why` tells them from the live reader's.
#[derive(Debug)]
pub struct ReplayedSink(pub Arc<dyn DecisionSink>);

impl DecisionSink for ReplayedSink {
    fn record(&self, record: &DecisionRecord) {
        let mut record = record.clone();
        record.replay = true;
        self.0.record(&record);
    }
}

/// A consumer that only ever reads with its own assignment: it never subscribes (so never joins
/// a group) and never commits or stores an offset.
fn consumer(kafka: &KafkaConfig) -> Result<BaseConsumer> {
    kafka
        .security
        .client_config(&kafka.brokers)?
        .set("group.id", format!("{}-replay", kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("creating the replay consumer")
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves the range to per-partition offsets, and the earliest message time in it (for how
/// far back the decision records are read). Blocking.
pub fn plan(kafka: &KafkaConfig, topic: &str, range: &Range) -> Result<(Vec<Slice>, Option<i64>)> {
    let consumer = consumer(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions (does it exist?)");
    }
    let mut slices = Vec::new();
    let mut earliest: Option<i64> = None;
    match range {
        Range::Offsets {
            partition,
            first,
            last,
        } => {
            if !partitions.contains(partition) {
                bail!("topic {topic} has no partition {partition}");
            }
            let (low, high) = consumer.fetch_watermarks(topic, *partition, TIMEOUT)?;
            if *first < low {
                tracing::warn!(
                    partition,
                    first,
                    low,
                    "offsets before the partition's start are gone (retention)"
                );
            }
            let start = (*first).max(low);
            let end = last.map_or(high, |last| (last + 1).min(high));
            if start < end {
                earliest = timestamp_at(&consumer, topic, *partition, start)?;
                slices.push(Slice {
                    partition: *partition,
                    start,
                    end,
                    open_end: last.is_none_or(|last| last + 1 > high),
                });
            }
        }
        Range::Time { from, to } => {
            let ms = |t: &OffsetDateTime| -> Result<i64> {
                Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?)
            };
            let (from_ms, to_ms) = (ms(from)?, ms(to)?);
            earliest = Some(from_ms);
            for p in &partitions {
                let (low, high) = consumer.fetch_watermarks(topic, *p, TIMEOUT)?;
                if low >= high {
                    continue;
                }
                // An answer the timestamps contradict: read the whole partition, and let the
                // time filter of the scan decide.
                let start =
                    offset_at_or_after(&consumer, topic, *p, from_ms, (low, high))?.unwrap_or(low);
                let end =
                    offset_at_or_after(&consumer, topic, *p, to_ms, (low, high))?.unwrap_or(high);
                tracing::debug!(partition = p, low, high, start, end, "replay range by time");
                if start < end {
                    slices.push(Slice {
                        partition: *p,
                        start,
                        end,
                        // Past the watermark the time filter decides.
                        open_end: end == high,
                    });
                }
            }
        }
    }
    Ok((slices, earliest))
}

/// One message read from the source topic.
#[derive(Debug)]
struct Fetched {
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    value: Vec<u8>,
}

/// Reads the slices in offset order per partition and hands each message over; stops when
/// every slice is read, the receiver is gone or `stop` is cancelled. Blocking.
fn scan(
    kafka: &KafkaConfig,
    topic: &str,
    slices: &[Slice],
    started_ms: i64,
    tx: &mpsc::Sender<Fetched>,
    stop: &CancellationToken,
) -> Result<()> {
    let consumer = consumer(kafka)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = Ends::new(started_ms);
    for s in slices {
        tpl.add_partition_offset(topic, s.partition, Offset::Offset(s.start))?;
        ends.add(s.partition, s.end, s.open_end);
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    let mut last_progress = Instant::now();
    while !ends.finished() {
        if stop.is_cancelled() {
            return Ok(());
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            if last_progress.elapsed() > Duration::from_secs(60) {
                bail!("no message from {topic} for 60 s before the end of the range");
            }
            continue;
        };
        let message = message.context("reading the source topic")?;
        last_progress = Instant::now();
        let timestamp_ms = message.timestamp().to_millis();
        if !ends.take(message.partition(), message.offset(), timestamp_ms) {
            continue;
        }
        let fetched = Fetched {
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms,
            value: message.payload().unwrap_or_default().to_vec(),
        };
        if tx.blocking_send(fetched).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The recorded decisions of the messages in `slices`, by (partition, offset). Blocking.
pub fn previous_decisions(
    kafka: &KafkaConfig,
    decisions_topic: &str,
    topic: &str,
    slices: &[Slice],
    since: Duration,
) -> Result<HashMap<(i32, i64), Vec<DecisionRecord>>> {
    let records = crate::why::read_where(
        kafka,
        decisions_topic,
        since,
        Duration::from_secs(600),
        |r| {
            r.topic.as_deref() == Some(topic)
                && match (r.partition, r.offset) {
                    (Some(p), Some(o)) => slices.iter().any(|s| s.holds(p, o)),
                    _ => false,
                }
        },
    )?;
    let mut by_position: HashMap<(i32, i64), Vec<DecisionRecord>> = HashMap::new();
    for record in records {
        if let (Some(p), Some(o)) = (record.partition, record.offset) {
            by_position.entry((p, o)).or_default().push(record);
        }
    }
    Ok(by_position)
}

/// A record's label in the table: the reason of a filtered changelog, else the decision.
pub fn record_label(record: &DecisionRecord) -> String {
    match (record.decision, &record.reason, &record.error) {
        (DecisionKind::Filtered, Some(reason), _) => reason.clone(),
        (DecisionKind::Rejected, _, Some(error)) => format!("rejected ({error})"),
        (kind, _, _) => kind.as_str().to_owned(),
    }
}

/// The latest record about changelog `index` of a message (matched by type and item for
/// records written before they carried the index), or about the message itself.
fn latest<'a>(
    records: &'a [DecisionRecord],
    index: Option<usize>,
    changelog: Option<&thirdparty_core::Changelog>,
) -> Option<&'a DecisionRecord> {
    records
        .iter()
        .filter(|r| match (index, changelog) {
            (Some(i), Some(c)) => match r.changelog_index {
                Some(at) => usize::try_from(at).ok() == Some(i),
                None => {
                    r.third_party_id.as_deref() == Some(c.third_party_id.as_str())
                        && r.changelog_type.as_deref() == Some(&*c.changelog_type.name())
                }
            },
            _ => true,
        })
        .max_by_key(|r| r.decision_time)
}

/// The latest record of each changelog of a message (by index, else by type and item).
fn latest_per_changelog(records: &[DecisionRecord]) -> Vec<&DecisionRecord> {
    /// A changelog: its index, else its item and type.
    type Changelog<'a> = (Option<u32>, Option<&'a str>, Option<&'a str>);
    let mut latest: HashMap<Changelog<'_>, &DecisionRecord> = HashMap::new();
    for r in records {
        let key = match r.changelog_index {
            Some(i) => (Some(i), None, None),
            None => (
                None,
                r.third_party_id.as_deref(),
                r.changelog_type.as_deref(),
            ),
        };
        let entry = latest.entry(key).or_insert(r);
        if r.decision_time > entry.decision_time {
            *entry = r;
        }
    }
    latest.into_values().collect()
}

/// Everything a replay needs besides the query.
#[derive(Debug)]
pub struct Replayer<'a> {
    /// Kafka settings (brokers, security).
    pub kafka: &'a KafkaConfig,
    /// The source topic.
    pub topic: &'a str,
    /// The decisions topic (empty: none, every "before" is `unknown`).
    pub decisions_topic: &'a str,
    /// The pipeline (dry or live, as the query says).
    pub pipeline: &'a Pipeline,
    /// The flavor's decoder, for `--org` and `--item`.
    pub decoder: Arc<dyn Decoder>,
    /// Backoff for retry-class errors.
    pub retry: &'a RetryConfig,
    /// Cancelled on Ctrl-C.
    pub stop: CancellationToken,
}

impl Replayer<'_> {
    /// Plans, reads the decision records, then reads and re-decides every selected message.
    pub async fn run(&self, query: &ReplayQuery) -> Result<(Vec<Slice>, Summary)> {
        if !query.reasons.is_empty() && self.decisions_topic.is_empty() {
            bail!("--reason needs the decision records: set [decisions] topic in the config");
        }
        let started_ms = now_ms()?;
        let (kafka, topic, range) = (
            self.kafka.clone(),
            self.topic.to_owned(),
            query.range.clone(),
        );
        let (slices, earliest) =
            tokio::task::spawn_blocking(move || plan(&kafka, &topic, &range)).await??;
        let previous = if self.decisions_topic.is_empty() || slices.is_empty() {
            HashMap::new()
        } else {
            // Records are written after their message: read them from a little before it.
            let earliest_ms = earliest.unwrap_or(0).saturating_sub(5 * 60 * 1000);
            let since = Duration::from_millis(u64::try_from(started_ms - earliest_ms).unwrap_or(0));
            let (kafka, decisions, topic, slices) = (
                self.kafka.clone(),
                self.decisions_topic.to_owned(),
                self.topic.to_owned(),
                slices.clone(),
            );
            tokio::task::spawn_blocking(move || {
                previous_decisions(&kafka, &decisions, &topic, &slices, since)
            })
            .await??
        };
        let mut output = match &query.output {
            Some(path) => Some(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            )),
            None => None,
        };
        let total: i64 = slices.iter().map(|s| s.end - s.start).sum();
        let (tx, mut rx) = mpsc::channel::<Fetched>(256);
        let reader = {
            let (kafka, topic, slices, stop) = (
                self.kafka.clone(),
                self.topic.to_owned(),
                slices.clone(),
                self.stop.clone(),
            );
            tokio::task::spawn_blocking(move || {
                scan(&kafka, &topic, &slices, started_ms, &tx, &stop)
            })
        };
        let progress = query.apply && std::io::stderr().is_terminal();
        let mut last_progress = Instant::now();
        let mut summary = Summary::default();
        let mut last: Option<MessagePosition> = None;
        let window = match &query.range {
            Range::Time { from, to } => Some((*from, *to)),
            Range::Offsets { .. } => None,
        };
        let mut seen: i64 = 0;
        while let Some(m) = rx.recv().await {
            if self.stop.is_cancelled() {
                summary.stopped = Some((
                    "interrupted".into(),
                    MessagePosition {
                        topic: self.topic.to_owned(),
                        partition: m.partition,
                        offset: m.offset,
                    },
                ));
                break;
            }
            seen += 1;
            if progress && last_progress.elapsed() > Duration::from_millis(250) {
                last_progress = Instant::now();
                eprint!("\rreplayed {seen}/{total} messages");
            }
            if let (Some((from, to)), Some(ms)) = (window, m.timestamp_ms) {
                let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)?;
                if at < from || at >= to {
                    continue;
                }
            }
            summary.read += 1;
            let none = Vec::new();
            let records = previous.get(&(m.partition, m.offset)).unwrap_or(&none);
            if !self.selected(query, &m.value, records) {
                continue;
            }
            summary.selected += 1;
            let position = MessagePosition {
                topic: self.topic.to_owned(),
                partition: m.partition,
                offset: m.offset,
            };
            let payload = Payload::at(m.value, position.clone());
            let outcome =
                match handle_with_retry(self.pipeline, &payload, self.retry, &self.stop).await {
                    Handled::Done(outcome) => outcome,
                    Handled::Stopped => {
                        summary.stopped = Some(("interrupted".into(), position));
                        break;
                    }
                    Handled::Exhausted(err) => {
                        summary.stopped = Some((format!("retries exhausted: {err}"), position));
                        break;
                    }
                };
            self.tally(&outcome, records, &position, &mut summary, output.as_mut())?;
            last = Some(position);
        }
        drop(rx);
        if progress {
            eprintln!("\rreplayed {seen}/{total} messages");
        }
        if let Some(out) = output.as_mut() {
            out.flush()?;
        }
        let scanned = reader.await?;
        if summary.stopped.is_none() {
            if self.stop.is_cancelled() {
                summary.stopped = Some((
                    "interrupted".into(),
                    last.unwrap_or(MessagePosition {
                        topic: self.topic.to_owned(),
                        partition: slices.first().map_or(-1, |s| s.partition),
                        offset: slices.first().map_or(-1, |s| s.start),
                    }),
                ));
            } else {
                scanned?;
            }
        }
        Ok((slices, summary))
    }

    /// Whether a message passes `--org`, `--item`/`--site` and `--reason`.
    fn selected(&self, query: &ReplayQuery, value: &[u8], records: &[DecisionRecord]) -> bool {
        if query.org.is_some() || query.item.is_some() {
            let Ok(changelogs) = self.decoder.decode(value) else {
                return false;
            };
            let matches = changelogs.iter().any(|c| {
                let org_ok = query.org.is_none_or(|org| c.org_id == org);
                let item_ok = query.item.as_deref().is_none_or(|item| {
                    let item = item.trim();
                    c.third_party_id == item || c.third_party_key.as_deref() == Some(item)
                });
                let site_ok = query
                    .site
                    .as_deref()
                    .is_none_or(|site| c.site.eq_ignore_ascii_case(site.trim()));
                org_ok && item_ok && site_ok
            });
            if !matches {
                return false;
            }
        }
        if !query.reasons.is_empty() {
            // What was dropped, as last decided: each changelog's latest record.
            return latest_per_changelog(records).into_iter().any(|r| {
                r.decision == DecisionKind::Filtered
                    && r.reason
                        .as_deref()
                        .is_some_and(|name| query.reasons.iter().any(|q| q.as_str() == name))
            });
        }
        true
    }

    /// Counts one message's transitions and writes its JSON lines.
    fn tally(
        &self,
        outcome: &MessageOutcome,
        records: &[DecisionRecord],
        position: &MessagePosition,
        summary: &mut Summary,
        output: Option<&mut std::io::BufWriter<std::fs::File>>,
    ) -> Result<()> {
        let where_ = format!(
            "{}:{}:{}",
            position.topic, position.partition, position.offset
        );
        let before_of = |r: Option<&DecisionRecord>| r.map_or("unknown".to_owned(), record_label);
        let mut lines = Vec::new();
        match outcome {
            MessageOutcome::Skipped => {
                let before = before_of(latest(records, None, None));
                lines.push((before, "skipped".to_owned(), serde_json::json!({})));
            }
            MessageOutcome::Undecodable(err) => {
                let before = before_of(latest(records, None, None));
                let after = match err.class() {
                    thirdparty_core::ErrorClass::Discard => "discarded",
                    _ => "undecodable",
                };
                lines.push((
                    before,
                    after.to_owned(),
                    serde_json::json!({ "error": err.kind() }),
                ));
            }
            MessageOutcome::Handled(reports) => {
                for (i, report) in reports.iter().enumerate() {
                    let before = before_of(latest(records, Some(i), Some(&report.changelog)));
                    let mut detail = crate::explain::report_json(report);
                    detail["changelog_index"] = serde_json::json!(i);
                    lines.push((before, crate::explain::label(&report.decision), detail));
                }
            }
        }
        let mut output = output;
        for (before, after, mut detail) in lines {
            if let Some(out) = output.as_deref_mut() {
                detail["position"] = serde_json::json!(where_);
                detail["before"] = serde_json::json!(before);
                detail["after"] = serde_json::json!(after);
                serde_json::to_writer(&mut *out, &detail)?;
                out.write_all(b"\n")?;
            }
            *summary.transitions.entry((before, after)).or_default() += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_inclusive_and_open_ended() {
        assert_eq!(
            Range::offsets(2, "10..19").unwrap(),
            Range::Offsets {
                partition: 2,
                first: 10,
                last: Some(19)
            }
        );
        assert_eq!(
            Range::offsets(0, "5..").unwrap(),
            Range::Offsets {
                partition: 0,
                first: 5,
                last: None
            }
        );
        for bad in ["10", "a..b", "9..3", "-1..4"] {
            assert!(Range::offsets(0, bad).is_err(), "{bad}");
        }
        assert!(Range::offsets(-1, "0..1").is_err());
    }

    #[test]
    fn times_are_rfc3339_and_ordered() {
        let range = Range::time("2024-06-01T10:00:00Z", Some("2024-06-01T11:00:00+01:00"));
        assert!(range.is_err(), "11:00+01:00 is 10:00Z: an empty window");
        let Range::Time { from, to } =
            Range::time("2024-06-01T10:00:00Z", Some("2024-06-01T12:00:00Z")).unwrap()
        else {
            panic!()
        };
        assert_eq!((to - from).whole_hours(), 2);
        assert!(Range::time("yesterday", None).is_err());
    }

    fn record(
        index: Option<u32>,
        at: i64,
        kind: DecisionKind,
        reason: Option<&str>,
    ) -> DecisionRecord {
        DecisionRecord {
            topic: Some("t".into()),
            partition: Some(0),
            offset: Some(3),
            org_id: Some(1),
            integration: "jira".into(),
            site: Some("s".into()),
            third_party_id: Some("10002".into()),
            third_party_key: None,
            case_id: None,
            changelog_type: Some("update_status".into()),
            decision: kind,
            reason: reason.map(Into::into),
            error: None,
            source_event_time: None,
            decision_time: OffsetDateTime::from_unix_timestamp(at).unwrap(),
            reader_version: "0".into(),
            changelog_index: index,
            replay: false,
        }
    }

    #[test]
    fn the_latest_record_of_the_same_changelog_is_the_before() {
        let changelog = thirdparty_core::Changelog::new(
            "jira",
            1,
            thirdparty_core::ChangelogType::UpdateStatus,
            "10002",
            OffsetDateTime::UNIX_EPOCH,
        );
        let records = [
            record(
                Some(0),
                10,
                DecisionKind::Filtered,
                Some("project_not_found"),
            ),
            record(Some(1), 30, DecisionKind::Applied, None),
            record(Some(0), 20, DecisionKind::Applied, None),
        ];
        let found = latest(&records, Some(0), Some(&changelog)).unwrap();
        assert_eq!(record_label(found), "applied");
        let older = [record(
            None,
            10,
            DecisionKind::Filtered,
            Some("project_not_found"),
        )];
        let found = latest(&older, Some(0), Some(&changelog)).unwrap();
        assert_eq!(
            record_label(found),
            "project_not_found",
            "matched by type and item"
        );
    }
}
