//! The event bus over PostgreSQL, with the consumer-group model described in [`crate::sql_bus`], shared by
//! every instance of a scaled-out deployment. Everything runs on the primary.
//!
//! Writers run concurrently here, so claims lock what they take: each stage of a receive selects, per
//! priority, the first rows of its index with `FOR UPDATE SKIP LOCKED`, so consumers racing for a group's
//! rows each take different ones without waiting for each other. The fan-out trigger inserts a new event's
//! rows in the publishing transaction, so they become visible with the event and no reader can pass an
//! event that commits late (as a cursor over `seq` could: identity values are taken at insert, not at
//! commit).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::bus::{BusResult, BusStats, Claim, DeadLetter, Delivery, EventBus};
use rsp_core::event::{Event, EventId};
use sqlx::{PgConnection, PgPool};

use super::PostgresStore;
use crate::sql_bus::{
    self, ClaimedRow, HANDLED_FOR_MS, KnownGroups, Poll, StatsBuilder, TRIM_BATCH, attempt_of, limit, millis, now_ms,
    receipt_seq, unavailable,
};

const PUBLISH: &str = "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) \
     SELECT event_id, tenant_id, kind, priority, occurred_at_ms, body \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::text[]) WITH ORDINALITY \
         AS batch (event_id, tenant_id, kind, priority, occurred_at_ms, body, position) \
     ORDER BY position \
     ON CONFLICT (event_id) DO NOTHING";

const GROUP_EXISTS: &str = "SELECT count(*) FROM bus_groups WHERE group_name = $1";

/// Held while a group is created and filled: inserts wait, so each lands wholly before the fill (which
/// copies it) or wholly after (the fan-out trigger then sees the group). Creating a group is rare.
const LOCK_EVENTS: &str = "LOCK TABLE bus_events IN SHARE MODE";

const CREATE_GROUP: &str = "INSERT INTO bus_groups (group_name, created_at_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// A new group starts with every retained event.
const FILL_GROUP: &str = "INSERT INTO bus_deliveries (group_name, seq, priority) \
     SELECT $1, seq, priority FROM bus_events ON CONFLICT DO NOTHING";

// The three claims bind the same parameters: group, consumer, now, the stage's time threshold, limit.

/// Pending rows of any consumer idle since `$4` or earlier go to consumer `$2`.
const RECLAIM: &str = "WITH picked AS ( \
         SELECT x.seq FROM generate_series(0, 4) AS p (rank) CROSS JOIN LATERAL ( \
             SELECT seq, priority, at_ms FROM bus_deliveries \
             WHERE group_name = $1 AND consumer IS NOT NULL AND priority = p.rank AND at_ms <= $4 \
             ORDER BY at_ms LIMIT $5 FOR UPDATE SKIP LOCKED) x \
         ORDER BY x.priority, x.at_ms LIMIT $5), \
     claimed AS ( \
         UPDATE bus_deliveries d SET consumer = $2, at_ms = $3, attempt = d.attempt + 1 \
         FROM picked WHERE d.group_name = $1 AND d.seq = picked.seq \
         RETURNING d.seq, d.priority, d.attempt) \
     SELECT c.seq, c.priority::bigint AS priority, c.attempt, e.body \
     FROM claimed c LEFT JOIN bus_events e ON e.seq = c.seq";

/// Rows waiting for a retry due at `$4` or earlier go to consumer `$2`.
const DUE: &str = "WITH picked AS ( \
         SELECT x.seq FROM generate_series(0, 4) AS p (rank) CROSS JOIN LATERAL ( \
             SELECT seq, priority, at_ms FROM bus_deliveries \
             WHERE group_name = $1 AND consumer IS NULL AND attempt > 0 AND priority = p.rank AND at_ms <= $4 \
             ORDER BY at_ms LIMIT $5 FOR UPDATE SKIP LOCKED) x \
         ORDER BY x.priority, x.at_ms LIMIT $5), \
     claimed AS ( \
         UPDATE bus_deliveries d SET consumer = $2, at_ms = $3, attempt = d.attempt + 1 \
         FROM picked WHERE d.group_name = $1 AND d.seq = picked.seq \
         RETURNING d.seq, d.priority, d.attempt) \
     SELECT c.seq, c.priority::bigint AS priority, c.attempt, e.body \
     FROM claimed c LEFT JOIN bus_events e ON e.seq = c.seq";

/// New rows, in stream order, go to consumer `$2` (their `at_ms` is 0: always due).
const NEW: &str = "WITH picked AS ( \
         SELECT x.seq FROM generate_series(0, 4) AS p (rank) CROSS JOIN LATERAL ( \
             SELECT seq, priority FROM bus_deliveries \
             WHERE group_name = $1 AND attempt = 0 AND priority = p.rank AND at_ms <= $4 \
             ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) x \
         ORDER BY x.priority, x.seq LIMIT $5), \
     claimed AS ( \
         UPDATE bus_deliveries d SET consumer = $2, at_ms = $3, attempt = d.attempt + 1 \
         FROM picked WHERE d.group_name = $1 AND d.seq = picked.seq \
         RETURNING d.seq, d.priority, d.attempt) \
     SELECT c.seq, c.priority::bigint AS priority, c.attempt, e.body \
     FROM claimed c LEFT JOIN bus_events e ON e.seq = c.seq";

const ACK: &str = "DELETE FROM bus_deliveries WHERE group_name = $1 AND seq = ANY ($2)";

/// Only the delivery's own attempt, still held by a consumer: a stale consumer cannot reschedule an event
/// that was reclaimed from it.
const RETRY: &str = "UPDATE bus_deliveries SET consumer = NULL, at_ms = $4, last_error = $5 \
     WHERE group_name = $1 AND seq = $2 AND attempt = $3 AND consumer IS NOT NULL";

/// Moves a delivery still at attempt `$3` to the dead letters, with a copy of its event.
const BURY: &str = "WITH gone AS ( \
         DELETE FROM bus_deliveries WHERE group_name = $1 AND seq = $2 AND attempt = $3 RETURNING seq, attempt) \
     INSERT INTO bus_dead_letters (group_name, event_id, body, attempts, error, dead_at_ms) \
     SELECT $1, e.event_id, e.body, gone.attempt, $4, $5 FROM gone JOIN bus_events e ON e.seq = gone.seq";

/// 0 claimed, 1 in progress, 2 handled (see [`sql_bus::claim_outcome`]).
const CLAIM: &str = "WITH taken AS ( \
         INSERT INTO bus_handled (group_name, event_id, handled, until_ms) VALUES ($1, $2, false, $3) \
         ON CONFLICT (group_name, event_id) DO UPDATE SET until_ms = EXCLUDED.until_ms \
         WHERE NOT bus_handled.handled AND bus_handled.until_ms <= $4 \
         RETURNING 0::bigint AS outcome) \
     SELECT outcome FROM taken \
     UNION ALL \
     SELECT CASE WHEN handled THEN 2::bigint ELSE 1::bigint END FROM bus_handled \
     WHERE group_name = $1 AND event_id = $2 AND NOT EXISTS (SELECT 1 FROM taken)";

const COMPLETE: &str = "INSERT INTO bus_handled (group_name, event_id, handled, until_ms) VALUES ($1, $2, true, $3) \
     ON CONFLICT (group_name, event_id) DO UPDATE SET handled = true, until_ms = EXCLUDED.until_ms";

const RELEASE: &str = "DELETE FROM bus_handled WHERE group_name = $1 AND event_id = $2 AND NOT handled";

const DEAD_LETTERS: &str = "SELECT body, attempts, error, dead_at_ms FROM bus_dead_letters \
     WHERE group_name = $1 ORDER BY id DESC LIMIT $2";

/// Per priority, the events the group holds and how many of them a consumer has.
const STATS_HELD: &str = "SELECT priority::bigint AS priority, count(*) AS depth, count(consumer) AS pending \
     FROM bus_deliveries WHERE group_name = $1 GROUP BY priority";

/// The event the group has held longest: the lowest `seq`, found through the primary key.
const OLDEST_HELD: &str =
    "SELECT occurred_at_ms FROM bus_events WHERE seq = (SELECT min(seq) FROM bus_deliveries WHERE group_name = $1)";

/// A group not created yet would start with every retained event (`$1` only has to be bound).
const STATS_ALL: &str = "SELECT priority::bigint AS priority, count(*) AS depth, 0::bigint AS pending \
     FROM bus_events WHERE $1::text IS NOT NULL GROUP BY priority";

const OLDEST_ALL: &str = "SELECT occurred_at_ms FROM bus_events WHERE $1::text IS NOT NULL ORDER BY seq LIMIT 1";

const STATS_DEAD: &str = "SELECT count(*) FROM bus_dead_letters WHERE group_name = $1";

/// Old events that no group holds any more.
const TRIM: &str = "DELETE FROM bus_events WHERE seq IN (SELECT e.seq FROM bus_events e \
     WHERE e.occurred_at_ms < $1 AND NOT EXISTS (SELECT 1 FROM bus_deliveries d WHERE d.seq = e.seq) LIMIT $2)";

const TRIM_HANDLED: &str = "DELETE FROM bus_handled WHERE until_ms < $1";

/// The event bus over the shared PostgreSQL primary. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PgEventBus {
    pool: PgPool,
    /// Groups this bus knows to exist, so a receive does not look its group up every time.
    groups: Arc<KnownGroups>,
}

impl PostgresStore {
    /// The event bus over this store's primary, which also carries the outbox rows its writes add.
    pub fn event_bus(&self) -> PgEventBus {
        PgEventBus { pool: self.primary().clone(), groups: Arc::default() }
    }
}

impl PgEventBus {
    /// Deletes events older than `older_than_ms` that every group has acknowledged (the analogue of a
    /// stream's MAXLEN), and handled marks past their day. Returns how many events went.
    pub async fn trim(&self, older_than_ms: u64) -> BusResult<u64> {
        let now = now_ms();
        let cutoff = now.saturating_sub(i64::try_from(older_than_ms).unwrap_or(i64::MAX));
        let mut deleted = 0;
        loop {
            // One batch per statement, so no transaction holds many rows for long.
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

    /// Creates `group` holding every retained event, unless it exists.
    async fn ensure_group(&self, group: &str, now: i64) -> BusResult<()> {
        if self.groups.contains(group) {
            return Ok(());
        }
        let exists: i64 =
            sqlx::query_scalar(GROUP_EXISTS).bind(group).fetch_one(&self.pool).await.map_err(unavailable)?;
        if exists == 0 {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            sqlx::query(LOCK_EVENTS).execute(&mut *tx).await.map_err(unavailable)?;
            let created =
                sqlx::query(CREATE_GROUP).bind(group).bind(now).execute(&mut *tx).await.map_err(unavailable)?;
            if created.rows_affected() > 0 {
                sqlx::query(FILL_GROUP).bind(group).execute(&mut *tx).await.map_err(unavailable)?;
            }
            tx.commit().await.map_err(unavailable)?;
        }
        self.groups.insert(group);
        Ok(())
    }

    /// One attempt of [`EventBus::receive`]: reclaimed, then due, then new deliveries, in one transaction.
    async fn receive_once(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        reclaim_after: Duration,
    ) -> BusResult<Vec<Delivery>> {
        let now = now_ms();
        self.ensure_group(group, now).await?;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
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
        Ok(out)
    }
}

/// Decodes claimed rows; those that cannot be delivered go to the dead letters in the same transaction.
async fn settle(tx: &mut PgConnection, group: &str, now: i64, rows: Vec<ClaimedRow>) -> BusResult<Vec<Delivery>> {
    let (ready, broken) = sql_bus::decode(rows);
    for row in broken {
        sql_bus::log_broken(group, &row);
        bury(&mut *tx, group, row.seq, row.attempt, &row.reason, now).await?;
    }
    Ok(ready)
}

/// Moves a delivery to the dead letters, if it is still at `attempt`.
async fn bury(
    executor: impl sqlx::PgExecutor<'_>,
    group: &str,
    seq: i64,
    attempt: i64,
    error: &str,
    now: i64,
) -> BusResult<()> {
    sqlx::query(BURY)
        .bind(group)
        .bind(seq)
        .bind(attempt)
        .bind(error)
        .bind(now)
        .execute(executor)
        .await
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl EventBus for PgEventBus {
    async fn publish(&self, events: &[Event]) -> BusResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&Event) -> String| events.iter().map(f).collect::<Vec<String>>();
        sqlx::query(PUBLISH)
            .bind(column(|e| e.id.to_string()))
            .bind(column(|e| e.tenant.as_str().to_owned()))
            .bind(column(|e| e.kind.as_str().to_owned()))
            .bind(events.iter().map(|e| i16::from(e.priority.rank())).collect::<Vec<i16>>())
            .bind(events.iter().map(|e| e.occurred_at_ms).collect::<Vec<i64>>())
            .bind(column(Event::to_json))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
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
        bury(&self.pool, group, seq, attempt_of(delivery), error, now_ms()).await
    }

    async fn claim(&self, group: &str, event: &EventId, lease: Duration) -> BusResult<Claim> {
        let now = now_ms();
        let outcome: Option<i64> = sqlx::query_scalar(CLAIM)
            .bind(group)
            .bind(event.as_str())
            .bind(now.saturating_add(millis(lease)))
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
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
        // One snapshot for every count, so they describe the same moment.
        let mut tx =
            self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(unavailable)?;
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
