//! Bearer-token checks for the platform's own APIs (RFC 6750), the admin and decision APIs.

use std::sync::Arc;

use rsp_core::TenantId;

use crate::audience::{ADMIN_SCOPE, AUTHORIZE_SCOPE};
use crate::token::{self, AccessClaims};
use crate::{AuthService, OAuthError};

/// Why a bearer token was refused (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error("the access token is missing, invalid, expired or revoked")]
    InvalidToken,
    #[error("the access token lacks the scope {0}")]
    InsufficientScope(&'static str),
    #[error(transparent)]
    Internal(#[from] OAuthError),
}

impl AuthService {
    /// A live access token of `tenant` for `audience` carrying `scope`: from the verified-token cache
    /// when possible, else verified (signature, issuer, time, revocation) and cached.
    pub async fn authorize_bearer(
        &self,
        tenant: &TenantId,
        token: &str,
        audience: &str,
        scope: &'static str,
    ) -> Result<Arc<AccessClaims>, BearerError> {
        let claims = self.live_bearer(tenant, token).await?;
        if claims.aud != audience {
            return Err(BearerError::InvalidToken);
        }
        if !claims.has_scope(scope) {
            return Err(BearerError::InsufficientScope(scope));
        }
        rsp_core::context::set_actor(claims.client_id.clone());
        Ok(claims)
    }

    /// A live access token of `tenant`, whatever its audience and scope: from the verified-token cache
    /// when possible, else verified (signature, issuer, time, revocation) and cached. The cache is keyed
    /// by the token alone, so a hit another tenant's check stored is refused here: it is no token of this
    /// tenant's, as its verification would have said.
    pub(crate) async fn live_bearer(&self, tenant: &TenantId, token: &str) -> Result<Arc<AccessClaims>, BearerError> {
        let now = self.clock.now();
        let claims = match self.verified.get(token, now) {
            Some(claims) if self.issuers.is_issuer(tenant, &claims.iss) => claims,
            Some(_) => return Err(BearerError::InvalidToken),
            None => {
                let keys = self.keys.for_token(tenant, token).await.map_err(|e| match e {
                    OAuthError::UnknownTenant => BearerError::InvalidToken,
                    other => BearerError::Internal(other),
                })?;
                let claims = token::verify(&keys, token, &self.issuers.issuer(tenant), now, 0)
                    .map_err(|_| BearerError::InvalidToken)?;
                let jti = claims.token_id().ok_or(BearerError::InvalidToken)?;
                // Read before the revocation check, so a revocation that lands meanwhile keeps this
                // answer out of the cache.
                let generation = self.verified.generation();
                if self.is_revoked(tenant, &jti).await? {
                    return Err(BearerError::InvalidToken);
                }
                let claims = Arc::new(claims);
                self.verified.insert(token, claims.clone(), generation);
                claims
            }
        };
        Ok(claims)
    }

    /// Accepts only a live access token of the default tenant, for the admin audience, with `rsp:admin`.
    pub async fn authorize_admin(&self, token: &str) -> Result<Arc<AccessClaims>, BearerError> {
        let audience = self.issuers.admin_audience();
        self.authorize_bearer(&TenantId::default_tenant(), token, &audience, ADMIN_SCOPE).await
    }

    /// Accepts only a live access token of `tenant` for its decision API, with `rsp:authorize`.
    pub async fn authorize_decision_caller(
        &self,
        tenant: &TenantId,
        token: &str,
    ) -> Result<Arc<AccessClaims>, BearerError> {
        let audience = self.issuers.decision_audience(tenant);
        self.authorize_bearer(tenant, token, &audience, AUTHORIZE_SCOPE).await
    }
}
