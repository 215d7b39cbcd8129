//! Signing keys as stored: the private half sealed under the key-encryption key, the public half as a JWK.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{KeyId, TenantId, UnixTime};

/// JWS algorithms a tenant may sign with. ES256 is the default: small keys, fast, widely verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SigningAlgorithm {
    #[default]
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::EdDSA => "EdDSA",
            SigningAlgorithm::RS256 => "RS256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ES256" => Some(SigningAlgorithm::ES256),
            "EdDSA" => Some(SigningAlgorithm::EdDSA),
            "RS256" => Some(SigningAlgorithm::RS256),
            _ => None,
        }
    }
}

/// Where a key is in its life: it signs while `Active`; once `Retired` it only verifies, and stays
/// published until `publish_until`, after the last token it signed has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Retired,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
        }
    }
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub tenant_id: TenantId,
    pub kid: KeyId,
    pub alg: SigningAlgorithm,
    pub status: KeyStatus,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    /// After this instant the key is no longer published nor trusted.
    pub publish_until: Option<UnixTime>,
    /// The longest access-token lifetime this key has signed with, so retirement knows how long its
    /// tokens may live.
    pub max_token_ttl_secs: i64,
    /// The public key as a JWK object (JSON text).
    pub public_jwk: String,
    /// The private key, sealed with AES-256-GCM under the key-encryption key.
    pub sealed_private_key: Vec<u8>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("tenant_id", &self.tenant_id)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .field("sealed_private_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}
