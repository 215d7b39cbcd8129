//! The embedded event bus over SQLite, with the consumer-group model described in [`crate::sql_bus`].
//!
//! SQLite has one writer, so every change runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock
//! up front (a deferred transaction that reads first could fail to upgrade to a writer), and a claim made
//! inside it is atomic without row locks.

use std::sync::Arc;
use std::time::Duration;

use rsp_core::bus::{BusResult, Delivery};
use rsp_core::event::{Event, EventId};
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::SqliteStore;
use crate::sql_bus::{self, KnownGroups, Written, millis, now_ms, unavailable};

/// Any number of events in one statement: `?1` is a JSON array of rows `[id, tenant, kind, priority,
/// occurred_at_ms, body]`, unpacked by `json_each` in array order. (`WHERE true` is SQLite's rule for an
/// upsert over a SELECT.)
const PUBLISH: &str = "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?1) \
     WHERE true ON CONFLICT (event_id) DO NOTHING";

const CREATE_GROUP: &str = "INSERT INTO bus_groups (group_name, created_at_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

/// A new group starts with every retained event (later ones reach it through the fan-out trigger).
const FILL_GROUP: &str =
    "INSERT INTO bus_deliveries (group_name, seq, priority) SELECT ?1, seq, priority FROM bus_events";

// The three claims bind the same parameters: group, consumer, now, the stage's time threshold, limit.

/// Pending rows of any consumer idle since `?4` or earlier go to consumer `?2`.
const RECLAIM: &str = "UPDATE bus_deliveries SET consumer = ?2, at_ms = ?3, attempt = attempt + 1 \
     WHERE group_name = ?1 AND seq IN (SELECT seq FROM bus_deliveries \
         WHERE group_name = ?1 AND consumer IS NOT NULL AND priority IN (0, 1, 2, 3, 4) AND at_ms <= ?4 \
         ORDER BY priority, at_ms LIMIT ?5) \
     RETURNING seq, priority, attempt, (SELECT body FROM bus_events e WHERE e.seq = bus_deliveries.seq) AS body";

/// Rows waiting for a retry due at `?4` or earlier go to consumer `?2`.
const DUE: &str = "UPDATE bus_deliveries SET consumer = ?2, at_ms = ?3, attempt = attempt + 1 \
     WHERE group_name = ?1 AND seq IN (SELECT seq FROM bus_deliveries \
         WHERE group_name = ?1 AND consumer IS NULL AND attempt > 0 AND priority IN (0, 1, 2, 3, 4) \
           AND at_ms <= ?4 \
         ORDER BY priority, at_ms LIMIT ?5) \
     RETURNING seq, priority, attempt, (SELECT body FROM bus_events e WHERE e.seq = bus_deliveries.seq) AS body";

/// New rows, in stream order, go to consumer `?2` (their `at_ms` is 0: always due).
const NEW: &str = "UPDATE bus_deliveries SET consumer = ?2, at_ms = ?3, attempt = attempt + 1 \
     WHERE group_name = ?1 AND seq IN (SELECT seq FROM bus_deliveries \
         WHERE group_name = ?1 AND attempt = 0 AND priority IN (0, 1, 2, 3, 4) AND at_ms <= ?4 \
         ORDER BY priority, seq LIMIT ?5) \
     RETURNING seq, priority, attempt, (SELECT body FROM bus_events e WHERE e.seq = bus_deliveries.seq) AS body";

const ACK: &str = "DELETE FROM bus_deliveries WHERE group_name = ?1 AND seq IN (SELECT value FROM json_each(?2))";

const COPY_DEAD: &str = "INSERT INTO bus_dead_letters (group_name, event_id, body, attempts, error, dead_at_ms) \
     SELECT d.group_name, e.event_id, e.body, d.attempt, ?4, ?5 \
     FROM bus_deliveries d JOIN bus_events e ON e.seq = d.seq \
     WHERE d.group_name = ?1 AND d.seq = ?2 AND d.attempt = ?3";

const DROP_DELIVERY: &str = "DELETE FROM bus_deliveries WHERE group_name = ?1 AND seq = ?2 AND attempt = ?3";

const CLAIM: &str = "INSERT INTO bus_handled (group_name, event_id, handled, until_ms) VALUES (?1, ?2, 0, ?3) \
     ON CONFLICT (group_name, event_id) DO UPDATE SET until_ms = excluded.until_ms \
     WHERE bus_handled.handled = 0 AND bus_handled.until_ms <= ?4 \
     RETURNING 0 AS outcome";

const CLAIM_STATE: &str = "SELECT CASE WHEN handled = 1 THEN 2 ELSE 1 END AS outcome FROM bus_handled \
     WHERE group_name = ?1 AND event_id = ?2";

/// Per priority, the events the group holds and how many of them a consumer has.
const STATS_HELD: &str = "SELECT priority, count(*) AS depth, count(consumer) AS pending FROM bus_deliveries \
     WHERE group_name = ?1 GROUP BY priority";

/// A group not created yet would start with every retained event (`?1` only has to be bound).
const STATS_ALL: &str =
    "SELECT priority, count(*) AS depth, 0 AS pending FROM bus_events WHERE ?1 IS NOT NULL GROUP BY priority";

const OLDEST_ALL: &str = "SELECT occurred_at_ms FROM bus_events WHERE ?1 IS NOT NULL ORDER BY seq LIMIT 1";

/// The event bus of the embedded deployment. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct SqliteEventBus {
    pool: SqlitePool,
    /// Groups this bus knows to exist, so a receive does not try to create its group every time.
    groups: Arc<KnownGroups>,
    /// Shared with the store, whose writes add outbox events.
    written: Written,
}

impl SqliteStore {
    /// The event bus over this store's database, which also carries the outbox rows its writes add.
    pub fn event_bus(&self) -> SqliteEventBus {
        SqliteEventBus { pool: self.pool.clone(), groups: Arc::default(), written: self.written.clone() }
    }
}

impl SqliteEventBus {
    async fn write(&self) -> BusResult<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)
    }

    /// One attempt of [`EventBus::receive`]: reclaimed, then due, then new deliveries.
    async fn receive_once(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        reclaim_after: Duration,
    ) -> BusResult<Vec<Delivery>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if !self.groups.contains(group) {
            create_group(&mut tx, group, now).await?;
        }
        let idle_since = now.saturating_sub(millis(reclaim_after));
        let out = Self::claim_in(&mut tx, group, consumer, max, now, idle_since).await?;
        tx.commit().await.map_err(unavailable)?;
        self.groups.insert(group);
        Ok(out)
    }
}

/// The insert of `events`, bound and ready to run: a publish and the outbox of a store write both store
/// events this way. An id already stored is skipped, so a retried write does not publish its events twice.
/// One statement for the lot: through sqlx each statement is a round trip to the connection's thread,
/// which cost more than SQLite's own work when a publish batch was a statement per event.
pub(super) fn insert_events(events: &[Event]) -> Query<'static, Sqlite, SqliteArguments> {
    let rows: Vec<_> = events
        .iter()
        .map(|e| (e.id.as_str(), e.tenant.as_str(), e.kind.as_str(), e.priority.rank(), e.occurred_at_ms, e.to_json()))
        .collect();
    sqlx::query(PUBLISH).bind(serde_json::to_string(&rows).unwrap_or_default())
}

/// Creates `group` holding every retained event, unless it exists.
async fn create_group(tx: &mut SqliteConnection, group: &str, now: i64) -> BusResult<()> {
    let created = sqlx::query(CREATE_GROUP).bind(group).bind(now).execute(&mut *tx).await.map_err(unavailable)?;
    if created.rows_affected() > 0 {
        sqlx::query(FILL_GROUP).bind(group).execute(&mut *tx).await.map_err(unavailable)?;
    }
    Ok(())
}

/// Moves a delivery to the dead letters, if it is still at `attempt`.
async fn bury(tx: &mut SqliteConnection, group: &str, seq: i64, attempt: i64, error: &str, now: i64) -> BusResult<()> {
    sqlx::query(COPY_DEAD)
        .bind(group)
        .bind(seq)
        .bind(attempt)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    sqlx::query(DROP_DELIVERY).bind(group).bind(seq).bind(attempt).execute(&mut *tx).await.map_err(unavailable)?;
    Ok(())
}

/// What [`sql_bus::port::event_bus_port`] leaves to SQLite.
impl SqliteEventBus {
    /// All `events` in one statement (its own transaction).
    async fn publish_events(&self, events: &[Event]) -> BusResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        insert_events(events).execute(&self.pool).await.map_err(unavailable)?;
        self.written.signal();
        Ok(())
    }

    /// Every writer of the file is in this process (a second process on the same file is seen after the wait).
    #[expect(clippy::unnecessary_wraps, reason = "PostgreSQL's bus has no such watch")]
    fn written_watch(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        Some(self.written.watch())
    }

    /// The receipts go as one JSON array, which the statement reads with `json_each`.
    async fn ack_seqs(&self, group: &str, seqs: Vec<i64>) -> BusResult<()> {
        let seqs = serde_json::Value::from(seqs).to_string();
        sqlx::query(ACK).bind(group).bind(seqs).execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    async fn bury(&self, group: &str, seq: i64, attempt: i64, error: &str, now: i64) -> BusResult<()> {
        let mut tx = self.write().await?;
        bury(&mut tx, group, seq, attempt, error, now).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// The insert-or-take, then, when it took nothing, the state it met, in one write transaction.
    async fn try_claim(&self, group: &str, event: &EventId, until_ms: i64, now: i64) -> BusResult<Option<i64>> {
        let mut outcomes = self.try_claim_many(group, std::slice::from_ref(event), until_ms, now).await?;
        Ok(outcomes.pop().flatten())
    }

    /// [`Self::try_claim`] for several events in one write transaction (one lock, one commit).
    async fn try_claim_many(
        &self,
        group: &str,
        events: &[EventId],
        until_ms: i64,
        now: i64,
    ) -> BusResult<Vec<Option<i64>>> {
        let mut tx = self.write().await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let claimed: Option<i64> = sqlx::query_scalar(CLAIM)
                .bind(group)
                .bind(event.as_str())
                .bind(until_ms)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            outcomes.push(match claimed {
                Some(code) => Some(code),
                None => sqlx::query_scalar(CLAIM_STATE)
                    .bind(group)
                    .bind(event.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?,
            });
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(outcomes)
    }

    /// A read transaction: in WAL mode its statements all see one snapshot.
    async fn snapshot(&self) -> BusResult<Transaction<'static, Sqlite>> {
        self.pool.begin().await.map_err(unavailable)
    }
}

sql_bus::port::event_bus_port!(SqliteEventBus, SqliteConnection);

#[cfg(test)]
mod tests;
