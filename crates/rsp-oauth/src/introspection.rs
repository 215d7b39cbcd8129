//! Token introspection (RFC 7662) and revocation (RFC 7009).

use rsp_core::{Client, TenantId};

use std::sync::Arc;

use crate::bearer::BearerError;
use crate::{ClientCredentials, FormParams};
use serde::{Serialize, Serializer};

use crate::token::AccessClaims;
use crate::{AuthService, OAuthError};

/// An introspection answer. Inactive answers carry nothing else, whatever the reason (RFC 7662 §2.2).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Introspection {
    Inactive { active: bool },
    Active(ActiveToken),
}

/// An active token's answer (RFC 7662 §2.2), written straight from the verified claims the verified-token
/// cache shares, so answering copies none of their fields.
#[derive(Debug)]
pub struct ActiveToken(Arc<AccessClaims>);

impl Serialize for ActiveToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Answer<'a> {
            active: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            scope: Option<&'a str>,
            client_id: &'a str,
            token_type: &'static str,
            exp: i64,
            iat: i64,
            sub: &'a str,
            aud: &'a str,
            iss: &'a str,
            jti: &'a str,
        }
        let claims = &self.0;
        Answer {
            active: true,
            scope: claims.scope.as_deref(),
            client_id: &claims.client_id,
            token_type: "Bearer",
            exp: claims.exp,
            iat: claims.iat,
            sub: &claims.sub,
            aud: &claims.aud,
            iss: &claims.iss,
            jti: &claims.jti,
        }
        .serialize(serializer)
    }
}

impl Introspection {
    fn inactive() -> Self {
        Introspection::Inactive { active: false }
    }
}

impl AuthService {
    /// The claims of `token` if it is a live access token of this tenant (signed by it, within its
    /// lifetime with no leeway, not revoked), through the verified-token cache the bearer checks use: a
    /// resource server introspecting the same token on each call pays for the signature once.
    async fn live_claims(&self, tenant: &TenantId, token: &str) -> Result<Option<Arc<AccessClaims>>, OAuthError> {
        match self.live_bearer(tenant, token).await {
            Ok(claims) => Ok(Some(claims)),
            Err(BearerError::Internal(error)) => Err(error),
            Err(BearerError::InvalidToken | BearerError::InsufficientScope(_)) => Ok(None),
        }
    }

    /// What introspection and revocation both start with: the tenant exists, the caller authenticates,
    /// and the request names a token.
    async fn token_request<'p>(
        &self,
        tenant: &TenantId,
        credentials: &ClientCredentials,
        params: &'p FormParams,
    ) -> Result<(Arc<Client>, &'p str), OAuthError> {
        // An unknown tenant is refused before the client is looked at.
        self.keys.for_tenant(tenant).await?;
        let caller = self.authenticate_client(tenant, credentials).await?;
        Ok((caller, params.require("token")?))
    }

    /// The introspection endpoint.
    pub async fn introspection_endpoint(
        &self,
        tenant: &TenantId,
        credentials: &ClientCredentials,
        params: &FormParams,
    ) -> Result<Introspection, OAuthError> {
        let (caller, token) = self.token_request(tenant, credentials, params).await?;
        self.introspect_with(tenant, &caller, token).await
    }

    /// The revocation endpoint.
    pub async fn revocation_endpoint(
        &self,
        tenant: &TenantId,
        credentials: &ClientCredentials,
        params: &FormParams,
    ) -> Result<(), OAuthError> {
        let (caller, token) = self.token_request(tenant, credentials, params).await?;
        self.revoke_with(tenant, &caller, token).await
    }

    /// RFC 7662: the caller learns about a token only if it was issued to the caller or is meant for an
    /// audience the caller serves as resource server (§4); anything else is simply inactive.
    pub async fn introspect(
        &self,
        tenant: &TenantId,
        caller: &Client,
        token: &str,
    ) -> Result<Introspection, OAuthError> {
        self.keys.for_tenant(tenant).await?;
        self.introspect_with(tenant, caller, token).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, caller = %caller.client_id))]
    async fn introspect_with(
        &self,
        tenant: &TenantId,
        caller: &Client,
        token: &str,
    ) -> Result<Introspection, OAuthError> {
        let Some(claims) = self.live_claims(tenant, token).await? else {
            self.emit_introspected(tenant, caller, None, false);
            return Ok(Introspection::inactive());
        };
        let visible =
            claims.client_id == caller.client_id.as_str() || caller.introspect_audiences.contains(&claims.aud);
        self.emit_introspected(tenant, caller, Some(&claims.jti), visible);
        if !visible {
            return Ok(Introspection::inactive());
        }
        Ok(Introspection::Active(ActiveToken(claims)))
    }

    /// RFC 7009: invalid, unknown, expired or already revoked tokens are answered with success; a token
    /// issued to another client is refused and left untouched (§2.1). Access and refresh tokens are both
    /// revocable; revoking a refresh token revokes its whole grant.
    pub async fn revoke(&self, tenant: &TenantId, caller: &Client, token: &str) -> Result<(), OAuthError> {
        self.keys.for_tenant(tenant).await?;
        self.revoke_with(tenant, caller, token).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, caller = %caller.client_id))]
    async fn revoke_with(&self, tenant: &TenantId, caller: &Client, token: &str) -> Result<(), OAuthError> {
        let Some(claims) = self.live_claims(tenant, token).await? else {
            // Not a live access token: perhaps a refresh token, whatever `token_type_hint` said.
            return self.revoke_refresh_token(tenant, caller, token).await;
        };
        if claims.client_id != caller.client_id.as_str() {
            return Err(OAuthError::UnauthorizedClient("the token was not issued to this client".into()));
        }
        let Some(jti) = claims.token_id() else {
            return Ok(());
        };
        let revoked =
            rsp_core::Event::new(tenant.clone(), rsp_core::EventKind::TOKEN_REVOKED, rsp_core::Priority::High)
                .subject(jti.as_str())
                .data(serde_json::json!({"client_id": caller.client_id.as_str()}));
        self.store.revoke_token(tenant, &jti, rsp_core::UnixTime(claims.exp), &[revoked]).await?;
        self.forget_revocation(tenant, &jti).await?;
        tracing::info!(tenant = %tenant, "access token revoked");
        Ok(())
    }
}
