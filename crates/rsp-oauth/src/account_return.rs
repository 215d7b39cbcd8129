//! Account pages (TOTP set-up) need a live session; a browser without one is sent through the login page
//! and back. The way back is parked like an authorization request (the login page carries only an opaque
//! id) but under its own hash label, so an id of one kind can never be read as the other, and the target
//! is one of the server's own paths, chosen by the server: no open redirect.

use rsp_core::TenantId;
use rsp_core::session::PendingAuthorization;

use crate::crypto::random_token;
use crate::sessions::PENDING_LIFETIME_SECS;
use crate::{AuthService, OAuthError};

/// An account page a login can return to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountPage {
    Totp,
}

impl AccountPage {
    /// The page's path under the tenant's issuer.
    pub fn path(self) -> &'static str {
        match self {
            Self::Totp => "/account/totp",
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        (stored == Self::Totp.path()).then_some(Self::Totp)
    }
}

impl AuthService {
    /// Parks the way back to `page`; returns the id the login page carries.
    pub async fn park_account_return(&self, tenant: &TenantId, page: AccountPage) -> Result<String, OAuthError> {
        let id = random_token(32);
        let pending = PendingAuthorization {
            tenant_id: tenant.clone(),
            pending_hash: self.return_hash(&id),
            params: page.path().to_owned(),
            expires_at: self.clock.now().plus_secs(PENDING_LIFETIME_SECS),
        };
        self.store.save_pending(&pending).await?;
        Ok(id)
    }

    /// The account page parked under `id`, while it has not expired or been used.
    pub async fn parked_account_return(&self, tenant: &TenantId, id: &str) -> Result<Option<AccountPage>, OAuthError> {
        let found = self.store.find_pending(tenant, &self.return_hash(id), self.clock.now()).await?;
        Ok(found.and_then(|p| AccountPage::parse(&p.params)))
    }

    pub async fn complete_account_return(&self, tenant: &TenantId, id: &str) -> Result<(), OAuthError> {
        Ok(self.store.delete_pending(tenant, &self.return_hash(id)).await?)
    }

    fn return_hash(&self, id: &str) -> String {
        self.hasher.hash(&format!("return:{id}"))
    }
}
