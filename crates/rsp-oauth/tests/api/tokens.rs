//! What the code flow issues: refresh rotation with reuse detection and the grace window (BCP-2.2.2,
//! BCP-4.14.2a/b/c, OAUTH-6), ID tokens checked independently with `jsonwebtoken` (OIDC-2a/b/c,
//! OIDC-3.1.3.6, OIDC-12.2, JWTAT-2.2), and userinfo (OIDC-5.3).
#![allow(clippy::expect_used, reason = "test helpers fail loudly")]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use rsp_oauth::bearer::BearerError;
use rsp_oauth::id_token::IdClaims;
use rsp_oauth::{OAuthError, TokenSettings};
use serde_json::json;

use crate::flow::{Flow, START, USER};

async fn tokens(flow: &Flow) -> rsp_oauth::TokenResponse {
    let code = flow.code(&[]).await;
    flow.exchange(&code).await.unwrap()
}

async fn verify_id_token(flow: &Flow, token: &str) -> (jsonwebtoken::Header, IdClaims) {
    let jwks: JwkSet = serde_json::from_str(&flow.auth.jwks(&flow.tenant).await.unwrap()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the kid is published at jwks_uri");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[flow.client.client_id.as_str()]);
    validation.set_issuer(&["https://id.example.com/t/acme"]);
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<IdClaims>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap();
    (header, data.claims)
}

#[tokio::test]
async fn the_id_token_carries_every_claim_and_verifies_independently() {
    let flow = Flow::start().await;
    let response = tokens(&flow).await;
    let id_token = response.id_token.unwrap();
    let (header, claims) = verify_id_token(&flow, &id_token).await;
    assert_eq!(header.typ.as_deref(), Some("JWT"), "OIDC-2b: never at+jwt");
    assert!(header.jku.is_none() && header.jwk.is_none() && header.x5u.is_none() && header.x5c.is_none());
    assert_eq!(claims.iss, "https://id.example.com/t/acme");
    assert_eq!((claims.sub.as_str(), claims.aud.as_str()), (USER, flow.client.client_id.as_str()));
    assert_eq!((claims.iat, claims.exp), (START, START + 600));
    assert_eq!(claims.auth_time, START - 5);
    assert_eq!(claims.nonce.as_deref(), Some("n-0S6_WzA2Mj"), "OIDC-2c: the nonce byte for byte");
    assert_eq!(claims.amr, ["pwd", "otp"]);
    assert_eq!(claims.acr.as_deref(), Some("urn:rsp:mfa"));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, response.access_token.as_bytes());
    assert_eq!(claims.at_hash, URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]), "OIDC-3.1.3.6");

    let without_nonce = flow.code(&[("nonce", "")]).await;
    let (_, claims) = verify_id_token(&flow, &flow.exchange(&without_nonce).await.unwrap().id_token.unwrap()).await;
    assert_eq!(claims.nonce, None, "a nonce appeared that the request did not send");
}

#[tokio::test]
async fn the_access_token_of_a_user_grant_carries_the_authentication() {
    let flow = Flow::start().await;
    let response = tokens(&flow).await;
    let keys = flow.auth.tenant_keys(&flow.tenant).await.unwrap();
    let claims =
        rsp_oauth::token::verify(&keys, &response.access_token, "https://id.example.com/t/acme", flow.auth.now(), 0)
            .unwrap();
    assert_eq!((claims.sub.as_str(), claims.aud.as_str()), (USER, "https://api.example.com"));
    assert_eq!(claims.auth_time, Some(START - 5));
    assert_eq!(claims.client_id, flow.client.client_id.as_str());
}

#[tokio::test]
async fn every_refresh_rotates_and_reuse_revokes_the_family() {
    let flow = Flow::start().await;
    let first = tokens(&flow).await;
    let rt1 = first.refresh_token.unwrap();
    flow.clock.advance(30);
    let second = flow.refresh(&rt1, None).await.unwrap();
    let rt2 = second.refresh_token.clone().unwrap();
    assert_ne!(rt1, rt2, "BCP-2.2.2: the refresh token was not rotated");
    assert!(flow.usable(&second.access_token).await);

    flow.clock.advance(11);
    let reuse = flow.refresh(&rt1, None).await;
    assert!(matches!(reuse, Err(OAuthError::InvalidGrant(_))), "BCP-4.14.2a: {reuse:?}");
    let after = flow.refresh(&rt2, None).await;
    assert!(matches!(after, Err(OAuthError::InvalidGrant(_))), "the family's live token survived reuse");
    assert!(!flow.usable(&second.access_token).await, "policy: the family's access tokens are revoked too");
    assert!(!flow.usable(&first.access_token).await);
}

#[tokio::test]
async fn a_retry_within_the_grace_window_gets_the_same_response() {
    let flow = Flow::start().await;
    let rt1 = tokens(&flow).await.refresh_token.unwrap();
    let rotated = flow.refresh(&rt1, None).await.unwrap();
    flow.clock.advance(9);
    let retried = flow.refresh(&rt1, None).await.unwrap();
    assert_eq!(retried.access_token, rotated.access_token);
    assert_eq!(retried.refresh_token, rotated.refresh_token);
    assert_eq!(retried.id_token, rotated.id_token);
    assert!(flow.usable(&rotated.access_token).await, "a grace retry revoked the family");

    // Once the successor is used, the old token coming back is reuse even inside the window.
    let rt2 = rotated.refresh_token.unwrap();
    let third = flow.refresh(&rt2, None).await.unwrap();
    let late = flow.refresh(&rt1, None).await;
    assert!(matches!(late, Err(OAuthError::InvalidGrant(_))), "{late:?}");
    assert!(!flow.usable(&third.access_token).await);
}

#[tokio::test]
async fn without_a_grace_window_any_retry_is_reuse() {
    let flow = Flow::start_with(TokenSettings { refresh_grace_secs: 0, ..TokenSettings::default() }).await;
    let rt1 = tokens(&flow).await.refresh_token.unwrap();
    flow.refresh(&rt1, None).await.unwrap();
    flow.clock.advance(1);
    assert!(flow.refresh(&rt1, None).await.is_err());
}

#[tokio::test]
async fn a_refresh_keeps_the_grant_and_never_widens_its_scope() {
    let flow = Flow::start().await;
    let first = tokens(&flow).await;
    let (_, original) = verify_id_token(&flow, first.id_token.as_deref().unwrap()).await;
    flow.clock.advance(100);
    let rt1 = first.refresh_token.unwrap();
    let wider = flow.refresh(&rt1, Some("openid offline_access profile email")).await;
    assert!(matches!(wider, Err(OAuthError::InvalidScope(_))), "OAUTH-6: {wider:?}");
    let narrowed = flow.refresh(&rt1, Some("openid")).await.unwrap();
    assert_eq!(narrowed.scope.as_deref(), Some("openid"));
    let (_, refreshed) = verify_id_token(&flow, narrowed.id_token.as_deref().unwrap()).await;
    assert_eq!((&refreshed.iss, &refreshed.sub, &refreshed.aud), (&original.iss, &original.sub, &original.aud));
    assert_eq!(refreshed.auth_time, original.auth_time, "OIDC-12.2: auth_time is the original login");
    assert!(refreshed.iat > original.iat);
    assert_eq!(refreshed.nonce, None, "OIDC-12.2: no nonce on refresh");
    // The rotated token keeps the whole grant's scope, so a later refresh may ask for it again.
    let full = flow.refresh(narrowed.refresh_token.as_deref().unwrap(), None).await.unwrap();
    assert_eq!(full.scope.as_deref(), Some("offline_access openid profile"));
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client_and_expire_when_idle() {
    let flow = Flow::start().await;
    let rt = tokens(&flow).await.refresh_token.unwrap();
    let mut tampered = rt.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(flow.refresh(&tampered, None).await, Err(OAuthError::InvalidGrant(_))), "BCP-4.14.2b");

    let other = flow.public_client(&["authorization_code", "refresh_token"]).await;
    let params = rsp_oauth::FormParams::from_pairs(vec![
        ("grant_type".into(), "refresh_token".into()),
        ("refresh_token".into(), rt.clone()),
    ])
    .unwrap();
    let stolen = flow.auth.token(&flow.tenant, &flow.credentials(&other), &params).await;
    assert!(matches!(stolen, Err(OAuthError::InvalidGrant(_))), "client B used A's refresh token");
    let owner = flow.refresh(&rt, None).await.unwrap();
    assert!(owner.refresh_token.is_some(), "B's attempt must leave A's token usable");

    flow.clock.advance(TokenSettings::default().refresh_token_idle_secs + 1);
    let idle = flow.refresh(owner.refresh_token.as_deref().unwrap(), None).await;
    assert!(matches!(idle, Err(OAuthError::InvalidGrant(_))), "BCP-4.14.2c: an idle token still worked");
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_never_gets_a_refresh_token() {
    let flow = Flow::start().await;
    let no_refresh = flow.public_client(&["authorization_code"]).await;
    let request = flow.validate(&[("client_id", no_refresh.client_id.as_str())]).await.unwrap();
    let location = flow.auth.issue_code(&request, &flow.user()).await.unwrap();
    let code = crate::flow::query_of(&location).remove("code").unwrap();
    let response =
        flow.exchange_as(&no_refresh, &code, Some(crate::flow::VERIFIER), crate::flow::REDIRECT).await.unwrap();
    assert!(response.refresh_token.is_none());
}

#[tokio::test]
async fn userinfo_releases_claims_by_scope_with_the_id_tokens_sub() {
    let flow = Flow::start().await;
    let openid_only = flow.code(&[("scope", "openid")]).await;
    let token = flow.exchange(&openid_only).await.unwrap().access_token;
    assert_eq!(
        serde_json::Value::Object(flow.auth.userinfo(&flow.tenant, &token).await.unwrap()),
        json!({"sub": USER})
    );

    let with_email = flow.code(&[("scope", "openid email")]).await;
    let response = flow.exchange(&with_email).await.unwrap();
    let claims = flow.auth.userinfo(&flow.tenant, &response.access_token).await.unwrap();
    assert_eq!(
        serde_json::Value::Object(claims),
        json!({"sub": USER, "email": "ada@example.com", "email_verified": true})
    );
    let (_, id) = verify_id_token(&flow, response.id_token.as_deref().unwrap()).await;
    assert_eq!(id.sub, USER);

    let api_only = flow.code(&[("scope", "api")]).await;
    let token = flow.exchange(&api_only).await.unwrap().access_token;
    let refused = flow.auth.userinfo(&flow.tenant, &token).await;
    assert!(matches!(refused, Err(BearerError::InsufficientScope("openid"))), "{refused:?}");
    assert!(matches!(flow.auth.userinfo(&flow.tenant, "not-a-token").await, Err(BearerError::InvalidToken)));

    let id_as_bearer = flow.auth.userinfo(&flow.tenant, response.id_token.as_deref().unwrap()).await;
    assert!(matches!(id_as_bearer, Err(BearerError::InvalidToken)), "JWTAT-4: an ID token passed as a bearer");

    flow.clock.advance(601);
    let expired = flow.auth.userinfo(&flow.tenant, &response.access_token).await;
    assert!(matches!(expired, Err(BearerError::InvalidToken)), "an expired token was accepted");
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant_but_only_for_its_own_client() {
    let flow = Flow::start().await;
    let response = tokens(&flow).await;
    let rt = response.refresh_token.unwrap();
    let other = flow.public_client(&["authorization_code"]).await;
    assert!(flow.revoke(&other, &rt, "refresh_token").await.is_err(), "REVOKE-2.1a: client B revoked A's token");
    assert!(flow.usable(&response.access_token).await);

    assert!(flow.revoke(&flow.client, "random", "").await.is_ok(), "REVOKE-2.2: an unknown token is a success");
    flow.revoke(&flow.client, &rt, "access_token").await.unwrap();
    assert!(matches!(flow.refresh(&rt, None).await, Err(OAuthError::InvalidGrant(_))));
    assert!(!flow.usable(&response.access_token).await, "REVOKE-2.1b: the grant's access token survived");
}

#[tokio::test]
async fn userinfo_refuses_a_clients_own_token_even_with_openid_scope() {
    let flow = Flow::start().await;
    let settings = rsp_oauth::admin::ClientSettings {
        name: Some("svc".into()),
        scope: Some("openid".into()),
        ..Default::default()
    };
    let (svc, secret) = flow.auth.create_client("acme", settings).await.unwrap();
    let credentials =
        rsp_oauth::ClientCredentials::Basic { client_id: svc.client_id.to_string(), secret: secret.unwrap() };
    let params = rsp_oauth::FormParams::from_pairs(vec![
        ("grant_type".into(), "client_credentials".into()),
        ("scope".into(), "openid".into()),
    ])
    .unwrap();
    let (response, _) = flow.auth.token(&flow.tenant, &credentials, &params).await.unwrap();
    assert!(response.id_token.is_none() && response.refresh_token.is_none());
    let refused = flow.auth.userinfo(&flow.tenant, &response.access_token).await;
    assert!(matches!(refused, Err(BearerError::InvalidToken)), "OIDC-5.3: {refused:?}");
}
