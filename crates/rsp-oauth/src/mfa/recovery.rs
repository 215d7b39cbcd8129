//! Recovery codes: ten per enrolment, each 50 random bits shown as `xxxxx-xxxxx` (lower-case base32, no
//! 0/1/8/9 to confuse with letters), stored only as keyed hashes and spent by deleting the row.
//! 50 bits are plenty behind the same per-account back-off as TOTP codes.

use rsp_core::{TenantId, UserId};

use crate::crypto::SecretHasher;
use crate::crypto::random::random_bytes;

/// How many codes an enrolment gets.
pub const RECOVERY_CODE_COUNT: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const CHARS: usize = 10;

/// `RECOVERY_CODE_COUNT` fresh codes for display.
pub fn generate() -> Vec<String> {
    (0..RECOVERY_CODE_COUNT).map(|_| one()).collect()
}

fn one() -> String {
    let bytes = random_bytes::<CHARS>();
    let chars: String =
        bytes.iter().map(|b| char::from(ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'a'))).collect();
    let (left, right) = chars.split_at(CHARS / 2);
    format!("{left}-{right}")
}

/// What a user typed, as stored: spaces and dashes dropped, lower case. `None` when it cannot be a code.
pub fn normalise(input: &str) -> Option<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    (code.len() == CHARS && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The stored form: a keyed hash bound to the user, so a hash copied to another user never matches.
pub fn hash(hasher: &SecretHasher, tenant: &TenantId, user: &UserId, normalised: &str) -> String {
    hasher.hash(&format!("recovery:{tenant}/{user}:{normalised}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_survive_retyping() {
        let codes = generate();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT);
        for code in &codes {
            assert_eq!(code.len(), 11);
            let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
            assert_eq!(normalise(&typed).as_deref(), Some(code.replace('-', "").as_str()));
        }
        assert_eq!(normalise("123456"), None);
        assert_eq!(normalise("abcde-abcd1"), None);
    }
}
