//! `rsp audit list|tail`: the audit trail through the admin API. `tail` follows it by asking for the
//! records after the last one it printed, so a restart of the server loses nothing and prints nothing twice.

use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;

use super::admin::AdminClient;
use super::args::{AuditCommand, AuditFilter};

/// How often `tail` asks for new records when the last answer was empty.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

fn query(tenant: &str, filter: &AuditFilter, cursor: (&str, Option<u64>), limit: u32) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [("kind", &filter.kind), ("actor", &filter.actor), ("subject", &filter.subject)] {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    if let (name, Some(position)) = cursor {
        query.append_pair(name, &position.to_string());
    }
    query.append_pair("limit", &limit.to_string());
    let tenant: String = url::form_urlencoded::byte_serialize(tenant.as_bytes()).collect();
    format!("/tenants/{tenant}/audit?{}", query.finish())
}

fn records(page: &Value) -> anyhow::Result<&Vec<Value>> {
    page.get("records").and_then(Value::as_array).context("the audit answer has no records")
}

/// Runs an audit command; `list` returns its page, `tail` prints as it goes and returns `Null`.
pub async fn audit(command: AuditCommand) -> anyhow::Result<Value> {
    match command {
        AuditCommand::List { tenant, filter, before, limit, connection } => {
            let admin = AdminClient::connect(&connection).await?;
            admin.call(Method::GET, &query(&tenant, &filter, ("before", before), limit), None).await
        }
        AuditCommand::Tail { tenant, filter, after, count, connection } => {
            let mut admin = AdminClient::connect(&connection).await?;
            let mut cursor = match after {
                Some(after) => after,
                // Start at the newest record: the first page without a cursor is newest first.
                None => {
                    let newest = admin.call(Method::GET, &query(&tenant, &filter, ("before", None), 1), None).await?;
                    records(&newest)?.first().and_then(|r| r.get("seq")).and_then(Value::as_u64).unwrap_or(0)
                }
            };
            let mut printed = 0_u64;
            loop {
                let path = query(&tenant, &filter, ("after", Some(cursor)), 500);
                let page = match admin.call(Method::GET, &path, None).await {
                    Ok(page) => page,
                    // The admin token expires during a long tail: get a new one and ask again, once.
                    Err(_) => {
                        admin = AdminClient::connect(&connection).await?;
                        admin.call(Method::GET, &path, None).await?
                    }
                };
                let page = records(&page)?;
                for record in page {
                    println!("{}", serde_json::to_string(record)?);
                    cursor = record.get("seq").and_then(Value::as_u64).unwrap_or(cursor);
                    printed += 1;
                    if count.is_some_and(|count| printed >= count) {
                        return Ok(Value::Null);
                    }
                }
                if page.is_empty() {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    }
}
