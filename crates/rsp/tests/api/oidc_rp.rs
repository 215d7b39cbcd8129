//! The server as a relying party built on the `openidconnect` crate sees it: discovery, the code flow with
//! PKCE S256, nonce and state, ID token verification by the crate (signature through the JWKS, issuer,
//! audience, expiry, nonce, `at_hash`), userinfo, refresh, and RP-initiated logout through the
//! discovered `end_session_endpoint`. The person in the middle is the cookie-jar [`Browser`].
//!
//! The crate's own reqwest integration pins reqwest 0.12; its `AsyncHttpClient` is implemented for any
//! `Fn(HttpRequest) -> Future`, so [`send`] carries its requests over our reqwest (which never follows
//! redirects, as the crate recommends).

use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, Scope, SubjectIdentifier, TokenResponse,
};

use crate::helpers::{Browser, hidden, query, see_other};
use crate::logout::{PASSWORD, REDIRECT, SIGNED_OUT, TENANT, setup};

/// One HTTP exchange of the crate over our reqwest client.
async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
    let mut answer = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(answer.body(body).unwrap())
}

/// Logs in as `ada` and consents on the pages; returns the callback's query.
async fn through_the_pages(browser: &mut Browser<'_>, authorize: &str) -> std::collections::HashMap<String, String> {
    let app = browser.app;
    let login_url = see_other(&browser.get(authorize).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    let (pending, csrf) = (hidden(&html, "pending"), hidden(&html, "csrf"));
    let form = [("pending", pending.as_str()), ("csrf", &csrf), ("username", "ada"), ("password", PASSWORD)];
    let consent_url = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/login"), &form).await);
    let html = browser.get(&consent_url).await.text().await.unwrap();
    let form = [("pending", pending.as_str()), ("csrf", &hidden(&html, "csrf")), ("decision", "allow")];
    let callback = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/consent"), &form).await);
    assert!(callback.starts_with(REDIRECT), "{callback}");
    query(&callback)
}

#[tokio::test]
async fn an_openidconnect_relying_party_signs_in_refreshes_and_logs_out() {
    let setup = setup().await;
    let app = &setup.app;
    let http_client = |request: HttpRequest| send(app.http.clone(), request);
    let issuer = IssuerUrl::new(app.issuer(TENANT)).unwrap();
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http_client).await.unwrap();
    let end_session = metadata.additional_metadata().end_session_endpoint.clone().expect("end_session_endpoint");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(setup.client.id.clone()),
        Some(ClientSecret::new(setup.client.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(["profile", "offline_access"].map(|scope| Scope::new(scope.to_owned())))
        .add_prompt(CoreAuthPrompt::Consent)
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new(app);
    let callback = through_the_pages(&mut browser, authorize.as_str()).await;
    assert_eq!(&callback["state"], state.secret());
    assert_eq!(callback["iss"], app.issuer(TENANT));

    let tokens = client
        .exchange_code(AuthorizationCode::new(callback["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), setup.user_id);
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected, "at_hash binds the access token");

    let subject = SubjectIdentifier::new(setup.user_id.clone());
    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(subject))
        .unwrap()
        .request_async(&http_client)
        .await
        .unwrap();
    assert_eq!(userinfo.preferred_username().map(|name| name.as_str()), Some("ada"), "released for `profile`");

    let refresh_token = tokens.refresh_token().expect("offline_access was consented");
    let refreshed = client.exchange_refresh_token(refresh_token).unwrap().request_async(&http_client).await.unwrap();
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    let renewed = refreshed.id_token().expect("an ID token on refresh");
    let renewed_claims = renewed.claims(&id_verifier, |nonce: Option<&Nonce>| match nonce {
        None => Ok(()),
        Some(_) => Err("no nonce on refresh (OIDC Core §12.2)".to_owned()),
    });
    assert_eq!(renewed_claims.unwrap().subject(), claims.subject());

    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_client_id(ClientId::new(setup.client.id.clone()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(SIGNED_OUT.to_owned()).unwrap())
        .set_state(CsrfToken::new("after-logout".to_owned()))
        .http_get_url();
    let back = see_other(&browser.get(logout.as_str()).await);
    assert_eq!(back, format!("{SIGNED_OUT}?state=after-logout"));
    let (silent, _, _) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_prompt(CoreAuthPrompt::None)
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();
    let answer = query(&see_other(&browser.get(silent.as_str()).await));
    assert_eq!(answer["error"], "login_required", "the session ended");
}
