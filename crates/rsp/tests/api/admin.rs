//! The admin API: authentication, tenants, clients, keys, and its OpenAPI document.

use reqwest::{Method, StatusCode};
use rsp_testkit::{expect_status, spawn_app};
use serde_json::{Value, json};

use crate::helpers::service_client;

#[tokio::test]
async fn the_admin_api_requires_an_admin_token() {
    let app = spawn_app().await;
    let url = format!("{}/admin/v1/tenants", app.url);
    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));

    // A valid token of an ordinary client: wrong audience, so not an admin token at all.
    let svc = service_client(&app, "default").await;
    let token = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let response = app.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(expect_status(response, 401).await["error"], "invalid_token");

    // An expired admin token.
    let admin = app.admin_token().await;
    app.advance(601);
    let response = app.http.get(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // JWTAT-4: alg none and a forged signature.
    let forged = format!("{}.{}.", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0", admin.split('.').nth(1).unwrap());
    let response = app.http.get(&url).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenants_can_be_created_listed_updated_and_deleted() {
    let app = spawn_app().await;
    let created = app.create_tenant("acme", Some("EdDSA")).await;
    assert_eq!(created["issuer"], app.issuer("acme"));
    assert_eq!(created["signing_alg"], "EdDSA");

    let duplicate = app.admin_call(Method::POST, "/tenants", Some(json!({"id": "acme", "name": "again"}))).await;
    assert_eq!(expect_status(duplicate, 409).await["error"], "conflict");
    for bad in [
        json!({"id": "Acme", "name": "x"}),
        json!({"id": "a_b", "name": "x"}),
        json!({"id": "ok", "name": ""}),
        json!({"id": "ok", "name": "x", "signing_alg": "HS256"}),
        json!({"id": "ok", "name": "x", "extra": 1}),
        json!({"name": "x"}),
    ] {
        let response = app.admin_call(Method::POST, "/tenants", Some(bad.clone())).await;
        assert_eq!(expect_status(response, 400).await["error"], "invalid_request", "{bad}");
    }

    let list = expect_status(app.admin_call(Method::GET, "/tenants", None).await, 200).await;
    let ids: Vec<&str> = list["tenants"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["acme", "default"]);

    let updated = app.admin_call(Method::PATCH, "/tenants/acme", Some(json!({"name": "Acme Corp"}))).await;
    assert_eq!(expect_status(updated, 200).await["name"], "Acme Corp");

    expect_status(app.admin_call(Method::DELETE, "/tenants/acme", None).await, 204).await;
    expect_status(app.admin_call(Method::GET, "/tenants/acme", None).await, 404).await;
    let gone = app.http.get(app.endpoint("acme", "/jwks.json")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let default = app.admin_call(Method::DELETE, "/tenants/default", None).await;
    assert_eq!(expect_status(default, 409).await["error"], "conflict");
}

#[tokio::test]
async fn clients_are_managed_and_secrets_shown_once() {
    let app = spawn_app().await;
    let created = app.create_client("default", json!({"name": "svc", "scope": "a b"})).await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "≥256 bits of entropy");

    let fetched =
        expect_status(app.admin_call(Method::GET, &format!("/tenants/default/clients/{id}"), None).await, 200).await;
    assert!(fetched.get("client_secret").is_none());
    let listed = expect_status(app.admin_call(Method::GET, "/tenants/default/clients", None).await, 200).await;
    assert!(!listed.to_string().contains(&secret));

    let patched =
        app.admin_call(Method::PATCH, &format!("/tenants/default/clients/{id}"), Some(json!({"scope": "a"}))).await;
    assert_eq!(expect_status(patched, 200).await["scope"], "a");
    let response = app.token_basic("default", &id, &secret, &[("scope", "b")]).await;
    assert_eq!(expect_status(response, 400).await["error"], "invalid_scope");

    let rotated =
        expect_status(app.admin_call(Method::POST, &format!("/tenants/default/clients/{id}/secret"), None).await, 200)
            .await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(app.token_basic("default", &id, &secret, &[]).await.status(), 401);
    expect_status(app.token_basic("default", &id, new_secret, &[]).await, 200).await;

    expect_status(app.admin_call(Method::DELETE, &format!("/tenants/default/clients/{id}"), None).await, 204).await;
    assert_eq!(app.token_basic("default", &id, new_secret, &[]).await.status(), 401);
}

#[tokio::test]
async fn invalid_client_registrations_are_refused() {
    let app = spawn_app().await;
    for bad in [
        json!({"name": "p", "kind": "public"}),
        json!({"name": "x", "grant_types": ["password"]}),
        json!({"name": "x", "grant_types": ["implicit"]}),
        json!({"name": "x", "scope": "a  b"}),
        json!({"name": "x", "audiences": ["relative/path"]}),
        json!({"name": "x", "client_id": "chosen-by-me"}),
        json!({"name": 5}),
    ] {
        let response = app.admin_call(Method::POST, "/tenants/default/clients", Some(bad.clone())).await;
        assert_eq!(expect_status(response, 400).await["error"], "invalid_request", "{bad}");
    }
    let response = app.admin_call(Method::POST, "/tenants/nope/clients", Some(json!({"name": "x"}))).await;
    expect_status(response, 404).await;
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let app = spawn_app().await;
    let response = app.http.get(format!("{}/admin/v1/openapi.json", app.url)).send().await.unwrap();
    let doc: Value = expect_status(response, 200).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}
