//! Browser sessions and pending authorizations: found only within their tenant and before they expire,
//! ended one by one, per user, with the user, and by the purge.

use rsp_core::session::{BrowserSession, PendingAuthorization};
use rsp_core::{UnixTime, User, UserId, Username};

use crate::engine::Engine;
use crate::fixtures::{key, tenant, tenant_id};

on_both_engines!(
    sessions_are_found_per_tenant_until_they_expire_or_end,
    pending_authorizations_are_found_until_they_expire_or_are_deleted,
);

fn user(tenant: &str, digit: char) -> User {
    User {
        tenant_id: tenant_id(tenant),
        user_id: UserId::parse(digit.to_string().repeat(32)).unwrap(),
        username: Username::parse(&format!("user-{digit}")).unwrap(),
        password_hash: None,
        disabled_at: None,
        created_at: UnixTime(1),
        updated_at: UnixTime(1),
        password_changed_at: None,
    }
}

fn session(tenant: &str, hash: &str, digit: char, expires_at: i64) -> BrowserSession {
    BrowserSession {
        tenant_id: tenant_id(tenant),
        session_hash: hash.into(),
        user_id: user(tenant, digit).user_id,
        auth_time: UnixTime(10),
        amr: vec!["pwd".into()],
        created_at: UnixTime(10),
        expires_at: UnixTime(expires_at),
    }
}

async fn sessions_are_found_per_tenant_until_they_expire_or_end(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    store.create_tenant(&tenant("b"), &key("b", "k1", 1), &[]).await.unwrap();
    for (t, d) in [("a", '1'), ("a", '2'), ("b", '1')] {
        store.create_user(&user(t, d), &[]).await.unwrap();
    }
    let first = session("a", "h1", '1', 100);
    store.create_session(&first).await.unwrap();
    store.create_session(&session("a", "h2", '1', 100)).await.unwrap();
    store.create_session(&session("a", "h3", '2', 100)).await.unwrap();
    store.create_session(&session("b", "h1", '1', 100)).await.unwrap();

    assert_eq!(store.find_session(&tenant_id("a"), "h1", UnixTime(50)).await.unwrap(), Some(first));
    assert_eq!(store.find_session(&tenant_id("a"), "h1", UnixTime(100)).await.unwrap(), None, "expired");
    assert_eq!(store.find_session(&tenant_id("a"), "nope", UnixTime(50)).await.unwrap(), None);

    store.delete_session(&tenant_id("a"), "h2").await.unwrap();
    assert_eq!(store.find_session(&tenant_id("a"), "h2", UnixTime(50)).await.unwrap(), None);
    assert_eq!(store.delete_user_sessions(&tenant_id("a"), &user("a", '1').user_id).await.unwrap(), 1);
    assert!(store.find_session(&tenant_id("a"), "h1", UnixTime(50)).await.unwrap().is_none());
    assert!(store.find_session(&tenant_id("b"), "h1", UnixTime(50)).await.unwrap().is_some(), "other tenant kept");

    store.delete_user(&tenant_id("a"), &user("a", '2').user_id, &[]).await.unwrap();
    assert!(store.find_session(&tenant_id("a"), "h3", UnixTime(50)).await.unwrap().is_none(), "ends with the user");
    assert_eq!(store.purge_expired_sessions(UnixTime(100)).await.unwrap(), 1);
}

async fn pending_authorizations_are_found_until_they_expire_or_are_deleted(engine: &Engine) {
    let store = &engine.store;
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    let pending = PendingAuthorization {
        tenant_id: tenant_id("a"),
        pending_hash: "p1".into(),
        params: "client_id=c&state=s".into(),
        expires_at: UnixTime(60),
    };
    store.save_pending(&pending).await.unwrap();
    assert_eq!(store.find_pending(&tenant_id("a"), "p1", UnixTime(59)).await.unwrap(), Some(pending.clone()));
    assert_eq!(store.find_pending(&tenant_id("a"), "p1", UnixTime(60)).await.unwrap(), None, "expired");
    assert!(store.save_pending(&pending).await.is_err(), "an id is never reused");
    store.delete_pending(&tenant_id("a"), "p1").await.unwrap();
    assert_eq!(store.find_pending(&tenant_id("a"), "p1", UnixTime(10)).await.unwrap(), None);
}
