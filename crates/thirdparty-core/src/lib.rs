//! Everything the third-party readers share, free of Kafka and of generated gRPC types.
//!
//! - [`Changelog`]: the normalized change every integration decodes into;
//! - [`FilterReason`]: the closed set of reasons a changelog is dropped;
//! - [`Decoder`], [`Filterer`], [`Processor`]: what an integration implements;
//! - [`CaseApi`]: what the stages call to read and write cases;
//! - [`Pipeline`]: the runner (decode -> pre-filter -> look-up -> filter -> process);
//! - [`HandleError::class`]: the one place errors are classified (skip / retry / discard);
//! - [`TtlCache`]: TTL + capacity caches for metadata and settings;
//! - [`Pipeline::warm_caches`]: fills the sync-metadata cache before a reader reports ready;
//! - `testkit` (feature): an in-memory [`CaseApi`] and the contract suite every integration runs.

pub mod assignee;
pub mod cache;
pub mod case;
pub mod case_api;
pub mod changelog;
pub mod clock;
pub mod decision;
pub mod decoder;
pub mod error;
pub mod filter_reason;
pub mod filterer;
pub mod json;
pub mod pipeline;
pub mod processor;
pub mod read_only;
pub mod rules;
pub mod skip_list;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod warm;

pub use cache::{CacheStats, TtlCache};
pub use case::{
    Case, CaseUpdate, Comment, CommentOutcome, ConflictPolicy, ExternalReference, FieldChange,
    FieldWrite, NewComment, SourceWatermark, SyncMetadata, SyncMetadataEntry, SyncMetadataPage,
    SyncSettings, SyncType, SyncWrite, UpdateWriter, User, UserQuery, Writer,
};
pub use case_api::CaseApi;
pub use changelog::{Author, CaseField, Changelog, ChangelogType, Fnv1a, normalize_site, present};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{DecisionKind, DecisionRecord, DecisionSink};
pub use decoder::Decoder;
pub use error::{CaseApiError, DecodeError, ErrorClass, HandleError};
pub use filter_reason::{FilterReason, IntegrationReason};
pub use filterer::{CaseLookup, Filterer, PreFilterContext};
pub use pipeline::{
    ChangelogReport, Decision, MessageOutcome, Payload, Pipeline, PipelineBuilder, PipelineConfig,
};
pub use processor::{ProcessOutcome, Processor};
pub use read_only::ReadOnly;
pub use skip_list::{MessagePosition, SkipEntry, SkipList};
pub use warm::{WarmOutcome, WarmStop};
