//! `LocalCache`: the L1-only cache of a single process.

use std::sync::atomic::{AtomicUsize, Ordering};

use rsp_cache::{CacheConfig, ConfigError, LocalCache};
use rsp_core::cache::{Cache, CacheError, CacheExt, CacheKind, Invalidation, Lookup, Origin};

#[tokio::test]
async fn reads_through_caches_misses_and_announces_invalidations() {
    let cache = LocalCache::new(&CacheConfig::default()).unwrap();
    let loads = AtomicUsize::new(0);
    let load = |found: Option<u32>| {
        let loads = &loads;
        move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, CacheError>(found)
        }
    };
    assert_eq!(cache.get_or_load(CacheKind::Client, "acme/c1", load(Some(7))).await.unwrap(), Some(7));
    assert_eq!(cache.get_or_load(CacheKind::Client, "acme/c1", load(Some(8))).await.unwrap(), Some(7));
    assert_eq!(cache.get_or_load(CacheKind::Client, "acme/none", load(None)).await.unwrap(), None);
    assert_eq!(cache.get_or_load(CacheKind::Client, "acme/none", load(Some(9))).await.unwrap(), None);
    assert_eq!(loads.load(Ordering::SeqCst), 2);

    let mut notices = cache.subscribe();
    cache.invalidate(Invalidation::prefix(CacheKind::Client, "acme/")).await.unwrap();
    let notice = notices.try_recv().unwrap();
    assert_eq!((notice.invalidation, notice.origin), (Invalidation::prefix(CacheKind::Client, "acme/"), Origin::Local));
    assert_eq!(cache.get_or_load(CacheKind::Client, "acme/none", load(Some(9))).await.unwrap(), Some(9));
    assert!(matches!(cache.get(CacheKind::Client, "acme/c1").await.unwrap(), Lookup::Miss(_)));
}

#[tokio::test]
async fn bad_input_gets_typed_errors() {
    let cache = LocalCache::new(&CacheConfig::default()).unwrap();
    assert!(matches!(cache.get(CacheKind::PolicySnapshot, "acme").await, Err(CacheError::NotStored { .. })));
    assert!(matches!(cache.get(CacheKind::Client, "").await, Err(CacheError::EmptyKey)));
    let long = "k".repeat(rsp_core::cache::MAX_KEY_BYTES + 1);
    assert!(matches!(
        cache.invalidate(Invalidation::key(CacheKind::Client, long)).await,
        Err(CacheError::KeyTooLong { .. })
    ));
    let loaded = cache.get_or_load(CacheKind::Client, "", || async { Ok::<_, CacheError>(Some(1)) }).await;
    assert!(matches!(loaded, Err(CacheError::EmptyKey)));
    let config = CacheConfig { prefix: String::new(), ..CacheConfig::default() };
    assert!(matches!(LocalCache::new(&config), Err(ConfigError::Prefix(_))));
}
