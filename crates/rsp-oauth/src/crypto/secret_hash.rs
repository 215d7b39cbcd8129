//! Client secrets are stored as HMAC-SHA256 under a key derived from the master key.
//!
//! Why not Argon2: the secrets are 256 random bits, so there is nothing for a slow hash to protect
//! against brute force; the threat is a leaked database, and a keyed hash whose key is not in the
//! database makes the stored values useless. Verifying costs about a microsecond instead of the tens of
//! milliseconds a password hash would add to every token request.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const PREFIX: &str = "hmac-sha256$";

pub struct SecretHasher(hmac::Key);

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher([redacted])")
    }
}

impl SecretHasher {
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub fn hash(&self, secret: &str) -> String {
        let tag = hmac::sign(&self.0, secret.as_bytes());
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Constant-time check of `secret` against a stored hash.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(encoded) else {
            return false;
        };
        hmac::verify(&self.0, secret.as_bytes(), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_secret_under_the_right_key() {
        let hasher = SecretHasher::new(b"k1");
        let stored = hasher.hash("s3cret");
        assert!(!stored.contains("s3cret"));
        assert!(hasher.verify("s3cret", &stored));
        assert!(!hasher.verify("s3creT", &stored));
        assert!(!SecretHasher::new(b"k2").verify("s3cret", &stored));
        assert!(!hasher.verify("s3cret", "garbage"));
    }
}
