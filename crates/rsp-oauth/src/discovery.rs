//! Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect Discovery 1.0).
//! Both documents are one: the same `issuer`, the same endpoints, built from [`crate::Issuers`].
//!
//! Only what is implemented is advertised. There is no authorization endpoint yet (the sign-in flow adds
//! it), so no grant that needs one is listed and `response_types_supported` is empty.

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
            "token_endpoint": issuers.endpoint(tenant, "/oauth2/token"),
            "jwks_uri": issuers.endpoint(tenant, "/jwks.json"),
            "introspection_endpoint": issuers.endpoint(tenant, "/oauth2/introspect"),
            "revocation_endpoint": issuers.endpoint(tenant, "/oauth2/revoke"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [keys.signer.alg().as_str()],
        }))
    }
}
