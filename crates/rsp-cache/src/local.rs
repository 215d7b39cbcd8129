//! [`LocalCache`]: L1 alone, for the single process that runs without Redis.

use std::time::Duration;

use async_trait::async_trait;
use rsp_core::cache::{
    Cache, CacheError, CacheKind, Cached, FillTicket, Invalidation, InvalidationNotice, Lookup, Origin,
};
use tokio::sync::broadcast;

use crate::config::{CacheConfig, ConfigError};
use crate::l1::{L1, Looked};
use crate::metrics::{self, Level};

/// The cache of a platform that is its only replica: the same L1 as [`crate::TwoLevelCache`], with
/// invalidations that only need to reach this process's subscribers.
#[derive(Debug)]
pub struct LocalCache {
    l1: L1,
    notices: broadcast::Sender<InvalidationNotice>,
}

impl LocalCache {
    pub fn new(config: &CacheConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let (notices, _) = broadcast::channel(1024);
        Ok(Self { l1: L1::new(config), notices })
    }
}

#[async_trait]
impl Cache for LocalCache {
    async fn get(&self, kind: CacheKind, key: &str) -> Result<Lookup, CacheError> {
        let looked = self.l1.lookup(kind, key).await?;
        metrics::request(kind, Level::L1, matches!(looked, Looked::Found(_)));
        Ok(match looked {
            Looked::Found(Cached::Value(bytes)) => Lookup::Hit(bytes),
            Looked::Found(Cached::Absent) => Lookup::Absent,
            Looked::Missed(ticket) => Lookup::Miss(ticket),
        })
    }

    async fn put(&self, ticket: FillTicket, value: Cached, ttl: Option<Duration>) {
        self.l1.fill(&ticket, value, ttl).await;
    }

    async fn invalidate(&self, invalidation: Invalidation) -> Result<(), CacheError> {
        invalidation.check()?;
        self.l1.apply(&invalidation).await;
        metrics::invalidation(&invalidation, Origin::Local);
        // No receivers is fine: nothing in this process keeps state outside the cache.
        let _ = self.notices.send(InvalidationNotice { invalidation, origin: Origin::Local });
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<InvalidationNotice> {
        self.notices.subscribe()
    }
}
