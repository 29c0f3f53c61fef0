//! Decoding a message value into normalized changelogs.

use std::fmt;

use crate::changelog::Changelog;
use crate::error::DecodeError;

/// Turns one message value (the bytes of a Kafka record) into changelogs.
///
/// Contract:
/// - pure and synchronous: no I/O, no clock, no shared state; the same bytes always give the
///   same result;
/// - never panics, whatever the bytes (the contract suite feeds arbitrary and mutated input);
/// - one webhook may yield zero or more changelogs, each complete on its own (org, item, time),
///   all about one item (same org, integration, site and id): a runtime orders messages by that
///   item and handles different items' messages concurrently;
/// - malformed bytes are [`DecodeError::Malformed`] (skipped), valid JSON that fails validation
///   is [`DecodeError::Invalid`] and unknown events [`DecodeError::UnsupportedEvent`] (discarded).
pub trait Decoder: Send + Sync + fmt::Debug {
    /// The integration name this decoder produces changelogs for (`Changelog::integration`,
    /// the settings and metadata key, the default flavor).
    fn integration(&self) -> &'static str;

    /// Decodes one message value.
    fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError>;

    /// The integration's own tags on the end-to-end latency distribution, as
    /// `(tag, changelog metadata key)` pairs: each applied changelog's metadata value under
    /// that key becomes the tag's value (empty when absent). None by default.
    fn latency_tags(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}
