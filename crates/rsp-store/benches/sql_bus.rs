//! Throughput of the SQL event buses through the `EventBus` port: publishing in batches, then draining one
//! group with one and with four consumers (`receive` of up to 100, then `ack`).
//!
//! SQLite runs on a fresh file in a temporary directory; PostgreSQL in a fresh schema of
//! `RSP_TEST_DATABASE_URL` (default: the local server), dropped afterwards, and is skipped (saying why)
//! when unreachable. `cargo bench -p rsp-store --bench sql_bus`.

#![expect(clippy::unwrap_used, reason = "a benchmark fails loudly")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rsp_core::bus::EventBus;
use rsp_core::{Event, EventId, EventKind, Priority, TenantId};
use rsp_store::{PostgresOptions, PostgresStore, SqliteStore};

const EVENTS: usize = 20_000;
const BATCH: usize = 100;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        for consumers in [1, 4] {
            let path = dir.path().join(format!("bench-{consumers}.db"));
            let store = SqliteStore::open(&path).await.unwrap();
            run("sqlite", Arc::new(store.event_bus()), consumers).await;
            store.close().await;
        }

        let url =
            std::env::var("RSP_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        for consumers in [1, 4] {
            let schema = format!("rsp_bench_{}", EventId::generate().as_str().replace('-', "_"));
            let mut options = PostgresOptions::new(url.clone());
            options.schema = Some(schema.clone());
            let store = match PostgresStore::connect(&options).await {
                Ok(store) => store,
                Err(error) => {
                    eprintln!("postgres skipped: {error}");
                    return;
                }
            };
            run("postgres", Arc::new(store.event_bus()), consumers).await;
            store.close().await;
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
            sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&admin).await.unwrap();
        }
    });
}

async fn run(engine: &str, bus: Arc<dyn EventBus>, consumers: usize) {
    let tenant = TenantId::parse("bench").unwrap();
    let events: Vec<Event> = (0..EVENTS)
        .map(|i| {
            Event::new(tenant.clone(), EventKind::TOKEN_ISSUED, Priority::ALL.get(i % 5).copied().unwrap())
                .subject(format!("jti-{i}"))
        })
        .collect();
    // The group exists before publishing, so events reach it through the fan-out as in steady state.
    assert!(bus.receive("bench", "c0", 1, Duration::ZERO, Duration::from_secs(3600)).await.unwrap().is_empty());

    let started = Instant::now();
    for batch in events.chunks(BATCH) {
        bus.publish(batch).await.unwrap();
    }
    let publish = started.elapsed();

    let started = Instant::now();
    let workers: Vec<_> = (0..consumers)
        .map(|n| {
            let bus = Arc::clone(&bus);
            tokio::spawn(async move {
                let consumer = format!("c{n}");
                let mut handled = 0;
                loop {
                    let got = bus
                        .receive("bench", &consumer, BATCH, Duration::ZERO, Duration::from_secs(3600))
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return handled;
                    }
                    bus.ack("bench", &got).await.unwrap();
                    handled += got.len();
                }
            })
        })
        .collect();
    let mut handled = 0;
    for worker in workers {
        handled += worker.await.unwrap();
    }
    let drain = started.elapsed();
    assert_eq!(handled, EVENTS, "every event handled once");

    let rate = |elapsed: Duration| EVENTS as f64 / elapsed.as_secs_f64();
    println!(
        "{engine:8} consumers={consumers}  publish {:>8.0} events/s ({BATCH} per call)   receive+ack {:>8.0} events/s",
        rate(publish),
        rate(drain)
    );
}
