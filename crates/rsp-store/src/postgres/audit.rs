//! The audit trail over PostgreSQL.
//!
//! Identity values are taken at insert and become visible at commit, so two appends running at once could
//! commit out of `seq` order, and a reader following the trail with `After(seq)` would step over the record
//! that committed second. Appends therefore take a lock on the table (`SHARE ROW EXCLUSIVE`: appends take
//! turns, readers are never blocked), which makes `seq` order the commit order. Appends come in batches
//! from the audit consumer, so taking turns costs little.

use async_trait::async_trait;
use rsp_core::TenantId;
use rsp_core::event::Event;
use rsp_core::ports::{AuditQuery, AuditRecord, AuditStore, StoreResult};

use super::PostgresStore;
use crate::audit_rows::{body_of, page_query, record_from_row};
use crate::rows::db_error;

const LOCK: &str = "LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE";

const APPEND: &str = "INSERT INTO audit_events (event_id, tenant_id, kind, actor, subject, occurred_at_ms, \
         request_id, trace_id, body) \
     SELECT event_id, tenant_id, kind, actor, subject, occurred_at_ms, request_id, trace_id, body \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], \
         $8::text[], $9::text[]) WITH ORDINALITY \
         AS batch (event_id, tenant_id, kind, actor, subject, occurred_at_ms, request_id, trace_id, body, position) \
     ORDER BY position \
     ON CONFLICT (event_id) DO NOTHING";

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, events: &[Event]) -> StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let text = |f: fn(&Event) -> String| events.iter().map(f).collect::<Vec<String>>();
        let optional = |f: fn(&Event) -> Option<String>| events.iter().map(f).collect::<Vec<Option<String>>>();
        let mut tx = self.primary().begin().await.map_err(db_error)?;
        sqlx::query(LOCK).execute(&mut *tx).await.map_err(db_error)?;
        let done = sqlx::query(APPEND)
            .bind(text(|e| e.id.to_string()))
            .bind(text(|e| e.tenant.as_str().to_owned()))
            .bind(text(|e| e.kind.as_str().to_owned()))
            .bind(text(|e| e.actor.clone()))
            .bind(optional(|e| e.subject.clone()))
            .bind(events.iter().map(|e| e.occurred_at_ms).collect::<Vec<i64>>())
            .bind(optional(|e| e.request_id.clone()))
            .bind(optional(|e| e.trace_id.clone()))
            .bind(events.iter().map(body_of).collect::<Vec<String>>())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(done.rows_affected())
    }

    /// On the primary: the trail is read by operators and `rsp audit tail`, which must not miss what a
    /// lagging replica has not received yet.
    async fn query_audit(&self, tenant: &TenantId, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let rows =
            page_query::<sqlx::Postgres>(tenant, query).build().fetch_all(self.primary()).await.map_err(db_error)?;
        rows.iter().map(record_from_row).collect()
    }
}

#[cfg(test)]
mod tests;
