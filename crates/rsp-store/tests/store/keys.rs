//! Signing keys (rotation, publication windows, the recorded token lifetime) and revocations.

use rsp_core::{KeyId, KeyStatus, StoreError, UnixTime};

use crate::engine::Engine;
use crate::fixtures::{jti, key, tenant, tenant_id};

on_both_engines!(
    rotation_retires_the_active_key_and_publishes_it_until_its_tokens_expire,
    the_recorded_token_lifetime_only_grows_and_extends_publication,
    a_failed_rotation_keeps_the_active_key,
    published_keys_are_counted_across_tenants,
    revocations_are_idempotent_and_per_tenant,
);

fn kids(keys: &[rsp_core::StoredKey]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

async fn rotation_retires_the_active_key_and_publishes_it_until_its_tokens_expire(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    let a = tenant_id("a");
    store.rotate_key(&key("a", "k2", 100), UnixTime(100), 60, &[]).await.unwrap();
    let keys = store.published_keys(&a, UnixTime(100)).await.unwrap();
    assert_eq!(kids(&keys), ["k2", "k1"], "newest first");
    let first = &keys[1];
    assert_eq!(first.status, KeyStatus::Retired);
    assert_eq!(first.retired_at, Some(UnixTime(100)));
    assert_eq!(first.publish_until, Some(UnixTime(100 + 600 + 60)));
    assert_eq!(keys[0], key("a", "k2", 100));
    assert_eq!(kids(&store.published_keys(&a, UnixTime(759)).await.unwrap()), ["k2", "k1"]);
    assert_eq!(kids(&store.published_keys(&a, UnixTime(760)).await.unwrap()), ["k2"], "publication ends");

    store.rotate_key(&key("a", "k3", 200), UnixTime(200), 60, &[]).await.unwrap();
    let keys = store.published_keys(&a, UnixTime(200)).await.unwrap();
    assert_eq!(kids(&keys), ["k3", "k2", "k1"]);
    assert_eq!(keys.iter().filter(|k| k.status == KeyStatus::Active).count(), 1);
}

async fn the_recorded_token_lifetime_only_grows_and_extends_publication(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    let (a, k1) = (tenant_id("a"), KeyId::parse("k1").unwrap());
    store.record_token_ttl(&a, &k1, 3_600).await.unwrap();
    store.record_token_ttl(&a, &k1, 300).await.unwrap();
    store.record_token_ttl(&tenant_id("other"), &k1, 9_999).await.unwrap();
    let keys = store.published_keys(&a, UnixTime(1)).await.unwrap();
    assert_eq!(keys[0].max_token_ttl_secs, 3_600, "a shorter lifetime never lowers the record");
    store.rotate_key(&key("a", "k2", 100), UnixTime(100), 60, &[]).await.unwrap();
    let keys = store.published_keys(&a, UnixTime(100)).await.unwrap();
    assert_eq!(keys[1].publish_until, Some(UnixTime(100 + 3_600 + 60)));
}

async fn a_failed_rotation_keeps_the_active_key(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    // Reusing the kid conflicts after the old key was retired inside the transaction: all of it rolls back.
    let reused = store.rotate_key(&key("a", "k1", 100), UnixTime(100), 60, &[]).await;
    assert!(matches!(reused, Err(StoreError::Conflict(_))), "{reused:?}");
    let keys = store.published_keys(&tenant_id("a"), UnixTime(100)).await.unwrap();
    assert_eq!(keys, vec![key("a", "k1", 1)]);
}

async fn published_keys_are_counted_across_tenants(engine: &Engine) {
    let store = &engine.store;
    assert_eq!(store.count_published_keys(UnixTime(0)).await.unwrap(), (0, 0));
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
    store.rotate_key(&key("a", "k2", 100), UnixTime(100), 60, &[]).await.unwrap();
    store.rotate_key(&key("a", "k3", 200), UnixTime(200), 60, &[]).await.unwrap();
    assert_eq!(store.count_published_keys(UnixTime(200)).await.unwrap(), (2, 2));
    assert_eq!(store.count_published_keys(UnixTime(760)).await.unwrap(), (2, 1), "k1's window closed");
    assert_eq!(store.count_published_keys(UnixTime(860)).await.unwrap(), (2, 0));
}

async fn revocations_are_idempotent_and_per_tenant(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
    let (a, b) = (tenant_id("a"), tenant_id("b"));
    assert!(!store.is_revoked(&a, &jti("j1")).await.unwrap());
    store.revoke_token(&a, &jti("j1"), UnixTime(10), &[]).await.unwrap();
    store.revoke_token(&a, &jti("j1"), UnixTime(20), &[]).await.unwrap();
    assert!(store.is_revoked(&a, &jti("j1")).await.unwrap());
    assert!(!store.is_revoked(&b, &jti("j1")).await.unwrap(), "revocations leak across tenants");
    assert!(!store.is_revoked(&a, &jti("j2")).await.unwrap());
}
