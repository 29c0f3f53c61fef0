//! The core contract suite, run once for GitHub over every fixture.

thirdparty_core::contract_tests!(crate::support::contract_subject);
