//! Second factors: a user's TOTP enrolment (RFC 6238), its single-use recovery codes, and the short-lived
//! "password passed" challenge that waits for the second factor during a login.
//!
//! The secret is stored only sealed (AES-256-GCM under a master-key-derived key), the recovery codes and
//! challenge ids only as keyed hashes; what would open an account never sits in the database in the clear.

use std::fmt;

use crate::{EventKind, TenantId, UnixTime, UserId};

impl EventKind {
    /// A user started, confirmed or removed TOTP (the `data` says which; an admin reset is `removed`).
    pub const USER_TOTP_CHANGED: Self = Self::new("user.totp_changed");
}

/// A user's TOTP secret and its state. Unconfirmed (`confirmed_at = None`) it is pending: shown once for
/// the authenticator app and never accepted at login.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// `nonce || ciphertext || tag`, associated data `tenant/user`.
    pub secret_sealed: Vec<u8>,
    pub created_at: UnixTime,
    pub confirmed_at: Option<UnixTime>,
    /// The last time step whose code was accepted; only later steps are accepted (RFC 6238 §5.2).
    pub last_used_step: Option<i64>,
    /// Consecutive wrong codes since the last accepted one, and when the last came (RFC 4226 §7.3).
    pub failed_attempts: u32,
    pub last_failure_at: Option<UnixTime>,
}

impl TotpEnrolment {
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .field("failed_attempts", &self.failed_attempts)
            .finish_non_exhaustive()
    }
}

/// A login whose password was right and whose second factor is still due, bound to the browser's
/// pre-session cookie (stored as its keyed hash).
#[derive(Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub tenant_id: TenantId,
    pub challenge_hash: String,
    pub user_id: UserId,
    /// When the password was checked: the session's `auth_time` once the second factor passes.
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
}

impl fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
