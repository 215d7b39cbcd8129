//! Behaviour particular to the Redis adapter: key layout, bad input, lost keys, blocking reads, a start
//! without Redis.

use std::time::Duration;

use rsp_bus::{RedisBusConfig, RedisStreamsBus};
use rsp_core::Priority;
use rsp_core::bus::{BusError, Delivery, EventBus};
use rsp_test_services::PrivateRedis;
use tokio::time::Instant;

use crate::support::{event, fresh_bus, random_prefix};

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn events_land_in_one_stream_per_priority_as_json() {
    let Some(test) = fresh_bus().await else { return };
    let published = event(Priority::Critical, "k");
    test.bus.publish(std::slice::from_ref(&published)).await.unwrap();
    let mut connection = test.connection().await;
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(test.key("events:critical"))
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    let normal: u64 = redis::cmd("XLEN").arg(test.key("events:normal")).query_async(&mut connection).await.unwrap();
    test.cleanup().await;
    assert_eq!(entries.ids.len(), 1);
    assert_eq!(entries.ids[0].get::<String>("event"), Some(published.to_json()));
    assert_eq!(normal, 0);
}

#[tokio::test]
async fn an_entry_that_is_not_an_event_is_dead_lettered_not_delivered() {
    let Some(test) = fresh_bus().await else { return };
    let mut connection = test.connection().await;
    redis::cmd("XADD")
        .arg(test.key("events:normal"))
        .arg("*")
        .arg("event")
        .arg("{not json")
        .query_async::<String>(&mut connection)
        .await
        .unwrap();
    let good = event(Priority::Normal, "good");
    test.bus.publish(std::slice::from_ref(&good)).await.unwrap();
    let got = test.bus.receive("audit", "c1", 10, Duration::from_millis(100), LONG).await.unwrap();
    let stats = test.bus.stats("audit").await.unwrap();
    let listed = test.bus.dead_letters("audit", 10).await.unwrap();
    let dead: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(test.key("dead:audit")).arg("-").arg("+").query_async(&mut connection).await.unwrap();
    test.cleanup().await;

    assert_eq!(got.iter().map(|d| &d.event).collect::<Vec<_>>(), vec![&good]);
    assert_eq!((stats.dead_letters, stats.pending), (1, 1), "{stats:?}");
    assert!(listed.is_empty(), "an unreadable dead letter is kept in Redis but not listed as an event");
    assert_eq!(dead.ids[0].get::<String>("event").as_deref(), Some("{not json"));
}

#[tokio::test]
async fn bad_receipts_and_names_are_refused() {
    let Some(test) = fresh_bus().await else { return };
    let forged = Delivery { event: event(Priority::Normal, "f"), receipt: "99:1-1".into(), attempt: 1 };
    let ack = test.bus.ack("audit", std::slice::from_ref(&forged)).await;
    let retry = test.bus.retry_later("audit", &forged, "e", Duration::ZERO).await;
    let bad_group = test.bus.receive("a:b", "c1", 1, Duration::ZERO, LONG).await;
    let bad_consumer = test.bus.receive("audit", "", 1, Duration::ZERO, LONG).await;
    test.cleanup().await;
    for outcome in [ack, retry, bad_group.map(drop), bad_consumer.map(drop)] {
        assert!(matches!(outcome, Err(BusError::Malformed { .. })), "{outcome:?}");
    }
}

/// Keys deleted behind the bus's back (a `FLUSHDB`, an operator) make Redis forget the group: the bus
/// creates it again instead of failing from then on.
#[tokio::test]
async fn a_group_whose_keys_were_deleted_is_created_again() {
    let Some(test) = fresh_bus().await else { return };
    test.bus.publish(&[event(Priority::Normal, "one")]).await.unwrap();
    let first = test.bus.receive("audit", "c1", 10, Duration::from_millis(100), LONG).await.unwrap();
    test.bus.ack("audit", &first).await.unwrap();
    test.cleanup().await;
    let again = event(Priority::High, "two");
    test.bus.publish(std::slice::from_ref(&again)).await.unwrap();
    let second = test.bus.receive("audit", "c1", 10, Duration::from_millis(100), LONG).await.unwrap();
    test.cleanup().await;
    assert_eq!(first.len(), 1);
    assert_eq!(second.iter().map(|d| &d.event).collect::<Vec<_>>(), vec![&again]);
}

#[tokio::test]
async fn a_waiting_receive_wakes_when_an_event_is_published() {
    let Some(test) = fresh_bus().await else { return };
    // Create the group first, so the event below is new to it.
    assert!(test.bus.receive("audit", "c1", 1, Duration::ZERO, LONG).await.unwrap().is_empty());
    let bus = test.bus.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { bus.receive("audit", "c1", 10, Duration::from_secs(10), LONG).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let published = event(Priority::Low, "wake");
    test.bus.publish(std::slice::from_ref(&published)).await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    let waited = started.elapsed();
    test.cleanup().await;
    assert_eq!(got.iter().map(|d| &d.event).collect::<Vec<_>>(), vec![&published]);
    assert!(waited < Duration::from_secs(5), "woke after {waited:?}, not on the publication");
}

#[tokio::test]
async fn a_waiting_receive_wakes_when_a_retry_falls_due() {
    let Some(test) = fresh_bus().await else { return };
    test.bus.publish(&[event(Priority::Normal, "r")]).await.unwrap();
    let got = test.bus.receive("audit", "c1", 1, Duration::from_millis(100), LONG).await.unwrap();
    test.bus.retry_later("audit", &got[0], "later", Duration::from_millis(300)).await.unwrap();
    let started = Instant::now();
    let again = test.bus.receive("audit", "c1", 1, Duration::from_secs(10), LONG).await.unwrap();
    let waited = started.elapsed();
    // The blocking read ends when the retry is due; the next receive then returns it.
    let again =
        if again.is_empty() { test.bus.receive("audit", "c1", 1, Duration::ZERO, LONG).await.unwrap() } else { again };
    test.cleanup().await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert!(waited < Duration::from_secs(5), "waited {waited:?} for a retry due in 300 ms");
}

#[tokio::test]
async fn a_bus_connected_while_redis_is_down_fails_its_calls_until_redis_answers() {
    let Some(mut redis) = PrivateRedis::start_volatile() else { return };
    redis.stop();
    let config = RedisBusConfig {
        prefix: random_prefix(),
        response_timeout: Duration::from_millis(500),
        connection_timeout: Duration::from_millis(300),
        ..RedisBusConfig::default()
    };
    let bus = RedisStreamsBus::connect(&redis.url(), config).await.expect("the bus is built without Redis");
    let sent = event(Priority::High, "while-down");
    let refused = bus.publish(std::slice::from_ref(&sent)).await;
    assert!(matches!(refused, Err(BusError::Unavailable(_))), "{refused:?}");
    assert!(matches!(bus.stats("audit").await, Err(BusError::Unavailable(_))));

    redis.start_again().unwrap();
    let started = Instant::now();
    while bus.publish(std::slice::from_ref(&sent)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "the bus never reached Redis once it answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = bus.receive("audit", "c1", 10, Duration::ZERO, LONG).await.unwrap();
    assert_eq!(got.into_iter().map(|d| d.event).collect::<Vec<_>>(), vec![sent]);
}
