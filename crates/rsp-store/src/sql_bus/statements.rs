//! The bus statements both engines run as written: SQLite binds `$N` by number like PostgreSQL, and these
//! use no dialect of either (`true` is 1 in SQLite). Claims, fan-out and dead-lettering differ (row locks
//! and CTEs on PostgreSQL, one writer on SQLite) and stay with each engine.

/// Only the delivery's own attempt, still held by a consumer: a stale consumer cannot reschedule an event
/// that was reclaimed from it.
pub(crate) const RETRY: &str = "UPDATE bus_deliveries SET consumer = NULL, at_ms = $4, last_error = $5 \
     WHERE group_name = $1 AND seq = $2 AND attempt = $3 AND consumer IS NOT NULL";

pub(crate) const COMPLETE: &str = "INSERT INTO bus_handled (group_name, event_id, handled, until_ms) \
     VALUES ($1, $2, true, $3) \
     ON CONFLICT (group_name, event_id) DO UPDATE SET handled = true, until_ms = excluded.until_ms";

pub(crate) const RELEASE: &str = "DELETE FROM bus_handled WHERE group_name = $1 AND event_id = $2 AND NOT handled";

pub(crate) const DEAD_LETTERS: &str = "SELECT body, attempts, error, dead_at_ms FROM bus_dead_letters \
     WHERE group_name = $1 ORDER BY id DESC LIMIT $2";

pub(crate) const GROUP_EXISTS: &str = "SELECT count(*) FROM bus_groups WHERE group_name = $1";

/// The event the group has held longest: the lowest `seq`, found through the primary key.
pub(crate) const OLDEST_HELD: &str =
    "SELECT occurred_at_ms FROM bus_events WHERE seq = (SELECT min(seq) FROM bus_deliveries WHERE group_name = $1)";

pub(crate) const STATS_DEAD: &str = "SELECT count(*) FROM bus_dead_letters WHERE group_name = $1";

/// Old events that no group holds any more.
pub(crate) const TRIM: &str = "DELETE FROM bus_events WHERE seq IN (SELECT e.seq FROM bus_events e \
     WHERE e.occurred_at_ms < $1 AND NOT EXISTS (SELECT 1 FROM bus_deliveries d WHERE d.seq = e.seq) LIMIT $2)";

pub(crate) const TRIM_HANDLED: &str = "DELETE FROM bus_handled WHERE until_ms < $1";

/// The groups that hold dead letters.
pub(crate) const DEAD_LETTER_GROUPS: &str = "SELECT DISTINCT group_name FROM bus_dead_letters";

/// At most `$3` of group `$1`'s dead letters older than its newest `$2` (none when it holds `$2` or fewer:
/// the bound is then NULL, which no id is at most).
pub(crate) const TRIM_DEAD_LETTERS: &str = "DELETE FROM bus_dead_letters WHERE id IN (SELECT id FROM bus_dead_letters \
     WHERE group_name = $1 AND id <= (SELECT id FROM bus_dead_letters WHERE group_name = $1 ORDER BY id DESC \
     LIMIT 1 OFFSET $2) LIMIT $3)";
