//! L2: entries in Redis, reached through a reconnecting connection manager. Every call is bounded by a
//! timeout and skipped while the [`Breaker`] is open, so a dead Redis costs a request at most one
//! `op_timeout` per `retry_after`, and nothing in between.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};
use rsp_core::cache::{CacheKind, Invalidation};

use crate::breaker::Breaker;
use crate::config::{ConfigError, RedisConfig};
use crate::metrics;
use crate::wire::{self, Keys, Message, Stored};

/// Why a Redis call did not happen or failed; logged by [`L2`], never returned to cache users.
#[derive(Debug, thiserror::Error)]
pub(crate) enum L2Error {
    #[error("redis skipped after a recent failure")]
    Skipped,
    #[error("redis call timed out after {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot encode invalidation: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Debug)]
pub(crate) struct L2 {
    connection: ConnectionManager,
    breaker: Breaker,
    keys: Keys,
    config: RedisConfig,
}

impl L2 {
    /// Connects lazily: building never waits for Redis, so a replica starts while Redis is down.
    pub(crate) fn new(client: &Client, keys: Keys, config: &RedisConfig) -> Result<Self, ConfigError> {
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.op_timeout))
            // One quick retry: callers are bounded by `op_timeout` anyway, and the breaker paces probes.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(config.retry_after);
        let connection =
            client.get_connection_manager_lazy(manager).map_err(|error| ConfigError::Url(error.to_string()))?;
        Ok(Self { connection, breaker: Breaker::new(config.retry_after), keys: keys.clone(), config: config.clone() })
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The entry under `key` and the time Redis will keep it; `None` when absent, unreadable, or Redis is
    /// unavailable.
    pub(crate) async fn get(&self, key: &str) -> Option<(Stored, Option<Duration>)> {
        let mut connection = self.connection.clone();
        let query =
            async move { redis::pipe().cmd("GET").arg(key).cmd("PTTL").arg(key).query_async(&mut connection).await };
        let (bytes, pttl): (Option<Bytes>, i64) = self.call(self.config.op_timeout, query).await.ok()?;
        let left = u64::try_from(pttl).ok().map(Duration::from_millis);
        Some((wire::decode(bytes?)?, left))
    }

    /// Stores a loaded entry unless the key exists, so a tombstone left by an invalidation wins.
    pub(crate) async fn fill(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection.clone();
        let query = async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut connection)
                .await
        };
        // A failure is logged by `call`; the entry simply stays in L1 only.
        let _ = self.call(self.config.op_timeout, query).await;
    }

    /// Drops the entries `message` names from Redis and publishes it to the other replicas. A single key
    /// becomes a tombstone for `tombstone_ttl`; a prefix, kind or everything is scanned and unlinked; a kind
    /// that stores nothing is only published.
    pub(crate) async fn invalidate(&self, message: &Message) -> Result<(), L2Error> {
        let payload = serde_json::to_vec(message)?;
        let channel = self.keys.channel().to_owned();
        let mut connection = self.connection.clone();
        let stored = message.invalidation.kind().is_none_or(CacheKind::is_stored);
        match (&message.invalidation, self.keys.pattern(&message.invalidation)) {
            _ if !stored => {
                let query = async move {
                    redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<()>(&mut connection).await
                };
                self.call(self.config.op_timeout, query).await
            }
            (Invalidation::Key { kind, key }, _) => {
                let key = self.keys.entry(*kind, key);
                let millis = u64::try_from(self.config.tombstone_ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let query = async move {
                    redis::pipe()
                        .cmd("SET")
                        .arg(key)
                        .arg(wire::TOMBSTONE_VALUE)
                        .arg("PX")
                        .arg(millis)
                        .ignore()
                        .cmd("PUBLISH")
                        .arg(channel)
                        .arg(payload)
                        .ignore()
                        .query_async::<()>(&mut connection)
                        .await
                };
                self.call(self.config.op_timeout, query).await
            }
            (_, Some(pattern)) => {
                let query = async move {
                    unlink_matching(&mut connection, &pattern).await?;
                    redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<()>(&mut connection).await
                };
                self.call(self.config.scan_timeout, query).await
            }
            (_, None) => Ok(()),
        }
    }

    /// Runs `query` unless the breaker skips it, within `timeout`, and records the outcome.
    async fn call<T>(&self, timeout: Duration, query: impl Future<Output = RedisResult<T>>) -> Result<T, L2Error> {
        if !self.breaker.allow() {
            return Err(L2Error::Skipped);
        }
        let result = match tokio::time::timeout(timeout, query).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(L2Error::Redis(error)),
            Err(_) => Err(L2Error::Timeout(timeout)),
        };
        match &result {
            Ok(_) => {
                if self.breaker.succeeded() {
                    tracing::info!("redis reachable again: the cache uses L2 again");
                    metrics::redis_up(true);
                }
            }
            Err(error) => self.mark_down(error),
        }
        result
    }

    /// Records a failure seen here or elsewhere (the subscriber's connection): Redis is skipped for
    /// `retry_after`.
    pub(crate) fn mark_down(&self, error: &L2Error) {
        if self.breaker.failed() {
            tracing::warn!(%error, retry_after = ?self.config.retry_after, "redis unavailable: the cache runs on L1");
            metrics::redis_up(false);
        } else {
            tracing::debug!(%error, "redis call failed");
        }
    }

    /// Whether the last call that reached Redis succeeded.
    pub(crate) fn is_up(&self) -> bool {
        self.breaker.is_up()
    }
}

/// `SCAN MATCH pattern` + `UNLINK` in batches, until the cursor comes back to 0.
async fn unlink_matching(connection: &mut ConnectionManager, pattern: &str) -> RedisResult<()> {
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(connection)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK").arg(keys).query_async::<()>(connection).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
