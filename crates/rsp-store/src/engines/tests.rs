use sqlx::Row;

use crate::SqliteStore;

/// The shared statements rely on SQLite binding `$N` by its number, not by the order of appearance.
#[tokio::test]
async fn sqlite_binds_numbered_dollar_parameters_by_number() {
    let store = SqliteStore::in_memory().await.unwrap();
    let row = sqlx::query("SELECT $2 AS second, $1 AS first, $1 + $2 AS sum")
        .bind(10_i64)
        .bind(32_i64)
        .fetch_one(store.reader())
        .await
        .unwrap();
    let read = |name: &str| row.try_get::<i64, _>(name).unwrap();
    assert_eq!((read("first"), read("second"), read("sum")), (10, 32, 42));
}
