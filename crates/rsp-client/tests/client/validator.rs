//! Local access-token validation against a JWKS served by the test server, with keys made here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsp_client::{TokenValidator, ValidationError};
use serde_json::{Value, json};

use crate::server::TestServer;

const NOW: i64 = 1_700_000_000;
const AUDIENCE: &str = "https://orders.example";

/// A P-256 signing key and its public JWK.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl Key {
    fn generate(kid: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self { kid: kid.to_owned(), encoding, jwk: serde_json::to_value(jwk).unwrap() }
    }

    fn sign(&self, typ: &str, claims: &Value) -> String {
        let header = Header { typ: Some(typ.to_owned()), kid: Some(self.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

struct Setup {
    server: TestServer,
    validator: TokenValidator,
    clock: Arc<AtomicI64>,
    key: Key,
}

impl Setup {
    async fn new() -> Self {
        let server = TestServer::spawn().await;
        let key = Key::generate("k1");
        *server.knobs.jwks.lock().unwrap() = json!({"keys": [key.jwk]});
        let clock = Arc::new(AtomicI64::new(NOW));
        let validator = TokenValidator::builder(server.issuer(), AUDIENCE)
            .clock({
                let clock = Arc::clone(&clock);
                move || clock.load(Ordering::SeqCst)
            })
            .build()
            .unwrap();
        Self { server, validator, clock, key }
    }

    fn claims(&self) -> Value {
        json!({
            "iss": self.server.issuer(), "sub": "alice", "aud": AUDIENCE, "client_id": "web",
            "scope": "orders:read orders:write", "jti": "j-1", "iat": NOW - 10, "exp": NOW + 300,
        })
    }

    fn token_with(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        change(&mut claims);
        self.key.sign("at+jwt", &claims)
    }

    async fn refused(&self, token: &str) -> ValidationError {
        self.validator.validate(token).await.unwrap_err()
    }

    fn jwks_calls(&self) -> usize {
        self.server.knobs.jwks_calls.load(Ordering::SeqCst)
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn a_valid_token_passes_with_its_claims() {
    let s = Setup::new().await;
    let claims = s.validator.validate(&s.token_with(|_| {})).await.unwrap();
    assert_eq!((claims.sub.as_str(), claims.client_id.as_str()), ("alice", "web"));
    assert_eq!(claims.aud, vec![AUDIENCE]);
    assert!(claims.has_scope("orders:write") && !claims.has_scope("orders"));
    // The media-type spelling of typ, in any case, and an aud list that names us, are fine too.
    assert!(s.validator.validate(&s.key.sign("application/AT+JWT", &s.claims())).await.is_ok());
    let listed = s.token_with(|c| c["aud"] = json!(["other", AUDIENCE]));
    assert!(s.validator.validate(&listed).await.is_ok());
    assert_eq!(s.jwks_calls(), 1, "the JWKS is fetched once and cached");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let s = Setup::new().await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": "k1"});
    let token = format!("{}.{}.", b64(&header), b64(&s.claims()));
    assert_eq!(s.refused(&token).await, ValidationError::AlgorithmNotAllowed("none".into()));
}

#[tokio::test]
async fn hmac_with_the_public_key_as_secret_is_refused() {
    let s = Setup::new().await;
    let secret = serde_json::to_vec(&s.key.jwk).unwrap();
    let header = Header { typ: Some("at+jwt".into()), kid: Some("k1".into()), ..Header::new(Algorithm::HS256) };
    let token = jsonwebtoken::encode(&header, &s.claims(), &EncodingKey::from_secret(&secret)).unwrap();
    assert_eq!(s.refused(&token).await, ValidationError::AlgorithmNotAllowed("HS256".into()));
}

#[tokio::test]
async fn an_alg_other_than_the_keys_is_refused() {
    let s = Setup::new().await;
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"});
    let token = format!("{}.{}.c2ln", b64(&header), b64(&s.claims()));
    assert_eq!(s.refused(&token).await, ValidationError::AlgorithmMismatch);
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    let s = Setup::new().await;
    let token = s.key.sign("JWT", &s.claims());
    assert_eq!(s.refused(&token).await, ValidationError::WrongType(Some("JWT".into())));
}

#[tokio::test]
async fn the_issuer_must_match_exactly() {
    let s = Setup::new().await;
    let issuer = format!("{}/", s.server.issuer());
    let token = s.token_with(|c| c["iss"] = json!(issuer));
    assert_eq!(s.refused(&token).await, ValidationError::WrongIssuer);
}

#[tokio::test]
async fn a_foreign_audience_is_refused() {
    let s = Setup::new().await;
    let token = s.token_with(|c| c["aud"] = json!("https://billing.example"));
    assert_eq!(s.refused(&token).await, ValidationError::WrongAudience);
}

#[tokio::test]
async fn expiry_is_checked_against_the_clock_with_leeway() {
    let s = Setup::new().await;
    let within = s.token_with(|c| c["exp"] = json!(NOW - 29));
    assert!(s.validator.validate(&within).await.is_ok(), "29 s past exp is inside the 30 s leeway");
    let beyond = s.token_with(|c| c["exp"] = json!(NOW - 31));
    assert_eq!(s.refused(&beyond).await, ValidationError::Expired);
    let fine = s.token_with(|_| {});
    s.clock.store(NOW + 331, Ordering::SeqCst);
    assert_eq!(s.refused(&fine).await, ValidationError::Expired);
}

#[tokio::test]
async fn a_token_from_the_future_is_refused() {
    let s = Setup::new().await;
    let token = s.token_with(|c| c["iat"] = json!(NOW + 31));
    assert_eq!(s.refused(&token).await, ValidationError::IssuedInFuture);
}

#[tokio::test]
async fn tampering_breaks_the_signature() {
    let s = Setup::new().await;
    let token = s.token_with(|_| {});
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged_claims = s.claims();
    forged_claims["sub"] = json!("mallory");
    let forged = format!("{}.{}.{}", parts[0], b64(&forged_claims), parts[2]);
    assert_eq!(s.refused(&forged).await, ValidationError::BadSignature);

    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 0x01;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(signature));
    assert_eq!(s.refused(&flipped).await, ValidationError::BadSignature);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_a_rate_limited_refetch() {
    let s = Setup::new().await;
    assert!(s.validator.validate(&s.token_with(|_| {})).await.is_ok());
    assert_eq!(s.jwks_calls(), 1);

    let new_key = Key::generate("k2");
    *s.server.knobs.jwks.lock().unwrap() = json!({"keys": [s.key.jwk, new_key.jwk]});
    let rotated = new_key.sign("at+jwt", &s.claims());

    // Within 30 s of the last fetch an unknown kid does not make us fetch again.
    s.clock.store(NOW + 10, Ordering::SeqCst);
    assert_eq!(s.refused(&rotated).await, ValidationError::UnknownKey);
    assert_eq!(s.jwks_calls(), 1);

    s.clock.store(NOW + 31, Ordering::SeqCst);
    assert!(s.validator.validate(&rotated).await.is_ok());
    assert_eq!(s.jwks_calls(), 2);

    // A kid nobody published costs nothing more for the next 30 s.
    let stranger = Key::generate("k3").sign("at+jwt", &s.claims());
    assert_eq!(s.refused(&stranger).await, ValidationError::UnknownKey);
    assert_eq!(s.jwks_calls(), 2);
}

#[tokio::test]
async fn a_retired_key_stops_verifying_after_the_periodic_refresh() {
    let s = Setup::new().await;
    let old = s.token_with(|c| c["exp"] = json!(NOW + 3600));
    assert!(s.validator.validate(&old).await.is_ok());
    *s.server.knobs.jwks.lock().unwrap() = json!({"keys": [Key::generate("k2").jwk]});
    s.clock.store(NOW + 299, Ordering::SeqCst);
    assert!(s.validator.validate(&old).await.is_ok(), "the cached JWKS is still fresh");
    s.clock.store(NOW + 300, Ordering::SeqCst);
    assert_eq!(s.refused(&old).await, ValidationError::UnknownKey);
    assert_eq!(s.jwks_calls(), 2);
}

#[tokio::test]
async fn garbage_is_malformed_and_a_missing_jwks_is_an_outage() {
    let s = Setup::new().await;
    for garbage in ["", "abc", "a.b.c", "a.b.c.d.e"] {
        assert_eq!(s.refused(garbage).await, ValidationError::Malformed, "{garbage:?}");
    }
    let elsewhere = TokenValidator::builder(format!("{}/t/nobody", s.server.base), AUDIENCE).build().unwrap();
    let error = elsewhere.validate(&s.token_with(|_| {})).await.unwrap_err();
    assert!(matches!(error, ValidationError::JwksUnavailable(ref e) if e.contains("404")), "{error:?}");
}
