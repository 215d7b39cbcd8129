//! Identifiers, validated once at the edge so the rest of the code can trust them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused; the message is shown to API callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be 1 to {max} characters")]
    Length { kind: &'static str, max: usize },
    #[error("{kind} may contain only {allowed}")]
    Charset { kind: &'static str, allowed: &'static str },
}

fn check(
    kind: &'static str,
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() || value.len() > max {
        return Err(IdError::Length { kind, max });
    }
    if !value.chars().all(ok) {
        return Err(IdError::Charset { kind, allowed });
    }
    Ok(())
}

/// A tenant's id: lowercase letters, digits and dashes, starting with a letter or digit, at most 63
/// characters, so it is safe in a URL path segment and a DNS label alike.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check("tenant id", &value, 63, "lowercase letters, digits and dashes", |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        })?;
        if value.starts_with('-') || value.ends_with('-') {
            return Err(IdError::Charset {
                kind: "tenant id",
                allowed: "lowercase letters, digits and dashes, not starting or ending with a dash",
            });
        }
        Ok(Self(value))
    }

    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's id. The server assigns them (RFC 9700 §4.15.1: a client must not pick an id that could pass
/// for a user's `sub`), but the parser accepts any visible ASCII (RFC 6749 Appendix A.1, VSCHAR) so that
/// lookups of foreign ids fail as "unknown client" rather than as a syntax error.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check("client id", &value, 128, "visible ASCII characters", |c| ('\x20'..='\x7e').contains(&c))?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A signing key's id (`kid`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check("key id", &value, 64, "letters, digits, '-' and '_'", |c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        })?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A token's unique id (`jti`), the handle revocation is recorded under.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);

impl TokenId {
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check("token id", &value, 64, "letters, digits, '-' and '_'", |c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        })?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    )*};
}

string_newtype_impls!(TenantId, ClientId, KeyId, TokenId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_documented_alphabet() {
        assert!(TenantId::parse("acme-2").is_ok());
        for bad in ["", "Acme", "a_b", "-a", "a-", "a/b", "ä", &"a".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn client_ids_refuse_control_characters() {
        assert!(ClientId::parse("abc").is_ok());
        assert!(ClientId::parse("a\nb").is_err());
        assert!(ClientId::parse("").is_err());
    }
}
