//! The event bus port: durable, at-least-once delivery of [`Event`]s to consumer groups.
//!
//! Two adapters implement it with the same semantics: Redis Streams (`rsp-bus`) and a table in the
//! platform's own database (`rsp-store`, the no-configuration default, which is also the transactional
//! outbox). The port holds only the primitives that differ between engines; the consumer loop that
//! turns them into "each event handled once, retried with backoff, dead-lettered after N failures" is
//! written once, in `rsp-bus`, over this trait.
//!
//! Delivery model, the same as Redis Streams consumer groups:
//! - every group sees every event; within a group each event goes to one consumer at a time;
//! - a received event stays *pending* for its consumer until acknowledged, retried or dead-lettered;
//! - a pending event whose consumer has been silent longer than `reclaim_after` may be received by
//!   another consumer of the group (the dead consumer's work is not lost);
//! - `receive` returns higher priorities first.

use std::time::Duration;

use async_trait::async_trait;

use crate::event::{Event, EventId, Priority};

/// Why a bus call failed. Handler failures are not bus errors: they go through `retry_later`.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("malformed message {id}: {reason}")]
    Malformed { id: String, reason: String },
}

pub type BusResult<T> = Result<T, BusError>;

/// One received event, with what the bus needs to acknowledge it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub event: Event,
    /// The engine's handle for this delivery (a stream entry id, a row id). Opaque to callers.
    pub receipt: String,
    /// 1 on first delivery, counting every earlier failed or abandoned attempt in this group.
    pub attempt: u32,
}

/// An event that exhausted its attempts, kept with the last error for an operator to inspect or replay.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub event: Event,
    pub group: String,
    pub attempts: u32,
    pub error: String,
    pub dead_at_ms: i64,
}

/// Gauges for metrics and the readiness view. `depth` counts events not yet acknowledged by the group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BusStats {
    /// Per priority, highest first: events the group has not yet acknowledged (new + pending).
    pub depth: [u64; 5],
    /// Events received but not yet acknowledged by any consumer of the group.
    pub pending: u64,
    pub dead_letters: u64,
    /// Age in milliseconds of the oldest unacknowledged event, 0 when there is none.
    pub oldest_unacked_ms: u64,
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Stores the events durably; once this returns `Ok` they survive a restart of either side.
    /// Publishing an id twice is allowed (the outbox relay may): consumers see it once.
    async fn publish(&self, events: &[Event]) -> BusResult<()>;

    /// Up to `max` deliveries for `consumer` in `group`: first pending events of consumers idle longer
    /// than `reclaim_after`, then events retried and now due, then new ones, higher priorities first.
    /// Waits up to `wait` when there are none. Creates the group on first use, starting at the oldest
    /// retained event.
    async fn receive(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
        reclaim_after: Duration,
    ) -> BusResult<Vec<Delivery>>;

    /// The handler finished with these deliveries: they are done for this group.
    async fn ack(&self, group: &str, deliveries: &[Delivery]) -> BusResult<()>;

    /// The handler failed: deliver the event again (attempt + 1) no sooner than `delay` from now.
    async fn retry_later(&self, group: &str, delivery: &Delivery, error: &str, delay: Duration) -> BusResult<()>;

    /// The handler failed for the last time: move the event to the group's dead letters with `error`.
    async fn dead_letter(&self, group: &str, delivery: &Delivery, error: &str) -> BusResult<()>;

    /// Before handling: claims `event` for `group` for `lease` (after which an unfinished claim lapses, so
    /// a consumer that died mid-handler does not block the event forever). De-duplication by event id: a
    /// second copy of the event (published twice by the outbox relay) finds it claimed or handled.
    async fn claim(&self, group: &str, event: &EventId, lease: Duration) -> BusResult<Claim>;

    /// After the handler succeeded: `event` stays handled for `group` for at least a day, longer than any
    /// duplicate can arrive.
    async fn complete(&self, group: &str, event: &EventId) -> BusResult<()>;

    /// [`EventBus::claim`] for each of `events`, outcomes in their order. An adapter may take them all in
    /// one round trip (one transaction on the SQL bus); the default asks one by one.
    async fn claim_many(&self, group: &str, events: &[EventId], lease: Duration) -> Vec<BusResult<Claim>> {
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.push(self.claim(group, event, lease).await);
        }
        outcomes
    }

    /// [`EventBus::complete`] for each of `events`; an adapter may store them in one round trip.
    async fn complete_many(&self, group: &str, events: &[EventId]) -> BusResult<()> {
        for event in events {
            self.complete(group, event).await?;
        }
        Ok(())
    }

    /// After the handler failed: drops the claim so the retry can claim it again.
    async fn release(&self, group: &str, event: &EventId) -> BusResult<()>;

    /// The newest dead letters of `group`, newest first.
    async fn dead_letters(&self, group: &str, limit: usize) -> BusResult<Vec<DeadLetter>>;

    async fn stats(&self, group: &str) -> BusResult<BusStats>;
}

/// Index of `priority` in [`BusStats::depth`].
pub fn depth_index(priority: Priority) -> usize {
    usize::from(priority.rank())
}

/// The outcome of [`EventBus::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This consumer may handle the event.
    Claimed,
    /// Another delivery of the same event is being handled right now: skip this copy.
    InProgress,
    /// The event was already handled by the group: skip this copy.
    AlreadyHandled,
}

/// Where use cases send events that describe no stored change (a token issued, a decision denied): the
/// batching publisher in front of the bus. `emit` waits only while the publisher's buffer is full
/// (backpressure), never for the bus itself, so a slow bus never adds latency to a token request.
///
/// `try_emit` is for sampled, low-priority records on paths that must never wait (decisions,
/// introspections): when the buffer is full the event is dropped and the caller counts the loss.
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn emit(&self, event: Event);

    /// Takes `event` if that needs no waiting; `false` when it was dropped.
    fn try_emit(&self, event: Event) -> bool;
}

/// Drops events: for tools and tests that run use cases without a bus.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

#[async_trait]
impl EventSink for NoEvents {
    async fn emit(&self, _event: Event) {}

    fn try_emit(&self, _event: Event) -> bool {
        true
    }
}
