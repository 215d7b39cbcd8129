//! End users of a tenant: the people who sign in with a username and password (and later TOTP).
//!
//! A user's `UserId` is the stable `sub` of every token and ID token issued for them; the username may
//! change. Usernames compare case-insensitively: each record keeps the name as typed and a folded copy
//! that the unique index and the login lookup use.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{EventKind, IdError, TenantId, UnixTime};

impl EventKind {
    pub const USER_CREATED: Self = Self::new("user.created");
    pub const USER_UPDATED: Self = Self::new("user.updated");
    pub const USER_DELETED: Self = Self::new("user.deleted");
    /// The password was set by an administrator, changed by its user, or upgraded to stronger hash
    /// parameters at login.
    pub const USER_PASSWORD_CHANGED: Self = Self::new("user.password_changed");
}

/// A user's id: 128 random bits in lowercase hex (32 digits), assigned by the server, never reused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub const LEN: usize = 32;

    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        if value.len() != Self::LEN {
            return Err(IdError::Length { kind: "user id", max: Self::LEN });
        }
        if !value.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            return Err(IdError::Charset { kind: "user id", allowed: "lowercase hexadecimal digits" });
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UserId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> Self {
        value.0
    }
}

/// Why a username was refused; the message is shown to API callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must be 1 to {max} characters after trimming", max = Username::MAX_CHARS)]
    Length,
    #[error("username may not contain control characters")]
    Control,
}

/// A username as typed (trimmed) and its case-folded form, which is what makes two names the same.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Username {
    display: String,
    folded: String,
}

impl Username {
    pub const MAX_CHARS: usize = 128;

    /// Trims the value and checks it; Unicode is allowed and not normalised (NFC is not required).
    pub fn parse(value: &str) -> Result<Self, UsernameError> {
        let display = value.trim();
        let chars = display.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(UsernameError::Length);
        }
        if display.chars().any(char::is_control) {
            return Err(UsernameError::Control);
        }
        Ok(Self { display: display.to_owned(), folded: Self::fold(display) })
    }

    /// The comparison form: lowercase by Unicode's default case mapping.
    pub fn fold(value: &str) -> String {
        value.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

/// A stored user. `Debug` leaves out the password hash: not a plaintext secret, but offline-attack
/// material that has no business in a log. (The TOTP enrolment lives apart, in [`crate::mfa`].)
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub username: Username,
    /// The PHC string of an Argon2id hash; `None` for a user who has no password yet (cannot log in).
    pub password_hash: Option<String>,
    /// When set, the user cannot sign in; the record and its id are kept.
    pub disabled_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub password_changed_at: Option<UnixTime>,
}

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("username", &self.username.as_str())
            .field("has_password", &self.password_hash.is_some())
            .field("disabled_at", &self.disabled_at)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("password_changed_at", &self.password_changed_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_bounded_and_folded() {
        let name = Username::parse("  Alice.Smith ").unwrap();
        assert_eq!((name.as_str(), name.folded()), ("Alice.Smith", "alice.smith"));
        assert_eq!(Username::parse("ÄLICE").unwrap().folded(), Username::parse("älice").unwrap().folded());
        assert_eq!(Username::parse("   "), Err(UsernameError::Length));
        assert!(Username::parse(&"é".repeat(128)).is_ok(), "the limit counts characters, not bytes");
        assert_eq!(Username::parse(&"a".repeat(129)), Err(UsernameError::Length));
        assert_eq!(Username::parse("a\u{0}b"), Err(UsernameError::Control));
    }

    #[test]
    fn user_ids_are_32_lowercase_hex_digits() {
        assert!(UserId::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(UserId::parse("0123456789ABCDEF0123456789abcdef").is_err());
        assert!(UserId::parse("../etc").is_err());
        assert!(UserId::parse("").is_err());
    }

    #[test]
    fn debug_never_shows_the_hash() {
        let user = User {
            tenant_id: TenantId::default_tenant(),
            user_id: UserId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            username: Username::parse("bob").unwrap(),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            disabled_at: None,
            created_at: UnixTime(1),
            updated_at: UnixTime(1),
            password_changed_at: None,
        };
        let debug = format!("{user:?}");
        assert!(!debug.contains("argon2"), "{debug}");
    }
}
