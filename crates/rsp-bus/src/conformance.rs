//! The [`EventBus`] port's semantics as executable checks, so every adapter (Redis here, the SQL buses in
//! `rsp-store`) is held to the same delivery model. Each check takes a bus that nobody else uses (a fresh
//! key prefix, schema or database) and returns a [`ConformanceError`] naming what was violated; a test
//! calls [`run_all`] with a factory, or one check per test.
//!
//! Checks use their own random group names and wait with generous deadlines, so they can run concurrently
//! with each other and on a loaded machine; timing assertions only ever bound from below (a retry must not
//! arrive before its delay), never from above.

mod delivery;
mod runner;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rsp_core::bus::{BusError, Delivery, EventBus};
use rsp_core::{Event, EventKind, Priority, TenantId};
use tokio::time::Instant;

pub use delivery::{ack_is_final, group_fan_out, load_sharing, priority_order, reclaim_dead_consumer, retry_delay};
pub use runner::{batches, claims, dead_letter_after_max_attempts, duplicate_handled_once, stats_depth_and_pending};

/// A violated expectation, or a bus call that failed during a check.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("{check}: bus call failed: {source}")]
    Bus {
        check: &'static str,
        #[source]
        source: BusError,
    },
    #[error("{check}: {detail}")]
    Violated { check: &'static str, detail: String },
}

/// Runs every check, each on a fresh bus from `fresh`, and stops at the first failure.
pub async fn run_all<F, Fut>(fresh: F) -> Result<(), ConformanceError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    group_fan_out(fresh().await).await?;
    load_sharing(fresh().await).await?;
    priority_order(fresh().await).await?;
    ack_is_final(fresh().await).await?;
    reclaim_dead_consumer(fresh().await).await?;
    retry_delay(fresh().await).await?;
    claims(fresh().await).await?;
    batches(fresh().await).await?;
    dead_letter_after_max_attempts(fresh().await).await?;
    duplicate_handled_once(fresh().await).await?;
    stats_depth_and_pending(fresh().await).await?;
    Ok(())
}

/// How long a check waits for something that should happen soon.
const DEADLINE: Duration = Duration::from_secs(10);
/// A `reclaim_after` no check reaches, for receives that must not take over anything.
const NEVER: Duration = Duration::from_secs(3600);

/// Ties a check's name to its failures.
#[derive(Clone, Copy)]
struct Check(&'static str);

impl Check {
    fn bus(self) -> impl Fn(BusError) -> ConformanceError {
        move |source| ConformanceError::Bus { check: self.0, source }
    }

    fn ensure(self, holds: bool, detail: impl FnOnce() -> String) -> Result<(), ConformanceError> {
        if holds { Ok(()) } else { Err(ConformanceError::Violated { check: self.0, detail: detail() }) }
    }

    /// A fresh event of `priority` for a check's own tenant.
    fn event(self, priority: Priority) -> Result<Event, ConformanceError> {
        let tenant = TenantId::parse("conformance")
            .map_err(|e| ConformanceError::Violated { check: self.0, detail: e.to_string() })?;
        Ok(Event::new(tenant, EventKind::new("conformance.check"), priority).subject(self.0))
    }

    fn events(self, priority: Priority, n: usize) -> Result<Vec<Event>, ConformanceError> {
        (0..n).map(|_| self.event(priority)).collect()
    }

    /// Receives until `n` deliveries arrived or the deadline passed (then returns what it has).
    async fn receive_n(
        self,
        bus: &dyn EventBus,
        group: &str,
        consumer: &str,
        n: usize,
        reclaim_after: Duration,
    ) -> Result<Vec<Delivery>, ConformanceError> {
        let deadline = Instant::now() + DEADLINE;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            let wait = Duration::from_millis(100);
            got.extend(bus.receive(group, consumer, n - got.len(), wait, reclaim_after).await.map_err(self.bus())?);
        }
        Ok(got)
    }

    /// Asserts that nothing is deliverable to `consumer` now.
    async fn nothing_for(
        self,
        bus: &dyn EventBus,
        group: &str,
        consumer: &str,
        reclaim_after: Duration,
    ) -> Result<(), ConformanceError> {
        let extra =
            bus.receive(group, consumer, 10, Duration::from_millis(200), reclaim_after).await.map_err(self.bus())?;
        self.ensure(extra.is_empty(), || format!("expected no delivery, got {:?}", ids(&extra)))
    }
}

/// A group name no other check or run uses.
fn unique(name: &str) -> String {
    let id = rsp_core::EventId::generate();
    let random: String = id.as_str().chars().rev().filter(char::is_ascii_hexdigit).take(12).collect();
    format!("{name}-{random}")
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.event.id.to_string()).collect()
}

fn sorted_ids(events: &[Event]) -> Vec<String> {
    let mut ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    ids.sort();
    ids
}
