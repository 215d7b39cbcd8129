use serde_json::json;

use super::*;
use crate::{EntityStore, PolicyDocument, PolicyEngine, validate};

fn policies(text: &str) -> crate::CompiledPolicies {
    validate(&PolicyDocument { policies: text.to_owned(), ..PolicyDocument::default() }).unwrap()
}

const ALLOW_ALL: &str = r#"@id("all") permit(principal, action, resource);"#;
const DENY_ALL: &str = r#"@id("none") forbid(principal, action, resource);"#;

fn request(principal: &str) -> DecisionRequest {
    DecisionRequest::from_json(json!({
        "principal": format!("User::\"{principal}\""), "action": "Action::\"read\"", "resource": "Doc::\"d\"",
        "context": {"b": 1, "a": 2},
    }))
    .unwrap()
}

fn engine_with(tenant: &TenantId, text: &str) -> PolicyEngine {
    let engine = PolicyEngine::new();
    engine.install_policies(tenant, policies(text), 1).unwrap();
    engine
}

#[test]
fn keys_differ_by_tenant_and_both_versions() {
    let acme = TenantId::parse("acme").unwrap();
    let engine = engine_with(&acme, ALLOW_ALL);
    let v1 = engine.snapshot(&acme).unwrap();
    let key = CacheKey::new(&v1, &request("a")).unwrap();

    let same_request_other_spelling = DecisionRequest::from_json(json!({
        "context": {"a": 2, "b": 1}, "resource": {"type": "Doc", "id": "d"},
        "action": {"type": "Action", "id": "read"}, "principal": {"type": "User", "id": "a"},
    }))
    .unwrap();
    assert_eq!(CacheKey::new(&v1, &same_request_other_spelling).unwrap(), key);
    assert_ne!(CacheKey::new(&v1, &request("b")).unwrap(), key);

    let policy_v2 = engine.install_policies(&acme, policies(ALLOW_ALL), 2).unwrap();
    assert_ne!(CacheKey::new(&policy_v2, &request("a")).unwrap(), key);
    let entity_v1 = engine.install_entities(&acme, EntityStore::empty(), 1).unwrap();
    assert_ne!(CacheKey::new(&entity_v1, &request("a")).unwrap(), CacheKey::new(&policy_v2, &request("a")).unwrap());

    let other = TenantId::parse("other").unwrap();
    let other_engine = engine_with(&other, ALLOW_ALL);
    assert_ne!(CacheKey::new(&other_engine.snapshot(&other).unwrap(), &request("a")).unwrap(), key);

    assert!(CacheKey::new(&v1, &request("a").with_entities(Vec::new())).is_none());
}

#[test]
fn counts_hits_and_misses_and_never_serves_a_stale_decision() {
    let acme = TenantId::parse("acme").unwrap();
    let engine = engine_with(&acme, ALLOW_ALL);
    let cache = DecisionCache::new(1000);

    let first = cache.authorize(&engine.snapshot(&acme).unwrap(), &request("a")).unwrap();
    let second = cache.authorize(&engine.snapshot(&acme).unwrap(), &request("a")).unwrap();
    assert!(first.allowed);
    assert_eq!(first, second);
    assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 1, entries: 1 });

    engine.install_policies(&acme, policies(DENY_ALL), 2).unwrap();
    let after_policy_write = cache.authorize(&engine.snapshot(&acme).unwrap(), &request("a")).unwrap();
    assert!(!after_policy_write.allowed, "the new policy version is a new key");
    assert_eq!(after_policy_write.policy_version, 2);

    engine.install_entities(&acme, EntityStore::empty(), 1).unwrap();
    let after_entity_write = cache.authorize(&engine.snapshot(&acme).unwrap(), &request("a")).unwrap();
    assert_eq!(after_entity_write.entity_version, 1);
    assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 3, entries: 3 });

    let with_entities = request("a").with_entities(Vec::new());
    assert!(!cache.authorize(&engine.snapshot(&acme).unwrap(), &with_entities).unwrap().allowed);
    assert_eq!(cache.stats().misses, 3, "requests with entities bypass the cache");
}

#[test]
fn request_errors_are_not_cached() {
    let acme = TenantId::parse("acme").unwrap();
    let schema = crate::SchemaSource::Cedar(
        "entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };".into(),
    );
    let typed =
        validate(&PolicyDocument { policies: ALLOW_ALL.into(), schema: Some(schema), template_links: Vec::new() })
            .unwrap();
    let engine = PolicyEngine::new();
    engine.install_policies(&acme, typed, 1).unwrap();
    let snapshot = engine.snapshot(&acme).unwrap();
    let cache = DecisionCache::new(10);
    assert!(cache.authorize(&snapshot, &request("a")).is_err(), "context has undeclared attributes");
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn stays_within_its_capacity() {
    let acme = TenantId::parse("acme").unwrap();
    let snapshot = engine_with(&acme, ALLOW_ALL).snapshot(&acme).unwrap();
    let cache = DecisionCache::new(32);
    for principal in 0..500 {
        cache.authorize(&snapshot, &request(&principal.to_string())).unwrap();
    }
    assert!(cache.stats().entries <= 32, "{:?}", cache.stats());

    let disabled = DecisionCache::new(0);
    disabled.authorize(&snapshot, &request("a")).unwrap();
    disabled.authorize(&snapshot, &request("a")).unwrap();
    assert_eq!(disabled.stats(), CacheStats { hits: 0, misses: 2, entries: 0 });
}

#[test]
fn switched_off_it_evaluates_every_request_and_follows_writes() {
    let acme = TenantId::parse("acme").unwrap();
    let engine = engine_with(&acme, ALLOW_ALL);
    let off = DecisionCache::new(0);
    for _ in 0..3 {
        assert!(off.authorize(&engine.snapshot(&acme).unwrap(), &request("a")).unwrap().allowed);
    }
    assert_eq!(off.stats(), CacheStats { hits: 0, misses: 3, entries: 0 });
    engine.install_policies(&acme, policies(DENY_ALL), 2).unwrap();
    assert!(!off.authorize(&engine.snapshot(&acme).unwrap(), &request("a")).unwrap().allowed);
}

#[test]
fn removing_a_tenant_drops_only_its_entries() {
    let (acme, other) = (TenantId::parse("acme").unwrap(), TenantId::parse("other").unwrap());
    let cache = DecisionCache::new(100);
    cache.authorize(&engine_with(&acme, ALLOW_ALL).snapshot(&acme).unwrap(), &request("a")).unwrap();
    cache.authorize(&engine_with(&other, ALLOW_ALL).snapshot(&other).unwrap(), &request("a")).unwrap();
    cache.remove_tenant(&acme);
    assert_eq!(cache.stats().entries, 1);
    cache.clear();
    assert_eq!(cache.stats().entries, 0);
}
