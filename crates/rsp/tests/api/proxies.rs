//! The client address behind a proxy: the login throttle keys on it, so it must be the real client when
//! the operator trusts the proxy, and must not be something a client can choose when nobody is trusted.

use reqwest::Method;
use rsp_testkit::{TestApp, TestOptions, expect_status, spawn_app_with};
use serde_json::json;

use crate::helpers::{Browser, client, hidden, see_other};

const TENANT: &str = "default";
const REDIRECT: &str = "https://app.example/callback";
const PASSWORD: &str = "correct horse battery staple";

async fn app(trusted_proxies: Option<&str>) -> (TestApp, String) {
    let options = TestOptions { trusted_proxies: trusted_proxies.map(str::to_owned), ..TestOptions::default() };
    let app = spawn_app_with(options).await;
    let user = json!({"username": "ada", "password": PASSWORD});
    expect_status(app.admin_call(Method::POST, "/tenants/default/users", Some(user)).await, 201).await;
    let registration = json!({
        "name": "App",
        "grant_types": ["authorization_code"],
        "scope": "openid",
        "redirect_uris": [REDIRECT],
    });
    let client_id = client(&app, TENANT, registration).await.id;
    (app, client_id)
}

/// One login attempt as `ada` from a browser whose proxy reports `forwarded_for`: the response status.
async fn attempt(app: &TestApp, client_id: &str, forwarded_for: &str, password: &str) -> u16 {
    let mut browser = Browser::new(app);
    browser.forwarded_for = Some(forwarded_for.to_owned());
    let mut authorize = url::Url::parse(&app.endpoint(TENANT, "/oauth2/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("code_challenge", &rsp_oauth::pkce::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
        .append_pair("code_challenge_method", "S256");
    let login_url = see_other(&browser.get(authorize.as_str()).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    let (pending, csrf) = (hidden(&html, "pending"), hidden(&html, "csrf"));
    let form = [("pending", pending.as_str()), ("csrf", &csrf), ("username", "ada"), ("password", password)];
    browser.post(&app.endpoint(TENANT, "/oauth2/login"), &form).await.status().as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_on_its_own() {
    let (app, client_id) = app(Some("127.0.0.1/32")).await;
    for _ in 0..5 {
        assert_eq!(attempt(&app, &client_id, "203.0.113.7", "wrong guess").await, 401);
    }
    assert_eq!(attempt(&app, &client_id, "203.0.113.7", PASSWORD).await, 429, "the guesser waits");
    // Another client behind the same proxy, whatever the guesser wrote to the left of its own address.
    assert_eq!(attempt(&app, &client_id, "203.0.113.7, 198.51.100.20", PASSWORD).await, 303, "the owner is not");
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_address_changes_nothing() {
    let (app, client_id) = app(None).await;
    for n in 0..5 {
        assert_eq!(attempt(&app, &client_id, &format!("203.0.113.{n}"), "wrong guess").await, 401);
    }
    let spoofed = attempt(&app, &client_id, "198.51.100.20", PASSWORD).await;
    assert_eq!(spoofed, 429, "a guesser cannot escape its throttle by naming other addresses");
}
