//! The publisher: batching, fallback while Redis is down, backpressure, draining on close.

use std::sync::Arc;
use std::time::Duration;

use rsp_bus::{PublishError, Publisher, PublisherConfig, RedisBusConfig, RedisStreamsBus};
use rsp_core::Priority;
use rsp_core::bus::EventBus;
use rsp_test_services::PrivateRedis;

use crate::support::{TestBus, event, fresh_bus, random_prefix};

async fn private_bus(redis: &PrivateRedis) -> Arc<RedisStreamsBus> {
    let config = RedisBusConfig {
        prefix: random_prefix(),
        response_timeout: Duration::from_millis(500),
        connection_timeout: Duration::from_millis(300),
        ..RedisBusConfig::default()
    };
    Arc::new(RedisStreamsBus::connect(&redis.url(), config).await.unwrap())
}

fn depth(stats: &rsp_core::bus::BusStats) -> u64 {
    stats.depth.iter().sum()
}

#[tokio::test]
async fn with_redis_down_events_go_to_the_fallback_and_return_to_redis_when_it_is_back() {
    let Some(mut redis) = PrivateRedis::start_volatile() else { return };
    let Some(fallback) = fresh_bus().await else { return };
    let primary = private_bus(&redis).await;
    let config = PublisherConfig { primary_cooldown: Duration::from_millis(200), ..PublisherConfig::default() };
    let publisher = Publisher::start(primary.clone(), Some(fallback.dyn_bus()), config).unwrap();

    for i in 0..100 {
        publisher.publish(event(Priority::Normal, &format!("up{i}"))).await.unwrap();
    }
    publisher.flush().await.unwrap();
    assert_eq!(depth(&primary.stats("audit").await.unwrap()), 100);

    redis.stop();
    for i in 0..300 {
        publisher.publish(event(Priority::High, &format!("down{i}"))).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(20), publisher.flush()).await.unwrap().unwrap();
    let in_fallback = fallback.bus.stats("audit").await.unwrap();

    // Redis comes back (empty: no persistence): once the cool-down is over, events go to it again.
    redis.start_again().unwrap();
    let mut sent_after = 0u64;
    let mut back = 0;
    while back == 0 && sent_after < 40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        publisher.publish(event(Priority::Low, &format!("back{sent_after}"))).await.unwrap();
        sent_after += 1;
        tokio::time::timeout(Duration::from_secs(20), publisher.flush()).await.unwrap().unwrap();
        back = primary.stats("audit").await.map(|s| depth(&s)).unwrap_or(0);
    }
    let in_fallback_after = fallback.bus.stats("audit").await.unwrap();
    publisher.close().await.unwrap();
    fallback.cleanup().await;

    assert_eq!(in_fallback.depth[1], 300, "every event published while Redis was down is in the fallback");
    assert_eq!(depth(&in_fallback), 300);
    assert!(back > 0, "Redis takes events again once it is back");
    assert_eq!(back + depth(&in_fallback_after), 300 + sent_after, "each event is in exactly one bus");
}

#[tokio::test]
async fn a_full_queue_pushes_back_and_nothing_queued_is_dropped() {
    let Some(mut redis) = PrivateRedis::start_volatile() else { return };
    let primary = private_bus(&redis).await;
    redis.stop();
    let config = PublisherConfig { capacity: 4, max_batch: 2, ..PublisherConfig::default() };
    let publisher = Publisher::start(primary.clone(), None, config).unwrap();

    // The worker holds one batch it cannot store; the queue then fills and refuses more.
    let mut accepted = 0;
    let refused = loop {
        match publisher.try_publish(event(Priority::Normal, &format!("q{accepted}"))) {
            Ok(()) => accepted += 1,
            Err(refused) => break refused,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(accepted < 100, "the queue never filled");
    };
    let PublishError::Full(handed_back) = refused else { panic!("expected Full, got {refused:?}") };
    assert_eq!(handed_back.subject.as_deref(), Some(format!("q{accepted}").as_str()));
    let waiting = tokio::time::timeout(Duration::from_millis(300), publisher.publish(event(Priority::Normal, "x")));
    assert!(waiting.await.is_err(), "publish must wait while the queue is full");

    redis.start_again().unwrap();
    tokio::time::timeout(Duration::from_secs(20), publisher.flush()).await.unwrap().unwrap();
    let stats = primary.stats("audit").await.unwrap();
    assert_eq!(depth(&stats), accepted as u64, "every accepted event reached Redis once it was back");
}

#[tokio::test]
async fn close_drains_the_queue_and_then_refuses_events() {
    let Some(test) = fresh_bus().await else { return };
    let publisher = Publisher::start(test.dyn_bus(), None, PublisherConfig::default()).unwrap();
    let clone = publisher.clone();
    for i in 0..1000 {
        clone.publish(event(Priority::Background, &format!("c{i}"))).await.unwrap();
    }
    publisher.close().await.unwrap();
    let after = clone.publish(event(Priority::Background, "late")).await;
    let stats = test.bus.stats("audit").await.unwrap();
    test.cleanup().await;
    assert!(matches!(after, Err(PublishError::Closed)), "{after:?}");
    assert_eq!(stats.depth[4], 1000);
}

#[tokio::test]
async fn the_forward_handler_relays_events_to_another_bus() {
    let Some(source) = fresh_bus().await else { return };
    let Some(target) = TestBus::connect(&source.url, &random_prefix()).await else { return };
    let events: Vec<_> = (0..25).map(|i| event(Priority::Normal, &format!("r{i}"))).collect();
    source.bus.publish(&events).await.unwrap();
    let handler = Arc::new(rsp_bus::ForwardHandler::new(target.dyn_bus()));
    let mut config = rsp_bus::ConsumerConfig::new("relay", "relay-1");
    config.wait = Duration::from_millis(100);
    let relay = rsp_bus::Consumer::new(source.dyn_bus(), handler, config).unwrap().spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut received = Vec::new();
    while received.len() < 25 && tokio::time::Instant::now() < deadline {
        let more = target.bus.receive("audit", "c1", 25, Duration::from_millis(100), Duration::from_secs(60));
        received.extend(more.await.unwrap());
    }
    relay.stop().await;
    let relayed = source.bus.stats("relay").await.unwrap();
    source.cleanup().await;
    target.cleanup().await;
    let mut got: Vec<_> = received.iter().map(|d| d.event.clone()).collect();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got, events);
    assert_eq!((relayed.pending, depth(&relayed)), (0, 0));
}

/// A handler that records what it stores, fails its first `outages` calls, and refuses the event with
/// subject `poison` for good.
#[derive(Default)]
struct Recording {
    stored: std::sync::Mutex<Vec<String>>,
    outages: std::sync::atomic::AtomicU32,
    batches: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl rsp_bus::EventHandler for Recording {
    async fn handle(&self, event: &rsp_core::Event) -> Result<(), rsp_bus::HandlerError> {
        use std::sync::atomic::Ordering;
        if self.outages.load(Ordering::SeqCst) > 0 {
            self.outages.fetch_sub(1, Ordering::SeqCst);
            return Err(rsp_bus::HandlerError::Transient("down".into()));
        }
        if event.subject.as_deref() == Some("poison") {
            return Err(rsp_bus::HandlerError::Permanent("refused".into()));
        }
        self.stored.lock().unwrap().push(event.subject.clone().unwrap_or_default());
        Ok(())
    }

    async fn handle_batch(&self, events: &[rsp_core::Event]) -> Option<Result<(), rsp_bus::HandlerError>> {
        use std::sync::atomic::Ordering;
        self.batches.fetch_add(1, Ordering::SeqCst);
        if self.outages.load(Ordering::SeqCst) > 0 || events.iter().any(|e| e.subject.as_deref() == Some("poison")) {
            return Some(Err(rsp_bus::HandlerError::Transient("batch failed".into())));
        }
        self.stored.lock().unwrap().extend(events.iter().map(|e| e.subject.clone().unwrap_or_default()));
        Some(Ok(()))
    }
}

#[tokio::test]
async fn a_direct_publisher_hands_batches_to_its_handler_and_retries_until_it_takes_them() {
    use std::sync::atomic::Ordering;
    let handler = Arc::new(Recording::default());
    handler.outages.store(3, Ordering::SeqCst);
    let config = PublisherConfig { retry_max: Duration::from_millis(50), ..PublisherConfig::default() };
    let publisher = Publisher::start_direct(handler.clone(), config).unwrap();
    for i in 0..500 {
        publisher.publish(event(Priority::Normal, &format!("d{i}"))).await.unwrap();
    }
    publisher.publish(event(Priority::Normal, "poison")).await.unwrap();
    publisher.publish(event(Priority::Normal, "after")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), publisher.close()).await.unwrap().unwrap();

    let stored = handler.stored.lock().unwrap().clone();
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    let mut expected: Vec<String> = (0..500).map(|i| format!("d{i}")).chain(["after".to_owned()]).collect();
    expected.sort();
    assert_eq!(unique, expected, "every event stored through the outage, the refused one alone dropped");
    assert!(handler.batches.load(Ordering::SeqCst) < 100, "events went in batches");
}
