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

use rsp_core::bus::{BusResult, Delivery};
use rsp_core::event::{Event, EventId};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::PostgresStore;
use crate::sql_bus::statements::GROUP_EXISTS;
use crate::sql_bus::{self, KnownGroups, millis, now_ms, unavailable};

const PUBLISH: &str = "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) \
     SELECT event_id, tenant_id, kind, priority, occurred_at_ms, body \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::text[]) WITH ORDINALITY \
         AS batch (event_id, tenant_id, kind, priority, occurred_at_ms, body, position) \
     ORDER BY position \
     ON CONFLICT (event_id) DO NOTHING";

/// Held while a group is created and filled: inserts wait, so each lands wholly before the fill (which
/// copies it) or wholly after (the fan-out trigger then sees the group). Creating a group is rare.
const LOCK_EVENTS: &str = "LOCK TABLE bus_events IN SHARE MODE";

const CREATE_GROUP: &str = "INSERT INTO bus_groups (group_name, created_at_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// A new group starts with every retained event.
const FILL_GROUP: &str = "INSERT INTO bus_deliveries (group_name, seq, priority) \
     SELECT $1, seq, priority FROM bus_events ON CONFLICT DO NOTHING";

/// The statement of one claim stage, binding group, consumer, now, the stage's time threshold and limit.
/// Per priority, it takes the first rows of the stage's index that match `rows`, in `order`, with
/// `FOR UPDATE SKIP LOCKED` so consumers racing for a group's rows take different ones; then it hands them
/// to consumer `$2` and returns them with their events' bodies.
macro_rules! claim {
    (select: $columns:literal, rows: $rows:literal, order: $order:literal) => {
        concat!(
            "WITH picked AS ( \
                 SELECT x.seq FROM generate_series(0, 4) AS p (rank) CROSS JOIN LATERAL ( \
                     SELECT ",
            $columns,
            " FROM bus_deliveries WHERE group_name = $1 AND ",
            $rows,
            " AND priority = p.rank AND at_ms <= $4 ORDER BY ",
            $order,
            " LIMIT $5 FOR UPDATE SKIP LOCKED) x \
                 ORDER BY x.priority, x.",
            $order,
            " LIMIT $5), \
             claimed AS ( \
                 UPDATE bus_deliveries d SET consumer = $2, at_ms = $3, attempt = d.attempt + 1 \
                 FROM picked WHERE d.group_name = $1 AND d.seq = picked.seq \
                 RETURNING d.seq, d.priority, d.attempt) \
             SELECT c.seq, c.priority::bigint AS priority, c.attempt, e.body \
             FROM claimed c LEFT JOIN bus_events e ON e.seq = c.seq"
        )
    };
}

/// Pending rows of any consumer idle since `$4` or earlier go to consumer `$2`.
const RECLAIM: &str = claim!(select: "seq, priority, at_ms", rows: "consumer IS NOT NULL", order: "at_ms");

/// Rows waiting for a retry due at `$4` or earlier go to consumer `$2`.
const DUE: &str = claim!(select: "seq, priority, at_ms", rows: "consumer IS NULL AND attempt > 0", order: "at_ms");

/// New rows, in stream order, go to consumer `$2` (their `at_ms` is 0: always due).
const NEW: &str = claim!(select: "seq, priority", rows: "attempt = 0", order: "seq");

const ACK: &str = "DELETE FROM bus_deliveries WHERE group_name = $1 AND seq = ANY ($2)";

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

/// Per priority, the events the group holds and how many of them a consumer has.
const STATS_HELD: &str = "SELECT priority::bigint AS priority, count(*) AS depth, count(consumer) AS pending \
     FROM bus_deliveries WHERE group_name = $1 GROUP BY priority";

/// A group not created yet would start with every retained event (`$1` only has to be bound).
const STATS_ALL: &str = "SELECT priority::bigint AS priority, count(*) AS depth, 0::bigint AS pending \
     FROM bus_events WHERE $1::text IS NOT NULL GROUP BY priority";

const OLDEST_ALL: &str = "SELECT occurred_at_ms FROM bus_events WHERE $1::text IS NOT NULL ORDER BY seq LIMIT 1";

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
        let out = Self::claim_in(&mut tx, group, consumer, max, now, idle_since).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(out)
    }
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

/// What [`sql_bus::port::event_bus_port`] leaves to PostgreSQL.
impl PgEventBus {
    /// All `events` in one statement, whatever their number.
    async fn publish_events(&self, events: &[Event]) -> BusResult<()> {
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

    /// Other replicas write too: a receive polls.
    #[expect(clippy::unused_self, reason = "the embedded bus's watch is its own")]
    fn written_watch(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        None
    }

    async fn ack_seqs(&self, group: &str, seqs: Vec<i64>) -> BusResult<()> {
        sqlx::query(ACK).bind(group).bind(seqs).execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    async fn bury(&self, group: &str, seq: i64, attempt: i64, error: &str, now: i64) -> BusResult<()> {
        bury(&self.pool, group, seq, attempt, error, now).await
    }

    /// One statement: the insert-or-take and, when it took nothing, the state it met.
    async fn try_claim(&self, group: &str, event: &EventId, until_ms: i64, now: i64) -> BusResult<Option<i64>> {
        sqlx::query_scalar(CLAIM)
            .bind(group)
            .bind(event.as_str())
            .bind(until_ms)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// [`Self::try_claim`] for several events in one transaction (one round trip to commit).
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
            let outcome: Option<i64> = sqlx::query_scalar(CLAIM)
                .bind(group)
                .bind(event.as_str())
                .bind(until_ms)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            outcomes.push(outcome);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(outcomes)
    }

    /// A write transaction (what SQLite's `BEGIN IMMEDIATE` is there: row locks do the rest here).
    async fn write(&self) -> BusResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(unavailable)
    }

    async fn snapshot(&self) -> BusResult<Transaction<'static, Postgres>> {
        self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(unavailable)
    }
}

sql_bus::port::event_bus_port!(PgEventBus, PgConnection);

#[cfg(test)]
mod tests;
