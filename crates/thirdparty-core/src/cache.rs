//! TTL + capacity-bounded caches (over `quick_cache`) for sync metadata and settings.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use time::{Duration, OffsetDateTime};

use crate::case::{SyncMetadata, SyncSettings};
use crate::clock::Clock;

/// The default time a cached entry stays fresh (the seed's 5 minutes).
pub const DEFAULT_TTL: Duration = Duration::minutes(5);

/// The default number of entries a cache holds before evicting the least useful.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Per-org sync metadata, keyed by `(org_id, integration)`.
pub type MetadataCache = TtlCache<(u64, String), Arc<[SyncMetadata]>>;

/// Project settings (or their absence), keyed by `(org_id, project_id, integration)`.
pub type SettingsCache = TtlCache<(u64, String, String), Option<Arc<SyncSettings>>>;

#[derive(Clone)]
struct Entry<V> {
    value: V,
    expires_at: OffsetDateTime,
}

/// A cache whose entries expire `ttl` after they were loaded and whose size is bounded
/// (quick_cache's CLOCK-Pro eviction). Concurrent misses on one key load it once.
pub struct TtlCache<K, V> {
    inner: Cache<K, Entry<V>>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    hits: AtomicU64,
    loads: AtomicU64,
}

impl<K, V> fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlCache")
            .field("ttl", &self.ttl)
            .field("hits", &self.hits.load(Ordering::Relaxed))
            .field("loads", &self.loads.load(Ordering::Relaxed))
            .finish()
    }
}

/// Hit and load counts of a cache since it was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Look-ups answered from the cache.
    pub hits: u64,
    /// Look-ups that called the loader.
    pub loads: u64,
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// A cache of at most `capacity` entries, each fresh for `ttl`.
    pub fn new(capacity: usize, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Cache::new(capacity.max(1)),
            ttl,
            clock,
            hits: AtomicU64::new(0),
            loads: AtomicU64::new(0),
        }
    }

    /// The fresh value for `key`, or the result of `load` (cached on success; errors are not
    /// cached, so the next look-up tries again).
    pub async fn get_or_try_load<F, Fut, E>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let now = self.clock.now();
        if let Some(entry) = self.inner.get(key) {
            if entry.expires_at > now {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.value);
            }
            self.inner.remove(key);
        }
        match self.inner.get_value_or_guard_async(key).await {
            Ok(entry) if entry.expires_at > now => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(entry.value)
            }
            Ok(_) => {
                // Another task stored an entry that expired meanwhile: load without the guard.
                let value = self.load(load).await?;
                self.inner.insert(key.clone(), self.entry(value.clone()));
                Ok(value)
            }
            Err(guard) => {
                let value = self.load(load).await?;
                let _ = guard.insert(self.entry(value.clone()));
                Ok(value)
            }
        }
    }

    /// Drops every entry (e.g. after a configuration change).
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Hit and load counts.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
        }
    }

    async fn load<F, Fut, E>(&self, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.loads.fetch_add(1, Ordering::Relaxed);
        load().await
    }

    fn entry(&self, value: V) -> Entry<V> {
        Entry {
            value,
            expires_at: self.clock.now() + self.ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;

    #[tokio::test]
    async fn entries_expire_after_the_ttl_and_errors_are_not_cached() {
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        let cache: TtlCache<u32, u32> = TtlCache::new(10, Duration::minutes(5), clock.clone());
        let v = cache
            .get_or_try_load(&1, || async { Ok::<_, ()>(10) })
            .await;
        assert_eq!(v, Ok(10));
        let v = cache
            .get_or_try_load(&1, || async { Ok::<_, ()>(20) })
            .await;
        assert_eq!(v, Ok(10), "fresh entry served from cache");
        clock.advance(Duration::minutes(5));
        let v = cache
            .get_or_try_load(&1, || async { Ok::<_, ()>(30) })
            .await;
        assert_eq!(v, Ok(30), "expired entry reloaded");
        let e = cache
            .get_or_try_load(&2, || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(e, Err("down"));
        let v = cache
            .get_or_try_load(&2, || async { Ok::<_, &str>(2) })
            .await;
        assert_eq!(v, Ok(2), "an error is not cached");
        assert_eq!(cache.stats(), CacheStats { hits: 1, loads: 4 });
    }

    #[tokio::test]
    async fn capacity_is_bounded() {
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        let cache: TtlCache<u32, u32> = TtlCache::new(16, Duration::minutes(5), clock);
        for k in 0..1000 {
            let _ = cache
                .get_or_try_load(&k, || async move { Ok::<_, ()>(k) })
                .await;
        }
        assert!(cache.inner.len() <= 32, "len {}", cache.inner.len());
    }
}
