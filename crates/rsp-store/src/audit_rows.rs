//! What the two audit stores share: the page query built from an [`AuditQuery`], and records from rows.
//!
//! The query is assembled from the filters present, rather than one statement with `(? IS NULL OR ...)`
//! for each, so each engine plans it against the index of the filter actually used.

use rsp_core::TenantId;
use rsp_core::event::Event;
use rsp_core::ports::{AuditCursor, AuditQuery, AuditRecord, StoreResult};
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::rows::{Columns, corrupt, to_u64};

/// The most records one page returns, whatever the caller asks for.
pub(crate) const MAX_PAGE: u32 = 1000;

/// `SELECT seq, body` of the page `query` asks for, newest first unless it follows the trail `After` a seq.
pub(crate) fn page_query<DB>(tenant: &TenantId, query: &AuditQuery) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    String: for<'q> Encode<'q, DB> + Type<DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new("SELECT seq, body FROM audit_events WHERE tenant_id = ");
    sql.push_bind(tenant.as_str().to_owned());
    let text_filters = [("kind", &query.kind), ("actor", &query.actor), ("subject", &query.subject)];
    for (column, value) in text_filters {
        if let Some(value) = value {
            sql.push(format_args!(" AND {column} = ")).push_bind(value.clone());
        }
    }
    if let Some(since) = query.since_ms {
        sql.push(" AND occurred_at_ms >= ").push_bind(since);
    }
    if let Some(until) = query.until_ms {
        sql.push(" AND occurred_at_ms < ").push_bind(until);
    }
    // A cursor past the largest stored seq means "from the end"; seqs are positive 64-bit integers.
    let seq = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let newest_first = match query.cursor {
        Some(AuditCursor::Before(before)) => {
            sql.push(" AND seq < ").push_bind(seq(before));
            true
        }
        Some(AuditCursor::After(after)) => {
            sql.push(" AND seq > ").push_bind(seq(after));
            false
        }
        None => true,
    };
    sql.push(if newest_first { " ORDER BY seq DESC LIMIT " } else { " ORDER BY seq ASC LIMIT " });
    sql.push_bind(i64::from(query.limit.min(MAX_PAGE)));
    sql
}

pub(crate) fn record_from_row(row: &impl Columns) -> StoreResult<AuditRecord> {
    let event = Event::from_json(&row.text("body")?).map_err(|_| corrupt("audit event"))?;
    Ok(AuditRecord { seq: to_u64(row.int("seq")?, "audit seq")?, event })
}

#[cfg(test)]
pub(crate) mod suite;
