//! Test support for integration crates (feature `testkit`): an in-memory [`crate::CaseApi`] and
//! the generic contract suite.

pub mod contract;
pub mod in_memory;

pub use in_memory::InMemoryCaseApi;
