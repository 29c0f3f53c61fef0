//! The operator skip list: message positions to acknowledge without handling (poison messages).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;

use thiserror::Error;

/// Where a message sits in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessagePosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl fmt::Display for MessagePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.topic, self.partition, self.offset)
    }
}

/// One skip-list entry: `topic:partition:offset`, or `partition:offset` for any topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkipEntry {
    /// The topic, or `None` for every topic the reader consumes.
    pub topic: Option<String>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// A skip-list entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid skip-list entry `{entry}`: expected `topic:partition:offset` or `partition:offset`"
)]
pub struct SkipEntryError {
    /// The offending text.
    pub entry: String,
}

impl FromStr for SkipEntry {
    type Err = SkipEntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SkipEntryError {
            entry: s.to_owned(),
        };
        let mut parts = s.trim().rsplitn(3, ':');
        let offset = parts
            .next()
            .ok_or_else(err)?
            .parse::<i64>()
            .map_err(|_| err())?;
        let partition = parts
            .next()
            .ok_or_else(err)?
            .parse::<i32>()
            .map_err(|_| err())?;
        let topic = parts.next().map(str::to_owned);
        if offset < 0 || partition < 0 || topic.as_deref() == Some("") {
            return Err(err());
        }
        Ok(SkipEntry {
            topic,
            partition,
            offset,
        })
    }
}

/// The current skip list; replaced as a whole when the operator's configuration changes.
#[derive(Debug, Default)]
pub struct SkipList {
    entries: RwLock<HashSet<SkipEntry>>,
}

impl SkipList {
    /// A skip list holding `entries`.
    pub fn new(entries: impl IntoIterator<Item = SkipEntry>) -> Self {
        Self {
            entries: RwLock::new(entries.into_iter().collect()),
        }
    }

    /// Parses entries; fails on the first that does not parse.
    pub fn parse_entries<'a>(
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<SkipEntry>, SkipEntryError> {
        texts
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .map(str::parse)
            .collect()
    }

    /// Replaces the whole list; applies to every message handled afterwards.
    pub fn replace(&self, entries: impl IntoIterator<Item = SkipEntry>) {
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        *guard = entries.into_iter().collect();
    }

    /// Whether the message at `position` is to be skipped.
    pub fn contains(&self, position: &MessagePosition) -> bool {
        let guard = self.entries.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_empty() {
            return false;
        }
        let mut probe = SkipEntry {
            topic: Some(position.topic.clone()),
            partition: position.partition,
            offset: position.offset,
        };
        if guard.contains(&probe) {
            return true;
        }
        probe.topic = None;
        guard.contains(&probe)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(topic: &str, partition: i32, offset: i64) -> MessagePosition {
        MessagePosition {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    #[test]
    fn parses_both_forms_and_rejects_garbage() {
        let e: SkipEntry = "collaboration_integrations_toy:3:42".parse().unwrap();
        assert_eq!(e.topic.as_deref(), Some("collaboration_integrations_toy"));
        assert_eq!((e.partition, e.offset), (3, 42));
        let e: SkipEntry = " 1:7 ".parse().unwrap();
        assert_eq!((e.topic, e.partition, e.offset), (None, 1, 7));
        for bad in ["", "42", "a:b", "t:1:x", ":1:2", "t:-1:2", "t:1:-2"] {
            assert!(bad.parse::<SkipEntry>().is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_and_reloads_without_restart() {
        let list = SkipList::new(SkipList::parse_entries(["t:0:5", "2:9"]).unwrap());
        assert!(list.contains(&pos("t", 0, 5)));
        assert!(!list.contains(&pos("u", 0, 5)));
        assert!(list.contains(&pos("anything", 2, 9)));
        list.replace(SkipList::parse_entries(["t:0:6"]).unwrap());
        assert!(!list.contains(&pos("t", 0, 5)));
        assert!(list.contains(&pos("t", 0, 6)));
        assert_eq!(list.len(), 1);
    }
}
