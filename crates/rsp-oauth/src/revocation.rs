//! Revocation state read through the [`Cache`](rsp_core::cache::Cache) port, so introspection and bearer
//! checks do not read the database on every request.
//!
//! Entries are keyed `{tenant}/{jti}` ([`CacheKind::Revocation`]). A revoked token is cached as the value
//! `true`; a token that is not revoked is cached as a negative entry ("no revocation recorded"), which is
//! what almost every lookup finds. A revocation writes the store, then invalidates the key, so the next
//! lookup on this replica reads the store, and other replicas drop their entry when the invalidation
//! reaches them (at worst, with the shared store unreachable, after the kind's short L1 TTL).

use rsp_core::cache::{CacheExt, CacheKind, Invalidation};
use rsp_core::{TenantId, TokenId};

use crate::{AuthService, OAuthError};

/// The cache key of a token's revocation state.
pub fn revocation_key(tenant: &TenantId, jti: &TokenId) -> String {
    format!("{tenant}/{}", jti.as_str())
}

impl AuthService {
    /// Whether the token `jti` of `tenant` was revoked.
    pub(crate) async fn is_revoked(&self, tenant: &TenantId, jti: &TokenId) -> Result<bool, OAuthError> {
        let revoked = self
            .cache
            .get_or_load(CacheKind::Revocation, &revocation_key(tenant, jti), || async {
                Ok::<_, OAuthError>(self.store.is_revoked(tenant, jti).await?.then_some(true))
            })
            .await?;
        Ok(revoked.unwrap_or(false))
    }

    /// After a revocation is stored: every replica drops its cached state of `jti` and, hearing the
    /// notice, its verified tokens; this replica also empties its verified tokens before returning, so the
    /// very next request is refused even if the notice listener has not run yet.
    pub(crate) async fn forget_revocation(&self, tenant: &TenantId, jti: &TokenId) -> Result<(), OAuthError> {
        // Invalidate before clearing: a bearer check that reads the verified-token generation after the
        // clear then also reads the revocation after the invalidation, so it sees the revocation.
        self.cache.invalidate(Invalidation::key(CacheKind::Revocation, revocation_key(tenant, jti))).await?;
        self.verified.clear();
        Ok(())
    }
}
