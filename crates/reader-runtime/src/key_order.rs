//! The bookkeeping of key-ordered concurrency inside one partition (`docs/design.md`,
//! "Delivery"): messages of different items are handled concurrently, those of one item strictly
//! in offset order, at most `max` in handling at a time and at most [`window`]`(max)` between
//! receipt and the stored offset; the offset to store is always the highest one below which
//! every message is fully handled, so a crash redelivers from the lowest message not yet handled
//! (effects are idempotent).
//!
//! Pure and synchronous: the partition task feeds it what it receives and what finished, and
//! starts and stores what it answers.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// The most messages between receipt and the stored offset for `max` in handling: four times
/// `max`, but no more than 256 (nor fewer than `max`), so one slow message holds up neither the
/// others' handling nor, until the window fills, new ones, while the messages held in memory stay
/// bounded as `max` grows.
pub fn window(max: usize) -> usize {
    let max = max.max(1);
    max.max((4 * max).min(256))
}

/// One partition's messages between receipt and a stored offset.
#[derive(Debug)]
pub struct KeyOrder<M> {
    /// The most messages in handling at once.
    max: usize,
    /// The most messages between receipt and the stored offset.
    window: usize,
    /// Messages in handling.
    handling: usize,
    /// Every message received and not yet below the stored offset: offset -> (done, timestamp).
    offsets: BTreeMap<i64, (bool, Option<i64>)>,
    /// Keys with a message in handling or ready, and the messages of that key waiting behind it.
    keys: HashMap<String, VecDeque<(i64, M)>>,
    /// Messages free to start (no earlier message of their key is pending), waiting for one of
    /// the `max` slots; the lowest offset starts first.
    ready: BTreeMap<i64, M>,
}

impl<M> KeyOrder<M> {
    /// At most `max` messages in handling (at least 1) and [`window`]`(max)` between receipt and
    /// their stored offset.
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            window: window(max),
            handling: 0,
            offsets: BTreeMap::new(),
            keys: HashMap::new(),
            ready: BTreeMap::new(),
        }
    }

    /// Whether another message may be received.
    pub fn has_room(&self) -> bool {
        self.offsets.len() < self.window
    }

    /// No message is in handling or waiting.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// A message was received at `offset` (Kafka timestamp `timestamp`, ms): returns it when it
    /// may start now, or keeps it behind the message of the same `key` in handling, or until a
    /// slot frees. A message without a key (nothing to write: undecodable, unsupported) waits
    /// for nothing but a slot.
    pub fn admit(
        &mut self,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&str>,
        message: M,
    ) -> Option<M> {
        self.offsets.insert(offset, (false, timestamp));
        if let Some(key) = key {
            if let Some(waiting) = self.keys.get_mut(key) {
                waiting.push_back((offset, message));
                return None;
            }
            self.keys.insert(key.to_owned(), VecDeque::new());
        }
        if self.handling < self.max {
            self.handling += 1;
            return Some(message);
        }
        self.ready.insert(offset, message);
        None
    }

    /// The message at `offset` (of `key`) is fully handled: returns the messages to start now
    /// (the next of its key, when one waits and a slot is free, or others waiting for a slot,
    /// lowest offset first), and the offset to store now, when the lowest unhandled message
    /// moved past it.
    pub fn finish(&mut self, offset: i64, key: Option<&str>) -> (Vec<M>, Option<i64>) {
        if let Some(entry) = self.offsets.get_mut(&offset) {
            entry.0 = true;
        }
        self.handling = self.handling.saturating_sub(1);
        if let Some(key) = key
            && let Some(waiting) = self.keys.get_mut(key)
        {
            match waiting.pop_front() {
                Some((next, message)) => {
                    self.ready.insert(next, message);
                }
                None => {
                    self.keys.remove(key);
                }
            }
        }
        let mut start = Vec::new();
        while self.handling < self.max
            && let Some((_, message)) = self.ready.pop_first()
        {
            self.handling += 1;
            start.push(message);
        }
        let mut storable = None;
        while let Some(entry) = self.offsets.first_entry() {
            if !entry.get().0 {
                break;
            }
            storable = Some(*entry.key());
            entry.remove();
        }
        (start, storable)
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
        assert_eq!(order.finish(11, Some("b")), (vec![], None));
        assert_eq!(order.finish(13, None), (vec![], None));
        // 10 finishes: 12 (same key) starts, and 11 is the highest offset with all below done.
        assert_eq!(order.finish(10, Some("a")), (vec![12], Some(11)));
        assert_eq!(order.oldest_unhandled(), Some(3));
        assert_eq!(order.finish(12, Some("a")), (vec![], Some(13)));
        assert!(order.is_empty());
        // The key is free again.
        assert_eq!(order.admit(14, None, Some("a"), 14), Some(14));
    }

    #[test]
    fn the_window_is_four_slots_a_slot_at_most_256_and_never_below_max() {
        assert_eq!(window(0), 4);
        assert_eq!(window(1), 4);
        assert_eq!(window(8), 32);
        assert_eq!(window(64), 256);
        assert_eq!(window(100), 256);
        assert_eq!(window(1024), 1024);
    }

    #[test]
    fn at_most_max_in_handling_and_the_window_between_receipt_and_store() {
        let mut order = KeyOrder::new(2);
        assert_eq!(order.admit(0, None, Some("a"), 0), Some(0));
        assert_eq!(order.admit(1, None, Some("b"), 1), Some(1));
        assert_eq!(order.admit(2, None, Some("c"), 2), None, "no slot");
        assert!(order.has_room());
        assert_eq!(order.admit(3, None, Some("a"), 3), None, "behind 0");
        assert_eq!(order.pending(), 4);
        for offset in 4..8 {
            assert!(order.has_room());
            assert_eq!(order.admit(offset, None, Some("d"), offset), None);
        }
        assert!(!order.has_room(), "window of 8 full");
        // 1 finishes: its slot goes to the lowest ready message (2, not 4).
        assert_eq!(order.finish(1, Some("b")), (vec![2], None));
        // 0 finishes: 3 (its key's next) is ready and lowest: it takes the slot; 0 and 1 stored.
        assert_eq!(order.finish(0, Some("a")), (vec![3], Some(1)));
        assert!(order.has_room());
        assert_eq!(order.finish(2, Some("c")), (vec![4], Some(2)));
        assert_eq!(order.finish(3, Some("a")), (vec![], Some(3)));
        // d's messages one after the other.
        assert_eq!(order.finish(4, Some("d")), (vec![5], Some(4)));
    }

    #[test]
    fn a_slow_message_holds_up_the_store_but_not_the_others() {
        let mut order = KeyOrder::new(2);
        assert_eq!(order.admit(0, None, Some("slow"), 0), Some(0));
        assert_eq!(order.admit(1, None, Some("k1"), 1), Some(1));
        // While 0 is in handling, the other slot goes on through the window.
        for offset in 2..8 {
            let (start, stored) = order.finish(offset - 1, Some(&format!("k{}", offset - 1)));
            assert_eq!(stored, None, "0 is not handled");
            assert!(start.is_empty());
            assert_eq!(
                order.admit(offset, None, Some(&format!("k{offset}")), offset),
                Some(offset)
            );
        }
        assert!(!order.has_room());
        assert_eq!(order.finish(7, Some("k7")), (vec![], None));
        assert_eq!(order.finish(0, Some("slow")), (vec![], Some(7)));
        assert!(order.is_empty());
    }

    #[test]
    fn max_one_is_one_message_at_a_time_in_offset_order() {
        let mut order = KeyOrder::new(1);
        assert_eq!(order.admit(0, None, Some("a"), 0), Some(0));
        assert_eq!(order.admit(1, None, Some("b"), 1), None);
        assert_eq!(order.admit(2, None, Some("a"), 2), None);
        assert_eq!(order.admit(3, None, None, 3), None);
        assert!(!order.has_room(), "a window of 4");
        assert_eq!(order.finish(0, Some("a")), (vec![1], Some(0)));
        assert_eq!(order.finish(1, Some("b")), (vec![2], Some(1)));
        assert_eq!(order.finish(2, Some("a")), (vec![3], Some(2)));
        assert_eq!(order.finish(3, None), (vec![], Some(3)));
        assert!(order.is_empty());
    }

    #[test]
    fn gaps_in_offsets_do_not_hold_the_store_back() {
        let mut order = KeyOrder::new(4);
        order.admit(5, None, Some("a"), 5);
        order.admit(9, None, Some("b"), 9);
        assert_eq!(order.finish(9, Some("b")), (vec![], None));
        assert_eq!(order.finish(5, Some("a")), (vec![], Some(9)));
    }
}
