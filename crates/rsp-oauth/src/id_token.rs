//! ID tokens (OIDC Core §2, §3.1.3.6): signed with the tenant's key under `typ: JWT`, so one can never
//! pass for an access token (`at+jwt`, RFC 9068 §5).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsp_core::SigningAlgorithm;
use serde::{Deserialize, Serialize};

use crate::OAuthError;
use crate::keyring::TenantKeys;

/// The media type of ID tokens' JOSE header.
pub const ID_TOKEN_TYP: &str = "JWT";

/// The claims of an ID token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    /// The client the token is for (OIDC Core §2: `aud` contains the client_id).
    pub aud: String,
    /// The authorized party: the same client, stated explicitly.
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    /// Exactly the request's `nonce`; absent when the request had none and on refresh (OIDC Core §12.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// `at_hash` (OIDC Core §3.1.3.6): base64url of the left half of the access token's hash under the hash
/// of the ID token's algorithm (SHA-256 for ES256 and RS256; SHA-512 for EdDSA over Ed25519).
pub fn at_hash(alg: SigningAlgorithm, access_token: &str) -> String {
    let (algorithm, half) = match alg {
        SigningAlgorithm::ES256 | SigningAlgorithm::RS256 => (&digest::SHA256, 16),
        SigningAlgorithm::EdDSA => (&digest::SHA512, 32),
    };
    let hash = digest::digest(algorithm, access_token.as_bytes());
    let left = hash.as_ref().get(..half).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(left)
}

/// Signs `claims` with the tenant's active key.
pub fn mint(keys: &TenantKeys, claims: &IdClaims) -> Result<String, OAuthError> {
    let payload = serde_json::to_vec(claims).map_err(|e| OAuthError::Internal(e.to_string()))?;
    let header = keys.signer.encoded_header(ID_TOKEN_TYP);
    keys.signer.sign_compact(&header, &payload).map_err(|e| OAuthError::Internal(e.to_string()))
}

/// The `sub` of an `id_token_hint` (OIDC Core §3.1.2.1), if this issuer signed it as an ID token. An
/// expired hint is still a hint (the spec allows it); anything else that does not verify is refused.
pub fn hinted_subject(keys: &TenantKeys, token: &str, issuer: &str) -> Option<String> {
    verified_hint(keys, token, issuer).map(|claims| claims.sub)
}

/// The claims of an `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2) when it is one of
/// this issuer's ID tokens: `typ: JWT`, signed by a published key of the tenant with that key's
/// algorithm, and `iss` this issuer. Expiry is not checked: an expired ID token is still a valid hint.
pub fn verified_hint(keys: &TenantKeys, token: &str, issuer: &str) -> Option<IdClaims> {
    if token.len() > crate::token::MAX_TOKEN_LEN {
        return None;
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some(ID_TOKEN_TYP) {
        return None;
    }
    let verifier = keys.verifiers.get(header.kid.as_deref()?)?;
    if header.alg != verifier.alg {
        return None;
    }
    let mut validation = jsonwebtoken::Validation::new(verifier.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    let data = jsonwebtoken::decode::<IdClaims>(token, &verifier.key, &validation).ok()?;
    (data.claims.iss == issuer).then_some(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_hash_of_the_algorithm() {
        // OIDC Core §A.3's example access token and its at_hash (RS256).
        assert_eq!(
            at_hash(SigningAlgorithm::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(at_hash(SigningAlgorithm::ES256, "x")).unwrap().len(), 16);
        assert_eq!(URL_SAFE_NO_PAD.decode(at_hash(SigningAlgorithm::EdDSA, "x")).unwrap().len(), 32);
    }
}
