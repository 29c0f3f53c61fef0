//! The ServiceNow integration: turns ServiceNow incident diff events into normalized
//! [`Changelog`](thirdparty_core::Changelog)s and applies them to cases.
//!
//! - [`ServiceNowDecoder`]: the diff event (`type`, `orgId`, `sysId`, `instanceName`,
//!   `updatedAt`, `updatedBy`, `data`) -> one changelog per comment, work note and state change;
//! - [`ServiceNowFilterer`]: sync-cycle detection and configured-instance check (pre-filter), then
//!   sync switches, state mapping, closed cases, old, out-of-order and no-op changes (filter);
//! - [`ServiceNowProcessor`]: status through a versioned case update, comments and work notes as
//!   idempotent timeline entries.
//!
//! The stages are wired together by [`thirdparty_core::Pipeline`].

mod decoder;
mod filterer;
mod processor;

pub use decoder::{DEFAULT_MAX_EVENT_BYTES, INCIDENT_EVENT_TYPES, ServiceNowDecoder};
pub use filterer::{DEFAULT_OWN_USER_NAMES, ServiceNowFilterer};
pub use processor::{ServiceNowProcessor, comment_idempotency_key};

/// The integration name: `Changelog::integration`, the settings and metadata key, the flavor.
pub const INTEGRATION: &str = "servicenow";

/// The changelog metadata key holding the event's `instanceName`, matched against the scope of
/// the organization's sync metadata.
pub const METADATA_INSTANCE_NAME: &str = "instance_name";
