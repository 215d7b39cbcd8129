//! The cache port: read-through caching of stored records, and invalidations that reach every replica.
//!
//! # Why two levels
//! A replica answers most requests from memory (L1: nanoseconds, but private to the process). Behind it a
//! shared store (L2, Redis in `rsp-cache`) lets a replica that has never seen a key skip the database when
//! another replica has loaded it, and carries invalidations between replicas. Without configuration the
//! platform runs one process with L1 only; the callers do not know which they have.
//!
//! # The model
//! The database is the truth. The cache is filled only from reads ([`Cache::get`] returns a
//! [`Lookup::Miss`] with a [`FillTicket`], the caller loads and [`Cache::put`]s the result); every write
//! to the database is followed by [`Cache::invalidate`], which drops the entry here, in L2 and, through the
//! adapter's channel, in every other replica's L1. A put whose ticket predates an invalidation of its kind
//! is dropped, so a slow read that started before a write cannot cache the old value after it.
//!
//! # Staleness bounds
//! - While the shared store is reachable, another replica stops serving an invalidated entry within the
//!   channel's delivery time (about a millisecond on a LAN; a test measures it).
//! - While it is not, each replica keeps serving its L1 for at most the kind's L1 TTL, and an adapter that
//!   loses its channel empties every L1 when it reconnects, because it may have missed invalidations.
//! - Negative entries ("the database has no such record") live for the kind's shorter negative TTL.
//!
//! Keys are free-form strings chosen by the caller; by convention they start with the tenant id and a
//! `/` (`acme/client-1`), so that [`Invalidation::Prefix`] with `acme/` drops a whole tenant.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

mod decoded;

pub use decoded::DecodedEntries;

/// What a cache entry describes: each kind has its own capacity and TTLs, and invalidations name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    /// Registered clients, keyed `tenant/client_id`.
    Client,
    /// A tenant's signing key set, keyed `tenant`.
    SigningKeys,
    /// Bearer tokens already verified, keyed by a hash of the token; cached no longer than their `exp`.
    VerifiedToken,
    /// Policy decisions, keyed by tenant, versions and request.
    Decision,
    /// Revocation state of a token id, keyed `tenant/jti`; mostly negative entries ("not revoked").
    Revocation,
    /// Invalidation only: a tenant's policies or entities changed, so every replica reloads its in-memory
    /// Cedar snapshot. Nothing of this kind is stored.
    PolicySnapshot,
}

impl CacheKind {
    pub const ALL: [Self; 6] =
        [Self::Client, Self::SigningKeys, Self::VerifiedToken, Self::Decision, Self::Revocation, Self::PolicySnapshot];

    /// The name used in store keys, channel messages and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::SigningKeys => "signing_keys",
            Self::VerifiedToken => "verified_token",
            Self::Decision => "decision",
            Self::Revocation => "revocation",
            Self::PolicySnapshot => "policy_snapshot",
        }
    }

    /// Whether entries of this kind are stored (every kind but [`CacheKind::PolicySnapshot`]).
    pub const fn is_stored(self) -> bool {
        !matches!(self, Self::PolicySnapshot)
    }
}

impl fmt::Display for CacheKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CacheKind {
    type Err = CacheError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s).ok_or_else(|| CacheError::UnknownKind(s.to_owned()))
    }
}

/// The longest key the cache accepts: keys name records, so a longer one is a caller's mistake (hash a
/// token rather than using it as its own key).
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a cache call was refused. Failures of the shared store are not errors: the cache degrades to L1 and
/// the loader, and says so in its metrics and logs.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache kind {kind} stores no entries: it only carries invalidations")]
    NotStored { kind: CacheKind },
    #[error("cache key is empty")]
    EmptyKey,
    #[error("cache key is {len} bytes long, more than {MAX_KEY_BYTES}")]
    KeyTooLong { len: usize },
    #[error("unknown cache kind {0:?}")]
    UnknownKind(String),
    #[error("cannot encode a {kind} entry: {reason}")]
    Encode { kind: CacheKind, reason: String },
}

/// Checks a key or key prefix against the port's rules.
pub fn check_key(key: &str) -> Result<(), CacheError> {
    match key.len() {
        0 => Err(CacheError::EmptyKey),
        len if len > MAX_KEY_BYTES => Err(CacheError::KeyTooLong { len }),
        _ => Ok(()),
    }
}

/// The answer of [`Cache::get`]. Its `Debug` shows sizes, never the cached bytes (they may be records
/// with secrets' hashes).
#[derive(Clone, PartialEq, Eq)]
pub enum Lookup {
    Hit(Bytes),
    /// A negative entry: the record was looked up recently and does not exist.
    Absent,
    /// Nothing cached: load the record and hand the result to [`Cache::put`] with this ticket.
    Miss(FillTicket),
}

/// What [`Cache::put`] stores. Its `Debug` shows sizes, never the bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum Cached {
    Value(Bytes),
    /// The record does not exist (a negative entry, kept for the kind's negative TTL).
    Absent,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hit(bytes) => write!(f, "Hit({} bytes)", bytes.len()),
            Self::Absent => f.write_str("Absent"),
            Self::Miss(ticket) => f.debug_tuple("Miss").field(ticket).finish(),
        }
    }
}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(bytes) => write!(f, "Value({} bytes)", bytes.len()),
            Self::Absent => f.write_str("Absent"),
        }
    }
}

/// Permission to fill one key, handed out by a miss. It remembers how many invalidations of its kind the
/// cache had seen, so a fill that an invalidation overtook is dropped instead of caching an old value.
/// It may carry a [`FillLease`], which other lookups of the key wait on while this one loads.
#[derive(Clone, Debug)]
pub struct FillTicket {
    kind: CacheKind,
    key: String,
    epoch: u64,
    lease: Option<FillLease>,
}

/// Held by the [`FillTicket`] of the one lookup that loads a key while concurrent lookups of it wait; what
/// releases them when the last copy of the ticket is gone (filled, or dropped by a loader that failed) is
/// the adapter's, behind this type.
#[derive(Clone)]
pub struct FillLease {
    /// Never read: held for what dropping its last copy does.
    _release_on_drop: Arc<dyn Send + Sync>,
}

impl FillLease {
    pub fn new(release_on_drop: impl Send + Sync + 'static) -> Self {
        Self { _release_on_drop: Arc::new(release_on_drop) }
    }
}

impl fmt::Debug for FillLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FillLease")
    }
}

/// Two tickets are equal when they permit the same fill; the lease is not part of that.
impl PartialEq for FillTicket {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.key, self.epoch) == (other.kind, &other.key, other.epoch)
    }
}

impl Eq for FillTicket {}

impl FillTicket {
    /// For adapters: `epoch` is their count of invalidations of `kind` when the lookup started.
    pub fn new(kind: CacheKind, key: impl Into<String>, epoch: u64) -> Self {
        Self { kind, key: key.into(), epoch, lease: None }
    }

    /// For adapters: the ticket of the lookup that leads the load of its key.
    pub fn leading(mut self, lease: FillLease) -> Self {
        self.lease = Some(lease);
        self
    }

    pub fn kind(&self) -> CacheKind {
        self.kind
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// What to drop. Serialized as the adapters' channel message (`{"scope":"key","kind":"client","key":…}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Invalidation {
    Key {
        kind: CacheKind,
        key: String,
    },
    /// Every key of `kind` starting with `prefix`, such as a tenant's (`acme/`).
    Prefix {
        kind: CacheKind,
        prefix: String,
    },
    Kind {
        kind: CacheKind,
    },
    /// Everything: sent when a replica may have missed invalidations (its channel was down).
    All,
}

impl Invalidation {
    pub fn key(kind: CacheKind, key: impl Into<String>) -> Self {
        Self::Key { kind, key: key.into() }
    }

    pub fn prefix(kind: CacheKind, prefix: impl Into<String>) -> Self {
        Self::Prefix { kind, prefix: prefix.into() }
    }

    /// The kind it is limited to; `None` for [`Invalidation::All`].
    pub fn kind(&self) -> Option<CacheKind> {
        match self {
            Self::Key { kind, .. } | Self::Prefix { kind, .. } | Self::Kind { kind } => Some(*kind),
            Self::All => None,
        }
    }

    /// Whether an entry of `kind` under `key` is dropped by this invalidation.
    pub fn affects(&self, kind: CacheKind, key: &str) -> bool {
        match self {
            Self::Key { kind: k, key: dropped } => *k == kind && dropped == key,
            Self::Prefix { kind: k, prefix } => *k == kind && key.starts_with(prefix.as_str()),
            Self::Kind { kind: k } => *k == kind,
            Self::All => true,
        }
    }

    /// Checks the key or prefix it carries.
    pub fn check(&self) -> Result<(), CacheError> {
        match self {
            Self::Key { key, .. } => check_key(key),
            Self::Prefix { prefix, .. } => check_key(prefix),
            Self::Kind { .. } | Self::All => Ok(()),
        }
    }
}

/// Where an invalidation came from, as seen by one replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A call of [`Cache::invalidate`] in this process.
    Local,
    /// Another replica, or this adapter itself after missing messages ([`Invalidation::All`]).
    Remote,
}

impl Origin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Remote => "remote",
        }
    }
}

/// One invalidation as heard by [`Cache::subscribe`]rs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidationNotice {
    pub invalidation: Invalidation,
    pub origin: Origin,
}

/// A byte-level cache of the kinds above, shared by every use case of a process (`Arc<dyn Cache>`).
#[async_trait]
pub trait Cache: Send + Sync + fmt::Debug {
    /// L1, then L2; a value found in L2 is copied into L1. Refuses keys [`check_key`] rejects and kinds that
    /// store nothing.
    async fn get(&self, kind: CacheKind, key: &str) -> Result<Lookup, CacheError>;

    /// Stores what the caller loaded after a miss, for the kind's TTL, or `ttl` when that is shorter (a
    /// verified token lives no longer than its `exp`). Dropped when an invalidation of the ticket's kind
    /// happened since the miss.
    async fn put(&self, ticket: FillTicket, value: Cached, ttl: Option<Duration>);

    /// Drops entries here and in L2, and tells every other replica to drop them from its L1. Returns once
    /// the local copies are gone; if the shared store cannot be reached, the adapter retries in the
    /// background until it can.
    async fn invalidate(&self, invalidation: Invalidation) -> Result<(), CacheError>;

    /// Every invalidation this replica applies, local or remote, for in-memory structures kept outside the
    /// cache (parsed key rings, Cedar snapshots). A subscriber may hear one invalidation more than once, so
    /// its handling must be idempotent; a lagging receiver (`RecvError::Lagged`) must act as if it had
    /// heard [`Invalidation::All`].
    fn subscribe(&self) -> broadcast::Receiver<InvalidationNotice>;
}

/// Typed helpers over [`Cache`]: values travel as JSON, and a loader's `None` becomes a negative entry.
pub trait CacheExt: Cache {
    /// Read-through: the cached value, or `load`'s result, which is then cached (a `None` negatively).
    /// An entry that no longer decodes as `T` (written by another version) is dropped and reloaded.
    fn get_or_load<T, E, F, Fut>(
        &self,
        kind: CacheKind,
        key: &str,
        load: F,
    ) -> impl Future<Output = Result<Option<T>, E>> + Send
    where
        T: Serialize + DeserializeOwned + Send,
        E: From<CacheError> + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Option<T>, E>> + Send,
    {
        self.get_or_load_with_ttl(kind, key, |_| None, load)
    }

    /// As [`CacheExt::get_or_load`], for a record stored as `T` and used as `U` (`into` converts), shared:
    /// a hit on an entry `decoded` has seen before returns the value decoded then (see [`DecodedEntries`]).
    fn get_or_load_decoded<T, U, E, F, Fut>(
        &self,
        decoded: &DecodedEntries<U>,
        kind: CacheKind,
        key: &str,
        into: fn(T) -> U,
        load: F,
    ) -> impl Future<Output = Result<Option<Arc<U>>, E>> + Send
    where
        T: Serialize + DeserializeOwned + Send,
        U: Send + Sync,
        E: From<CacheError> + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Option<T>, E>> + Send,
    {
        async move {
            let ticket = match self.get(kind, key).await? {
                Lookup::Absent => return Ok(None),
                Lookup::Hit(bytes) => {
                    if let Some(value) = decoded.get(key, &bytes) {
                        return Ok(Some(value));
                    }
                    match serde_json::from_slice(&bytes) {
                        Ok(record) => {
                            let value = Arc::new(into(record));
                            decoded.keep(key, bytes, Arc::clone(&value));
                            return Ok(Some(value));
                        }
                        Err(_) => {
                            self.invalidate(Invalidation::key(kind, key)).await?;
                            return Ok(load().await?.map(|record| Arc::new(into(record))));
                        }
                    }
                }
                Lookup::Miss(ticket) => ticket,
            };
            let loaded = load().await?;
            let (entry, ttl) = entry_of(kind, loaded.as_ref(), |_| None)?;
            self.put(ticket, entry, ttl).await;
            Ok(loaded.map(|record| Arc::new(into(record))))
        }
    }

    /// As [`CacheExt::get_or_load`], with a per-value TTL (capped by the kind's), such as the time left
    /// until a token's `exp`.
    fn get_or_load_with_ttl<T, E, F, Fut, L>(
        &self,
        kind: CacheKind,
        key: &str,
        ttl: L,
        load: F,
    ) -> impl Future<Output = Result<Option<T>, E>> + Send
    where
        T: Serialize + DeserializeOwned + Send,
        E: From<CacheError> + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Option<T>, E>> + Send,
        L: FnOnce(&T) -> Option<Duration> + Send,
    {
        async move {
            let ticket = match self.get(kind, key).await? {
                Lookup::Absent => return Ok(None),
                Lookup::Hit(bytes) => match serde_json::from_slice(&bytes) {
                    Ok(value) => return Ok(Some(value)),
                    Err(_) => {
                        // An entry of another shape: drop it everywhere and serve this read from the loader.
                        self.invalidate(Invalidation::key(kind, key)).await?;
                        return load().await;
                    }
                },
                Lookup::Miss(ticket) => ticket,
            };
            let loaded = load().await?;
            let (entry, ttl) = entry_of(kind, loaded.as_ref(), ttl)?;
            self.put(ticket, entry, ttl).await;
            Ok(loaded)
        }
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

/// What fills a missed entry, from what the loader found: the value as JSON with its TTL, or a negative
/// entry.
fn entry_of<T: Serialize>(
    kind: CacheKind,
    loaded: Option<&T>,
    ttl: impl FnOnce(&T) -> Option<Duration>,
) -> Result<(Cached, Option<Duration>), CacheError> {
    match loaded {
        Some(value) => {
            let bytes = serde_json::to_vec(value).map_err(|e| CacheError::Encode { kind, reason: e.to_string() })?;
            Ok((Cached::Value(Bytes::from(bytes)), ttl(value)))
        }
        None => Ok((Cached::Absent, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in CacheKind::ALL {
            assert_eq!(kind.as_str().parse::<CacheKind>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::Value::from(kind.as_str()));
        }
        assert!(matches!("clients".parse::<CacheKind>(), Err(CacheError::UnknownKind(_))));
        assert!(!CacheKind::PolicySnapshot.is_stored());
    }

    #[test]
    fn keys_are_checked() {
        assert!(matches!(check_key(""), Err(CacheError::EmptyKey)));
        assert!(matches!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)), Err(CacheError::KeyTooLong { .. })));
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(Invalidation::prefix(CacheKind::Client, "").check().is_err());
        assert!(Invalidation::All.check().is_ok());
    }

    #[test]
    fn invalidations_say_what_they_drop() {
        let key = Invalidation::key(CacheKind::Client, "acme/c1");
        assert!(key.affects(CacheKind::Client, "acme/c1"));
        assert!(!key.affects(CacheKind::Client, "acme/c10"));
        assert!(!key.affects(CacheKind::Decision, "acme/c1"));
        let tenant = Invalidation::prefix(CacheKind::Client, "acme/");
        assert!(tenant.affects(CacheKind::Client, "acme/c1"));
        assert!(!tenant.affects(CacheKind::Client, "acmex/c1"));
        assert!(Invalidation::Kind { kind: CacheKind::Decision }.affects(CacheKind::Decision, "x"));
        assert!(Invalidation::All.affects(CacheKind::Revocation, "x"));
        assert_eq!(Invalidation::All.kind(), None);
    }

    #[test]
    fn cached_bytes_never_reach_debug_output() {
        let secret = Bytes::from_static(b"hash-of-a-secret");
        assert_eq!(format!("{:?}", Lookup::Hit(secret.clone())), "Hit(16 bytes)");
        assert_eq!(format!("{:?}", Cached::Value(secret)), "Value(16 bytes)");
    }

    #[test]
    fn invalidations_have_a_stable_wire_shape() {
        let json = serde_json::to_value(Invalidation::key(CacheKind::SigningKeys, "acme")).unwrap();
        assert_eq!(json, serde_json::json!({"scope": "key", "kind": "signing_keys", "key": "acme"}));
        let all: Invalidation = serde_json::from_value(serde_json::json!({"scope": "all"})).unwrap();
        assert_eq!(all, Invalidation::All);
    }
}
