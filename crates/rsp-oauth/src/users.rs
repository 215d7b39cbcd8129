//! End users: password hashing, the password login with its brute-force protection, and the user admin
//! use cases. Pages, sessions and TOTP build on these and live elsewhere.
//!
//! # Layout
//! - [`password`]: Argon2id PHC hashes on a bounded blocking pool, the dummy hash for unknown users,
//!   rehash detection.
//! - [`rules`]: what a username and a new password must be (NIST SP 800-63B: length, no composition rules,
//!   common passwords refused).
//! - [`throttle`]: per (account, IP), per-IP and per-account failure counters; the scheme is documented
//!   there.
//! - [`login`]: the password login, `AuthService::authenticate_user`.
//! - [`admin`]: create, get, list, update, disable/enable, set password, delete.
//! - [`change`]: the user's own password change, and the revocations after any change (PWD-6).
//! - [`claims`]: the users' standard claims for userinfo, the default `UserClaimsSource`.

pub mod admin;
pub mod change;
pub mod claims;
pub mod login;
pub mod password;
pub mod rules;
pub mod throttle;

pub use admin::{NewUser, UserChanges, UserPage};
pub use change::PasswordChangeError;
pub use claims::StoreUserClaims;
pub use login::{AuthenticatedUser, LoginError};
pub use password::{HashError, HashParams, PasswordHasher, Verdict};
pub use throttle::{LoginThrottle, LoginThrottleSettings, ThrottleRule};

/// What `AuthService` keeps for end users: the hasher (with its pool) and the login throttle.
#[derive(Debug)]
pub struct UserAuth {
    pub(crate) hasher: PasswordHasher,
    pub(crate) throttle: LoginThrottle,
}

impl UserAuth {
    pub fn new(hasher: PasswordHasher, throttle: &LoginThrottleSettings) -> Self {
        Self { hasher, throttle: LoginThrottle::new(throttle) }
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }
}

impl Default for UserAuth {
    /// OWASP hash parameters, a pool of one slot per CPU, the default throttle.
    fn default() -> Self {
        Self::new(PasswordHasher::owasp(), &LoginThrottleSettings::default())
    }
}

#[cfg(test)]
mod tests;
