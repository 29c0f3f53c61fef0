//! Arbitrary bytes as a ServiceNow event: the decoder must return changelogs or a `DecodeError`,
//! never panic, and every changelog it returns must say `servicenow`.
#![no_main]

use integration_servicenow::ServiceNowDecoder;
use libfuzzer_sys::fuzz_target;
use thirdparty_core::Decoder;

fuzz_target!(|data: &[u8]| {
    let decoder = ServiceNowDecoder::new();
    if let Ok(changelogs) = decoder.decode(data) {
        for changelog in &changelogs {
            assert_eq!(changelog.integration, "servicenow");
        }
    }
});
