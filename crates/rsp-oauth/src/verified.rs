//! A cache of bearer tokens already verified, so the platform's own APIs (decisions above all) pay for a
//! signature check and a revocation lookup once per token rather than once per request.
//!
//! It stays in process (it holds parsed claims, keyed by a digest of the token, which must never reach a
//! shared store). An entry is trusted until the token's `exp`, and never across a revocation: a revocation on this
//! instance empties the cache before the revoking request returns, and every revocation heard through the
//! cache port's invalidation notices (another replica's, or a lagged channel) empties it too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use rsp_core::UnixTime;

use crate::token::AccessClaims;

/// Bounds memory; when full the cache starts over, which costs one verification per live token.
const CAPACITY: usize = 50_000;

/// A token's key here: its SHA-256, not its text. The process then holds no usable bearer token (a heap
/// dump or a core file shows none), and an entry is the size of its claims rather than also of a ~450-byte
/// token (50,000 of them were most of the server's memory after a load of fresh tokens, BENCHMARKS.md). A
/// collision, which would lend one token another's claims, is as out of reach as a SHA-256 collision.
type TokenDigest = [u8; 32];

fn digest_of(token: &str) -> TokenDigest {
    let mut key = [0; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    key
}

#[derive(Debug, Default)]
pub struct VerifiedTokens {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<TokenDigest, Arc<AccessClaims>>,
    /// Counts [`VerifiedTokens::clear`] calls, so a verification that started before a revocation cannot
    /// store its (then stale) answer after the revocation emptied the cache.
    generation: u64,
}

impl VerifiedTokens {
    /// The claims of `token` if it was verified before and has not expired at `now`.
    pub fn get(&self, token: &str, now: UnixTime) -> Option<Arc<AccessClaims>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.entries.get(&digest_of(token)).filter(|claims| claims.exp > now.0).cloned()
    }

    /// The generation to hand to [`VerifiedTokens::insert`]: read it before checking revocation.
    pub fn generation(&self) -> u64 {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Remembers `token` unless the cache was cleared since `generation` was read.
    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>, generation: u64) {
        let key = digest_of(token);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.entries.clear();
        }
        inner.entries.insert(key, claims);
    }

    /// Forgets everything: called on every revocation, local or heard from another replica.
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.entries.clear();
        inner.generation = inner.generation.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            client_id: "c".into(),
            scope: None,
            jti: "j".into(),
            iat: 0,
            exp,
            auth_time: None,
            acr: None,
            amr: None,
        })
    }

    #[test]
    fn an_entry_lives_until_exp_and_not_across_a_clear() {
        let cache = VerifiedTokens::default();
        cache.insert("t", claims(10), cache.generation());
        assert!(cache.get("t", UnixTime(9)).is_some());
        assert!(cache.get("t", UnixTime(10)).is_none());
        cache.clear();
        assert!(cache.get("t", UnixTime(9)).is_none());
    }

    #[test]
    fn a_verification_overtaken_by_a_clear_is_not_stored() {
        let cache = VerifiedTokens::default();
        let before = cache.generation();
        cache.clear();
        cache.insert("t", claims(10), before);
        assert!(cache.get("t", UnixTime(1)).is_none());
        cache.insert("t", claims(10), cache.generation());
        assert!(cache.get("t", UnixTime(1)).is_some());
    }

    #[test]
    fn tokens_are_kept_by_digest_never_as_text() {
        let cache = VerifiedTokens::default();
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzIn0.c2lnbmF0dXJl";
        cache.insert(token, claims(10), cache.generation());
        assert!(cache.get(token, UnixTime(1)).is_some());
        assert!(cache.get(&format!("{token}x"), UnixTime(1)).is_none(), "another token is another entry");
        assert!(!format!("{cache:?}").contains(token), "the token's text is held");
    }
}
