//! Claims, the consumer runner on top of the bus (dead letters, de-duplication), and the stats gauges.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::bus::{BusStats, Claim, EventBus, depth_index};
use rsp_core::{Event, Priority};
use tokio::time::Instant;

use super::{Check, ConformanceError, DEADLINE, NEVER, unique};
use crate::{Consumer, ConsumerConfig, EventHandler, HandlerError};

/// Claim, complete and release: one holder at a time, completion is final, release undoes a claim only.
pub async fn claims(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("claims");
    let group = unique("claims");
    let id = check.event(Priority::Normal)?.id;
    let lease = Duration::from_secs(30);
    let (shared, group_name, event_id) = (&bus, &group, &id);
    let claim = move |expected: Claim| async move {
        let got = shared.claim(group_name, event_id, lease).await.map_err(check.bus())?;
        check.ensure(got == expected, || format!("expected {expected:?}, got {got:?}"))
    };
    claim(Claim::Claimed).await?;
    claim(Claim::InProgress).await?;
    bus.release(&group, &id).await.map_err(check.bus())?;
    claim(Claim::Claimed).await?;
    bus.complete(&group, &id).await.map_err(check.bus())?;
    claim(Claim::AlreadyHandled).await?;
    bus.release(&group, &id).await.map_err(check.bus())?;
    claim(Claim::AlreadyHandled).await?;

    // A lapsed lease frees the event for another delivery.
    let other = check.event(Priority::Normal)?.id;
    bus.claim(&group, &other, Duration::from_millis(100)).await.map_err(check.bus())?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let got = bus.claim(&group, &other, lease).await.map_err(check.bus())?;
    check.ensure(got == Claim::Claimed, || format!("after the lease lapsed: {got:?}"))
}

/// Through the runner: a handler that always fails sends the event to the dead letters after exactly
/// `max_attempts` runs, with its error kept.
pub async fn dead_letter_after_max_attempts(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("dead letter");
    let group = unique("dead");
    let event = check.event(Priority::High)?;
    bus.publish(std::slice::from_ref(&event)).await.map_err(check.bus())?;
    let handler = Arc::new(Failing(AtomicU32::new(0)));
    let mut config = fast_config(&group);
    config.max_attempts = 3;
    let consumer = start(&bus, handler.clone(), config, check)?;
    let deadline = Instant::now() + DEADLINE;
    let mut dead = Vec::new();
    while dead.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        dead = bus.dead_letters(&group, 10).await.map_err(check.bus())?;
    }
    consumer.stop().await;
    let runs = handler.0.load(Ordering::SeqCst);
    let ok = matches!(dead.as_slice(), [d] if d.event == event && d.attempts == 3 && d.error.contains("boom") && d.group == group);
    check.ensure(ok, || format!("expected one dead letter after 3 attempts with the error, got {dead:?}"))?;
    check.ensure(runs == 3, || format!("the handler ran {runs} times, expected 3"))?;
    let stats = bus.stats(&group).await.map_err(check.bus())?;
    check.ensure(stats.dead_letters == 1 && stats.depth == [0; 5] && stats.pending == 0, || {
        format!("after dead-lettering: {stats:?}")
    })
}

/// Through the runner: an event id published twice is handled once.
pub async fn duplicate_handled_once(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("de-duplication");
    let group = unique("dedup");
    let event = check.event(Priority::Normal)?;
    let other = check.event(Priority::Normal)?;
    bus.publish(std::slice::from_ref(&event)).await.map_err(check.bus())?;
    bus.publish(&[event.clone(), other.clone()]).await.map_err(check.bus())?;
    let handler = Arc::new(Counting::default());
    let consumer = start(&bus, handler.clone(), fast_config(&group), check)?;
    let settled = wait_for(&*bus, &group, check, |s| s.depth == [0; 5] && s.pending == 0).await?;
    consumer.stop().await;
    let seen = handler.seen();
    let once = seen.iter().filter(|id| **id == event.id.to_string()).count() == 1;
    check.ensure(once && seen.len() == 2, || format!("handled {seen:?} (stats {settled:?})"))
}

/// `claim_many` and `complete_many` mean what `claim` and `complete` mean, per event and in order; and
/// through the runner a batch handler takes the claimed events at once, while a failed batch falls back
/// to one by one, so a poison event is dead-lettered and every other event is handled exactly once.
pub async fn batches(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("batches");
    let group = unique("batches");
    let [a, b, c] = [0; 3].map(|_| check.event(Priority::Normal).map(|event| event.id));
    let (a, b, c) = (a?, b?, c?);
    let lease = Duration::from_secs(30);
    let claims = |ids: Vec<rsp_core::event::EventId>| {
        let (bus, group) = (&bus, &group);
        async move {
            let outcomes = bus.claim_many(group, &ids, lease).await;
            outcomes.into_iter().collect::<Result<Vec<_>, _>>().map_err(check.bus())
        }
    };
    let first = claims(vec![a.clone(), b.clone()]).await?;
    check.ensure(first == [Claim::Claimed, Claim::Claimed], || format!("first claims: {first:?}"))?;
    let second = claims(vec![a.clone(), c]).await?;
    check.ensure(second == [Claim::InProgress, Claim::Claimed], || format!("second claims: {second:?}"))?;
    bus.complete_many(&group, &[a.clone(), b.clone()]).await.map_err(check.bus())?;
    let done = claims(vec![a, b]).await?;
    check.ensure(done == [Claim::AlreadyHandled, Claim::AlreadyHandled], || format!("after completion: {done:?}"))?;

    let runner_group = unique("batch-runner");
    let good = check.events(Priority::Normal, 5)?;
    let poison = check.event(Priority::Normal)?.subject("poison");
    let handler = Arc::new(Batching::default());
    let mut config = fast_config(&runner_group);
    config.max_attempts = 2;
    let consumer = start(&bus, handler.clone(), config, check)?;
    let settled = |s: &BusStats| s.depth == [0; 5] && s.pending == 0;
    // Good events only: taken as batches. Then the poison with the other two and a copy of the first.
    let (early, late) = good.split_at(3);
    bus.publish(early).await.map_err(check.bus())?;
    wait_for(&*bus, &runner_group, check, settled).await?;
    let mut second: Vec<Event> = vec![poison.clone()];
    second.extend(late.iter().cloned());
    second.extend(early.iter().take(1).cloned());
    bus.publish(&second).await.map_err(check.bus())?;
    let settled = wait_for(&*bus, &runner_group, check, settled).await?;
    consumer.stop().await;
    let dead = bus.dead_letters(&runner_group, 10).await.map_err(check.bus())?;
    let (handled, batches) = handler.seen();
    let good: Vec<String> = good.iter().map(|e| e.id.to_string()).collect();
    let once = good.iter().all(|id| handled.iter().filter(|seen| *seen == id).count() == 1);
    check.ensure(once && handled.len() == good.len(), || format!("handled {handled:?} (stats {settled:?})"))?;
    check.ensure(batches >= 1, || "the handler was never offered a batch".to_owned())?;
    check.ensure(matches!(dead.as_slice(), [d] if d.event.id == poison.id), || format!("dead letters: {dead:?}"))
}

/// `stats` counts what the group has not acknowledged, by priority, and what is pending.
pub async fn stats_depth_and_pending(bus: Arc<dyn EventBus>) -> Result<(), ConformanceError> {
    let check = Check("stats");
    let group = unique("stats");
    let mut events = check.events(Priority::Critical, 2)?;
    events.push(check.event(Priority::Low)?);
    bus.publish(&events).await.map_err(check.bus())?;
    let expected = depth(&[(Priority::Critical, 2), (Priority::Low, 1)]);

    let before = bus.stats(&group).await.map_err(check.bus())?;
    check.ensure(before.depth == expected && before.pending == 0, || format!("after publishing: {before:?}"))?;
    let got = check.receive_n(&*bus, &group, "c1", 1, NEVER).await?;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let received = bus.stats(&group).await.map_err(check.bus())?;
    check.ensure(received.depth == expected && received.pending == 1, || format!("after receiving 1: {received:?}"))?;
    check.ensure(received.oldest_unacked_ms >= 50, || format!("oldest unacked too young: {received:?}"))?;
    bus.ack(&group, &got).await.map_err(check.bus())?;
    let expected = depth(&[(Priority::Critical, 1), (Priority::Low, 1)]);
    let acked = bus.stats(&group).await.map_err(check.bus())?;
    check.ensure(acked.depth == expected && acked.pending == 0, || format!("after acking 1: {acked:?}"))?;

    let rest = check.receive_n(&*bus, &group, "c1", 2, NEVER).await?;
    bus.ack(&group, &rest).await.map_err(check.bus())?;
    let done = bus.stats(&group).await.map_err(check.bus())?;
    let empty = BusStats { dead_letters: done.dead_letters, ..BusStats::default() };
    check.ensure(done == empty && done.dead_letters == 0, || format!("after acking all: {done:?}"))
}

/// A depth array from (priority, count) pairs.
fn depth(counts: &[(Priority, u64)]) -> [u64; 5] {
    let mut depth = [0; 5];
    for &(priority, count) in counts {
        if let Some(slot) = depth.get_mut(depth_index(priority)) {
            *slot = count;
        }
    }
    depth
}

/// Quick retries and short waits, so runner checks finish in seconds.
fn fast_config(group: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(group, "runner");
    config.backoff_base = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(100);
    config.wait = Duration::from_millis(100);
    config.stats_interval = Duration::from_secs(1);
    config
}

fn start(
    bus: &Arc<dyn EventBus>,
    handler: Arc<dyn EventHandler>,
    config: ConsumerConfig,
    check: Check,
) -> Result<crate::RunningConsumer, ConformanceError> {
    let consumer = Consumer::new(Arc::clone(bus), handler, config)
        .map_err(|e| ConformanceError::Violated { check: check.0, detail: e.to_string() })?;
    Ok(consumer.spawn())
}

/// Polls `stats` until `done` holds (or the deadline passes: the caller's assertion then fails).
async fn wait_for(
    bus: &dyn EventBus,
    group: &str,
    check: Check,
    done: impl Fn(&BusStats) -> bool,
) -> Result<BusStats, ConformanceError> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stats = bus.stats(group).await.map_err(check.bus())?;
        if done(&stats) || Instant::now() >= deadline {
            return Ok(stats);
        }
    }
}

struct Failing(AtomicU32);

#[async_trait]
impl EventHandler for Failing {
    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(HandlerError::Transient("boom: downstream refused".into()))
    }
}

#[derive(Default)]
struct Counting(std::sync::Mutex<Vec<String>>);

impl Counting {
    fn seen(&self) -> Vec<String> {
        self.0.lock().map(|seen| seen.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl EventHandler for Counting {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(event.id.to_string());
        }
        Ok(())
    }
}

/// Takes batches; a batch holding the event whose subject is `poison` fails as a whole and stores
/// nothing (all or nothing), as does that event alone.
#[derive(Default)]
struct Batching(std::sync::Mutex<(Vec<String>, u32)>);

impl Batching {
    fn seen(&self) -> (Vec<String>, u32) {
        self.0.lock().map(|seen| seen.clone()).unwrap_or_default()
    }

    fn poisoned(event: &Event) -> bool {
        event.subject.as_deref() == Some("poison")
    }
}

#[async_trait]
impl EventHandler for Batching {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if Self::poisoned(event) {
            return Err(HandlerError::Permanent("poison".into()));
        }
        if let Ok(mut seen) = self.0.lock() {
            seen.0.push(event.id.to_string());
        }
        Ok(())
    }

    async fn handle_batch(&self, events: &[Event]) -> Option<Result<(), HandlerError>> {
        if events.iter().any(Self::poisoned) {
            return Some(Err(HandlerError::Transient("a poison event in the batch".into())));
        }
        if let Ok(mut seen) = self.0.lock() {
            seen.0.extend(events.iter().map(|event| event.id.to_string()));
            seen.1 += 1;
        }
        Some(Ok(()))
    }
}
