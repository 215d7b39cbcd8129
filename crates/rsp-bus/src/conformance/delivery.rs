//! The delivery model: who receives what, in which order, and what happens to unacknowledged events.

use std::sync::Arc;
use std::time::Duration;

use rsp_core::Priority;
use rsp_core::bus::EventBus;
use tokio::time::Instant;

use super::{Check, ConformanceError, NEVER, ids, sorted_ids, unique};

/// Every group sees every event.
pub async fn group_fan_out(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("group fan-out");
    let events = check.events(Priority::Normal, 3)?;
    bus.publish(&events).await.map_err(check.bus())?;
    for group in [unique("fan-a"), unique("fan-b")] {
        let got = check.receive_n(&*bus, &group, "c1", 3, NEVER).await?;
        let mut got_ids = ids(&got);
        got_ids.sort();
        check.ensure(got_ids == sorted_ids(&events), || format!("group {group} received {got_ids:?}"))?;
        check.ensure(got.iter().all(|d| d.attempt == 1), || format!("first deliveries with attempts {got:?}"))?;
        bus.ack(&group, &got).await.map_err(check.bus())?;
    }
    Ok(())
}

/// Within a group each event goes to one consumer: two consumers share the events between them.
pub async fn load_sharing(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("load sharing");
    let events = check.events(Priority::Normal, 10)?;
    bus.publish(&events).await.map_err(check.bus())?;
    let group = unique("share");
    let first = check.receive_n(&*bus, &group, "c1", 5, NEVER).await?;
    let second = check.receive_n(&*bus, &group, "c2", 5, NEVER).await?;
    check.ensure(first.len() == 5 && second.len() == 5, || {
        format!("expected 5 and 5 deliveries (max 5 each), got {} and {}", first.len(), second.len())
    })?;
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.sort();
    check.ensure(all == sorted_ids(&events), || format!("consumers together received {all:?}"))?;
    check.nothing_for(&*bus, &group, "c3", NEVER).await?;
    bus.ack(&group, &first).await.map_err(check.bus())?;
    bus.ack(&group, &second).await.map_err(check.bus())
}

/// Higher priorities are received first, whatever the publication order.
pub async fn priority_order(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("priority order");
    let mut events = Vec::new();
    for priority in Priority::ALL.into_iter().rev() {
        events.push(check.event(priority)?);
    }
    bus.publish(&events).await.map_err(check.bus())?;
    let group = unique("prio");
    let got = check.receive_n(&*bus, &group, "c1", events.len(), NEVER).await?;
    let order: Vec<Priority> = got.iter().map(|d| d.event.priority).collect();
    check.ensure(order == Priority::ALL, || format!("received in order {order:?}"))?;
    bus.ack(&group, &got).await.map_err(check.bus())
}

/// An acknowledged event is never delivered again, not even to a consumer that reclaims at once.
pub async fn ack_is_final(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("ack");
    bus.publish(&[check.event(Priority::High)?]).await.map_err(check.bus())?;
    let group = unique("ack");
    let got = check.receive_n(&*bus, &group, "c1", 1, NEVER).await?;
    check.ensure(got.len() == 1, || format!("expected the event, got {got:?}"))?;
    bus.ack(&group, &got).await.map_err(check.bus())?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    check.nothing_for(&*bus, &group, "c2", Duration::from_millis(1)).await?;
    let stats = bus.stats(&group).await.map_err(check.bus())?;
    check.ensure(stats.pending == 0 && stats.depth == [0; 5], || format!("after ack: {stats:?}"))
}

/// A silent consumer's pending event goes to another consumer after `reclaim_after`, not before, with its
/// attempt counted up.
pub async fn reclaim_dead_consumer(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("reclaim");
    let event = check.event(Priority::Normal)?;
    bus.publish(std::slice::from_ref(&event)).await.map_err(check.bus())?;
    let group = unique("reclaim");
    let first = check.receive_n(&*bus, &group, "dies", 1, NEVER).await?;
    check.ensure(first.len() == 1 && first.iter().all(|d| d.attempt == 1), || format!("first delivery {first:?}"))?;
    check.nothing_for(&*bus, &group, "survivor", NEVER).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reclaimed = check.receive_n(&*bus, &group, "survivor", 1, Duration::from_millis(300)).await?;
    let ok = matches!(reclaimed.as_slice(), [d] if d.event == event && d.attempt == 2);
    check.ensure(ok, || format!("expected the event again as attempt 2, got {reclaimed:?}"))?;
    bus.ack(&group, &reclaimed).await.map_err(check.bus())?;
    check.nothing_for(&*bus, &group, "third", Duration::from_millis(1)).await
}

/// A retried event comes back no sooner than its delay, as the next attempt.
pub async fn retry_delay(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("retry delay");
    let event = check.event(Priority::Low)?;
    bus.publish(std::slice::from_ref(&event)).await.map_err(check.bus())?;
    let group = unique("retry");
    let got = check.receive_n(&*bus, &group, "c1", 1, NEVER).await?;
    let delivery = got
        .first()
        .ok_or_else(|| ConformanceError::Violated { check: check.0, detail: "the event was not delivered".into() })?;
    let delay = Duration::from_millis(700);
    let start = Instant::now();
    bus.retry_later(&group, delivery, "try again", delay).await.map_err(check.bus())?;
    check.nothing_for(&*bus, &group, "c1", NEVER).await?;
    let again = check.receive_n(&*bus, &group, "c2", 1, NEVER).await?;
    let elapsed = start.elapsed();
    // Engines keep due times in milliseconds: allow for the rounding, never for an early retry.
    check.ensure(elapsed + Duration::from_millis(5) >= delay, || {
        format!("retried after {elapsed:?}, before {delay:?}")
    })?;
    let ok = matches!(again.as_slice(), [d] if d.event == event && d.attempt == 2);
    check.ensure(ok, || format!("expected the event again as attempt 2, got {again:?}"))?;
    bus.ack(&group, &again).await.map_err(check.bus())?;
    let stats = bus.stats(&group).await.map_err(check.bus())?;
    check.ensure(stats.pending == 0 && stats.depth == [0; 5], || format!("after ack: {stats:?}"))
}
