//! The transactional outbox: a change's events are stored with it, and only if it commits.

use rsp_core::policy::{PolicySetContent, StoredEntity};
use rsp_core::{Event, EventKind, Priority, StoreError, UnixTime};
use serde_json::json;

use crate::engine::{Engine, OutboxRow};
use crate::fixtures::{client, client_id, jti, key, tenant, tenant_id};

on_both_engines!(
    every_change_stores_its_events_with_it,
    a_change_that_fails_stores_no_event,
    an_event_stored_twice_is_kept_once,
);

fn event(tenant: &str, kind: EventKind, priority: Priority, subject: &str) -> Event {
    Event::new(tenant_id(tenant), kind, priority).subject(subject).data(json!({"n": 1}))
}

fn row_of(event: &Event) -> OutboxRow {
    OutboxRow {
        event_id: event.id.as_str().to_owned(),
        tenant_id: event.tenant.as_str().to_owned(),
        kind: event.kind.as_str().to_owned(),
        priority: i64::from(event.priority.rank()),
        occurred_at_ms: event.occurred_at_ms,
        body: event.to_json(),
    }
}

async fn every_change_stores_its_events_with_it(engine: &Engine) {
    let store = &engine.store;
    let (a, c1) = (tenant_id("a"), client_id("c1"));
    let content = PolicySetContent {
        policies: "permit(principal, action, resource);".into(),
        schema: None,
        template_links: "[]".into(),
    };
    let entity = StoredEntity { entity_type: "User".into(), entity_id: "alice".into(), json: "{}".into() };
    let created = [
        event("a", EventKind::TENANT_CREATED, Priority::High, "a"),
        event("a", EventKind::KEY_ROTATED, Priority::Critical, "k1"),
    ];
    let updated = event("a", EventKind::TENANT_UPDATED, Priority::High, "a");
    let client_created = event("a", EventKind::CLIENT_CREATED, Priority::High, "c1");
    let client_updated = event("a", EventKind::CLIENT_UPDATED, Priority::High, "c1");
    let rotated = event("a", EventKind::KEY_ROTATED, Priority::Critical, "k2");
    let revoked = event("a", EventKind::TOKEN_REVOKED, Priority::High, "j1");
    // The store names the version it assigns; the caller's subject, if any, is replaced.
    let policy = Event::new(a.clone(), EventKind::POLICY_CHANGED, Priority::High).data(json!({"rollback_of": 7}));
    let entities = event("a", EventKind::ENTITIES_CHANGED, Priority::Normal, "guess");
    let client_deleted = event("a", EventKind::CLIENT_DELETED, Priority::High, "c1");
    let deleted = event("a", EventKind::TENANT_DELETED, Priority::High, "a");

    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &created).await.unwrap();
    store.update_tenant(&tenant("a"), std::slice::from_ref(&updated)).await.unwrap();
    store.create_client(&client("a", "c1"), std::slice::from_ref(&client_created)).await.unwrap();
    store.update_client(&client("a", "c1"), std::slice::from_ref(&client_updated)).await.unwrap();
    store.rotate_key(&key("a", "k2", 10), UnixTime(10), 60, std::slice::from_ref(&rotated)).await.unwrap();
    store.revoke_token(&a, &jti("j1"), UnixTime(100), std::slice::from_ref(&revoked)).await.unwrap();
    store.append_policy_set(&a, &content, UnixTime(1), "admin", std::slice::from_ref(&policy)).await.unwrap();
    store.write_entities(&a, &[entity], &[], std::slice::from_ref(&entities)).await.unwrap();
    store.delete_client(&a, &c1, std::slice::from_ref(&client_deleted)).await.unwrap();
    store.delete_tenant(&a, std::slice::from_ref(&deleted)).await.unwrap();

    let (policy, entities) = (policy.subject("1"), entities.subject("1"));
    let all = [&created[..], &[updated, client_created, client_updated, rotated, revoked, policy, entities]]
        .concat()
        .into_iter()
        .chain([client_deleted, deleted])
        .collect::<Vec<_>>();
    let rows = engine.outbox().await;
    assert_eq!(rows, all.iter().map(row_of).collect::<Vec<_>>(), "in commit order, every column as specified");
    let bodies: Vec<Event> = rows.iter().map(|r| Event::from_json(&r.body).unwrap()).collect();
    assert_eq!(bodies, all, "the body is the whole event");
}

async fn a_change_that_fails_stores_no_event(engine: &Engine) {
    let store = &engine.store;
    let a = tenant_id("a");
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.create_client(&client("a", "c1"), &[]).await.unwrap();
    let lost = || [event("a", EventKind::new("test.lost"), Priority::Low, "x")];

    let results = [
        store.create_tenant(&tenant("a"), &key("a", "k9", 1), &lost()).await,
        store.create_tenant(&tenant("b"), &key("a", "k1", 1), &lost()).await,
        store.create_client(&client("a", "c1"), &lost()).await,
        store.rotate_key(&key("a", "k1", 5), UnixTime(5), 60, &lost()).await,
    ];
    for result in results {
        assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    }
    let missing = [
        store.update_tenant(&tenant("nobody"), &lost()).await,
        store.delete_tenant(&tenant_id("nobody"), &lost()).await,
        store.update_client(&client("a", "nobody"), &lost()).await,
        store.delete_client(&a, &client_id("nobody"), &lost()).await,
    ];
    for result in missing {
        assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    }
    let orphans = [
        store
            .append_policy_set(
                &tenant_id("nobody"),
                &PolicySetContent { policies: String::new(), schema: None, template_links: "[]".into() },
                UnixTime(1),
                "admin",
                &lost(),
            )
            .await
            .map(|_| ()),
        store.write_entities(&tenant_id("nobody"), &[], &[], &lost()).await.map(|_| ()),
    ];
    for result in orphans {
        assert!(result.is_err(), "{result:?}");
    }
    assert_eq!(engine.outbox().await, vec![], "a rolled-back change published its events");
}

async fn an_event_stored_twice_is_kept_once(engine: &Engine) {
    let store = &engine.store;
    let a = tenant_id("a");
    let revoked = event("a", EventKind::TOKEN_REVOKED, Priority::High, "j1");
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.revoke_token(&a, &jti("j1"), UnixTime(100), std::slice::from_ref(&revoked)).await.unwrap();
    store.revoke_token(&a, &jti("j1"), UnixTime(100), &[revoked.clone(), revoked.clone()]).await.unwrap();
    assert_eq!(engine.outbox().await, vec![row_of(&revoked)]);
}
