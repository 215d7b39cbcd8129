use serde_json::json;

use super::*;
use crate::{DecisionRequest, PolicyDocument, SchemaSource, authorize, validate};

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn compile(policies: &str) -> CompiledPolicies {
    validate(&PolicyDocument { policies: policies.to_owned(), ..PolicyDocument::default() }).unwrap()
}

const ALLOW_ALL: &str = r#"@id("all") permit(principal, action, resource);"#;
const DENY_ALL: &str = r#"@id("none") forbid(principal, action, resource);"#;

fn read_request() -> DecisionRequest {
    DecisionRequest::from_json(
        json!({"principal": "User::\"a\"", "action": "Action::\"read\"", "resource": "Doc::\"d\""}),
    )
    .unwrap()
}

fn allowed(engine: &PolicyEngine, tenant: &TenantId) -> bool {
    authorize(&engine.snapshot(tenant).unwrap(), &read_request()).unwrap().allowed
}

#[test]
fn tenants_start_empty_and_versions_start_at_zero() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    assert!(engine.snapshot(&acme).is_none());
    let snapshot = engine.install_policies(&acme, compile(ALLOW_ALL), 1).unwrap();
    assert_eq!((snapshot.policy_version(), snapshot.entity_version()), (1, 0));
    assert!(snapshot.entities().is_empty());
    assert_eq!(snapshot.tenant(), &acme);
    assert!(allowed(&engine, &acme));

    let other = tenant("other");
    let snapshot = engine.install_entities(&other, EntityStore::empty(), 4).unwrap();
    assert_eq!((snapshot.policy_version(), snapshot.entity_version()), (0, 4));
    assert!(!allowed(&engine, &other), "no policies: default deny");
    assert_eq!(engine.tenants(), [acme, other]);
}

#[test]
fn versions_only_move_forward() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    engine.install_policies(&acme, compile(ALLOW_ALL), 2).unwrap();
    for stale in [0, 1, 2] {
        let error = engine.install_policies(&acme, compile(DENY_ALL), stale).unwrap_err();
        assert_eq!(error, EngineError::StaleVersion { kind: VersionKind::Policy, installed: 2, offered: stale });
    }
    assert!(allowed(&engine, &acme), "nothing changed");
    engine.install_entities(&acme, EntityStore::empty(), 1).unwrap();
    assert!(matches!(
        engine.install_entities(&acme, EntityStore::empty(), 1),
        Err(EngineError::StaleVersion { kind: VersionKind::Entity, .. })
    ));
    let snapshot = engine.install_policies(&acme, compile(DENY_ALL), 3).unwrap();
    assert_eq!((snapshot.policy_version(), snapshot.entity_version()), (3, 1));
    assert!(!allowed(&engine, &acme));
}

#[test]
fn a_document_that_fails_to_compile_installs_nothing() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    engine.install_policies(&acme, compile(ALLOW_ALL), 1).unwrap();
    let broken = PolicyDocument { policies: format!("{DENY_ALL}\npermit(principal,"), ..PolicyDocument::default() };
    let errors = validate(&broken).unwrap_err();
    assert_eq!((errors[0].policy_id.as_deref(), errors[0].line), (Some("policy1"), Some(2)));
    let snapshot = engine.snapshot(&acme).unwrap();
    assert_eq!(snapshot.policy_version(), 1);
    assert!(allowed(&engine, &acme));
}

#[test]
fn entities_must_conform_to_the_installed_schema() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    let schema = SchemaSource::Cedar(
        "entity User { level: Long }; entity Doc; action read appliesTo { principal: User, resource: Doc };".into(),
    );
    let typed =
        validate(&PolicyDocument { policies: ALLOW_ALL.into(), schema: Some(schema), template_links: Vec::new() })
            .unwrap();
    let untyped_user = json!([{"uid": {"type": "User", "id": "a"}, "attrs": {"level": "high"}, "parents": []}]);
    let entities = EntityStore::from_json(untyped_user, None).unwrap();

    // Entities first, then a schema they break: the policy install is refused.
    engine.install_entities(&acme, entities.clone(), 1).unwrap();
    let error = engine.install_policies(&acme, typed.clone(), 1).unwrap_err();
    assert!(matches!(error, EngineError::Entities(_)), "{error}");
    assert_eq!(engine.snapshot(&acme).unwrap().policy_version(), 0);

    // Schema first, then entities that break it: the entity install is refused.
    let other = tenant("other");
    engine.install_policies(&other, typed.clone(), 1).unwrap();
    assert!(matches!(engine.install_entities(&other, entities, 1), Err(EngineError::Entities(_))));
    assert_eq!(engine.snapshot(&other).unwrap().entity_version(), 0);

    // Entities built without the schema but conforming are re-checked and accepted.
    let good = EntityStore::from_json(
        json!([{"uid": {"type": "User", "id": "a"}, "attrs": {"level": 2}, "parents": []}]),
        None,
    )
    .unwrap();
    let snapshot = engine.install_entities(&other, good, 2).unwrap();
    assert!(snapshot.entities().schema().unwrap().same(snapshot.schema().unwrap()));
}

#[test]
fn a_held_snapshot_survives_a_reload_and_a_removal() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    engine.install_policies(&acme, compile(ALLOW_ALL), 1).unwrap();
    let held = engine.snapshot(&acme).unwrap();
    engine.install_policies(&acme, compile(DENY_ALL), 2).unwrap();
    assert!(authorize(&held, &read_request()).unwrap().allowed);
    assert!(!allowed(&engine, &acme));
    assert!(engine.remove_tenant(&acme));
    assert!(!engine.remove_tenant(&acme));
    assert!(engine.snapshot(&acme).is_none());
    assert_eq!(held.policy_version(), 1);
}

#[test]
fn readers_never_see_a_torn_snapshot_during_reloads() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    engine.install_policies(&acme, compile(ALLOW_ALL), 1).unwrap();
    let (allow, deny) = (compile(ALLOW_ALL), compile(DENY_ALL));
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..300 {
                        let snapshot = engine.snapshot(&acme).unwrap();
                        let decision = authorize(&snapshot, &read_request()).unwrap();
                        // Odd versions allow, even versions deny: the decision matches its own snapshot.
                        assert_eq!(decision.allowed, decision.policy_version % 2 == 1);
                    }
                })
            })
            .collect();
        for version in 2..200 {
            let policies = if version % 2 == 1 { allow.clone() } else { deny.clone() };
            engine.install_policies(&acme, policies, version).unwrap();
        }
        for reader in readers {
            reader.join().unwrap();
        }
    });
    assert_eq!(engine.snapshot(&acme).unwrap().policy_version(), 199);
}
