//! The consumer runner on Redis under failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rsp_bus::{Consumer, ConsumerConfig, EventHandler, HandlerError};
use rsp_core::bus::EventBus;
use rsp_core::{Event, Priority};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::support::{event, fresh_bus};

/// Counts completed handler runs per event subject; the subject named `stall` makes the handler hang
/// (after saying so), as a process would that is killed mid-handler.
#[derive(Default)]
struct Recorder {
    handled: Mutex<HashMap<String, u32>>,
    stall: Option<String>,
    stalled: Notify,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let subject = event.subject.clone().unwrap_or_default();
        if self.stall.as_deref() == Some(subject.as_str()) {
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        *self.handled.lock().unwrap().entry(subject).or_default() += 1;
        Ok(())
    }
}

fn config(group: &str, consumer: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(group, consumer);
    config.batch_size = 50;
    config.reclaim_after = Duration::from_millis(300);
    config.claim_lease = Duration::from_secs(1);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    config.wait = Duration::from_millis(100);
    config
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing_and_nothing_is_handled_twice() {
    let Some(test) = fresh_bus().await else { return };
    let subjects: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
    let events: Vec<Event> = subjects.iter().map(|s| event(Priority::Normal, s)).collect();
    test.bus.publish(&events).await.unwrap();

    // The first consumer (its own bus instance, as another process) takes the whole batch, handles five
    // events and hangs in the sixth; then its task is aborted, before it acknowledged anything.
    let doomed = Arc::new(Recorder { stall: Some("e5".into()), ..Recorder::default() });
    let first_bus: Arc<dyn EventBus> = Arc::new(test.twin().await);
    let consumer = Consumer::new(first_bus, doomed.clone(), config("audit", "doomed")).unwrap();
    let (_keep_running, running) = watch::channel(false);
    let task = tokio::spawn(consumer.run(running));
    tokio::time::timeout(Duration::from_secs(10), doomed.stalled.notified()).await.unwrap();
    task.abort();
    let _ = task.await;
    assert_eq!(doomed.handled.lock().unwrap().len(), 5);
    let stats = test.bus.stats("audit").await.unwrap();
    assert_eq!(stats.pending, 20, "the killed consumer acknowledged nothing: {stats:?}");

    // The survivor reclaims the batch: the five done ones are recognised, the others handled once.
    let survivor = Arc::new(Recorder::default());
    let running = Consumer::new(test.dyn_bus(), survivor.clone(), config("audit", "survivor")).unwrap().spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let stats = test.bus.stats("audit").await.unwrap();
        if (stats.pending == 0 && stats.depth == [0; 5]) || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    test.cleanup().await;

    assert_eq!(settled.pending, 0, "{settled:?}");
    assert_eq!(settled.depth, [0; 5], "{settled:?}");
    let first = doomed.handled.lock().unwrap().clone();
    let second = survivor.handled.lock().unwrap().clone();
    for subject in &subjects {
        let runs = first.get(subject).copied().unwrap_or(0) + second.get(subject).copied().unwrap_or(0);
        assert_eq!(runs, 1, "{subject} handled {runs} times (first {first:?}, second {second:?})");
    }
}

struct AlwaysFails(Mutex<u32>);

#[async_trait]
impl EventHandler for AlwaysFails {
    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        *self.0.lock().unwrap() += 1;
        Err(HandlerError::Transient("search index refused the write".into()))
    }
}

#[tokio::test]
async fn an_always_failing_handler_puts_the_event_in_the_dead_letter_stream_after_n_tries() {
    let Some(test) = fresh_bus().await else { return };
    let published = event(Priority::Critical, "doomed");
    test.bus.publish(std::slice::from_ref(&published)).await.unwrap();
    let handler = Arc::new(AlwaysFails(Mutex::new(0)));
    let mut config = config("indexer", "c1");
    config.max_attempts = 4;
    let running = Consumer::new(test.dyn_bus(), handler.clone(), config).unwrap().spawn();

    let mut connection = test.connection().await;
    let dead_key = test.key("dead:indexer");
    let deadline = Instant::now() + Duration::from_secs(10);
    let entries = loop {
        let entries: redis::streams::StreamRangeReply =
            redis::cmd("XRANGE").arg(&dead_key).arg("-").arg("+").query_async(&mut connection).await.unwrap();
        if !entries.ids.is_empty() || Instant::now() > deadline {
            break entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Give a wrongly continuing runner the time to show itself.
    tokio::time::sleep(Duration::from_millis(400)).await;
    running.stop().await;
    let dead = test.bus.dead_letters("indexer", 10).await.unwrap();
    let stats = test.bus.stats("indexer").await.unwrap();
    test.cleanup().await;

    assert_eq!(entries.ids.len(), 1);
    let entry = &entries.ids[0];
    assert_eq!(entry.get::<String>("attempts").as_deref(), Some("4"));
    assert_eq!(entry.get::<String>("error").as_deref(), Some("search index refused the write"));
    assert_eq!(Event::from_json(&entry.get::<String>("event").unwrap()).unwrap(), published);
    assert_eq!(*handler.0.lock().unwrap(), 4);
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].group.as_str()), (4, "indexer"));
    assert_eq!((stats.dead_letters, stats.pending, stats.depth), (1, 0, [0; 5]));
}

struct Refuses;

#[async_trait]
impl EventHandler for Refuses {
    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        Err(HandlerError::Permanent("unknown event kind".into()))
    }
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_without_retries() {
    let Some(test) = fresh_bus().await else { return };
    test.bus.publish(&[event(Priority::Low, "bad")]).await.unwrap();
    let running = Consumer::new(test.dyn_bus(), Arc::new(Refuses), config("strict", "c1")).unwrap().spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        let dead = test.bus.dead_letters("strict", 10).await.unwrap();
        if !dead.is_empty() || Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    running.stop().await;
    test.cleanup().await;
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].error.as_str()), (1, "unknown event kind"));
}

/// Stopping finishes the delivery in hand and hands the rest of the batch back at once, so another
/// consumer handles them without waiting for `reclaim_after`.
#[tokio::test]
async fn stopping_hands_the_rest_of_the_batch_back() {
    let Some(test) = fresh_bus().await else { return };
    let events: Vec<Event> = (0..10).map(|i| event(Priority::Normal, &format!("s{i}"))).collect();
    test.bus.publish(&events).await.unwrap();

    struct Slow(Mutex<u32>, Notify);
    #[async_trait]
    impl EventHandler for Slow {
        async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
            self.1.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            *self.0.lock().unwrap() += 1;
            Ok(())
        }
    }
    let slow = Arc::new(Slow(Mutex::new(0), Notify::new()));
    let mut slow_config = config("stop", "slow");
    slow_config.reclaim_after = Duration::from_secs(3600);
    let running = Consumer::new(test.dyn_bus(), slow.clone(), slow_config).unwrap().spawn();
    slow.1.notified().await;
    running.stop().await;
    assert_eq!(*slow.0.lock().unwrap(), 1, "the delivery in hand is finished, no other started");

    let rest = Arc::new(Recorder::default());
    let mut rest_config = config("stop", "rest");
    rest_config.reclaim_after = Duration::from_secs(3600);
    let running = Consumer::new(test.dyn_bus(), rest.clone(), rest_config).unwrap().spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rest.handled.lock().unwrap().len() < 9 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
    let stats = test.bus.stats("stop").await.unwrap();
    test.cleanup().await;
    assert_eq!(rest.handled.lock().unwrap().len(), 9);
    assert_eq!((stats.pending, stats.depth), (0, [0; 5]));
}
