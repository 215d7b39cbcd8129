//! Redis going away: the whole server (a private `redis-server`, stopped and started again), and one
//! replica cut off by a proxy while Redis and the other replica carry on.

use std::time::Duration;

use bytes::Bytes;
use redis::AsyncCommands;
use rsp_cache::TwoLevelCache;
use rsp_core::cache::{Cache, CacheKind, Cached, Invalidation, Lookup, Origin};
use rsp_test_services::PrivateRedis;
use tokio::time::Instant;

use crate::helpers::{Proxy, clean, eventually, heard, raw, shared_redis, test_config};

/// Runs a miss-then-fill of `key` and returns how long the two calls took.
async fn timed_fill(cache: &TwoLevelCache, key: &str) -> Duration {
    let started = Instant::now();
    let Lookup::Miss(ticket) = cache.get(CacheKind::Client, key).await.unwrap() else { panic!("{key} cached") };
    cache.put(ticket, Cached::Value(Bytes::from_static(b"v")), None).await;
    started.elapsed()
}

async fn is_hit(cache: &TwoLevelCache, key: &str) -> bool {
    matches!(cache.get(CacheKind::Client, key).await.unwrap(), Lookup::Hit(_))
}

#[tokio::test]
async fn the_cache_works_without_redis_and_fills_again_when_it_returns() {
    let Some(mut redis) = PrivateRedis::start_volatile() else { return };
    let config = test_config();
    let a = TwoLevelCache::connect(&redis.url(), config.clone()).await.unwrap();
    let b = TwoLevelCache::connect(&redis.url(), config.clone()).await.unwrap();
    timed_fill(&a, "acme/before").await;
    assert!(is_hit(&b, "acme/before").await);

    redis.stop();
    let mut slowest = Duration::ZERO;
    let mut total = Duration::ZERO;
    for n in 0..50 {
        let elapsed = timed_fill(&a, &format!("acme/down{n}")).await;
        slowest = slowest.max(elapsed);
        total += elapsed;
        assert!(is_hit(&a, &format!("acme/down{n}")).await, "L1 keeps working");
    }
    println!("miss+fill with redis down: mean {:?}, slowest {slowest:?}", total / 50);
    assert!(slowest < Duration::from_secs(1), "a dead redis costs at most about one op timeout");
    assert!(!a.redis_is_up());
    eventually(Duration::from_secs(5), "B notices the lost channel", || async { !b.is_listening() }).await;
    let mut heard_by_a = a.subscribe();
    a.invalidate(Invalidation::key(CacheKind::Client, "acme/before")).await.unwrap();
    heard(&mut heard_by_a, Duration::from_secs(1), |_, origin| origin == Origin::Local).await;
    assert!(!is_hit(&a, "acme/before").await, "invalidations still apply locally");

    let mut heard_by_b = b.subscribe();
    redis.start_again().unwrap();
    eventually(Duration::from_secs(10), "both replicas listen again", || async {
        a.is_listening() && b.is_listening()
    })
    .await;
    heard(&mut heard_by_b, Duration::from_secs(1), |i, o| *i == Invalidation::All && o == Origin::Remote).await;
    assert!(!is_hit(&b, "acme/before").await, "B emptied its L1: it may have missed invalidations");

    // Fills reach Redis again (the breaker lets a probe through within `retry_after`).
    let mut n = 0;
    eventually(Duration::from_secs(10), "a fill on A is read from redis by B", || {
        n += 1;
        let key = format!("acme/after{n}");
        let (a, b) = (&a, &b);
        async move {
            timed_fill(a, &key).await;
            is_hit(b, &key).await
        }
    })
    .await;
    assert!(a.redis_is_up());
    a.invalidate(Invalidation::key(CacheKind::Client, "acme/after1")).await.unwrap();
    let wanted = Invalidation::key(CacheKind::Client, "acme/after1");
    heard(&mut heard_by_b, Duration::from_secs(2), |i, o| *i == wanted && o == Origin::Remote).await;
}

#[tokio::test]
async fn a_replica_that_cannot_reach_redis_replays_its_invalidations() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let proxy = Proxy::start(&url).await;
    let a = TwoLevelCache::connect(&proxy.url(), config.clone()).await.unwrap();
    let b = TwoLevelCache::connect(&url, config.clone()).await.unwrap();
    assert!(a.is_listening() && b.is_listening());
    timed_fill(&a, "acme/c1").await;
    assert!(is_hit(&b, "acme/c1").await);

    proxy.cut();
    eventually(Duration::from_secs(5), "A notices the cut", || async { !a.is_listening() }).await;
    let started = Instant::now();
    a.invalidate(Invalidation::key(CacheKind::Client, "acme/c1")).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "an invalidation does not wait for redis");
    assert!(!is_hit(&a, "acme/c1").await);
    let stored: Option<Vec<u8>> = raw(&url).await.get(format!("{}:c:client:acme/c1", config.prefix)).await.unwrap();
    assert_eq!(stored.as_deref(), Some(&b"vv"[..]), "redis did not hear it yet");

    let mut heard_by_b = b.subscribe();
    let healed = Instant::now();
    proxy.heal();
    let wanted = Invalidation::key(CacheKind::Client, "acme/c1");
    heard(&mut heard_by_b, Duration::from_secs(10), |i, o| *i == wanted && o == Origin::Remote).await;
    println!("invalidation replayed {:?} after the network came back", healed.elapsed());
    assert!(!is_hit(&b, "acme/c1").await, "B dropped it");
    let stored: Vec<u8> = raw(&url).await.get(format!("{}:c:client:acme/c1", config.prefix)).await.unwrap();
    assert_eq!(stored, b"t", "redis holds the tombstone");
    clean(&url, &config.prefix).await;
}

#[tokio::test]
async fn a_replica_started_while_redis_is_down_joins_it_later() {
    let Some(mut redis) = PrivateRedis::start_volatile() else { return };
    redis.stop();
    let config = test_config();
    let started = Instant::now();
    let a = TwoLevelCache::connect(&redis.url(), config.clone()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "start-up does not wait for redis");
    assert!(!a.is_listening() && !a.redis_is_up());
    timed_fill(&a, "acme/early").await;
    assert!(is_hit(&a, "acme/early").await, "L1 works from the start");

    let mut heard_by_a = a.subscribe();
    redis.start_again().unwrap();
    eventually(Duration::from_secs(10), "A subscribes once redis is up", || async { a.is_listening() }).await;
    heard(&mut heard_by_a, Duration::from_secs(1), |i, _| *i == Invalidation::All).await;
    let b = TwoLevelCache::connect(&redis.url(), config.clone()).await.unwrap();
    let mut n = 0;
    eventually(Duration::from_secs(10), "A's fills reach redis", || {
        n += 1;
        let key = format!("acme/late{n}");
        let (a, b) = (&a, &b);
        async move {
            timed_fill(a, &key).await;
            is_hit(b, &key).await
        }
    })
    .await;
    assert!(a.redis_is_up());
}
