//! The transactional outbox over SQLite: a change's events join the change's transaction.

use rsp_core::Event;
use rsp_core::ports::StoreResult;
use sqlx::SqliteConnection;

use super::unavailable;

/// Stores `events` in `bus_events` through the caller's transaction. An id already stored is skipped, so a
/// retried write does not publish its events twice.
pub(super) async fn append(tx: &mut SqliteConnection, events: &[Event]) -> StoreResult<()> {
    for event in events {
        sqlx::query(
            "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        )
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
    Ok(())
}
