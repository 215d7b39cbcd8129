//! Tenants: creation with the first key, reads, updates, and deletion cascading to what a tenant owns.

use rsp_core::policy::{PolicySetContent, StoredEntity};
use rsp_core::{StoreError, UnixTime};

use crate::engine::Engine;
use crate::fixtures::{client, client_id, jti, key, tenant, tenant_id};

on_both_engines!(
    tenants_round_trip_and_list_in_id_order,
    a_duplicate_tenant_conflicts,
    updates_change_name_algorithm_and_time,
    a_failed_tenant_creation_leaves_nothing_behind,
    deleting_a_tenant_deletes_everything_it_owns_and_nothing_else,
);

async fn tenants_round_trip_and_list_in_id_order(engine: &Engine) {
    let store = &engine.store;
    assert_eq!(store.list_tenants().await.unwrap(), vec![]);
    store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    assert_eq!(store.get_tenant(&tenant_id("a")).await.unwrap(), Some(tenant("a")));
    assert_eq!(store.get_tenant(&tenant_id("zz")).await.unwrap(), None);
    assert_eq!(store.list_tenants().await.unwrap(), vec![tenant("a"), tenant("b")]);
    let keys = store.published_keys(&tenant_id("a"), UnixTime(1)).await.unwrap();
    assert_eq!(keys, vec![key("a", "k1", 1)], "the first key is stored with the tenant, byte for byte");
}

async fn a_duplicate_tenant_conflicts(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    let again = store.create_tenant(&tenant("a"), &key("a", "k9", 1), &[]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let keys = store.published_keys(&tenant_id("a"), UnixTime(1)).await.unwrap();
    assert_eq!(keys.len(), 1, "the refused creation added no key");
}

async fn updates_change_name_algorithm_and_time(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    let changed = rsp_core::Tenant {
        name: "Renamed".into(),
        signing_alg: rsp_core::SigningAlgorithm::EdDSA,
        updated_at: UnixTime(50),
        ..tenant("a")
    };
    store.update_tenant(&changed, &[]).await.unwrap();
    assert_eq!(store.get_tenant(&tenant_id("a")).await.unwrap(), Some(changed));
    let missing = store.update_tenant(&tenant("nobody"), &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

async fn a_failed_tenant_creation_leaves_nothing_behind(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    // The tenant row goes in, then its key conflicts with a's: the whole creation must roll back.
    let result = store.create_tenant(&tenant("b"), &key("a", "k1", 1), &[]).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(store.get_tenant(&tenant_id("b")).await.unwrap(), None);
    assert_eq!(store.list_tenants().await.unwrap(), vec![tenant("a")]);
}

async fn deleting_a_tenant_deletes_everything_it_owns_and_nothing_else(engine: &Engine) {
    let store = &engine.store;
    let content = PolicySetContent {
        policies: "permit(principal, action, resource);".into(),
        schema: None,
        template_links: "[]".into(),
    };
    let entity = StoredEntity { entity_type: "User".into(), entity_id: "alice".into(), json: "{}".into() };
    for name in ["a", "b"] {
        let id = tenant_id(name);
        store.create_tenant(&tenant(name), &key(name, "k1", 1), &[]).await.unwrap();
        store.create_client(&client(name, "c1"), &[]).await.unwrap();
        store.rotate_key(&key(name, "k2", 10), UnixTime(10), 60, &[]).await.unwrap();
        store.revoke_token(&id, &jti("j1"), UnixTime(1_000), &[]).await.unwrap();
        store.append_policy_set(&id, &content, UnixTime(1), "admin", &[]).await.unwrap();
        store.write_entities(&id, std::slice::from_ref(&entity), &[], &[]).await.unwrap();
    }
    let a = tenant_id("a");
    store.delete_tenant(&a, &[]).await.unwrap();

    assert_eq!(store.get_tenant(&a).await.unwrap(), None);
    assert!(store.list_clients(&a).await.unwrap().is_empty());
    assert!(store.published_keys(&a, UnixTime(10)).await.unwrap().is_empty());
    assert!(!store.is_revoked(&a, &jti("j1")).await.unwrap());
    assert_eq!(store.latest_policy_set(&a).await.unwrap(), None);
    assert!(store.list_policy_versions(&a).await.unwrap().is_empty());
    assert_eq!(store.entities(&a).await.unwrap(), (0, vec![]), "entities and their version go too");
    let again = store.delete_tenant(&a, &[]).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");

    let b = tenant_id("b");
    assert!(store.get_client(&b, &client_id("c1")).await.unwrap().is_some());
    assert_eq!(store.published_keys(&b, UnixTime(10)).await.unwrap().len(), 2);
    assert!(store.is_revoked(&b, &jti("j1")).await.unwrap());
    assert_eq!(store.list_policy_versions(&b).await.unwrap().len(), 1);
    assert_eq!(store.entities(&b).await.unwrap(), (1, vec![entity]));
    assert_eq!(store.count_published_keys(UnixTime(10)).await.unwrap(), (1, 1), "a's keys are no longer counted");
}
