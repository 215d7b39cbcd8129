//! Second factors: TOTP (RFC 6238) with recovery codes.
//!
//! # Layout
//! - [`totp`]: the algorithm (HOTP/TOTP over aws-lc-rs HMAC), the secret, base32 and the `otpauth://` URI.
//! - [`recovery`]: the ten single-use recovery codes: generation, normalisation, keyed hashes.
//! - [`enrolment`]: self-service set-up and removal (each behind the current password, PWD-6) and the
//!   administrator's reset for a lost device.
//! - [`second_factor`]: the login's second step: the "password passed" challenge bound to the browser's
//!   pre-session cookie, and checking a code (window, one-time use, per-account back-off).
//!
//! `amr` (RFC 8176) after the second step: `["pwd", "otp", "mfa"]` with a TOTP code, `["pwd", "mfa"]` with a
//! recovery code (it is neither an OTP device nor a hardware key; RFC 8176 has no closer value).

pub mod enrolment;
pub mod recovery;
pub mod second_factor;
pub mod totp;

pub use enrolment::{PendingTotp, TotpStatus};
pub use totp::TotpSecret;

use crate::users::ThrottleRule;

/// How long a login waits for its second factor after the password passed.
pub const CHALLENGE_LIFETIME_SECS: i64 = 5 * 60;
/// How long a started enrolment may be confirmed (and its QR code shown again) before the password is
/// asked again.
pub const PENDING_ENROLMENT_SECS: i64 = 10 * 60;

/// HOTP-7.3: five wrong codes in a row are free; then every attempt, right or wrong and from any address,
/// waits 60 s, doubling with each further failure up to 15 min. An accepted code clears the count.
pub const CODE_THROTTLE: ThrottleRule =
    ThrottleRule { free_failures: 5, base_delay_secs: 60, max_delay_secs: 15 * 60, doubling: true };

/// Why a second-factor step failed. The messages are safe to show to the user.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// A wrong, replayed or malformed code (one answer for all).
    #[error("invalid authentication code")]
    InvalidCode,
    #[error("too many wrong codes; retry later")]
    Throttled { retry_after_secs: u64 },
    /// No live "password passed" state (expired, used, or never created for this browser).
    #[error("this sign-in step has expired; start again")]
    Expired,
    #[error("the current password is not correct")]
    InvalidPassword,
    #[error("two-step verification is not enabled")]
    NotEnabled,
    #[error("two-step verification is already enabled")]
    AlreadyEnabled,
    #[error("no set-up is in progress; start again")]
    NoPendingEnrolment,
    /// Not the user's fault; the message goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<rsp_core::StoreError> for MfaError {
    fn from(error: rsp_core::StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<crate::OAuthError> for MfaError {
    fn from(error: crate::OAuthError) -> Self {
        Self::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests;
