//! What the authorization code and refresh grants both issue for a user's grant: an access token that
//! carries the authentication (RFC 9068 §2.2.1), an ID token when `openid` was granted, and a refresh
//! token when `offline_access` was granted to a client that may refresh.

use rsp_core::grant::{Grant, Issuance, NewRefreshToken};
use rsp_core::{Client, GrantType, ScopeSet, TenantId};

use crate::authorize::{OFFLINE_ACCESS_SCOPE, OPENID_SCOPE};
use crate::crypto::random_token;
use crate::id_token::{self, IdClaims};
use crate::keyring::TenantKeys;
use crate::token::{self, AccessClaims};
use crate::{AuthService, OAuthError, TokenResponse};

/// A minted token response and what the store must record of it.
#[derive(Debug)]
pub(crate) struct UserTokens {
    pub response: TokenResponse,
    pub claims: AccessClaims,
    pub issuance: Issuance,
}

/// Which optional tokens a response carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extras<'a> {
    /// The nonce for the ID token: the request's on the code exchange, none on refresh.
    pub nonce: Option<&'a str>,
    /// Whether a refresh token may be issued at all (the code exchange, or a rotation).
    pub refresh: bool,
}

impl AuthService {
    /// Mints the response for `grant` with `scope` (the grant's, or a narrowed one on refresh).
    pub(crate) fn mint_user_tokens(
        &self,
        tenant: &TenantId,
        keys: &TenantKeys,
        client: &Client,
        grant: &Grant,
        scope: &ScopeSet,
        extras: Extras<'_>,
    ) -> Result<UserTokens, OAuthError> {
        let now = self.clock.now();
        let ttl = self.settings.access_token_ttl_secs;
        let scope_text = (!scope.is_empty()).then(|| scope.to_string());
        let claims = AccessClaims {
            iss: self.issuers.issuer(tenant),
            sub: grant.subject.clone(),
            aud: grant.audience.clone(),
            client_id: client.client_id.to_string(),
            scope: scope_text.clone(),
            jti: token::new_token_id(),
            iat: now.0,
            exp: now.0 + ttl,
            auth_time: Some(grant.auth_time.0),
            acr: grant.acr.clone(),
            amr: (!grant.amr.is_empty()).then(|| grant.amr.clone()),
        };
        let access_token = token::mint(keys, &claims)?;
        let id_token = if scope.contains(OPENID_SCOPE) {
            let id_claims = IdClaims {
                iss: claims.iss.clone(),
                sub: grant.subject.clone(),
                aud: client.client_id.to_string(),
                azp: client.client_id.to_string(),
                exp: now.0 + ttl,
                iat: now.0,
                auth_time: grant.auth_time.0,
                nonce: extras.nonce.map(str::to_owned),
                at_hash: id_token::at_hash(keys.signer.alg(), &access_token),
                amr: grant.amr.clone(),
                acr: grant.acr.clone(),
            };
            Some(id_token::mint(keys, &id_claims)?)
        } else {
            None
        };
        let wants_refresh = extras.refresh
            && grant.scope.contains(OFFLINE_ACCESS_SCOPE)
            && client.allows_grant(GrantType::RefreshToken);
        let (refresh_token, refresh) = if wants_refresh {
            let value = random_token(32);
            let idle_end = now.plus_secs(self.settings.refresh_token_idle_secs);
            let stored = NewRefreshToken {
                token_hash: self.hasher.hash(&value),
                // A rotated token keeps exactly its family's scope, whatever this response was narrowed to.
                scope: grant.scope.clone(),
                expires_at: idle_end.min(grant.expires_at),
            };
            (Some(value), Some(stored))
        } else {
            (None, None)
        };
        let jti =
            claims.token_id().ok_or_else(|| OAuthError::Internal("minted a token id that does not parse".into()))?;
        let issuance = Issuance { access_jti: jti, access_expires_at: rsp_core::UnixTime(claims.exp), refresh };
        let response = TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            scope: scope_text,
            refresh_token,
            id_token,
        };
        Ok(UserTokens { response, claims, issuance })
    }

    /// Revokes a grant and everything issued from it, and makes every replica forget the access tokens'
    /// cached "not revoked" state.
    pub(crate) async fn revoke_grant(&self, tenant: &TenantId, grant_id: &str, reason: &str) -> Result<(), OAuthError> {
        let event = rsp_core::Event::new(tenant.clone(), rsp_core::EventKind::TOKEN_REVOKED, rsp_core::Priority::High)
            .subject(grant_id)
            .data(serde_json::json!({"grant": grant_id, "reason": reason}));
        let revoked = self.store.revoke_grant(tenant, grant_id, self.clock.now(), &[event]).await?;
        self.forget_revocations(tenant, &revoked).await
    }

    pub(crate) async fn forget_revocations(
        &self,
        tenant: &TenantId,
        revoked: &[rsp_core::TokenId],
    ) -> Result<(), OAuthError> {
        for jti in revoked {
            self.forget_revocation(tenant, jti).await?;
        }
        tracing::warn!(tenant = %tenant, tokens = revoked.len(), "grant revoked");
        Ok(())
    }
}
