//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and the password change (PWD-6), over
//! HTTP with the cookie-jar [`Browser`]: a matching `id_token_hint` ends the session at once, anything
//! else is confirmed on a page guarded like the login form; only registered targets are followed; after
//! a password change no old refresh token, access token or session works.

use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION, ORIGIN};
use rsp_testkit::{TestApp, expect_status, spawn_app};
use serde_json::{Value, json};

use crate::helpers::{Browser, Registered, assert_page_headers, client, hidden, query, see_other};

pub const TENANT: &str = "default";
pub const REDIRECT: &str = "https://app.example/callback";
pub const SIGNED_OUT: &str = "https://app.example/signed-out";
pub const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub struct Setup {
    pub app: TestApp,
    pub client: Registered,
    pub user_id: String,
}

/// A user `ada` and a client registered for the code flow with refresh tokens and a post-logout URI.
pub async fn setup() -> Setup {
    let app = spawn_app().await;
    let user = app
        .admin_call(Method::POST, "/tenants/default/users", Some(json!({"username": "ada", "password": PASSWORD})))
        .await;
    let user_id = expect_status(user, 201).await["user_id"].as_str().unwrap().to_owned();
    let client = client(&app, TENANT, registration("App")).await;
    Setup { app, client, user_id }
}

fn registration(name: &str) -> Value {
    json!({
        "name": name,
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile offline_access",
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [SIGNED_OUT],
    })
}

fn authorize_url(setup: &Setup, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&setup.app.endpoint(TENANT, "/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &setup.client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "st")
        .append_pair("code_challenge", &rsp_oauth::pkce::s256(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "consent");
    for (name, value) in extra {
        url.query_pairs_mut().append_pair(name, value);
    }
    url.into()
}

/// Logs `browser` in as `ada` (consent remembered) and exchanges the code: the token response.
async fn sign_in(browser: &mut Browser<'_>, setup: &Setup, password: &str) -> Value {
    let app = &setup.app;
    let login_url = see_other(&browser.get(&authorize_url(setup, &[])).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    let (pending, csrf) = (hidden(&html, "pending"), hidden(&html, "csrf"));
    let form = [("pending", pending.as_str()), ("csrf", &csrf), ("username", "ada"), ("password", password)];
    let consent_url = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/login"), &form).await);
    let html = browser.get(&consent_url).await.text().await.unwrap();
    let form =
        [("pending", pending.as_str()), ("csrf", &hidden(&html, "csrf")), ("decision", "allow"), ("remember", "yes")];
    let callback = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/consent"), &form).await);
    let code = query(&callback)["code"].clone();
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    expect_status(token(setup, &exchange).await, 200).await
}

async fn token(setup: &Setup, form: &[(&str, &str)]) -> reqwest::Response {
    let app = &setup.app;
    let request = app.http.post(app.endpoint(TENANT, "/oauth2/token"));
    request.basic_auth(&setup.client.id, Some(&setup.client.secret)).form(form).send().await.unwrap()
}

/// `prompt=none` for the browser's session: `login_required` when it has none, else a code.
async fn silent(browser: &mut Browser<'_>, setup: &Setup) -> std::collections::HashMap<String, String> {
    let url = authorize_url(setup, &[]).replace("prompt=consent", "prompt=none");
    query(&see_other(&browser.get(&url).await))
}

fn logout_url(setup: &Setup, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&setup.app.endpoint(TENANT, "/oauth2/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

#[tokio::test]
async fn a_hint_of_this_session_ends_it_and_returns_to_the_registered_uri_with_state() {
    let setup = setup().await;
    let mut browser = Browser::new(&setup.app);
    let tokens = sign_in(&mut browser, &setup, PASSWORD).await;
    let old_cookie = browser.jar["rsp_session"].clone();
    let hint = tokens["id_token"].as_str().unwrap();
    setup.app.advance(7200);

    let params = [("id_token_hint", hint), ("post_logout_redirect_uri", SIGNED_OUT), ("state", "bye&1")];
    let location = see_other(&browser.get(&logout_url(&setup, &params)).await);
    assert_eq!(location, format!("{SIGNED_OUT}?state=bye%261"), "an expired hint is still a hint");
    assert!(!browser.jar.contains_key("rsp_session"), "the cookie is cleared");
    assert_eq!(silent(&mut browser, &setup).await["error"], "login_required");
    browser.jar.insert("rsp_session".into(), old_cookie);
    assert_eq!(silent(&mut browser, &setup).await["error"], "login_required", "the session row is gone");

    // Signed out already, a request without a target ends on our page.
    let page = browser.get(&logout_url(&setup, &[])).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    assert!(page.text().await.unwrap().contains("You are signed out"));
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    assert_eq!(token(&setup, &refresh).await.status(), 200, "logout ends the session, not offline access");
}

#[tokio::test]
async fn without_a_matching_hint_the_user_confirms_on_a_page_guarded_by_csrf_and_origin() {
    let setup = setup().await;
    let app = &setup.app;
    let mut browser = Browser::new(app);
    sign_in(&mut browser, &setup, PASSWORD).await;
    let params = [("client_id", setup.client.id.as_str()), ("post_logout_redirect_uri", SIGNED_OUT), ("state", "s2")];
    let page = browser.get(&logout_url(&setup, &params)).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    let html = page.text().await.unwrap();
    assert!(html.contains("App asks to sign you out"), "{html}");
    let csrf = hidden(&html, "csrf");
    let endpoint = app.endpoint(TENANT, "/oauth2/logout");
    let mut form = vec![("decision", "logout"), ("client_id", setup.client.id.as_str())];
    form.extend([("post_logout_redirect_uri", SIGNED_OUT), ("state", "s2")]);

    assert_eq!(browser.post(&endpoint, &form).await.status(), 403, "no CSRF token");
    let mut other = Browser::new(app);
    sign_in(&mut other, &setup, PASSWORD).await;
    let foreign_html = other.get(&logout_url(&setup, &params)).await.text().await.unwrap();
    let foreign_csrf = hidden(&foreign_html, "csrf");
    let with_foreign: Vec<_> = form.iter().copied().chain([("csrf", foreign_csrf.as_str())]).collect();
    assert_eq!(browser.post(&endpoint, &with_foreign).await.status(), 403, "another session's token");
    let with_token: Vec<_> = form.iter().copied().chain([("csrf", csrf.as_str())]).collect();
    let cookies: Vec<String> = browser.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cross_site = app.http.post(&endpoint).header(ORIGIN, "https://evil.example").header(COOKIE, cookies.join("; "));
    assert_eq!(cross_site.form(&with_token).send().await.unwrap().status(), 403, "a foreign Origin");
    assert!(silent(&mut browser, &setup).await.contains_key("code"), "refused posts end nothing");

    let location = see_other(&browser.post(&endpoint, &with_token).await);
    assert_eq!(location, format!("{SIGNED_OUT}?state=s2"));
    assert_eq!(silent(&mut browser, &setup).await["error"], "login_required");
    assert!(silent(&mut other, &setup).await.contains_key("code"), "only this browser's session ended");
}

#[tokio::test]
async fn unregistered_targets_and_hints_for_another_client_are_refused_on_a_page() {
    let setup = setup().await;
    let app = &setup.app;
    let mut browser = Browser::new(app);
    let tokens = sign_in(&mut browser, &setup, PASSWORD).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let other = client(app, TENANT, registration("Other")).await;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("id_token_hint", hint), ("post_logout_redirect_uri", "https://evil.example/")], "not registered"),
        (
            &[("client_id", &setup.client.id), ("post_logout_redirect_uri", "https://app.example/signed-out/x")],
            "not registered",
        ),
        (&[("id_token_hint", hint), ("client_id", &other.id)], "issued to another client"),
        (&[("post_logout_redirect_uri", SIGNED_OUT)], "needs client_id or id_token_hint"),
        (&[("id_token_hint", "eyJhbGciOiJub25lIn0.e30.")], "not an ID token of this issuer"),
    ];
    for (params, why) in cases {
        let page = browser.get(&logout_url(&setup, params)).await;
        assert_eq!(page.status(), 400, "{params:?}");
        assert!(page.headers().get(LOCATION).is_none());
        assert_page_headers(&page);
        assert!(page.text().await.unwrap().contains(why), "{why}");
    }
    assert!(silent(&mut browser, &setup).await.contains_key("code"), "the session is untouched");

    // Registration: post-logout URIs follow the redirect URI rules.
    let bad = json!({"name": "x", "post_logout_redirect_uris": ["http://app.example/bye"]});
    let refused = app.admin_call(Method::POST, "/tenants/default/clients", Some(bad)).await;
    expect_status(refused, 400).await;
    let path = format!("/tenants/default/clients/{}", other.id);
    let patch = json!({"post_logout_redirect_uris": ["https://other.example/bye"]});
    let updated = expect_status(app.admin_call(Method::PATCH, &path, Some(patch)).await, 200).await;
    assert_eq!(updated["post_logout_redirect_uris"], json!(["https://other.example/bye"]));
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_every_other_grant_and_session() {
    let setup = setup().await;
    let app = &setup.app;
    let mut browser = Browser::new(app);
    let tokens = sign_in(&mut browser, &setup, PASSWORD).await;
    let mut elsewhere = Browser::new(app);
    let other_tokens = sign_in(&mut elsewhere, &setup, PASSWORD).await;
    let old_cookie = browser.jar["rsp_session"].clone();
    let page_url = app.endpoint(TENANT, "/account/password");

    let anonymous = Browser::new(app).get(&page_url).await;
    assert_eq!(anonymous.status(), 401, "a live session is required");
    let page = browser.get(&page_url).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let new_password = "a brand new passphrase";
    let post = |csrf: &str, current: &str, new: &str| {
        [("csrf", csrf.to_owned()), ("current_password", current.to_owned()), ("new_password", new.to_owned())]
    };
    let send = async |browser: &mut Browser<'_>, form: [(&str, String); 3]| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser.post(&page_url, &form).await
    };
    assert_eq!(send(&mut browser, post("", PASSWORD, new_password)).await.status(), 403, "no CSRF token");
    let wrong = send(&mut browser, post(&csrf, "not my password", new_password)).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("The current password is not correct."));
    let weak = send(&mut browser, post(&csrf, PASSWORD, "password1")).await;
    assert_eq!(weak.status(), 400, "the password rules apply");
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    assert_eq!(token(&setup, &refresh).await.status(), 200, "refused changes revoke nothing");

    let done = see_other(&send(&mut browser, post(&csrf, PASSWORD, new_password)).await);
    assert_eq!(done, format!("{page_url}?changed"));
    assert_ne!(browser.jar["rsp_session"], old_cookie, "this browser continues in a new session");
    assert!(silent(&mut browser, &setup).await.contains_key("code"));
    assert_eq!(silent(&mut elsewhere, &setup).await["error"], "login_required", "other sessions ended");
    let mut stale = Browser::new(app);
    stale.jar.insert("rsp_session".into(), old_cookie);
    assert_eq!(silent(&mut stale, &setup).await["error"], "login_required", "the old session is gone");
    for old in [&tokens, &other_tokens] {
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", old["refresh_token"].as_str().unwrap())];
        let refused = expect_status(token(&setup, &refresh).await, 400).await;
        assert_eq!(refused["error"], "invalid_grant");
        let userinfo = app.http.get(app.endpoint(TENANT, "/oauth2/userinfo"));
        let userinfo = userinfo.bearer_auth(old["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(userinfo.status(), 401, "the grant's access tokens are revoked too");
    }
    sign_in(&mut Browser::new(app), &setup, new_password).await;
}

#[tokio::test]
async fn wrong_current_passwords_count_as_failed_logins_and_an_admin_reset_revokes_too() {
    let setup = setup().await;
    let app = &setup.app;
    let mut browser = Browser::new(app);
    let tokens = sign_in(&mut browser, &setup, PASSWORD).await;
    let page_url = app.endpoint(TENANT, "/account/password");
    let csrf = hidden(&browser.get(&page_url).await.text().await.unwrap(), "csrf");
    let statuses = {
        let mut statuses = Vec::new();
        for current in ["guess 1", "guess 2", "guess 3", "guess 4", "guess 5", PASSWORD] {
            let form = [("csrf", csrf.as_str()), ("current_password", current), ("new_password", "another passphrase")];
            statuses.push(browser.post(&page_url, &form).await.status().as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "throttled like the login form, before any hashing");

    let path = format!("/tenants/default/users/{}/password", setup.user_id);
    let reset = app.admin_call(Method::POST, &path, Some(json!({"password": "an administrator's choice"}))).await;
    expect_status(reset, 200).await;
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    assert_eq!(expect_status(token(&setup, &refresh).await, 400).await["error"], "invalid_grant");
    assert_eq!(silent(&mut browser, &setup).await["error"], "login_required");
}

#[tokio::test]
async fn discovery_lists_the_end_session_endpoint() {
    let app = spawn_app().await;
    let url = app.endpoint(TENANT, "/.well-known/openid-configuration");
    let metadata: Value = expect_status(app.http.get(url).send().await.unwrap(), 200).await;
    assert_eq!(metadata["end_session_endpoint"], app.endpoint(TENANT, "/oauth2/logout"));
}
