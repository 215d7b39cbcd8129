//! Introspection (RFC 7662) and revocation (RFC 7009): INTRO-2.1, INTRO-2.2a/b, INTRO-4, REVOKE-2.x.

use reqwest::StatusCode;
use rsp_testkit::{TestApp, expect_status, spawn_app};
use serde_json::json;

use crate::helpers::{Registered, client, service_client};

async fn introspect_raw(app: &TestApp, tenant: &str, caller: &Registered, token: &str, hint: Option<&str>) -> String {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    let response = app
        .http
        .post(app.endpoint(tenant, "/oauth2/introspect"))
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.text().await.unwrap()
}

async fn revoke(app: &TestApp, tenant: &str, caller: &Registered, token: &str) -> reqwest::Response {
    app.http
        .post(app.endpoint(tenant, "/oauth2/revoke"))
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&[("token", token), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap()
}

const INACTIVE: &str = r#"{"active":false}"#;

#[tokio::test]
async fn a_live_token_is_active_for_its_client_whatever_the_hint() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let token = app.access_token("default", &svc.id, &svc.secret, &[("scope", "a")]).await;
    let answer = app.introspect("default", &svc.id, &svc.secret, &token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], svc.id.as_str());
    assert_eq!(answer["scope"], "a");
    assert_eq!(answer["token_type"], "Bearer");
    let hinted: serde_json::Value =
        serde_json::from_str(&introspect_raw(&app, "default", &svc, &token, Some("refresh_token")).await).unwrap();
    assert_eq!(hinted["active"], true, "INTRO-2.1: the hint is only a hint");
}

#[tokio::test]
async fn every_kind_of_dead_token_gets_the_same_bare_answer() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let stranger = service_client(&app, "default").await;
    app.create_tenant("acme", None).await;
    let acme = service_client(&app, "acme").await;

    let revoked = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    assert_eq!(revoke(&app, "default", &svc, &revoked).await.status(), 200);
    let foreign_tenant = app.access_token("acme", &acme.id, &acme.secret, &[]).await;
    let others = app.access_token("default", &stranger.id, &stranger.secret, &[]).await;
    let expiring = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let genuine = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    // One byte of the signature changed.
    let at = genuine.rfind('.').unwrap() + 10;
    let replacement = if &genuine[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{replacement}{}", &genuine[..at], &genuine[at + 1..]);

    for token in [revoked.as_str(), foreign_tenant.as_str(), others.as_str(), "random-garbage", tampered.as_str()] {
        assert_eq!(introspect_raw(&app, "default", &svc, token, None).await, INACTIVE, "{token}");
    }
    app.advance(601);
    assert_eq!(introspect_raw(&app, "default", &svc, &expiring, None).await, INACTIVE);
}

#[tokio::test]
async fn a_resource_server_sees_only_tokens_for_its_audience() {
    let app = spawn_app().await;
    let svc = client(
        &app,
        "default",
        json!({"name": "svc", "scope": "a", "audiences": ["https://a.example", "https://b.example"]}),
    )
    .await;
    let rs_a =
        client(&app, "default", json!({"name": "rs-a", "scope": "", "introspect_audiences": ["https://a.example"]}))
            .await;
    let for_a = app.access_token("default", &svc.id, &svc.secret, &[("resource", "https://a.example")]).await;
    let for_b = app.access_token("default", &svc.id, &svc.secret, &[("resource", "https://b.example")]).await;
    let answer: serde_json::Value =
        serde_json::from_str(&introspect_raw(&app, "default", &rs_a, &for_a, None).await).unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["aud"], "https://a.example");
    assert_eq!(introspect_raw(&app, "default", &rs_a, &for_b, None).await, INACTIVE, "INTRO-4");
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let token = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert!(!body.contains("active"), "no token data without authentication: {body}");
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/introspect"))
        .basic_auth(&svc.id, Some("wrong"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_status(response, 401).await["error"], "invalid_client");
}

#[tokio::test]
async fn revocation_answers_200_for_unknown_tokens_and_protects_other_clients_tokens() {
    let app = spawn_app().await;
    let owner = service_client(&app, "default").await;
    let other = service_client(&app, "default").await;
    assert_eq!(revoke(&app, "default", &owner, "not-a-token").await.status(), 200);
    let token = app.access_token("default", &owner.id, &owner.secret, &[]).await;
    let response = revoke(&app, "default", &other, &token).await;
    assert_eq!(expect_status(response, 400).await["error"], "unauthorized_client");
    assert_eq!(app.introspect("default", &owner.id, &owner.secret, &token).await["active"], true, "REVOKE-2.1a");
    assert_eq!(revoke(&app, "default", &owner, &token).await.status(), 200);
    assert_eq!(revoke(&app, "default", &owner, &token).await.status(), 200, "revoking twice is fine");
    assert_eq!(introspect_raw(&app, "default", &owner, &token, None).await, INACTIVE);
}

#[tokio::test]
async fn a_revoked_admin_token_no_longer_opens_the_admin_api() {
    let app = spawn_app().await;
    let admin = Registered { id: app.admin.client_id.clone(), secret: app.admin.client_secret.clone() };
    let token = app.admin_token().await;
    let list = |token: String| app.http.get(format!("{}/admin/v1/tenants", app.url)).bearer_auth(token).send();
    assert_eq!(list(token.clone()).await.unwrap().status(), 200);
    assert_eq!(revoke(&app, "default", &admin, &token).await.status(), 200);
    let response = list(token).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

/// INTRO-2.2a and REVOKE-2.1c once introspection answers from the verified-token cache.
#[tokio::test]
async fn a_remembered_answer_never_outlives_a_revocation_or_an_expiry_nor_crosses_tenants() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    app.create_tenant("acme", None).await;
    let acme = service_client(&app, "acme").await;
    let token = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let expiring = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    // The second answer of each comes from the verified-token cache.
    for _ in 0..2 {
        assert_eq!(app.introspect("default", &svc.id, &svc.secret, &token).await["active"], true);
        assert_eq!(app.introspect("default", &svc.id, &svc.secret, &expiring).await["active"], true);
    }
    assert_eq!(introspect_raw(&app, "acme", &acme, &token, None).await, INACTIVE, "another tenant's token");

    assert_eq!(revoke(&app, "default", &svc, &token).await.status(), 200);
    assert_eq!(introspect_raw(&app, "default", &svc, &token, None).await, INACTIVE, "revoked after it was cached");
    app.advance(601);
    assert_eq!(introspect_raw(&app, "default", &svc, &expiring, None).await, INACTIVE, "expired after it was cached");
}
