//! The core contract suite, run once for Jira over every fixture.

thirdparty_core::contract_tests!(crate::support::contract_subject);
