//! TOTP over HTTP: self-service enrolment behind the password (PWD-6), the login's second step with its
//! CSRF token, Origin check, 303s and page headers (BCP 4.7, 4.12, 4.16), `amr` in the ID token, one-time
//! codes (TOTP-5.2b), single-use recovery codes, the back-off after five wrong codes (HOTP-7.3), and the
//! administrator's reset. Codes are computed from the secret the page shows, at the server's clock.

use reqwest::Method;
use reqwest::header::{COOKIE, ORIGIN};
use rsp_core::Clock;
use rsp_oauth::mfa::totp::{STEP_SECS, TotpHash, code, step_at};
use rsp_testkit::{TestApp, expect_status, spawn_app};
use serde_json::{Value, json};

use crate::helpers::{Browser, Registered, assert_page_headers, client, hidden, query, see_other, verify_with_jwks};

const TENANT: &str = "default";
const REDIRECT: &str = "https://app.example/callback";
const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

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
        "name": "Demo",
        "grant_types": ["authorization_code"],
        "scope": "openid profile",
        "redirect_uris": [REDIRECT],
    });
    let client = client(&app, TENANT, body).await;
    Setup { app, client, user_id }
}

fn authorize_url(setup: &Setup) -> String {
    let challenge = rsp_oauth::pkce::s256(VERIFIER);
    let mut url = url::Url::parse(&setup.app.endpoint(TENANT, "/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &setup.client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

fn base32_decode(text: &str) -> Vec<u8> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0_u32, 0_u32);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            other => panic!("not base32: {other}"),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// The code of the server's current step (or `offset` steps away).
fn current_code(app: &TestApp, secret: &[u8], offset: i64) -> String {
    code(secret, step_at(app.clock.now()) + offset, TotpHash::Sha1, 6)
}

fn between<'h>(html: &'h str, start: &str, end: &str) -> &'h str {
    let from = html.find(start).unwrap_or_else(|| panic!("no {start} in {html}")) + start.len();
    &html[from..from + html[from..].find(end).unwrap()]
}

/// Posts the account form with this browser's CSRF token.
async fn account_post(browser: &mut Browser<'_>, html: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let csrf = hidden(html, "csrf");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let url = browser.app.endpoint(TENANT, "/account/totp");
    browser.post(&url, &form).await
}

/// Signs in on the login page of `login_url` with the password; returns where the login POST sent us.
async fn password_login(browser: &mut Browser<'_>, login_url: &str) -> String {
    let html = browser.get(login_url).await.text().await.unwrap();
    let form = [("pending", hidden(&html, "pending")), ("csrf", hidden(&html, "csrf"))];
    let fields =
        [("pending", form[0].1.as_str()), ("csrf", form[1].1.as_str()), ("username", "ada"), ("password", PASSWORD)];
    let login = browser.app.endpoint(TENANT, "/oauth2/login");
    see_other(&browser.post(&login, &fields).await)
}

/// Enrols through the account page; returns the secret and the recovery codes.
async fn enrol(browser: &mut Browser<'_>) -> (Vec<u8>, Vec<String>) {
    let app = browser.app;
    let account = app.endpoint(TENANT, "/account/totp");
    let login_url = see_other(&browser.get(&account).await);
    assert!(login_url.starts_with(&app.endpoint(TENANT, "/oauth2/login?pending=")), "through the login page");
    assert_eq!(password_login(browser, &login_url).await, account, "and back");

    let page = browser.get(&account).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"password\"") && !html.contains("totp-secret"), "{html}");
    for password in ["", "not the password"] {
        let refused = account_post(browser, &html, &[("action", "start"), ("password", password)]).await;
        assert_eq!(refused.status(), 401, "PWD-6: the current password is required");
        assert_page_headers(&refused);
    }
    let still_off = browser.get(&account).await.text().await.unwrap();
    assert!(!still_off.contains("totp-secret"), "no secret without the password");
    let started = account_post(browser, &html, &[("action", "start"), ("password", PASSWORD)]).await;
    assert_eq!(see_other(&started), account);

    let html = browser.get(&account).await.text().await.unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"), "an inline SVG QR code");
    let text = between(&html, "<code id=\"totp-secret\">", "</code>").to_owned();
    assert!(!text.contains(' '));
    let secret = base32_decode(&text);
    assert!(secret.len() >= 20, "TOTP-5.1");
    let wrong = format!("{:06}", (current_code(app, &secret, 0).parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_eq!(account_post(browser, &html, &[("action", "confirm"), ("code", &wrong)]).await.status(), 401);
    let right = current_code(app, &secret, 0);
    let confirm = account_post(browser, &html, &[("action", "confirm"), ("code", &right)]).await;
    assert_eq!(see_other(&confirm), account);

    let html = browser.get(&account).await.text().await.unwrap();
    let list = between(&html, "<ul id=\"recovery-codes\">", "</ul>");
    let codes: Vec<String> = list.split("<li>").skip(1).map(|li| li.trim_end_matches("</li>").to_owned()).collect();
    assert_eq!(codes.len(), 10, "{list}");
    let again = browser.get(&account).await.text().await.unwrap();
    assert!(!again.contains("recovery-codes") && again.contains("10 unused recovery codes"), "shown once");
    (secret, codes)
}

/// A fresh browser through authorize and the password: the TOTP page's URL and HTML.
async fn totp_page(setup: &Setup, browser: &mut Browser<'_>) -> (String, String) {
    let app = &setup.app;
    let login_url = see_other(&browser.get(&authorize_url(setup)).await);
    let totp_url = password_login(browser, &login_url).await;
    assert!(totp_url.starts_with(&app.endpoint(TENANT, "/oauth2/login/totp?pending=")), "{totp_url}");
    assert!(!browser.jar.contains_key("rsp_session"), "the password alone starts no session");
    let page = browser.get(&totp_url).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(&page);
    (totp_url, page.text().await.unwrap())
}

async fn submit_code(browser: &mut Browser<'_>, html: &str, code: &str) -> reqwest::Response {
    let form = [("pending", hidden(html, "pending")), ("csrf", hidden(html, "csrf"))];
    let fields = [("pending", form[0].1.as_str()), ("csrf", form[1].1.as_str()), ("code", code)];
    let url = browser.app.endpoint(TENANT, "/oauth2/login/totp");
    browser.post(&url, &fields).await
}

/// From the consent page to the ID token's claims.
async fn consent_and_token(setup: &Setup, browser: &mut Browser<'_>, consent_url: &str) -> Value {
    let app = &setup.app;
    assert!(consent_url.starts_with(&app.endpoint(TENANT, "/oauth2/consent?pending=")), "{consent_url}");
    let html = browser.get(consent_url).await.text().await.unwrap();
    let form = [("pending", hidden(&html, "pending")), ("csrf", hidden(&html, "csrf"))];
    let fields = [("pending", form[0].1.as_str()), ("csrf", form[1].1.as_str()), ("decision", "allow")];
    let callback = see_other(&browser.post(&app.endpoint(TENANT, "/oauth2/consent"), &fields).await);
    let answer = query(&callback);
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", answer["code"].as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let response = app
        .http
        .post(app.endpoint(TENANT, "/oauth2/token"))
        .basic_auth(&setup.client.id, Some(&setup.client.secret))
        .form(&exchange)
        .send()
        .await
        .unwrap();
    let tokens = expect_status(response, 200).await;
    verify_with_jwks(app, TENANT, tokens["id_token"].as_str().unwrap(), Some(&setup.client.id)).await.unwrap()
}

#[tokio::test]
async fn enrol_then_sign_in_with_a_code_and_the_id_token_says_otp() {
    let setup = setup().await;
    let app = &setup.app;
    let (secret, _) = enrol(&mut Browser::new(app)).await;
    let user_path = format!("/tenants/default/users/{}", setup.user_id);
    let user = expect_status(app.admin_call(Method::GET, &user_path, None).await, 200).await;
    assert_eq!(user["totp_enabled"], true);
    assert!(!user.to_string().contains(&base32_upper(&secret)), "never the secret");
    app.clock.advance(STEP_SECS);

    let mut browser = Browser::new(app);
    let (_, html) = totp_page(&setup, &mut browser).await;
    assert!(html.contains("<label for=\"code\">Authentication code</label>"), "{html}");
    assert!(html.contains("name=\"code\"") && html.contains("autocomplete=\"one-time-code\""));
    assert!(html.contains("inputmode=\"numeric\"") && html.contains("type=\"submit\""));
    let code = current_code(app, &secret, 0);
    let consent = see_other(&submit_code(&mut browser, &html, &code).await);
    assert!(browser.jar.contains_key("rsp_session"));
    let claims = consent_and_token(&setup, &mut browser, &consent).await;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["sub"], setup.user_id.as_str());

    // TOTP-5.2b: the same code from another browser within its step is refused.
    let mut replayer = Browser::new(app);
    let (_, html) = totp_page(&setup, &mut replayer).await;
    let replayed = submit_code(&mut replayer, &html, &code).await;
    assert_eq!(replayed.status(), 401);
    assert_page_headers(&replayed);
    assert!(replayed.text().await.unwrap().contains("Invalid authentication code."));
    assert!(!replayer.jar.contains_key("rsp_session"));

    // The administrator's reset (lost device): the next login needs the password only.
    let reset = expect_status(app.admin_call(Method::DELETE, &format!("{user_path}/totp"), None).await, 200).await;
    assert_eq!(reset["totp_enabled"], false);
    let mut after = Browser::new(app);
    let login_url = see_other(&after.get(&authorize_url(&setup)).await);
    let next = password_login(&mut after, &login_url).await;
    assert!(next.contains("/oauth2/consent?pending="), "{next}");
}

fn base32_upper(secret: &[u8]) -> String {
    rsp_oauth::mfa::TotpSecret::from_bytes(secret.to_vec()).to_base32()
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_without_otp_in_amr() {
    let setup = setup().await;
    let app = &setup.app;
    let (_, codes) = enrol(&mut Browser::new(app)).await;
    let mut browser = Browser::new(app);
    let (_, html) = totp_page(&setup, &mut browser).await;
    let recovery = codes.first().unwrap();
    let consent = see_other(&submit_code(&mut browser, &html, recovery).await);
    let claims = consent_and_token(&setup, &mut browser, &consent).await;
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]));

    let mut again = Browser::new(app);
    let (_, html) = totp_page(&setup, &mut again).await;
    assert_eq!(submit_code(&mut again, &html, recovery).await.status(), 401, "single use");
}

#[tokio::test]
async fn five_wrong_codes_lock_the_account_until_the_backoff_ends() {
    let setup = setup().await;
    let app = &setup.app;
    let (secret, _) = enrol(&mut Browser::new(app)).await;
    app.clock.advance(STEP_SECS);
    let mut browser = Browser::new(app);
    let (_, html) = totp_page(&setup, &mut browser).await;
    for _ in 0..5 {
        let wrong = format!("{:06}", (current_code(app, &secret, 0).parse::<u32>().unwrap() + 7) % 1_000_000);
        assert_eq!(submit_code(&mut browser, &html, &wrong).await.status(), 401);
    }
    let locked = submit_code(&mut browser, &html, &current_code(app, &secret, 0)).await;
    assert_eq!(locked.status(), 429, "HOTP-7.3: even the right code waits");
    assert!(locked.text().await.unwrap().contains("Too many wrong codes"));
    let mut elsewhere = Browser::new(app);
    let (_, other_html) = totp_page(&setup, &mut elsewhere).await;
    let locked = submit_code(&mut elsewhere, &other_html, &current_code(app, &secret, 0)).await;
    assert_eq!(locked.status(), 429, "per account, whatever the browser");
    app.clock.advance(60);
    let consent = see_other(&submit_code(&mut browser, &html, &current_code(app, &secret, 0)).await);
    assert!(consent.contains("/oauth2/consent?pending="), "{consent}");
}

#[tokio::test]
async fn the_totp_form_needs_its_csrf_token_and_our_origin() {
    let setup = setup().await;
    let app = &setup.app;
    let (secret, _) = enrol(&mut Browser::new(app)).await;
    app.clock.advance(STEP_SECS);
    let mut browser = Browser::new(app);
    let (_, html) = totp_page(&setup, &mut browser).await;
    let code = current_code(app, &secret, 0);
    let pending = hidden(&html, "pending");
    let url = app.endpoint(TENANT, "/oauth2/login/totp");

    let no_csrf = browser.post(&url, &[("pending", pending.as_str()), ("code", &code)]).await;
    assert_eq!(no_csrf.status(), 403);
    assert_page_headers(&no_csrf);
    let login_csrf = browser.post(&url, &[("pending", &pending), ("csrf", "hmac-sha256$x"), ("code", &code)]).await;
    assert_eq!(login_csrf.status(), 403, "a made-up token");

    let form = [("pending", pending.as_str()), ("csrf", &hidden(&html, "csrf")), ("code", &code)];
    let cookies: Vec<String> = browser.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let evil =
        app.http.post(&url).header(ORIGIN, "https://evil.example").header(COOKIE, cookies.join("; ")).form(&form);
    assert_eq!(evil.send().await.unwrap().status(), 403, "a foreign Origin");

    let account = browser.post(&app.endpoint(TENANT, "/account/totp"), &[("action", "disable")]).await;
    assert_eq!(account.status(), 403, "the account form needs its own token too");
    // The refused posts spent nothing: the code still signs in, and only once.
    let consent = see_other(&submit_code(&mut browser, &html, &code).await);
    assert!(consent.contains("/oauth2/consent?pending="), "{consent}");
}
