//! Two replicas (`TwoLevelCache` instances) on the shared Redis, each test under its own prefix.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::AsyncCommands;
use rsp_cache::TwoLevelCache;
use rsp_core::cache::{Cache, CacheError, CacheExt, CacheKind, Cached, Invalidation, Lookup, Origin};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::helpers::{clean, heard, raw, replicas, shared_redis, test_config};

async fn fill(cache: &TwoLevelCache, kind: CacheKind, key: &str, value: &'static str) {
    let Lookup::Miss(ticket) = cache.get(kind, key).await.unwrap() else { panic!("{key} was already cached") };
    cache.put(ticket, Cached::Value(Bytes::from_static(value.as_bytes())), None).await;
}

fn hit(value: &'static str) -> Lookup {
    Lookup::Hit(Bytes::from_static(value.as_bytes()))
}

#[tokio::test]
async fn a_fill_on_one_replica_is_read_from_redis_by_another() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    fill(&a, CacheKind::Client, "acme/c1", "client one").await;

    let stored: Vec<u8> = raw(&url).await.get(format!("{}:c:client:acme/c1", config.prefix)).await.unwrap();
    assert_eq!(stored, b"vclient one", "L2 holds the tagged value under the documented key");
    assert_eq!(b.get(CacheKind::Client, "acme/c1").await.unwrap(), hit("client one"));

    // B copied it into its L1: it keeps answering once Redis has lost it.
    let _: () = raw(&url).await.del(format!("{}:c:client:acme/c1", config.prefix)).await.unwrap();
    assert_eq!(b.get(CacheKind::Client, "acme/c1").await.unwrap(), hit("client one"));
    assert!(matches!(b.get(CacheKind::Client, "acme/c2").await.unwrap(), Lookup::Miss(_)));
    clean(&url, &config.prefix).await;
}

#[tokio::test]
async fn an_invalidation_on_one_replica_reaches_the_other_quickly() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    let mut heard_by_a = a.subscribe();
    let mut heard_by_b = b.subscribe();
    let mut delays = Vec::new();
    for round in 0..20 {
        let key = format!("acme/k{round}");
        let Lookup::Miss(ticket) = a.get(CacheKind::SigningKeys, &key).await.unwrap() else { panic!() };
        a.put(ticket, Cached::Value(Bytes::from_static(b"keys")), None).await;
        assert_eq!(b.get(CacheKind::SigningKeys, &key).await.unwrap(), hit("keys"), "B now has it in L1");

        let wanted = Invalidation::key(CacheKind::SigningKeys, key.clone());
        let started = Instant::now();
        a.invalidate(wanted.clone()).await.unwrap();
        heard(&mut heard_by_b, Duration::from_secs(2), |i, o| *i == wanted && o == Origin::Remote).await;
        delays.push(started.elapsed());
        assert!(matches!(b.get(CacheKind::SigningKeys, &key).await.unwrap(), Lookup::Miss(_)), "B's L1 dropped it");
        assert!(matches!(a.get(CacheKind::SigningKeys, &key).await.unwrap(), Lookup::Miss(_)));
        heard(&mut heard_by_a, Duration::from_secs(1), |i, o| *i == wanted && o == Origin::Local).await;
    }
    // A skips its own message: it heard each invalidation once, as local.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(heard_by_a.try_recv().is_err(), "A heard its own invalidation a second time");
    delays.sort();
    let median = delays[delays.len() / 2];
    let worst = delays[delays.len() - 1];
    println!(
        "cross-replica invalidation delay (invalidate called on A until B's subscriber hears it) over {} rounds: median {median:?}, max {worst:?}",
        delays.len()
    );
    assert!(worst < Duration::from_secs(2));
    clean(&url, &config.prefix).await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    version: u32,
}

#[tokio::test]
async fn misses_are_cached_negatively_across_replicas_until_invalidated() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    let loads = AtomicUsize::new(0);
    let load = |found: Option<Record>| {
        let loads = &loads;
        move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, CacheError>(found)
        }
    };
    assert_eq!(a.get_or_load(CacheKind::Client, "acme/none", load(None)).await.unwrap(), None);
    assert_eq!(b.get_or_load(CacheKind::Client, "acme/none", load(None)).await.unwrap(), None);
    assert_eq!(a.get_or_load(CacheKind::Client, "acme/none", load(None)).await.unwrap(), None);
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one database read for three lookups on two replicas");
    assert_eq!(b.get(CacheKind::Client, "acme/none").await.unwrap(), Lookup::Absent);

    let mut heard_by_b = b.subscribe();
    a.invalidate(Invalidation::key(CacheKind::Client, "acme/none")).await.unwrap();
    heard(&mut heard_by_b, Duration::from_secs(2), |_, origin| origin == Origin::Remote).await;
    let created = Record { name: "created".to_owned(), version: 1 };
    let found = b.get_or_load(CacheKind::Client, "acme/none", load(Some(created.clone()))).await.unwrap();
    assert_eq!(found, Some(created));
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    clean(&url, &config.prefix).await;
}

#[tokio::test]
async fn entries_expire_from_each_level_after_its_ttl() {
    let Some(url) = shared_redis().await else { return };
    let mut config = test_config();
    config.decision.l1_ttl = Duration::from_millis(300);
    config.decision.l2_ttl = Duration::from_millis(1500);
    config.decision.negative_ttl = Duration::from_millis(300);
    let (a, b) = replicas(&url, &config).await;
    fill(&a, CacheKind::Decision, "acme/d1", "allow").await;
    let Lookup::Miss(ticket) = a.get(CacheKind::Decision, "acme/short").await.unwrap() else { panic!() };
    a.put(ticket, Cached::Value(Bytes::from_static(b"deny")), Some(Duration::from_millis(100))).await;
    let left: i64 = raw(&url).await.pttl(format!("{}:c:decision:acme/short", config.prefix)).await.unwrap();
    assert!((1..=100).contains(&left), "a per-value ttl caps the Redis ttl too, left {left} ms");

    tokio::time::sleep(Duration::from_millis(400)).await;
    // L1 expired; L2 still has it and refills L1.
    let _: () = raw(&url).await.del(format!("{}:c:decision:acme/d1", config.prefix)).await.unwrap();
    assert!(matches!(a.get(CacheKind::Decision, "acme/d1").await.unwrap(), Lookup::Miss(_)), "L1 ttl passed");
    assert!(matches!(b.get(CacheKind::Decision, "acme/short").await.unwrap(), Lookup::Miss(_)), "value ttl passed");

    fill(&a, CacheKind::Decision, "acme/d2", "allow").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.get(CacheKind::Decision, "acme/d2").await.unwrap(), hit("allow"), "from L2 after A's L1 ttl");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(a.get(CacheKind::Decision, "acme/d2").await.unwrap(), Lookup::Miss(_)), "both levels expired");
    clean(&url, &config.prefix).await;
}

#[tokio::test]
async fn a_tenant_or_a_kind_is_invalidated_on_every_replica() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    for key in ["acme/a", "acme/b", "beta/a"] {
        fill(&a, CacheKind::Client, key, "v").await;
        assert_eq!(b.get(CacheKind::Client, key).await.unwrap(), hit("v"));
    }
    fill(&a, CacheKind::Revocation, "acme/jti", "revoked").await;
    let mut heard_by_b = b.subscribe();
    a.invalidate(Invalidation::prefix(CacheKind::Client, "acme/")).await.unwrap();
    heard(&mut heard_by_b, Duration::from_secs(2), |i, _| matches!(i, Invalidation::Prefix { .. })).await;
    for (key, dropped) in [("acme/a", true), ("acme/b", true), ("beta/a", false)] {
        assert_eq!(matches!(b.get(CacheKind::Client, key).await.unwrap(), Lookup::Miss(_)), dropped, "{key} on B");
        let in_redis: bool = raw(&url).await.exists(format!("{}:c:client:{key}", config.prefix)).await.unwrap();
        assert_eq!(in_redis, !dropped, "{key} in redis");
    }
    assert_eq!(b.get(CacheKind::Revocation, "acme/jti").await.unwrap(), hit("revoked"));
    let mut heard_by_a = a.subscribe();
    b.invalidate(Invalidation::Kind { kind: CacheKind::Revocation }).await.unwrap();
    heard(&mut heard_by_a, Duration::from_secs(2), |i, _| matches!(i, Invalidation::Kind { .. })).await;
    assert!(matches!(a.get(CacheKind::Revocation, "acme/jti").await.unwrap(), Lookup::Miss(_)));
    clean(&url, &config.prefix).await;
}

#[tokio::test]
async fn policy_changes_are_announced_but_never_stored() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    assert!(matches!(a.get(CacheKind::PolicySnapshot, "acme").await, Err(CacheError::NotStored { .. })));
    let mut heard_by_b = b.subscribe();
    a.invalidate(Invalidation::key(CacheKind::PolicySnapshot, "acme")).await.unwrap();
    let wanted = Invalidation::key(CacheKind::PolicySnapshot, "acme");
    heard(&mut heard_by_b, Duration::from_secs(2), |i, o| *i == wanted && o == Origin::Remote).await;
    let keys: Vec<String> = raw(&url).await.keys(format!("{}:*", config.prefix)).await.unwrap();
    assert!(keys.is_empty(), "nothing stored for a snapshot invalidation: {keys:?}");
    assert!(matches!(a.invalidate(Invalidation::key(CacheKind::Client, "")).await, Err(CacheError::EmptyKey)));
}

#[tokio::test]
async fn a_fill_that_an_invalidation_overtook_is_not_cached_anywhere() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    // A misses and starts loading; meanwhile B's replica writes and invalidates.
    let Lookup::Miss(stale) = a.get(CacheKind::Client, "acme/c1").await.unwrap() else { panic!() };
    let mut heard_by_a = a.subscribe();
    b.invalidate(Invalidation::key(CacheKind::Client, "acme/c1")).await.unwrap();
    heard(&mut heard_by_a, Duration::from_secs(2), |_, origin| origin == Origin::Remote).await;
    a.put(stale, Cached::Value(Bytes::from_static(b"old")), None).await;
    assert!(matches!(a.get(CacheKind::Client, "acme/c1").await.unwrap(), Lookup::Miss(_)), "not in A's L1");
    assert!(matches!(b.get(CacheKind::Client, "acme/c1").await.unwrap(), Lookup::Miss(_)), "not in redis");

    // The tombstone refuses Redis fills for `tombstone_ttl`, even from a replica whose ticket is current.
    let Lookup::Miss(ticket) = b.get(CacheKind::Client, "acme/c1").await.unwrap() else { panic!() };
    b.put(ticket, Cached::Value(Bytes::from_static(b"new")), None).await;
    assert_eq!(b.get(CacheKind::Client, "acme/c1").await.unwrap(), hit("new"), "B's L1 keeps its own fill");
    assert!(matches!(a.get(CacheKind::Client, "acme/c1").await.unwrap(), Lookup::Miss(_)), "redis refused it");
    clean(&url, &config.prefix).await;
}

#[tokio::test]
async fn an_entry_that_no_longer_decodes_is_dropped_and_reloaded() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    fill(&a, CacheKind::Client, "acme/c1", "{\"unexpected\":true}").await;
    let mut heard_by_a = a.subscribe();
    let current = Record { name: "c1".to_owned(), version: 2 };
    let loaded = b.get_or_load(CacheKind::Client, "acme/c1", || async { Ok::<_, CacheError>(Some(current.clone())) });
    assert_eq!(loaded.await.unwrap(), Some(current.clone()));
    heard(&mut heard_by_a, Duration::from_secs(2), |i, _| matches!(i, Invalidation::Key { .. })).await;
    assert!(matches!(a.get(CacheKind::Client, "acme/c1").await.unwrap(), Lookup::Miss(_)));
    clean(&url, &config.prefix).await;
}

#[tokio::test]
async fn an_unreadable_channel_message_empties_every_l1() {
    let Some(url) = shared_redis().await else { return };
    let config = test_config();
    let (a, b) = replicas(&url, &config).await;
    fill(&a, CacheKind::Client, "acme/c1", "v").await;
    assert_eq!(b.get(CacheKind::Client, "acme/c1").await.unwrap(), hit("v"));
    let _: () = raw(&url).await.del(format!("{}:c:client:acme/c1", config.prefix)).await.unwrap();
    let mut heard_by_b = b.subscribe();
    let _: () = raw(&url).await.publish(format!("{}:invalidate", config.prefix), "{not json").await.unwrap();
    heard(&mut heard_by_b, Duration::from_secs(2), |i, o| *i == Invalidation::All && o == Origin::Remote).await;
    assert!(matches!(b.get(CacheKind::Client, "acme/c1").await.unwrap(), Lookup::Miss(_)));
    clean(&url, &config.prefix).await;
}
