//! Arbitrary bytes through both decoders; whatever decodes must survive a round trip through
//! the changelog's JSON form: `Changelog` -> JSON -> `Changelog` is the identity.
#![no_main]

use integration_jira::JiraDecoder;
use integration_servicenow::ServiceNowDecoder;
use libfuzzer_sys::fuzz_target;
use thirdparty_core::{Changelog, Decoder};

fn round_trip(changelogs: &[Changelog]) {
    for changelog in changelogs {
        let json = serde_json::to_vec(changelog).expect("a changelog serializes");
        let mut back: Changelog =
            serde_json::from_slice(&json).expect("a serialized changelog parses");
        // The site is not part of the JSON form (the integration's metadata names it).
        back.site.clone_from(&changelog.site);
        assert_eq!(
            &back,
            changelog,
            "round trip of {}",
            String::from_utf8_lossy(&json)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(changelogs) = JiraDecoder::new().decode(data) {
        round_trip(&changelogs);
    }
    if let Ok(changelogs) = ServiceNowDecoder::new().decode(data) {
        round_trip(&changelogs);
    }
});
