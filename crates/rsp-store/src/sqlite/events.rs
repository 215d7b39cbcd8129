//! The embedded event bus over SQLite, with the consumer-group model described in [`crate::sql_bus`].
//!
//! SQLite has one writer, so every change runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock
//! up front (a deferred transaction that reads first could fail to upgrade to a writer), and a claim made
//! inside it is atomic without row locks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::bus::{BusResult, BusStats, Claim, DeadLetter, Delivery, EventBus};
use rsp_core::event::{Event, EventId};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::SqliteStore;
use crate::sql_bus::{
    self, ClaimedRow, HANDLED_FOR_MS, KnownGroups, Poll, StatsBuilder, TRIM_BATCH, attempt_of, limit, millis, now_ms,
    receipt_seq, unavailable,
};

const PUBLISH: &str = "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (event_id) DO NOTHING";

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

/// Only the delivery's own attempt, still held by a consumer: a stale consumer cannot reschedule an event
/// that was reclaimed from it.
const RETRY: &str = "UPDATE bus_deliveries SET consumer = NULL, at_ms = ?4, last_error = ?5 \
     WHERE group_name = ?1 AND seq = ?2 AND attempt = ?3 AND consumer IS NOT NULL";

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

const COMPLETE: &str = "INSERT INTO bus_handled (group_name, event_id, handled, until_ms) VALUES (?1, ?2, 1, ?3) \
     ON CONFLICT (group_name, event_id) DO UPDATE SET handled = 1, until_ms = excluded.until_ms";

const RELEASE: &str = "DELETE FROM bus_handled WHERE group_name = ?1 AND event_id = ?2 AND handled = 0";

const DEAD_LETTERS: &str = "SELECT body, attempts, error, dead_at_ms FROM bus_dead_letters \
     WHERE group_name = ?1 ORDER BY id DESC LIMIT ?2";

const GROUP_EXISTS: &str = "SELECT count(*) FROM bus_groups WHERE group_name = ?1";

/// Per priority, the events the group holds and how many of them a consumer has.
const STATS_HELD: &str = "SELECT priority, count(*) AS depth, count(consumer) AS pending FROM bus_deliveries \
     WHERE group_name = ?1 GROUP BY priority";

/// The event the group has held longest: the lowest `seq`, found through the primary key.
const OLDEST_HELD: &str =
    "SELECT occurred_at_ms FROM bus_events WHERE seq = (SELECT min(seq) FROM bus_deliveries WHERE group_name = ?1)";

/// A group not created yet would start with every retained event (`?1` only has to be bound).
const STATS_ALL: &str =
    "SELECT priority, count(*) AS depth, 0 AS pending FROM bus_events WHERE ?1 IS NOT NULL GROUP BY priority";

const OLDEST_ALL: &str = "SELECT occurred_at_ms FROM bus_events WHERE ?1 IS NOT NULL ORDER BY seq LIMIT 1";

const STATS_DEAD: &str = "SELECT count(*) FROM bus_dead_letters WHERE group_name = ?1";

/// Old events that no group holds any more.
const TRIM: &str = "DELETE FROM bus_events WHERE seq IN (SELECT e.seq FROM bus_events e \
     WHERE e.occurred_at_ms < ?1 AND NOT EXISTS (SELECT 1 FROM bus_deliveries d WHERE d.seq = e.seq) LIMIT ?2)";

const TRIM_HANDLED: &str = "DELETE FROM bus_handled WHERE until_ms < ?1";

/// The event bus of the embedded deployment. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct SqliteEventBus {
    pool: SqlitePool,
    /// Groups this bus knows to exist, so a receive does not try to create its group every time.
    groups: Arc<KnownGroups>,
}

impl SqliteStore {
    /// The event bus over this store's database, which also carries the outbox rows its writes add.
    pub fn event_bus(&self) -> SqliteEventBus {
        SqliteEventBus { pool: self.pool.clone(), groups: Arc::default() }
    }
}

impl SqliteEventBus {
    /// Deletes events older than `older_than_ms` that every group has acknowledged (the analogue of a
    /// stream's MAXLEN), and handled marks past their day. Returns how many events went.
    pub async fn trim(&self, older_than_ms: u64) -> BusResult<u64> {
        let now = now_ms();
        let cutoff = now.saturating_sub(i64::try_from(older_than_ms).unwrap_or(i64::MAX));
        let mut deleted = 0;
        loop {
            // One batch per statement, so writers wait for a short one at most.
            let done =
                sqlx::query(TRIM).bind(cutoff).bind(TRIM_BATCH).execute(&self.pool).await.map_err(unavailable)?;
            deleted += done.rows_affected();
            if done.rows_affected() < TRIM_BATCH.unsigned_abs() {
                break;
            }
        }
        sqlx::query(TRIM_HANDLED).bind(now).execute(&self.pool).await.map_err(unavailable)?;
        Ok(deleted)
    }

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
        let mut out = Vec::new();
        for (statement, threshold) in [(RECLAIM, idle_since), (DUE, now), (NEW, now)] {
            if out.len() >= max {
                break;
            }
            let rows = sqlx::query(statement)
                .bind(group)
                .bind(consumer)
                .bind(now)
                .bind(threshold)
                .bind(limit(max - out.len()))
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
            let rows = rows.iter().map(ClaimedRow::from_row).collect::<BusResult<Vec<_>>>()?;
            out.extend(settle(&mut tx, group, now, rows).await?);
        }
        tx.commit().await.map_err(unavailable)?;
        self.groups.insert(group);
        Ok(out)
    }
}

/// Creates `group` holding every retained event, unless it exists.
async fn create_group(tx: &mut SqliteConnection, group: &str, now: i64) -> BusResult<()> {
    let created = sqlx::query(CREATE_GROUP).bind(group).bind(now).execute(&mut *tx).await.map_err(unavailable)?;
    if created.rows_affected() > 0 {
        sqlx::query(FILL_GROUP).bind(group).execute(&mut *tx).await.map_err(unavailable)?;
    }
    Ok(())
}

/// Decodes claimed rows; those that cannot be delivered go to the dead letters in the same transaction.
async fn settle(tx: &mut SqliteConnection, group: &str, now: i64, rows: Vec<ClaimedRow>) -> BusResult<Vec<Delivery>> {
    let (ready, broken) = sql_bus::decode(rows);
    for row in broken {
        sql_bus::log_broken(group, &row);
        bury(tx, group, row.seq, row.attempt, &row.reason, now).await?;
    }
    Ok(ready)
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

#[async_trait]
impl EventBus for SqliteEventBus {
    async fn publish(&self, events: &[Event]) -> BusResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for event in events {
            sqlx::query(PUBLISH)
                .bind(event.id.as_str())
                .bind(event.tenant.as_str())
                .bind(event.kind.as_str())
                .bind(i64::from(event.priority.rank()))
                .bind(event.occurred_at_ms)
                .bind(event.to_json())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn receive(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
        reclaim_after: Duration,
    ) -> BusResult<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut poll = Poll::new(wait);
        loop {
            let deliveries = self.receive_once(group, consumer, max, reclaim_after).await?;
            if !deliveries.is_empty() || !poll.pause().await {
                return Ok(deliveries);
            }
        }
    }

    async fn ack(&self, group: &str, deliveries: &[Delivery]) -> BusResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let seqs = deliveries.iter().map(receipt_seq).collect::<BusResult<Vec<i64>>>()?;
        let seqs = serde_json::Value::from(seqs).to_string();
        sqlx::query(ACK).bind(group).bind(seqs).execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    async fn retry_later(&self, group: &str, delivery: &Delivery, error: &str, delay: Duration) -> BusResult<()> {
        let seq = receipt_seq(delivery)?;
        sqlx::query(RETRY)
            .bind(group)
            .bind(seq)
            .bind(attempt_of(delivery))
            .bind(now_ms().saturating_add(millis(delay)))
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn dead_letter(&self, group: &str, delivery: &Delivery, error: &str) -> BusResult<()> {
        let seq = receipt_seq(delivery)?;
        let mut tx = self.write().await?;
        bury(&mut tx, group, seq, attempt_of(delivery), error, now_ms()).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn claim(&self, group: &str, event: &EventId, lease: Duration) -> BusResult<Claim> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let claimed: Option<i64> = sqlx::query_scalar(CLAIM)
            .bind(group)
            .bind(event.as_str())
            .bind(now.saturating_add(millis(lease)))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let outcome = match claimed {
            Some(code) => Some(code),
            None => sqlx::query_scalar(CLAIM_STATE)
                .bind(group)
                .bind(event.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?,
        };
        tx.commit().await.map_err(unavailable)?;
        Ok(sql_bus::claim_outcome(outcome))
    }

    async fn complete(&self, group: &str, event: &EventId) -> BusResult<()> {
        sqlx::query(COMPLETE)
            .bind(group)
            .bind(event.as_str())
            .bind(now_ms().saturating_add(HANDLED_FOR_MS))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release(&self, group: &str, event: &EventId) -> BusResult<()> {
        sqlx::query(RELEASE).bind(group).bind(event.as_str()).execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    async fn dead_letters(&self, group: &str, max: usize) -> BusResult<Vec<DeadLetter>> {
        let rows =
            sqlx::query(DEAD_LETTERS).bind(group).bind(limit(max)).fetch_all(&self.pool).await.map_err(unavailable)?;
        let letters = rows.iter().map(|row| sql_bus::dead_letter_from_row(group, row));
        Ok(letters.collect::<BusResult<Vec<_>>>()?.into_iter().flatten().collect())
    }

    async fn stats(&self, group: &str) -> BusResult<BusStats> {
        let now = now_ms();
        // One read transaction, so the counts describe the same moment.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let exists: i64 =
            sqlx::query_scalar(GROUP_EXISTS).bind(group).fetch_one(&mut *tx).await.map_err(unavailable)?;
        let (held, oldest) = if exists > 0 { (STATS_HELD, OLDEST_HELD) } else { (STATS_ALL, OLDEST_ALL) };
        let mut stats = StatsBuilder::default();
        for row in sqlx::query(held).bind(group).fetch_all(&mut *tx).await.map_err(unavailable)? {
            stats.add_row(&row)?;
        }
        stats.oldest(sqlx::query_scalar(oldest).bind(group).fetch_optional(&mut *tx).await.map_err(unavailable)?);
        stats.dead_letters(sqlx::query_scalar(STATS_DEAD).bind(group).fetch_one(&mut *tx).await.map_err(unavailable)?);
        tx.commit().await.map_err(unavailable)?;
        Ok(stats.finish(now))
    }
}

#[cfg(test)]
mod tests;
