//! What the two SQL event buses ([`crate::sqlite::SqliteEventBus`], [`crate::postgres::PgEventBus`]) share.
//!
//! # The model
//! Both keep Redis Streams' consumer-group semantics in the tables of the `0003_bus.sql` migrations:
//! - `bus_events`: the stream. Publishing and the transactional outbox insert here; nothing changes a row
//!   afterwards until trimming deletes it.
//! - `bus_groups` and `bus_deliveries`: per group, one row for each event the group has not acknowledged,
//!   added for every group by an insert trigger in the inserting transaction (fan-out), so an event and
//!   its rows become visible together. A row is new (attempt 0), pending for a consumer since `at_ms` (its
//!   idle time), or waiting for a retry due at `at_ms`. Acknowledging deletes it; dead-lettering moves the
//!   event to `bus_dead_letters`.
//! - `bus_handled`: claims and handled marks for de-duplication by event id.
//!
//! A receive claims, in order, idle pending rows, due waiting rows, then new rows, each through an index
//! of its state ordered by (group, priority, time or seq): it reads only the rows it returns. Trimming
//! deletes old events no group holds a row for. A receipt is the event's `seq`. In `stats`, a group's
//! depth is the rows it holds and `pending` those held by a consumer (a scheduled retry is in the depth,
//! not pending, as with the Redis adapter).
//!
//! # Time
//! Times are the wall clock of the instance in milliseconds since the epoch, like event times. Instances
//! sharing PostgreSQL compare each other's times (idle deliveries, lapsed claims), so their clocks must
//! agree to well within the shortest `reclaim_after` and lease, which NTP provides.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rsp_core::StoreError;
use rsp_core::bus::{BusError, BusResult, BusStats, Claim, DeadLetter, Delivery, depth_index};
use rsp_core::event::{Event, Priority, now_millis};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::rows::Columns;

/// How long a completed event stays marked as handled: longer than any duplicate can arrive.
pub(crate) const HANDLED_FOR_MS: i64 = 24 * 60 * 60 * 1000;

/// Events deleted per trimming statement, so trimming never holds the write lock for long.
pub(crate) const TRIM_BATCH: i64 = 1000;

/// The shortest and longest pause between two polls of an empty receive, where writes from elsewhere cannot be
/// noticed (PostgreSQL: other replicas write too).
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause where writes are announced: what falls due with time alone (a retry, a delivery to
/// reclaim) is found at least this often.
const LONGEST_ANNOUNCED_PAUSE: Duration = Duration::from_secs(1);

pub(crate) fn now_ms() -> i64 {
    now_millis()
}

/// A duration as whole milliseconds, saturating rather than wrapping.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `max` as a SQL `LIMIT`.
pub(crate) fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

pub(crate) fn unavailable(error: sqlx::Error) -> BusError {
    BusError::Unavailable(error.to_string())
}

/// Column errors come back as store errors (see [`Columns`]); on the bus they mean the same outage.
pub(crate) fn from_store(error: StoreError) -> BusError {
    BusError::Unavailable(error.to_string())
}

/// The row a delivery stands for: its receipt is the event's `seq`.
pub(crate) fn receipt_seq(delivery: &Delivery) -> BusResult<i64> {
    delivery.receipt.parse::<i64>().map_err(|_| BusError::Malformed {
        id: delivery.receipt.clone(),
        reason: "not a receipt of this bus".to_owned(),
    })
}

pub(crate) fn attempt_of(delivery: &Delivery) -> i64 {
    i64::from(delivery.attempt)
}

/// The outcome of a claim statement: 0 claimed, 1 in progress, 2 handled. No row means another consumer
/// claimed the event between the statement's snapshot and its insert: it is in progress.
pub(crate) fn claim_outcome(code: Option<i64>) -> Claim {
    match code {
        Some(0) => Claim::Claimed,
        Some(2) => Claim::AlreadyHandled,
        _ => Claim::InProgress,
    }
}

/// Consumer groups this bus has already created, so a receive does not re-create its group every time.
#[derive(Debug, Default)]
pub(crate) struct KnownGroups(Mutex<HashSet<String>>);

impl KnownGroups {
    pub(crate) fn contains(&self, group: &str) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).contains(group)
    }

    pub(crate) fn insert(&self, group: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(group.to_owned());
    }
}

/// Tells the receives waiting on an embedded bus that events were written. Every writer of an embedded
/// database is in this process, so a receive with nothing to deliver waits for this instead of polling: an
/// idle server polled the database twenty times a second per consumer, ~3% of a core (BENCHMARKS.md).
#[derive(Debug, Clone)]
pub(crate) struct Written(Arc<watch::Sender<()>>);

impl Default for Written {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(())))
    }
}

impl Written {
    /// Called after events were committed.
    pub(crate) fn signal(&self) {
        self.0.send_replace(());
    }

    /// A watch that changes with the next [`Self::signal`].
    pub(crate) fn watch(&self) -> watch::Receiver<()> {
        self.0.subscribe()
    }
}

/// The pauses of a receive that waits, never past `wait`: until the next write where writes are announced
/// ([`Written`]), or a second at most; otherwise short at first, longer while nothing arrives.
#[derive(Debug)]
pub(crate) struct Poll {
    deadline: Instant,
    pause: Duration,
    written: Option<watch::Receiver<()>>,
}

impl Poll {
    /// Starts the wait; `written`, taken before the first attempt, so that no write after it goes unnoticed.
    pub(crate) fn new(wait: Duration, written: Option<watch::Receiver<()>>) -> Self {
        Self { deadline: Instant::now() + wait, pause: FIRST_PAUSE, written }
    }

    /// Waits before the next attempt; `false` once the wait is over.
    pub(crate) async fn pause(&mut self) -> bool {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if let Some(written) = &mut self.written {
            let announcer_gone = tokio::select! {
                () = tokio::time::sleep(left.min(LONGEST_ANNOUNCED_PAUSE)) => false,
                changed = written.changed() => changed.is_err(),
            };
            if announcer_gone {
                self.written = None;
            }
            return true;
        }
        tokio::time::sleep(self.pause.min(left)).await;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        true
    }
}

/// A delivery row as a claim statement returns it, before its event is decoded.
#[derive(Debug)]
pub(crate) struct ClaimedRow {
    pub seq: i64,
    pub priority: i64,
    pub attempt: i64,
    /// `None` if the event row is gone, which trimming never does to an unacknowledged event.
    pub body: Option<String>,
}

impl ClaimedRow {
    /// Reads `seq`, `priority`, `attempt` and `body`.
    pub(crate) fn from_row(row: &impl Columns) -> BusResult<Self> {
        Ok(Self {
            seq: row.int("seq").map_err(from_store)?,
            priority: row.int("priority").map_err(from_store)?,
            attempt: row.int("attempt").map_err(from_store)?,
            body: row.opt_text("body").map_err(from_store)?,
        })
    }
}

/// A claimed row whose event cannot be delivered: it goes to the dead letters instead of blocking the group.
#[derive(Debug)]
pub(crate) struct Broken {
    pub seq: i64,
    pub attempt: i64,
    pub reason: String,
}

/// Decodes claimed rows in delivery order (higher priority first, then stream order).
pub(crate) fn decode(mut rows: Vec<ClaimedRow>) -> (Vec<Delivery>, Vec<Broken>) {
    rows.sort_by_key(|row| (row.priority, row.seq));
    let mut ready = Vec::with_capacity(rows.len());
    let mut broken = Vec::new();
    for row in rows {
        let event = match row.body.as_deref().map(Event::from_json) {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                broken.push(Broken { seq: row.seq, attempt: row.attempt, reason: format!("malformed event: {error}") });
                continue;
            }
            None => {
                broken.push(Broken { seq: row.seq, attempt: row.attempt, reason: "event no longer stored".into() });
                continue;
            }
        };
        let attempt = u32::try_from(row.attempt).unwrap_or(u32::MAX);
        ready.push(Delivery { event, receipt: row.seq.to_string(), attempt });
    }
    (ready, broken)
}

pub(crate) fn log_broken(group: &str, broken: &Broken) {
    tracing::warn!(group, seq = broken.seq, reason = %broken.reason, "event moved to the dead letters undelivered");
}

/// A dead-letter row; `None` (logged) when its stored event no longer decodes, so one bad row does not
/// hide the others from an operator.
pub(crate) fn dead_letter_from_row(group: &str, row: &impl Columns) -> BusResult<Option<DeadLetter>> {
    let body = row.text("body").map_err(from_store)?;
    let event = match Event::from_json(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(group, %error, "dead letter whose event does not decode");
            return Ok(None);
        }
    };
    Ok(Some(DeadLetter {
        event,
        group: group.to_owned(),
        attempts: u32::try_from(row.int("attempts").map_err(from_store)?).unwrap_or(u32::MAX),
        error: row.text("error").map_err(from_store)?,
        dead_at_ms: row.int("dead_at_ms").map_err(from_store)?,
    }))
}

/// Adds up [`BusStats`] from per-priority counts.
#[derive(Debug, Default)]
pub(crate) struct StatsBuilder {
    stats: BusStats,
    oldest_ms: Option<i64>,
}

impl StatsBuilder {
    /// Reads a row of `priority`, `depth` (unacknowledged events) and `pending` (those held by a consumer).
    pub(crate) fn add_row(&mut self, row: &impl Columns) -> BusResult<()> {
        let rank = row.int("priority").map_err(from_store)?;
        let priority = u8::try_from(rank).ok().and_then(Priority::from_rank).ok_or_else(|| BusError::Malformed {
            id: format!("priority {rank}"),
            reason: "not a priority rank".to_owned(),
        })?;
        let count = |name: &str| row.int(name).map(|n| u64::try_from(n).unwrap_or(0)).map_err(from_store);
        if let Some(slot) = self.stats.depth.get_mut(depth_index(priority)) {
            *slot += count("depth")?;
        }
        self.stats.pending += count("pending")?;
        Ok(())
    }

    /// When the oldest unacknowledged event occurred (`None` when there is none).
    pub(crate) fn oldest(&mut self, occurred_at_ms: Option<i64>) {
        self.oldest_ms = occurred_at_ms;
    }

    pub(crate) fn dead_letters(&mut self, count: i64) {
        self.stats.dead_letters = u64::try_from(count).unwrap_or(0);
    }

    pub(crate) fn finish(mut self, now_ms: i64) -> BusStats {
        self.stats.oldest_unacked_ms =
            self.oldest_ms.map_or(0, |oldest| u64::try_from(now_ms.saturating_sub(oldest)).unwrap_or(0));
        self.stats
    }
}

pub(crate) mod port;
pub(crate) mod statements;
#[cfg(test)]
pub(crate) mod suite;
