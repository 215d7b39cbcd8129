//! OAuth scopes: RFC 6749 §3.3 scope tokens, kept as a sorted set so comparisons are cheap and the
//! rendered string is canonical.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A single scope token: `1*( %x21 / %x23-5B / %x5D-7E )`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope tokens may not be empty")]
    Empty,
    #[error("scope token {0:?} contains a character RFC 6749 section 3.3 does not allow")]
    Charset(String),
    #[error("scope token is longer than 128 characters")]
    TooLong,
    #[error("more than 64 scope tokens")]
    TooMany,
}

impl Scope {
    pub fn parse(value: impl Into<String>) -> Result<Self, ScopeError> {
        let value = value.into();
        if value.is_empty() {
            return Err(ScopeError::Empty);
        }
        if value.len() > 128 {
            return Err(ScopeError::TooLong);
        }
        let allowed = |c: char| c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c);
        if !value.chars().all(allowed) {
            return Err(ScopeError::Charset(value));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scope {
    type Error = ScopeError;
    fn try_from(value: String) -> Result<Self, ScopeError> {
        Self::parse(value)
    }
}

impl From<Scope> for String {
    fn from(value: Scope) -> String {
        value.0
    }
}

/// A set of scopes, rendered space-separated in sorted order.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// The largest number of scope tokens one request or client may carry.
    pub const MAX_TOKENS: usize = 64;

    /// Parses a space-delimited scope parameter. Repeated tokens collapse; more than one space between
    /// tokens, or a leading or trailing space, is a syntax error as RFC 6749 §3.3 defines exactly one.
    pub fn parse(value: &str) -> Result<Self, ScopeError> {
        if value.is_empty() {
            return Ok(Self::default());
        }
        let mut set = BTreeSet::new();
        for token in value.split(' ') {
            set.insert(Scope::parse(token)?);
            if set.len() > Self::MAX_TOKENS {
                return Err(ScopeError::TooMany);
            }
        }
        Ok(Self(set))
    }

    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The scopes of `self` that `other` lacks.
    pub fn difference<'a>(&'a self, other: &'a ScopeSet) -> impl Iterator<Item = &'a Scope> {
        self.0.difference(&other.0)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl TryFrom<String> for ScopeSet {
    type Error = ScopeError;
    fn try_from(value: String) -> Result<Self, ScopeError> {
        Self::parse(&value)
    }
}

impl From<ScopeSet> for String {
    fn from(value: ScopeSet) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_canonically() {
        let set = ScopeSet::parse("b a b").unwrap();
        assert_eq!(set.to_string(), "a b");
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_what_rfc_6749_forbids() {
        for bad in ["a  b", " a", "a ", "a\"b", "a\\b", "é"] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
