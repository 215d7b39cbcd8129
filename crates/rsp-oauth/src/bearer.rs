//! Bearer-token checks for the platform's own APIs (RFC 6750), starting with the admin API.

use rsp_core::TenantId;

use crate::audience::ADMIN_SCOPE;
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
    /// Accepts only a live access token of the default tenant, for the admin audience, with `rsp:admin`.
    pub async fn authorize_admin(&self, token: &str) -> Result<AccessClaims, BearerError> {
        let tenant = TenantId::default_tenant();
        let keys = self.keys.for_tenant(&tenant).await?;
        let claims = token::verify(&keys, token, &self.issuers.issuer(&tenant), self.clock.now(), 0)
            .map_err(|_| BearerError::InvalidToken)?;
        if claims.aud != self.issuers.admin_audience() {
            return Err(BearerError::InvalidToken);
        }
        let jti = claims.token_id().ok_or(BearerError::InvalidToken)?;
        if self.store.is_revoked(&tenant, &jti).await.map_err(OAuthError::from)? {
            return Err(BearerError::InvalidToken);
        }
        if !claims.has_scope(ADMIN_SCOPE) {
            return Err(BearerError::InsufficientScope(ADMIN_SCOPE));
        }
        Ok(claims)
    }
}
