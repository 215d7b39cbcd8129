//! The engines under test: a fresh SQLite file or a fresh PostgreSQL schema per test, dropped after.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rsp_core::Store;
use rsp_store::{PostgresOptions, PostgresStore, SqliteStore};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

/// A store under test, with a side door to its tables for what the ports do not show (the outbox).
pub struct Engine {
    pub store: Arc<dyn Store>,
    raw: Raw,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<SchemaGuard>,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One row of `bus_events`, as written by a state change.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub event_id: String,
    pub tenant_id: String,
    pub kind: String,
    pub priority: i64,
    pub occurred_at_ms: i64,
    pub body: String,
}

impl Engine {
    pub async fn sqlite() -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsp.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let raw = SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        Engine { store: Arc::new(store), raw: Raw::Sqlite(raw), _dir: Some(dir), _schema: None }
    }

    /// A store in a fresh schema, or `None` (after saying why) when PostgreSQL is unreachable outside CI.
    pub async fn postgres() -> Option<Engine> {
        let schema = SchemaGuard::fresh("store");
        let store = connect_or_skip(&schema.options()).await?;
        let raw = store_pool(&schema).await;
        Some(Engine { store: Arc::new(store), raw: Raw::Postgres(raw), _dir: None, _schema: Some(schema) })
    }

    /// Every outbox row, oldest first.
    pub async fn outbox(&self) -> Vec<OutboxRow> {
        const QUERY: &str = "SELECT event_id, tenant_id, kind, CAST(priority AS BIGINT), occurred_at_ms, body \
                             FROM bus_events ORDER BY seq";
        type Tuple = (String, String, String, i64, i64, String);
        let rows: Vec<Tuple> = match &self.raw {
            Raw::Sqlite(pool) => sqlx::query_as(QUERY).fetch_all(pool).await.unwrap(),
            Raw::Postgres(pool) => sqlx::query_as(QUERY).fetch_all(pool).await.unwrap(),
        };
        rows.into_iter()
            .map(|(event_id, tenant_id, kind, priority, occurred_at_ms, body)| OutboxRow {
                event_id,
                tenant_id,
                kind,
                priority,
                occurred_at_ms,
                body,
            })
            .collect()
    }
}

pub use rsp_test_services::database_url;

/// Connects, or returns `None` after printing why when the server is unreachable, unless `CI=true`,
/// where an unreachable database fails the test.
pub async fn connect_or_skip(options: &PostgresOptions) -> Option<PostgresStore> {
    if let Some(reason) = unreachable() {
        rsp_test_services::unavailable(&format!("PostgreSQL at {}", rsp_store::postgres::redact(&options.url)), reason);
        return None;
    }
    match PostgresStore::connect(options).await {
        Ok(store) => Some(store),
        Err(error) => panic!("PostgreSQL store did not start: {error}"),
    }
}

/// Why the test server cannot be reached, found out once per test binary (each test waiting out its own
/// connection timeout would make a run without PostgreSQL take minutes).
fn unreachable() -> Option<&'static str> {
    static PROBE: OnceLock<Option<String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let probe = std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                let attempt = runtime.block_on(async {
                    let connect = PgConnection::connect(&database_url());
                    tokio::time::timeout(Duration::from_secs(3), connect).await
                });
                match attempt {
                    Ok(Ok(connection)) => {
                        drop(connection);
                        None
                    }
                    Ok(Err(error)) => Some(error.to_string()),
                    Err(_) => Some("no answer within 3 s".to_owned()),
                }
            });
            probe.join().unwrap_or_else(|_| Some("the probe failed".to_owned()))
        })
        .as_deref()
}

/// A pool working in the guard's schema, for reading tables directly.
pub async fn store_pool(schema: &SchemaGuard) -> PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&schema.url()).await.unwrap()
}

/// A uniquely named schema, dropped with everything in it when the guard goes (even if the test failed).
pub struct SchemaGuard {
    pub name: String,
}

impl SchemaGuard {
    pub fn fresh(purpose: &str) -> SchemaGuard {
        SchemaGuard { name: format!("rsp_test_{purpose}_{}", uuid::Uuid::now_v7().simple()) }
    }

    /// Store options for this schema, with a small pool (tests run in parallel on two cores).
    pub fn options(&self) -> PostgresOptions {
        let mut options = PostgresOptions::new(database_url());
        options.schema = Some(self.name.clone());
        options.max_connections = 4;
        options
    }

    /// The database URL with this schema as its search path.
    pub fn url(&self) -> String {
        let url = database_url();
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options[search_path]={}", self.name)
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        // A bounded wait: a connection left inside a transaction must fail the drop, not hang the run.
        let statement = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own runtime can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                // Unreachable server: the test was skipped and there is nothing to drop.
                let mut connection = PgConnection::connect(&database_url()).await.ok()?;
                let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut connection).await;
                let _ = connection.close().await;
                Some(result.map(|_| ()))
            })
        })
        .join();
        if let Ok(Some(Err(error))) = dropped {
            eprintln!("schema {} was not dropped: {error}", self.name);
        }
    }
}
