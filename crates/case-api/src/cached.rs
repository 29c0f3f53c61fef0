//! A [`CaseApi`] decorator caching project settings and sync metadata (the
//! `CacheSettingsClient`).

use std::sync::Arc;

use async_trait::async_trait;
use thirdparty_core::cache::{DEFAULT_CAPACITY, DEFAULT_TTL, MetadataCache, SettingsCache};
use thirdparty_core::{
    CacheStats, Case, CaseApi, CaseApiError, CaseUpdate, Clock, Comment, CommentOutcome,
    ExternalReference, NewComment, SyncMetadata, SyncSettings, SystemClock, TtlCache, User,
    UserQuery,
};

/// Size and freshness of the caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a loaded entry (including "not configured") is served.
    pub ttl: time::Duration,
    /// How many entries each cache holds before evicting.
    pub capacity: usize,
}

impl Default for CacheConfig {
    /// A 5-minute TTL and 10,000 entries.
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Wraps any [`CaseApi`]: `get_project_settings` and `list_sync_metadata` are answered from
/// TTL + capacity-bounded caches (absence is cached too; errors are not), every other call
/// passes straight through. Concurrent misses on one key make one call.
#[derive(Debug)]
pub struct CachedSettingsClient<A> {
    inner: A,
    settings: SettingsCache,
    metadata: MetadataCache,
}

impl<A: CaseApi> CachedSettingsClient<A> {
    /// Caches in front of `inner`, timed by `clock`.
    pub fn new(inner: A, config: CacheConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            settings: TtlCache::new(config.capacity, config.ttl, clock.clone()),
            metadata: TtlCache::new(config.capacity, config.ttl, clock),
        }
    }

    /// Caches with the default TTL and capacity on the system clock.
    pub fn with_defaults(inner: A) -> Self {
        Self::new(inner, CacheConfig::default(), Arc::new(SystemClock))
    }

    /// The wrapped client.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Drops every cached entry (e.g. after an operator changed settings).
    pub fn invalidate(&self) {
        self.settings.clear();
        self.metadata.clear();
    }

    /// Hits and loads of the settings cache.
    pub fn settings_stats(&self) -> CacheStats {
        self.settings.stats()
    }

    /// Hits and loads of the metadata cache.
    pub fn metadata_stats(&self) -> CacheStats {
        self.metadata.stats()
    }
}

#[async_trait]
impl<A: CaseApi> CaseApi for CachedSettingsClient<A> {
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError> {
        self.inner.get_case(org_id, case_id).await
    }

    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        self.inner
            .find_case_by_external_reference(org_id, reference)
            .await
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        self.inner.update_case(update).await
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        self.inner.add_comment(comment).await
    }

    async fn list_comments(
        &self,
        org_id: u64,
        case_id: &str,
    ) -> Result<Vec<Comment>, CaseApiError> {
        self.inner.list_comments(org_id, case_id).await
    }

    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        let key = (org_id, project_id.to_owned(), integration.to_owned());
        let cached = self
            .settings
            .get_or_try_load(&key, || async {
                let settings = self
                    .inner
                    .get_project_settings(org_id, project_id, integration)
                    .await?;
                Ok::<_, CaseApiError>(settings.map(Arc::new))
            })
            .await?;
        Ok(cached.map(|s| (*s).clone()))
    }

    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError> {
        let key = (org_id, integration.to_owned());
        let cached = self
            .metadata
            .get_or_try_load(&key, || async {
                let metadata = self.inner.list_sync_metadata(org_id, integration).await?;
                Ok::<_, CaseApiError>(Arc::<[SyncMetadata]>::from(metadata))
            })
            .await?;
        Ok(cached.to_vec())
    }

    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError> {
        self.inner.resolve_user(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::{ManualClock, SyncType};
    use time::macros::datetime;

    fn settings(project: &str) -> SyncSettings {
        SyncSettings {
            org_id: 1,
            project_id: project.into(),
            integration: "jira".into(),
            integration_enabled: true,
            project_sync_enabled: true,
            sync_type: SyncType::Bidirectional,
            field_sync: BTreeMap::new(),
            comment_sync_enabled: true,
            work_note_sync_enabled: true,
            value_mappings: BTreeMap::new(),
            custom_fields: BTreeMap::new(),
            start_syncing_from: None,
            conflict_policy: Default::default(),
            field_conflict_policies: Default::default(),
        }
    }

    fn metadata() -> SyncMetadata {
        SyncMetadata {
            org_id: 1,
            integration: "jira".into(),
            project_id: "p1".into(),
            scope: BTreeMap::new(),
            custom_fields: BTreeMap::new(),
            own_user_ids: Default::default(),
        }
    }

    fn client() -> (
        CachedSettingsClient<Arc<InMemoryCaseApi>>,
        Arc<InMemoryCaseApi>,
        Arc<ManualClock>,
    ) {
        let api = Arc::new(InMemoryCaseApi::new());
        api.insert_settings(settings("p1"));
        api.insert_metadata(metadata());
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        let config = CacheConfig {
            ttl: time::Duration::minutes(5),
            capacity: 100,
        };
        (
            CachedSettingsClient::new(api.clone(), config, clock.clone()),
            api,
            clock,
        )
    }

    #[tokio::test]
    async fn settings_are_loaded_once_per_ttl_and_absence_is_cached() {
        let (cached, api, clock) = client();
        for _ in 0..3 {
            let s = cached.get_project_settings(1, "p1", "jira").await.unwrap();
            assert_eq!(s, Some(settings("p1")));
        }
        assert_eq!(api.calls().get_project_settings, 1);
        for _ in 0..2 {
            assert_eq!(
                cached
                    .get_project_settings(1, "nope", "jira")
                    .await
                    .unwrap(),
                None
            );
        }
        assert_eq!(api.calls().get_project_settings, 2, "absence cached");
        clock.advance(time::Duration::minutes(5));
        cached.get_project_settings(1, "p1", "jira").await.unwrap();
        assert_eq!(
            api.calls().get_project_settings,
            3,
            "reloaded after the TTL"
        );
        assert_eq!(cached.settings_stats(), CacheStats { hits: 3, loads: 3 });
    }

    #[tokio::test]
    async fn metadata_is_cached_and_invalidate_forgets_it() {
        let (cached, api, _clock) = client();
        for _ in 0..3 {
            assert_eq!(
                cached.list_sync_metadata(1, "jira").await.unwrap(),
                vec![metadata()]
            );
        }
        assert_eq!(api.calls().list_sync_metadata, 1);
        cached.invalidate();
        cached.list_sync_metadata(1, "jira").await.unwrap();
        assert_eq!(api.calls().list_sync_metadata, 2);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let (cached, api, _clock) = client();
        api.fail_next([CaseApiError::Unavailable("down".into())]);
        let err = cached
            .get_project_settings(1, "p1", "jira")
            .await
            .unwrap_err();
        assert!(matches!(err, CaseApiError::Unavailable(_)));
        assert!(
            cached
                .get_project_settings(1, "p1", "jira")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(api.calls().get_project_settings, 2);
    }

    #[tokio::test]
    async fn every_other_call_passes_through() {
        let (cached, api, _clock) = client();
        assert_eq!(cached.get_case(1, "c").await.unwrap(), None);
        assert_eq!(cached.get_case(1, "c").await.unwrap(), None);
        assert_eq!(
            cached
                .find_case_by_external_reference(1, &ExternalReference::new("jira", "a", "1"))
                .await
                .unwrap(),
            None
        );
        assert!(cached.list_comments(1, "c").await.unwrap().is_empty());
        assert_eq!(
            cached.resolve_user(&UserQuery::default()).await.unwrap(),
            None
        );
        let calls = api.calls();
        assert_eq!(calls.get_case, 2);
        assert_eq!(calls.find_case, 1);
        assert_eq!(calls.list_comments, 1);
        assert_eq!(calls.resolve_user, 1);
    }
}
