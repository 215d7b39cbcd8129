use std::collections::HashSet;
use std::future::Future;

use rsp_core::event::Priority;
use sqlx::Row;

use async_trait::async_trait;
use rsp_core::bus::{BusResult, EventBus};

use super::*;
use crate::pg_test::fresh_store;
use crate::sql_bus::statements::{DEAD_LETTERS, OLDEST_HELD, RETRY, TRIM};
use crate::sql_bus::suite::{self, TestBus, bus_suite, isolated};

#[async_trait]
impl TestBus for PgEventBus {
    async fn trim(&self, older_than_ms: u64) -> BusResult<u64> {
        PgEventBus::trim(self, older_than_ms).await
    }

    async fn trim_dead_letters(&self, kept_per_group: u64) -> BusResult<u64> {
        PgEventBus::trim_dead_letters(self, kept_per_group).await
    }

    async fn run(&self, statement: &'static str) {
        sqlx::query(statement).execute(&self.pool).await.unwrap();
    }

    async fn dead_letter_rows(&self) -> Vec<(String, String)> {
        sqlx::query_as(suite::DEAD_LETTER_ROWS).fetch_all(&self.pool).await.unwrap()
    }
}

async fn fresh() -> Option<(PgEventBus, impl Future<Output = ()> + Send + 'static)> {
    let (store, cleanup) = fresh_store().await?;
    Some((store.event_bus(), cleanup))
}

bus_suite!(fresh);

/// What the outbox writes: the columns of a state-changing transaction, nothing else.
const OUTBOX_INSERT: &str = "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) VALUES ($1, $2, $3, $4, $5, $6)";

fn outbox_insert(event: &Event) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(OUTBOX_INSERT)
        .bind(event.id.as_str())
        .bind(event.tenant.as_str())
        .bind(event.kind.as_str())
        .bind(i16::from(event.priority.rank()))
        .bind(event.occurred_at_ms)
        .bind(event.to_json())
}

/// An outbox transaction that took its `seq` first but commits last must still be delivered: a cursor on
/// `seq` would already have moved past it.
#[tokio::test]
async fn an_event_committed_after_a_later_seq_is_not_skipped() {
    isolated(fresh().await, |bus| async move {
        let (slow, fast) = (suite::event(Priority::Normal), suite::event(Priority::Normal));
        let hour = Duration::from_secs(3600);
        assert!(bus.receive("g", "c1", 10, Duration::ZERO, hour).await.unwrap().is_empty(), "creates the group");
        let mut open = bus.pool.begin().await.unwrap();
        outbox_insert(&slow).execute(&mut *open).await.unwrap();
        outbox_insert(&fast).execute(&bus.pool).await.unwrap();

        let mut seen: Vec<EventId> =
            bus.receive("g", "c1", 10, Duration::ZERO, hour).await.unwrap().into_iter().map(|d| d.event.id).collect();
        open.commit().await.unwrap();
        let later = bus.receive("g", "c1", 10, Duration::from_secs(5), hour).await.unwrap();
        seen.extend(later.into_iter().map(|d| d.event.id));
        let unique: HashSet<&EventId> = seen.iter().collect();
        assert_eq!((seen.len(), unique.len()), (2, 2), "{seen:?}");
        assert!(unique.contains(&slow.id) && unique.contains(&fast.id));
    })
    .await;
}

/// A group created while a transaction that stored an event is still open gets that event exactly once:
/// either the fill copies it or the fan-out trigger adds it, never neither or both.
#[tokio::test]
async fn a_group_created_beside_an_open_outbox_transaction_gets_its_event() {
    isolated(fresh().await, |bus| async move {
        let event = suite::event(Priority::High);
        let mut open = bus.pool.begin().await.unwrap();
        outbox_insert(&event).execute(&mut *open).await.unwrap();
        let receiving = {
            let bus = bus.clone();
            tokio::spawn(
                async move { bus.receive("new", "c1", 10, Duration::from_secs(10), Duration::from_secs(60)).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        open.commit().await.unwrap();
        let got = receiving.await.unwrap().unwrap();
        assert_eq!(got.into_iter().map(|d| d.event).collect::<Vec<_>>(), vec![event]);
        let again = bus.receive("new", "c2", 10, Duration::ZERO, Duration::from_secs(60)).await.unwrap();
        assert!(again.is_empty());
    })
    .await;
}

/// With sequential scans priced out, a hot path that still plans one has no index to use.
#[tokio::test]
async fn hot_paths_use_indexes() {
    isolated(fresh().await, |bus| async move {
        // Each statement with the kinds of its parameters: t for text, n for a number.
        let statements = [
            ("reclaim", RECLAIM, "ttnnn"),
            ("due", DUE, "ttnnn"),
            ("new", NEW, "ttnnn"),
            ("retry", RETRY, "tnnnt"),
            ("bury", BURY, "tnntn"),
            ("trim", TRIM, "nn"),
            ("stats", STATS_HELD, "t"),
            ("oldest", OLDEST_HELD, "t"),
            ("dead letters", DEAD_LETTERS, "tn"),
        ];
        for (name, statement, parameters) in statements {
            let mut tx = bus.pool.begin().await.unwrap();
            sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.unwrap();
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {statement}")));
            for kind in parameters.chars() {
                query = if kind == 't' { query.bind("g") } else { query.bind(1_i64) };
            }
            let plan: Vec<String> = query.fetch_all(&mut *tx).await.unwrap().iter().map(|r| r.get(0)).collect();
            let plan = plan.join("\n");
            assert!(!plan.contains("Seq Scan on bus_"), "{name} scans a table:\n{plan}");
            assert!(plan.contains("Index"), "{name}:\n{plan}");
        }
    })
    .await;
}

type Cleanup = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The checks every adapter of the port passes (`rsp-bus`'s conformance suite), each in a fresh schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms_to_the_event_bus_port() {
    let Some((_, probe)) = fresh_store().await else { return };
    probe.await;
    let cleanups: Arc<std::sync::Mutex<Vec<Cleanup>>> = Arc::default();
    let fresh = {
        let cleanups = Arc::clone(&cleanups);
        move || {
            let cleanups = Arc::clone(&cleanups);
            async move {
                let (store, cleanup) = fresh_store().await.unwrap();
                cleanups.lock().unwrap().push(Box::pin(cleanup));
                Arc::new(store.event_bus()) as Arc<dyn EventBus>
            }
        }
    };
    let outcome = rsp_bus::conformance::run_all(fresh).await;
    let pending: Vec<Cleanup> = cleanups.lock().unwrap().drain(..).collect();
    for cleanup in pending {
        cleanup.await;
    }
    outcome.unwrap();
}
