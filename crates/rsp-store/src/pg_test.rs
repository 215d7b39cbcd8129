//! A fresh PostgreSQL schema per test, for the tests of this crate's PostgreSQL adapters.
//!
//! The server comes from `RSP_TEST_DATABASE_URL` (default: the local trust-auth server). When it cannot be
//! reached the test is skipped with a message, except under `CI=true`, where that is a failure.

use std::future::Future;

use rsp_core::EventId;

use crate::{PostgresOptions, PostgresStore};

/// A store in a new schema, and the future that drops the schema (run it even when the test failed).
pub(crate) async fn fresh_store() -> Option<(PostgresStore, impl Future<Output = ()> + Send + 'static)> {
    let url = rsp_test_services::database_url();
    let random: String = EventId::generate().as_str().chars().rev().filter(char::is_ascii_hexdigit).take(16).collect();
    let schema = format!("rsp_test_{random}");
    let mut options = PostgresOptions::new(url);
    options.schema = Some(schema.clone());
    options.max_connections = 8;
    let store = match PostgresStore::connect(&options).await {
        Ok(store) => store,
        Err(error) => {
            rsp_test_services::unavailable("PostgreSQL", error);
            return None;
        }
    };
    let dropping = store.clone();
    let cleanup = async move {
        let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(dropping.primary()).await.unwrap();
        dropping.close().await;
    };
    Some((store, cleanup))
}
