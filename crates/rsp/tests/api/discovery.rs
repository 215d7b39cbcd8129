//! RFC 8414 and OpenID Connect discovery: META-2, META-3, META-3.3.

use rsp_testkit::spawn_app;
use serde_json::Value;

use crate::helpers::{service_client, verify_with_jwks};

async fn get_json(app: &rsp_testkit::TestApp, url: &str) -> (u16, Value) {
    let response = app.http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn metadata_lists_exactly_what_is_implemented() {
    let app = spawn_app().await;
    let (status, doc) = get_json(&app, &app.endpoint("default", "/.well-known/openid-configuration")).await;
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], app.issuer("default"));
    assert_eq!(doc["token_endpoint"], app.endpoint("default", "/oauth2/token"));
    assert_eq!(doc["jwks_uri"], app.endpoint("default", "/jwks.json"));
    assert!(doc["response_types_supported"].is_array());
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    let text = doc.to_string();
    assert!(!text.contains("implicit") && !text.contains("password"), "BCP-2.4: {text}");
}

#[tokio::test]
async fn both_metadata_locations_serve_the_same_document_and_only_for_their_tenant() {
    let app = spawn_app().await;
    app.create_tenant("t1", None).await;
    let inserted = get_json(&app, &format!("{}/.well-known/oauth-authorization-server/t/t1", app.url)).await;
    let appended = get_json(&app, &app.endpoint("t1", "/.well-known/openid-configuration")).await;
    let rfc8414_appended = get_json(&app, &app.endpoint("t1", "/.well-known/oauth-authorization-server")).await;
    assert_eq!(inserted.0, 200);
    assert_eq!(inserted.1, appended.1);
    assert_eq!(inserted.1, rfc8414_appended.1);
    assert_eq!(inserted.1["issuer"], app.issuer("t1"));
    let other = get_json(&app, &app.endpoint("default", "/.well-known/openid-configuration")).await;
    assert_ne!(other.1["issuer"], app.issuer("t1"));
    let unknown = get_json(&app, &app.endpoint("nope", "/.well-known/openid-configuration")).await;
    assert_eq!(unknown.0, 404);
    assert_eq!(unknown.1["error"], "invalid_request");
}

#[tokio::test]
async fn the_issuer_in_metadata_equals_the_iss_of_tokens_byte_for_byte() {
    let app = spawn_app().await;
    let client = service_client(&app, "default").await;
    let token = app.access_token("default", &client.id, &client.secret, &[]).await;
    let claims = verify_with_jwks(&app, "default", &token, None).await.unwrap();
    let (_, doc) = get_json(&app, &app.endpoint("default", "/.well-known/openid-configuration")).await;
    let (_, rfc) = get_json(&app, &format!("{}/.well-known/oauth-authorization-server/t/default", app.url)).await;
    assert_eq!(claims["iss"], doc["issuer"]);
    assert_eq!(rfc["issuer"], doc["issuer"]);
    assert_eq!(rfc["jwks_uri"], doc["jwks_uri"]);
}

#[tokio::test]
async fn forwarded_headers_do_not_change_the_issuer() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.endpoint("default", "/.well-known/openid-configuration"))
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .header("Forwarded", "host=evil.example;proto=https")
        .send()
        .await
        .unwrap();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], app.issuer("default"), "BCP-4.13");
}

#[tokio::test]
async fn public_documents_are_briefly_cacheable_and_everything_else_is_not() {
    let app = spawn_app().await;
    let jwks = app.http.get(app.endpoint("default", "/jwks.json")).send().await.unwrap();
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=60");
    assert!(jwks.headers().get("pragma").is_none());
    let error = app.http.get(app.endpoint("default", "/nothing")).send().await.unwrap();
    assert_eq!(error.headers()["cache-control"], "no-store");
    assert_eq!(error.headers()["pragma"], "no-cache");
}
