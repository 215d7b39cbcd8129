//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3).

use std::sync::Arc;

use rsp_core::{Client, ClientKind, Secret, TenantId};

use crate::{AuthService, OAuthError};

/// What the request presented. The HTTP layer builds this from the `Authorization` header and the form,
/// having already refused a request that used more than one method (RFC 6749 §2.3).
#[derive(Debug)]
pub enum ClientCredentials {
    /// `client_secret_basic`.
    Basic { client_id: String, secret: Secret },
    /// `client_secret_post`.
    Post { client_id: String, secret: Secret },
    /// No secret: only a public client's id, or nothing at all.
    None { client_id: Option<String> },
}

impl ClientCredentials {
    fn via_basic(&self) -> bool {
        matches!(self, ClientCredentials::Basic { .. })
    }
}

impl AuthService {
    /// Authenticates the caller as one of `tenant`'s clients. Every failure looks the same to the caller.
    pub async fn authenticate_client(
        &self,
        tenant: &TenantId,
        credentials: &ClientCredentials,
    ) -> Result<Arc<Client>, OAuthError> {
        let via_basic = credentials.via_basic();
        let fail = OAuthError::InvalidClient { via_basic };
        match credentials {
            ClientCredentials::None { client_id: None } => Err(fail),
            ClientCredentials::None { client_id: Some(id) } => {
                let client = self.lookup_client(tenant, id).await?;
                match client {
                    Some(client) if client.kind == ClientKind::Public => Ok(client),
                    _ => Err(fail),
                }
            }
            ClientCredentials::Basic { client_id, secret } | ClientCredentials::Post { client_id, secret } => {
                let now = self.clock.now();
                if let Err(retry_after_secs) = self.throttle.check(tenant, client_id, now) {
                    return Err(OAuthError::TooManyAttempts { retry_after_secs });
                }
                let client = self.lookup_client(tenant, client_id).await?;
                let verified = client.filter(|c| {
                    c.kind == ClientKind::Confidential
                        && c.secret_hash.as_deref().is_some_and(|h| self.hasher.verify(secret.expose(), h))
                });
                match verified {
                    Some(client) => {
                        self.throttle.record_success(tenant, client_id);
                        rsp_core::context::set_actor(client_id.clone());
                        Ok(client)
                    }
                    None => {
                        self.throttle.record_failure(tenant, client_id, now);
                        tracing::info!(tenant = %tenant, "client authentication failed");
                        Err(fail)
                    }
                }
            }
        }
    }
}
