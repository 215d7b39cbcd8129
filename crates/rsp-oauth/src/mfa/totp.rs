//! RFC 6238 TOTP over RFC 4226 HOTP, with aws-lc-rs's HMAC (already the crate's crypto; `totp-rs` would
//! add a second HMAC/SHA stack for thirty lines of arithmetic).
//!
//! Enrolment uses what authenticator apps support: SHA-1, 6 digits, 30-second steps. The counter is a
//! 64-bit step number, so times past 2038 (and the Appendix B vector at T = 20000000000) work. A code is
//! accepted for the current step and one step either side (clock drift), never more, and compared in
//! constant time.

use std::fmt;

use aws_lc_rs::hmac;
use rsp_core::UnixTime;
use subtle::ConstantTimeEq;

use crate::crypto::random::random_bytes;

/// Seconds per time step (RFC 6238 §5.2's recommendation).
pub const STEP_SECS: i64 = 30;
/// Digits of the codes users type.
pub const DIGITS: u32 = 6;
/// Secret length: the HMAC-SHA-1 output size (RFC 4226 §4 R6, RFC 6238 §5.1).
pub const SECRET_BYTES: usize = 20;

/// The HMAC behind a code. Enrolment always uses SHA-1; the others exist for the RFC's test vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpHash {
    Sha1,
    Sha256,
    Sha512,
}

impl TotpHash {
    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// A user's TOTP key. `Debug` prints a redaction; the bytes leave only sealed, or as base32 once, to the
/// user's authenticator app.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// 20 bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(random_bytes::<SECRET_BYTES>().to_vec())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, as authenticator apps take it (`otpauth://` `secret=`).
    pub fn to_base32(&self) -> String {
        base32(&self.0)
    }

    /// The code of time step `step`.
    pub fn code_at_step(&self, step: i64) -> String {
        code(&self.0, step, TotpHash::Sha1, DIGITS)
    }

    /// The step (T−1, T or T+1 around `now`) whose code is `submitted`, compared in constant time. Every
    /// candidate is computed and compared, so the time taken does not depend on which one matched.
    pub fn matching_step(&self, submitted: &str, now: UnixTime) -> Option<i64> {
        let current = step_at(now);
        let mut found = None;
        for step in [current - 1, current, current + 1] {
            let expected = self.code_at_step(step);
            let equal: bool = expected.as_bytes().ct_eq(submitted.as_bytes()).into();
            if equal && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

/// The time step holding `now` (RFC 6238 §4.2, T0 = 0). Negative times belong to negative steps.
pub fn step_at(now: UnixTime) -> i64 {
    now.0.div_euclid(STEP_SECS)
}

/// HOTP (RFC 4226 §5.3) of `counter` with `digits` digits, zero-padded.
pub fn code(key: &[u8], counter: i64, hash: TotpHash, digits: u32) -> String {
    let key = hmac::Key::new(hash.algorithm(), key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac.get(offset..offset + 4).and_then(|four| <[u8; 4]>::try_from(four).ok()).unwrap_or([0; 4]);
    let binary = u32::from_be_bytes(word) & 0x7fff_ffff;
    let modulus = 10_u32.checked_pow(digits).unwrap_or(u32::MAX);
    format!("{:0width$}", binary % modulus, width = digits as usize)
}

/// RFC 4648 §6 base32, upper case, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET.get(((buffer >> bits) & 31) as usize).copied().unwrap_or(b'A')));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET.get(((buffer << (5 - bits)) & 31) as usize).copied().unwrap_or(b'A')));
    }
    out
}

/// The Key URI Format authenticator apps scan: `otpauth://totp/Issuer:label?secret=…&issuer=…`.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    let escape =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20");
    format!(
        "otpauth://totp/{issuer_label}:{account}?secret={secret}&issuer={issuer_param}&algorithm=SHA1&digits={DIGITS}\
         &period={STEP_SECS}",
        issuer_label = escape(issuer),
        account = escape(account),
        secret = secret.to_base32(),
        issuer_param = escape(issuer),
    )
}

#[cfg(test)]
mod tests;
