//! End-to-end tests: ServiceNow events through `thirdparty_core::Pipeline` against the in-memory
//! case API, plus the core contract suite.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod lookup;
mod reasons;
mod sites_and_ordering;
mod world;

thirdparty_core::contract_tests!(crate::contract::subject);
