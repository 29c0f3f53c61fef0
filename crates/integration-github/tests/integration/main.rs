//! The GitHub integration through `thirdparty_core::Pipeline` and the in-memory case API, on
//! webhook bodies GitHub sent (`fixtures/webhooks/`). One test binary, several modules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod reasons;
mod scenarios;
mod support;
