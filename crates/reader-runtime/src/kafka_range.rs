//! Where a range of a partition starts and ends, for `why` and `replay`: offsets by time,
//! verified against the messages' timestamps, and the end of a partition as of now.
//!
//! Brokers differ here: librdkafka's mock cluster answers -1 to every time, and Tansu 0.6
//! answers offset 0 for a partition none of whose messages is that recent. An answer that the
//! timestamps contradict is not used: the caller then reads from the partition's start (or to
//! its end) and filters messages by their timestamps, which is slower but right.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The Kafka timestamp (ms) of the message at `offset`, if it can be read within 10 s.
/// Replaces the consumer's assignment. Blocking.
pub fn timestamp_at(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + TIMEOUT;
    let mut found = None;
    while Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.context("reading a message's timestamp")?;
        if message.partition() == partition && message.offset() >= offset {
            found = message.timestamp().to_millis();
            break;
        }
    }
    consumer.unassign()?;
    Ok(found)
}

/// The first offset of `partition` (whose offsets are `low..high`) with a timestamp at or after
/// `at_ms`: `Some(high)` when every message is older, `None` when the broker's answer cannot be
/// trusted (see the module docs). Blocking.
pub fn offset_at_or_after(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    at_ms: i64,
    (low, high): (i64, i64),
) -> Result<Option<i64>> {
    if low >= high {
        return Ok(Some(high));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(at_ms))?;
    let answer = consumer
        .offsets_for_times(tpl, TIMEOUT)
        .context("looking up offsets by time")?;
    let answered = match answer.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(o)) if (low..high).contains(&o) => Some(o),
        _ => None,
    };
    let older = |offset: i64| -> Result<bool> {
        Ok(timestamp_at(consumer, topic, partition, offset)?.is_some_and(|ts| ts < at_ms))
    };
    let verified = match answered {
        // "Nothing that recent": true when the last message is older.
        None => older(high - 1)?.then_some(high),
        // The first at or after: its message is not older, the one before it is.
        Some(o) => (!older(o)? && (o == low || older(o - 1)?)).then_some(o),
    };
    if verified.is_none() {
        tracing::debug!(
            topic,
            partition,
            at_ms,
            ?answered,
            "the broker's offset for the time does not match the timestamps; reading by timestamp"
        );
    }
    Ok(verified)
}

/// Now, in ms since the epoch (Kafka timestamps).
pub fn now_ms() -> Result<i64> {
    Ok(i64::try_from(
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
    )?)
}

/// Tracks where reading stops on each partition.
///
/// A closed end is an exact offset. An open end ("as of now") is the high watermark when
/// reading started, which some brokers undercount (Tansu 0.6 counts a batch of records as one),
/// so reading goes on past it: until a message stamped after `started_ms` (written after the
/// command started) or one second with no message at all.
#[derive(Debug)]
pub struct Ends {
    ends: HashMap<i32, (i64, bool)>,
    reached: HashSet<i32>,
    done: HashSet<i32>,
    started_ms: i64,
    last_message: Instant,
}

/// Silence after which open ends that were reached are done.
const IDLE: Duration = Duration::from_secs(1);

impl Ends {
    /// Nothing to read yet; `started_ms` is when the command started (ms since the epoch).
    pub fn new(started_ms: i64) -> Self {
        Self {
            ends: HashMap::new(),
            reached: HashSet::new(),
            done: HashSet::new(),
            started_ms,
            last_message: Instant::now(),
        }
    }

    /// Reads `partition` up to `end` (excluded); `open`: `end` is the high watermark.
    pub fn add(&mut self, partition: i32, end: i64, open: bool) {
        self.ends.insert(partition, (end, open));
    }

    /// Whether a message read belongs to the range (the caller keeps it) or lies past the end.
    pub fn take(&mut self, partition: i32, offset: i64, timestamp_ms: Option<i64>) -> bool {
        self.last_message = Instant::now();
        let Some(&(end, open)) = self.ends.get(&partition) else {
            return false;
        };
        if self.done.contains(&partition) {
            return false;
        }
        if open {
            if offset + 1 >= end {
                self.reached.insert(partition);
            }
            if offset >= end && timestamp_ms.is_some_and(|ts| ts > self.started_ms) {
                self.done.insert(partition);
                return false;
            }
            return true;
        }
        if offset >= end {
            self.done.insert(partition);
            return false;
        }
        if offset + 1 >= end {
            self.done.insert(partition);
        }
        true
    }

    /// Whether every partition is read to its end.
    pub fn finished(&self) -> bool {
        self.ends.iter().all(|(p, (_, open))| {
            self.done.contains(p)
                || (*open && self.reached.contains(p) && self.last_message.elapsed() >= IDLE)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_end_stops_at_its_offset() {
        let mut ends = Ends::new(1_000);
        ends.add(0, 3, false);
        assert!(!ends.finished());
        assert!(ends.take(0, 1, None));
        assert!(ends.take(0, 2, None));
        assert!(ends.finished());
        assert!(!ends.take(0, 3, None));
        assert!(!ends.take(7, 0, None), "not a partition of the range");
    }

    #[test]
    fn an_open_end_reads_past_an_undercounted_watermark_until_newer_messages_or_silence() {
        let mut ends = Ends::new(1_000);
        // The broker said the partition ends at 1; it holds more.
        ends.add(0, 1, true);
        assert!(ends.take(0, 0, Some(900)));
        assert!(!ends.finished(), "reached, but messages may follow at once");
        assert!(
            ends.take(0, 1, Some(950)),
            "past the watermark, written before the start"
        );
        assert!(
            !ends.take(0, 2, Some(1_001)),
            "written after the command started"
        );
        assert!(ends.finished());

        let mut ends = Ends::new(1_000);
        ends.add(0, 1, true);
        assert!(ends.take(0, 0, Some(900)));
        ends.last_message = Instant::now() - IDLE;
        assert!(ends.finished(), "a second of silence");
    }
}
