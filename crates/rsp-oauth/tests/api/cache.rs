//! What one replica writes, the other sees: at once through the shared cache entries, or as soon as the
//! invalidation notice reaches its listener for what it keeps in process.

use rsp_oauth::admin::ClientSettings;
use rsp_oauth::{Introspection, OAuthError, TokenSettings};

use crate::{Replicas, eventually};

#[tokio::test]
async fn a_client_update_is_seen_at_once_by_every_replica() {
    let r = Replicas::start("a b", TokenSettings::default()).await;
    // Both replicas have the client cached.
    r.token(&r.a, "a").await;
    r.token(&r.b, "a").await;

    let narrowed = ClientSettings { scope: Some("b".into()), ..Default::default() };
    r.a.update_client("acme", r.client.client_id.as_str(), narrowed).await.unwrap();

    let refused = r.b.token(&r.tenant, &r.credentials(), &Replicas::token_params("a")).await;
    assert!(matches!(refused, Err(OAuthError::InvalidScope(_))), "{refused:?}");
    r.token(&r.b, "b").await;
}

#[tokio::test]
async fn a_rotated_or_deleted_client_stops_authenticating_at_once() {
    let r = Replicas::start("a", TokenSettings::default()).await;
    r.token(&r.b, "a").await;

    r.a.rotate_client_secret("acme", r.client.client_id.as_str()).await.unwrap();
    let old_secret = r.b.token(&r.tenant, &r.credentials(), &Replicas::token_params("a")).await;
    assert!(matches!(old_secret, Err(OAuthError::InvalidClient { .. })), "{old_secret:?}");

    let (_, new_secret) = r.a.rotate_client_secret("acme", r.client.client_id.as_str()).await.unwrap();
    let r = Replicas { secret: new_secret, ..r };
    r.token(&r.b, "a").await;
    r.a.delete_client("acme", r.client.client_id.as_str()).await.unwrap();
    let deleted = r.b.token(&r.tenant, &r.credentials(), &Replicas::token_params("a")).await;
    assert!(matches!(deleted, Err(OAuthError::InvalidClient { .. })), "{deleted:?}");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_even_where_it_was_already_verified() {
    let r = Replicas::start("rsp:authorize", TokenSettings::default()).await;
    let token = r.token(&r.a, "rsp:authorize").await;
    // Both replicas verify it once, which puts it in their verified-token caches.
    for replica in [&r.a, &r.b] {
        replica.authorize_decision_caller(&r.tenant, &token).await.unwrap();
        replica.authorize_decision_caller(&r.tenant, &token).await.unwrap();
        let seen = replica.introspect(&r.tenant, &r.client, &token).await.unwrap();
        assert!(matches!(seen, Introspection::Active(_)));
    }

    r.a.revoke(&r.tenant, &r.client, &token).await.unwrap();

    // The revoking replica refuses on the very next request, without waiting for any notice.
    assert!(r.a.authorize_decision_caller(&r.tenant, &token).await.is_err());
    // Revocation state is a cache entry, dropped before `revoke` returned.
    for replica in [&r.a, &r.b] {
        let seen = replica.introspect(&r.tenant, &r.client, &token).await.unwrap();
        assert!(matches!(seen, Introspection::Inactive { active: false }), "{seen:?}");
    }
    // The other replica's verified token goes when the notice reaches its listener.
    eventually("replica b refusing the revoked token", || async {
        r.b.authorize_decision_caller(&r.tenant, &token).await.is_err()
    })
    .await;
    // A fresh token of the same client is unaffected.
    let fresh = r.token(&r.a, "rsp:authorize").await;
    r.b.authorize_decision_caller(&r.tenant, &fresh).await.unwrap();
}

#[tokio::test]
async fn a_key_rotation_reaches_the_other_replicas_key_ring_through_the_notice() {
    let r = Replicas::start("a", TokenSettings::default()).await;
    let before = r.b.jwks(&r.tenant).await.unwrap();
    let old_kid = kid_of(&r.token(&r.b, "a").await);
    assert!(before.contains(&old_kid));

    let keys = r.a.rotate_keys("acme").await.unwrap();
    let new_kid = keys.iter().find(|k| k.status == "active").unwrap().kid.clone();
    assert_ne!(new_kid, old_kid);

    // The clock does not move, so only the notice can make replica b read the keys again.
    eventually("replica b serving the new key", || async { r.b.jwks(&r.tenant).await.unwrap().contains(&new_kid) })
        .await;
    assert_eq!(kid_of(&r.token(&r.b, "a").await), new_kid);
    // The retired key stays published, so tokens it signed still verify.
    assert!(r.b.jwks(&r.tenant).await.unwrap().contains(&old_kid));
}

#[tokio::test]
async fn a_token_signed_with_a_key_rotated_elsewhere_verifies_without_any_notice() {
    // No shared cache: replica b hears nothing of a's rotation and keeps its key set for 30 s.
    let r = Replicas::start_with("a", TokenSettings::default(), false).await;
    let old = r.token(&r.a, "a").await;
    assert!(matches!(r.b.introspect(&r.tenant, &r.client, &old).await.unwrap(), Introspection::Active(_)));
    r.a.rotate_keys("acme").await.unwrap();
    let new = r.token(&r.a, "a").await;
    assert_ne!(kid_of(&new), kid_of(&old));
    // Right after b loaded its set, an unknown key id does not make it read the store again.
    assert!(matches!(r.b.introspect(&r.tenant, &r.client, &new).await.unwrap(), Introspection::Inactive { .. }));
    tokio::time::sleep(rsp_oauth::keyring::UNKNOWN_KID_RELOAD_INTERVAL).await;
    assert!(
        matches!(r.b.introspect(&r.tenant, &r.client, &new).await.unwrap(), Introspection::Active(_)),
        "b read the key set again for the unknown key id"
    );
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn the_listener_ends_when_its_service_is_dropped() {
    let r = Replicas::start("a", TokenSettings::default()).await;
    let listener = r.b.spawn_invalidation_listener();
    drop(r);
    tokio::time::timeout(std::time::Duration::from_secs(5), listener).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_deleted_tenant_is_gone_from_every_replica() {
    let r = Replicas::start("rsp:authorize", TokenSettings::default()).await;
    let token = r.token(&r.a, "rsp:authorize").await;
    r.b.authorize_decision_caller(&r.tenant, &token).await.unwrap();

    r.a.delete_tenant("acme").await.unwrap();

    assert!(r.a.authorize_decision_caller(&r.tenant, &token).await.is_err());
    let issued = r.b.token(&r.tenant, &r.credentials(), &Replicas::token_params("rsp:authorize")).await;
    assert!(issued.is_err(), "{issued:?}");
    eventually("replica b refusing the deleted tenant's token", || async {
        r.b.authorize_decision_caller(&r.tenant, &token).await.is_err()
    })
    .await;
}
