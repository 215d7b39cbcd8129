//! `LocalCache`: the L1-only cache of a single process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

/// Many requests missing one key at once (a hot client whose entry expired) cost one load, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_key_load_it_once() {
    let cache = Arc::new(LocalCache::new(&CacheConfig::default()).unwrap());
    let loads = Arc::new(AtomicUsize::new(0));
    let lookups: Vec<_> = (0..32)
        .map(|_| {
            let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
            tokio::spawn(async move {
                cache
                    .get_or_load(CacheKind::Client, "acme/hot", || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, CacheError>(Some(7u32))
                    })
                    .await
            })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().unwrap(), Some(7));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

/// A load that fails releases the lookups waiting on it at once; each then loads for itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_releases_the_lookups_waiting_on_it() {
    let cache = Arc::new(LocalCache::new(&CacheConfig::default()).unwrap());
    let leader = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move {
            cache
                .get_or_load::<u32, _, _, _>(CacheKind::Client, "acme/flaky", || async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(CacheError::EmptyKey)
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let follower = cache.get_or_load(CacheKind::Client, "acme/flaky", || async { Ok::<_, CacheError>(Some(8u32)) });
    // Bounded well below the wait for a load that never ends (a second): released by the failure itself.
    let answer = tokio::time::timeout(Duration::from_millis(800), follower).await;
    assert_eq!(answer.expect("the waiting lookup was not released").unwrap(), Some(8));
    assert!(leader.await.unwrap().is_err());
}
