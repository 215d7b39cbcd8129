//! The password login: `AuthService::authenticate_user`.
//!
//! Every failure a guesser could learn from gets the same answer, `InvalidCredentials`, after the same
//! work: an unknown username is verified against the dummy hash, a disabled user's password is still
//! verified. Only a throttled attempt is answered differently (with a retry delay) and early, before any
//! hashing; the throttle keys on the submitted username whether or not it exists, so its answer reveals
//! nothing either.

use std::net::IpAddr;

use rsp_core::{Event, EventKind, Priority, Secret, TenantId, UnixTime, User, UserId, Username};
use serde_json::json;

use crate::AuthService;
use crate::users::rules::MAX_PASSWORD_BYTES;

/// A person who just proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The stable `sub` of the tokens issued for this login.
    pub user_id: UserId,
    pub username: String,
    pub auth_time: UnixTime,
    /// Authentication methods (RFC 8176): `pwd` for a password.
    pub amr: Vec<String>,
}

/// Why a login failed. The messages are safe to show to the person logging in.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown username, wrong password, disabled account or no password set: one answer for all.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed logins; retry later")]
    Throttled { retry_after_secs: u64 },
    /// The input cannot be a username or password at all (empty, oversized); refused before hashing.
    #[error("{0}")]
    InvalidInput(&'static str),
    #[error("unknown tenant")]
    UnknownTenant,
    /// Not the user's fault; the message goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthService {
    /// Checks `username` and `password` for `tenant`, throttled per account, per source IP and per
    /// (account, IP) (see [`crate::users::throttle`]). Emits `login.succeeded` or `login.failed`; neither
    /// carries the password.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, client_ip = %client_ip))]
    pub async fn authenticate_user(
        &self,
        tenant: &TenantId,
        username: &str,
        password: &Secret,
        client_ip: IpAddr,
    ) -> Result<AuthenticatedUser, LoginError> {
        let username = Username::parse(username).map_err(|_| LoginError::InvalidInput("username is not valid"))?;
        if password.expose().is_empty() || password.expose().len() > MAX_PASSWORD_BYTES {
            return Err(LoginError::InvalidInput("password must be 1 to 1024 bytes"));
        }
        self.require_tenant(tenant).await.map_err(|_| LoginError::UnknownTenant)?;
        let folded = username.folded();
        let now = self.clock.now();
        let throttle = &self.users.throttle;
        if let Some(retry_after_secs) =
            throttle.check(&*self.store, tenant, folded, client_ip, now).await.map_err(internal)?
        {
            tracing::warn!(retry_after_secs, "login throttled");
            self.emit_login_failed(tenant, None, client_ip, "throttled").await;
            return Err(LoginError::Throttled { retry_after_secs });
        }
        let user = self.store.find_user_by_username(tenant, folded).await.map_err(internal)?;
        let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let verdict = self.users.hasher.verify(password, stored).await.map_err(internal)?;
        match user {
            Some(user) if verdict.matches && !user.is_disabled() => {
                throttle.record_success(&*self.store, tenant, folded, client_ip).await.map_err(internal)?;
                if verdict.needs_rehash {
                    self.upgrade_hash(&user, password).await;
                }
                self.emit_login(EventKind::LOGIN_SUCCEEDED, tenant, Some(&user.user_id), client_ip, None).await;
                tracing::info!(user = %user.user_id, "login succeeded");
                Ok(AuthenticatedUser {
                    user_id: user.user_id,
                    username: user.username.as_str().to_owned(),
                    auth_time: now,
                    amr: vec!["pwd".to_owned()],
                })
            }
            user => {
                throttle.record_failure(&*self.store, tenant, folded, client_ip, now).await.map_err(internal)?;
                let reason = match &user {
                    None => "unknown_user",
                    Some(u) if u.is_disabled() => "disabled",
                    Some(u) if u.password_hash.is_none() => "no_password",
                    Some(_) => "wrong_password",
                };
                tracing::info!(reason, "login failed");
                self.emit_login_failed(tenant, user.as_ref().map(|u| &u.user_id), client_ip, reason).await;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    /// Stores a hash with the current parameters in place of a weaker one. Best effort: the login has
    /// succeeded either way, and the swap applies only if nobody changed the password meanwhile.
    async fn upgrade_hash(&self, user: &User, password: &Secret) {
        let Some(current) = user.password_hash.as_deref() else { return };
        let result = async {
            let fresh = self.users.hasher.hash(password).await.map_err(|e| e.to_string())?;
            let event = Event::new(user.tenant_id.clone(), EventKind::USER_PASSWORD_CHANGED, Priority::High)
                .subject(user.user_id.as_str())
                .data(json!({"reason": "rehash"}));
            self.store
                .replace_password_hash(&user.tenant_id, &user.user_id, current, &fresh, &[event])
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(user = %user.user_id, %error, "password rehash failed");
        }
    }

    async fn emit_login_failed(&self, tenant: &TenantId, user: Option<&UserId>, ip: IpAddr, reason: &str) {
        self.emit_login(EventKind::LOGIN_FAILED, tenant, user, ip, Some(reason)).await;
    }

    /// A login event, with the user as actor and subject when known. The submitted username is left out
    /// of failures: people type passwords into the username field.
    pub(crate) async fn emit_login(
        &self,
        kind: EventKind,
        tenant: &TenantId,
        user: Option<&UserId>,
        ip: IpAddr,
        reason: Option<&str>,
    ) {
        let mut event = Event::new(tenant.clone(), kind, Priority::High).data(json!({
            "client_ip": ip.to_string(),
            "reason": reason,
        }));
        if let Some(user) = user {
            event = event.subject(user.as_str()).actor(user.as_str());
        }
        self.events.emit(event).await;
    }
}

fn internal(error: impl std::fmt::Display) -> LoginError {
    LoginError::Internal(error.to_string())
}
