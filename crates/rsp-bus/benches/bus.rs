//! Publish → handle through the consumer runner on a real Redis (`RSP_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`), under a random key prefix deleted afterwards.
//!
//! - throughput: `THROUGHPUT_EVENTS` events through the publisher, handled by one runner (then two);
//!   events per second from the first publish to the last handled event (target ≥ 50k/s);
//! - latency: events published one at a time at a steady `LATENCY_RATE` per second; each carries its send
//!   time and the handler records publish-to-handle latency in an HdrHistogram (target p99 < 10 ms).
//!
//! `cargo bench -p rsp-bus --bench bus`. Skips (saying why) when Redis is unreachable.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use rsp_bus::{Consumer, ConsumerConfig, EventHandler, HandlerError, Publisher, PublisherConfig, RedisBusConfig};
use rsp_bus::{RedisStreamsBus, RunningConsumer};
use rsp_core::bus::EventBus;
use rsp_core::{Event, EventKind, Priority, TenantId};
use tokio::sync::Notify;

const THROUGHPUT_EVENTS: u64 = 200_000;
const LATENCY_RATE: u64 = 2_000;
const LATENCY_SECONDS: u64 = 10;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let url = std::env::var("RSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        for consumers in [1, 2] {
            let Some(bus) = connect(&url).await else { return };
            backlog(&bus, consumers).await;
            cleanup(&url, bus.prefix()).await;
        }
        let Some(bus) = connect(&url).await else { return };
        throughput(&bus, 1).await;
        cleanup(&url, bus.prefix()).await;
        let Some(bus) = connect(&url).await else { return };
        latency(&bus).await;
        cleanup(&url, bus.prefix()).await;
    });
}

async fn connect(url: &str) -> Option<Arc<RedisStreamsBus>> {
    let prefix = format!("rsp-bench-{}", uuid::Uuid::now_v7().simple());
    let config = RedisBusConfig { prefix, ..RedisBusConfig::default() };
    match RedisStreamsBus::connect(url, config).await {
        Ok(bus) => Some(Arc::new(bus)),
        Err(e) => {
            eprintln!("bus bench skipped: redis unavailable: {e}");
            None
        }
    }
}

/// Counts handled events and wakes the bench when all arrived; records latency when events carry a send time.
struct Sink {
    handled: AtomicU64,
    expected: u64,
    done: Notify,
    latency: Mutex<Histogram<u64>>,
}

impl Sink {
    fn new(expected: u64) -> Arc<Self> {
        let latency = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        Arc::new(Self { handled: AtomicU64::new(0), expected, done: Notify::new(), latency: Mutex::new(latency) })
    }
}

#[async_trait]
impl EventHandler for Sink {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if let Some(sent) = event.data.get("sent_us").and_then(serde_json::Value::as_u64) {
            let micros = now_micros().saturating_sub(sent).max(1);
            self.latency.lock().unwrap().saturating_record(micros);
        }
        if self.handled.fetch_add(1, Ordering::Relaxed) + 1 == self.expected {
            self.done.notify_one();
        }
        Ok(())
    }
}

fn now_micros() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

fn event(data: serde_json::Value) -> Event {
    Event::new(TenantId::parse("bench").unwrap(), EventKind::TOKEN_ISSUED, Priority::Normal)
        .subject("client-1")
        .data(data)
}

fn consumers(bus: &Arc<RedisStreamsBus>, sink: &Arc<Sink>, count: usize) -> Vec<RunningConsumer> {
    (0..count)
        .map(|i| {
            let mut config = ConsumerConfig::new("bench", format!("c{i}"));
            config.wait = Duration::from_millis(100);
            let bus: Arc<dyn EventBus> = bus.clone();
            Consumer::new(bus, sink.clone(), config).unwrap().spawn()
        })
        .collect()
}

/// Consumers alone: a backlog published beforehand, drained by the runner.
async fn backlog(bus: &Arc<RedisStreamsBus>, consumer_count: usize) {
    let events: Vec<Event> = (0..THROUGHPUT_EVENTS).map(|_| event(serde_json::Value::Null)).collect();
    for chunk in events.chunks(256) {
        bus.publish(chunk).await.unwrap();
    }
    let sink = Sink::new(THROUGHPUT_EVENTS);
    let started = Instant::now();
    let running = consumers(bus, &sink, consumer_count);
    tokio::time::timeout(Duration::from_secs(300), sink.done.notified()).await.expect("all events handled");
    let handled = started.elapsed();
    for consumer in running {
        consumer.stop().await;
    }
    println!(
        "backlog drain ({consumer_count} consumer{}): {THROUGHPUT_EVENTS} events handled in {:.2} s: {:.0} events/s",
        if consumer_count == 1 { "" } else { "s" },
        handled.as_secs_f64(),
        THROUGHPUT_EVENTS as f64 / handled.as_secs_f64(),
    );
}

async fn throughput(bus: &Arc<RedisStreamsBus>, consumer_count: usize) {
    let sink = Sink::new(THROUGHPUT_EVENTS);
    let running = consumers(bus, &sink, consumer_count);
    let publisher = Publisher::start(bus.clone(), None, PublisherConfig::default()).unwrap();
    let started = Instant::now();
    for _ in 0..THROUGHPUT_EVENTS {
        publisher.publish(event(serde_json::Value::Null)).await.unwrap();
    }
    publisher.flush().await.unwrap();
    let published = started.elapsed();
    tokio::time::timeout(Duration::from_secs(300), sink.done.notified()).await.expect("all events handled");
    let handled = started.elapsed();
    for consumer in running {
        consumer.stop().await;
    }
    println!(
        "throughput ({consumer_count} consumer{}): {THROUGHPUT_EVENTS} events published in {:.2} s ({:.0}/s), \
         handled in {:.2} s: {:.0} events/s end to end",
        if consumer_count == 1 { "" } else { "s" },
        published.as_secs_f64(),
        THROUGHPUT_EVENTS as f64 / published.as_secs_f64(),
        handled.as_secs_f64(),
        THROUGHPUT_EVENTS as f64 / handled.as_secs_f64(),
    );
}

async fn latency(bus: &Arc<RedisStreamsBus>) {
    let total = LATENCY_RATE * LATENCY_SECONDS;
    let sink = Sink::new(total);
    let running = consumers(bus, &sink, 1);
    let publisher = Publisher::start(bus.clone(), None, PublisherConfig::default()).unwrap();
    // Let the consumer reach its blocking read before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..total {
        tick.tick().await;
        publisher.publish(event(serde_json::json!({ "sent_us": now_micros() }))).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(60), sink.done.notified()).await.expect("all events handled");
    for consumer in running {
        consumer.stop().await;
    }
    let h = sink.latency.lock().unwrap();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "latency publish->handle at {LATENCY_RATE}/s for {LATENCY_SECONDS} s ({} events): \
         p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0,
    );
}

async fn cleanup(url: &str, prefix: &str) {
    let mut connection = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut connection)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK").arg(keys).query_async(&mut connection).await.unwrap();
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}
