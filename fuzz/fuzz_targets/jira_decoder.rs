//! Arbitrary bytes as a Jira envelope (the Kafka message value): the decoder must return
//! changelogs or a `DecodeError`, never panic, and every changelog it returns must say `jira`.
#![no_main]

use integration_jira::JiraDecoder;
use libfuzzer_sys::fuzz_target;
use thirdparty_core::Decoder;

fuzz_target!(|data: &[u8]| {
    let decoder = JiraDecoder::new();
    if let Ok(changelogs) = decoder.decode(data) {
        for changelog in &changelogs {
            assert_eq!(changelog.integration, "jira");
        }
    }
});
