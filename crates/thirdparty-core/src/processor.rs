//! Applying a changelog that passed every filter.

use std::fmt;

use async_trait::async_trait;

use crate::case::{Case, SyncSettings};
use crate::case_api::CaseApi;
use crate::changelog::Changelog;
use crate::error::CaseApiError;
use crate::filter_reason::FilterReason;

/// What processing a changelog did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessOutcome {
    /// The change was written.
    Applied,
    /// Nothing was written, for this reason (e.g. the assignee matched no user, the comment was
    /// a replay).
    Filtered(FilterReason),
}

/// Applies one changelog to its case through the [`CaseApi`].
///
/// Contract:
/// - writes at most one field update (with `expected_version = case.version`) or one comment
///   (with a key derived from the source, so a replay never duplicates it);
/// - on [`CaseApiError::VersionMismatch`] returns the error unchanged: the pipeline re-reads the
///   case, filters again and calls `process` again, a bounded number of times;
/// - any other API error is returned as is and classified by the pipeline (skip or retry);
/// - does every read and write through `api`, and writes nothing any other way: a dry run
///   (`explain`, `run --dry-run`, `replay` before `--apply`) calls it with
///   [`crate::ReadOnly`], which writes nothing and answers each write as it would have gone,
///   so the outcome it returns there is the one a live run would take.
#[async_trait]
pub trait Processor: Send + Sync + fmt::Debug {
    /// Applies `changelog` to `case` under `settings`.
    async fn process(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
        api: &dyn CaseApi,
    ) -> Result<ProcessOutcome, CaseApiError>;
}
