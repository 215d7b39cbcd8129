//! The storage engine chosen by configuration, with the database-backed event bus that lives in it.
//!
//! SQLite in the data directory when no `database_url` is set (the one-command start); PostgreSQL, with
//! optional read replicas, when one is. Both engines carry the same schema, the transactional outbox and
//! the embedded event bus, so the rest of the server sees only the ports.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rsp_core::Store;
use rsp_core::bus::EventBus;
use rsp_store::{PostgresOptions, PostgresStore, SqliteStore};

use crate::config::{Config, redact_url};

/// The opened store, as ports, plus what is needed to close it.
#[derive(Clone)]
pub struct Backend {
    pub store: Arc<dyn Store>,
    /// The bus in the database: the outbox rows of every write, and the embedded bus when there is no Redis.
    pub bus: Arc<dyn EventBus>,
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    Sqlite(SqliteStore),
    Postgres(Box<PostgresStore>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("engine", &self.engine_name()).finish_non_exhaustive()
    }
}

impl Backend {
    /// Opens the configured engine and brings its schema up to date (both engines migrate on open; on
    /// PostgreSQL concurrent starts take turns under an advisory lock).
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let engine = match &config.database_url {
            None => {
                let path = config.data_dir.join("rsp.db");
                let store = SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("cannot open the database {}", path.display()))?;
                Engine::Sqlite(store)
            }
            Some(url) => {
                let mut options = PostgresOptions::new(url.clone());
                options.replica_urls = config.replica_urls();
                options.schema = config.database_schema.clone();
                options.max_connections = config.database_max_connections;
                options.acquire_timeout = Duration::from_secs(config.database_acquire_timeout_secs);
                let store = PostgresStore::connect(&options)
                    .await
                    .with_context(|| format!("cannot open the database {}", redact_url(url)))?;
                Engine::Postgres(Box::new(store))
            }
        };
        let (store, bus): (Arc<dyn Store>, Arc<dyn EventBus>) = match &engine {
            Engine::Sqlite(store) => (Arc::new(store.clone()), Arc::new(store.event_bus())),
            Engine::Postgres(store) => (Arc::new((**store).clone()), Arc::new(store.event_bus())),
        };
        Ok(Self { store, bus, engine })
    }

    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// Deletes bus events older than `older_than` that every consumer group has acknowledged, and each
    /// group's dead letters beyond its newest `dead_letters_kept`. Returns how many events went.
    pub async fn trim_bus(&self, older_than: Duration, dead_letters_kept: u64) -> anyhow::Result<u64> {
        let millis = u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX);
        Ok(match &self.engine {
            Engine::Sqlite(store) => {
                let bus = store.event_bus();
                bus.trim_dead_letters(dead_letters_kept).await?;
                bus.trim(millis).await?
            }
            Engine::Postgres(store) => {
                let bus = store.event_bus();
                bus.trim_dead_letters(dead_letters_kept).await?;
                bus.trim(millis).await?
            }
        })
    }

    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite(store) => store.close().await,
            Engine::Postgres(store) => store.close().await,
        }
    }
}

/// `rsp migrate`: applies pending migrations and exits. The server also migrates when it starts; this is
/// for deployments that run migrations as a separate step (a Kubernetes Job before the rollout).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    // Only SQLite lives in the data directory; a PostgreSQL migration (a Kubernetes init container with a
    // read-only file system) needs none.
    if config.database_url.is_none() {
        crate::bootstrap::ensure_data_dir(&config.data_dir)?;
    }
    let backend = Backend::open(config).await?;
    tracing::info!(engine = backend.engine_name(), "the schema is up to date");
    backend.close().await;
    Ok(())
}
