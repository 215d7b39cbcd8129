//! What a new password and a username must be. Passwords follow NIST SP 800-63B: a length range, any
//! Unicode, no composition rules, no truncation, and a refusal of the most common choices. The upper bound
//! is checked before anything else so an oversized input never reaches the hasher.

use rsp_core::{Secret, Username};

/// Fewest characters of a new password (with MFA NIST allows 8; without, it recommends 15, which a
/// tenant's policy may require later).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most bytes of any password, new or presented at login.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The most common passwords of public breach corpora that satisfy the length rule; refusing them stops
/// the first guesses of every spraying tool. A full breached-password check (k-anonymity lookups) can
/// replace this list.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password!",
    "passw0rd",
    "p@ssw0rd",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
    "87654321",
    "11111111",
    "00000000",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "1q2w3e4r",
    "1qaz2wsx",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "abc12345",
    "abcd1234",
    "admin123",
    "administrator",
    "letmein1",
    "trustno1",
    "superman",
    "starwars",
    "whatever",
    "dragon12",
    "monkey12",
    "changeme",
    "zaq12wsx",
    "asdfghjk",
    "aa123456",
];

/// Why a password was refused; the message is shown to administrators and users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("password is too common; choose another")]
    Common,
    #[error("password must not be the username")]
    SameAsUsername,
}

/// Checks a password about to be set for `username`.
pub fn check_new_password(password: &Secret, username: &Username) -> Result<(), PasswordError> {
    let text = password.expose();
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if text.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let folded = text.to_lowercase();
    if COMMON_PASSWORDS.contains(&folded.as_str()) {
        return Err(PasswordError::Common);
    }
    if folded == username.folded() {
        return Err(PasswordError::SameAsUsername);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str) -> Result<(), PasswordError> {
        check_new_password(&Secret::new(password), &Username::parse("Walter").unwrap())
    }

    #[test]
    fn length_decides_not_composition() {
        assert!(check("correct horse battery staple").is_ok());
        assert!(check(&"ü€😀".repeat(21)).is_ok(), "a 63-character Unicode passphrase");
        assert!(check(&"€".repeat(64)).is_ok(), "a 64-character Unicode passphrase");
        assert_eq!(check("7chars!"), Err(PasswordError::TooShort));
        assert_eq!(check(&"a".repeat(1025)), Err(PasswordError::TooLong));
        assert!(check(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn common_passwords_and_the_username_are_refused() {
        assert_eq!(check("password1"), Err(PasswordError::Common));
        assert_eq!(check("PassWord1"), Err(PasswordError::Common));
        assert_eq!(check("WALTER"), Err(PasswordError::TooShort));
        let long_name = Username::parse("walter.white").unwrap();
        assert_eq!(check_new_password(&Secret::new("Walter.White"), &long_name), Err(PasswordError::SameAsUsername));
    }
}
