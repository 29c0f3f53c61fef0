//! The jira integration.
