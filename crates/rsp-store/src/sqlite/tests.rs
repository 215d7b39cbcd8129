use rsp_core::{ClientKind, GrantType, KeyStatus, SigningAlgorithm};

use super::*;

fn tenant(id: &str) -> Tenant {
    Tenant {
        id: TenantId::parse(id).unwrap(),
        name: id.to_uppercase(),
        signing_alg: SigningAlgorithm::ES256,
        created_at: UnixTime(1),
        updated_at: UnixTime(1),
    }
}

fn key(tenant: &str, kid: &str, at: i64) -> StoredKey {
    StoredKey {
        tenant_id: TenantId::parse(tenant).unwrap(),
        kid: KeyId::parse(kid).unwrap(),
        alg: SigningAlgorithm::ES256,
        status: KeyStatus::Active,
        created_at: UnixTime(at),
        retired_at: None,
        publish_until: None,
        max_token_ttl_secs: 600,
        public_jwk: "{}".into(),
        sealed_private_key: vec![1, 2, 3],
    }
}

fn client(tenant: &str, id: &str) -> Client {
    Client {
        tenant_id: TenantId::parse(tenant).unwrap(),
        client_id: ClientId::parse(id).unwrap(),
        name: "svc".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some("hmac-sha256$x".into()),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("a b").unwrap(),
        audiences: vec!["https://api.example".into()],
        introspect_audiences: vec![],
        created_at: UnixTime(1),
        updated_at: UnixTime(1),
    }
}

#[tokio::test]
async fn tenants_clients_and_keys_round_trip_and_stay_apart() {
    let store = SqliteStore::in_memory().await.unwrap();
    store.create_tenant(&tenant("a"), &key("a", "k1", 1)).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1)).await.unwrap();
    assert!(matches!(store.create_tenant(&tenant("a"), &key("a", "k9", 1)).await, Err(StoreError::Conflict(_))));

    store.create_client(&client("a", "c1")).await.unwrap();
    let a = TenantId::parse("a").unwrap();
    let b = TenantId::parse("b").unwrap();
    let c1 = ClientId::parse("c1").unwrap();
    assert_eq!(store.get_client(&a, &c1).await.unwrap(), Some(client("a", "c1")));
    assert_eq!(store.get_client(&b, &c1).await.unwrap(), None, "clients leak across tenants");
}

#[tokio::test]
async fn a_failed_tenant_creation_leaves_nothing_behind() {
    let store = SqliteStore::in_memory().await.unwrap();
    store.create_tenant(&tenant("a"), &key("a", "k1", 1)).await.unwrap();
    // The key insert conflicts (same tenant+kid is impossible here, so use a key of another tenant id).
    let result = store.create_tenant(&tenant("b"), &key("a", "k1", 1)).await;
    assert!(result.is_err());
    assert_eq!(store.get_tenant(&TenantId::parse("b").unwrap()).await.unwrap(), None);
}

#[tokio::test]
async fn rotation_retires_the_active_key_and_publishes_it_until_its_tokens_expire() {
    let store = SqliteStore::in_memory().await.unwrap();
    store.create_tenant(&tenant("a"), &key("a", "k1", 1)).await.unwrap();
    let a = TenantId::parse("a").unwrap();
    store.rotate_key(&key("a", "k2", 100), UnixTime(100), 60).await.unwrap();
    let keys = store.published_keys(&a, UnixTime(100)).await.unwrap();
    assert_eq!(keys.len(), 2);
    let first = keys.iter().find(|k| k.kid.as_str() == "k1").unwrap();
    assert_eq!(first.status, KeyStatus::Retired);
    assert_eq!(first.publish_until, Some(UnixTime(100 + 600 + 60)));
    let later = store.published_keys(&a, UnixTime(760)).await.unwrap();
    assert_eq!(later.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), vec!["k2"]);
}

#[tokio::test]
async fn revocations_are_per_tenant_and_deleting_a_tenant_cascades() {
    let store = SqliteStore::in_memory().await.unwrap();
    store.create_tenant(&tenant("a"), &key("a", "k1", 1)).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1)).await.unwrap();
    let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
    let jti = TokenId::parse("j1").unwrap();
    store.revoke_token(&a, &jti, UnixTime(10)).await.unwrap();
    store.revoke_token(&a, &jti, UnixTime(10)).await.unwrap();
    assert!(store.is_revoked(&a, &jti).await.unwrap());
    assert!(!store.is_revoked(&b, &jti).await.unwrap());
    store.create_client(&client("a", "c1")).await.unwrap();
    store.delete_tenant(&a).await.unwrap();
    assert!(store.list_clients(&a).await.unwrap().is_empty());
    assert!(store.published_keys(&a, UnixTime(1)).await.unwrap().is_empty());
    assert!(matches!(store.delete_tenant(&a).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn policy_sets_are_append_only_and_entities_are_versioned() {
    use rsp_core::policy::{PolicySetContent, SchemaFormat, StoredEntity};
    use rsp_core::ports::PolicyStore;

    let store = SqliteStore::in_memory().await.unwrap();
    store.create_tenant(&tenant("a"), &key("a", "k1", 1)).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1)).await.unwrap();
    let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
    assert_eq!(store.latest_policy_set(&a).await.unwrap(), None);
    let first = PolicySetContent {
        policies: "permit(principal, action, resource);".into(),
        schema: None,
        template_links: "[]".into(),
    };
    let second = PolicySetContent {
        policies: "forbid(principal, action, resource);".into(),
        schema: Some((SchemaFormat::Cedar, "entity User;".into())),
        template_links: "[]".into(),
    };
    assert_eq!(store.append_policy_set(&a, &first, UnixTime(1), "admin").await.unwrap(), 1);
    assert_eq!(store.append_policy_set(&a, &second, UnixTime(2), "admin").await.unwrap(), 2);
    assert_eq!(store.append_policy_set(&b, &first, UnixTime(2), "admin").await.unwrap(), 1, "versions are per tenant");
    assert_eq!(store.latest_policy_set(&a).await.unwrap().unwrap().content, second);
    assert_eq!(store.policy_set(&a, 1).await.unwrap().unwrap().content, first);
    let versions: Vec<u64> = store.list_policy_versions(&a).await.unwrap().into_iter().map(|v| v.0).collect();
    assert_eq!(versions, vec![2, 1]);

    assert_eq!(store.entities(&a).await.unwrap(), (0, vec![]));
    let alice = StoredEntity { entity_type: "User".into(), entity_id: "alice".into(), json: "{}".into() };
    let bob = StoredEntity { entity_type: "User".into(), entity_id: "bob".into(), json: "{}".into() };
    assert_eq!(store.write_entities(&a, &[alice.clone(), bob.clone()], &[]).await.unwrap(), 1);
    let changed = StoredEntity { json: "{\"attrs\":{}}".into(), ..alice.clone() };
    assert_eq!(
        store.write_entities(&a, std::slice::from_ref(&changed), &[("User".into(), "bob".into())]).await.unwrap(),
        2
    );
    assert_eq!(store.entities(&a).await.unwrap(), (2, vec![changed]));
    assert_eq!(store.entities(&b).await.unwrap(), (0, vec![]));
}
