//! Sign-in governed by the tenant's Cedar policies: once a policy names `Action::"SignIn"`, a code is
//! issued only when Cedar permits `User` / `SignIn` / `Client` with the authentication methods in the
//! context; a denial goes back to the client as `access_denied` with `state` and `iss`, and no code.

use std::collections::HashMap;

use reqwest::Method;
use rsp::config::Role;
use rsp_testkit::services::Shared;
use rsp_testkit::{TestApp, TestOptions, expect_status, spawn_app, spawn_app_with};
use serde_json::json;

use crate::helpers::{Browser, client, hidden, query, see_other};

const TENANT: &str = "default";
const REDIRECT: &str = "https://app.example/callback";
const PASSWORD: &str = "correct horse battery staple";

async fn code_flow_client(app: &TestApp, name: &str) -> String {
    let registration = json!({
        "name": name,
        "grant_types": ["authorization_code"],
        "scope": "openid",
        "redirect_uris": [REDIRECT],
    });
    client(app, TENANT, registration).await.id
}

/// Runs the browser through authorize (and the login and consent pages when shown): the callback's query.
async fn authorize(browser: &mut Browser<'_>, client_id: &str) -> HashMap<String, String> {
    let app = browser.app;
    let mut url = url::Url::parse(&app.endpoint(TENANT, "/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "st-9")
        .append_pair("code_challenge", &rsp_oauth::pkce::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
        .append_pair("code_challenge_method", "S256");
    let mut next = see_other(&browser.get(url.as_str()).await);
    if next.contains("/oauth2/login") {
        let html = browser.get(&next).await.text().await.unwrap();
        let (pending, csrf) = (hidden(&html, "pending"), hidden(&html, "csrf"));
        let form = [("pending", pending.as_str()), ("csrf", &csrf), ("username", "ada"), ("password", PASSWORD)];
        next = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/login"), &form).await);
    }
    if next.contains("/oauth2/consent") {
        let html = browser.get(&next).await.text().await.unwrap();
        let (pending, csrf) = (hidden(&html, "pending"), hidden(&html, "csrf"));
        let form = [("pending", pending.as_str()), ("csrf", &csrf), ("decision", "allow")];
        next = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/consent"), &form).await);
    }
    assert!(next.starts_with(REDIRECT), "{next}");
    query(&next)
}

/// A user `ada`, clients `Wiki` and `Payroll`, and policies that let anyone sign in except to Payroll
/// without a second factor; returns the two client ids.
async fn governed(app: &TestApp) -> (String, String) {
    let user = json!({"username": "ada", "password": PASSWORD});
    expect_status(app.admin_call(Method::POST, "/tenants/default/users", Some(user)).await, 201).await;
    let (wiki, payroll) = (code_flow_client(app, "Wiki").await, code_flow_client(app, "Payroll").await);
    let policies = format!(
        r#"@id("sign-in") permit(principal, action == Action::"SignIn", resource);
           @id("payroll-needs-a-second-factor") forbid(principal, action == Action::"SignIn",
               resource == Client::"{payroll}") unless {{ context.amr.contains("otp") }};"#
    );
    let put = app.admin_call(Method::PUT, "/tenants/default/policies", Some(json!({"policies": policies}))).await;
    expect_status(put, 200).await;
    (wiki, payroll)
}

#[tokio::test]
async fn the_auth_role_asks_the_policy_service_over_http_the_same_question() {
    let Some(shared) = Shared::fresh_database().await else { return };
    let first = spawn_app_with(TestOptions { shared: Some(shared.clone()), ..TestOptions::default() }).await;
    let policy_url = first.url.clone();
    let auth = first
        .replica_configured(|config| {
            config.role = Role::Auth;
            config.policy_url = Some(policy_url);
        })
        .await
        .unwrap();
    let (wiki, payroll) = governed(&first).await;
    let mut browser = Browser::new(&auth);
    browser.origin = Some(first.url.clone());
    assert!(authorize(&mut browser, &wiki).await.contains_key("code"));
    let denied = authorize(&mut browser, &payroll).await;
    assert_eq!(denied["error"], "access_denied", "{denied:?}");
    shared.cleanup().await;
}

#[tokio::test]
async fn once_a_policy_names_sign_in_cedar_decides_which_user_reaches_which_client() {
    let app = spawn_app().await;
    let user = json!({"username": "ada", "password": PASSWORD});
    expect_status(app.admin_call(Method::POST, "/tenants/default/users", Some(user)).await, 201).await;
    let (wiki, payroll) = (code_flow_client(&app, "Wiki").await, code_flow_client(&app, "Payroll").await);

    let mut browser = Browser::new(&app);
    assert!(authorize(&mut browser, &payroll).await.contains_key("code"), "not governed: any user signs in");

    let policies = format!(
        r#"@id("sign-in") permit(principal, action == Action::"SignIn", resource);
           @id("payroll-needs-a-second-factor") forbid(principal, action == Action::"SignIn",
               resource == Client::"{payroll}") unless {{ context.amr.contains("otp") }};"#
    );
    let put = app.admin_call(Method::PUT, "/tenants/default/policies", Some(json!({"policies": policies}))).await;
    expect_status(put, 200).await;

    let mut browser = Browser::new(&app);
    assert!(authorize(&mut browser, &wiki).await.contains_key("code"), "the wiki is permitted with a password");
    let denied = authorize(&mut browser, &payroll).await;
    assert_eq!(denied["error"], "access_denied", "{denied:?}");
    assert_eq!(denied["state"], "st-9");
    assert_eq!(denied["iss"], app.issuer(TENANT));
    assert!(!denied.contains_key("code"));
}
