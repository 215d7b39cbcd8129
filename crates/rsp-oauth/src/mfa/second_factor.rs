//! The login's second step. After the password passes for a user with confirmed TOTP, no session starts:
//! a challenge (who, and when the password passed) is stored under a keyed hash of the browser's
//! pre-session cookie, so only that browser can finish it, within [`CHALLENGE_LIFETIME_SECS`].
//!
//! A code is checked in this order: the per-account back-off ([`CODE_THROTTLE`], before any work, from
//! the failures stored with the enrolment, so it holds on every replica and for every source address),
//! then a 6-digit TOTP code against T−1, T and T+1 and the store's compare-and-set on the step (a replay,
//! or an older step after a newer one was used, fails), else a recovery code spent by deleting it.

use std::net::IpAddr;

use rsp_core::mfa::MfaChallenge;
use rsp_core::{EventKind, Secret, TenantId, UnixTime, UserId};

use super::totp::TotpSecret;
use super::{CHALLENGE_LIFETIME_SECS, CODE_THROTTLE, MfaError, recovery};
use crate::users::AuthenticatedUser;
use crate::{AuthService, OAuthError};

/// How a second factor was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
}

impl SecondFactor {
    /// The session's `amr` (RFC 8176) after the password and this factor.
    pub fn amr(self) -> Vec<String> {
        let methods: &[&str] = match self {
            Self::Totp => &["pwd", "otp", "mfa"],
            Self::RecoveryCode => &["pwd", "mfa"],
        };
        methods.iter().map(|m| (*m).to_owned()).collect()
    }
}

impl AuthService {
    /// Whether `user` must show a second factor after the password: a confirmed TOTP enrolment (a
    /// pending one never counts).
    pub async fn second_factor_required(&self, tenant: &TenantId, user: &UserId) -> Result<bool, OAuthError> {
        Ok(self.store.find_totp(tenant, user).await?.is_some_and(|e| e.is_confirmed()))
    }

    /// Parks a login whose password passed until the second factor comes from the browser holding
    /// `pre_session`.
    pub async fn begin_second_factor(
        &self,
        tenant: &TenantId,
        user: &AuthenticatedUser,
        pre_session: &str,
    ) -> Result<(), OAuthError> {
        let challenge = MfaChallenge {
            tenant_id: tenant.clone(),
            challenge_hash: self.challenge_hash(pre_session),
            user_id: user.user_id.clone(),
            auth_time: user.auth_time,
            expires_at: self.clock.now().plus_secs(CHALLENGE_LIFETIME_SECS),
        };
        Ok(self.store.save_mfa_challenge(&challenge).await?)
    }

    /// Whether the browser holding `pre_session` has a login waiting for its second factor.
    pub async fn second_factor_pending(&self, tenant: &TenantId, pre_session: &str) -> Result<bool, OAuthError> {
        if pre_session.is_empty() {
            return Ok(false);
        }
        let hash = self.challenge_hash(pre_session);
        Ok(self.store.find_mfa_challenge(tenant, &hash, self.clock.now()).await?.is_some())
    }

    /// Checks the second factor of the login waiting for `pre_session`; on success the challenge is gone
    /// and the user is ready for a session with the matching `amr`.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, client_ip = %client_ip))]
    pub async fn complete_second_factor(
        &self,
        tenant: &TenantId,
        pre_session: &str,
        code: &Secret,
        client_ip: IpAddr,
    ) -> Result<AuthenticatedUser, MfaError> {
        if pre_session.is_empty() {
            return Err(MfaError::Expired);
        }
        let hash = self.challenge_hash(pre_session);
        let now = self.clock.now();
        let challenge = self.store.find_mfa_challenge(tenant, &hash, now).await?.ok_or(MfaError::Expired)?;
        let user = self.store.get_user(tenant, &challenge.user_id).await?;
        let Some(user) = user.filter(|u| !u.is_disabled()) else {
            self.store.delete_mfa_challenge(tenant, &hash).await?;
            return Err(MfaError::Expired);
        };
        let factor = self.check_second_factor(tenant, &user.user_id, code, client_ip).await?;
        self.store.delete_mfa_challenge(tenant, &hash).await?;
        let reason = match factor {
            SecondFactor::Totp => "totp",
            SecondFactor::RecoveryCode => "recovery_code",
        };
        self.emit_login(EventKind::LOGIN_SUCCEEDED, tenant, Some(&user.user_id), client_ip, Some(reason)).await;
        tracing::info!(user = %user.user_id, reason, "second factor accepted");
        Ok(AuthenticatedUser {
            user_id: user.user_id,
            username: user.username.as_str().to_owned(),
            auth_time: now,
            amr: factor.amr(),
        })
    }

    /// Checks a TOTP or recovery code of a confirmed enrolment, with the back-off; failures are counted
    /// and audited (`login.failed`, never with the code).
    pub(crate) async fn check_second_factor(
        &self,
        tenant: &TenantId,
        user: &UserId,
        code: &Secret,
        client_ip: IpAddr,
    ) -> Result<SecondFactor, MfaError> {
        let enrolment = self.store.find_totp(tenant, user).await?.filter(|e| e.is_confirmed());
        let Some(enrolment) = enrolment else { return Err(MfaError::NotEnabled) };
        let now = self.clock.now();
        if let Some(retry_after_secs) = backoff(enrolment.failed_attempts, enrolment.last_failure_at, now) {
            tracing::warn!(retry_after_secs, "second factor throttled");
            self.emit_login(EventKind::LOGIN_FAILED, tenant, Some(user), client_ip, Some("totp_throttled")).await;
            return Err(MfaError::Throttled { retry_after_secs });
        }
        let typed = code.expose().trim();
        let failure = if typed.len() == 6 && typed.bytes().all(|b| b.is_ascii_digit()) {
            let secret = self.open_totp_secret(&enrolment)?;
            match secret.matching_step(typed, now) {
                Some(step) if self.store.use_totp_step(tenant, user, step).await? => return Ok(SecondFactor::Totp),
                Some(_) => "totp_replayed",
                None => "wrong_totp_code",
            }
        } else {
            let hash = recovery::normalise(typed).map(|n| recovery::hash(&self.hasher, tenant, user, &n));
            match hash {
                Some(hash) if self.store.use_recovery_code(tenant, user, &hash).await? => {
                    return Ok(SecondFactor::RecoveryCode);
                }
                _ => "wrong_recovery_code",
            }
        };
        let failures = self.store.record_totp_failure(tenant, user, now).await?;
        tracing::info!(reason = failure, failures, "second factor refused");
        self.emit_login(EventKind::LOGIN_FAILED, tenant, Some(user), client_ip, Some(failure)).await;
        Err(MfaError::InvalidCode)
    }

    pub(crate) fn open_totp_secret(&self, enrolment: &rsp_core::mfa::TotpEnrolment) -> Result<TotpSecret, MfaError> {
        let context = secret_context(&enrolment.tenant_id, &enrolment.user_id);
        let bytes = self
            .totp_sealer
            .open(&enrolment.secret_sealed, context.as_bytes())
            .map_err(|e| MfaError::Internal(e.to_string()))?;
        Ok(TotpSecret::from_bytes(bytes))
    }

    fn challenge_hash(&self, pre_session: &str) -> String {
        self.hasher.hash(&format!("mfa:{pre_session}"))
    }
}

/// The associated data a sealed secret is bound to: a row copied to another user fails to open.
pub(crate) fn secret_context(tenant: &TenantId, user: &UserId) -> String {
    format!("totp:{tenant}/{user}")
}

/// Seconds left of the back-off after `failures` wrong codes, the last at `last`; `None` when a code may
/// be tried now.
fn backoff(failures: u32, last: Option<UnixTime>, now: UnixTime) -> Option<u64> {
    let last = last?;
    let wait = last.0.saturating_add(CODE_THROTTLE.delay(failures)).saturating_sub(now.0);
    (wait > 0).then(|| u64::try_from(wait).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_the_wait_doubles_to_its_cap() {
        let last = Some(UnixTime(1_000));
        assert_eq!(backoff(4, last, UnixTime(1_000)), None);
        assert_eq!(backoff(5, last, UnixTime(1_000)), Some(60));
        assert_eq!(backoff(5, last, UnixTime(1_059)), Some(1));
        assert_eq!(backoff(5, last, UnixTime(1_060)), None);
        assert_eq!(backoff(6, last, UnixTime(1_000)), Some(120));
        assert_eq!(backoff(40, last, UnixTime(1_000)), Some(900));
        assert_eq!(backoff(40, None, UnixTime(1_000)), None);
    }

    #[test]
    fn amr_says_which_factor() {
        assert_eq!(SecondFactor::Totp.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(SecondFactor::RecoveryCode.amr(), ["pwd", "mfa"]);
    }
}
