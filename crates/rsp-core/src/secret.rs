//! Secrets that must never reach a log, a `Debug` string or a non-constant-time comparison.

use std::fmt;

/// A secret string: client secrets, tokens on their way in, master keys. `Debug` prints a redaction and
/// there is deliberately no `PartialEq`, so comparing one needs an explicit constant-time call.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's text, for the few places that must use it (hashing, sending it to its owner once).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Compile-time proof that `Secret` has no `PartialEq`: if it had one, the item below would be ambiguous
/// and the crate would not compile (the technique of `static_assertions::assert_not_impl_any!`).
const _: fn() = || {
    trait AmbiguousIfPartialEq<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfPartialEq<()> for T {}
    impl<T: ?Sized + PartialEq> AmbiguousIfPartialEq<u8> for T {}
    let _ = <Secret as AmbiguousIfPartialEq<_>>::some_item;
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
