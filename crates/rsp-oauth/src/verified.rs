//! A cache of bearer tokens already verified, so the platform's own APIs (decisions above all) pay for a
//! signature check and a revocation lookup once per token rather than once per request.
//!
//! An entry is trusted until the token's `exp`, and never across a revocation: any revocation on this
//! instance empties the cache, so a revoked token is refused on the very next request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rsp_core::UnixTime;

use crate::token::AccessClaims;

/// Bounds memory; when full the cache starts over, which costs one verification per live token.
const CAPACITY: usize = 50_000;

#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: RwLock<HashMap<Box<str>, Arc<AccessClaims>>>,
}

impl VerifiedTokens {
    /// The claims of `token` if it was verified before and has not expired at `now`.
    pub fn get(&self, token: &str, now: UnixTime) -> Option<Arc<AccessClaims>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(token).filter(|claims| claims.exp > now.0).cloned()
    }

    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(token.into(), claims);
    }

    /// Forgets everything: called on every revocation.
    pub fn clear(&self) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
