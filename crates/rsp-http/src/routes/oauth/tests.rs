//! The code flow's HTTP surface in process: the token endpoint's dispatch to the new grants and userinfo
//! (GET and POST, 401 with a Bearer challenge).

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use rsp_core::{ClientKind, ManualClock, TenantId, UnixTime};
use rsp_oauth::admin::{ClientSettings, NewTenant};
use rsp_oauth::crypto::MasterKey;
use rsp_oauth::{AuthService, FormParams, Issuers, SignedInUser, TokenSettings, UserClaimsSource, pkce};
use rsp_policy::PolicyService;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::router::{AppState, router};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "https://app.example/cb";

struct Ada;

#[async_trait]
impl UserClaimsSource for Ada {
    async fn claims(&self, _tenant: &TenantId, user_id: &str) -> Option<Map<String, Value>> {
        (user_id == "ada").then(|| json!({"name": "Ada"}).as_object().unwrap().clone())
    }
}

/// A router over an in-memory store, and the body of a token request redeeming a fresh code.
async fn app_and_code_exchange() -> (Router, String) {
    let store = Arc::new(rsp_store::SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(ManualClock::new(UnixTime(1_800_000_000)));
    let issuers = Issuers::new("https://id.example.com");
    let auth =
        AuthService::new(store.clone(), clock.clone(), &MasterKey::generate(), issuers, TokenSettings::default())
            .with_user_claims(Arc::new(Ada));
    auth.create_tenant(NewTenant { id: "acme".into(), name: "Acme".into(), signing_alg: None }).await.unwrap();
    let settings = ClientSettings {
        name: Some("app".into()),
        kind: Some(ClientKind::Public),
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        scope: Some("openid profile offline_access".into()),
        redirect_uris: Some(vec![REDIRECT.into()]),
        ..Default::default()
    };
    let (client, _) = auth.create_client("acme", settings).await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let challenge = pkce::s256(VERIFIER);
    let pairs = [
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile offline_access"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "consent"),
    ];
    let params = FormParams::from_pairs(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()).unwrap();
    let request = auth.validate_authorization(&tenant, &params).await.unwrap();
    let user = SignedInUser { user_id: "ada".into(), auth_time: UnixTime(1_800_000_000), amr: vec![], acr: None };
    let location = auth.issue_code(&request, &user).await.unwrap();
    let code = url_query(&location, "code");
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_verifier", VERIFIER)
        .append_pair("client_id", client.client_id.as_str())
        .finish();
    let policy = Arc::new(PolicyService::new(store, clock, 16));
    (router(AppState { auth: Arc::new(auth), policy }), body)
}

fn url_query(location: &str, name: &str) -> String {
    let query = location.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).unwrap().1.into_owned()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn token_request(body: String) -> Request<Body> {
    Request::post("/t/acme/oauth2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn the_token_endpoint_redeems_a_code_once_and_userinfo_answers_the_bearer() {
    let (app, exchange) = app_and_code_exchange().await;
    let (status, headers, tokens) = send(&app, token_request(exchange.clone())).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string(), "{tokens}");
    let (status, _, error) = send(&app, token_request(exchange)).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    for method in ["GET", "POST"] {
        let request = Request::builder()
            .method(method)
            .uri("/t/acme/oauth2/userinfo")
            .header(header::AUTHORIZATION, &bearer)
            .body(Body::empty())
            .unwrap();
        let (status, headers, claims) = send(&app, request).await;
        // The replay above revoked the grant, so its access token is refused like any invalid one.
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method}: {claims}");
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#), "{challenge}");
    }
}

#[tokio::test]
async fn userinfo_returns_the_users_claims_for_a_live_openid_token() {
    let (app, exchange) = app_and_code_exchange().await;
    let (_, _, tokens) = send(&app, token_request(exchange)).await;
    let request = Request::get("/t/acme/oauth2/userinfo")
        .header(header::AUTHORIZATION, format!("Bearer {}", tokens["access_token"].as_str().unwrap()))
        .body(Body::empty())
        .unwrap();
    let (status, headers, claims) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims, json!({"sub": "ada", "name": "Ada"}));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let anonymous = Request::get("/t/acme/oauth2/userinfo").body(Body::empty()).unwrap();
    assert_eq!(send(&app, anonymous).await.0, StatusCode::UNAUTHORIZED);
}
