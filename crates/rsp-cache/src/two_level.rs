//! [`TwoLevelCache`]: L1 in process, L2 in Redis, invalidations over Redis pub/sub.

mod retries;
mod subscriber;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::cache::{
    Cache, CacheError, CacheKind, Cached, FillTicket, Invalidation, InvalidationNotice, Lookup, Origin,
};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{CacheConfig, ConfigError};
use crate::l1::{L1, Looked};
use crate::l2::L2;
use crate::metrics::{self, Level};
use crate::wire::{self, Keys, Message, Stored};
use retries::Retries;

/// The cache of a replica among several. Reads go L1 → L2 → the caller's loader; a fill goes to both
/// levels. An invalidation drops the local L1 entries, turns a Redis key into a short-lived tombstone (or
/// unlinks the keys of a prefix), and publishes `{kind, key, origin}` on `{prefix}:invalidate`; each
/// replica's subscriber task drops its L1 entries and tells its local subscribers.
///
/// # When Redis is unreachable
/// Every call skips Redis (after at most one `op_timeout`, then for `retry_after`) and works from L1 and
/// the loader. Invalidations still apply locally; their Redis step is retried until Redis answers. The
/// subscriber reconnects, and since it may have missed invalidations meanwhile, it empties every L1
/// kind and announces [`Invalidation::All`] once subscribed again. The staleness bound while the
/// channel is down is therefore the kind's L1 TTL.
///
/// # Races
/// A read that misses, loads the old value from the database, and fills after a write's invalidation is
/// stopped three ways: the L1 fill is refused when an invalidation of the kind happened since the miss;
/// the Redis fill uses `SET NX`, which a key's tombstone refuses for `tombstone_ttl`; and prefix, kind and
/// global invalidations run a second pass `tombstone_ttl` later. Only a read slower than `tombstone_ttl`
/// can slip through, and then only until the entry's TTL.
#[derive(Debug)]
pub struct TwoLevelCache {
    inner: Arc<Inner>,
    /// The subscriber and the retry loop; aborted when the cache is dropped.
    tasks: [JoinHandle<()>; 2],
}

#[derive(Debug)]
struct Inner {
    l1: L1,
    l2: L2,
    /// Opens the subscriber's dedicated pub/sub connections.
    client: redis::Client,
    /// This replica's id in channel messages, so it can skip its own.
    origin: String,
    notices: broadcast::Sender<InvalidationNotice>,
    retries: Retries,
    /// Whether the subscriber currently listens on the channel.
    listening: AtomicBool,
    config: CacheConfig,
}

impl TwoLevelCache {
    /// Builds the cache and subscribes to the invalidation channel. Waits at most `connect_timeout` for
    /// Redis: when it is down, the cache starts on L1 alone and joins Redis when it comes back.
    pub async fn connect(redis_url: &str, config: CacheConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let client = redis::Client::open(redis_url).map_err(|error| ConfigError::Url(error.to_string()))?;
        let l2 = L2::new(&client, Keys::new(&config.prefix), &config.redis)?;
        let (notices, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            l1: L1::new(&config),
            l2,
            client,
            origin: uuid::Uuid::now_v7().to_string(),
            notices,
            retries: Retries::default(),
            listening: AtomicBool::new(false),
            config,
        });
        let first = subscriber::connect(&inner).await;
        match &first {
            Ok(_) => metrics::redis_up(true),
            Err(error) => inner.l2.mark_down(error),
        }
        inner.listening.store(first.is_ok(), Ordering::Release);
        let subscriber = tokio::spawn(subscriber::run(Arc::clone(&inner), first.ok()));
        let retrier = tokio::spawn(retry_loop(Arc::clone(&inner)));
        Ok(Self { inner, tasks: [subscriber, retrier] })
    }

    /// Whether invalidations from other replicas are being received right now (for readiness and tests).
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }

    /// Whether the last call to Redis succeeded.
    pub fn redis_is_up(&self) -> bool {
        self.inner.l2.is_up()
    }

    /// This replica's id in invalidation messages.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }
}

impl Drop for TwoLevelCache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Replays failed Redis steps and runs due second passes, apart from the subscriber so that a slow scan
/// never delays the delivery of other replicas' invalidations.
async fn retry_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.config.redis.maintenance_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        inner.run_due_work().await;
    }
}

impl Inner {
    /// Drops the entries in L1 and tells local subscribers.
    async fn apply(&self, invalidation: Invalidation, origin: Origin) {
        self.l1.apply(&invalidation).await;
        metrics::invalidation(&invalidation, origin);
        // No receivers is fine: nothing in this process keeps state outside the cache.
        let _ = self.notices.send(InvalidationNotice { invalidation, origin });
    }

    /// The Redis step of an invalidation: drop the entries there and publish to the other replicas.
    /// Queued for replay when Redis does not answer.
    async fn invalidate_l2(&self, invalidation: Invalidation) {
        let message = Message { origin: self.origin.clone(), invalidation };
        if let Err(error) = self.l2.invalidate(&message).await {
            tracing::debug!(%error, "invalidation not yet in redis: retried when it answers");
            self.retries.failed(message.invalidation);
        }
    }

    /// Replays failed Redis steps and runs due second passes.
    async fn run_due_work(&self) {
        let due = self.retries.take_due(Instant::now());
        for invalidation in due.failed {
            self.invalidate_l2(invalidation).await;
        }
        for invalidation in due.second_passes {
            self.l1.apply(&invalidation).await;
            self.invalidate_l2(invalidation).await;
        }
    }
}

fn found(cached: Cached) -> Lookup {
    match cached {
        Cached::Value(bytes) => Lookup::Hit(bytes),
        Cached::Absent => Lookup::Absent,
    }
}

#[async_trait]
impl Cache for TwoLevelCache {
    async fn get(&self, kind: CacheKind, key: &str) -> Result<Lookup, CacheError> {
        let inner = &self.inner;
        let ticket = match inner.l1.lookup(kind, key).await? {
            Looked::Found(cached) => {
                metrics::request(kind, Level::L1, true);
                return Ok(found(cached));
            }
            Looked::Missed(ticket) => ticket,
        };
        metrics::request(kind, Level::L1, false);
        let stored = match inner.l2.get(&inner.l2.keys().entry(kind, key)).await {
            Some((Stored::Value(bytes), left)) => Some((Cached::Value(bytes), left)),
            Some((Stored::Absent, left)) => Some((Cached::Absent, left)),
            Some((Stored::Tombstone, _)) | None => None,
        };
        metrics::request(kind, Level::L2, stored.is_some());
        match stored {
            Some((cached, left)) => {
                inner.l1.fill(&ticket, cached.clone(), left).await;
                Ok(found(cached))
            }
            None => Ok(Lookup::Miss(ticket)),
        }
    }

    async fn put(&self, ticket: FillTicket, value: Cached, ttl: Option<Duration>) {
        let inner = &self.inner;
        let kind = ticket.kind();
        let l2_ttl = inner.l1.ttl(kind, &value, ttl, |config| config.l2_ttl);
        let bytes = wire::encode(&value);
        if !inner.l1.fill(&ticket, value, ttl).await {
            return;
        }
        if let Some(l2_ttl) = l2_ttl {
            inner.l2.fill(&inner.l2.keys().entry(kind, ticket.key()), bytes, l2_ttl).await;
        }
    }

    async fn invalidate(&self, invalidation: Invalidation) -> Result<(), CacheError> {
        invalidation.check()?;
        let inner = &self.inner;
        inner.apply(invalidation.clone(), Origin::Local).await;
        let stored = invalidation.kind().is_none_or(CacheKind::is_stored);
        if stored && !matches!(invalidation, Invalidation::Key { .. }) {
            inner.retries.second_pass(Instant::now() + inner.config.redis.tombstone_ttl, invalidation.clone());
        }
        inner.invalidate_l2(invalidation).await;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<InvalidationNotice> {
        self.inner.notices.subscribe()
    }
}
