//! [`DecisionCache`]: decisions remembered by (tenant, policy version, entity version, request bytes).
//!
//! Because both versions are part of the key, installing new policies or entities makes every older
//! entry unreachable at once: no invalidation step exists that could be missed, so a write can never be
//! followed by a stale decision. Unreachable entries are dropped when their shard fills up.
//!
//! The cache is deliberately simple (shards of `Mutex<HashMap>`, each cleared when full): a decision
//! costs microseconds, so the cache pays off for hot repeated requests, and an occasional clear is cheap.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rsp_core::TenantId;

use crate::decision::{Decision, authorize};
use crate::engine::Snapshot;
use crate::error::RequestError;
use crate::request::DecisionRequest;

/// Shards spread lock contention across cores; a power of two is not needed, a handful is enough.
const SHARDS: usize = 16;

/// What a cached decision is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    tenant: TenantId,
    policy_version: u64,
    entity_version: u64,
    request: Box<[u8]>,
}

impl CacheKey {
    /// The key of `request` against `snapshot`; `None` when the request carries entities (its decision
    /// depends on more than the key could say).
    pub fn new(snapshot: &Snapshot, request: &DecisionRequest) -> Option<Self> {
        Some(Self {
            tenant: snapshot.tenant().clone(),
            policy_version: snapshot.policy_version(),
            entity_version: snapshot.entity_version(),
            request: request.canonical_bytes()?.into_boxed_slice(),
        })
    }
}

/// Counters since the cache was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries held now (including unreachable ones from older versions).
    pub entries: usize,
}

/// A bounded map from [`CacheKey`] to [`Decision`], safe to share between threads. Decisions are shared
/// (`Arc`), so a hit copies no policy ids: a batch of cache hits spent a tenth of its time cloning them.
pub struct DecisionCache {
    shards: Vec<Mutex<HashMap<CacheKey, Arc<Decision>>>>,
    shard_capacity: usize,
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DecisionCache {
    /// A cache of about `capacity` entries; 0 switches caching off: every request is evaluated, no key
    /// is built or looked up, and each evaluation counts as a miss.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_capacity: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached decision for `request` against `snapshot`, or a fresh one (then cached). Requests that
    /// carry entities are decided without the cache and not counted.
    pub fn authorize(&self, snapshot: &Snapshot, request: &DecisionRequest) -> Result<Arc<Decision>, RequestError> {
        if self.shard_capacity == 0 {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return authorize(snapshot, request).map(Arc::new);
        }
        let Some(key) = CacheKey::new(snapshot, request) else {
            return authorize(snapshot, request).map(Arc::new);
        };
        if let Some(decision) = self.get(&key) {
            return Ok(decision);
        }
        let decision = Arc::new(authorize(snapshot, request)?);
        self.insert(key, Arc::clone(&decision));
        Ok(decision)
    }

    /// Looks a key up, counting the hit or miss.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<Decision>> {
        let found = self.shard(key).and_then(|shard| shard.get(key).cloned());
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn insert(&self, key: CacheKey, decision: Arc<Decision>) {
        if self.shard_capacity == 0 {
            return;
        }
        if let Some(mut shard) = self.shard(&key) {
            if shard.len() >= self.shard_capacity && !shard.contains_key(&key) {
                shard.clear();
            }
            shard.insert(key, decision);
        }
    }

    /// Drops a tenant's entries, for when the tenant is removed (its versions may start again).
    pub fn remove_tenant(&self, tenant: &TenantId) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).retain(|key, _| &key.tenant != tenant);
        }
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.shards.iter().map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len()).sum(),
        }
    }

    /// The key's shard, locked. A poisoned lock is taken anyway: a map of finished decisions is never
    /// left half-written by a panic.
    fn shard(&self, key: &CacheKey) -> Option<MutexGuard<'_, HashMap<CacheKey, Arc<Decision>>>> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or_default();
        Some(self.shards.get(index)?.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionCache")
            .field("capacity", &(self.shard_capacity * SHARDS))
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests;
