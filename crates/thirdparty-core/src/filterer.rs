//! The two filtering stages: the cheap pre-filter and the filter after the case look-up.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::{MetadataCache, SettingsCache};
use crate::case::{Case, ExternalReference, SyncMetadata, SyncSettings};
use crate::case_api::CaseApi;
use crate::changelog::Changelog;
use crate::error::CaseApiError;
use crate::filter_reason::FilterReason;

/// How the pipeline finds the case a changelog applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseLookup {
    /// By case id (a correlation id the source carries), falling back to the external reference when no
    /// case has that id.
    ById {
        /// The case id the event names.
        case_id: String,
        /// The third-party item (integration, site, id) to try next.
        fallback_reference: Option<ExternalReference>,
    },
    /// By the third-party item (integration, site, id) linked to the case.
    ByExternalReference(ExternalReference),
}

/// What the pre-filter may use: the organization's sync metadata and a project's sync settings,
/// served from TTL caches that refresh themselves at most once per TTL per key. Nothing else
/// reaches the network.
#[derive(Debug)]
pub struct PreFilterContext<'a> {
    cache: &'a MetadataCache,
    settings: Option<&'a SettingsCache>,
    api: &'a dyn CaseApi,
    integration: &'a str,
}

impl<'a> PreFilterContext<'a> {
    /// A context over a metadata cache and the API it refreshes from.
    pub fn new(cache: &'a MetadataCache, api: &'a dyn CaseApi, integration: &'a str) -> Self {
        Self {
            cache,
            settings: None,
            api,
            integration,
        }
    }

    /// Serves [`PreFilterContext::project_settings`] from this cache (the pipeline's, shared
    /// with the look-up after the pre-filter); without one, each call asks the API.
    pub fn with_settings(mut self, settings: &'a SettingsCache) -> Self {
        self.settings = Some(settings);
        self
    }

    /// A case project's sync settings for this integration, when an integration decides in the
    /// pre-filter by them (for example a label that the project maps to a priority).
    pub async fn project_settings(
        &self,
        org_id: u64,
        project_id: &str,
    ) -> Result<Option<Arc<SyncSettings>>, CaseApiError> {
        let load = || async {
            let found = self
                .api
                .get_project_settings(org_id, project_id, self.integration)
                .await?;
            Ok(found.map(Arc::new))
        };
        match self.settings {
            Some(cache) => {
                let key = (org_id, project_id.to_owned(), self.integration.to_owned());
                cache.get_or_try_load(&key, load).await
            }
            None => load().await,
        }
    }

    /// The organization's sync scopes for this integration (cached).
    pub async fn org_metadata(&self, org_id: u64) -> Result<Arc<[SyncMetadata]>, CaseApiError> {
        let key = (org_id, self.integration.to_owned());
        self.cache
            .get_or_try_load(&key, || async {
                let list = self
                    .api
                    .list_sync_metadata(org_id, self.integration)
                    .await?;
                Ok(Arc::from(list))
            })
            .await
    }
}

/// Decides which changelogs must not be applied, and why.
///
/// Lifecycle, per changelog: [`Filterer::pre_filter`] first (cheap, may rewrite the changelog,
/// e.g. a configured custom field becomes `update_due_date`); if it passes, the pipeline finds
/// the case through [`Filterer::case_lookup`] and the case project's settings, then calls
/// [`Filterer::filter`]. After a version conflict the pipeline re-reads the case and calls
/// `filter` again, so `filter` must be a pure function of its arguments. Returning a reason drops
/// the changelog: it is counted under that reason and its message acknowledged.
#[async_trait]
pub trait Filterer: Send + Sync + fmt::Debug {
    /// Drops what can be decided without looking up the case: sync cycles (our own writes
    /// echoed back), scopes the organization has not configured, unconfigured custom fields.
    /// Performs no I/O beyond the metadata cache refresh of `ctx`.
    async fn pre_filter(
        &self,
        changelog: &mut Changelog,
        ctx: &PreFilterContext<'_>,
    ) -> Result<Option<FilterReason>, CaseApiError>;

    /// How to find the case. The default: the changelog's `case_reference` by id (falling back
    /// to its item), else its item (integration, site, `third_party_id`) as external
    /// reference; an event with neither is [`FilterReason::MissingCaseReference`].
    fn case_lookup(&self, changelog: &Changelog) -> Result<CaseLookup, FilterReason> {
        let reference = Some(changelog.item()).filter(|r| !r.reference.is_empty());
        match (&changelog.case_reference, reference) {
            (Some(case_id), fallback) if !case_id.is_empty() => Ok(CaseLookup::ById {
                case_id: case_id.clone(),
                fallback_reference: fallback,
            }),
            (_, Some(reference)) => Ok(CaseLookup::ByExternalReference(reference)),
            (_, None) => Err(FilterReason::MissingCaseReference),
        }
    }

    /// Drops what the case and its project's settings forbid: disabled sync, unmapped values,
    /// state conflicts, old or out-of-order events, no-op changes. Pure: no I/O.
    fn filter(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
    ) -> Option<FilterReason>;
}
