//! The transactional outbox over SQLite: a change's events join the change's transaction.

use rsp_core::Event;
use rsp_core::ports::StoreResult;
use sqlx::SqliteConnection;

use super::events::insert_events;
use super::unavailable;

/// Stores `events` in `bus_events` through the caller's transaction, as a publish would.
pub(super) async fn append(tx: &mut SqliteConnection, events: &[Event]) -> StoreResult<()> {
    if !events.is_empty() {
        insert_events(events).execute(&mut *tx).await.map_err(unavailable)?;
    }
    Ok(())
}
