//! The client credentials grant (RFC 6749 §4.4): a confidential client gets a token for itself.

use rsp_core::{Client, ClientKind, GrantType, TenantId};

use crate::audience::resolve_audience;
use crate::keyring::TenantKeys;
use crate::token::{self, AccessClaims};
use crate::{AuthService, FormParams, OAuthError, TokenResponse};

impl AuthService {
    pub(crate) async fn client_credentials(
        &self,
        tenant: &TenantId,
        keys: &TenantKeys,
        client: &Client,
        params: &FormParams,
    ) -> Result<(TokenResponse, AccessClaims), OAuthError> {
        if client.kind != ClientKind::Confidential {
            return Err(OAuthError::UnauthorizedClient(
                "public clients may not use the client_credentials grant".into(),
            ));
        }
        if !client.allows_grant(GrantType::ClientCredentials) {
            return Err(OAuthError::UnauthorizedClient("this client may not use the client_credentials grant".into()));
        }
        let mut grant = resolve_audience(&self.issuers, tenant, client, params.get("scope"), params.get("resource"))?;
        grant.scope = self.permitted_scopes(tenant, client, grant.scope, &grant.audience).await?;
        let now = self.clock.now();
        let ttl = self.settings.access_token_ttl_secs;
        let scope = (!grant.scope.is_empty()).then(|| grant.scope.to_string());
        let claims = AccessClaims {
            iss: self.issuers.issuer(tenant),
            sub: client.client_id.to_string(),
            aud: grant.audience,
            client_id: client.client_id.to_string(),
            scope: scope.clone(),
            jti: token::new_token_id(),
            iat: now.0,
            exp: now.0 + ttl,
            auth_time: None,
            acr: None,
            amr: None,
        };
        let access_token = token::mint(keys, &claims)?;
        Ok((
            TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: ttl,
                scope,
                refresh_token: None,
                id_token: None,
            },
            claims,
        ))
    }
}
