//! The Jira integration: turns Jira Cloud and Jira Server webhooks into case changes.
//!
//! - [`JiraDecoder`]: the Jira message envelope (`docs/design.md`, "Kafka messages") to normalized
//!   [`Changelog`](thirdparty_core::Changelog)s, one per changelog item or comment;
//! - [`JiraFilterer`]: the pre-filter (sync cycles, the organization's `(account, project,
//!   issue type)` sync metadata, custom fields) and the filter (sync switches, value mappings,
//!   state conflicts, time windows, no-op changes);
//! - [`JiraProcessor`]: applies what passed through the
//!   [`CaseApi`](thirdparty_core::CaseApi) (versioned field writes, assignee resolution, due
//!   dates, idempotent comments).
//!
//! Wire these into a [`thirdparty_core::Pipeline`]; the crate does no I/O of its own.

#![warn(missing_docs)]

pub mod decoder;
pub mod filterer;
pub mod processor;

mod dates;

pub use decoder::{DEFAULT_MAX_PAYLOAD_BYTES, JiraDecoder};
pub use filterer::JiraFilterer;
pub use processor::JiraProcessor;

/// The integration name: `Changelog::integration`, settings and metadata lookups, the flavor.
pub const INTEGRATION: &str = "jira";

/// Changelog metadata key of the Jira site (the envelope's `jiraAccountId`).
pub const META_ACCOUNT_ID: &str = "account_id";
/// Changelog metadata key of the Jira project id (`issue.fields.project.id`).
pub const META_PROJECT_ID: &str = "project_id";
/// Changelog metadata key of the Jira issue type id (`issue.fields.issuetype.id`).
pub const META_ISSUE_TYPE_ID: &str = "issue_type_id";

/// Jira's own filter reason: the project's per-field bidirectional switch for this field is off
/// (`field_jira_bi_sync_disabled`, the name operators key on).
pub const FIELD_JIRA_BI_SYNC_DISABLED: thirdparty_core::FilterReason =
    thirdparty_core::FilterReason::Integration(thirdparty_core::IntegrationReason::new(
        "field_jira_bi_sync_disabled",
        "The project's per-field bidirectional switch for this field is off.",
    ));

/// The filter reasons Jira owns besides the core's.
pub const REASONS: &[thirdparty_core::FilterReason] = &[FIELD_JIRA_BI_SYNC_DISABLED];
