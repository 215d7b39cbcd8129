//! `GET /admin/v1/tenants/{tenant}/audit`: the audit trail, filtered, in cursor-paginated pages.

use axum::Json;
use axum::extract::{Query, State};
use rsp_core::ports::{AuditCursor, AuditQuery, AuditRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Admin;
use crate::error::ApiError;
use crate::router::AppState;
use crate::routes::path::PathParams;

/// Records per page when the caller does not say.
const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    kind: Option<String>,
    actor: Option<String>,
    subject: Option<String>,
    /// Milliseconds since the Unix epoch, inclusive.
    since_ms: Option<i64>,
    /// Milliseconds since the Unix epoch, exclusive.
    until_ms: Option<i64>,
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u32>,
}

impl AuditParams {
    fn into_query(self) -> Result<AuditQuery, ApiError> {
        let cursor = match (self.before, self.after) {
            (Some(_), Some(_)) => return Err(ApiError::invalid_request("give before or after, not both")),
            (Some(before), None) => Some(AuditCursor::Before(before)),
            (None, Some(after)) => Some(AuditCursor::After(after)),
            (None, None) => None,
        };
        Ok(AuditQuery {
            kind: self.kind,
            actor: self.actor,
            subject: self.subject,
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            cursor,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
        })
    }
}

fn record_json(record: &AuditRecord) -> Value {
    let mut value = serde_json::to_value(&record.event).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("seq".into(), json!(record.seq));
    }
    value
}

pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let query = params.into_query()?;
    let records = state.auth.audit_page(&tenant, &query).await?;
    // The cursor to continue from: the last record's position, in the page's own direction. A newest-first
    // page shorter than asked is the end of the trail; an oldest-first page always continues (live tail).
    let next_cursor = match query.cursor {
        Some(AuditCursor::After(after)) => Some(records.last().map_or(after, |r| r.seq)),
        _ if records.len() < query.limit as usize => None,
        _ => records.last().map(|r| r.seq),
    };
    Ok(Json(json!({
        "records": records.iter().map(record_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}
