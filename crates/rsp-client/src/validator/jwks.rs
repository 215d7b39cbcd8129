//! The issuer's published keys: fetching the JWKS, and turning each usable JWK into a key bound to the
//! one algorithm it may verify (RFC 8725 §3.1: the token's `alg` header alone is never trusted).

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::ValidationError;

/// The algorithms the platform signs with. HMAC is absent on purpose: a public key must never double as
/// a shared secret.
const ALLOWED: [(&str, Algorithm); 3] =
    [("ES256", Algorithm::ES256), ("EdDSA", Algorithm::EdDSA), ("RS256", Algorithm::RS256)];

/// A JWKS larger than this is not the platform's.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A verification key and the algorithm it is for.
pub(crate) struct PublicKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// The keys by `kid`.
pub(crate) type KeySet = HashMap<String, PublicKey>;

/// The part of a JOSE header read before any key is chosen.
#[derive(Debug, Deserialize)]
pub(crate) struct RawHeader {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// RFC 7515 §4.1.11: a critical extension we do not know means the token must be refused, and we
    /// know none.
    #[serde(default)]
    pub crit: Option<Value>,
}

/// Reads the header by hand rather than with `jsonwebtoken::decode_header`, which cannot represent
/// `alg: none` and so could only call such a token malformed rather than refused for its algorithm.
pub(crate) fn read_header(token: &str) -> Result<RawHeader, ValidationError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(ValidationError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| ValidationError::Malformed)?;
    let header: RawHeader = serde_json::from_slice(&bytes).map_err(|_| ValidationError::Malformed)?;
    if header.crit.is_some() {
        return Err(ValidationError::Malformed);
    }
    Ok(header)
}

/// The algorithm named by `alg`, if it is one we accept.
pub(crate) fn allowed_algorithm(alg: &str) -> Result<Algorithm, ValidationError> {
    ALLOWED
        .iter()
        .find(|(name, _)| *name == alg)
        .map(|(_, algorithm)| *algorithm)
        .ok_or_else(|| ValidationError::AlgorithmNotAllowed(alg.to_owned()))
}

/// Fetches and parses the JWKS at `url`. Keys this crate cannot use are skipped, not fatal: a new key
/// type published next to ours must not break validation of our tokens.
pub(crate) async fn fetch(http: &reqwest::Client, url: &Url) -> Result<KeySet, String> {
    let response = http.get(url.clone()).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("JWKS answered {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if body.len() > MAX_JWKS_BYTES {
        return Err("JWKS too large".into());
    }
    parse(&body)
}

pub(crate) fn parse(body: &[u8]) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    let document: Document = serde_json::from_slice(body).map_err(|e| format!("JWKS unreadable: {e}"))?;
    Ok(document.keys.iter().filter_map(usable_key).collect())
}

/// A JWK as `(kid, key)`, if it is a signing key of an allowed algorithm whose declared `alg`, when
/// present, agrees with its key type.
fn usable_key(value: &Value) -> Option<(String, PublicKey)> {
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    let kid = jwk.common.key_id.clone()?;
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    if jwk.common.key_algorithm.is_some_and(|declared| declared != KeyAlgorithm::from(alg)) {
        tracing::warn!(kid, "JWK's alg disagrees with its key type; key ignored");
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some((kid, PublicKey { alg, key }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256: &str = r#""kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0""#;

    #[test]
    fn keeps_usable_signing_keys_only() {
        let body = format!(
            r#"{{"keys":[
                {{"kid":"ec",{P256}}},
                {{"kid":"ec-declared","alg":"ES256","use":"sig",{P256}}},
                {{"kid":"ec-lying","alg":"RS256",{P256}}},
                {{"kid":"ec-enc","use":"enc",{P256}}},
                {{{P256}}},
                {{"kid":"ed","kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}},
                {{"kid":"hmac","kty":"oct","k":"c2VjcmV0"}},
                {{"kid":"weird","kty":"XYZ"}}
            ]}}"#
        );
        let keys = parse(body.as_bytes()).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["ec", "ec-declared", "ed"]);
        assert_eq!(keys["ed"].alg, Algorithm::EdDSA);
        assert_eq!(keys["ec"].alg, Algorithm::ES256);
    }

    #[test]
    fn only_the_platform_algorithms_are_allowed() {
        assert_eq!(allowed_algorithm("ES256"), Ok(Algorithm::ES256));
        for alg in ["none", "HS256", "es256", "PS256", ""] {
            assert_eq!(allowed_algorithm(alg), Err(ValidationError::AlgorithmNotAllowed(alg.into())));
        }
    }

    #[test]
    fn headers_with_critical_extensions_or_wrong_shape_are_malformed() {
        let enc = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let crit = format!("{}.e30.sig", enc(r#"{"alg":"ES256","crit":["x"],"x":1}"#));
        assert_eq!(read_header(&crit).unwrap_err(), ValidationError::Malformed);
        assert_eq!(read_header("a.b").unwrap_err(), ValidationError::Malformed);
        assert_eq!(read_header("a.b.c.d").unwrap_err(), ValidationError::Malformed);
        let ok = format!("{}.e30.sig", enc(r#"{"alg":"none","typ":"at+jwt"}"#));
        assert_eq!(read_header(&ok).unwrap().alg, "none");
    }
}
