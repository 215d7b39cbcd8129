//! The transactional outbox over PostgreSQL: a change's events join the change's transaction.

use rsp_core::Event;
use rsp_core::ports::StoreResult;
use sqlx::PgConnection;

use crate::rows::db_error;

/// Stores `events` in `bus_events` through the caller's transaction, in one statement whatever their
/// number. An id already stored is skipped, so a retried write does not publish its events twice. The
/// row's `xid` defaults to the writing transaction, which is what the bus's readers order by.
pub(super) async fn append(tx: &mut PgConnection, events: &[Event]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let column = |field: fn(&Event) -> String| events.iter().map(field).collect::<Vec<String>>();
    sqlx::query(
        "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) \
         SELECT event_id, tenant_id, kind, priority, occurred_at_ms, body \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::text[]) WITH ORDINALITY \
             AS batch (event_id, tenant_id, kind, priority, occurred_at_ms, body, position) \
         ORDER BY position \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(column(|e| e.id.as_str().to_owned()))
    .bind(column(|e| e.tenant.as_str().to_owned()))
    .bind(column(|e| e.kind.as_str().to_owned()))
    .bind(events.iter().map(|e| i16::from(e.priority.rank())).collect::<Vec<i16>>())
    .bind(events.iter().map(|e| e.occurred_at_ms).collect::<Vec<i64>>())
    .bind(column(Event::to_json))
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    Ok(())
}
