//! The audit trail over SQLite. One writer means `seq` order is commit order, so a reader following the
//! trail with `After(seq)` never passes a record that commits later.

use async_trait::async_trait;
use rsp_core::TenantId;
use rsp_core::event::Event;
use rsp_core::ports::{AuditQuery, AuditRecord, AuditStore, StoreResult};

use super::{SqliteStore, unavailable};
use crate::audit_rows::{body_of, page_query, record_from_row};

/// A whole batch in one statement: `?1` is a JSON array of rows `[id, tenant, kind, actor, subject,
/// occurred_at_ms, request_id, trace_id, body]`, unpacked by `json_each` in array order, so `seq` follows
/// the batch. One statement instead of one per event: through sqlx each is a round trip to the
/// connection's thread, which cost more than the rows themselves.
const APPEND: &str = "INSERT INTO audit_events (event_id, tenant_id, kind, actor, subject, occurred_at_ms, \
     request_id, trace_id, body) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
         value ->> 7, value ->> 8 FROM json_each(?1) \
     WHERE true ON CONFLICT (event_id) DO NOTHING";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, events: &[Event]) -> StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                let (id, tenant, kind) = (e.id.as_str(), e.tenant.as_str(), e.kind.as_str());
                let optional = (e.subject.as_deref(), e.request_id.as_deref(), e.trace_id.as_deref());
                (id, tenant, kind, e.actor.as_str(), optional.0, e.occurred_at_ms, optional.1, optional.2, body_of(e))
            })
            .collect();
        // Serializing strings and integers cannot fail.
        let rows = serde_json::to_string(&rows).unwrap_or_default();
        let done =
            self.audit_writer.execute(sqlx::query(APPEND).bind(rows), events.len()).await.map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    async fn query_audit(&self, tenant: &TenantId, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let rows =
            page_query::<sqlx::Sqlite>(tenant, query).build().fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(record_from_row).collect()
    }
}

#[cfg(test)]
mod tests;
