//! Random values from the operating system's CSPRNG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` random bytes rendered as unpadded base64url. Secrets and token ids use 32 and 16 bytes: RFC
/// 6749 §10.10 asks for guessing odds of at most 2^-128 and recommends 2^-160.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    fill(&mut buf);
    buf
}

/// The OS RNG failing is unrecoverable for a security server: issuing a guessable secret would be
/// worse than stopping, so the process aborts (aws-lc never reports this on Linux in practice).
fn fill(buf: &mut [u8]) {
    if SystemRandom::new().fill(buf).is_err() {
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn secrets_carry_at_least_twenty_random_bytes_and_never_repeat() {
        let token = random_token(32);
        assert!(URL_SAFE_NO_PAD.decode(&token).unwrap().len() >= 20);
        let draws: HashSet<String> = (0..100_000).map(|_| random_token(20)).collect();
        assert_eq!(draws.len(), 100_000);
    }
}
