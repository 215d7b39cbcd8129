use crate::audit_rows::suite::{audit_suite, check_migration_0012};
use crate::pg_test::fresh_store;
use crate::sql_bus::suite::isolated;

audit_suite!(fresh_store);

#[tokio::test]
async fn migration_0012_keeps_only_the_detail_in_bodies() {
    isolated(fresh_store().await, |store| async move {
        let migration = include_str!("../../../migrations/postgres/0012_audit_body_detail.sql");
        check_migration_0012!(store, store.primary(), migration);
    })
    .await;
}
