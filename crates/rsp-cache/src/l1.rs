//! L1: one moka cache per stored kind, bounded in bytes, TinyLFU admission, a TTL per entry; the per-kind
//! invalidation counters behind [`FillTicket`]s; and the coalescing of concurrent misses ([`InFlight`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache as Moka;
use rsp_core::cache::{CacheError, CacheKind, Cached, FillTicket, Invalidation};

use crate::config::{CacheConfig, KindConfig};
use crate::in_flight::{InFlight, Turn};

/// What a lookup in L1 found.
pub(crate) enum Looked {
    Found(Cached),
    /// Nothing: fill with this ticket (which leads the load when no other lookup of the key was loading).
    Missed(FillTicket),
}

#[derive(Clone, Debug)]
struct Entry {
    cached: Cached,
    /// Fixed when the entry is filled: the kind's TTL, or less for a value that expires sooner.
    ttl: Duration,
}

/// Expires each entry after its own `ttl`.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _updated_at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

struct Slot {
    entries: Moka<String, Entry>,
    /// Invalidations of this kind applied so far; a fill whose ticket carries an older count is dropped.
    epoch: AtomicU64,
    config: KindConfig,
}

/// Sizes only: moka's own `Debug` would print every cached value.
impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("entries", &self.entries.entry_count())
            .field("bytes", &self.entries.weighted_size())
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish()
    }
}

impl Slot {
    fn new(kind: CacheKind, config: &KindConfig) -> Self {
        let entries = Moka::builder()
            .name(kind.as_str())
            .max_capacity(config.l1_max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                let value = match &entry.cached {
                    Cached::Value(bytes) => bytes.len(),
                    Cached::Absent => 0,
                };
                // Moka's own bookkeeping per entry is in the order of a hundred bytes.
                u32::try_from(key.len().saturating_add(value).saturating_add(128)).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .build();
        Self { entries, epoch: AtomicU64::new(0), config: config.clone() }
    }
}

/// The in-process level, shared by [`crate::LocalCache`] and [`crate::TwoLevelCache`].
#[derive(Debug)]
pub(crate) struct L1 {
    client: Slot,
    signing_keys: Slot,
    verified_token: Slot,
    decision: Slot,
    revocation: Slot,
    in_flight: InFlight,
}

impl L1 {
    pub(crate) fn new(config: &CacheConfig) -> Self {
        Self {
            client: Slot::new(CacheKind::Client, &config.client),
            signing_keys: Slot::new(CacheKind::SigningKeys, &config.signing_keys),
            verified_token: Slot::new(CacheKind::VerifiedToken, &config.verified_token),
            decision: Slot::new(CacheKind::Decision, &config.decision),
            revocation: Slot::new(CacheKind::Revocation, &config.revocation),
            in_flight: InFlight::default(),
        }
    }

    fn slot(&self, kind: CacheKind) -> Option<&Slot> {
        match kind {
            CacheKind::Client => Some(&self.client),
            CacheKind::SigningKeys => Some(&self.signing_keys),
            CacheKind::VerifiedToken => Some(&self.verified_token),
            CacheKind::Decision => Some(&self.decision),
            CacheKind::Revocation => Some(&self.revocation),
            CacheKind::PolicySnapshot => None,
        }
    }

    fn slots(&self) -> [&Slot; 5] {
        [&self.client, &self.signing_keys, &self.verified_token, &self.decision, &self.revocation]
    }

    /// A ticket for a lookup of `key` that starts now. Take it before reading either level.
    pub(crate) fn ticket(&self, kind: CacheKind, key: &str) -> Result<FillTicket, CacheError> {
        Ok(FillTicket::new(kind, key, self.epoch(kind, key)?))
    }

    /// The invalidation count a ticket for `key` taken now would carry, once `kind` and `key` are checked.
    /// A lookup reads it first and builds the ticket only on a miss: a hit allocates nothing.
    fn epoch(&self, kind: CacheKind, key: &str) -> Result<u64, CacheError> {
        let slot = self.slot(kind).ok_or(CacheError::NotStored { kind })?;
        rsp_core::cache::check_key(key)?;
        Ok(slot.epoch.load(Ordering::SeqCst))
    }

    /// Whether no invalidation of the ticket's kind happened since it was taken.
    pub(crate) fn is_current(&self, ticket: &FillTicket) -> bool {
        self.slot(ticket.kind()).is_some_and(|slot| slot.epoch.load(Ordering::SeqCst) == ticket.epoch())
    }

    /// The entry of `key`, or a ticket to fill it. A miss while another lookup of the key is loading it
    /// waits for that load and reads again (see [`InFlight`]); the ticket of a miss after that wait leads
    /// nothing, so a failing load is not waited for twice.
    pub(crate) async fn lookup(&self, kind: CacheKind, key: &str) -> Result<Looked, CacheError> {
        let epoch = self.epoch(kind, key)?;
        if let Some(cached) = self.get(kind, key).await {
            return Ok(Looked::Found(cached));
        }
        let ticket = match self.in_flight.lead_or_wait(kind, key).await {
            Turn::Lead(lease) => FillTicket::new(kind, key, epoch).leading(lease),
            Turn::Waited => self.ticket(kind, key)?,
        };
        // Read again: the key may have been filled between the miss and the turn (then the lease, dropped
        // with the ticket, releases at once) or during the wait.
        Ok(match self.get(kind, key).await {
            Some(cached) => Looked::Found(cached),
            None => Looked::Missed(ticket),
        })
    }

    pub(crate) async fn get(&self, kind: CacheKind, key: &str) -> Option<Cached> {
        Some(self.slot(kind)?.entries.get(key).await?.cached)
    }

    /// The TTL a fill of `cached` gets at `level_ttl(kind config)`, capped by the caller's `ttl`; `None` when
    /// it would be zero.
    pub(crate) fn ttl(
        &self,
        kind: CacheKind,
        cached: &Cached,
        ttl: Option<Duration>,
        level_ttl: fn(&KindConfig) -> Duration,
    ) -> Option<Duration> {
        let config = &self.slot(kind)?.config;
        let base = match cached {
            Cached::Value(_) => level_ttl(config),
            Cached::Absent => config.negative_ttl,
        };
        let ttl = ttl.map_or(base, |ttl| ttl.min(base));
        (!ttl.is_zero()).then_some(ttl)
    }

    /// Stores a fill unless an invalidation overtook it. An invalidation that lands between the check and
    /// the insert is caught by the second check, which takes the entry back out.
    pub(crate) async fn fill(&self, ticket: &FillTicket, cached: Cached, ttl: Option<Duration>) -> bool {
        let Some(slot) = self.slot(ticket.kind()) else { return false };
        let Some(ttl) = self.ttl(ticket.kind(), &cached, ttl, |config| config.l1_ttl) else { return false };
        if !self.is_current(ticket) {
            return false;
        }
        slot.entries.insert(ticket.key().to_owned(), Entry { cached, ttl }).await;
        if self.is_current(ticket) {
            return true;
        }
        slot.entries.invalidate(ticket.key()).await;
        false
    }

    /// Drops what `invalidation` names. Counts it first, so fills racing it are refused (see [`L1::fill`]).
    pub(crate) async fn apply(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::All => {
                for slot in self.slots() {
                    slot.epoch.fetch_add(1, Ordering::SeqCst);
                    slot.entries.invalidate_all();
                }
            }
            Invalidation::Key { kind, key } => {
                if let Some(slot) = self.slot(*kind) {
                    slot.epoch.fetch_add(1, Ordering::SeqCst);
                    slot.entries.invalidate(key.as_str()).await;
                }
            }
            Invalidation::Kind { kind } => {
                if let Some(slot) = self.slot(*kind) {
                    slot.epoch.fetch_add(1, Ordering::SeqCst);
                    slot.entries.invalidate_all();
                }
            }
            Invalidation::Prefix { kind, prefix } => {
                if let Some(slot) = self.slot(*kind) {
                    slot.epoch.fetch_add(1, Ordering::SeqCst);
                    let prefix = prefix.clone();
                    if slot.entries.invalidate_entries_if(move |key, _| key.starts_with(prefix.as_str())).is_err() {
                        // Only if closures were not enabled at build time, which `Slot::new` does: drop more.
                        slot.entries.invalidate_all();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn value(text: &'static str) -> Cached {
        Cached::Value(Bytes::from_static(text.as_bytes()))
    }

    #[tokio::test]
    async fn fills_are_served_until_invalidated() {
        let l1 = L1::new(&CacheConfig::default());
        let ticket = l1.ticket(CacheKind::Client, "acme/c1").unwrap();
        assert!(l1.fill(&ticket, value("one"), None).await);
        assert_eq!(l1.get(CacheKind::Client, "acme/c1").await, Some(value("one")));
        assert_eq!(l1.get(CacheKind::Decision, "acme/c1").await, None);
        l1.apply(&Invalidation::key(CacheKind::Client, "acme/c1")).await;
        assert_eq!(l1.get(CacheKind::Client, "acme/c1").await, None);
    }

    #[tokio::test]
    async fn a_fill_overtaken_by_an_invalidation_is_dropped() {
        let l1 = L1::new(&CacheConfig::default());
        let ticket = l1.ticket(CacheKind::Revocation, "acme/jti").unwrap();
        l1.apply(&Invalidation::key(CacheKind::Revocation, "acme/other")).await;
        assert!(!l1.fill(&ticket, Cached::Absent, None).await);
        assert_eq!(l1.get(CacheKind::Revocation, "acme/jti").await, None);
        // Other kinds keep their own count.
        let ticket = l1.ticket(CacheKind::Client, "acme/c1").unwrap();
        l1.apply(&Invalidation::Kind { kind: CacheKind::Decision }).await;
        assert!(l1.fill(&ticket, Cached::Absent, None).await);
    }

    #[tokio::test]
    async fn prefix_kind_and_global_invalidations_drop_what_they_name() {
        let l1 = L1::new(&CacheConfig::default());
        for (kind, key) in [(CacheKind::Client, "acme/a"), (CacheKind::Client, "acme/b"), (CacheKind::Client, "beta/a")]
        {
            let ticket = l1.ticket(kind, key).unwrap();
            assert!(l1.fill(&ticket, value("v"), None).await);
        }
        l1.apply(&Invalidation::prefix(CacheKind::Client, "acme/")).await;
        assert_eq!(l1.get(CacheKind::Client, "acme/a").await, None);
        assert_eq!(l1.get(CacheKind::Client, "acme/b").await, None);
        assert_eq!(l1.get(CacheKind::Client, "beta/a").await, Some(value("v")));
        l1.apply(&Invalidation::Kind { kind: CacheKind::Client }).await;
        assert_eq!(l1.get(CacheKind::Client, "beta/a").await, None);
        let ticket = l1.ticket(CacheKind::Decision, "d").unwrap();
        assert!(l1.fill(&ticket, value("v"), None).await);
        l1.apply(&Invalidation::All).await;
        assert_eq!(l1.get(CacheKind::Decision, "d").await, None);
    }

    #[tokio::test]
    async fn entries_expire_after_their_own_ttl() {
        let mut config = CacheConfig::default();
        config.client.negative_ttl = Duration::from_millis(50);
        let l1 = L1::new(&config);
        let negative = l1.ticket(CacheKind::Client, "gone").unwrap();
        assert!(l1.fill(&negative, Cached::Absent, None).await);
        let short = l1.ticket(CacheKind::Client, "short").unwrap();
        assert!(l1.fill(&short, value("v"), Some(Duration::from_millis(50))).await);
        let long = l1.ticket(CacheKind::Client, "long").unwrap();
        assert!(l1.fill(&long, value("v"), None).await);
        assert_eq!(l1.get(CacheKind::Client, "gone").await, Some(Cached::Absent));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(l1.get(CacheKind::Client, "gone").await, None);
        assert_eq!(l1.get(CacheKind::Client, "short").await, None);
        assert_eq!(l1.get(CacheKind::Client, "long").await, Some(value("v")));
        let zero = l1.ticket(CacheKind::Client, "zero").unwrap();
        assert!(!l1.fill(&zero, value("v"), Some(Duration::ZERO)).await);
    }

    #[tokio::test]
    async fn debug_output_shows_sizes_not_values() {
        let l1 = L1::new(&CacheConfig::default());
        let ticket = l1.ticket(CacheKind::Client, "acme/c1").unwrap();
        l1.fill(&ticket, value("secret-hash"), None).await;
        let debug = format!("{l1:?}");
        assert!(!debug.contains("secret") && !debug.contains("acme"), "{debug}");
    }

    #[test]
    fn tickets_refuse_bad_input() {
        let l1 = L1::new(&CacheConfig::default());
        assert!(matches!(l1.ticket(CacheKind::PolicySnapshot, "acme"), Err(CacheError::NotStored { .. })));
        assert!(matches!(l1.ticket(CacheKind::Client, ""), Err(CacheError::EmptyKey)));
    }
}
