//! The master key and what is derived from it. The master key never touches the database: it comes
//! from `RSP_MASTER_KEY` or a 0600 file, so a stolen database holds only sealed keys and keyed hashes.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::SecretHasher;

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes encoded as base64 or base64url")]
    Format,
    #[error("sealed data is corrupt or was sealed under another master key")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// 32 bytes of key material.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl MasterKey {
    /// Parses base64 or base64url text (padding optional) of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(text))
            .map_err(|_| MasterKeyError::Format)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| MasterKeyError::Format)?;
        Ok(Self(key))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        if SystemRandom::new().fill(&mut key).is_err() {
            std::process::abort();
        }
        Self(key)
    }

    /// The key as base64url, for writing the generated key file.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let salt = Salt::new(HKDF_SHA256, b"rsp master key v1");
        let prk = salt.extract(&self.0);
        let mut out = [0u8; 32];
        let info = [purpose];
        // HKDF-SHA256 can always produce 32 bytes; the error branches are unreachable by construction.
        if let Ok(okm) = prk.expand(&info, Len(32))
            && okm.fill(&mut out).is_ok()
        {
            return out;
        }
        std::process::abort();
    }

    /// The AEAD key that seals signing keys at rest.
    pub fn key_sealer(&self) -> KeySealer {
        let derived = self.derive(b"seal signing keys");
        match UnboundKey::new(&AES_256_GCM, &derived) {
            Ok(key) => KeySealer(LessSafeKey::new(key)),
            Err(_) => std::process::abort(),
        }
    }

    /// The AEAD key that seals token responses kept for the refresh grace window: a retry must get the
    /// same tokens, which are never stored in the clear.
    pub fn response_sealer(&self) -> KeySealer {
        let derived = self.derive(b"seal token responses");
        match UnboundKey::new(&AES_256_GCM, &derived) {
            Ok(key) => KeySealer(LessSafeKey::new(key)),
            Err(_) => std::process::abort(),
        }
    }

    /// The AEAD key that seals users' TOTP secrets: a code generator must get the secret back, so it
    /// cannot be hashed, and a stolen database must not yield it.
    pub fn totp_sealer(&self) -> KeySealer {
        let derived = self.derive(b"seal totp secrets");
        match UnboundKey::new(&AES_256_GCM, &derived) {
            Ok(key) => KeySealer(LessSafeKey::new(key)),
            Err(_) => std::process::abort(),
        }
    }

    /// The HMAC key that hashes client secrets.
    pub fn secret_hasher(&self) -> SecretHasher {
        SecretHasher::new(&self.derive(b"hash client secrets"))
    }
}

/// AES-256-GCM with a random 96-bit nonce per seal. The associated data binds a sealed key to its tenant
/// and kid, so a row copied onto another key's id fails to open.
pub struct KeySealer(LessSafeKey);

impl fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySealer([redacted])")
    }
}

impl KeySealer {
    /// Returns `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| MasterKeyError::Seal)?;
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut buf)
            .map_err(|_| MasterKeyError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN).ok_or(MasterKeyError::Open)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::Open)?;
        let mut buf = ciphertext.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(context), &mut buf).map_err(|_| MasterKeyError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_context() {
        let key = MasterKey::generate();
        let sealer = key.key_sealer();
        let sealed = sealer.seal(b"private key", b"t1/k1").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(sealer.open(&sealed, b"t1/k1").unwrap(), b"private key");
        assert!(sealer.open(&sealed, b"t1/k2").is_err());
        assert!(MasterKey::generate().key_sealer().open(&sealed, b"t1/k1").is_err());
    }

    #[test]
    fn parses_its_own_text_and_refuses_short_keys() {
        let key = MasterKey::generate();
        let again = MasterKey::parse(&key.to_text()).unwrap();
        assert_eq!(again.0, key.0);
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
        assert!(!format!("{key:?}").contains(&key.to_text()));
    }
}
