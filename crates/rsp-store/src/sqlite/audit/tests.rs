use std::future::Future;

use crate::SqliteStore;
use crate::audit_rows::suite::{audit_suite, check_migration_0012};

async fn fresh() -> Option<(SqliteStore, impl Future<Output = ()> + Send + 'static)> {
    let store = SqliteStore::in_memory().await.unwrap();
    let closing = store.clone();
    Some((store, async move { closing.close().await }))
}

audit_suite!(fresh);

#[tokio::test]
async fn migration_0012_keeps_only_the_detail_in_bodies() {
    let store = SqliteStore::in_memory().await.unwrap();
    let migration = include_str!("../../../migrations/sqlite/0012_audit_body_detail.sql");
    check_migration_0012!(store, &store.pool, migration);
}

/// The same contract through a database file, whose rows go through the writer's own connections.
mod in_a_file {
    use super::*;

    async fn fresh() -> Option<(SqliteStore, impl Future<Output = ()> + Send + 'static)> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("a.db")).await.unwrap();
        let closing = store.clone();
        Some((store, async move {
            closing.close().await;
            drop(dir);
        }))
    }

    audit_suite!(fresh);
}
