//! Users: stored per tenant, usernames unique by their folded form, paged by id, every write with its
//! events, and the rehash swap conditional on the hash it replaces.

use rsp_core::{Event, EventKind, Priority, StoreError, UnixTime, User, UserId, Username};

use crate::engine::Engine;
use crate::fixtures::{key, tenant, tenant_id};

on_both_engines!(
    users_round_trip_and_stay_within_their_tenant,
    usernames_are_unique_per_tenant_whatever_their_case,
    users_page_by_id_with_a_cursor,
    updates_deletes_and_rehashes_touch_one_user_and_store_their_events,
);

fn user(tenant: &str, id_digit: char, name: &str) -> User {
    User {
        tenant_id: tenant_id(tenant),
        user_id: UserId::parse(id_digit.to_string().repeat(32)).unwrap(),
        username: Username::parse(name).unwrap(),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$salt$hash-of-{name}")),
        disabled_at: None,
        created_at: UnixTime(10),
        updated_at: UnixTime(10),
        password_changed_at: Some(UnixTime(10)),
    }
}

async fn two_tenants(engine: &Engine) {
    engine.store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    engine.store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
}

async fn users_round_trip_and_stay_within_their_tenant(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    let full = User { disabled_at: Some(UnixTime(20)), ..user("a", '1', "Élodie Dupont") };
    let bare = User { password_hash: None, password_changed_at: None, ..user("a", '2', "bob") };
    store.create_user(&full, &[]).await.unwrap();
    store.create_user(&bare, &[]).await.unwrap();
    let a = tenant_id("a");
    assert_eq!(store.get_user(&a, &full.user_id).await.unwrap(), Some(full.clone()));
    assert_eq!(store.get_user(&a, &bare.user_id).await.unwrap(), Some(bare));
    assert_eq!(store.find_user_by_username(&a, "élodie dupont").await.unwrap(), Some(full.clone()));
    assert_eq!(store.find_user_by_username(&a, "Élodie Dupont").await.unwrap(), None, "lookups take the folded form");
    assert_eq!(store.get_user(&tenant_id("b"), &full.user_id).await.unwrap(), None, "users leak across tenants");
    assert_eq!(store.find_user_by_username(&tenant_id("b"), "bob").await.unwrap(), None);
    let orphan = store.create_user(&user("nobody", '3', "carol"), &[]).await;
    assert!(orphan.is_err(), "a user of an unknown tenant was stored");
}

async fn usernames_are_unique_per_tenant_whatever_their_case(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    store.create_user(&user("a", '1', "Alice"), &[]).await.unwrap();
    let twin = store.create_user(&user("a", '2', "ALICE"), &[]).await;
    assert!(matches!(twin, Err(StoreError::Conflict(_))), "{twin:?}");
    let same_id = store.create_user(&user("a", '1', "other"), &[]).await;
    assert!(matches!(same_id, Err(StoreError::Conflict(_))), "{same_id:?}");
    store.create_user(&user("b", '2', "alice"), &[]).await.unwrap();
    let renamed_onto_taken = User { username: Username::parse("aLiCe").unwrap(), ..user("a", '3', "x") };
    store.create_user(&user("a", '3', "x"), &[]).await.unwrap();
    let clash = store.update_user(&renamed_onto_taken, &[]).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
}

async fn users_page_by_id_with_a_cursor(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    for (digit, name) in [('c', "u3"), ('a', "u1"), ('e', "u5"), ('b', "u2"), ('d', "u4")] {
        store.create_user(&user("a", digit, name), &[]).await.unwrap();
    }
    store.create_user(&user("b", '0', "elsewhere"), &[]).await.unwrap();
    let a = tenant_id("a");
    let names = |users: Vec<User>| users.into_iter().map(|u| u.username.as_str().to_owned()).collect::<Vec<_>>();
    let first = store.list_users(&a, None, 2).await.unwrap();
    let cursor = first.last().unwrap().user_id.clone();
    assert_eq!(names(first), ["u1", "u2"]);
    let second = store.list_users(&a, Some(&cursor), 2).await.unwrap();
    let cursor = second.last().unwrap().user_id.clone();
    assert_eq!(names(second), ["u3", "u4"]);
    assert_eq!(names(store.list_users(&a, Some(&cursor), 2).await.unwrap()), ["u5"]);
    assert_eq!(store.list_users(&a, None, 100).await.unwrap().len(), 5);
}

fn event(kind: EventKind, subject: &UserId) -> Event {
    Event::new(tenant_id("a"), kind, Priority::High).subject(subject.as_str())
}

async fn updates_deletes_and_rehashes_touch_one_user_and_store_their_events(engine: &Engine) {
    two_tenants(engine).await;
    let store = &engine.store;
    let alice = user("a", '1', "alice");
    let created = event(EventKind::USER_CREATED, &alice.user_id);
    store.create_user(&alice, std::slice::from_ref(&created)).await.unwrap();
    store.create_user(&user("b", '1', "alice"), &[]).await.unwrap();

    let changed = User {
        username: Username::parse("Alice2").unwrap(),
        disabled_at: Some(UnixTime(30)),
        updated_at: UnixTime(30),
        ..alice.clone()
    };
    let updated = event(EventKind::USER_UPDATED, &alice.user_id);
    store.update_user(&changed, std::slice::from_ref(&updated)).await.unwrap();
    let a = tenant_id("a");
    assert_eq!(store.get_user(&a, &alice.user_id).await.unwrap(), Some(changed.clone()));
    assert_eq!(store.get_user(&tenant_id("b"), &alice.user_id).await.unwrap(), Some(user("b", '1', "alice")));

    let old_hash = changed.password_hash.clone().unwrap();
    let rehashed = event(EventKind::USER_PASSWORD_CHANGED, &alice.user_id);
    let stale = event(EventKind::USER_PASSWORD_CHANGED, &alice.user_id);
    assert!(
        store
            .replace_password_hash(&a, &alice.user_id, &old_hash, "new", std::slice::from_ref(&rehashed))
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_password_hash(&a, &alice.user_id, &old_hash, "newer", std::slice::from_ref(&stale))
            .await
            .unwrap(),
        "a swap against a hash that changed meanwhile must not apply"
    );
    assert_eq!(store.get_user(&a, &alice.user_id).await.unwrap().unwrap().password_hash.as_deref(), Some("new"));

    let missing = User { user_id: UserId::parse("9".repeat(32)).unwrap(), ..changed.clone() };
    assert!(matches!(store.update_user(&missing, &[]).await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_user(&a, &missing.user_id, &[]).await, Err(StoreError::NotFound)));
    let deleted = event(EventKind::USER_DELETED, &alice.user_id);
    store.delete_user(&a, &alice.user_id, std::slice::from_ref(&deleted)).await.unwrap();
    assert_eq!(store.get_user(&a, &alice.user_id).await.unwrap(), None);
    assert!(store.get_user(&tenant_id("b"), &alice.user_id).await.unwrap().is_some());

    let stored: Vec<String> = engine.outbox().await.into_iter().map(|row| row.event_id).collect();
    let expected: Vec<String> =
        [created, updated, rehashed, deleted].iter().map(|e| e.id.as_str().to_owned()).collect();
    assert_eq!(stored, expected, "each write stores its events, and only the writes that applied");
}
