//! The delivery model of [`rsp_core::bus`], checked the same way against both SQL buses. Each engine's test
//! module runs every function here on a fresh database through [`bus_suite!`].

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::TenantId;
use rsp_core::bus::{BusError, BusResult, Claim, Delivery, EventBus};
use rsp_core::event::{Event, EventKind, Priority, now_millis};

/// A bus under test: the port plus the engine's trimming and a way to reach its tables directly.
#[async_trait]
pub(crate) trait TestBus: EventBus + Clone + 'static {
    async fn trim(&self, older_than_ms: u64) -> BusResult<u64>;

    async fn trim_dead_letters(&self, kept_per_group: u64) -> BusResult<u64>;

    /// Runs `statement` on the bus's database, for rows the port would never write.
    async fn run(&self, statement: &'static str);

    /// Every stored dead letter as (event id, error), whether or not its event decodes.
    async fn dead_letter_rows(&self) -> Vec<(String, String)>;
}

/// Reads every stored dead letter, for [`TestBus::dead_letter_rows`].
pub(crate) const DEAD_LETTER_ROWS: &str = "SELECT event_id, error FROM bus_dead_letters";

const NONE: Duration = Duration::ZERO;
const HOUR: Duration = Duration::from_secs(3600);

pub(crate) fn event(priority: Priority) -> Event {
    Event::new(TenantId::parse("acme").unwrap(), EventKind::CLIENT_CREATED, priority).subject("c1")
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.event.id.to_string()).collect()
}

async fn take(bus: &impl EventBus, group: &str, consumer: &str, max: usize) -> Vec<Delivery> {
    bus.receive(group, consumer, max, NONE, HOUR).await.unwrap()
}

pub(crate) async fn every_group_sees_every_event_once(bus: impl TestBus) {
    let events: Vec<Event> = (0..3).map(|_| event(Priority::Normal)).collect();
    bus.publish(&events).await.unwrap();
    bus.publish(&events[1..2]).await.unwrap();
    let expected: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();

    for group in ["audit", "cache"] {
        let got = take(&bus, group, "c1", 10).await;
        assert_eq!(ids(&got), expected, "group {group}");
        assert_eq!(got[0].event, events[0], "the event round-trips whole");
        assert!(got.iter().all(|d| d.attempt == 1));
        bus.ack(group, &got).await.unwrap();
        assert!(take(&bus, group, "c2", 10).await.is_empty(), "group {group} saw an event twice");
    }
}

pub(crate) async fn a_group_created_later_starts_at_the_oldest_event(bus: impl TestBus) {
    let first = event(Priority::Normal);
    bus.publish(std::slice::from_ref(&first)).await.unwrap();
    let got = take(&bus, "early", "c1", 10).await;
    bus.ack("early", &got).await.unwrap();
    let second = event(Priority::Normal);
    bus.publish(std::slice::from_ref(&second)).await.unwrap();
    assert_eq!(ids(&take(&bus, "late", "c1", 10).await), vec![first.id.to_string(), second.id.to_string()]);
}

pub(crate) async fn higher_priorities_come_first(bus: impl TestBus) {
    let mut events: Vec<Event> = Priority::ALL.into_iter().rev().map(event).collect();
    bus.publish(&events).await.unwrap();
    events.reverse();
    let first_two = take(&bus, "g", "c1", 2).await;
    assert_eq!(ids(&first_two), ids_of(&events[..2]));
    let rest = take(&bus, "g", "c1", 10).await;
    assert_eq!(ids(&rest), ids_of(&events[2..]));
}

fn ids_of(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

pub(crate) async fn consumers_of_a_group_share_the_events(bus: impl TestBus) {
    let events: Vec<Event> = (0..40).map(|i| event(Priority::ALL[i % 5])).collect();
    bus.publish(&events).await.unwrap();
    let mut workers = Vec::new();
    for worker in 0..4 {
        let bus = bus.clone();
        workers.push(tokio::spawn(async move {
            let consumer = format!("c{worker}");
            let mut seen = Vec::new();
            loop {
                let got = bus.receive("g", &consumer, 3, NONE, HOUR).await.unwrap();
                if got.is_empty() {
                    return seen;
                }
                bus.ack("g", &got).await.unwrap();
                seen.extend(ids(&got));
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "an event went to two consumers");
    assert_eq!(all.len(), events.len(), "an event was lost");
}

pub(crate) async fn idle_pending_events_are_reclaimed(bus: impl TestBus) {
    let sent = event(Priority::High);
    bus.publish(std::slice::from_ref(&sent)).await.unwrap();
    assert_eq!(take(&bus, "g", "dead", 10).await.len(), 1);
    assert!(take(&bus, "g", "alive", 10).await.is_empty(), "pending for another consumer, not idle long enough");

    tokio::time::sleep(Duration::from_millis(30)).await;
    let got = bus.receive("g", "alive", 10, NONE, Duration::from_millis(10)).await.unwrap();
    assert_eq!(ids(&got), vec![sent.id.to_string()]);
    assert_eq!(got[0].attempt, 2, "a reclaim counts the abandoned attempt");
    bus.ack("g", &got).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(bus.receive("g", "alive", 10, NONE, Duration::from_millis(10)).await.unwrap().is_empty());
}

pub(crate) async fn reclaimed_come_before_retries_before_new(bus: impl TestBus) {
    let (stuck, failed, fresh) = (event(Priority::Background), event(Priority::Background), event(Priority::Normal));
    bus.publish(&[stuck.clone(), failed.clone()]).await.unwrap();
    let got = take(&bus, "g", "c1", 2).await;
    bus.retry_later("g", &got[1], "flaky", NONE).await.unwrap();
    bus.publish(std::slice::from_ref(&fresh)).await.unwrap();

    tokio::time::sleep(Duration::from_millis(20)).await;
    let got = bus.receive("g", "c2", 10, NONE, Duration::from_millis(10)).await.unwrap();
    assert_eq!(ids(&got), ids_of(&[stuck, failed, fresh]));
    assert_eq!(got.iter().map(|d| d.attempt).collect::<Vec<_>>(), vec![2, 2, 1]);
}

pub(crate) async fn a_retry_stays_invisible_until_due(bus: impl TestBus) {
    bus.publish(&[event(Priority::Normal)]).await.unwrap();
    let got = take(&bus, "g", "c1", 1).await;
    bus.retry_later("g", &got[0], "boom", Duration::from_millis(150)).await.unwrap();
    let stats = bus.stats("g").await.unwrap();
    assert_eq!((stats.depth, stats.pending), ([0, 0, 1, 0, 0], 0), "a scheduled retry is unacknowledged, not pending");
    assert!(take(&bus, "g", "c2", 10).await.is_empty(), "a retry was delivered before it was due");
    let again = bus.receive("g", "c2", 10, Duration::from_secs(5), HOUR).await.unwrap();
    assert_eq!(ids(&again), ids(&got));
    assert_eq!(again[0].attempt, 2);
}

pub(crate) async fn a_stale_delivery_cannot_touch_a_newer_one(bus: impl TestBus) {
    bus.publish(&[event(Priority::Normal)]).await.unwrap();
    let old = take(&bus, "g", "slow", 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new = bus.receive("g", "fast", 1, NONE, Duration::from_millis(10)).await.unwrap();
    bus.retry_later("g", &old[0], "late failure", HOUR).await.unwrap();
    bus.dead_letter("g", &old[0], "late failure").await.unwrap();
    assert!(bus.dead_letters("g", 10).await.unwrap().is_empty());
    assert_eq!(bus.stats("g").await.unwrap().pending, 1, "the newer delivery is still pending");
    bus.ack("g", &new).await.unwrap();
    assert_eq!(bus.stats("g").await.unwrap().pending, 0);
}

pub(crate) async fn dead_letters_keep_the_event_error_and_attempts(bus: impl TestBus) {
    let sent = event(Priority::Critical);
    bus.publish(std::slice::from_ref(&sent)).await.unwrap();
    let got = take(&bus, "g", "c1", 1).await;
    bus.retry_later("g", &got[0], "first", NONE).await.unwrap();
    let got = take(&bus, "g", "c1", 1).await;
    bus.dead_letter("g", &got[0], "gave up").await.unwrap();

    let letters = bus.dead_letters("g", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!((letter.event.clone(), letter.group.as_str()), (sent, "g"));
    assert_eq!((letter.attempts, letter.error.as_str()), (2, "gave up"));
    assert!((letter.dead_at_ms - now_millis()).abs() < 60_000);
    assert!(take(&bus, "g", "c1", 10).await.is_empty());
    assert!(bus.dead_letters("other", 10).await.unwrap().is_empty());
    let stats = bus.stats("g").await.unwrap();
    assert_eq!((stats.dead_letters, stats.pending, stats.depth), (1, 0, [0; 5]));
    assert_eq!(take(&bus, "other", "c1", 10).await.len(), 1, "another group still gets the event");
}

pub(crate) async fn dead_letters_are_listed_newest_first(bus: impl TestBus) {
    let events: Vec<Event> = (0..3).map(|_| event(Priority::Low)).collect();
    bus.publish(&events).await.unwrap();
    for delivery in take(&bus, "g", "c1", 3).await {
        bus.dead_letter("g", &delivery, "no").await.unwrap();
    }
    let letters = bus.dead_letters("g", 2).await.unwrap();
    let listed: Vec<String> = letters.iter().map(|l| l.event.id.to_string()).collect();
    assert_eq!(listed, vec![events[2].id.to_string(), events[1].id.to_string()]);
}

pub(crate) async fn claims_deduplicate_by_event_id(bus: impl TestBus) {
    let id = event(Priority::Normal).id;
    assert_eq!(bus.claim("g", &id, HOUR).await.unwrap(), Claim::Claimed);
    assert_eq!(bus.claim("g", &id, HOUR).await.unwrap(), Claim::InProgress);
    assert_eq!(bus.claim("other", &id, HOUR).await.unwrap(), Claim::Claimed, "groups claim separately");
    bus.release("g", &id).await.unwrap();
    assert_eq!(bus.claim("g", &id, HOUR).await.unwrap(), Claim::Claimed);
    bus.complete("g", &id).await.unwrap();
    assert_eq!(bus.claim("g", &id, HOUR).await.unwrap(), Claim::AlreadyHandled);
    bus.release("g", &id).await.unwrap();
    assert_eq!(bus.claim("g", &id, HOUR).await.unwrap(), Claim::AlreadyHandled, "release never undoes handled");
}

pub(crate) async fn a_lapsed_claim_can_be_taken_again(bus: impl TestBus) {
    let id = event(Priority::Normal).id;
    assert_eq!(bus.claim("g", &id, Duration::from_millis(20)).await.unwrap(), Claim::Claimed);
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(bus.claim("g", &id, HOUR).await.unwrap(), Claim::Claimed);
    assert_eq!(bus.claim("g", &id, HOUR).await.unwrap(), Claim::InProgress);
}

pub(crate) async fn stats_count_depth_pending_and_age(bus: impl TestBus) {
    let mut old = event(Priority::Normal);
    old.occurred_at_ms -= 5_000;
    bus.publish(&[old, event(Priority::Normal), event(Priority::Critical)]).await.unwrap();
    let stats = bus.stats("g").await.unwrap();
    assert_eq!((stats.depth, stats.pending, stats.dead_letters), ([1, 0, 2, 0, 0], 0, 0));
    assert!((5_000..65_000).contains(&stats.oldest_unacked_ms), "{}", stats.oldest_unacked_ms);

    let critical = take(&bus, "g", "c1", 1).await;
    let stats = bus.stats("g").await.unwrap();
    assert_eq!((stats.depth, stats.pending), ([1, 0, 2, 0, 0], 1), "received but unacknowledged still counts");
    bus.ack("g", &critical).await.unwrap();
    let rest = take(&bus, "g", "c1", 10).await;
    bus.ack("g", &rest).await.unwrap();
    let stats = bus.stats("g").await.unwrap();
    assert_eq!((stats.depth, stats.pending, stats.oldest_unacked_ms), ([0; 5], 0, 0));
}

pub(crate) async fn receive_waits_for_an_event(bus: impl TestBus) {
    assert!(bus.receive("g", "c1", 1, Duration::from_millis(30), HOUR).await.unwrap().is_empty());
    let waiting = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.receive("g", "c1", 1, Duration::from_secs(10), HOUR).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = event(Priority::Low);
    bus.publish(std::slice::from_ref(&sent)).await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    assert_eq!(ids(&got), vec![sent.id.to_string()]);
}

pub(crate) async fn bad_receipts_are_refused(bus: impl TestBus) {
    let mut forged = Delivery { event: event(Priority::Normal), receipt: "1-0".into(), attempt: 1 };
    assert!(matches!(bus.ack("g", std::slice::from_ref(&forged)).await, Err(BusError::Malformed { .. })));
    assert!(matches!(bus.retry_later("g", &forged, "x", NONE).await, Err(BusError::Malformed { .. })));
    assert!(matches!(bus.dead_letter("g", &forged, "x").await, Err(BusError::Malformed { .. })));
    forged.receipt = "999999".into();
    bus.ack("g", &[forged]).await.unwrap();
    assert!(bus.receive("g", "c1", 0, Duration::from_secs(5), HOUR).await.unwrap().is_empty());
}

fn aged(priority: Priority) -> Event {
    let mut event = event(priority);
    event.occurred_at_ms -= 600_000;
    event
}

pub(crate) async fn trimming_keeps_what_a_group_still_needs(bus: impl TestBus) {
    let old = [aged(Priority::Normal), aged(Priority::Normal), aged(Priority::High)];
    bus.publish(&old).await.unwrap();
    let in_a = take(&bus, "a", "c1", 10).await;
    bus.ack("a", &in_a[..2]).await.unwrap();
    let in_b = take(&bus, "b", "c1", 10).await;
    bus.ack("b", &in_b).await.unwrap();
    let recent = event(Priority::Normal);
    bus.publish(std::slice::from_ref(&recent)).await.unwrap();
    for group in ["a", "b"] {
        let got = take(&bus, group, "c1", 10).await;
        bus.ack(group, &got).await.unwrap();
    }

    // `a` still holds one old event; the recent one is younger than the retention.
    assert_eq!(bus.trim(60_000).await.unwrap(), 2);
    assert_eq!(bus.trim(60_000).await.unwrap(), 0);
    let late = take(&bus, "late", "c1", 10).await;
    let expected = vec![in_a[2].event.id.to_string(), recent.id.to_string()];
    assert_eq!(ids(&late), expected, "a group created later starts at the oldest event kept");

    // Once every group, `late` included, is done with them, old and then recent events go.
    bus.ack("late", &late).await.unwrap();
    bus.ack("a", &in_a[2..]).await.unwrap();
    assert_eq!(bus.trim(60_000).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(bus.trim(0).await.unwrap(), 1);
    assert!(take(&bus, "newest", "c1", 10).await.is_empty());
}

pub(crate) async fn trimming_spares_events_a_group_has_not_done(bus: impl TestBus) {
    let old = [aged(Priority::Normal), aged(Priority::Normal)];
    bus.publish(&old).await.unwrap();
    let in_a = take(&bus, "a", "c1", 10).await;
    bus.ack("a", &in_a).await.unwrap();
    let in_b = take(&bus, "b", "c1", 1).await;
    bus.ack("b", &in_b).await.unwrap();
    assert_eq!(bus.trim(0).await.unwrap(), 1, "b has not read the second event yet");

    let rest = take(&bus, "b", "c1", 10).await;
    assert_eq!(ids(&rest), ids_of(&old[1..]));
    bus.retry_later("b", &rest[0], "later", HOUR).await.unwrap();
    assert_eq!(bus.trim(0).await.unwrap(), 0, "a retry waiting in b keeps the event");
    bus.dead_letter("b", &rest[0], "gave up").await.unwrap();
    assert_eq!(bus.trim(0).await.unwrap(), 1, "a dead letter keeps its own copy");
    assert_eq!(bus.dead_letters("b", 10).await.unwrap()[0].event, old[1]);
}

pub(crate) async fn trimming_dead_letters_keeps_each_groups_newest(bus: impl TestBus) {
    let events: Vec<Event> = (0..4).map(|_| event(Priority::Normal)).collect();
    bus.publish(&events).await.unwrap();
    for group in ["a", "b"] {
        bus.dead_letter(group, &take(&bus, group, "c1", 1).await[0], "gave up").await.unwrap();
    }
    for delivery in take(&bus, "a", "c1", 10).await {
        bus.dead_letter("a", &delivery, "gave up").await.unwrap();
    }
    assert_eq!(bus.dead_letters("a", 10).await.unwrap().len(), 4);

    assert_eq!(bus.trim_dead_letters(4).await.unwrap(), 0, "no group holds more than it keeps");
    assert_eq!(bus.trim_dead_letters(2).await.unwrap(), 2, "a's two oldest; b holds one");
    let kept: Vec<Event> = bus.dead_letters("a", 10).await.unwrap().into_iter().map(|l| l.event).collect();
    assert_eq!(kept, vec![events[3].clone(), events[2].clone()], "a's newest, newest first");
    assert_eq!(bus.dead_letters("b", 10).await.unwrap()[0].event, events[0]);
    assert_eq!(bus.stats("a").await.unwrap().dead_letters, 2);

    assert_eq!(bus.trim_dead_letters(0).await.unwrap(), 3, "keeping none empties every group");
    assert!(bus.dead_letter_rows().await.is_empty());
}

/// A stored event whose body is not an event: it goes to the dead letters, and the events after it still
/// arrive.
pub(crate) async fn an_event_that_does_not_decode_is_dead_lettered_not_delivered(bus: impl TestBus) {
    bus.run(
        "INSERT INTO bus_events (event_id, tenant_id, kind, priority, occurred_at_ms, body) \
         VALUES ('broken', 'acme', 'x.y', 2, 1, '{\"not\": \"an event\"}')",
    )
    .await;
    let good = event(Priority::Normal);
    bus.publish(std::slice::from_ref(&good)).await.unwrap();

    let got = take(&bus, "g", "c1", 10).await;
    assert_eq!(got.into_iter().map(|d| d.event).collect::<Vec<_>>(), vec![good]);
    let letters = bus.dead_letter_rows().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, "broken");
    assert!(letters[0].1.starts_with("malformed event"), "{letters:?}");
    let stats = bus.stats("g").await.unwrap();
    assert_eq!((stats.dead_letters, stats.pending), (1, 1));
    assert!(bus.dead_letters("g", 10).await.unwrap().is_empty(), "an undecodable letter is skipped, not an error");
}

/// Runs `test` on the subject `fresh` made (if the engine is reachable), then its cleanup, even when the
/// test fails, so a failed test leaves no database or schema behind.
pub(crate) async fn isolated<S, C, F, T>(fresh: Option<(S, C)>, test: F)
where
    C: Future<Output = ()>,
    F: FnOnce(S) -> T,
    T: Future<Output = ()> + Send + 'static,
{
    let Some((subject, cleanup)) = fresh else { return };
    let outcome = tokio::spawn(test(subject)).await;
    cleanup.await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// Generates one `#[tokio::test]` per suite function, each on a fresh bus from `$fresh`, an async function
/// returning `Option<(bus, cleanup future)>` (`None` skips: the engine is not reachable).
macro_rules! bus_suite {
    ($fresh:path) => {
        $crate::sql_bus::suite::bus_suite!(@tests $fresh;
            every_group_sees_every_event_once,
            a_group_created_later_starts_at_the_oldest_event,
            higher_priorities_come_first,
            consumers_of_a_group_share_the_events,
            idle_pending_events_are_reclaimed,
            reclaimed_come_before_retries_before_new,
            a_retry_stays_invisible_until_due,
            a_stale_delivery_cannot_touch_a_newer_one,
            dead_letters_keep_the_event_error_and_attempts,
            dead_letters_are_listed_newest_first,
            claims_deduplicate_by_event_id,
            a_lapsed_claim_can_be_taken_again,
            stats_count_depth_pending_and_age,
            receive_waits_for_an_event,
            bad_receipts_are_refused,
            trimming_keeps_what_a_group_still_needs,
            trimming_spares_events_a_group_has_not_done,
            trimming_dead_letters_keeps_each_groups_newest,
            an_event_that_does_not_decode_is_dead_lettered_not_delivered,
        );
    };
    (@tests $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::sql_bus::suite::isolated($fresh().await, $crate::sql_bus::suite::$name).await;
            }
        )*
    };
}

pub(crate) use bus_suite;
