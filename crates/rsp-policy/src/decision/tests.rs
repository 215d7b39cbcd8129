use rsp_core::TenantId;
use serde_json::json;

use super::*;
use crate::{CompiledPolicies, EntityStore, PolicyDocument, SchemaSource, validate};

const POLICIES: &str = r#"
@id("owner") permit(principal, action == Action::"edit", resource) when { resource.owner == principal };
@id("public") permit(principal, action == Action::"view", resource) when { resource.public };
@id("locked") forbid(principal, action, resource) when { resource has locked && resource.locked };
"#;

const SCHEMA: &str = r#"
entity User;
entity Doc { owner: User, public: Bool, locked?: Bool };
action view, edit appliesTo { principal: User, resource: Doc, context: { mfa: Bool } };
"#;

fn compile(policies: &str, schema: Option<&str>) -> CompiledPolicies {
    let schema = schema.map(|text| SchemaSource::Cedar(text.to_owned()));
    validate(&PolicyDocument { policies: policies.to_owned(), schema, template_links: Vec::new() }).unwrap()
}

fn docs() -> serde_json::Value {
    json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "alice"}}, "public": false}, "parents": []},
        {"uid": {"type": "Doc", "id": "d2"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "bob"}}, "public": true, "locked": true}, "parents": []},
    ])
}

fn snapshot(policies: CompiledPolicies) -> Snapshot {
    let entities = EntityStore::from_json(docs(), policies.schema()).unwrap();
    Snapshot::new(TenantId::default_tenant(), policies, 3, entities, 5).unwrap()
}

fn request(principal: &str, action: &str, resource: &str) -> DecisionRequest {
    DecisionRequest::new(
        format!("User::\"{principal}\"").parse().unwrap(),
        format!("Action::\"{action}\"").parse().unwrap(),
        format!("Doc::\"{resource}\"").parse().unwrap(),
    )
}

fn mfa(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    json!({"mfa": value}).as_object().unwrap().clone()
}

#[test]
fn decisions_carry_reasons_and_versions() {
    let snapshot = snapshot(compile(POLICIES, None));
    let allowed = authorize(&snapshot, &request("alice", "edit", "d1")).unwrap();
    assert_eq!(
        allowed,
        Decision {
            allowed: true,
            reasons: vec!["owner".into()],
            errors: vec![],
            policy_version: 3,
            entity_version: 5,
            action_named: true
        }
    );
    let default_deny = authorize(&snapshot, &request("bob", "edit", "d1")).unwrap();
    assert!(!default_deny.allowed);
    assert!(default_deny.reasons.is_empty());
    let forbidden = authorize(&snapshot, &request("bob", "view", "d2")).unwrap();
    assert!(!forbidden.allowed);
    assert_eq!(forbidden.reasons, ["locked"]);
}

#[test]
fn an_evaluation_error_is_listed_and_the_decision_stands() {
    let policies = compile(
        r#"@id("broken") permit(principal, action, resource) when { principal.nope == 1 };
           @id("public") permit(principal, action == Action::"view", resource) when { resource.public };"#,
        None,
    );
    let snapshot = snapshot(policies);
    let denied = authorize(&snapshot, &request("alice", "edit", "d1")).unwrap();
    assert!(!denied.allowed);
    assert!(denied.reasons.is_empty());
    assert_eq!(denied.errors.len(), 1, "{denied:?}");
    assert!(denied.errors[0].starts_with("error while evaluating policy `broken`: "), "{}", denied.errors[0]);
    assert!(denied.errors[0].contains("nope"), "{}", denied.errors[0]);

    let allowed = authorize(&snapshot, &request("alice", "view", "d2")).unwrap();
    assert!(allowed.allowed, "a failing policy is skipped, the others still decide");
    assert_eq!((allowed.reasons.len(), allowed.errors.len()), (1, 1));
}

#[test]
fn request_entities_count_for_one_decision_only() {
    let snapshot = snapshot(compile(POLICIES, None));
    let carol_owns_d3 = json!({"uid": {"type": "Doc", "id": "d3"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "carol"}}, "public": false}, "parents": []});
    let with_entity = request("carol", "edit", "d3").with_entities(vec![carol_owns_d3]);
    assert!(authorize(&snapshot, &with_entity).unwrap().allowed);
    assert!(!authorize(&snapshot, &request("carol", "edit", "d3")).unwrap().allowed, "not kept");
    assert!(!snapshot.entities().contains(&"Doc::\"d3\"".parse().unwrap()));

    // On a uid conflict, the request's entity wins over the stored one.
    let carol_owns_d1 = json!({"uid": {"type": "Doc", "id": "d1"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "carol"}}, "public": false}, "parents": []});
    let overriding = request("carol", "edit", "d1").with_entities(vec![carol_owns_d1]);
    assert!(authorize(&snapshot, &overriding).unwrap().allowed);
    assert!(!authorize(&snapshot, &request("carol", "edit", "d1")).unwrap().allowed);
    assert!(authorize(&snapshot, &request("alice", "edit", "d1")).unwrap().allowed);

    let malformed = request("carol", "edit", "d1").with_entities(vec![json!({"uid": 3})]);
    assert_eq!(authorize(&snapshot, &malformed).unwrap_err().field, "entities");
}

#[test]
fn with_a_schema_the_context_and_request_are_type_checked() {
    let snapshot = snapshot(compile(POLICIES, Some(SCHEMA)));
    let good = request("alice", "edit", "d1").with_context(mfa(json!(true)));
    assert!(authorize(&snapshot, &good).unwrap().allowed);

    let wrong_type = request("alice", "edit", "d1").with_context(mfa(json!("yes")));
    let error = authorize(&snapshot, &wrong_type).unwrap_err();
    assert_eq!(error.field, "context", "{error}");
    let missing = authorize(&snapshot, &request("alice", "edit", "d1")).unwrap_err();
    assert_eq!(missing.field, "context", "{missing}");

    let wrong_principal = DecisionRequest::new(
        "Doc::\"d2\"".parse().unwrap(),
        "Action::\"view\"".parse().unwrap(),
        "Doc::\"d1\"".parse().unwrap(),
    )
    .with_context(mfa(json!(false)));
    assert_eq!(authorize(&snapshot, &wrong_principal).unwrap_err().field, "principal");
    let unknown_action = request("alice", "delete", "d1").with_context(mfa(json!(true)));
    assert_eq!(authorize(&snapshot, &unknown_action).unwrap_err().field, "action");

    let bad_entity =
        json!({"uid": {"type": "Doc", "id": "d9"}, "attrs": {"owner": "alice", "public": false}, "parents": []});
    let with_bad_entity = good.clone().with_entities(vec![bad_entity]);
    assert_eq!(authorize(&snapshot, &with_bad_entity).unwrap_err().field, "entities");
}

#[test]
fn without_a_schema_an_undeclared_context_is_fine() {
    let snapshot = snapshot(compile(POLICIES, None));
    let request = request("alice", "edit", "d1").with_context(mfa(json!("anything")));
    assert!(authorize(&snapshot, &request).unwrap().allowed);
}

#[test]
fn a_batch_decides_like_single_requests_in_order() {
    let snapshot = snapshot(compile(POLICIES, Some(SCHEMA)));
    let requests = vec![
        request("alice", "edit", "d1").with_context(mfa(json!(true))),
        request("bob", "view", "d2").with_context(mfa(json!(true))),
        request("alice", "edit", "d1"),
        request("bob", "view", "d1").with_context(mfa(json!(false))),
    ];
    let batch = authorize_batch(&snapshot, &requests);
    let singles: Vec<_> = requests.iter().map(|request| authorize(&snapshot, request)).collect();
    assert_eq!(batch, singles);
    assert!(batch[0].as_ref().unwrap().allowed);
    assert!(batch[2].is_err());
    assert!(authorize_batch(&snapshot, &[]).is_empty());
}

#[test]
fn a_default_deny_says_whether_any_policy_names_the_action() {
    let snapshot = snapshot(compile(POLICIES, None));
    let unnamed = authorize(&snapshot, &request("alice", "share", "d1")).unwrap();
    assert!(!unnamed.allowed && !unnamed.action_named);
    let named_but_not_permitted = authorize(&snapshot, &request("bob", "edit", "d1")).unwrap();
    assert!(!named_but_not_permitted.allowed && named_but_not_permitted.action_named);
    let forbidden = authorize(&snapshot, &request("alice", "view", "d2")).unwrap();
    assert!(!forbidden.allowed && forbidden.action_named);
    assert!(authorize(&snapshot, &request("alice", "edit", "d1")).unwrap().action_named);
}

#[test]
fn a_plain_context_is_the_one_cedars_parser_builds() {
    let contexts = [
        json!({}),
        json!({"mfa": true, "hour": 7, "neg": -3, "name": "ünïcode \"quoted\""}),
        json!({"tags": ["a", "b", "a"], "nested": {"depth": {"x": [1, 2, {"y": false}]}}, "empty": [], "rec": {}}),
        json!({"big": i64::MAX, "small": i64::MIN}),
    ];
    for context in contexts {
        let Value::Object(fields) = &context else { unreachable!() };
        let plain = super::plain_context(fields).expect("plain");
        assert_eq!(plain, Context::from_json_value(context.clone(), None).unwrap(), "{context}");
    }
    // Anything Cedar's parser must interpret (or reject with its own message) is left to it.
    for context in [
        json!({"who": {"__entity": {"type": "User", "id": "a"}}}),
        json!({"ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}}),
        json!({"x": {"__expr": "1"}}),
        json!({"deep": [{"__entity": {"type": "User", "id": "a"}}]}),
        json!({"f": 1.5}),
        json!({"u": u64::MAX}),
        json!({"n": null}),
    ] {
        let Value::Object(fields) = &context else { unreachable!() };
        assert!(super::plain_context(fields).is_none(), "{context}");
    }
}
