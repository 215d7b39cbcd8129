use std::future::Future;

use sqlx::Row;

use rsp_core::event::Priority;

use async_trait::async_trait;
use rsp_core::bus::{BusResult, EventBus};

use super::*;
use crate::sql_bus::statements::{DEAD_LETTERS, OLDEST_HELD, RETRY, TRIM};
use crate::sql_bus::suite::{self, TestBus, bus_suite, isolated};

#[async_trait]
impl TestBus for SqliteEventBus {
    async fn trim(&self, older_than_ms: u64) -> BusResult<u64> {
        SqliteEventBus::trim(self, older_than_ms).await
    }

    async fn trim_dead_letters(&self, kept_per_group: u64) -> BusResult<u64> {
        SqliteEventBus::trim_dead_letters(self, kept_per_group).await
    }

    async fn run(&self, statement: &'static str) {
        sqlx::query(statement).execute(&self.pool).await.unwrap();
    }

    async fn dead_letter_rows(&self) -> Vec<(String, String)> {
        sqlx::query_as(suite::DEAD_LETTER_ROWS).fetch_all(&self.pool).await.unwrap()
    }
}

/// A bus over a fresh database file (several connections, unlike `in_memory`, so consumers really race),
/// and the future that deletes it.
async fn fresh() -> Option<(SqliteEventBus, impl Future<Output = ()> + Send + 'static)> {
    let path = std::env::temp_dir().join(format!("rsp-bus-{}.db", EventId::generate()));
    let store = SqliteStore::open(&path).await.unwrap();
    let bus = store.event_bus();
    let cleanup = async move {
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    };
    Some((bus, cleanup))
}

bus_suite!(fresh);

#[tokio::test]
async fn outbox_rows_written_by_a_store_transaction_are_delivered() {
    isolated(fresh().await, |bus| async move {
        let event = suite::event(Priority::High);
        // The columns a state-changing transaction writes, and nothing else.
        sqlx::query(
            "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(event.id.as_str())
        .bind(event.tenant.as_str())
        .bind(event.kind.as_str())
        .bind(1_i64)
        .bind(event.occurred_at_ms)
        .bind(event.to_json())
        .execute(&bus.pool)
        .await
        .unwrap();
        let got = bus.receive("g", "c1", 10, Duration::ZERO, Duration::from_secs(60)).await.unwrap();
        assert_eq!(got.into_iter().map(|d| d.event).collect::<Vec<_>>(), vec![event]);
    })
    .await;
}

/// A receive with nothing to deliver waits for the next write instead of polling; a write through the store
/// (an outbox event) or the bus wakes it at once, long before its wait or the longest pause ends.
#[tokio::test]
async fn a_waiting_receive_wakes_at_the_next_write() {
    let path = std::env::temp_dir().join(format!("rsp-bus-{}.db", EventId::generate()));
    let store = SqliteStore::open(&path).await.unwrap();
    let bus = store.event_bus();
    bus.receive("g", "c1", 10, Duration::ZERO, Duration::from_secs(60)).await.unwrap();
    let wait = Duration::from_secs(60);

    let receiving = tokio::spawn({
        let bus = bus.clone();
        async move { bus.receive("g", "c1", 10, wait, Duration::from_secs(60)).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let event = suite::event(Priority::Normal);
    let tx = store.write_tx().await.unwrap();
    store.commit_with_events(tx, std::slice::from_ref(&event)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(500), receiving).await.expect("woken by the outbox write");
    assert_eq!(got.unwrap().into_iter().map(|d| d.event).collect::<Vec<_>>(), vec![event]);

    let receiving = tokio::spawn({
        let bus = bus.clone();
        async move { bus.receive("g", "c1", 10, wait, Duration::from_secs(60)).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let event = suite::event(Priority::Normal);
    bus.publish(std::slice::from_ref(&event)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(500), receiving).await.expect("woken by a publish");
    assert_eq!(got.unwrap().into_iter().map(|d| d.event).collect::<Vec<_>>(), vec![event]);

    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The hot paths read index ranges: no statement scans a table, and claims read rows in delivery order.
#[tokio::test]
async fn hot_paths_search_indexes_instead_of_scanning() {
    isolated(fresh().await, |bus| async move {
        for (name, statement) in [
            ("reclaim", RECLAIM),
            ("due", DUE),
            ("new", NEW),
            ("ack", ACK),
            ("retry", RETRY),
            ("trim", TRIM),
            ("stats", STATS_HELD),
            ("oldest", OLDEST_HELD),
            ("dead letters", DEAD_LETTERS),
        ] {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {statement}")));
            for _ in 0..parameters(statement) {
                query = query.bind(1_i64);
            }
            let plan: Vec<String> =
                query.fetch_all(&bus.pool).await.unwrap().iter().map(|row| row.get::<String, _>("detail")).collect();
            // Scanning is only fine over the JSON list of receipts and the five priorities.
            let scans_a_table = |step: &String| {
                step.starts_with("SCAN ")
                    && !step.contains("json_each")
                    && !step.contains("CONSTANT ROWS")
                    && step != "SCAN p"
            };
            assert!(!plan.iter().any(scans_a_table), "{name} scans a table: {plan:?}");
            assert!(plan.iter().any(|step| step.starts_with("SEARCH")), "{name}: {plan:?}");
            if [RECLAIM, DUE, NEW].contains(&statement) {
                // Rows come out of the index in delivery order, so the LIMIT stops the scan.
                assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{name} sorts: {plan:?}");
            }
        }
    })
    .await;
}

/// How many parameters a statement numbers (`?1` or `$1` to `?N` or `$N`).
fn parameters(statement: &str) -> usize {
    statement.split(['?', '$']).skip(1).filter_map(|rest| rest.chars().next()?.to_digit(10)).max().unwrap_or(0) as usize
}

/// The checks every adapter of the port passes (`rsp-bus`'s conformance suite), each on a fresh database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms_to_the_event_bus_port() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let fresh = move || {
        let path = root.join(format!("{}.db", EventId::generate()));
        async move { Arc::new(SqliteStore::open(&path).await.unwrap().event_bus()) as Arc<dyn EventBus> }
    };
    rsp_bus::conformance::run_all(fresh).await.unwrap();
}
