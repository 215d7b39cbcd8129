//! Shared test helpers: clients with known credentials, and JWT checks with an independent library.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
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
