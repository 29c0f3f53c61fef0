//! The bookkeeping of key-ordered concurrency inside one partition (`docs/design.md`,
//! "Delivery"): messages of different items are handled concurrently, those of one item strictly
//! in offset order, at most `max` at a time; the offset to store is always the highest one below
//! which every message is fully handled, so a crash redelivers from the lowest message not yet
//! handled (effects are idempotent).
//!
//! Pure and synchronous: the partition task feeds it what it receives and what finished, and
//! starts and stores what it answers.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// One partition's messages between receipt and a stored offset.
#[derive(Debug)]
pub struct KeyOrder<M> {
    max: usize,
    /// Every message received and not yet below the stored offset: offset -> (done, timestamp).
    offsets: BTreeMap<i64, (bool, Option<i64>)>,
    /// Keys with a message in handling, and the messages of that key waiting behind it.
    keys: HashMap<String, VecDeque<M>>,
}

impl<M> KeyOrder<M> {
    /// At most `max` messages between receipt and their stored offset (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            offsets: BTreeMap::new(),
            keys: HashMap::new(),
        }
    }

    /// Whether another message may be received.
    pub fn has_room(&self) -> bool {
        self.offsets.len() < self.max
    }

    /// No message is in handling or waiting.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// A message was received at `offset` (Kafka timestamp `timestamp`, ms): returns it when it
    /// may start now, or keeps it behind the message of the same `key` in handling. A message
    /// without a key (nothing to write: undecodable, unsupported) starts at once.
    pub fn admit(
        &mut self,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&str>,
        message: M,
    ) -> Option<M> {
        self.offsets.insert(offset, (false, timestamp));
        let Some(key) = key else {
            return Some(message);
        };
        match self.keys.get_mut(key) {
            Some(waiting) => {
                waiting.push_back(message);
                None
            }
            None => {
                self.keys.insert(key.to_owned(), VecDeque::new());
                Some(message)
            }
        }
    }

    /// The message at `offset` (of `key`) is fully handled: returns the next message of its key
    /// to start, if one waits, and the offset to store now, when the lowest unhandled message
    /// moved past it.
    pub fn finish(&mut self, offset: i64, key: Option<&str>) -> (Option<M>, Option<i64>) {
        if let Some(entry) = self.offsets.get_mut(&offset) {
            entry.0 = true;
        }
        let next = key.and_then(|key| {
            let waiting = self.keys.get_mut(key)?;
            let next = waiting.pop_front();
            if next.is_none() {
                self.keys.remove(key);
            }
            next
        });
        let mut storable = None;
        while let Some(entry) = self.offsets.first_entry() {
            if !entry.get().0 {
                break;
            }
            storable = Some(*entry.key());
            entry.remove();
        }
        (next, storable)
    }

    /// The Kafka timestamp of the oldest message not yet fully handled (none: all handled, or
    /// its timestamp is unknown).
    pub fn oldest_unhandled(&self) -> Option<i64> {
        self.offsets
            .values()
            .find(|(done, _)| !done)
            .and_then(|(_, timestamp)| *timestamp)
    }

    /// Messages received and not fully handled.
    pub fn pending(&self) -> usize {
        self.offsets.values().filter(|(done, _)| !done).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_in_order_other_keys_concurrently_and_the_stored_offset_is_the_lowest_gap() {
        let mut order = KeyOrder::new(8);
        assert_eq!(order.admit(10, Some(1), Some("a"), 10), Some(10));
        assert_eq!(order.admit(11, Some(2), Some("b"), 11), Some(11));
        assert_eq!(order.admit(12, Some(3), Some("a"), 12), None, "behind 10");
        assert_eq!(
            order.admit(13, Some(4), None, 13),
            Some(13),
            "no key: at once"
        );
        assert_eq!(order.oldest_unhandled(), Some(1));

        // 11 and 13 finish first: nothing stored while 10 is in handling.
        assert_eq!(order.finish(11, Some("b")), (None, None));
        assert_eq!(order.finish(13, None), (None, None));
        // 10 finishes: 12 (same key) starts, and 11 is the highest offset with all below done.
        assert_eq!(order.finish(10, Some("a")), (Some(12), Some(11)));
        assert_eq!(order.oldest_unhandled(), Some(3));
        assert_eq!(order.finish(12, Some("a")), (None, Some(13)));
        assert!(order.is_empty());
        // The key is free again.
        assert_eq!(order.admit(14, None, Some("a"), 14), Some(14));
    }

    #[test]
    fn at_most_max_between_receipt_and_store() {
        let mut order = KeyOrder::new(2);
        assert_eq!(order.admit(0, None, Some("a"), 0), Some(0));
        assert!(order.has_room());
        assert_eq!(order.admit(1, None, Some("a"), 1), None);
        assert!(!order.has_room());
        assert_eq!(order.pending(), 2);
        assert_eq!(order.finish(0, Some("a")), (Some(1), Some(0)));
        assert!(order.has_room());
    }

    #[test]
    fn max_one_is_one_message_at_a_time() {
        let mut order = KeyOrder::new(1);
        for offset in 0..5 {
            assert!(order.has_room());
            let key = if offset % 2 == 0 { "a" } else { "b" };
            assert_eq!(order.admit(offset, None, Some(key), offset), Some(offset));
            assert!(!order.has_room());
            assert_eq!(order.finish(offset, Some(key)), (None, Some(offset)));
        }
    }

    #[test]
    fn gaps_in_offsets_do_not_hold_the_store_back() {
        let mut order = KeyOrder::new(4);
        order.admit(5, None, Some("a"), 5);
        order.admit(9, None, Some("b"), 9);
        assert_eq!(order.finish(9, Some("b")), (None, None));
        assert_eq!(order.finish(5, Some("a")), (None, Some(9)));
    }
}
