//! Self-service TOTP set-up and removal, and the administrator's reset.
//!
//! Starting a set-up and removing TOTP both ask for the current password (PWD-6), checked by the
//! throttled password login. A started set-up is pending: its secret is shown (QR code and text) for
//! [`PENDING_ENROLMENT_SECS`] and becomes active only when a code from the app confirms it; the
//! confirmation creates ten recovery codes, whose hashes are stored and whose text, sealed, waits for the
//! next page view to show them once.

use std::net::IpAddr;

use rsp_core::mfa::TotpEnrolment;
use rsp_core::{Event, EventKind, Priority, Secret, StoreError, TenantId, UserId};
use serde_json::json;

use super::second_factor::secret_context;
use super::totp::{TotpSecret, otpauth_uri};
use super::{MfaError, PENDING_ENROLMENT_SECS, recovery};
use crate::users::LoginError;
use crate::{AdminError, AuthService};

/// A started set-up: what the authenticator app needs. `Debug` shows neither.
pub struct PendingTotp {
    pub secret: TotpSecret,
    /// The `otpauth://` URI the QR code encodes (it contains the secret).
    pub uri: String,
}

impl std::fmt::Debug for PendingTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingTotp([redacted])")
    }
}

/// Where a user's TOTP stands, as the account page shows it.
#[derive(Debug)]
pub enum TotpStatus {
    /// Not set up (or a set-up that went stale: the password is needed again).
    Off,
    Pending(PendingTotp),
    On {
        recovery_codes_left: u64,
    },
}

impl AuthService {
    /// The user's TOTP state; a pending set-up older than [`PENDING_ENROLMENT_SECS`] counts as off.
    pub async fn totp_status(&self, tenant: &TenantId, user: &UserId) -> Result<TotpStatus, MfaError> {
        let Some(enrolment) = self.store.find_totp(tenant, user).await? else { return Ok(TotpStatus::Off) };
        if enrolment.is_confirmed() {
            let recovery_codes_left = self.store.count_recovery_codes(tenant, user).await?;
            return Ok(TotpStatus::On { recovery_codes_left });
        }
        match self.fresh_pending(&enrolment).await? {
            Some(pending) => Ok(TotpStatus::Pending(pending)),
            None => Ok(TotpStatus::Off),
        }
    }

    /// Starts (or restarts) a set-up after checking the current password.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
    pub async fn start_totp_enrolment(
        &self,
        tenant: &TenantId,
        user: &UserId,
        password: &Secret,
        client_ip: IpAddr,
    ) -> Result<(), MfaError> {
        self.reauthenticate(tenant, user, password, client_ip).await?;
        let secret = TotpSecret::generate();
        let sealed = self
            .totp_sealer
            .seal(secret.expose(), secret_context(tenant, user).as_bytes())
            .map_err(|e| MfaError::Internal(e.to_string()))?;
        let now = self.clock.now();
        let enrolment = TotpEnrolment {
            tenant_id: tenant.clone(),
            user_id: user.clone(),
            secret_sealed: sealed,
            created_at: now,
            confirmed_at: None,
            last_used_step: None,
            failed_attempts: 0,
            last_failure_at: None,
        };
        let event = totp_event(tenant, user, "started");
        self.store.save_pending_totp(&enrolment, &[event]).await.map_err(|e| match e {
            StoreError::Conflict(_) => MfaError::AlreadyEnabled,
            other => other.into(),
        })
    }

    /// Confirms the pending set-up with a code from the app; from now on logins need a second factor.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
    pub async fn confirm_totp_enrolment(
        &self,
        tenant: &TenantId,
        user: &UserId,
        code: &Secret,
    ) -> Result<(), MfaError> {
        let enrolment = self.store.find_totp(tenant, user).await?.ok_or(MfaError::NoPendingEnrolment)?;
        if enrolment.is_confirmed() {
            return Err(MfaError::AlreadyEnabled);
        }
        let now = self.clock.now();
        if now.0 >= enrolment.created_at.0.saturating_add(PENDING_ENROLMENT_SECS) {
            return Err(MfaError::NoPendingEnrolment);
        }
        let secret = self.open_totp_secret(&enrolment)?;
        let Some(step) = secret.matching_step(code.expose().trim(), now) else {
            self.store.record_totp_failure(tenant, user, now).await?;
            return Err(MfaError::InvalidCode);
        };
        let codes = recovery::generate();
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| recovery::normalise(c))
            .map(|n| recovery::hash(&self.hasher, tenant, user, &n))
            .collect();
        let display = self
            .totp_sealer
            .seal(codes.join("\n").as_bytes(), display_context(tenant, user).as_bytes())
            .map_err(|e| MfaError::Internal(e.to_string()))?;
        let event = totp_event(tenant, user, "confirmed");
        if !self.store.confirm_totp(tenant, user, step, &hashes, &display, now, &[event]).await? {
            return Err(MfaError::NoPendingEnrolment);
        }
        tracing::info!("TOTP enabled");
        Ok(())
    }

    /// The recovery codes of the confirmation just made, once: a second call returns `None`.
    pub async fn take_new_recovery_codes(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Vec<String>>, MfaError> {
        let Some(sealed) = self.store.take_recovery_display(tenant, user).await? else { return Ok(None) };
        let plain = self
            .totp_sealer
            .open(&sealed, display_context(tenant, user).as_bytes())
            .map_err(|e| MfaError::Internal(e.to_string()))?;
        let text = String::from_utf8(plain).map_err(|e| MfaError::Internal(e.to_string()))?;
        Ok(Some(text.lines().map(str::to_owned).collect()))
    }

    /// Turns TOTP off after the current password and a current code (or a recovery code).
    #[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
    pub async fn disable_totp(
        &self,
        tenant: &TenantId,
        user: &UserId,
        password: &Secret,
        code: &Secret,
        client_ip: IpAddr,
    ) -> Result<(), MfaError> {
        self.reauthenticate(tenant, user, password, client_ip).await?;
        self.check_second_factor(tenant, user, code, client_ip).await?;
        self.store.delete_totp(tenant, user, &[totp_event(tenant, user, "removed")]).await?;
        tracing::info!("TOTP disabled by its user");
        Ok(())
    }

    /// An administrator's reset (lost device): removes the enrolment and its recovery codes. Returns
    /// whether there was one.
    pub async fn reset_user_totp(&self, tenant: &str, user_id: &str) -> Result<bool, AdminError> {
        let user = self.get_user(tenant, user_id).await?;
        let event = totp_event(&user.tenant_id, &user.user_id, "reset");
        let removed = self.store.delete_totp(&user.tenant_id, &user.user_id, &[event]).await?;
        tracing::info!(tenant = %user.tenant_id, user = %user.user_id, removed, "user TOTP reset");
        Ok(removed)
    }

    /// Whether the user's logins need a second factor (for the admin API's user view).
    pub async fn user_totp_enabled(&self, tenant: &TenantId, user: &UserId) -> Result<bool, AdminError> {
        Ok(self.store.find_totp(tenant, user).await?.is_some_and(|e| e.is_confirmed()))
    }

    async fn fresh_pending(&self, enrolment: &TotpEnrolment) -> Result<Option<PendingTotp>, MfaError> {
        let age = self.clock.now().0.saturating_sub(enrolment.created_at.0);
        if age >= PENDING_ENROLMENT_SECS {
            return Ok(None);
        }
        let secret = self.open_totp_secret(enrolment)?;
        let user = self.store.get_user(&enrolment.tenant_id, &enrolment.user_id).await?;
        let tenant = self.store.get_tenant(&enrolment.tenant_id).await?;
        let account = user.map_or_else(|| enrolment.user_id.to_string(), |u| u.username.as_str().to_owned());
        let issuer = tenant.map_or_else(|| enrolment.tenant_id.to_string(), |t| t.name);
        let uri = otpauth_uri(&issuer, &account, &secret);
        Ok(Some(PendingTotp { secret, uri }))
    }

    /// PWD-6: the current password of `user`, through the throttled login (so it is rate limited and
    /// audited like any password check).
    async fn reauthenticate(
        &self,
        tenant: &TenantId,
        user: &UserId,
        password: &Secret,
        client_ip: IpAddr,
    ) -> Result<(), MfaError> {
        let record = self.store.get_user(tenant, user).await?.ok_or(MfaError::InvalidPassword)?;
        match self.authenticate_user(tenant, record.username.as_str(), password, client_ip).await {
            Ok(checked) if checked.user_id == *user => Ok(()),
            Ok(_) | Err(LoginError::InvalidCredentials | LoginError::InvalidInput(_)) => Err(MfaError::InvalidPassword),
            Err(LoginError::Throttled { retry_after_secs }) => Err(MfaError::Throttled { retry_after_secs }),
            Err(error @ (LoginError::UnknownTenant | LoginError::Internal(_))) => {
                Err(MfaError::Internal(error.to_string()))
            }
        }
    }
}

fn display_context(tenant: &TenantId, user: &UserId) -> String {
    format!("totp-recovery-display:{tenant}/{user}")
}

fn totp_event(tenant: &TenantId, user: &UserId, change: &str) -> Event {
    Event::new(tenant.clone(), EventKind::USER_TOTP_CHANGED, Priority::High)
        .subject(user.as_str())
        .data(json!({"change": change}))
}
