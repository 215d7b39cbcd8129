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

fn loaded(tenant: &TenantId, policies: &str, policy_version: u64, entity_version: u64) -> Arc<Snapshot> {
    Arc::new(
        Snapshot::new(tenant.clone(), compile(policies), policy_version, EntityStore::empty(), entity_version).unwrap(),
    )
}

#[test]
fn a_load_overtaken_by_a_removal_is_not_installed() {
    let engine = PolicyEngine::new();
    let (acme, other) = (tenant("acme"), tenant("other"));
    engine.install_policies(&acme, compile(ALLOW_ALL), 1).unwrap();

    // The load reads the store, then the notice of a newer write removes the tenant: the old read loses.
    let ticket = engine.load_ticket(&acme);
    let unrelated = engine.load_ticket(&other);
    assert!(engine.remove_tenant(&acme));
    assert!(matches!(engine.install_loaded(&ticket, &loaded(&acme, ALLOW_ALL, 1, 0)), Err(EngineError::Superseded)));
    assert!(engine.snapshot(&acme).is_none());
    // Another tenant's load is not disturbed, and a load that starts after the removal installs.
    assert!(engine.install_loaded(&unrelated, &loaded(&other, ALLOW_ALL, 1, 0)).is_ok());
    let ticket = engine.load_ticket(&acme);
    assert_eq!(engine.install_loaded(&ticket, &loaded(&acme, DENY_ALL, 2, 0)).unwrap().policy_version(), 2);

    // Removing every tenant overtakes every load under way, including ones of tenants never installed.
    let (ticket, fresh) = (engine.load_ticket(&acme), engine.load_ticket(&tenant("fresh")));
    assert_eq!(engine.remove_all(), 2);
    assert!(matches!(engine.install_loaded(&ticket, &loaded(&acme, DENY_ALL, 2, 0)), Err(EngineError::Superseded)));
    let late = engine.install_loaded(&fresh, &loaded(&tenant("fresh"), DENY_ALL, 1, 0));
    assert!(matches!(late, Err(EngineError::Superseded)));
    assert!(engine.tenants().is_empty());
}

#[test]
fn a_late_load_keeps_whichever_half_is_newer() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    let ticket = engine.load_ticket(&acme);
    engine.install_policies(&acme, compile(DENY_ALL), 3).unwrap();
    engine.install_entities(&acme, EntityStore::empty(), 1).unwrap();
    // The load read policies 2 (older) and entities 4 (newer): the result is policies 3, entities 4.
    let installed = engine.install_loaded(&ticket, &loaded(&acme, ALLOW_ALL, 2, 4)).unwrap();
    assert_eq!((installed.policy_version(), installed.entity_version()), (3, 4));
    assert!(!allowed(&engine, &acme));
    // Nothing newer: the installed snapshot stays, its next check moved to the load's.
    let late = loaded(&acme, ALLOW_ALL, 3, 4);
    late.mark_checked(500);
    let kept = engine.install_loaded(&engine.load_ticket(&acme), &late).unwrap();
    assert!(Arc::ptr_eq(&kept, &installed));
    assert_eq!(kept.checked_at(), 500);
}

#[test]
fn writers_replace_only_installed_tenants() {
    let engine = PolicyEngine::new();
    let acme = tenant("acme");
    assert!(engine.replace_policies(&acme, compile(ALLOW_ALL), 1).unwrap().is_none());
    assert!(engine.replace_entities(&acme, EntityStore::empty(), 1).unwrap().is_none());
    assert!(engine.snapshot(&acme).is_none());
    engine.install_policies(&acme, compile(ALLOW_ALL), 1).unwrap();
    engine.snapshot(&acme).unwrap().mark_checked(900);
    let replaced = engine.replace_entities(&acme, EntityStore::empty(), 1).unwrap().unwrap();
    assert_eq!((replaced.policy_version(), replaced.entity_version()), (1, 1));
    assert_eq!(replaced.checked_at(), 900, "the kept half is as fresh as before");
}

#[test]
fn one_caller_claims_each_recheck_and_check_times_only_move_forward() {
    let snapshot = loaded(&tenant("acme"), ALLOW_ALL, 1, 0);
    assert_eq!(snapshot.checked_at(), 0);
    assert!(snapshot.claim_recheck(10, 110));
    assert!(!snapshot.claim_recheck(10, 110), "already claimed");
    assert!(!snapshot.claim_recheck(109, 209), "claimed less than an interval ago");
    assert!(snapshot.claim_recheck(110, 210));
    snapshot.mark_checked(100);
    snapshot.mark_checked(50);
    assert_eq!(snapshot.checked_at(), 100, "never moved back");
}
