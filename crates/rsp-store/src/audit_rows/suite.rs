//! The audit trail's contract, checked the same way against both engines through [`audit_suite!`].

use rsp_core::TenantId;
use rsp_core::event::{Event, EventKind, Priority};
use rsp_core::ports::{AuditCursor, AuditQuery, AuditStore};

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn event(tenant_id: &str, kind: EventKind, actor: &str, subject: &str, at_ms: i64) -> Event {
    let mut event = Event::new(tenant(tenant_id), kind, Priority::Normal).actor(actor).subject(subject);
    event.occurred_at_ms = at_ms;
    event
}

fn page(limit: u32) -> AuditQuery {
    AuditQuery { limit, ..AuditQuery::default() }
}

fn ids(records: &[rsp_core::ports::AuditRecord]) -> Vec<String> {
    records.iter().map(|r| r.event.id.to_string()).collect()
}

fn ids_of(events: &[&Event]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

pub(crate) async fn appending_skips_stored_ids(store: impl AuditStore) {
    let [a, b, c] = [1, 2, 3].map(|at| event("acme", EventKind::TOKEN_ISSUED, "c1", "j", at));
    assert_eq!(store.append_audit(&[a.clone(), b.clone()]).await.unwrap(), 2);
    assert_eq!(store.append_audit(&[b.clone(), c.clone()]).await.unwrap(), 1);
    assert_eq!(store.append_audit(&[]).await.unwrap(), 0);
    let d = event("acme", EventKind::TOKEN_ISSUED, "c1", "j", 4);
    assert_eq!(store.append_audit(&[d.clone(), d.clone()]).await.unwrap(), 1, "a batch repeating an id");
    let trail = store.query_audit(&tenant("acme"), &page(10)).await.unwrap();
    assert_eq!(ids(&trail), ids_of(&[&d, &c, &b, &a]));
}

/// Batches of any length, short ones and ones past the publisher's largest (256), store each event once and
/// in the batch's order.
pub(crate) async fn batches_of_any_length_are_stored_once_in_order(store: impl AuditStore) {
    let mut expected = Vec::new();
    for length in (1..=9).chain([16, 17, 31, 33, 255, 257]) {
        let batch: Vec<Event> =
            (0..length).map(|i| event("acme", EventKind::TOKEN_ISSUED, "c1", &format!("j{i}"), i)).collect();
        assert_eq!(store.append_audit(&batch).await.unwrap(), length as u64, "a batch of {length}");
        expected.extend(batch.iter().map(|e| e.id.to_string()));
    }
    let mut trail = store.query_audit(&tenant("acme"), &page(1000)).await.unwrap();
    trail.reverse();
    assert_eq!(ids(&trail), expected);
}

pub(crate) async fn records_round_trip_whole(store: impl AuditStore) {
    let mut full = event("acme", EventKind::CLIENT_UPDATED, "admin", "c9", 7);
    full.request_id = Some("req-1".into());
    full.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    full.data = serde_json::json!({"changed": ["scopes"], "count": 2});
    let bare = Event::new(tenant("acme"), EventKind::KEY_ROTATED, Priority::Critical);
    store.append_audit(&[full.clone(), bare.clone()]).await.unwrap();
    let trail = store.query_audit(&tenant("acme"), &page(10)).await.unwrap();
    assert_eq!(trail.iter().map(|r| r.event.clone()).collect::<Vec<_>>(), vec![bare, full]);
    assert!(trail[0].seq > trail[1].seq);
}

pub(crate) async fn cursors_page_both_ways_within_a_tenant(store: impl AuditStore) {
    let events: Vec<Event> = (0..5).map(|i| event("acme", EventKind::TOKEN_ISSUED, "c1", "j", i)).collect();
    store.append_audit(&events[..3]).await.unwrap();
    store.append_audit(&[event("other", EventKind::TOKEN_ISSUED, "c1", "j", 0)]).await.unwrap();
    store.append_audit(&events[3..]).await.unwrap();
    let acme = tenant("acme");

    let newest = store.query_audit(&acme, &page(2)).await.unwrap();
    assert_eq!(ids(&newest), ids_of(&[&events[4], &events[3]]));
    let back = AuditQuery { cursor: Some(AuditCursor::Before(newest[1].seq)), ..page(2) };
    let older = store.query_audit(&acme, &back).await.unwrap();
    assert_eq!(ids(&older), ids_of(&[&events[2], &events[1]]));
    let tail = AuditQuery { cursor: Some(AuditCursor::After(older[1].seq)), ..page(10) };
    let after = store.query_audit(&acme, &tail).await.unwrap();
    assert_eq!(ids(&after), ids_of(&[&events[2], &events[3], &events[4]]), "oldest first, other tenant left out");
    let end = AuditQuery { cursor: Some(AuditCursor::After(u64::MAX)), ..page(10) };
    assert!(store.query_audit(&acme, &end).await.unwrap().is_empty());
    let start = AuditQuery { cursor: Some(AuditCursor::Before(u64::MAX)), ..page(10) };
    assert_eq!(store.query_audit(&acme, &start).await.unwrap().len(), 5);
    assert_eq!(store.query_audit(&tenant("other"), &page(10)).await.unwrap().len(), 1);
    assert!(store.query_audit(&tenant("nobody"), &page(10)).await.unwrap().is_empty());
}

pub(crate) async fn filters_are_combined(store: impl AuditStore) {
    let issued_c1 = event("acme", EventKind::TOKEN_ISSUED, "c1", "j1", 1_000);
    let issued_c2 = event("acme", EventKind::TOKEN_ISSUED, "c2", "j2", 2_000);
    let revoked_c1 = event("acme", EventKind::TOKEN_REVOKED, "c1", "j1", 3_000);
    let late_c1 = event("acme", EventKind::TOKEN_ISSUED, "c1", "j3", 4_000);
    store.append_audit(&[issued_c1.clone(), issued_c2.clone(), revoked_c1.clone(), late_c1.clone()]).await.unwrap();
    let acme = tenant("acme");
    let find = |query: AuditQuery| {
        let store = &store;
        let acme = &acme;
        async move { ids(&store.query_audit(acme, &AuditQuery { limit: 10, ..query }).await.unwrap()) }
    };

    let kind = || Some(EventKind::TOKEN_ISSUED.as_str().to_owned());
    assert_eq!(find(AuditQuery { kind: kind(), ..page(0) }).await, ids_of(&[&late_c1, &issued_c2, &issued_c1]));
    let c1_issued = AuditQuery { kind: kind(), actor: Some("c1".into()), ..page(0) };
    assert_eq!(find(c1_issued).await, ids_of(&[&late_c1, &issued_c1]));
    assert_eq!(find(AuditQuery { subject: Some("j1".into()), ..page(0) }).await, ids_of(&[&revoked_c1, &issued_c1]));
    let window = AuditQuery { since_ms: Some(2_000), until_ms: Some(4_000), ..page(0) };
    assert_eq!(find(window).await, ids_of(&[&revoked_c1, &issued_c2]), "since inclusive, until exclusive");
    let nothing = AuditQuery { kind: kind(), actor: Some("c2".into()), subject: Some("j1".into()), ..page(0) };
    assert!(find(nothing).await.is_empty());
}

pub(crate) async fn pages_are_capped(store: impl AuditStore) {
    let events: Vec<Event> = (0..1005).map(|i| event("acme", EventKind::TOKEN_ISSUED, "c1", "j", i)).collect();
    assert_eq!(store.append_audit(&events).await.unwrap(), 1005);
    assert_eq!(store.query_audit(&tenant("acme"), &page(u32::MAX)).await.unwrap().len(), 1000);
    assert!(store.query_audit(&tenant("acme"), &page(0)).await.unwrap().is_empty());
}

/// Rows as stored before migration 0012, whose body held the whole event: the statement that inserts one
/// (binds: the event's columns, then its whole JSON), and the events to insert.
pub(crate) const INSERT_WHOLE_BODY: &str = "INSERT INTO audit_events (event_id, tenant_id, kind, actor, subject, \
     occurred_at_ms, request_id, trace_id, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

pub(crate) fn events_from_before_0012() -> [Event; 2] {
    let mut full = event("acme", EventKind::CLIENT_UPDATED, "admin", "c9", 7);
    full.priority = Priority::High;
    full.request_id = Some("req-1".into());
    full.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    full.data = serde_json::json!({"changed": ["scopes"], "count": 2, "note": "a \"quoted\" word"});
    [full, Event::new(tenant("acme"), EventKind::KEY_ROTATED, Priority::Critical)]
}

/// After the migration (run twice: it must leave its own output unchanged) the rows read back whole, and
/// their bodies are what the store writes today.
pub(crate) async fn assert_rewritten(store: &impl AuditStore, events: &[Event], bodies: Vec<String>) {
    let trail = store.query_audit(&tenant("acme"), &page(10)).await.unwrap();
    let read: Vec<Event> = trail.into_iter().rev().map(|record| record.event).collect();
    assert_eq!(read, events);
    let parsed = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();
    let written: Vec<_> = events.iter().map(|e| parsed(&crate::audit_rows::body_of(e))).collect();
    assert_eq!(bodies.iter().map(|b| parsed(b)).collect::<Vec<_>>(), written);
}

/// One `#[tokio::test]` per suite function, each on a fresh store from `$fresh` (see `bus_suite!`).
macro_rules! audit_suite {
    ($fresh:path) => {
        $crate::audit_rows::suite::audit_suite!(@tests $fresh;
            appending_skips_stored_ids,
            batches_of_any_length_are_stored_once_in_order,
            records_round_trip_whole,
            cursors_page_both_ways_within_a_tenant,
            filters_are_combined,
            pages_are_capped,
        );
    };
    (@tests $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::sql_bus::suite::isolated($fresh().await, $crate::audit_rows::suite::$name).await;
            }
        )*
    };
}

pub(crate) use audit_suite;

/// Each engine's test of migration 0012: stores events as the migrations before it wrote them (the whole
/// event in `body`) through `$pool`, runs the engine's migration `$migration` twice, and checks that
/// `$store` reads the same events back from bodies that hold only their detail.
macro_rules! check_migration_0012 {
    ($store:expr, $pool:expr, $migration:expr) => {{
        let events = $crate::audit_rows::suite::events_from_before_0012();
        for event in &events {
            sqlx::query($crate::audit_rows::suite::INSERT_WHOLE_BODY)
                .bind(event.id.as_str())
                .bind(event.tenant.as_str())
                .bind(event.kind.as_str())
                .bind(&event.actor)
                .bind(&event.subject)
                .bind(event.occurred_at_ms)
                .bind(&event.request_id)
                .bind(&event.trace_id)
                .bind(event.to_json())
                .execute($pool)
                .await
                .unwrap();
        }
        for _ in 0..2 {
            sqlx::raw_sql($migration).execute($pool).await.unwrap();
        }
        let bodies = sqlx::query_scalar("SELECT body FROM audit_events ORDER BY seq").fetch_all($pool).await.unwrap();
        $crate::audit_rows::suite::assert_rewritten(&$store, &events, bodies).await;
    }};
}

pub(crate) use check_migration_0012;
