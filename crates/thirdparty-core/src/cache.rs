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

/// The default time a cached entry stays fresh (5 minutes, `docs/design.md`, "Names operators key on").
pub const DEFAULT_TTL: Duration = Duration::minutes(5);

/// The default time a negative answer (no settings, no sync metadata) stays fresh: short, so a
/// project or organization configured a moment ago is seen within seconds, not after a full TTL.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::seconds(30);

/// The default number of entries a cache holds before evicting the least useful.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Per-org sync metadata, keyed by `(org_id, integration)`. An empty list is a negative answer.
pub type MetadataCache = TtlCache<(u64, String), Arc<[SyncMetadata]>>;

/// Project settings (or their absence), keyed by `(org_id, project_id, integration)`. `None` is a
/// negative answer.
pub type SettingsCache = TtlCache<(u64, String, String), Option<Arc<SyncSettings>>>;

impl MetadataCache {
    /// A sync-metadata cache: lists fresh for `ttl`, an empty list (nothing configured for the
    /// organization yet) for `negative_ttl` only.
    pub fn metadata(
        capacity: usize,
        ttl: Duration,
        negative_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::new(capacity, ttl, clock).with_negative_ttl(negative_ttl, |list| list.is_empty())
    }
}

impl SettingsCache {
    /// A project-settings cache: settings fresh for `ttl`, their absence (the project is not
    /// configured yet) for `negative_ttl` only.
    pub fn settings(
        capacity: usize,
        ttl: Duration,
        negative_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::new(capacity, ttl, clock).with_negative_ttl(negative_ttl, Option::is_none)
    }
}

/// How long a negative answer stays fresh, and which values are negative answers.
struct Negative<V> {
    ttl: Duration,
    is_negative: fn(&V) -> bool,
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    expires_at: OffsetDateTime,
}

/// A cache whose entries expire `ttl` after they were loaded and whose size is bounded
/// (quick_cache's CLOCK-Pro eviction). Concurrent misses on one key load it once. Values a
/// predicate calls negative ([`TtlCache::with_negative_ttl`]) expire sooner.
pub struct TtlCache<K, V> {
    inner: Cache<K, Entry<V>>,
    ttl: Duration,
    negative: Option<Negative<V>>,
    clock: Arc<dyn Clock>,
    hits: AtomicU64,
    loads: AtomicU64,
}

impl<K, V> fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlCache")
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative.as_ref().map(|n| n.ttl))
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
            negative: None,
            clock,
            hits: AtomicU64::new(0),
            loads: AtomicU64::new(0),
        }
    }

    /// Values for which `is_negative` holds (an answer saying "nothing configured") stay fresh
    /// for `ttl` instead (never longer than the cache's own TTL), so what is configured after
    /// such an answer is seen soon.
    pub fn with_negative_ttl(mut self, ttl: Duration, is_negative: fn(&V) -> bool) -> Self {
        self.negative = Some(Negative { ttl, is_negative });
        self
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

    /// Stores `value` for `key` as if it had just been loaded, but fresh for `ttl` only (never
    /// longer than a load would keep it: the cache's TTL, the negative TTL for a negative
    /// answer); replaces what the key held. How cache warming spreads the expiry of what it
    /// loads at once.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        let entry = self.entry(value);
        let expires_at = match self.clock.now().checked_add(ttl) {
            Some(at) => entry.expires_at.min(at),
            None => entry.expires_at,
        };
        self.inner.insert(
            key,
            Entry {
                expires_at,
                ..entry
            },
        );
    }

    /// Drops every entry (e.g. after a configuration change).
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Entries held, fresh or expired but not yet evicted.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
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
        let ttl = match &self.negative {
            Some(negative) if (negative.is_negative)(&value) => negative.ttl.min(self.ttl),
            _ => self.ttl,
        };
        Entry {
            value,
            expires_at: self.clock.now() + ttl,
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
    async fn a_negative_answer_expires_after_the_negative_ttl_a_positive_one_after_the_ttl() {
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        // `None` is the negative answer, as in the settings cache.
        let cache: TtlCache<&str, Option<u32>> =
            TtlCache::new(10, Duration::minutes(5), clock.clone())
                .with_negative_ttl(Duration::seconds(30), Option::is_none);
        let load = |value: Option<u32>| move || async move { Ok::<_, ()>(value) };
        assert_eq!(cache.get_or_try_load(&"new", load(None)).await, Ok(None));
        assert_eq!(
            cache.get_or_try_load(&"old", load(Some(1))).await,
            Ok(Some(1))
        );
        // Configured meanwhile: the negative answer still holds until its 30 s are over.
        clock.advance(Duration::seconds(29));
        assert_eq!(cache.get_or_try_load(&"new", load(Some(2))).await, Ok(None));
        clock.advance(Duration::seconds(1));
        assert_eq!(
            cache.get_or_try_load(&"new", load(Some(2))).await,
            Ok(Some(2)),
            "a negative answer lives 30 s"
        );
        // A positive answer lives the full TTL, even when the source now says "none".
        clock.advance(Duration::seconds(269));
        assert_eq!(cache.get_or_try_load(&"old", load(None)).await, Ok(Some(1)));
        clock.advance(Duration::seconds(1));
        assert_eq!(cache.get_or_try_load(&"old", load(None)).await, Ok(None));
        // The value found at 30 s lives 5 minutes from then.
        clock.advance(Duration::seconds(29));
        assert_eq!(cache.get_or_try_load(&"new", load(None)).await, Ok(Some(2)));
        assert_eq!(cache.stats(), CacheStats { hits: 3, loads: 4 });
    }

    #[tokio::test]
    async fn a_negative_ttl_never_outlives_the_ttl() {
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        let cache: TtlCache<u32, Option<u32>> =
            TtlCache::new(10, Duration::seconds(10), clock.clone())
                .with_negative_ttl(Duration::minutes(5), Option::is_none);
        let _ = cache
            .get_or_try_load(&1, || async { Ok::<_, ()>(None) })
            .await;
        clock.advance(Duration::seconds(10));
        let v = cache
            .get_or_try_load(&1, || async { Ok::<_, ()>(Some(1)) })
            .await;
        assert_eq!(v, Ok(Some(1)));
    }

    #[tokio::test]
    async fn an_empty_metadata_list_is_a_negative_answer() {
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        let cache = MetadataCache::metadata(
            10,
            Duration::minutes(5),
            Duration::seconds(30),
            clock.clone(),
        );
        let key = (1, "toy".to_owned());
        let loads = AtomicU64::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::Relaxed);
            Ok::<_, ()>(Arc::<[SyncMetadata]>::from(Vec::new()))
        };
        cache.get_or_try_load(&key, load).await.unwrap();
        clock.advance(Duration::seconds(29));
        cache.get_or_try_load(&key, load).await.unwrap();
        assert_eq!(loads.load(Ordering::Relaxed), 1);
        clock.advance(Duration::seconds(1));
        cache.get_or_try_load(&key, load).await.unwrap();
        assert_eq!(loads.load(Ordering::Relaxed), 2, "reloaded after 30 s");
    }

    #[tokio::test]
    async fn clear_forgets_every_entry() {
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        let cache: TtlCache<u32, u32> = TtlCache::new(10, Duration::minutes(5), clock);
        for k in 0..3 {
            let _ = cache
                .get_or_try_load(&k, || async move { Ok::<_, ()>(k) })
                .await;
        }
        assert_eq!(cache.len(), 3);
        cache.clear();
        assert!(cache.is_empty());
        for k in 0..3 {
            let v = cache
                .get_or_try_load(&k, || async move { Ok::<_, ()>(k + 10) })
                .await;
            assert_eq!(v, Ok(k + 10), "reloaded after clear");
        }
        assert_eq!(cache.stats(), CacheStats { hits: 0, loads: 6 });
    }

    #[tokio::test]
    async fn an_inserted_value_is_served_until_its_ttl_as_if_loaded_never_longer() {
        let clock = Arc::new(ManualClock::new(datetime!(2024-01-01 0:00 UTC)));
        let cache: TtlCache<u32, Option<u32>> =
            TtlCache::new(10, Duration::minutes(5), clock.clone())
                .with_negative_ttl(Duration::seconds(30), Option::is_none);
        cache.insert_with_ttl(1, Some(10), Duration::minutes(5));
        cache.insert_with_ttl(2, None, Duration::minutes(5));
        cache.insert_with_ttl(3, Some(30), Duration::minutes(2));
        // Never longer than a load would keep it: a negative answer keeps its 30 s.
        cache.insert_with_ttl(4, None, Duration::minutes(2));
        let load = |value: Option<u32>| move || async move { Ok::<_, ()>(value) };
        for (key, held) in [(1, Some(10)), (2, None), (3, Some(30)), (4, None)] {
            assert_eq!(cache.get_or_try_load(&key, load(Some(0))).await, Ok(held));
        }
        assert_eq!(cache.stats(), CacheStats { hits: 4, loads: 0 });
        clock.advance(Duration::seconds(30));
        assert_eq!(cache.get_or_try_load(&2, load(Some(2))).await, Ok(Some(2)));
        assert_eq!(cache.get_or_try_load(&4, load(Some(4))).await, Ok(Some(4)));
        clock.advance(Duration::seconds(90));
        assert_eq!(cache.get_or_try_load(&3, load(Some(3))).await, Ok(Some(3)));
        assert_eq!(cache.get_or_try_load(&1, load(Some(1))).await, Ok(Some(10)));
        clock.advance(Duration::minutes(3));
        assert_eq!(cache.get_or_try_load(&1, load(Some(1))).await, Ok(Some(1)));
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
