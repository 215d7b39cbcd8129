//! The PostgreSQL adapter: the store of a scaled-out deployment, where several instances share one
//! primary and, optionally, read replicas.
//!
//! # Which reads may go to a replica
//! Replicas lag the primary, so a read goes to one (round-robin) only when staleness is harmless:
//! - the read is one that tolerates lag: tenants, clients, published keys, policy versions and entities
//!   (every one of them is also cached in process for seconds, so a few hundred milliseconds more of lag
//!   changes nothing), and
//! - [`rsp_core::context::replica_read_allowed`] says so: outside a request, or in a request that has not
//!   written yet. Every write calls [`rsp_core::context::note_write`], so a request reads its own writes.
//!
//! A replica is used only while it answers: a background task pings each one every
//! [`REPLICA_CHECK_INTERVAL`] and reads skip those that did not answer (falling back to the primary when
//! none does), so a replica that goes down costs at most the reads of one interval, and one that comes back
//! is used again. Replicas start as unchecked, so a replica down at start-up costs nothing.
//!
//! Reads that decide security stay on the primary whatever the context: `is_revoked` (a revocation must be
//! effective everywhere at once) and `count_published_keys` (the key gauge, read rarely). Writes, and the
//! reads inside a write's transaction, always use the primary.

mod audit;
mod events;
mod options;
mod outbox;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::context::{note_write, replica_read_allowed};
use rsp_core::ports::{Health, StoreResult};
use rsp_core::{Event, TenantId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};

pub use events::PgEventBus;
pub use options::{PostgresError, PostgresOptions, redact};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Storage in PostgreSQL, with optional read replicas. Cloning shares the pools.
#[derive(Clone)]
pub struct PostgresStore {
    primary: PgPool,
    replicas: Arc<[Replica]>,
    /// Round-robin position over `replicas`.
    next_replica: Arc<AtomicUsize>,
    /// The primary's options, kept to open the dedicated migration connection.
    migration_options: PgConnectOptions,
    schema: Option<String>,
}

impl PostgresStore {
    /// Opens the pools (replicas lazily, so a replica that is down does not stop start-up) and, when
    /// `run_migrations` is set, brings the schema up to date.
    pub async fn connect(options: &PostgresOptions) -> Result<Self, PostgresError> {
        let primary_options = options.connect_options(&options.url)?;
        let store = Self {
            primary: pool_options(options)
                .connect_with(primary_options.clone())
                .await
                .map_err(|e| PostgresError::Unavailable(e.to_string()))?,
            replicas: options
                .replica_urls
                .iter()
                .map(|url| {
                    let pool = pool_options(options).connect_lazy_with(options.connect_options(url)?);
                    Ok(Replica { pool, answering: AtomicBool::new(false) })
                })
                .collect::<Result<Vec<_>, PostgresError>>()?
                .into(),
            next_replica: Arc::new(AtomicUsize::new(0)),
            migration_options: primary_options,
            schema: options.schema.clone(),
        };
        if options.run_migrations {
            store.migrate().await?;
        }
        if !store.replicas.is_empty() {
            tokio::spawn(watch_replicas(Arc::downgrade(&store.replicas)));
        }
        Ok(store)
    }

    /// Applies pending migrations (creating the schema first when one is configured).
    ///
    /// Safe when several instances start at once: sqlx's migrator holds a PostgreSQL advisory lock, keyed
    /// by the database name, while it runs, so one instance migrates and the others then find nothing to
    /// do. The lock is per database, not per schema, so migrations of different schemas of one database
    /// also take turns. It runs on a one-connection pool of its own, closed afterwards: a failed migration
    /// leaves the lock held by its session, and closing the session is what releases it.
    pub async fn migrate(&self) -> Result<(), PostgresError> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.migration_options.clone())
            .await
            .map_err(|e| PostgresError::Unavailable(e.to_string()))?;
        let result = self.migrate_on(&pool).await;
        // Closing also releases the advisory lock if the migration failed while holding it.
        pool.close().await;
        result
    }

    async fn migrate_on(&self, connection: &PgPool) -> Result<(), PostgresError> {
        if let Some(schema) = &self.schema {
            let statement = format!("CREATE SCHEMA IF NOT EXISTS {}", options::quoted_schema(schema)?);
            if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(connection).await {
                // Two instances creating the schema at once: one of them meets the other's catalog row.
                if !is_unique_violation(&error) {
                    return Err(PostgresError::Migration(error.to_string()));
                }
            }
        }
        MIGRATOR.run(connection).await.map_err(|e| PostgresError::Migration(e.to_string()))
    }

    /// The primary's pool: every write, and the reads that must see the latest state.
    pub(crate) fn primary(&self) -> &PgPool {
        &self.primary
    }

    /// A transaction on the primary for a change (and its outbox events); later reads of the request go to
    /// the primary too.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        note_write();
        self.primary.begin().await.map_err(crate::rows::db_error)
    }

    /// Makes the writers of one tenant take turns on its row, for changes that read before they write (the
    /// next policy version, the key to retire): without it, two instances would both pass the read.
    async fn lock_tenant(tx: &mut PgConnection, tenant: &TenantId) -> StoreResult<()> {
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
            .bind(tenant.as_str())
            .execute(tx)
            .await
            .map_err(crate::rows::db_error)?;
        Ok(())
    }

    /// One read-only snapshot, on a reader, for reads of several statements that must agree.
    async fn snapshot_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.reader()
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(crate::rows::db_error)
    }

    /// Ends a change: its events join its transaction (the outbox), then both commit together.
    async fn commit_with_events(&self, mut tx: Transaction<'static, Postgres>, events: &[Event]) -> StoreResult<()> {
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(crate::rows::db_error)
    }

    /// The pool for a read that tolerates replica lag (see the module documentation).
    fn reader(&self) -> &PgPool {
        if self.replicas.is_empty() || !replica_read_allowed() {
            return &self.primary;
        }
        let count = self.replicas.len();
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .filter_map(|offset| self.replicas.get(start.wrapping_add(offset) % count))
            .find(|replica| replica.answering.load(Ordering::Relaxed))
            .map_or(&self.primary, |replica| &replica.pool)
    }

    /// How many read replicas answered their last ping (for diagnostics and tests).
    pub fn answering_replicas(&self) -> usize {
        self.replicas.iter().filter(|replica| replica.answering.load(Ordering::Relaxed)).count()
    }

    /// Closes every pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.primary.close().await;
        for replica in self.replicas.iter() {
            replica.pool.close().await;
        }
    }
}

/// By hand, because the driver's connection options print the password.
impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("primary", &self.primary)
            .field("replicas", &self.replicas.len())
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// How often each replica is pinged; also the longest a replica that went down keeps being chosen.
pub const REPLICA_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A read replica and whether it answered its last ping.
struct Replica {
    pool: PgPool,
    answering: AtomicBool,
}

/// Pings every replica each interval until the store is dropped, and logs when one stops or starts
/// answering.
async fn watch_replicas(replicas: std::sync::Weak<[Replica]>) {
    let mut every = tokio::time::interval(REPLICA_CHECK_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(replicas) = replicas.upgrade() else { return };
        for (index, replica) in replicas.iter().enumerate() {
            let ping = sqlx::query("SELECT 1").execute(&replica.pool);
            let answered = matches!(tokio::time::timeout(REPLICA_CHECK_INTERVAL, ping).await, Ok(Ok(_)));
            if replica.answering.swap(answered, Ordering::Relaxed) != answered {
                if answered {
                    tracing::info!(replica = index, "read replica answers; reads may use it");
                } else {
                    tracing::warn!(replica = index, "read replica does not answer; its reads go elsewhere");
                }
            }
        }
    }
}

fn pool_options(options: &PostgresOptions) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_connections)
        .acquire_timeout(options.acquire_timeout)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Health for PostgresStore {
    /// The primary only: a lagging or absent replica degrades reads but does not make the instance unfit.
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.primary).await.map_err(crate::rows::db_error)?;
        Ok(())
    }
}

crate::engines::accounts::account_stores!(PostgresStore, Postgres);
crate::engines::users::user_store!(PostgresStore, Postgres);
crate::engines::keys::key_stores!(PostgresStore);
crate::engines::grants::grant_store!(PostgresStore, Postgres);
crate::engines::policy::policy_store!(PostgresStore);
crate::engines::sessions::session_store!(PostgresStore);
crate::engines::mfa::mfa_store!(PostgresStore);
crate::engines::login_failures::login_failure_store!(PostgresStore);
