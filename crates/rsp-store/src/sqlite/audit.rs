//! The audit trail over SQLite. One writer means `seq` order is commit order, so a reader following the
//! trail with `After(seq)` never passes a record that commits later.

use async_trait::async_trait;
use rsp_core::TenantId;
use rsp_core::event::Event;
use rsp_core::ports::{AuditQuery, AuditRecord, AuditStore, StoreResult};

use super::{SqliteStore, unavailable};
use crate::audit_rows::{page_query, record_from_row};

const APPEND: &str = "INSERT INTO audit_events (event_id, tenant_id, kind, actor, subject, occurred_at_ms, \
     request_id, trace_id, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (event_id) DO NOTHING";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, events: &[Event]) -> StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
        let mut added = 0;
        for event in events {
            let done = sqlx::query(APPEND)
                .bind(event.id.as_str())
                .bind(event.tenant.as_str())
                .bind(event.kind.as_str())
                .bind(&event.actor)
                .bind(event.subject.as_deref())
                .bind(event.occurred_at_ms)
                .bind(event.request_id.as_deref())
                .bind(event.trace_id.as_deref())
                .bind(event.to_json())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            added += done.rows_affected();
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(added)
    }

    async fn query_audit(&self, tenant: &TenantId, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let rows =
            page_query::<sqlx::Sqlite>(tenant, query).build().fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(record_from_row).collect()
    }
}

#[cfg(test)]
mod tests;
