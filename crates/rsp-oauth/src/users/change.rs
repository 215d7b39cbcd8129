//! Password changes (PWD-6): the user's own change, which needs the current password, and what every
//! change does afterwards, an administrator's reset included.
//!
//! After a change nothing issued under the old password survives (RFC 9700 §4.14.2 allows it; OWASP asks
//! for it): every grant of the user is revoked, with its refresh and access tokens, and every browser
//! session is deleted. Sessions would die anyway, as a session older than `password_changed_at` is
//! refused, but deleting them also ends one started within the same second as the change.

use std::net::IpAddr;

use rsp_core::{Event, EventKind, Priority, Secret, TenantId, User, UserId};
use serde_json::json;

use crate::users::rules::{MAX_PASSWORD_BYTES, PasswordError, check_new_password};
use crate::{AuthService, OAuthError};

/// Why a password change was refused. The messages are safe to show to the user.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The current password is wrong (or the account can no longer sign in): one answer for all.
    #[error("the current password is not correct")]
    WrongPassword,
    #[error("too many failed attempts; retry later")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Rejected(#[from] PasswordError),
    /// Not the user's fault; the message goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthService {
    /// Changes the password of `user_id` (signed in) after checking `current`. A wrong current password
    /// counts as a failed login for the throttle, keyed like a login by the username and `client_ip`, so
    /// a stolen session cannot be used to guess the password faster than the login form allows.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user_id))]
    pub async fn change_own_password(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        current: &Secret,
        new: &Secret,
        client_ip: IpAddr,
    ) -> Result<User, PasswordChangeError> {
        let mut user =
            self.store.get_user(tenant, user_id).await.map_err(internal)?.ok_or(PasswordChangeError::WrongPassword)?;
        let folded = user.username.folded().to_owned();
        let now = self.clock.now();
        let throttle = &self.users.throttle;
        if let Some(retry_after_secs) =
            throttle.check(&*self.store, tenant, &folded, client_ip, now).await.map_err(internal)?
        {
            return Err(PasswordChangeError::Throttled { retry_after_secs });
        }
        let oversized = current.expose().is_empty() || current.expose().len() > MAX_PASSWORD_BYTES;
        let matches = !oversized
            && self.users.hasher.verify(current, user.password_hash.as_deref()).await.map_err(internal)?.matches;
        if !matches || user.is_disabled() {
            throttle.record_failure(&*self.store, tenant, &folded, client_ip, now).await.map_err(internal)?;
            let event = Event::new(tenant.clone(), EventKind::LOGIN_FAILED, Priority::High)
                .subject(user.user_id.as_str())
                .actor(user.user_id.as_str())
                .data(json!({"client_ip": client_ip.to_string(), "reason": "wrong_current_password"}));
            self.events.emit(event).await;
            return Err(PasswordChangeError::WrongPassword);
        }
        throttle.record_success(&*self.store, tenant, &folded, client_ip).await.map_err(internal)?;
        check_new_password(new, &user.username)?;
        user.password_hash = Some(self.users.hasher.hash(new).await.map_err(internal)?);
        user.password_changed_at = Some(now);
        user.updated_at = now;
        let changed = Event::new(tenant.clone(), EventKind::USER_PASSWORD_CHANGED, Priority::High)
            .subject(user.user_id.as_str())
            .actor(user.user_id.as_str())
            .data(json!({"reason": "changed"}));
        self.store.update_user(&user, &[changed]).await.map_err(internal)?;
        self.after_password_change(tenant, &user.user_id).await.map_err(internal)?;
        tracing::info!("password changed by its user");
        Ok(user)
    }

    /// Revokes every grant of the user (refresh and access tokens with them) and ends every session:
    /// what PWD-6 asks after any password change.
    pub(crate) async fn after_password_change(&self, tenant: &TenantId, user: &UserId) -> Result<(), OAuthError> {
        let event = Event::new(tenant.clone(), EventKind::TOKEN_REVOKED, Priority::High)
            .subject(user.as_str())
            .data(json!({"user": user.as_str(), "reason": "password changed"}));
        let revoked = self.store.revoke_user_grants(tenant, user.as_str(), self.clock.now(), &[event]).await?;
        self.forget_revocations(tenant, &revoked).await?;
        let sessions = self.end_user_sessions(tenant, user).await?;
        tracing::info!(tenant = %tenant, user = %user, tokens = revoked.len(), sessions, "password change ended access");
        Ok(())
    }
}

fn internal(error: impl std::fmt::Display) -> PasswordChangeError {
    PasswordChangeError::Internal(error.to_string())
}
