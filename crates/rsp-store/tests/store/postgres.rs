//! What only the PostgreSQL adapter does: concurrent start-up migrations, schemas and read replicas.

use std::collections::BTreeSet;

use rsp_core::UnixTime;
use rsp_core::context::RequestContext;
use rsp_core::ports::{ClientStore, KeyStore, RevocationStore, TenantStore};
use rsp_store::{PostgresError, PostgresOptions, PostgresStore};

use crate::engine::{SchemaGuard, connect_or_skip, store_pool};
use crate::fixtures::{client, client_id, jti, key, tenant, tenant_id};

fn migration_count() -> i64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let files =
        std::fs::read_dir(dir).unwrap().filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "sql"));
    i64::try_from(files.count()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_on_a_fresh_schema_migrate_it_once() {
    let schema = SchemaGuard::fresh("race");
    let mut options = schema.options();
    options.max_connections = 1;
    let starts = (0..6).map(|_| {
        let options = options.clone();
        tokio::spawn(async move { connect_or_skip(&options).await })
    });
    let mut stores = Vec::new();
    for start in starts {
        match start.await.unwrap() {
            Some(store) => stores.push(store),
            None => return,
        }
    }
    assert_eq!(stores.len(), 6, "every instance started");

    let pool = store_pool(&schema).await;
    let (applied, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((applied, distinct), (migration_count(), migration_count()), "each migration applied once");
    let (in_schema,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'tenants'",
    )
    .bind(&schema.name)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(in_schema, 1, "tables live in the configured schema");
    stores[0].migrate().await.unwrap();
    for store in &stores {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_never_prints_its_password() {
    let schema = SchemaGuard::fresh("debug");
    let mut options = schema.options();
    // The test server trusts every local connection, so any password connects.
    let mut url = url::Url::parse(&options.url).unwrap();
    url.set_password(Some("pa55-word")).unwrap();
    options.url = url.to_string();
    let Some(store) = connect_or_skip(&options).await else { return };
    let shown = format!("{store:?} {options:?}");
    assert!(!shown.contains("pa55-word"), "{shown}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_name_that_is_not_an_identifier_is_refused_before_connecting() {
    let mut options = PostgresOptions::new("postgres://nobody@127.0.0.1:1/none");
    options.schema = Some("x; DROP TABLE tenants".into());
    let result = PostgresStore::connect(&options).await;
    assert!(matches!(result, Err(PostgresError::Schema(_))), "{result:?}");
}

/// A primary in one schema and, as its "replicas", schemas that the store never writes: what a read
/// returns shows which of them it went to.
struct Replicated {
    store: PostgresStore,
    _schemas: [SchemaGuard; 3],
}

async fn replicated() -> Option<Replicated> {
    let (primary, empty, seeded) =
        (SchemaGuard::fresh("primary"), SchemaGuard::fresh("empty"), SchemaGuard::fresh("seeded"));
    for replica in [&empty, &seeded] {
        connect_or_skip(&replica.options()).await?.close().await;
    }
    // The seeded replica holds one tenant the primary lacks, so round-robin is visible.
    let seeded_store = PostgresStore::connect(&seeded.options()).await.unwrap();
    seeded_store.create_tenant(&tenant("only-on-replica"), &key("only-on-replica", "k1", 1), &[]).await.unwrap();
    seeded_store.close().await;

    let mut options = primary.options();
    options.replica_urls = vec![empty.url(), seeded.url()];
    let store = connect_or_skip(&options).await?;
    answering(&store, 2).await;
    Some(Replicated { store, _schemas: [primary, empty, seeded] })
}

/// Waits until `count` replicas have answered a ping (the first ping runs right after connecting).
async fn answering(store: &PostgresStore, count: usize) {
    let started = std::time::Instant::now();
    while store.answering_replicas() != count {
        assert!(started.elapsed() < 3 * rsp_store::postgres::REPLICA_CHECK_INTERVAL, "replicas never answered");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_does_not_answer_is_skipped_and_reads_keep_working() {
    let (primary, seeded) = (SchemaGuard::fresh("primary"), SchemaGuard::fresh("seeded"));
    let Some(seeded_store) = connect_or_skip(&seeded.options()).await else { return };
    seeded_store.create_tenant(&tenant("only-on-replica"), &key("only-on-replica", "k1", 1), &[]).await.unwrap();
    seeded_store.close().await;
    let mut options = primary.options();
    // Nothing listens on port 1: a replica that is down from the start.
    options.replica_urls = vec!["postgres://postgres@127.0.0.1:1/test".into(), seeded.url()];
    let store = connect_or_skip(&options).await.unwrap();
    answering(&store, 1).await;
    for _ in 0..6 {
        let ids: Vec<String> =
            store.list_tenants().await.unwrap().into_iter().map(|t| t.id.as_str().to_owned()).collect();
        assert_eq!(ids, vec!["only-on-replica".to_owned()], "every read went to the replica that answers");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_outside_a_request_go_to_the_replicas_in_turn() {
    let Some(Replicated { store, _schemas }) = replicated().await else { return };
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        let ids: Vec<String> =
            store.list_tenants().await.unwrap().into_iter().map(|t| t.id.as_str().to_owned()).collect();
        seen.insert(ids);
    }
    let expected: BTreeSet<Vec<String>> = [vec![], vec!["only-on-replica".to_owned()]].into_iter().collect();
    assert_eq!(seen, expected, "both replicas answered and the primary's tenant was not read");
    assert_eq!(store.get_tenant(&tenant_id("a")).await.unwrap(), None);
    assert!(store.published_keys(&tenant_id("a"), UnixTime(1)).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reads_the_primary_once_it_has_written() {
    let Some(Replicated { store, _schemas }) = replicated().await else { return };
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    let (before, after) = RequestContext::new(Some("req-1".into()), None)
        .scope(async {
            let before = store.get_tenant(&tenant_id("a")).await.unwrap();
            store.create_client(&client("a", "c1"), &[]).await.unwrap();
            let after = (
                store.get_tenant(&tenant_id("a")).await.unwrap(),
                store.get_client(&tenant_id("a"), &client_id("c1")).await.unwrap(),
                store.list_clients(&tenant_id("a")).await.unwrap().len(),
                store.published_keys(&tenant_id("a"), UnixTime(1)).await.unwrap().len(),
            );
            (before, after)
        })
        .await;
    assert_eq!(before, None, "before writing, the request may read a replica");
    assert_eq!(after, (Some(tenant("a")), Some(client("a", "c1")), 1, 1), "after writing, it reads its writes");
    assert_eq!(store.get_client(&tenant_id("a"), &client_id("c1")).await.unwrap(), None, "outside it, replicas again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_reads_always_go_to_the_primary() {
    let Some(Replicated { store, _schemas }) = replicated().await else { return };
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.revoke_token(&tenant_id("a"), &jti("j1"), UnixTime(100), &[]).await.unwrap();
    assert!(store.is_revoked(&tenant_id("a"), &jti("j1")).await.unwrap(), "a revocation is seen at once");
    assert_eq!(store.count_published_keys(UnixTime(1)).await.unwrap(), (1, 0));
}
