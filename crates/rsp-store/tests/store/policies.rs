//! Policy sets (append-only versions per tenant) and entities (upserts and deletes under one version).

use rsp_core::UnixTime;
use rsp_core::policy::{PolicySetContent, SchemaFormat, StoredEntity};

use crate::engine::Engine;
use crate::fixtures::{key, tenant, tenant_id};

on_both_engines!(
    policy_sets_are_append_only_and_numbered_per_tenant,
    a_policy_set_needs_its_tenant,
    entity_writes_upsert_delete_and_bump_the_version,
);

fn permit() -> PolicySetContent {
    PolicySetContent {
        policies: "permit(principal, action, resource);".into(),
        schema: None,
        template_links: "[]".into(),
    }
}

fn forbid_with_schema(format: SchemaFormat) -> PolicySetContent {
    PolicySetContent {
        policies: "forbid(principal, action, resource);".into(),
        schema: Some((format, "entity User;".into())),
        template_links: "[{\"template_id\":\"t\",\"new_id\":\"l\",\"values\":{}}]".into(),
    }
}

fn user(id: &str, json: &str) -> StoredEntity {
    StoredEntity { entity_type: "User".into(), entity_id: id.into(), json: json.into() }
}

async fn policy_sets_are_append_only_and_numbered_per_tenant(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
    let (a, b) = (tenant_id("a"), tenant_id("b"));
    assert_eq!(store.latest_policy_set(&a).await.unwrap(), None);
    assert_eq!(store.append_policy_set(&a, &permit(), UnixTime(1), "admin", &[]).await.unwrap(), 1);
    assert_eq!(
        store.append_policy_set(&a, &forbid_with_schema(SchemaFormat::Cedar), UnixTime(2), "ops", &[]).await.unwrap(),
        2
    );
    assert_eq!(
        store.append_policy_set(&a, &forbid_with_schema(SchemaFormat::Json), UnixTime(3), "ops", &[]).await.unwrap(),
        3
    );
    assert_eq!(
        store.append_policy_set(&b, &permit(), UnixTime(2), "admin", &[]).await.unwrap(),
        1,
        "versions are per tenant"
    );

    let latest = store.latest_policy_set(&a).await.unwrap().unwrap();
    assert_eq!((latest.version, &latest.content), (3, &forbid_with_schema(SchemaFormat::Json)));
    assert_eq!((latest.tenant_id, latest.created_at, latest.created_by.as_str()), (a.clone(), UnixTime(3), "ops"));
    assert_eq!(store.policy_set(&a, 1).await.unwrap().unwrap().content, permit());
    assert_eq!(store.policy_set(&a, 2).await.unwrap().unwrap().content, forbid_with_schema(SchemaFormat::Cedar));
    assert_eq!(store.policy_set(&a, 4).await.unwrap(), None);
    assert_eq!(store.policy_set(&a, u64::MAX).await.ok().flatten(), None, "an impossible version is never found");
    assert_eq!(
        store.list_policy_versions(&a).await.unwrap(),
        vec![
            (3, UnixTime(3), "ops".to_owned()),
            (2, UnixTime(2), "ops".to_owned()),
            (1, UnixTime(1), "admin".to_owned())
        ]
    );
}

async fn a_policy_set_needs_its_tenant(engine: &Engine) {
    let result = engine.store.append_policy_set(&tenant_id("nobody"), &permit(), UnixTime(1), "admin", &[]).await;
    assert!(result.is_err(), "{result:?}");
    let entities = engine.store.write_entities(&tenant_id("nobody"), &[user("alice", "{}")], &[], &[]).await;
    assert!(entities.is_err(), "{entities:?}");
}

async fn entity_writes_upsert_delete_and_bump_the_version(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
    let (a, b) = (tenant_id("a"), tenant_id("b"));
    assert_eq!(store.entities(&a).await.unwrap(), (0, vec![]));
    assert_eq!(store.write_entities(&a, &[user("bob", "{}"), user("alice", "{}")], &[], &[]).await.unwrap(), 1);
    assert_eq!(store.entities(&a).await.unwrap(), (1, vec![user("alice", "{}"), user("bob", "{}")]));

    let changed = user("alice", "{\"attrs\":{\"level\":3}}");
    let version = store.write_entities(&a, std::slice::from_ref(&changed), &[("User".into(), "bob".into())], &[]).await;
    assert_eq!(version.unwrap(), 2);
    assert_eq!(store.entities(&a).await.unwrap(), (2, vec![changed.clone()]));
    let deleting_nothing = store.write_entities(&a, &[], &[("User".into(), "nobody".into())], &[]).await.unwrap();
    assert_eq!(deleting_nothing, 3, "every write bumps the version, even one that changes no row");
    assert_eq!(store.entities(&b).await.unwrap(), (0, vec![]), "entities leak across tenants");
}
