//! The token endpoint with client_credentials: RFC 6749 §4.4, §5, RFC 9068, RFC 8707.

use std::collections::HashSet;

use reqwest::StatusCode;
use rsp_testkit::{expect_status, spawn_app};
use serde_json::{Value, json};

use crate::helpers::{client, header, jwks, service_client, verify_with_jwks};

#[tokio::test]
async fn client_credentials_issues_an_rfc_9068_access_token() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let response = app.token_basic("default", &svc.id, &svc.secret, &[("scope", "a")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "a");
    assert_eq!(body["expires_in"], 600);
    assert!(body.get("refresh_token").is_none(), "OAUTH-4.4: no refresh token for client_credentials");

    let token = body["access_token"].as_str().unwrap();
    let jose = header(token);
    assert_eq!(jose.typ.as_deref(), Some("at+jwt"));
    assert_eq!(jose.alg, jsonwebtoken::Algorithm::ES256);
    let kid = jose.kid.unwrap();
    assert!(jwks(&app, "default").await.find(&kid).is_some(), "JWTAT-2.1: kid resolvable at jwks_uri");

    let claims = verify_with_jwks(&app, "default", token, Some(&app.issuer("default"))).await.unwrap();
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope"] {
        assert!(claims.get(claim).is_some(), "JWTAT-2.2: missing {claim}");
    }
    assert_eq!(claims["sub"], svc.id.as_str(), "JWTAT-2.2b: sub is the client for client_credentials");
    assert_eq!(claims["client_id"], svc.id.as_str());
    assert!(claims.get("auth_time").is_none());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
}

#[tokio::test]
async fn client_secret_post_authenticates_too() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &svc.id), ("client_secret", &svc.secret)])
        .send()
        .await
        .unwrap();
    let body = expect_status(response, 200).await;
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn token_ids_are_unique() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let mut seen = HashSet::new();
    for _ in 0..500 {
        let token = app.access_token("default", &svc.id, &svc.secret, &[]).await;
        let claims = verify_with_jwks(&app, "default", &token, None).await.unwrap();
        assert!(seen.insert(claims["jti"].as_str().unwrap().to_owned()), "duplicate jti");
    }
}

#[tokio::test]
async fn scopes_must_be_registered_and_omitted_scope_means_all_registered() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let response = app.token_basic("default", &svc.id, &svc.secret, &[("scope", "a c")]).await;
    assert_eq!(expect_status(response, 400).await["error"], "invalid_scope");
    let response = app.token_basic("default", &svc.id, &svc.secret, &[("scope", "rsp:admin")]).await;
    assert_eq!(expect_status(response, 400).await["error"], "invalid_scope");
    let body = expect_status(app.token_basic("default", &svc.id, &svc.secret, &[]).await, 200).await;
    assert_eq!(body["scope"], "a b");
}

#[tokio::test]
async fn resource_indicators_select_a_single_audience() {
    let app = spawn_app().await;
    let svc = client(
        &app,
        "default",
        json!({"name": "svc", "scope": "a", "audiences": ["https://a.example/api", "https://b.example/api"]}),
    )
    .await;
    // Without resource: the first registered audience (JWTAT-3 default resource).
    let token = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    assert!(verify_with_jwks(&app, "default", &token, Some("https://a.example/api")).await.is_ok());
    // With resource B: aud is B only, and A's validator refuses it (BCP-2.3).
    let token = app.access_token("default", &svc.id, &svc.secret, &[("resource", "https://b.example/api")]).await;
    let claims = verify_with_jwks(&app, "default", &token, Some("https://b.example/api")).await.unwrap();
    assert_eq!(claims["aud"], "https://b.example/api");
    assert!(verify_with_jwks(&app, "default", &token, Some("https://a.example/api")).await.is_err());
    // An unregistered or malformed resource.
    for resource in ["https://c.example/api", "not a uri", "https://b.example/api#frag"] {
        let response = app.token_basic("default", &svc.id, &svc.secret, &[("resource", resource)]).await;
        assert_eq!(expect_status(response, 400).await["error"], "invalid_target", "{resource}");
    }
}

#[tokio::test]
async fn platform_and_api_scopes_never_share_a_token() {
    let app = spawn_app().await;
    let mixed = client(&app, "default", json!({"name": "mixed", "scope": "a rsp:admin"})).await;
    let response = app.token_basic("default", &mixed.id, &mixed.secret, &[("scope", "a rsp:admin")]).await;
    assert_eq!(expect_status(response, 400).await["error"], "invalid_scope");
    // Other tenants cannot mint platform tokens.
    app.create_tenant("acme", None).await;
    let acme = client(&app, "acme", json!({"name": "x", "scope": "rsp:admin"})).await;
    let response = app.token_basic("acme", &acme.id, &acme.secret, &[("scope", "rsp:admin")]).await;
    assert_eq!(expect_status(response, 400).await["error"], "invalid_scope");
}

#[tokio::test]
async fn the_password_grant_and_unknown_grants_are_unsupported() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    for grant in ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"] {
        let response = app
            .http
            .post(app.endpoint("default", "/oauth2/token"))
            .basic_auth(&svc.id, Some(&svc.secret))
            .form(&[("grant_type", grant), ("username", "u"), ("password", "p")])
            .send()
            .await
            .unwrap();
        assert_eq!(expect_status(response, 400).await["error"], "unsupported_grant_type", "{grant}");
    }
    // Supported, but not registered for this client (RFC 6749 §5.2).
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/token"))
        .basic_auth(&svc.id, Some(&svc.secret))
        .form(&[("grant_type", "authorization_code"), ("code", "c")])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_status(response, 400).await["error"], "unauthorized_client");
    let response = app.http.post(app.endpoint("default", "/oauth2/token")).basic_auth(&svc.id, Some(&svc.secret));
    let response = response.form(&[("scope", "a")]).send().await.unwrap();
    assert_eq!(expect_status(response, 400).await["error"], "invalid_request");
}

#[tokio::test]
async fn client_authentication_failures_follow_rfc_6749_section_5_2() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    // Wrong secret via Basic: 401 with a Basic challenge.
    let response = app.token_basic("default", &svc.id, "wrong", &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(expect_status(response, 401).await["error"], "invalid_client");
    // No credentials at all (BCP-2.5).
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_status(response, 401).await["error"], "invalid_client");
    // Unknown client via the body.
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_status(response, 401).await["error"], "invalid_client");
    // Two methods at once (OAUTH-2.3.1a).
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/token"))
        .basic_auth(&svc.id, Some(&svc.secret))
        .form(&[("grant_type", "client_credentials"), ("client_secret", &svc.secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_status(response, 400).await["error"], "invalid_request");
    // A secret in the query string is refused even with otherwise valid credentials.
    let url = format!("{}?client_secret={}", app.endpoint("default", "/oauth2/token"), svc.secret);
    let response = app
        .http
        .post(url)
        .basic_auth(&svc.id, Some(&svc.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_status(response, 400).await["error"], "invalid_request");
}

#[tokio::test]
async fn repeated_wrong_secrets_throttle_that_client_only() {
    let app = spawn_app().await;
    let victim = service_client(&app, "default").await;
    let bystander = service_client(&app, "default").await;
    for _ in 0..10 {
        assert_eq!(app.token_basic("default", &victim.id, "wrong", &[]).await.status(), 401);
    }
    let locked = app.token_basic("default", &victim.id, &victim.secret, &[]).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().contains_key("retry-after"));
    expect_status(app.token_basic("default", &bystander.id, &bystander.secret, &[]).await, 200).await;
    app.advance(61);
    expect_status(app.token_basic("default", &victim.id, &victim.secret, &[]).await, 200).await;
}

#[tokio::test]
async fn form_rules_of_rfc_6749_section_3() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let post = |body: &'static str| {
        app.http
            .post(app.endpoint("default", "/oauth2/token"))
            .basic_auth(&svc.id, Some(&svc.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let repeated = post("grant_type=client_credentials&scope=a&scope=b").await.unwrap();
    assert_eq!(expect_status(repeated, 400).await["error"], "invalid_request");
    let unknown_ignored = post("grant_type=client_credentials&foo=bar").await.unwrap();
    expect_status(unknown_ignored, 200).await;
    let empty_is_absent = post("grant_type=client_credentials&scope=").await.unwrap();
    assert_eq!(expect_status(empty_is_absent, 200).await["scope"], "a b");
    let get = app.http.get(app.endpoint("default", "/oauth2/token")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn tokens_of_each_signing_algorithm_verify_against_the_jwks() {
    let app = spawn_app().await;
    for (tenant, alg) in [("ed", "EdDSA"), ("rsa", "RS256")] {
        app.create_tenant(tenant, Some(alg)).await;
        let svc = service_client(&app, tenant).await;
        let token = app.access_token(tenant, &svc.id, &svc.secret, &[]).await;
        assert_eq!(format!("{:?}", header(&token).alg), alg);
        verify_with_jwks(&app, tenant, &token, None).await.unwrap();
    }
}

#[tokio::test]
async fn clients_and_tokens_do_not_cross_tenants() {
    let app = spawn_app().await;
    app.create_tenant("acme", None).await;
    let svc = service_client(&app, "default").await;
    let response = app.token_basic("acme", &svc.id, &svc.secret, &[]).await;
    assert_eq!(expect_status(response, 401).await["error"], "invalid_client");
}
