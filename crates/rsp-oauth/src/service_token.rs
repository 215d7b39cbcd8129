//! Tokens the auth service issues to itself: when it runs apart from the policy service (`--role auth`),
//! it calls the decision API like any other caller, with a short-lived `rsp:authorize` token of the tenant
//! concerned. It holds every tenant's signing keys, so it mints the token directly instead of keeping a
//! client secret per tenant.

use rsp_core::TenantId;

use crate::audience::AUTHORIZE_SCOPE;
use crate::token::{self, AccessClaims};
use crate::{AuthService, OAuthError};

/// The `client_id` and `sub` of the auth service's own tokens; shown as the actor in the policy
/// service's logs and audit records.
pub const AUTH_SERVICE_ID: &str = "rsp-auth-service";

/// The `grant_type` recorded in the `token.issued` event of these tokens, which no grant produced.
const SERVICE_GRANT: &str = "service";

impl AuthService {
    /// An access token of `tenant` for its decision API with scope `rsp:authorize`, and its lifetime in
    /// seconds.
    pub async fn decision_service_token(&self, tenant: &TenantId) -> Result<(String, i64), OAuthError> {
        let keys = self.keys.for_tenant(tenant).await?;
        let now = self.clock.now();
        let ttl = self.settings.access_token_ttl_secs;
        let claims = AccessClaims {
            iss: self.issuers.issuer(tenant),
            sub: AUTH_SERVICE_ID.to_owned(),
            aud: self.issuers.decision_audience(tenant),
            client_id: AUTH_SERVICE_ID.to_owned(),
            scope: Some(AUTHORIZE_SCOPE.to_owned()),
            jti: token::new_token_id(),
            iat: now.0,
            exp: now.0 + ttl,
            auth_time: None,
            acr: None,
            amr: None,
        };
        let token = token::mint(&keys, &claims)?;
        self.emit_issued(tenant, &claims, SERVICE_GRANT).await;
        Ok((token, ttl))
    }
}
