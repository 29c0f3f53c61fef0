//! The GitHub Issues integration: turns GitHub `issues` and `issue_comment` webhooks into
//! normalized [`Changelog`](thirdparty_core::Changelog)s and applies them to cases.
//!
//! - [`GitHubDecoder`]: the envelope (`orgId`, `host`, `event`, `deliveryId`, `webhook`) ->
//!   one changelog per change (title and body edits, assignment, close and reopen, labels,
//!   new comments); every other event and action, and anything on a pull request, is an
//!   unsupported event;
//! - [`GitHubFilterer`]: sync-cycle detection (our App's bot and configured accounts), the
//!   repository's scope and labels the project maps to a priority (pre-filter), then the
//!   settings' switches, mappings, ordering and conflicts (filter);
//! - [`GitHubProcessor`]: fields through a versioned case update, assignees resolved to case
//!   users, comments as idempotent timeline entries.
//!
//! The stages are wired together by [`thirdparty_core::Pipeline`]. The message format and the
//! mapping are in `docs/design.md`, "GitHub Issues".

mod decoder;
mod filterer;
mod processor;

pub use decoder::{DEFAULT_MAX_EVENT_BYTES, GitHubDecoder};
pub use filterer::{DEFAULT_OWN_LOGINS, GitHubFilterer};
pub use processor::{GitHubProcessor, comment_idempotency_key};

/// The integration name: `Changelog::integration`, the settings and metadata key, the flavor.
pub const INTEGRATION: &str = "github";

/// Changelog metadata key holding the GitHub host (`github.com`, or an Enterprise Server's),
/// matched against the scope of the organization's sync metadata.
pub const META_ACCOUNT_ID: &str = "account_id";

/// Changelog metadata key holding the repository id, matched against the scope.
pub const META_PROJECT_ID: &str = "project_id";

/// The changelog type name (after `unsupported_`) of a label added or removed: turned into
/// `update_priority` when the project maps the label's name to a priority.
pub const LABEL: &str = "label";

/// `to_id` of an open issue, and `from_id` of a reopened one.
pub const STATE_OPEN: &str = "open";

/// `to_id` prefix of a closed issue: `closed:completed`, `closed:not_planned`, or `closed` when
/// GitHub sends no reason.
pub const STATE_CLOSED: &str = "closed";
