//! Clients: stored per tenant, every field round-trips, conflicts and missing rows are reported.

use rsp_core::{ClientKind, GrantType, ScopeSet, StoreError, UnixTime};

use crate::engine::Engine;
use crate::fixtures::{client, client_id, key, tenant, tenant_id};

on_both_engines!(
    clients_round_trip_and_stay_within_their_tenant,
    clients_list_in_creation_order,
    a_duplicate_client_conflicts_and_a_client_needs_its_tenant,
    updates_and_deletes_touch_one_client_and_report_missing_ones,
);

async fn two_tenants(engine: &Engine) {
    engine.store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    engine.store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
}

async fn clients_round_trip_and_stay_within_their_tenant(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    let public = rsp_core::Client {
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ScopeSet::parse("openid profile").unwrap(),
        audiences: vec![],
        introspect_audiences: vec!["https://one.example".into(), "https://two.example".into()],
        redirect_uris: vec!["https://spa.example/cb".into(), "http://127.0.0.1/cb".into()],
        post_logout_redirect_uris: vec!["https://spa.example/signed-out".into()],
        ..client("a", "spa")
    };
    store.create_client(&client("a", "c1"), &[]).await.unwrap();
    store.create_client(&public, &[]).await.unwrap();
    let (a, b) = (tenant_id("a"), tenant_id("b"));
    assert_eq!(store.get_client(&a, &client_id("c1")).await.unwrap(), Some(client("a", "c1")));
    assert_eq!(store.get_client(&a, &client_id("spa")).await.unwrap(), Some(public));
    assert_eq!(store.get_client(&b, &client_id("c1")).await.unwrap(), None, "clients leak across tenants");
    assert!(store.list_clients(&b).await.unwrap().is_empty());
}

async fn clients_list_in_creation_order(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    let at = |id: &str, time: i64| rsp_core::Client { created_at: UnixTime(time), ..client("a", id) };
    for c in [at("z", 1), at("b", 2), at("a", 2)] {
        store.create_client(&c, &[]).await.unwrap();
    }
    let ids: Vec<String> = store
        .list_clients(&tenant_id("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["z", "a", "b"], "by creation time, then id");
}

async fn a_duplicate_client_conflicts_and_a_client_needs_its_tenant(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    store.create_client(&client("a", "c1"), &[]).await.unwrap();
    let duplicate = store.create_client(&rsp_core::Client { name: "other".into(), ..client("a", "c1") }, &[]).await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{duplicate:?}");
    store.create_client(&client("b", "c1"), &[]).await.unwrap();
    let orphan = store.create_client(&client("nobody", "c1"), &[]).await;
    assert!(orphan.is_err(), "a client of an unknown tenant was stored");
    assert_eq!(store.get_client(&tenant_id("a"), &client_id("c1")).await.unwrap(), Some(client("a", "c1")));
}

async fn updates_and_deletes_touch_one_client_and_report_missing_ones(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    store.create_client(&client("a", "c1"), &[]).await.unwrap();
    store.create_client(&client("b", "c1"), &[]).await.unwrap();
    let changed = rsp_core::Client {
        name: "renamed".into(),
        secret_hash: Some("hmac-sha256$y".into()),
        scopes: ScopeSet::parse("c").unwrap(),
        audiences: vec!["https://new.example".into()],
        introspect_audiences: vec!["https://peer.example".into()],
        redirect_uris: vec!["https://new.example/cb".into()],
        post_logout_redirect_uris: vec!["https://new.example/bye".into(), "http://127.0.0.1/bye".into()],
        updated_at: UnixTime(9),
        ..client("a", "c1")
    };
    store.update_client(&changed, &[]).await.unwrap();
    let (a, b, c1) = (tenant_id("a"), tenant_id("b"), client_id("c1"));
    assert_eq!(store.get_client(&a, &c1).await.unwrap(), Some(changed));
    assert_eq!(store.get_client(&b, &c1).await.unwrap(), Some(client("b", "c1")), "the other tenant's c1 kept");
    let missing = store.update_client(&client("a", "nobody"), &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    store.delete_client(&a, &c1, &[]).await.unwrap();
    assert_eq!(store.get_client(&a, &c1).await.unwrap(), None);
    assert!(store.get_client(&b, &c1).await.unwrap().is_some());
    let again = store.delete_client(&a, &c1, &[]).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
}
