//! `AuthService`: the authorization server's use cases over the storage port, the cache port, the event
//! sink, the key ring and a clock.

use std::sync::Arc;

use rsp_cache::{CacheConfig, LocalCache};
use rsp_core::bus::{EventSink, NoEvents};
use rsp_core::cache::{Cache, DecodedEntries};
use rsp_core::ports::PolicyGate;
use rsp_core::{Client, Clock, Store, TenantId};
use tokio::sync::watch;

use crate::client_auth::ClientCredentials;
use crate::crypto::{KeySealer, MasterKey, SecretHasher};
use crate::keyring::KeyRing;
use crate::throttle::AuthThrottle;
use crate::userinfo::UserClaimsSource;
use crate::verified::VerifiedTokens;
use crate::{FormParams, Issuers, OAuthError};

/// Decoded clients kept beside the cache's entries: more than a deployment registers, in a few MB at most.
const DECODED_CLIENTS: usize = 10_000;

/// Knobs of token issuance.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Lifetime of access tokens. JWTs are checked offline by resource servers until they expire, so
    /// this bounds how long a revoked token can still be accepted there (RFC 7009 §2.1).
    pub access_token_ttl_secs: i64,
    /// Failed client authentications per client id allowed within `throttle_window_secs`.
    pub throttle_max_failures: u32,
    pub throttle_window_secs: i64,
    /// Share of introspections recorded as `token.introspected` events: 0 never, 1 always. Introspection
    /// is a resource server's hot path, so by default only a sample reaches the audit trail.
    pub introspection_audit_sample_rate: f64,
    /// Lifetime of authorization codes: as short as a redirect takes (RFC 6749 §4.1.2 allows 10 min).
    pub authorization_code_ttl_secs: i64,
    /// A refresh token unused for this long is dead (RFC 9700 §4.14.2); each rotation starts it anew.
    pub refresh_token_idle_secs: i64,
    /// The absolute lifetime of a grant: no refresh token of it outlives this.
    pub grant_lifetime_secs: i64,
    /// A retry of a refresh within this many seconds of its rotation gets the same response instead of
    /// tripping reuse detection (a client that lost the answer to a network error). 0 turns it off.
    pub refresh_grace_secs: i64,
    /// How long a browser stays signed in after a login; `max_age` and `prompt=login` ask sooner.
    pub session_lifetime_secs: i64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 600,
            throttle_max_failures: 10,
            throttle_window_secs: 60,
            introspection_audit_sample_rate: 0.1,
            authorization_code_ttl_secs: 60,
            refresh_token_idle_secs: 14 * 86_400,
            grant_lifetime_secs: 90 * 86_400,
            refresh_grace_secs: 10,
            session_lifetime_secs: 8 * 3600,
        }
    }
}

/// Why [`TokenSettings`] cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("access_token_ttl_secs must be more than zero, got {0}")]
    AccessTokenTtl(i64),
    #[error("introspection_audit_sample_rate must be between 0 and 1, got {0}")]
    SampleRate(f64),
    #[error("authorization_code_ttl_secs must be 1 to 600, got {0}")]
    CodeTtl(i64),
    #[error("refresh_token_idle_secs and grant_lifetime_secs must be more than zero")]
    RefreshLifetime,
    #[error("refresh_grace_secs must be 0 to 60, got {0}")]
    RefreshGrace(i64),
}

impl TokenSettings {
    /// Checks values a configuration file may get wrong. The service never panics on bad settings (a rate
    /// outside 0..=1 is clamped), but start-up should refuse them.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.access_token_ttl_secs <= 0 {
            return Err(SettingsError::AccessTokenTtl(self.access_token_ttl_secs));
        }
        if !(0.0..=1.0).contains(&self.introspection_audit_sample_rate) {
            return Err(SettingsError::SampleRate(self.introspection_audit_sample_rate));
        }
        if !(1..=600).contains(&self.authorization_code_ttl_secs) {
            return Err(SettingsError::CodeTtl(self.authorization_code_ttl_secs));
        }
        if self.refresh_token_idle_secs <= 0 || self.grant_lifetime_secs <= 0 {
            return Err(SettingsError::RefreshLifetime);
        }
        if !(0..=60).contains(&self.refresh_grace_secs) {
            return Err(SettingsError::RefreshGrace(self.refresh_grace_secs));
        }
        Ok(())
    }
}

/// A successful token response (RFC 6749 §5.1). Its `Debug` shows no token.
#[derive(serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// The authorization server.
pub struct AuthService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: KeyRing,
    pub(crate) hasher: SecretHasher,
    pub(crate) issuers: Issuers,
    pub(crate) settings: TokenSettings,
    pub(crate) throttle: AuthThrottle,
    pub(crate) verified: VerifiedTokens,
    /// Clients and revocation state, shared with the other use cases of the process and, through the
    /// adapter, with other replicas.
    pub(crate) cache: Arc<dyn Cache>,
    /// Clients decoded from the cache's entries, so a hit on an unchanged entry is not decoded again.
    pub(crate) decoded_clients: DecodedEntries<Client>,
    pub(crate) events: Arc<dyn EventSink>,
    /// Picks the introspections recorded (`introspection_audit_sample_rate`).
    pub(crate) sampler: rsp_core::Sampler,
    /// Dropped with the service, which ends the invalidation listener (see [`crate::invalidation`]).
    pub(crate) alive: watch::Sender<()>,
    /// The tenant policies that may govern which scopes a client receives; `None` means registered
    /// scopes alone decide.
    pub(crate) policy_gate: Option<Arc<dyn PolicyGate>>,
    /// Seals the responses kept for the refresh grace window.
    pub(crate) response_sealer: KeySealer,
    /// Where userinfo reads a user's claims: the store's users unless replaced.
    pub(crate) user_claims: Arc<dyn UserClaimsSource>,
    /// End users' password hashing pool and login throttle.
    pub(crate) users: crate::users::UserAuth,
    /// Seals users' TOTP secrets (and new recovery codes until shown).
    pub(crate) totp_sealer: KeySealer,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("issuers", &self.issuers).finish_non_exhaustive()
    }
}

impl AuthService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master_key: &MasterKey,
        issuers: Issuers,
        settings: TokenSettings,
    ) -> Self {
        let keys = KeyRing::new(store.clone(), clock.clone(), master_key.key_sealer(), settings.access_token_ttl_secs);
        let throttle = AuthThrottle::new(settings.throttle_max_failures, settings.throttle_window_secs);
        let hasher = master_key.secret_hasher();
        Self {
            user_claims: Arc::new(crate::users::StoreUserClaims::new(store.clone())),
            store,
            clock,
            keys,
            hasher,
            issuers,
            settings,
            throttle,
            verified: VerifiedTokens::default(),
            decoded_clients: DecodedEntries::new(DECODED_CLIENTS),
            cache: default_cache(),
            events: Arc::new(NoEvents),
            sampler: rsp_core::Sampler::default(),
            alive: watch::Sender::new(()),
            policy_gate: None,
            response_sealer: master_key.response_sealer(),
            users: crate::users::UserAuth::default(),
            totp_sealer: master_key.totp_sealer(),
        }
    }

    /// Reads clients and revocation state through `cache` and hears its invalidations. Without this call
    /// the service has a private in-process cache, right for a single replica. Call it before
    /// [`AuthService::spawn_invalidation_listener`].
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = cache;
        self
    }

    /// Sends `token.issued` and sampled `token.introspected` events to `sink` (default: dropped).
    pub fn with_events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = sink;
        self
    }

    /// Lets tenant policies govern issuance (`Action::"RequestScope"`).
    pub fn with_policy_gate(mut self, gate: Arc<dyn PolicyGate>) -> Self {
        self.policy_gate = Some(gate);
        self
    }

    /// Lets userinfo read users' claims from `source`.
    pub fn with_user_claims(mut self, source: Arc<dyn UserClaimsSource>) -> Self {
        self.user_claims = source;
        self
    }

    /// Replaces the end-user password hasher and login throttle (default: OWASP parameters, one pool slot
    /// per CPU, the default throttle).
    pub fn with_user_auth(mut self, users: crate::users::UserAuth) -> Self {
        self.users = users;
        self
    }

    /// The end-user password hasher and login throttle.
    pub fn user_auth(&self) -> &crate::users::UserAuth {
        &self.users
    }

    pub fn issuers(&self) -> &Issuers {
        &self.issuers
    }

    /// The current time on the service's clock.
    pub fn now(&self) -> rsp_core::UnixTime {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The token endpoint (RFC 6749 §3.2): one `match` on `grant_type`, one module per grant.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn token(
        &self,
        tenant: &TenantId,
        credentials: &ClientCredentials,
        params: &FormParams,
    ) -> Result<(TokenResponse, &'static str), OAuthError> {
        let keys = self.keys.for_tenant(tenant).await?;
        let grant_type = params.require("grant_type")?;
        match grant_type {
            "client_credentials" => {
                let client = self.authenticate_client(tenant, credentials).await?;
                let (response, claims) = self.client_credentials(tenant, &keys, &client, params).await?;
                self.emit_issued(tenant, &claims, "client_credentials").await;
                Ok((response, "client_credentials"))
            }
            "authorization_code" => {
                let client = self.authenticate_client(tenant, credentials).await?;
                let (response, claims) = self.authorization_code(tenant, &keys, &client, params).await?;
                self.emit_issued(tenant, &claims, "authorization_code").await;
                Ok((response, "authorization_code"))
            }
            "refresh_token" => {
                let client = self.authenticate_client(tenant, credentials).await?;
                let (response, claims) = self.refresh_token(tenant, &keys, &client, params).await?;
                if let Some(claims) = claims {
                    self.emit_issued(tenant, &claims, "refresh_token").await;
                }
                Ok((response, "refresh_token"))
            }
            _ => Err(OAuthError::UnsupportedGrantType),
        }
    }

    /// The tenant's JWKS document (RFC 7517 §5), serialised once per key set.
    pub async fn jwks(&self, tenant: &TenantId) -> Result<String, OAuthError> {
        Ok(self.keys.for_tenant(tenant).await?.jwks_json.clone())
    }

    /// The tenant's parsed keys (for benchmarks and diagnostics).
    pub async fn tenant_keys(&self, tenant: &TenantId) -> Result<Arc<crate::keyring::TenantKeys>, OAuthError> {
        self.keys.for_tenant(tenant).await
    }

    /// Makes sure the tenant exists (has keys); `UnknownTenant` otherwise.
    pub async fn require_tenant(&self, tenant: &TenantId) -> Result<(), OAuthError> {
        self.keys.for_tenant(tenant).await.map(|_| ())
    }

    pub(crate) fn hasher(&self) -> &SecretHasher {
        &self.hasher
    }
}

/// The cache of a service built without [`AuthService::with_cache`]: L1 only, default sizes.
fn default_cache() -> Arc<dyn Cache> {
    #[expect(clippy::expect_used, reason = "the default configuration is constant and valid; every test builds it")]
    let cache = LocalCache::new(&CacheConfig::default()).expect("the default cache configuration is valid");
    Arc::new(cache)
}
