//! Signing keys: generation, the public JWK, and a signer parsed once at load.
//!
//! Why signing is done here rather than through `jsonwebtoken::encode`: that function re-parses the
//! PKCS#8 key on every call, which for ECDSA includes a scalar multiplication and roughly doubles the cost
//! of minting a token. A JWS compact serialisation is three base64url parts joined by dots (RFC 7515
//! §7.1); the signature itself is aws-lc-rs's. Verification uses `jsonwebtoken` (see `token`).

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsp_core::{KeyId, SigningAlgorithm};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("key generation failed")]
    Generate,
    #[error("stored private key does not parse as a {0} key")]
    Parse(&'static str),
    #[error("signing failed")]
    Sign,
}

/// A freshly generated key: the PKCS#8 private key (to be sealed) and its public JWK.
pub struct GeneratedKey {
    pub kid: KeyId,
    pub alg: SigningAlgorithm,
    pub private_pkcs8: Vec<u8>,
    pub public_jwk: serde_json::Value,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The RFC 7638 thumbprint of a JWK's required members, used as its `kid`.
fn thumbprint(required_members_in_order: &str) -> Result<KeyId, SigningError> {
    let hash = digest::digest(&digest::SHA256, required_members_in_order.as_bytes());
    KeyId::parse(b64(hash.as_ref())).map_err(|_| SigningError::Generate)
}

/// The public JWK (with `kid`, `alg` and `use`) of a parsed key pair.
fn public_jwk(signer: &Signer, alg: SigningAlgorithm) -> Result<(KeyId, serde_json::Value), SigningError> {
    let (kid, mut jwk) = match signer {
        Signer::Ecdsa(pair) => {
            let point = pair.public_key().as_ref();
            // Uncompressed SEC1 point: 0x04 || x || y, 32 bytes each for P-256.
            let (x, y) = point.get(1..33).zip(point.get(33..65)).ok_or(SigningError::Generate)?;
            let (x, y) = (b64(x), b64(y));
            let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#))?;
            (kid, json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}))
        }
        Signer::Ed25519(pair) => {
            let x = b64(pair.public_key().as_ref());
            let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#))?;
            (kid, json!({"kty": "OKP", "crv": "Ed25519", "x": x}))
        }
        Signer::Rsa(pair) => {
            let public = pair.public_key();
            let n = b64(public.modulus().big_endian_without_leading_zero());
            let e = b64(public.exponent().big_endian_without_leading_zero());
            let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#))?;
            (kid, json!({"kty": "RSA", "n": n, "e": e}))
        }
    };
    if let Some(object) = jwk.as_object_mut() {
        object.insert("kid".into(), json!(kid.as_str()));
        object.insert("alg".into(), json!(alg.as_str()));
        object.insert("use".into(), json!("sig"));
    }
    Ok((kid, jwk))
}

/// Generates a new key for `alg`. RSA keys are 2048 bits, the size RFC 7518 §3.3 requires at least.
pub fn generate(alg: SigningAlgorithm) -> Result<GeneratedKey, SigningError> {
    let (signer, pkcs8) = match alg {
        SigningAlgorithm::ES256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| SigningError::Generate)?;
            let der = pair.to_pkcs8v1().map_err(|_| SigningError::Generate)?.as_ref().to_vec();
            (Signer::Ecdsa(pair), der)
        }
        SigningAlgorithm::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(|_| SigningError::Generate)?;
            let der = pair.to_pkcs8v1().map_err(|_| SigningError::Generate)?.as_ref().to_vec();
            (Signer::Ed25519(pair), der)
        }
        SigningAlgorithm::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| SigningError::Generate)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = pair.as_der().map_err(|_| SigningError::Generate)?;
            let der = der.as_ref().to_vec();
            (Signer::Rsa(pair), der)
        }
    };
    let (kid, public_jwk) = public_jwk(&signer, alg)?;
    Ok(GeneratedKey { kid, alg, private_pkcs8: pkcs8, public_jwk })
}

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key parsed once, ready to sign JWTs with a pre-encoded header.
pub struct TokenSigner {
    kid: KeyId,
    alg: SigningAlgorithm,
    signer: Signer,
    rng: SystemRandom,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn from_pkcs8(kid: KeyId, alg: SigningAlgorithm, pkcs8: &[u8]) -> Result<Self, SigningError> {
        let signer = match alg {
            SigningAlgorithm::ES256 => Signer::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| SigningError::Parse("P-256"))?,
            ),
            SigningAlgorithm::EdDSA => {
                Signer::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SigningError::Parse("Ed25519"))?)
            }
            SigningAlgorithm::RS256 => {
                Signer::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| SigningError::Parse("RSA"))?)
            }
        };
        Ok(Self { kid, alg, signer, rng: SystemRandom::new() })
    }

    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The base64url JOSE header for tokens of media type `typ` signed by this key.
    pub fn encoded_header(&self, typ: &str) -> String {
        let header = json!({"alg": self.alg.as_str(), "typ": typ, "kid": self.kid.as_str()});
        b64(header.to_string().as_bytes())
    }

    /// Signs `claims` under a header produced by [`Self::encoded_header`], giving a compact JWS.
    pub fn sign_compact(&self, encoded_header: &str, claims: &[u8]) -> Result<String, SigningError> {
        let mut token = String::with_capacity(encoded_header.len() + claims.len() * 4 / 3 + 400);
        token.push_str(encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        match &self.signer {
            Signer::Ecdsa(pair) => Ok(pair.sign(&self.rng, message).map_err(|_| SigningError::Sign)?.as_ref().to_vec()),
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature).map_err(|_| SigningError::Sign)?;
                Ok(signature)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_key_that_parses_back_and_signs() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA, SigningAlgorithm::RS256] {
            let key = generate(alg).unwrap();
            assert_eq!(key.public_jwk["kid"], key.kid.as_str());
            assert_eq!(key.public_jwk["alg"], alg.as_str());
            assert!(key.public_jwk.get("d").is_none(), "private member leaked into the JWK");
            let signer = TokenSigner::from_pkcs8(key.kid.clone(), alg, &key.private_pkcs8).unwrap();
            let token = signer.sign_compact(&signer.encoded_header("at+jwt"), b"{}").unwrap();
            assert_eq!(token.split('.').count(), 3);
        }
    }

    #[test]
    fn kid_is_the_rfc_7638_thumbprint() {
        // RFC 7638 §3.1 example key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let members = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(thumbprint(&members).unwrap().as_str(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
