//! Each tenant's keys, loaded from the store, opened with the master key, and parsed once: the active
//! signer, the verifiers of every published key, and the JWKS document ready to serve.
//!
//! Parsed sets stay in process (they hold private keys). A rotation on this replica drops the tenant's
//! set at once; a rotation elsewhere reaches this replica as a [`CacheKind::SigningKeys`] invalidation
//! notice (see [`crate::invalidation`]), and the 30 s reload bounds staleness if a notice is missed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rsp_core::cache::{CacheKind, Invalidation};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use rsp_core::{Clock, KeyStatus, SigningAlgorithm, Store, StoredKey, TenantId, UnixTime};

use crate::OAuthError;
use crate::crypto::signing::{self, GeneratedKey};
use crate::crypto::{KeySealer, TokenSigner};

/// How long a loaded key set is trusted before it is read again: the bound on serving an old set when a
/// rotation's invalidation notice never arrived.
const RELOAD_AFTER_SECS: i64 = 30;

/// The shortest time between two reads of a tenant's keys caused by tokens naming an unknown key.
pub const UNKNOWN_KID_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// A verification key and the one algorithm it may be used with (RFC 8725 §3.1: never trust `alg`).
pub struct Verifier {
    pub alg: jsonwebtoken::Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// A tenant's keys as used on the hot path.
pub struct TenantKeys {
    pub signer: TokenSigner,
    /// The pre-encoded JOSE header of access tokens (`typ: at+jwt`).
    pub access_token_header: String,
    pub verifiers: HashMap<String, Verifier>,
    /// The JWKS document, serialised once.
    pub jwks_json: String,
    /// When this set must be read again: the reload interval or the moment a retired key stops
    /// being published, whichever comes first.
    valid_until: UnixTime,
    /// When the set was read (monotonic), which limits re-reads for unknown key ids (see
    /// [`KeyRing::for_token`]).
    loaded_at: std::time::Instant,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys").field("signer", &self.signer).finish_non_exhaustive()
    }
}

pub fn jose_algorithm(alg: SigningAlgorithm) -> jsonwebtoken::Algorithm {
    match alg {
        SigningAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        SigningAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        SigningAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
    }
}

/// The cache of parsed key sets, one per tenant.
pub struct KeyRing {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sealer: KeySealer,
    access_token_ttl_secs: i64,
    cache: RwLock<Sets>,
}

/// The parsed sets, and a count of invalidations so a load that an invalidation overtook is not cached.
#[derive(Default)]
struct Sets {
    by_tenant: HashMap<TenantId, Arc<TenantKeys>>,
    epoch: u64,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

impl KeyRing {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, sealer: KeySealer, access_token_ttl_secs: i64) -> Self {
        Self { store, clock, sealer, access_token_ttl_secs, cache: RwLock::new(Sets::default()) }
    }

    /// Generates a key for `tenant` and seals its private half, ready to store.
    pub fn new_stored_key(&self, tenant: &TenantId, alg: SigningAlgorithm) -> Result<StoredKey, OAuthError> {
        let GeneratedKey { kid, alg, private_pkcs8, public_jwk } =
            signing::generate(alg).map_err(|e| OAuthError::Internal(e.to_string()))?;
        let sealed = self
            .sealer
            .seal(&private_pkcs8, seal_context(tenant, kid.as_str()).as_bytes())
            .map_err(|e| OAuthError::Internal(e.to_string()))?;
        Ok(StoredKey {
            tenant_id: tenant.clone(),
            kid,
            alg,
            status: KeyStatus::Active,
            created_at: self.clock.now(),
            retired_at: None,
            publish_until: None,
            max_token_ttl_secs: self.access_token_ttl_secs,
            public_jwk: public_jwk.to_string(),
            sealed_private_key: sealed,
        })
    }

    /// The tenant's keys, from cache when fresh. `UnknownTenant` when the tenant has no keys.
    pub async fn for_tenant(&self, tenant: &TenantId) -> Result<Arc<TenantKeys>, OAuthError> {
        let now = self.clock.now();
        if let Some(keys) = self.cached(tenant)
            && now < keys.valid_until
        {
            return Ok(keys);
        }
        let epoch = self.cache.read().unwrap_or_else(|e| e.into_inner()).epoch;
        let keys = Arc::new(self.load(tenant, now).await?);
        let mut sets = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if sets.epoch == epoch {
            sets.by_tenant.insert(tenant.clone(), keys.clone());
        }
        Ok(keys)
    }

    /// The tenant's keys for verifying `token`. A token naming a key the cached set lacks was probably signed
    /// after a rotation on another replica whose notice has not arrived yet (or that has no channel to send
    /// it on): the set is read again, at most every [`UNKNOWN_KID_RELOAD_INTERVAL`] per tenant, so tokens
    /// with made-up key ids cannot send every request to the store.
    pub async fn for_token(&self, tenant: &TenantId, token: &str) -> Result<Arc<TenantKeys>, OAuthError> {
        let keys = self.for_tenant(tenant).await?;
        let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|header| header.kid) else {
            return Ok(keys);
        };
        if keys.verifiers.contains_key(&kid) || keys.loaded_at.elapsed() < UNKNOWN_KID_RELOAD_INTERVAL {
            return Ok(keys);
        }
        self.invalidate(tenant);
        self.for_tenant(tenant).await
    }

    /// Drops the cached set so the next use reads the store (after a rotation or a tenant deletion).
    pub fn invalidate(&self, tenant: &TenantId) {
        let mut sets = self.cache.write().unwrap_or_else(|e| e.into_inner());
        sets.by_tenant.remove(tenant);
        sets.epoch = sets.epoch.wrapping_add(1);
    }

    /// Applies an invalidation notice: drops every set it names (keys are tenant ids). Notices of other
    /// kinds leave the ring alone.
    pub fn apply(&self, invalidation: &Invalidation) {
        if invalidation.kind().is_some_and(|kind| kind != CacheKind::SigningKeys) {
            return;
        }
        let mut sets = self.cache.write().unwrap_or_else(|e| e.into_inner());
        sets.by_tenant.retain(|tenant, _| !invalidation.affects(CacheKind::SigningKeys, tenant.as_str()));
        sets.epoch = sets.epoch.wrapping_add(1);
    }

    fn cached(&self, tenant: &TenantId) -> Option<Arc<TenantKeys>> {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).by_tenant.get(tenant).cloned()
    }

    async fn load(&self, tenant: &TenantId, now: UnixTime) -> Result<TenantKeys, OAuthError> {
        let stored = self.store.published_keys(tenant, now).await?;
        let active = stored.iter().find(|k| k.status == KeyStatus::Active).ok_or(OAuthError::UnknownTenant)?;
        if active.max_token_ttl_secs < self.access_token_ttl_secs {
            self.store.record_token_ttl(tenant, &active.kid, self.access_token_ttl_secs).await?;
        }
        let pkcs8 = self
            .sealer
            .open(&active.sealed_private_key, seal_context(tenant, active.kid.as_str()).as_bytes())
            .map_err(|e| OAuthError::Internal(e.to_string()))?;
        let signer = TokenSigner::from_pkcs8(active.kid.clone(), active.alg, &pkcs8)
            .map_err(|e| OAuthError::Internal(e.to_string()))?;

        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        let mut valid_until = now.plus_secs(RELOAD_AFTER_SECS);
        for key in &stored {
            let jwk_value: serde_json::Value =
                serde_json::from_str(&key.public_jwk).map_err(|e| OAuthError::Internal(e.to_string()))?;
            let jwk: Jwk =
                serde_json::from_value(jwk_value.clone()).map_err(|e| OAuthError::Internal(e.to_string()))?;
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| OAuthError::Internal(e.to_string()))?;
            verifiers.insert(key.kid.as_str().to_owned(), Verifier { alg: jose_algorithm(key.alg), key: decoding });
            jwks.push(jwk_value);
            if let Some(until) = key.publish_until {
                valid_until = valid_until.min(until);
            }
        }
        let jwks_json = serde_json::json!({ "keys": jwks }).to_string();
        let access_token_header = signer.encoded_header("at+jwt");
        Ok(TenantKeys {
            signer,
            access_token_header,
            verifiers,
            jwks_json,
            valid_until,
            loaded_at: std::time::Instant::now(),
        })
    }
}

/// The AEAD associated data of a sealed key: binds the ciphertext to its tenant and kid.
fn seal_context(tenant: &TenantId, kid: &str) -> String {
    format!("rsp signing key/{tenant}/{kid}")
}
