//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §4.2.4): a code is redeemed
//! once, by the client it was issued to, with the same `redirect_uri` and the PKCE verifier of its
//! challenge; a replayed code revokes everything issued from it.

use rsp_core::grant::CodeRedemption;
use rsp_core::{Client, GrantType, TenantId};

use crate::grants::user_tokens::Extras;
use crate::keyring::TenantKeys;
use crate::token::AccessClaims;
use crate::{AuthService, FormParams, OAuthError, TokenResponse, pkce};

/// Longer than any code this server issues (43 characters): anything longer is not worth hashing.
const MAX_CODE_LEN: usize = 256;

impl AuthService {
    pub(crate) async fn authorization_code(
        &self,
        tenant: &TenantId,
        keys: &TenantKeys,
        client: &Client,
        params: &FormParams,
    ) -> Result<(TokenResponse, AccessClaims), OAuthError> {
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return Err(OAuthError::UnauthorizedClient("this client may not use the authorization_code grant".into()));
        }
        let code = params.require("code")?;
        let redirect_uri = params.require("redirect_uri")?;
        if code.len() > MAX_CODE_LEN {
            return Err(invalid("the code is invalid"));
        }
        let now = self.clock.now();
        let redemption = self.store.consume_code(tenant, &self.hasher.hash(code), now).await?;
        let (code, grant) = match redemption {
            CodeRedemption::Redeemed { code, grant } => (code, grant),
            CodeRedemption::Unknown => return Err(invalid("the code is invalid")),
            CodeRedemption::AlreadyUsed { grant_id } => {
                // RFC 9700 §4.2.4: a second redemption means the code leaked; whoever holds the tokens
                // of the first may be the attacker, so they all go.
                self.revoke_grant(tenant, &grant_id, "code replayed").await?;
                return Err(invalid("the code was already used"));
            }
        };
        // The code is consumed whatever follows: a failed attempt burns it (RFC 6749 §4.1.2 single use).
        if grant.client_id != client.client_id {
            return Err(invalid("the code was issued to another client"));
        }
        if now >= code.expires_at {
            return Err(invalid("the code has expired"));
        }
        if code.redirect_uri != redirect_uri {
            return Err(invalid("redirect_uri does not match the authorization request"));
        }
        // Every code carries a challenge (PKCE is required), so a missing verifier can never succeed.
        let verifier = params.get("code_verifier").ok_or_else(|| invalid("code_verifier is required"))?;
        if !pkce::verify(verifier, &code.code_challenge) {
            return Err(invalid("the code_verifier does not match the code_challenge"));
        }
        let extras = Extras { nonce: grant.nonce.as_deref(), refresh: true };
        let minted = self.mint_user_tokens(tenant, keys, client, &grant, &grant.scope, extras)?;
        if !self.store.record_issuance(tenant, &grant.grant_id, &minted.issuance, now, &[]).await? {
            // A replay revoked the grant while these tokens were being minted: they were never handed out.
            return Err(invalid("the code was already used"));
        }
        Ok((minted.response, minted.claims))
    }
}

fn invalid(message: &str) -> OAuthError {
    OAuthError::InvalidGrant(message.to_owned())
}
