//! Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect Discovery 1.0).
//! Both documents are one: the same `issuer`, the same endpoints, built from [`crate::Issuers`].
//!
//! Only what is implemented is advertised: the code flow with S256 PKCE and `iss` in authorization
//! responses (RFC 9207), refresh tokens, ID tokens and userinfo; no implicit or password grant, no
//! `plain` PKCE. `end_session_endpoint` is RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

use rsp_core::TenantId;
use serde_json::{Value, json};

use crate::{AuthService, OAuthError};

impl AuthService {
    pub async fn metadata(&self, tenant: &TenantId) -> Result<Value, OAuthError> {
        let keys = self.keys.for_tenant(tenant).await?;
        let issuers = &self.issuers;
        let auth_methods = ["client_secret_basic", "client_secret_post"];
        Ok(json!({
            "issuer": issuers.issuer(tenant),
            "authorization_endpoint": issuers.endpoint(tenant, "/oauth2/authorize"),
            "token_endpoint": issuers.endpoint(tenant, "/oauth2/token"),
            "jwks_uri": issuers.endpoint(tenant, "/jwks.json"),
            "introspection_endpoint": issuers.endpoint(tenant, "/oauth2/introspect"),
            "revocation_endpoint": issuers.endpoint(tenant, "/oauth2/revoke"),
            "userinfo_endpoint": issuers.endpoint(tenant, "/oauth2/userinfo"),
            "end_session_endpoint": issuers.endpoint(tenant, "/oauth2/logout"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": [crate::pkce::S256],
            "authorization_response_iss_parameter_supported": true,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "scopes_supported": ["openid", "offline_access", "profile", "email", "address", "phone"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "acr",
                "azp", "name", "family_name", "given_name", "preferred_username", "email", "email_verified"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [keys.signer.alg().as_str()],
        }))
    }
}
