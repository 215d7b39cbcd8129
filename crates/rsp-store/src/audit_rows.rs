//! What the two audit stores share: the page query built from an [`AuditQuery`], and a row's `body`
//! written from an event and the event read back from the row.
//!
//! The query is assembled from the filters present, rather than one statement with `(? IS NULL OR ...)`
//! for each, so each engine plans it against the index of the filter actually used.
//!
//! A row's `body` holds only what has no column of its own (the priority and the kind's data): repeating
//! the id, tenant, kind, actor, subject, time, request and trace ids there doubled each row, and the rows'
//! bytes are what the SQLite writer spends its time on beside the token endpoint (BENCHMARKS.md).
//! Migration 0012 turned the bodies written before into this form.

use rsp_core::TenantId;
use rsp_core::event::{Event, EventId, EventKind, Priority};
use rsp_core::ports::{AuditCursor, AuditQuery, AuditRecord, StoreResult};
use serde::{Deserialize, Serialize};
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::rows::{Columns, corrupt, to_u64};

/// The columns a page returns: the event's own columns and its body.
const RECORD_COLUMNS: &str =
    "seq, event_id, tenant_id, kind, actor, subject, occurred_at_ms, request_id, trace_id, body";

/// What `body` holds, as written.
#[derive(Serialize)]
struct BodyOut<'a> {
    priority: Priority,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    data: &'a serde_json::Value,
}

/// What `body` holds, as read (a missing or null `data` is no data).
#[derive(Deserialize)]
struct BodyIn {
    priority: Priority,
    #[serde(default)]
    data: serde_json::Value,
}

/// The `body` column of `event`'s row.
pub(crate) fn body_of(event: &Event) -> String {
    // A priority and a `Value` always serialize.
    serde_json::to_string(&BodyOut { priority: event.priority, data: &event.data }).unwrap_or_default()
}

/// The most records one page returns, whatever the caller asks for.
pub(crate) const MAX_PAGE: u32 = 1000;

/// `SELECT` of the record columns for the page `query` asks for, newest first unless it follows the trail
/// `After` a seq.
pub(crate) fn page_query<DB>(tenant: &TenantId, query: &AuditQuery) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    String: for<'q> Encode<'q, DB> + Type<DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new(format!("SELECT {RECORD_COLUMNS} FROM audit_events WHERE tenant_id = "));
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
    let body: BodyIn = serde_json::from_str(&row.text("body")?).map_err(|_| corrupt("audit event body"))?;
    let event = Event {
        id: EventId::parse(row.text("event_id")?).ok_or_else(|| corrupt("audit event id"))?,
        tenant: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("audit event tenant"))?,
        kind: EventKind::parse(row.text("kind")?).ok_or_else(|| corrupt("audit event kind"))?,
        priority: body.priority,
        occurred_at_ms: row.int("occurred_at_ms")?,
        actor: row.text("actor")?,
        subject: row.opt_text("subject")?,
        request_id: row.opt_text("request_id")?,
        trace_id: row.opt_text("trace_id")?,
        data: body.data,
    };
    Ok(AuditRecord { seq: to_u64(row.int("seq")?, "audit seq")?, event })
}

#[cfg(test)]
pub(crate) mod suite;
