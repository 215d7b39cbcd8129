//! The policy decision point over HTTP: policy writes through the admin API, decisions through the
//! decision API, and Cedar's semantics unchanged on a synthetic workload.

use reqwest::{Method, StatusCode};
use rsp_testkit::{TestApp, expect_status, spawn_app};
use serde_json::{Value, json};

use crate::helpers::client;

const DOCS: &str = r#"
@id("owners") permit(principal, action, resource) when { resource.owner == principal };
@id("readers") permit(principal in Group::"readers", action == Action::"read", resource);
@id("no-secrets") forbid(principal, action, resource) when { resource has secret && resource.secret };
"#;

async fn put_policies(app: &TestApp, tenant: &str, body: Value) -> reqwest::Response {
    app.admin_call(Method::PUT, &format!("/tenants/{tenant}/policies"), Some(body)).await
}

/// A bearer token for the tenant's decision API.
async fn decision_token(app: &TestApp, tenant: &str) -> String {
    let caller = client(app, tenant, json!({"name": "pep", "scope": "rsp:authorize"})).await;
    app.access_token(tenant, &caller.id, &caller.secret, &[("scope", "rsp:authorize")]).await
}

async fn decide(app: &TestApp, tenant: &str, token: &str, body: &Value) -> reqwest::Response {
    app.http.post(app.endpoint(tenant, "/v1/authorize")).bearer_auth(token).json(body).send().await.unwrap()
}

async fn set_up(app: &TestApp) -> String {
    app.create_tenant("acme", None).await;
    let stored = expect_status(put_policies(app, "acme", json!({"policies": DOCS})).await, 200).await;
    assert_eq!(stored["version"], 1);
    let entities = json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Group", "id": "readers"}]},
        {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "bob"}}}, "parents": []},
        {"uid": {"type": "Doc", "id": "s1"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "bob"}}, "secret": true}, "parents": []},
    ]);
    let written = app.admin_call(Method::PUT, "/tenants/acme/entities", Some(entities)).await;
    assert_eq!(expect_status(written, 200).await["entity_version"], 1);
    decision_token(app, "acme").await
}

#[tokio::test]
async fn decisions_follow_the_policies_with_reasons_and_versions() {
    let app = spawn_app().await;
    let token = set_up(&app).await;
    let cases = [
        (
            json!({"principal": "User::\"bob\"", "action": "Action::\"edit\"", "resource": "Doc::\"d1\""}),
            "Allow",
            vec!["owners"],
        ),
        (
            json!({"principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Doc", "id": "d1"}}),
            "Allow",
            vec!["readers"],
        ),
        (
            json!({"principal": "User::\"alice\"", "action": "Action::\"edit\"", "resource": "Doc::\"d1\""}),
            "Deny",
            vec![],
        ),
        (
            json!({"principal": "User::\"bob\"", "action": "Action::\"edit\"", "resource": "Doc::\"s1\""}),
            "Deny",
            vec!["no-secrets"],
        ),
    ];
    for (request, decision, reasons) in cases {
        let answer = expect_status(decide(&app, "acme", &token, &request).await, 200).await;
        assert_eq!(answer["decision"], decision, "{request}");
        assert_eq!(answer["reasons"], json!(reasons), "{request}");
        assert_eq!(answer["policy_version"], 1);
        assert_eq!(answer["errors"], json!([]));
    }
}

#[tokio::test]
async fn an_invalid_policy_write_is_rejected_with_diagnostics_and_changes_nothing() {
    let app = spawn_app().await;
    let token = set_up(&app).await;
    let broken =
        "@id(\"fine\") permit(principal, action, resource);\n@id(\"broken\") permit(principal, action resource);";
    let rejected = expect_status(put_policies(&app, "acme", json!({"policies": broken})).await, 400).await;
    assert_eq!(rejected["error"], "invalid_request");
    let diagnostic = &rejected["diagnostics"][0];
    assert_eq!(diagnostic["policy_id"], "broken");
    assert_eq!(diagnostic["line"], 2);
    assert!(diagnostic["column"].is_u64());

    let schema = "entity User; entity Doc { owner: User }; action edit appliesTo { principal: User, resource: Doc };";
    let invalid = json!({"policies": "@id(\"x\") permit(principal, action == Action::\"edit\", resource) when { resource.nope };", "schema": schema});
    let rejected = expect_status(put_policies(&app, "acme", invalid).await, 400).await;
    assert_eq!(rejected["diagnostics"][0]["policy_id"], "x");

    let live = expect_status(app.admin_call(Method::GET, "/tenants/acme/policies", None).await, 200).await;
    assert_eq!(live["version"], 1);
    let request = json!({"principal": "User::\"alice\"", "action": "Action::\"edit\"", "resource": "Doc::\"d1\""});
    assert_eq!(expect_status(decide(&app, "acme", &token, &request).await, 200).await["decision"], "Deny");

    let dry_run =
        app.admin_call(Method::POST, "/tenants/acme/policies/validate", Some(json!({"policies": broken}))).await;
    let dry_run = expect_status(dry_run, 200).await;
    assert_eq!(dry_run["valid"], false);
    assert_eq!(dry_run["diagnostics"][0]["policy_id"], "broken");
}

#[tokio::test]
async fn writes_are_seen_by_the_very_next_decision_and_rollback_restores() {
    let app = spawn_app().await;
    let token = set_up(&app).await;
    let request = json!({"principal": "User::\"alice\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\""});
    assert_eq!(expect_status(decide(&app, "acme", &token, &request).await, 200).await["decision"], "Allow");
    // Twice, so the second answer is the cached one.
    assert_eq!(expect_status(decide(&app, "acme", &token, &request).await, 200).await["decision"], "Allow");

    let deleted =
        app.admin_call(Method::DELETE, "/tenants/acme/entities", Some(json!({"uids": ["User::\"alice\""]}))).await;
    assert_eq!(expect_status(deleted, 200).await["entity_version"], 2);
    let answer = expect_status(decide(&app, "acme", &token, &request).await, 200).await;
    assert_eq!(answer["decision"], "Deny", "a cached decision survived an entity write");
    assert_eq!(answer["entity_version"], 2);

    let everything = json!({"policies": "@id(\"all\") permit(principal, action, resource);"});
    assert_eq!(expect_status(put_policies(&app, "acme", everything).await, 200).await["version"], 2);
    assert_eq!(expect_status(decide(&app, "acme", &token, &request).await, 200).await["decision"], "Allow");

    let rolled = app.admin_call(Method::POST, "/tenants/acme/policies/rollback", Some(json!({"version": 1}))).await;
    assert_eq!(expect_status(rolled, 200).await["version"], 3);
    let answer = expect_status(decide(&app, "acme", &token, &request).await, 200).await;
    assert_eq!((answer["decision"].as_str(), answer["policy_version"].as_u64()), (Some("Deny"), Some(3)));
    let versions = expect_status(app.admin_call(Method::GET, "/tenants/acme/policies/versions", None).await, 200).await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
    let missing = app.admin_call(Method::POST, "/tenants/acme/policies/rollback", Some(json!({"version": 9}))).await;
    expect_status(missing, 404).await;
}

#[tokio::test]
async fn malformed_requests_name_the_field_and_evaluation_errors_are_reported() {
    let app = spawn_app().await;
    let token = set_up(&app).await;
    for (body, field) in [
        (json!({"action": "Action::\"read\"", "resource": "Doc::\"d1\""}), "principal"),
        (json!({"principal": "alice", "action": "Action::\"read\"", "resource": "Doc::\"d1\""}), "principal"),
        (json!({"principal": "User::\"a\"", "action": 5, "resource": "Doc::\"d1\""}), "action"),
        (
            json!({"principal": "User::\"a\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\"", "context": 1}),
            "context",
        ),
    ] {
        let answer = expect_status(decide(&app, "acme", &token, &body).await, 400).await;
        assert_eq!(answer["error"], "invalid_request");
        assert!(answer["error_description"].as_str().unwrap().starts_with(field), "{answer}");
    }
    let erroring =
        json!({"policies": "@id(\"bad\") permit(principal, action, resource) when { principal.nope == 1 };"});
    expect_status(put_policies(&app, "acme", erroring).await, 200).await;
    let request = json!({"principal": "User::\"bob\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\""});
    let answer = expect_status(decide(&app, "acme", &token, &request).await, 200).await;
    assert_eq!(answer["decision"], "Deny");
    assert!(answer["errors"][0].as_str().unwrap().contains("bad"), "{answer}");
}

#[tokio::test]
async fn the_decision_api_needs_a_decision_token_of_its_tenant() {
    let app = spawn_app().await;
    let token = set_up(&app).await;
    let request = json!({"principal": "User::\"bob\"", "action": "Action::\"edit\"", "resource": "Doc::\"d1\""});
    let none = app.http.post(app.endpoint("acme", "/v1/authorize")).json(&request).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    // A token of another tenant, and an API token of this one.
    let other = decision_token(&app, "default").await;
    assert_eq!(decide(&app, "acme", &other, &request).await.status(), StatusCode::UNAUTHORIZED);
    let api = client(&app, "acme", json!({"name": "api", "scope": "a"})).await;
    let api_token = app.access_token("acme", &api.id, &api.secret, &[]).await;
    assert_eq!(decide(&app, "acme", &api_token, &request).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(decide(&app, "acme", &token, &request).await.status(), StatusCode::OK);
    let claims =
        crate::helpers::verify_with_jwks(&app, "acme", &token, Some(&format!("{}/v1", app.issuer("acme")))).await;
    assert!(claims.is_ok(), "the decision token's audience is the tenant's decision API");
}

#[tokio::test]
async fn the_batch_endpoint_agrees_with_single_decisions_on_the_cedar_workload() {
    let app = spawn_app().await;
    app.create_tenant("work", None).await;
    let policies: Vec<Value> =
        serde_json::from_str(include_str!("../../../rsp-policy/tests/fixtures/policies.json")).unwrap();
    let text: String = policies
        .iter()
        .map(|p| format!("@id(\"{}\")\n{}\n", p["id"].as_str().unwrap(), p["content"].as_str().unwrap()))
        .collect();
    expect_status(put_policies(&app, "work", json!({"policies": text})).await, 200).await;
    let entities: Value = serde_json::from_str(include_str!("../../../rsp-policy/tests/fixtures/data.json")).unwrap();
    expect_status(app.admin_call(Method::PUT, "/tenants/work/entities", Some(entities.clone())).await, 200).await;
    let requests: Vec<Value> =
        serde_json::from_str(include_str!("../../../rsp-policy/tests/fixtures/requests.json")).unwrap();
    let requests = &requests[..200];
    let token = decision_token(&app, "work").await;

    // The oracle: the engine in process on the same inputs (itself proven equal to Cedar in rsp-policy).
    let document = rsp_policy::PolicyDocument { policies: text, ..Default::default() };
    let engine = rsp_policy::PolicyEngine::new();
    let tenant = rsp_core::TenantId::parse("work").unwrap();
    engine.install_policies(&tenant, rsp_policy::validate(&document).unwrap(), 1).unwrap();
    engine.install_entities(&tenant, rsp_policy::EntityStore::from_json(entities, None).unwrap(), 1).unwrap();
    let snapshot = engine.snapshot(&tenant).unwrap();

    let batch = app
        .http
        .post(app.endpoint("work", "/v1/authorize/batch"))
        .bearer_auth(&token)
        .json(&json!({"requests": requests}))
        .send()
        .await
        .unwrap();
    let batch = expect_status(batch, 200).await;
    let mut allowed = 0;
    for (index, request) in requests.iter().enumerate() {
        let single = expect_status(decide(&app, "work", &token, request).await, 200).await;
        let expected =
            rsp_policy::authorize(&snapshot, &rsp_policy::DecisionRequest::from_json(request.clone()).unwrap())
                .unwrap();
        assert_eq!(single["decision"] == "Allow", expected.allowed, "request {index}");
        assert_eq!(single["reasons"], json!(expected.reasons), "request {index}");
        assert_eq!(single["errors"], json!(expected.errors), "request {index}");
        assert_eq!(batch["results"][index], single, "batch and single differ at {index}");
        allowed += usize::from(expected.allowed);
    }
    assert!(allowed > 0 && allowed < requests.len(), "the workload exercises both outcomes");

    let too_many = json!({"requests": vec![requests[0].clone(); 1001]});
    let response = app
        .http
        .post(app.endpoint("work", "/v1/authorize/batch"))
        .bearer_auth(&token)
        .json(&too_many)
        .send()
        .await
        .unwrap();
    expect_status(response, 400).await;
}

#[tokio::test]
async fn policies_and_entities_survive_a_restart() {
    let app = spawn_app().await;
    set_up(&app).await;
    let app = app.restart().await.unwrap();
    let token = decision_token(&app, "acme").await;
    let request = json!({"principal": "User::\"alice\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\""});
    let answer = expect_status(decide(&app, "acme", &token, &request).await, 200).await;
    assert_eq!(
        (answer["decision"].as_str(), answer["policy_version"].as_u64(), answer["entity_version"].as_u64()),
        (Some("Allow"), Some(1), Some(1))
    );
}

#[tokio::test]
async fn tenant_policies_govern_which_scopes_a_client_receives() {
    let app = spawn_app().await;
    app.create_tenant("gov", None).await;
    let svc = client(&app, "gov", json!({"name": "svc", "scope": "a b"})).await;
    // Policies about other actions leave issuance to the registered scopes.
    expect_status(
        put_policies(&app, "gov", json!({"policies": "permit(principal, action == Action::\"read\", resource);"}))
            .await,
        200,
    )
    .await;
    let body = expect_status(app.token_basic("gov", &svc.id, &svc.secret, &[("scope", "a b")]).await, 200).await;
    assert_eq!(body["scope"], "a b");

    let governed = format!(
        "@id(\"svc-a\") permit(principal == Client::\"{}\", action == Action::\"RequestScope\", resource == Scope::\"a\");",
        svc.id
    );
    expect_status(put_policies(&app, "gov", json!({"policies": governed})).await, 200).await;
    let narrowed = expect_status(app.token_basic("gov", &svc.id, &svc.secret, &[("scope", "a b")]).await, 200).await;
    assert_eq!(narrowed["scope"], "a", "OAUTH-5.1: the narrowed scope is returned");
    let default = expect_status(app.token_basic("gov", &svc.id, &svc.secret, &[]).await, 200).await;
    assert_eq!(default["scope"], "a");
    let refused = app.token_basic("gov", &svc.id, &svc.secret, &[("scope", "b")]).await;
    assert_eq!(expect_status(refused, 400).await["error"], "invalid_scope");
}

#[tokio::test]
async fn scope_policies_of_the_default_tenant_never_lock_administrators_out() {
    let app = spawn_app().await;
    let svc = client(&app, "default", json!({"name": "svc", "scope": "a"})).await;
    // Governs scope requests and permits none of them.
    let nothing = "@id(\"only-x\") permit(principal, action == Action::\"RequestScope\", resource == Scope::\"x\");";
    expect_status(put_policies(&app, "default", json!({"policies": nothing})).await, 200).await;
    let refused = app.token_basic("default", &svc.id, &svc.secret, &[("scope", "a")]).await;
    assert_eq!(expect_status(refused, 400).await["error"], "invalid_scope", "the policy governs API scopes");
    // The admin token is decided by the admin permissions, not by scope policies.
    let tenants = app.admin_call(Method::GET, "/tenants", None).await;
    expect_status(tenants, 200).await;
}

#[tokio::test]
async fn the_admin_api_obeys_the_default_tenants_cedar_policies_once_they_name_an_action() {
    let app = spawn_app().await;
    app.create_tenant("keep", None).await;
    let rules = r#"
        @id("no-tenant-deletes") forbid(principal, action == Rsp::Action::"tenant.delete", resource);
        @id("lock-policy-writes") forbid(principal, action == Rsp::Action::"policy.write", resource);
    "#;
    expect_status(put_policies(&app, "default", json!({"policies": rules})).await, 200).await;
    let denied = app.admin_call(Method::DELETE, "/tenants/keep", None).await;
    assert_eq!(expect_status(denied, 403).await["error"], "access_denied");
    // Actions no policy names are still decided by the rsp:admin scope alone.
    app.create_tenant("other", None).await;
    // Writing another tenant's policies is now forbidden ...
    let locked = put_policies(&app, "other", json!({"policies": "permit(principal, action, resource);"})).await;
    expect_status(locked, 403).await;
    // ... but the default tenant's own policies stay writable, so a lock-out can always be undone.
    expect_status(put_policies(&app, "default", json!({"policies": ""})).await, 200).await;
    expect_status(app.admin_call(Method::DELETE, "/tenants/keep", None).await, 204).await;
}
