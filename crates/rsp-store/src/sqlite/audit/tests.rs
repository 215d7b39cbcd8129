use std::future::Future;

use crate::SqliteStore;
use crate::audit_rows::suite::audit_suite;

async fn fresh() -> Option<(SqliteStore, impl Future<Output = ()> + Send + 'static)> {
    let store = SqliteStore::in_memory().await.unwrap();
    let closing = store.clone();
    Some((store, async move { closing.close().await }))
}

audit_suite!(fresh);
