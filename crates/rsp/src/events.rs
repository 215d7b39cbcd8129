//! The event side of a process: where the use cases' events go, and the consumers a worker runs.
//!
//! # Paths of an event
//! - A state change (client, key, tenant, policy, revocation) writes its events in its own transaction
//!   into the database's bus table (the transactional outbox, `rsp-store`).
//! - A high-volume fact (token issued, introspected, decision denied) goes through the [`Publisher`]: to
//!   Redis Streams when Redis is configured, falling back to the database bus while Redis is down. Without
//!   Redis the audit trail would be the database bus's only consumer, so the publisher writes the facts
//!   into the trail itself, in batches: one row per fact instead of a stream row, a delivery, a claim and
//!   a completion before the trail's row (the profile of token issuance on SQLite showed that path
//!   costing more than the ES256 signature).
//! - With Redis, the consumer group `relay` on the database bus forwards every event to Redis, and the
//!   audit writer (group `audit`) reads Redis; without Redis the audit writer reads the database bus (the
//!   state changes' outbox). So an event reaches the audit trail whichever way it came and whatever was
//!   down when it was written.
//!
//! Consumers run in the roles `all` and `worker`; any number of processes share the work through the
//! consumer groups, and one that dies leaves its pending events to the others (reclaimed after idling).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rsp_bus::{
    Consumer, ConsumerConfig, EventHandler, ForwardHandler, HandlerError, Publisher, PublisherConfig, RedisBusConfig,
    RedisStreamsBus, RunningConsumer,
};
use rsp_core::bus::{EventBus, EventSink};
use rsp_core::{Event, Store, StoreError};
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::config::redact_url;

/// The consumer group that stores events in the audit trail.
pub const AUDIT_GROUP: &str = "audit";
/// The consumer group that forwards the database bus to Redis.
pub const RELAY_GROUP: &str = "relay";

/// How often acknowledged events are deleted from the database bus, and how old they must be.
const TRIM_EVERY: Duration = Duration::from_secs(300);
const TRIM_OLDER_THAN: Duration = Duration::from_secs(3600);
/// Dead letters each group keeps in the database: as many as the Redis bus keeps in its capped streams.
const DEAD_LETTERS_KEPT: u64 = rsp_bus::redis::DEFAULT_MAX_LEN;

/// The relay and the audit writer fail an event only while Redis or the database is down, so they retry it
/// through an outage of a day, every 15–30 s once backed off (the consumer's default gives up after seconds,
/// and a Redis restart would turn the events relayed meanwhile into dead letters instead of audit records).
const OUTAGE_RETRY_EVERY: Duration = Duration::from_secs(30);
const OUTAGE_ATTEMPTS: u32 = 6_000;

/// How long shutdown waits for queued events to be stored.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_secs(5);

/// Stores every event it is handed in the audit trail; the store skips ids it already has, so a
/// redelivered event is recorded once.
struct AuditWriter {
    store: Arc<dyn Store>,
}

#[async_trait]
impl EventHandler for AuditWriter {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.store.append_audit(std::slice::from_ref(event)).await.map(|_| ()).map_err(handler_error)
    }

    /// The whole batch in one transaction: the audit trail's cost per event is then a row, not a commit.
    async fn handle_batch(&self, events: &[Event]) -> Option<Result<(), HandlerError>> {
        Some(self.store.append_audit(events).await.map(|_| ()).map_err(handler_error))
    }
}

/// A database that is down will answer later; any other refusal of an event will not change on a retry.
fn handler_error(error: StoreError) -> HandlerError {
    match error {
        StoreError::Unavailable(_) => HandlerError::Transient(error.to_string()),
        StoreError::NotFound | StoreError::Conflict(_) => HandlerError::Permanent(error.to_string()),
    }
}

/// The running event plumbing of one process.
pub struct Events {
    publisher: Publisher,
    consumers: Vec<RunningConsumer>,
    trimmer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("consumers", &self.consumers.len()).finish_non_exhaustive()
    }
}

impl Events {
    /// Connects to Redis when `redis` (its URL and key prefix) is given, and, when `run_consumers`, starts
    /// the relay, the audit writer and trimming. A Redis that does not answer yet does not stop the start:
    /// events wait in the database outbox until it does (a replica restarted during a Redis outage would
    /// otherwise fail in a loop); a URL that cannot work or a server older than Redis 7 does.
    /// `instance` names this process's consumers within their groups.
    pub async fn start(
        backend: &Backend,
        redis: Option<(&str, &str)>,
        run_consumers: bool,
        instance: &str,
    ) -> anyhow::Result<Self> {
        let redis: Option<Arc<dyn EventBus>> = match redis {
            Some((url, prefix)) => {
                let config = RedisBusConfig { prefix: prefix.to_owned(), ..RedisBusConfig::default() };
                let bus = RedisStreamsBus::connect(url, config)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot use Redis at {}: {e}", redact_url(url)))?;
                Some(Arc::new(bus))
            }
            None => None,
        };
        let audit = Arc::new(AuditWriter { store: backend.store.clone() });
        let publisher = match &redis {
            Some(redis) => Publisher::start(redis.clone(), Some(backend.bus.clone()), PublisherConfig::default())?,
            None => Publisher::start_direct(audit.clone(), direct_config())?,
        };
        let mut consumers = Vec::new();
        let mut trimmer = None;
        if run_consumers {
            let audit_bus = match &redis {
                Some(redis) => {
                    let relay = Arc::new(ForwardHandler::new(redis.clone()));
                    consumers.push(consumer(backend.bus.clone(), relay, RELAY_GROUP, instance)?);
                    redis.clone()
                }
                None => backend.bus.clone(),
            };
            consumers.push(consumer(audit_bus, audit, AUDIT_GROUP, instance)?);
            let backend = backend.clone();
            trimmer = Some(tokio::spawn(async move {
                let mut every = tokio::time::interval(TRIM_EVERY);
                loop {
                    every.tick().await;
                    if let Err(error) = backend.trim_bus(TRIM_OLDER_THAN, DEAD_LETTERS_KEPT).await {
                        tracing::warn!(%error, "trimming the event table failed");
                    }
                }
            }));
        }
        Ok(Self { publisher, consumers, trimmer })
    }

    /// Where use cases emit their events.
    pub fn sink(&self) -> Arc<dyn EventSink> {
        Arc::new(self.publisher.clone())
    }

    /// Waits until every event emitted so far is stored by a bus (tests, and shutdown).
    pub async fn flush(&self) -> anyhow::Result<()> {
        Ok(self.publisher.flush().await?)
    }

    /// Stores what is queued (for at most a few seconds), then stops the consumers; a consumer lets its
    /// current event finish and releases the rest of its batch to other instances.
    pub async fn stop(self) {
        match tokio::time::timeout(FLUSH_AT_SHUTDOWN, self.publisher.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "closing the event publisher failed"),
            Err(_) => tracing::warn!("events still queued at shutdown were not stored: no bus took them in time"),
        }
        for consumer in self.consumers {
            consumer.stop().await;
        }
        if let Some(trimmer) = self.trimmer {
            trimmer.abort();
        }
    }
}

/// The direct path to the audit trail gathers events for a few milliseconds before a write: each write is
/// a SQLite commit (a WAL append of every page the rows touch, the table's and each index's), so at a few
/// thousand tokens a second a batch of one event per commit costs more than the rows. Nothing waits for
/// it: a request only queues its event, and `flush` is answered without the wait.
fn direct_config() -> PublisherConfig {
    PublisherConfig { linger: Duration::from_millis(5), ..PublisherConfig::default() }
}

fn consumer(
    bus: Arc<dyn EventBus>,
    handler: Arc<dyn EventHandler>,
    group: &str,
    instance: &str,
) -> anyhow::Result<RunningConsumer> {
    let mut config = ConsumerConfig::new(group, instance);
    // A process that dies holding deliveries leaves them to the others after this long.
    config.reclaim_after = Duration::from_secs(30);
    config.claim_lease = Duration::from_secs(30);
    config.max_attempts = OUTAGE_ATTEMPTS;
    config.backoff_max = OUTAGE_RETRY_EVERY;
    Ok(Consumer::new(bus, handler, config)?.spawn())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_store_outage_is_worth_retrying() {
        let outage = handler_error(StoreError::Unavailable("connection refused".into()));
        assert_eq!(outage, HandlerError::Transient("storage unavailable: connection refused".into()));
        for refusal in [StoreError::NotFound, StoreError::Conflict("event".into())] {
            assert!(matches!(handler_error(refusal), HandlerError::Permanent(_)));
        }
    }
}
