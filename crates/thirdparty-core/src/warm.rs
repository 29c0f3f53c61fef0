//! Cache warming: the sync-metadata cache filled from one paged listing of every organization's
//! scopes ([`crate::CaseApi::list_all_sync_metadata`]) before a reader reports ready, so the
//! first message of each organization after a deploy is not a `list_sync_metadata` round trip.
//!
//! What is cached for an organization is exactly what `list_sync_metadata` would have answered
//! for it (its entries of the listing, in order), so the pre-filter decides the same way warm
//! or cold. Warming is bounded by a number of organizations and a deadline, and never fails:
//! a Case API without the listing, an error or the deadline leave the rest of the cache cold
//! (loaded per organization on first use, as without warming). See `docs/design.md`,
//! "Delivery".

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::case::{SyncMetadata, SyncMetadataPage};
use crate::changelog::Fnv1a;
use crate::error::CaseApiError;
use crate::pipeline::Pipeline;

/// The default bound on the organizations warmed: the default cache capacity.
pub const DEFAULT_WARM_MAX_ORGS: usize = crate::cache::DEFAULT_CAPACITY;

/// The default time warming may take.
pub const DEFAULT_WARM_TIMEOUT: Duration = Duration::from_secs(30);

/// The default number of entries asked for per page.
pub const DEFAULT_WARM_PAGE_SIZE: u32 = 500;

/// Tries of one page on a transient error (`unavailable`, `deadline_exceeded`) before warming
/// gives up: a Case API connection still being set up at start costs a retry, not the warm-up.
pub const WARM_PAGE_TRIES: u32 = 3;

/// The backoff after the first failed try of a page (doubled after each).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Why a warm-up stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarmStop {
    /// Every organization listed is cached.
    Complete,
    /// Warming is off (`warm_max_orgs` is 0).
    Disabled,
    /// The organization bound was reached; the organizations after it stay cold.
    MaxOrgs,
    /// The deadline passed; what was cached stays, the rest is cold.
    Deadline,
    /// The Case API does not offer the listing (`UNIMPLEMENTED`); the cache is cold.
    Unsupported(CaseApiError),
    /// A page failed (after [`WARM_PAGE_TRIES`] tries of a transient error); what was cached
    /// before stays.
    Failed(CaseApiError),
    /// The listing broke its documented order (an organization listed again after another):
    /// what was cached from it may be incomplete, so the metadata cache was cleared.
    Inconsistent(String),
}

impl WarmStop {
    /// A stable name for log lines (`complete`, `disabled`, `max_orgs`, `deadline`,
    /// `unsupported`, `failed`, `inconsistent`).
    pub fn as_str(&self) -> &'static str {
        match self {
            WarmStop::Complete => "complete",
            WarmStop::Disabled => "disabled",
            WarmStop::MaxOrgs => "max_orgs",
            WarmStop::Deadline => "deadline",
            WarmStop::Unsupported(_) => "unsupported",
            WarmStop::Failed(_) => "failed",
            WarmStop::Inconsistent(_) => "inconsistent",
        }
    }
}

/// What a warm-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmOutcome {
    /// Organizations whose sync metadata is now cached.
    pub orgs: u64,
    /// Sync scopes cached, over those organizations.
    pub entries: u64,
    /// Pages received.
    pub pages: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Why it stopped.
    pub stop: WarmStop,
}

#[derive(Debug, Default)]
struct Progress {
    orgs: u64,
    entries: u64,
    pages: u64,
}

impl Pipeline {
    /// Fills the sync-metadata cache from [`crate::CaseApi::list_all_sync_metadata`]: pages
    /// through every organization's scopes for this pipeline's integration and caches each
    /// organization's list once it is complete (the listing is ordered by organization; an
    /// organization split across pages is cached when its last entry is read, never in part).
    /// Organizations without scopes are not listed and stay uncached.
    ///
    /// Bounded by `warm_max_orgs` (never more than `cache_capacity`) and `warm_timeout`; never
    /// fails: an unsupported listing, an error or the deadline are logged and leave the rest
    /// cold. Warmed entries stay fresh for between half and all of `cache_ttl`, spread by
    /// organization, so they do not all expire (and reload) at once. Sets the
    /// `cache_warmed_orgs` gauge. Safe to run while messages are handled: a message that
    /// arrives first loads its organization as it would cold.
    pub async fn warm_caches(&self) -> WarmOutcome {
        let started = Instant::now();
        let config = self.config();
        let max_orgs = config.warm_max_orgs.min(config.cache_capacity);
        let mut progress = Progress::default();
        let stop = if max_orgs == 0 {
            WarmStop::Disabled
        } else {
            let span = tracing::info_span!("warm_caches", flavor = %config.flavor);
            let pages = self
                .warm_pages(u64::try_from(max_orgs).unwrap_or(u64::MAX), &mut progress)
                .instrument(span);
            tokio::time::timeout_at(started + config.warm_timeout, pages)
                .await
                .unwrap_or(WarmStop::Deadline)
        };
        if let WarmStop::Inconsistent(_) = stop {
            self.metadata_cache().clear();
            progress.orgs = 0;
            progress.entries = 0;
        }
        let outcome = WarmOutcome {
            orgs: progress.orgs,
            entries: progress.entries,
            pages: progress.pages,
            elapsed: started.elapsed(),
            stop,
        };
        self.telemetry().cache_warmed(outcome.orgs);
        log(&outcome, self.integration(), max_orgs);
        outcome
    }

    async fn warm_pages(&self, max_orgs: u64, progress: &mut Progress) -> WarmStop {
        let mut token: Option<String> = None;
        // The organization being gathered, cached once its last entry is read.
        let mut current: Option<(u64, Vec<SyncMetadata>)> = None;
        loop {
            let page = match self.warm_page(token.take()).await {
                Ok(page) => page,
                Err(err @ CaseApiError::Unimplemented(_)) => return WarmStop::Unsupported(err),
                Err(err) => return WarmStop::Failed(err),
            };
            progress.pages += 1;
            for entry in page.entries {
                match &mut current {
                    Some((org_id, list)) if *org_id == entry.org_id => {
                        list.push(entry.metadata);
                        continue;
                    }
                    Some((org_id, _)) if entry.org_id < *org_id => {
                        return WarmStop::Inconsistent(format!(
                            "organization {} listed after organization {org_id}",
                            entry.org_id
                        ));
                    }
                    _ => {}
                }
                if let Some((org_id, list)) = current.replace((entry.org_id, vec![entry.metadata]))
                {
                    self.cache_org(org_id, list, progress);
                    if progress.orgs >= max_orgs {
                        return WarmStop::MaxOrgs;
                    }
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        if let Some((org_id, list)) = current {
            self.cache_org(org_id, list, progress);
        }
        WarmStop::Complete
    }

    /// One page, tried again after a backoff on a transient error.
    async fn warm_page(&self, token: Option<String>) -> Result<SyncMetadataPage, CaseApiError> {
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 1;
        loop {
            let page = self
                .api()
                .list_all_sync_metadata(
                    self.integration(),
                    token.clone(),
                    self.config().warm_page_size,
                )
                .await;
            match page {
                Err(err @ (CaseApiError::Unavailable(_) | CaseApiError::DeadlineExceeded(_)))
                    if tries < WARM_PAGE_TRIES =>
                {
                    tracing::info!(error = %err, tries, "cache warming page failed, trying again");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Caches one organization's complete list, as `PreFilterContext::org_metadata` would.
    fn cache_org(&self, org_id: u64, list: Vec<SyncMetadata>, progress: &mut Progress) {
        progress.orgs += 1;
        progress.entries += u64::try_from(list.len()).unwrap_or(u64::MAX);
        let ttl = spread_ttl(self.config().cache_ttl, org_id);
        self.metadata_cache().insert_with_ttl(
            (org_id, self.integration().to_owned()),
            Arc::from(list),
            ttl,
        );
    }
}

/// Between half and all of `ttl`, by a hash of the organization: warmed entries, loaded at one
/// instant, expire spread over the second half of the TTL instead of all at once.
fn spread_ttl(ttl: time::Duration, org_id: u64) -> time::Duration {
    let mut hash = Fnv1a::default();
    hash.write(&org_id.to_le_bytes());
    let share = i128::from(hash.0 % 1024);
    let ms = ttl.whole_milliseconds().max(0);
    let spread = ms / 2 + (ms - ms / 2) * share / 1024;
    time::Duration::milliseconds(i64::try_from(spread).unwrap_or(i64::MAX))
}

/// One line per warm-up: info when it did what it could, warn when it stopped short.
fn log(outcome: &WarmOutcome, integration: &str, max_orgs: usize) {
    let elapsed_ms = u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX);
    let (orgs, entries, pages) = (outcome.orgs, outcome.entries, outcome.pages);
    let stop = outcome.stop.as_str();
    match &outcome.stop {
        WarmStop::Complete => tracing::info!(
            integration,
            orgs,
            entries,
            pages,
            elapsed_ms,
            stop,
            "sync metadata cache warmed"
        ),
        WarmStop::Disabled => tracing::info!(integration, stop, "cache warming off"),
        WarmStop::MaxOrgs => tracing::info!(
            integration,
            orgs,
            entries,
            pages,
            elapsed_ms,
            max_orgs,
            stop,
            "cache warming stopped at its organization bound; later organizations start cold"
        ),
        WarmStop::Deadline => tracing::warn!(
            integration,
            orgs,
            entries,
            pages,
            elapsed_ms,
            stop,
            "cache warming ran out of time; the rest starts cold"
        ),
        WarmStop::Unsupported(err) => tracing::info!(
            integration, error = %err, elapsed_ms, stop,
            "the case api cannot list all sync metadata; starting with a cold cache"
        ),
        WarmStop::Failed(err) => tracing::warn!(
            integration, error = %err, orgs, entries, pages, elapsed_ms, stop,
            "cache warming failed; the rest starts cold"
        ),
        WarmStop::Inconsistent(why) => tracing::warn!(
            integration, why = %why, pages, elapsed_ms, stop,
            "sync metadata listed out of order; metadata cache cleared, starting cold"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_ttl_is_between_half_and_all_of_the_ttl_and_spreads() {
        let ttl = time::Duration::minutes(5);
        let spread: std::collections::BTreeSet<i128> = (0..1000u64)
            .map(|org| spread_ttl(ttl, org))
            .inspect(|t| assert!(*t >= ttl / 2 && *t <= ttl, "{t}"))
            .map(|t| t.whole_seconds().into())
            .collect();
        assert!(spread.len() > 100, "{} distinct seconds", spread.len());
        assert_eq!(
            spread_ttl(ttl, 7),
            spread_ttl(ttl, 7),
            "stable per organization"
        );
        assert_eq!(
            spread_ttl(time::Duration::ZERO, 7),
            time::Duration::ZERO,
            "nothing to spread"
        );
        assert!(spread_ttl(time::Duration::MAX, 7) <= time::Duration::MAX);
    }
}
