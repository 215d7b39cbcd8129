//! RFC 6238 Appendix B (TOTP-4), the acceptance window (TOTP-5.2a) and the secret's shape (TOTP-5.1).

use super::*;

const SEED_SHA1: &[u8] = b"12345678901234567890";
const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

fn appendix_b(time: i64, hash: TotpHash) -> String {
    let seed = match hash {
        TotpHash::Sha1 => SEED_SHA1,
        TotpHash::Sha256 => SEED_SHA256,
        TotpHash::Sha512 => SEED_SHA512,
    };
    code(seed, step_at(UnixTime(time)), hash, 8)
}

#[test]
fn rfc_6238_appendix_b_vectors_pass_with_a_64_bit_counter() {
    let table: [(i64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];
    for (time, sha1, sha256, sha512) in table {
        assert_eq!(appendix_b(time, TotpHash::Sha1), sha1, "SHA-1 at {time}");
        assert_eq!(appendix_b(time, TotpHash::Sha256), sha256, "SHA-256 at {time}");
        assert_eq!(appendix_b(time, TotpHash::Sha512), sha512, "SHA-512 at {time}");
    }
}

#[test]
fn rfc_4226_appendix_d_six_digit_codes() {
    let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
    for (counter, want) in expected.iter().enumerate() {
        assert_eq!(code(SEED_SHA1, counter as i64, TotpHash::Sha1, 6), *want);
    }
}

#[test]
fn codes_of_the_previous_current_and_next_step_pass_and_no_others() {
    let secret = TotpSecret::generate();
    let now = UnixTime(1_800_000_015);
    let current = step_at(now);
    for offset in [-1, 0, 1] {
        let submitted = secret.code_at_step(current + offset);
        assert_eq!(secret.matching_step(&submitted, now), Some(current + offset), "T{offset:+}");
    }
    for offset in [-2, 2] {
        let submitted = secret.code_at_step(current + offset);
        // A code of T±2 may by chance equal one inside the window (1 in 10^6); then it is that step's code.
        let inside = (-1..=1).any(|o| secret.code_at_step(current + o) == submitted);
        assert_eq!(secret.matching_step(&submitted, now).is_some(), inside, "T{offset:+}");
    }
    assert_eq!(secret.matching_step("", now), None);
    assert_eq!(secret.matching_step("12345", now), None);
}

#[test]
fn the_secret_is_20_csprng_bytes_in_base32_and_never_in_debug() {
    let secret = TotpSecret::generate();
    assert_eq!(secret.expose().len(), SECRET_BYTES);
    assert_ne!(secret.expose(), TotpSecret::generate().expose());
    let text = secret.to_base32();
    assert_eq!(text.len(), 32, "20 bytes are 32 base32 characters");
    assert!(text.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
    let debug = format!("{secret:?}");
    assert!(!debug.contains(&text) && debug.contains("redacted"), "{debug}");
}

#[test]
fn base32_matches_rfc_4648_test_vectors() {
    for (input, want) in [
        ("", ""),
        ("f", "MY"),
        ("fo", "MZXQ"),
        ("foo", "MZXW6"),
        ("foob", "MZXW6YQ"),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI"),
    ] {
        assert_eq!(base32(input.as_bytes()), want);
    }
}

#[test]
fn the_key_uri_names_issuer_and_account_escaped() {
    let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
    let uri = otpauth_uri("Acme Corp", "bob@example.com", &secret);
    assert_eq!(
        uri,
        "otpauth://totp/Acme%20Corp:bob%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Corp\
         &algorithm=SHA1&digits=6&period=30"
    );
}
