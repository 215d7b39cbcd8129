//! The authorization endpoint's validation and the code exchange, one test per RFC 9700 / RFC 6749 /
//! RFC 7636 rule of the checklist (BCP-2.1a, BCP-2.1.1a/b, BCP-4.8.2, BCP-4.2.4a, BCP-4.4.2, BCP-2.4,
//! OAUTH-4.1.2, OAUTH-4.1.2.1, OAUTH-4.1.3, PKCE-4.2, PKCE-4.4.1, OIDC-3.1.2.1a/b, OIDC-11).
#![allow(clippy::indexing_slicing, reason = "test helpers fail loudly")]

use rsp_oauth::OAuthError;
use rsp_oauth::authorize::AuthorizeError;

use crate::flow::{Flow, REDIRECT, VERIFIER, query_of};

fn redirect_error(result: Result<rsp_oauth::authorize::AuthorizationRequest, AuthorizeError>) -> (String, String) {
    match result {
        Err(AuthorizeError::Redirect(error)) => {
            let query = query_of(&error.location());
            assert!(error.location().starts_with(REDIRECT), "{}", error.location());
            assert_eq!(query["iss"], "https://id.example.com/t/acme", "BCP-4.4.2: iss on every error");
            assert_eq!(query.get("state").map(String::as_str), Some("s t+a&t=e"), "state echoed exactly");
            (query["error"].clone(), query["error_description"].clone())
        }
        other => panic!("expected an error for the redirect URI, got {other:?}"),
    }
}

#[tokio::test]
async fn tampered_redirect_uris_are_refused_on_a_page_never_redirected() {
    let flow = Flow::start().await;
    for tampered in [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://app.example/CB",
        "http://app.example/cb",
        "https://app.example/c",
        "https://app.example/cbx",
        "https://evil.example/cb",
    ] {
        let result = flow.validate(&[("redirect_uri", tampered)]).await;
        assert!(matches!(result, Err(AuthorizeError::Untrusted(_))), "{tampered}: {result:?}");
    }
    assert!(matches!(flow.validate(&[("redirect_uri", "")]).await, Err(AuthorizeError::Untrusted(_))));
    assert!(matches!(flow.validate(&[("client_id", "unknown")]).await, Err(AuthorizeError::Untrusted(_))));
    assert!(matches!(flow.validate(&[("client_id", "")]).await, Err(AuthorizeError::Untrusted(_))));
    let loopback = flow.validate(&[("redirect_uri", "http://127.0.0.1:51004/cb")]).await.unwrap();
    assert_eq!(loopback.redirect_uri, "http://127.0.0.1:51004/cb", "a loopback port may vary (RFC 8252)");
}

#[tokio::test]
async fn pkce_is_required_with_s256_only_and_errors_carry_state_and_iss() {
    let flow = Flow::start().await;
    let (error, description) = redirect_error(flow.validate(&[("code_challenge", "")]).await);
    assert_eq!((error.as_str(), description.as_str()), ("invalid_request", "code challenge required"));
    for method in ["plain", ""] {
        let (error, description) = redirect_error(flow.validate(&[("code_challenge_method", method)]).await);
        assert_eq!((error.as_str(), description.as_str()), ("invalid_request", "transform algorithm not supported"));
    }
    let short = &rsp_oauth::pkce::s256(VERIFIER)[..42];
    assert_eq!(redirect_error(flow.validate(&[("code_challenge", short)]).await).0, "invalid_request");
}

#[tokio::test]
async fn only_response_type_code_and_known_prompts_are_accepted() {
    let flow = Flow::start().await;
    assert_eq!(redirect_error(flow.validate(&[("response_type", "token")]).await).0, "unsupported_response_type");
    assert_eq!(
        redirect_error(flow.validate(&[("response_type", "code id_token")]).await).0,
        "unsupported_response_type"
    );
    assert_eq!(redirect_error(flow.validate(&[("prompt", "none login")]).await).0, "invalid_request");
    assert_eq!(redirect_error(flow.validate(&[("scope", "openid admin")]).await).0, "invalid_scope");
    assert_eq!(redirect_error(flow.validate(&[("max_age", "-1")]).await).0, "invalid_request");
    let cc_only = flow.public_client(&["authorization_code"]).await;
    let other = flow.auth.validate_authorization(&flow.tenant, &flow.params(&[])).await;
    assert!(other.is_ok());
    let request = flow.validate(&[("client_id", cc_only.client_id.as_str())]).await.unwrap();
    assert_eq!(request.client.client_id, cc_only.client_id);
}

#[tokio::test]
async fn the_code_redirect_carries_iss_and_the_exact_state() {
    let flow = Flow::start().await;
    let query = flow.authorize(&[]).await;
    let metadata = flow.auth.metadata(&flow.tenant).await.unwrap();
    assert_eq!(query["iss"], metadata["issuer"].as_str().unwrap(), "BCP-4.4.2");
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
    assert_eq!(metadata["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(query["state"], "s t+a&t=e");
    let code = &query["code"];
    assert_eq!(code.len(), 43, "an opaque 256-bit handle (PKCE-4.4)");
    assert!(!code.contains(&rsp_oauth::pkce::s256(VERIFIER)));
    let denied = flow.validate(&[]).await.unwrap().error("access_denied", "the user said no");
    let denied = query_of(&denied.location());
    assert_eq!((denied["error"].as_str(), denied["iss"].as_str()), ("access_denied", query["iss"].as_str()));
}

#[tokio::test]
async fn a_code_exchange_without_the_right_verifier_gets_no_tokens() {
    let flow = Flow::start().await;
    for verifier in [None, Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"), Some("short")] {
        let code = flow.code(&[]).await;
        let result = flow.exchange_as(&flow.client, &code, verifier, REDIRECT).await;
        assert!(matches!(result, Err(OAuthError::InvalidGrant(_))), "{verifier:?}: {result:?}");
        let retry = flow.exchange(&code).await;
        assert!(matches!(retry, Err(OAuthError::InvalidGrant(_))), "a failed attempt must burn the code");
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let flow = Flow::start().await;
    let code = flow.code(&[]).await;
    let first = flow.exchange(&code).await.unwrap();
    assert!(flow.usable(&first.access_token).await);
    let replay = flow.exchange(&code).await;
    assert!(matches!(replay, Err(OAuthError::InvalidGrant(_))), "{replay:?}");
    assert!(!flow.usable(&first.access_token).await, "BCP-4.2.4a: the first exchange's access token survived");
    let refresh = flow.refresh(first.refresh_token.as_deref().unwrap(), None).await;
    assert!(matches!(refresh, Err(OAuthError::InvalidGrant(_))), "the first exchange's refresh token survived");
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_yield_exactly_one_response() {
    let flow = std::sync::Arc::new(Flow::start().await);
    let code = flow.code(&[]).await;
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let (flow, code) = (flow.clone(), code.clone());
            tokio::spawn(async move { flow.exchange(&code).await.is_ok() })
        })
        .collect();
    let mut successes = 0;
    for attempt in attempts {
        successes += usize::from(attempt.await.unwrap());
    }
    assert_eq!(successes, 1);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_and_lifetime() {
    let flow = Flow::start().await;
    let other = flow.public_client(&["authorization_code"]).await;
    let stolen = flow.code(&[]).await;
    let result = flow.exchange_as(&other, &stolen, Some(VERIFIER), REDIRECT).await;
    assert!(matches!(result, Err(OAuthError::InvalidGrant(_))), "OAUTH-4.1.3: client B redeemed A's code");

    let code = flow.code(&[]).await;
    let result = flow.exchange_as(&flow.client, &code, Some(VERIFIER), "http://127.0.0.1/cb").await;
    assert!(matches!(result, Err(OAuthError::InvalidGrant(_))), "a different redirect_uri was accepted");
    let code = flow.code(&[]).await;
    let missing = flow.exchange_as(&flow.client, &code, Some(VERIFIER), "").await;
    assert!(missing.is_err(), "an omitted redirect_uri was accepted");

    let code = flow.code(&[]).await;
    flow.clock.advance(61);
    assert!(matches!(flow.exchange(&code).await, Err(OAuthError::InvalidGrant(_))), "OAUTH-4.1.2: expired code");
}

#[tokio::test]
async fn offline_access_needs_explicit_consent_and_a_refreshing_client() {
    let flow = Flow::start().await;
    let without_prompt = flow.code(&[("prompt", "")]).await;
    let tokens = flow.exchange(&without_prompt).await.unwrap();
    assert!(tokens.refresh_token.is_none(), "OIDC-11: offline_access honoured without consent");
    assert!(!tokens.scope.unwrap().contains("offline_access"));

    let with_prompt = flow.code(&[]).await;
    let tokens = flow.exchange(&with_prompt).await.unwrap();
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.id_token.is_some());

    let no_offline = flow.code(&[("scope", "openid profile")]).await;
    assert!(
        flow.exchange(&no_offline).await.unwrap().refresh_token.is_none(),
        "a refresh token without offline_access"
    );
}

#[tokio::test]
async fn max_age_and_prompt_login_ask_for_a_fresh_authentication() {
    let flow = Flow::start().await;
    let mut user = flow.user();
    user.auth_time = rsp_core::UnixTime(crate::flow::START - 600);
    let request = flow.validate(&[("max_age", "300")]).await.unwrap();
    assert!(request.needs_login(Some(&user), flow.auth.now()));
    match flow.auth.issue_code(&request, &user).await {
        Err(AuthorizeError::Redirect(error)) => assert_eq!(error.error, "login_required"),
        other => panic!("a stale login got a code: {other:?}"),
    }
    let relaxed = flow.validate(&[("max_age", "3600")]).await.unwrap();
    assert!(!relaxed.needs_login(Some(&user), flow.auth.now()));
    assert!(flow.validate(&[("prompt", "login")]).await.unwrap().needs_login(Some(&user), flow.auth.now()));
    assert!(flow.validate(&[("max_age", "0")]).await.unwrap().needs_login(Some(&flow.user()), flow.auth.now()));
}

#[tokio::test]
async fn an_id_token_hint_lets_only_its_user_get_a_code() {
    let flow = Flow::start().await;
    let code = flow.code(&[]).await;
    let id_token = flow.exchange(&code).await.unwrap().id_token.unwrap();
    let request = flow.validate(&[("id_token_hint", &id_token), ("prompt", "none")]).await.unwrap();
    assert_eq!(request.hinted_subject.as_deref(), Some(crate::flow::USER));
    let someone_else = rsp_oauth::SignedInUser { user_id: "user-b".into(), ..flow.user() };
    match flow.auth.issue_code(&request, &someone_else).await {
        Err(AuthorizeError::Redirect(error)) => assert_eq!(error.error, "login_required"),
        other => panic!("OIDC-3.1.2.2: a code for the wrong user: {other:?}"),
    }
    assert!(flow.auth.issue_code(&request, &flow.user()).await.is_ok());
    let at = id_token.len() - 20;
    let flipped = if &id_token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &id_token[..at], &id_token[at + 1..]);
    assert_eq!(redirect_error(flow.validate(&[("id_token_hint", &forged)]).await).0, "invalid_request");
    let access_token = flow.exchange(&flow.code(&[]).await).await.unwrap().access_token;
    assert_eq!(redirect_error(flow.validate(&[("id_token_hint", &access_token)]).await).0, "invalid_request");
}
