//! PKCE (RFC 7636) with S256 only: the challenge is checked at the authorization endpoint, the verifier at
//! the token endpoint, and their comparison takes constant time.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The one transform accepted. `plain` is refused, and so is an omitted method, which means `plain`
/// (RFC 7636 §4.3; RFC 9700 §2.1.1).
pub const S256: &str = "S256";

/// An S256 challenge is the base64url (unpadded) SHA-256 of the verifier: exactly 43 characters.
pub fn challenge_is_well_formed(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: 43 to 128 characters of `A-Z a-z 0-9 - . _ ~`.
pub fn verifier_is_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Whether `verifier` is well formed and transforms into `challenge`, compared in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    verifier_is_well_formed(verifier)
        && aws_lc_rs::constant_time::verify_slices_are_equal(s256(verifier).as_bytes(), challenge.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn appendix_b_verifier_matches_its_challenge_and_one_changed_character_does_not() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        assert!(verify(VERIFIER, CHALLENGE));
        assert!(!verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", CHALLENGE));
        assert!(challenge_is_well_formed(CHALLENGE));
        assert!(!challenge_is_well_formed(&CHALLENGE[..42]));
    }

    #[test]
    fn verifiers_outside_the_rfc_grammar_are_refused_even_when_their_hash_matches() {
        for bad in ["a".repeat(42), "a".repeat(129), format!("{}+", "a".repeat(43)), format!("{}=", "a".repeat(43))] {
            assert!(!verify(&bad, &s256(&bad)), "{bad}");
        }
        let longest = "~".repeat(128);
        assert!(verify(&longest, &s256(&longest)));
    }
}
