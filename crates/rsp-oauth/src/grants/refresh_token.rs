//! The refresh token grant (RFC 6749 §6, RFC 9700 §4.14.2): every refresh rotates the token; presenting a
//! rotated token again revokes the whole family, except that a retry within the grace window (the
//! client lost the answer) gets the very same answer again. The store decides which case applies in one
//! transaction, so replicas agree.

use rsp_core::grant::{Rotation, RotationWindow};
use rsp_core::{Client, GrantType, ScopeSet, TenantId};
use serde::{Deserialize, Serialize};

use crate::grants::user_tokens::Extras;
use crate::keyring::TenantKeys;
use crate::token::AccessClaims;
use crate::{AuthService, FormParams, OAuthError, TokenResponse};

/// Longer than any refresh token this server issues (43 characters).
const MAX_TOKEN_LEN: usize = 256;

/// A token response as sealed for the grace window.
#[derive(Serialize, Deserialize)]
struct SealedResponse {
    access_token: String,
    expires_in: i64,
    scope: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

impl From<&TokenResponse> for SealedResponse {
    fn from(r: &TokenResponse) -> Self {
        Self {
            access_token: r.access_token.clone(),
            expires_in: r.expires_in,
            scope: r.scope.clone(),
            refresh_token: r.refresh_token.clone(),
            id_token: r.id_token.clone(),
        }
    }
}

impl From<SealedResponse> for TokenResponse {
    fn from(r: SealedResponse) -> Self {
        Self {
            access_token: r.access_token,
            token_type: "Bearer",
            expires_in: r.expires_in,
            scope: r.scope,
            refresh_token: r.refresh_token,
            id_token: r.id_token,
        }
    }
}

/// What the sealed response is bound to: a response sealed for one token cannot be opened for another.
fn seal_context(tenant: &TenantId, token_hash: &str) -> Vec<u8> {
    format!("refresh/{tenant}/{token_hash}").into_bytes()
}

impl AuthService {
    /// Returns the response and, when new tokens were issued (not a grace-window repeat), their claims.
    pub(crate) async fn refresh_token(
        &self,
        tenant: &TenantId,
        keys: &TenantKeys,
        client: &Client,
        params: &FormParams,
    ) -> Result<(TokenResponse, Option<AccessClaims>), OAuthError> {
        if !client.allows_grant(GrantType::RefreshToken) {
            return Err(OAuthError::UnauthorizedClient("this client may not use the refresh_token grant".into()));
        }
        let presented = params.require("refresh_token")?;
        if presented.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let token_hash = self.hasher.hash(presented);
        let (token, grant) = self.store.find_refresh_token(tenant, &token_hash).await?.ok_or_else(invalid)?;
        // Another client's token is refused and left alone (RFC 6749 §6): it is not evidence of theft by
        // the owner, and revoking would let any client kill others' sessions.
        if grant.client_id != client.client_id {
            return Err(invalid());
        }
        let scope = match params.get("scope") {
            None => token.scope.clone(),
            Some(text) => {
                let asked = ScopeSet::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
                if !asked.is_subset(&token.scope) {
                    return Err(OAuthError::InvalidScope("the scope exceeds the original grant".into()));
                }
                asked
            }
        };
        let minted =
            self.mint_user_tokens(tenant, keys, client, &grant, &scope, Extras { nonce: None, refresh: true })?;
        let context = seal_context(tenant, &token_hash);
        let plain = serde_json::to_vec(&SealedResponse::from(&minted.response))
            .map_err(|e| OAuthError::Internal(e.to_string()))?;
        let sealed = self.response_sealer.seal(&plain, &context).map_err(|e| OAuthError::Internal(e.to_string()))?;
        let window = RotationWindow { now: self.clock.now(), grace_secs: self.settings.refresh_grace_secs };
        let outcome =
            self.store.rotate_refresh_token(tenant, &token_hash, window, &minted.issuance, &sealed, &[]).await?;
        match outcome {
            Rotation::Rotated => Ok((minted.response, Some(minted.claims))),
            Rotation::Grace { sealed_response } => {
                let plain = self
                    .response_sealer
                    .open(&sealed_response, &context)
                    .map_err(|e| OAuthError::Internal(e.to_string()))?;
                let earlier: SealedResponse =
                    serde_json::from_slice(&plain).map_err(|e| OAuthError::Internal(e.to_string()))?;
                Ok((earlier.into(), None))
            }
            Rotation::Reused { revoked } => {
                let event =
                    rsp_core::Event::new(tenant.clone(), rsp_core::EventKind::TOKEN_REVOKED, rsp_core::Priority::High)
                        .subject(grant.grant_id.as_str())
                        .actor(client.client_id.as_str())
                        .data(serde_json::json!({"grant": grant.grant_id, "reason": "refresh token reused"}));
                self.events.emit(event).await;
                self.forget_revocations(tenant, &revoked).await?;
                Err(invalid())
            }
            Rotation::Invalid => Err(invalid()),
        }
    }
}

impl AuthService {
    /// RFC 7009 for a refresh token: revokes its grant, so the grant's other refresh tokens and its access
    /// tokens go too (§2.1 SHOULD). Unknown tokens succeed silently; another client's token is refused
    /// and left usable by its owner.
    pub(crate) async fn revoke_refresh_token(
        &self,
        tenant: &TenantId,
        caller: &Client,
        token: &str,
    ) -> Result<(), OAuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Ok(());
        }
        let Some((_, grant)) = self.store.find_refresh_token(tenant, &self.hasher.hash(token)).await? else {
            return Ok(());
        };
        if grant.client_id != caller.client_id {
            return Err(OAuthError::UnauthorizedClient("the token was not issued to this client".into()));
        }
        self.revoke_grant(tenant, &grant.grant_id, "refresh token revoked by the client").await
    }
}

fn invalid() -> OAuthError {
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked".into())
}
