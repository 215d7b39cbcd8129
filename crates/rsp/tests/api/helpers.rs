//! Shared test helpers: clients with known credentials, JWT checks with an independent library, and a
//! browser for the sign-in pages.
//!
//! The "browser" is reqwest without redirects and a small cookie jar kept here, so every hop and every
//! `Set-Cookie` is visible to the test.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use rsp_testkit::TestApp;
use serde_json::{Value, json};

/// A registered client's id and secret.
pub struct Registered {
    pub id: String,
    pub secret: String,
}

pub async fn client(app: &TestApp, tenant: &str, body: Value) -> Registered {
    let created = app.create_client(tenant, body).await;
    Registered {
        id: created["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// A confidential client_credentials client with scopes `a b`.
pub async fn service_client(app: &TestApp, tenant: &str) -> Registered {
    client(app, tenant, json!({"name": "svc", "scope": "a b"})).await
}

pub async fn jwks(app: &TestApp, tenant: &str) -> JwkSet {
    app.http.get(app.endpoint(tenant, "/jwks.json")).send().await.unwrap().json().await.unwrap()
}

/// Verifies `token` with `jsonwebtoken` against the tenant's published JWKS, checking issuer and
/// (when given) audience, and returns the claims.
pub async fn verify_with_jwks(
    app: &TestApp,
    tenant: &str,
    token: &str,
    audience: Option<&str>,
) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let set = jwks(app, tenant).await;
    let kid = header.kid.clone().ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("kid not in JWKS")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[app.issuer(tenant)]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    decode::<Value>(token, &key, &validation).map(|data| data.claims).map_err(|e| e.to_string())
}

/// The decoded protected header of a compact JWS.
pub fn header(token: &str) -> jsonwebtoken::Header {
    decode_header(token).unwrap()
}

/// A browser: cookies by name, sent back with every request.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub jar: HashMap<String, String>,
    /// Sent as `X-Forwarded-For`, as a proxy in front of the server would.
    pub forwarded_for: Option<String>,
    /// The `Origin` of posts when it is not `app.url` (a replica behind the shared issuer's origin).
    pub origin: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self { app, jar: HashMap::new(), forwarded_for: None, origin: None }
    }

    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
        origin: bool,
    ) -> reqwest::Response {
        let mut request = self.app.http.request(method, url);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(COOKIE, cookies.join("; "));
        }
        if origin {
            request = request.header(ORIGIN, self.origin.as_deref().unwrap_or(self.app.url.as_str()));
        }
        if let Some(client) = &self.forwarded_for {
            request = request.header("x-forwarded-for", client.as_str());
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"), "{set}");
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        self.send(Method::GET, url, None, false).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(Method::POST, url, Some(form), true).await
    }
}

/// The `Location` of a 303 (never a 302 or 307: BCP 4.12), with the page headers every answer carries.
pub fn see_other(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "{:?}", response.headers());
    assert_page_headers(response);
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

pub fn assert_page_headers(response: &reqwest::Response) {
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // No Referer leaves our origin; `no-referrer` would make browsers send `Origin: null` on our posts.
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["cache-control"], "no-store");
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn query(location: &str) -> HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}
