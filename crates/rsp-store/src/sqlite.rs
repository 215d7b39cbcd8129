//! The SQLite adapter: the no-configuration default. WAL mode lets readers run beside the one writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::StoreError;
use rsp_core::context::note_write;
use rsp_core::ports::{Health, StoreResult};
use rsp_core::{Event, TenantId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use self::audit_writer::AuditWriter;
use crate::sql_bus::Written;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Storage in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The audit trail's writer ([`audit_writer`]); in memory, the one connection there is.
    audit_writer: AuditWriter,
    /// Announces committed outbox events to this database's bus.
    written: Written,
}

/// Driver errors as store errors: see [`crate::rows::db_error`].
pub(crate) use crate::rows::db_error as unavailable;

/// Connections to a database file. SQLite writes one at a time (WAL: readers do not wait for it), so
/// beyond the writer a connection per core reads; each connection is a thread and a page cache of its own
/// (about 350 KB at rest), which at 8 were a tenth of an idle server's memory.
const FILE_CONNECTIONS: u32 = 4;

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = Self::connect(options.clone(), FILE_CONNECTIONS).await?;
        let audit_writer = AuditWriter::open(options).await.map_err(unavailable)?;
        Ok(Self { pool, audit_writer, written: Written::default() })
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(unavailable)?.foreign_keys(true);
        // One connection: each in-memory connection would otherwise be its own database.
        let pool = Self::connect(options, 1).await?;
        Ok(Self { audit_writer: AuditWriter::shared(pool.clone()), pool, written: Written::default() })
    }

    /// A pool of up to `max_connections`, migrated.
    async fn connect(options: SqliteConnectOptions, max_connections: u32) -> StoreResult<SqlitePool> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(pool)
    }

    pub async fn close(&self) {
        self.audit_writer.close().await;
        self.pool.close().await;
    }

    /// A transaction for a change (and its outbox events). `BEGIN IMMEDIATE` takes the write lock up front:
    /// a deferred transaction that reads first could fail to upgrade when another writer got there first.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        note_write();
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)
    }

    /// Ends a change: its events join its transaction (the outbox), then both commit together.
    async fn commit_with_events(&self, mut tx: Transaction<'static, Sqlite>, events: &[Event]) -> StoreResult<()> {
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(unavailable)?;
        if !events.is_empty() {
            self.written.signal();
        }
        Ok(())
    }

    /// Nothing to do: the `BEGIN IMMEDIATE` of [`Self::write_tx`] already makes every writer take turns.
    #[expect(clippy::unused_async, reason = "the shared port code awaits the engine's tenant lock")]
    async fn lock_tenant(_tx: &mut SqliteConnection, _tenant: &TenantId) -> StoreResult<()> {
        Ok(())
    }

    /// A read transaction: SQLite reads in one transaction see one snapshot (WAL mode).
    async fn snapshot_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.pool.begin().await.map_err(unavailable)
    }

    /// One pool for every read: there are no replicas.
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.pool
    }

    /// The same pool as [`Self::reader`]; named apart so the shared port code says which reads must be fresh.
    pub(crate) fn primary(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }
}

mod audit;
mod audit_writer;
mod events;
mod outbox;

crate::engines::accounts::account_stores!(SqliteStore, Sqlite);
crate::engines::users::user_store!(SqliteStore, Sqlite);
crate::engines::keys::key_stores!(SqliteStore);
crate::engines::grants::grant_store!(SqliteStore, Sqlite);
crate::engines::policy::policy_store!(SqliteStore);
crate::engines::sessions::session_store!(SqliteStore);
crate::engines::mfa::mfa_store!(SqliteStore);
crate::engines::login_failures::login_failure_store!(SqliteStore);

pub use events::SqliteEventBus;
