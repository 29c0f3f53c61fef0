//! End-to-end tests of the Jira integration through `thirdparty_core::Pipeline` and the
//! in-memory case API. One test binary, several modules (cheaper to build and link).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod applied;
mod contract;
mod mutations;
mod reasons;
mod sites_and_conflicts;
mod support;
