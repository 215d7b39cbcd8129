//! The browser side of the code flow, end to end over HTTP: authorize, the login and consent pages, the
//! callback, the token exchange with PKCE, the ID token checked with an independent library, userinfo
//! and refresh; and the defences: CSRF, Origin, no open redirect, 303s only, no framing, `prompt=none`.
//! The browser is [`crate::helpers::Browser`].

use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION, ORIGIN};
use rsp_testkit::{TestApp, expect_status, spawn_app};
use serde_json::{Value, json};

use crate::helpers::{Browser, Registered, assert_page_headers, client, hidden, query, see_other, verify_with_jwks};

const TENANT: &str = "default";
const REDIRECT: &str = "https://app.example/callback";
const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A token request with HTTP Basic client authentication.
async fn token(setup: &Setup, form: &[(&str, &str)]) -> Value {
    let response = setup
        .app
        .http
        .post(setup.app.endpoint(TENANT, "/oauth2/token"))
        .basic_auth(&setup.client.id, Some(&setup.client.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    expect_status(response, 200).await
}

struct Setup {
    app: TestApp,
    client: Registered,
    user_id: String,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let user = app
        .admin_call(Method::POST, "/tenants/default/users", Some(json!({"username": "ada", "password": PASSWORD})))
        .await;
    let user_id = expect_status(user, 201).await["user_id"].as_str().unwrap().to_owned();
    let body = json!({
        "name": "Demo <app>",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile offline_access",
        "redirect_uris": [REDIRECT],
    });
    let client = client(&app, TENANT, body).await;
    Setup { app, client, user_id }
}

fn authorize_url(setup: &Setup, extra: &[(&str, &str)]) -> String {
    let challenge = rsp_oauth::pkce::s256(VERIFIER);
    let mut url = url::Url::parse(&setup.app.endpoint(TENANT, "/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &setup.client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile offline_access")
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    for (name, value) in extra {
        url.query_pairs_mut().append_pair(name, value);
    }
    url.into()
}

/// Authorize without a session: the login page's URL (carrying only an opaque id) and its HTML.
async fn login_page(browser: &mut Browser<'_>, setup: &Setup) -> (String, String) {
    let login_url = see_other(&browser.get(&authorize_url(setup, &[])).await);
    assert!(login_url.starts_with(&setup.app.endpoint(TENANT, "/oauth2/login?pending=")), "{login_url}");
    assert!(!login_url.contains("st-123") && !login_url.contains(&setup.client.id), "the request is not in the URL");
    let page = browser.get(&login_url).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("autofocus") && html.contains("<label for=\"password\"")
    );
    assert!(!html.contains("<script"), "no JavaScript");
    (login_url, html)
}

#[tokio::test]
async fn a_person_signs_in_consents_and_the_client_gets_verified_tokens_userinfo_and_a_refresh() {
    let setup = setup().await;
    let app = &setup.app;
    let mut browser = Browser::new(app);
    let (_, html) = login_page(&mut browser, &setup).await;
    let (pending, csrf) = (hidden(&html, "pending"), hidden(&html, "csrf"));
    let login = app.endpoint(TENANT, "/oauth2/login");

    let wrong = [("pending", pending.as_str()), ("csrf", &csrf), ("username", "ada"), ("password", "wrong one")];
    let failed = browser.post(&login, &wrong).await;
    assert_eq!(failed.status(), 401);
    let failed_html = failed.text().await.unwrap();
    assert!(failed_html.contains("Invalid username or password.") && !failed_html.contains("wrong one"));
    let unknown = [("pending", pending.as_str()), ("csrf", &csrf), ("username", "nobody"), ("password", "wrong one")];
    let unknown = browser.post(&login, &unknown).await;
    assert_eq!(unknown.status(), 401, "an unknown user gets the same answer");
    assert_eq!(unknown.text().await.unwrap().replace("nobody", "ada"), failed_html);

    let right = [("pending", pending.as_str()), ("csrf", &csrf), ("username", "ada"), ("password", PASSWORD)];
    let consent_url = see_other(&browser.post(&login, &right).await);
    assert!(consent_url.starts_with(&app.endpoint(TENANT, "/oauth2/consent?pending=")), "{consent_url}");
    assert!(browser.jar.contains_key("rsp_session"), "loopback http: no __Host- prefix, documented");

    let consent = browser.get(&consent_url).await;
    assert_eq!(consent.status(), 200);
    let html = consent.text().await.unwrap();
    assert!(html.contains("Demo &lt;app&gt;") && html.contains("<li>profile</li>"), "{html}");
    let form =
        [("pending", pending.as_str()), ("csrf", &hidden(&html, "csrf")), ("decision", "allow"), ("remember", "yes")];
    let callback = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/consent"), &form).await);
    assert!(callback.starts_with(REDIRECT), "{callback}");
    let answer = query(&callback);
    assert_eq!((answer["state"].as_str(), answer["iss"].as_str()), ("st-123", app.issuer(TENANT).as_str()));

    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", answer["code"].as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let tokens = token(&setup, &exchange).await;
    let id_token = verify_with_jwks(app, TENANT, tokens["id_token"].as_str().unwrap(), Some(&setup.client.id)).await;
    let id_token = id_token.unwrap();
    assert_eq!((id_token["sub"].as_str(), id_token["nonce"].as_str()), (Some(setup.user_id.as_str()), Some("n-456")));
    assert_eq!(id_token["amr"], json!(["pwd"]));

    let userinfo = app
        .http
        .get(app.endpoint(TENANT, "/oauth2/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let userinfo: Value = expect_status(userinfo, 200).await;
    assert_eq!(
        userinfo,
        json!({"sub": setup.user_id, "preferred_username": "ada", "updated_at": userinfo["updated_at"]})
    );
    assert!(userinfo["updated_at"].is_i64());

    let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    let refreshed = token(&setup, &refresh).await;
    assert_ne!(refreshed["access_token"], tokens["access_token"]);

    // The session and the remembered consent: the next authorization goes straight back with a code.
    let again = see_other(&browser.get(&authorize_url(&setup, &[])).await);
    assert!(again.starts_with(REDIRECT) && query(&again).contains_key("code"), "{again}");
    // prompt=login asks for the password again even with a live session.
    let relogin = see_other(&browser.get(&authorize_url(&setup, &[("prompt", "login")])).await);
    assert!(relogin.contains("/oauth2/login?pending="), "{relogin}");

    // Disabling the user ends the session on the spot: the same cookie now leads to the login page.
    let path = format!("/tenants/default/users/{}", setup.user_id);
    expect_status(app.admin_call(Method::PATCH, &path, Some(json!({"disabled": true}))).await, 200).await;
    let after = see_other(&browser.get(&authorize_url(&setup, &[("prompt", "none")])).await);
    assert_eq!(query(&after)["error"], "login_required", "{after}");
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_our_origin_and_never_redirect_off_site() {
    let setup = setup().await;
    let app = &setup.app;
    let mut victim = Browser::new(app);
    let (_, html) = login_page(&mut victim, &setup).await;
    let pending = hidden(&html, "pending");
    let mut attacker = Browser::new(app);
    let (_, attacker_html) = login_page(&mut attacker, &setup).await;
    let foreign = hidden(&attacker_html, "csrf");
    let login = app.endpoint(TENANT, "/oauth2/login");

    let base = |csrf: &'static str| [("pending", "x"), ("csrf", csrf)];
    assert_eq!(victim.post(&login, &base("")).await.status(), 403, "csrf missing");
    let with_foreign = [("pending", pending.as_str()), ("csrf", &foreign), ("username", "ada"), ("password", PASSWORD)];
    let refused = victim.post(&login, &with_foreign).await;
    assert_eq!(refused.status(), 403, "another browser's token");
    assert!(!victim.jar.contains_key("rsp_session"));

    let csrf = hidden(&html, "csrf");
    let good = [
        ("pending", pending.as_str()),
        ("csrf", csrf.as_str()),
        ("username", "ada"),
        ("password", PASSWORD),
        ("next", "https://evil.example/"),
    ];
    let cross_site = victim.send(Method::POST, &login, Some(&good), false).await;
    assert_eq!(cross_site.status(), 303, "no Origin (not a browser): the token alone decides");
    let location = cross_site.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&app.endpoint(TENANT, "/oauth2/consent")), "`next` is ignored: {location}");

    let mut evil = app.http.post(&login).header(ORIGIN, "https://evil.example").form(&good);
    let cookies: Vec<String> = victim.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    evil = evil.header(COOKIE, cookies.join("; "));
    assert_eq!(evil.send().await.unwrap().status(), 403, "a foreign Origin");
}

#[tokio::test]
async fn errors_before_the_redirect_uri_is_trusted_are_pages_and_prompt_none_never_shows_one() {
    let setup = setup().await;
    let app = &setup.app;
    let mut browser = Browser::new(app);
    let none = see_other(&browser.get(&authorize_url(&setup, &[("prompt", "none")])).await);
    let answer = query(&none);
    assert!(none.starts_with(REDIRECT));
    assert_eq!(answer["error"], "login_required");
    assert_eq!((answer["state"].as_str(), answer["iss"].as_str()), ("st-123", app.issuer(TENANT).as_str()));

    let tampered = authorize_url(&setup, &[]).replace("app.example", "evil.example");
    let page = browser.get(&tampered).await;
    assert_eq!(page.status(), 400);
    assert!(page.headers().get(LOCATION).is_none());
    assert_page_headers(&page);
    assert!(page.text().await.unwrap().contains("redirect_uri is not registered"));

    let expired = browser.get(&app.endpoint(TENANT, "/oauth2/login?pending=made-up")).await;
    assert_eq!(expired.status(), 400);
}

#[tokio::test]
async fn login_hint_prefills_the_username_and_nothing_else_is_reflected() {
    let setup = setup().await;
    let mut browser = Browser::new(&setup.app);
    let login_url = see_other(&browser.get(&authorize_url(&setup, &[("login_hint", "ada")])).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    assert!(html.contains(r#"name="username" type="text" value="ada""#), "{html}");
    let hostile = "\"><script>alert(1)</script>";
    let login_url = see_other(&browser.get(&authorize_url(&setup, &[("login_hint", hostile)])).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    assert!(!html.contains("<script>") && html.contains("value=\"&quot;&gt;&lt;script&gt;"), "escaped: {html}");
    let not_a_username = "x".repeat(300);
    let login_url = see_other(&browser.get(&authorize_url(&setup, &[("login_hint", &not_a_username)])).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    assert!(html.contains(r#"name="username" type="text" value="""#), "{html}");
}
