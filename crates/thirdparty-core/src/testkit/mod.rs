//! Test support for integration crates (feature `testkit`): an in-memory [`crate::CaseApi`] and
//! the generic contract suite.

// Test support: failing loudly is the point here.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod contract;
pub mod in_memory;

pub use in_memory::InMemoryCaseApi;
