//! Grants: codes redeemed once (also under concurrency), issuances refused after revocation, refresh
//! rotation with grace window and reuse detection, consents.

use std::sync::Arc;

use rsp_core::grant::{
    AuthorizationCode, CodeRedemption, Consent, Grant, Issuance, NewRefreshToken, RefreshStatus, Rotation,
    RotationWindow,
};
use rsp_core::{ScopeSet, Store, UnixTime};

use crate::engine::Engine;
use crate::fixtures::{client_id, jti, key, tenant, tenant_id};

on_both_engines!(
    a_code_is_redeemed_once_and_then_names_its_grant,
    concurrent_redemptions_yield_exactly_one_code,
    revoking_a_grant_revokes_its_access_and_refresh_tokens_and_blocks_later_issuance,
    revoking_a_users_grants_revokes_all_of_them_and_no_one_elses,
    rotation_answers_a_retry_within_grace_and_revokes_the_family_on_reuse,
    an_expired_or_revoked_refresh_token_is_invalid,
    concurrent_rotations_of_one_token_rotate_once_and_repeat_its_response,
    consents_are_replaced_and_kept_per_user_and_client,
    expired_and_abandoned_grants_and_expired_revocations_are_purged,
);

fn grant(id: &str) -> Grant {
    Grant {
        tenant_id: tenant_id("a"),
        grant_id: id.into(),
        client_id: client_id("app"),
        subject: "user-1".into(),
        scope: ScopeSet::parse("openid offline_access").unwrap(),
        audience: "https://api.example".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: UnixTime(90),
        amr: vec!["pwd".into(), "otp".into()],
        acr: Some("urn:example:loa2".into()),
        created_at: UnixTime(100),
        expires_at: UnixTime(100_000),
    }
}

fn code(hash: &str, grant_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        tenant_id: tenant_id("a"),
        code_hash: hash.into(),
        grant_id: grant_id.into(),
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        expires_at: UnixTime(160),
    }
}

fn issuance(access: &str, refresh: Option<&str>) -> Issuance {
    Issuance {
        access_jti: jti(access),
        access_expires_at: UnixTime(10_000),
        refresh: refresh.map(|hash| NewRefreshToken {
            token_hash: hash.into(),
            scope: ScopeSet::parse("openid offline_access").unwrap(),
            expires_at: UnixTime(50_000),
        }),
    }
}

async fn rotate(store: &Arc<dyn Store>, hash: &str, window: RotationWindow, next: Issuance, sealed: &[u8]) -> Rotation {
    store.rotate_refresh_token(&tenant_id("a"), hash, window, &next, sealed, &[]).await.unwrap()
}

async fn with_grant(engine: &Engine, id: &str, code_hash: &str) {
    let store = &engine.store;
    if store.get_tenant(&tenant_id("a")).await.unwrap().is_none() {
        store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    }
    store.create_code(&grant(id), &code(code_hash, id), &[]).await.unwrap();
}

async fn a_code_is_redeemed_once_and_then_names_its_grant(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store = &engine.store;
    let a = tenant_id("a");
    let first = store.consume_code(&a, "h1", UnixTime(101)).await.unwrap();
    assert_eq!(first, CodeRedemption::Redeemed { code: code("h1", "g1"), grant: Box::new(grant("g1")) });
    let again = store.consume_code(&a, "h1", UnixTime(102)).await.unwrap();
    assert_eq!(again, CodeRedemption::AlreadyUsed { grant_id: "g1".into() });
    assert_eq!(store.consume_code(&a, "nope", UnixTime(102)).await.unwrap(), CodeRedemption::Unknown);
    assert_eq!(
        store.consume_code(&tenant_id("b"), "h1", UnixTime(102)).await.unwrap(),
        CodeRedemption::Unknown,
        "codes leak across tenants"
    );
}

async fn concurrent_redemptions_yield_exactly_one_code(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store: Arc<dyn Store> = engine.store.clone();
    let attempts = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.consume_code(&tenant_id("a"), "h1", UnixTime(101)).await.unwrap() })
    });
    let outcomes = futures_outcomes(attempts.collect()).await;
    let redeemed = outcomes.iter().filter(|o| matches!(o, CodeRedemption::Redeemed { .. })).count();
    assert_eq!(redeemed, 1, "{outcomes:?}");
}

async fn futures_outcomes(handles: Vec<tokio::task::JoinHandle<CodeRedemption>>) -> Vec<CodeRedemption> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

async fn revoking_a_grant_revokes_its_access_and_refresh_tokens_and_blocks_later_issuance(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store = &engine.store;
    let a = tenant_id("a");
    assert!(store.record_issuance(&a, "g1", &issuance("at-1", Some("rt-1")), UnixTime(101), &[]).await.unwrap());
    let revoked = store.revoke_grant(&a, "g1", UnixTime(102), &[]).await.unwrap();
    assert_eq!(revoked, vec![jti("at-1")]);
    assert!(store.is_revoked(&a, &jti("at-1")).await.unwrap());
    let (token, _) = store.find_refresh_token(&a, "rt-1").await.unwrap().unwrap();
    assert_eq!(token.status, RefreshStatus::Revoked);
    assert!(store.revoke_grant(&a, "g1", UnixTime(103), &[]).await.unwrap().is_empty(), "revoked twice");
    let late = store.record_issuance(&a, "g1", &issuance("at-2", None), UnixTime(104), &[]).await.unwrap();
    assert!(!late, "an issuance landed after its grant was revoked");
    assert!(!store.is_revoked(&a, &jti("at-2")).await.unwrap());
}

/// PWD-6: a password change revokes every grant of the user, whatever the client, and nobody else's.
async fn revoking_a_users_grants_revokes_all_of_them_and_no_one_elses(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store = &engine.store;
    let a = tenant_id("a");
    let other_client = Grant { client_id: client_id("other-app"), ..grant("g2") };
    store.create_code(&other_client, &code("h2", "g2"), &[]).await.unwrap();
    let someone_else = Grant { subject: "user-2".into(), ..grant("g3") };
    store.create_code(&someone_else, &code("h3", "g3"), &[]).await.unwrap();
    for (g, at, rt) in [("g1", "at-1", "rt-1"), ("g2", "at-2", "rt-2"), ("g3", "at-3", "rt-3")] {
        assert!(store.record_issuance(&a, g, &issuance(at, Some(rt)), UnixTime(101), &[]).await.unwrap());
    }
    store.revoke_grant(&a, "g2", UnixTime(102), &[]).await.unwrap();

    let mut revoked = store.revoke_user_grants(&a, "user-1", UnixTime(103), &[]).await.unwrap();
    revoked.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(revoked, vec![jti("at-1")], "g2's token was revoked before and is not reported again");
    for rt in ["rt-1", "rt-2"] {
        let (token, _) = store.find_refresh_token(&a, rt).await.unwrap().unwrap();
        assert_eq!(token.status, RefreshStatus::Revoked, "{rt}");
    }
    let (untouched, _) = store.find_refresh_token(&a, "rt-3").await.unwrap().unwrap();
    assert_eq!(untouched.status, RefreshStatus::Active, "another user's grant is kept");
    assert!(!store.is_revoked(&a, &jti("at-3")).await.unwrap());
    let late = store.record_issuance(&a, "g1", &issuance("at-4", None), UnixTime(104), &[]).await.unwrap();
    assert!(!late, "an issuance landed after the user's grants were revoked");
    assert!(store.revoke_user_grants(&a, "user-1", UnixTime(105), &[]).await.unwrap().is_empty());
    assert!(store.revoke_user_grants(&tenant_id("b"), "user-2", UnixTime(105), &[]).await.unwrap().is_empty());
    let (untouched, _) = store.find_refresh_token(&a, "rt-3").await.unwrap().unwrap();
    assert_eq!(untouched.status, RefreshStatus::Active, "the same subject in another tenant is another user");
}

async fn rotation_answers_a_retry_within_grace_and_revokes_the_family_on_reuse(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store = &engine.store;
    let a = tenant_id("a");
    store.record_issuance(&a, "g1", &issuance("at-1", Some("rt-1")), UnixTime(100), &[]).await.unwrap();
    let window = |now| RotationWindow { now: UnixTime(now), grace_secs: 10 };
    let first = rotate(store, "rt-1", window(200), issuance("at-2", Some("rt-2")), b"r2").await;
    assert_eq!(first, Rotation::Rotated);
    let (rt2, grant_of) = store.find_refresh_token(&a, "rt-2").await.unwrap().unwrap();
    assert_eq!((rt2.generation, rt2.parent_hash.as_deref(), rt2.status), (1, Some("rt-1"), RefreshStatus::Active));
    assert_eq!(grant_of, grant("g1"));

    let retry = rotate(store, "rt-1", window(210), issuance("at-x", Some("rt-x")), b"rx").await;
    assert_eq!(retry, Rotation::Grace { sealed_response: b"r2".to_vec() });
    assert!(store.find_refresh_token(&a, "rt-x").await.unwrap().is_none(), "a grace answer stored a new token");

    let reuse = rotate(store, "rt-1", window(211), issuance("at-y", Some("rt-y")), b"ry").await;
    let Rotation::Reused { mut revoked } = reuse else { panic!("reuse not detected") };
    revoked.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(revoked, vec![jti("at-1"), jti("at-2")]);
    let next = rotate(store, "rt-2", window(212), issuance("at-z", Some("rt-z")), b"rz").await;
    assert_eq!(next, Rotation::Invalid, "the family's live token survived reuse");
}

async fn an_expired_or_revoked_refresh_token_is_invalid(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store = &engine.store;
    let a = tenant_id("a");
    store.record_issuance(&a, "g1", &issuance("at-1", Some("rt-1")), UnixTime(100), &[]).await.unwrap();
    let late = RotationWindow { now: UnixTime(50_000), grace_secs: 10 };
    let expired = rotate(store, "rt-1", late, issuance("at-2", Some("rt-2")), b"r").await;
    assert_eq!(expired, Rotation::Invalid);
    let unknown =
        rotate(store, "nope", RotationWindow { now: UnixTime(200), grace_secs: 10 }, issuance("at-3", None), b"r")
            .await;
    assert_eq!(unknown, Rotation::Invalid);
}

async fn consents_are_replaced_and_kept_per_user_and_client(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store = &engine.store;
    let consent = |scope: &str, at| Consent {
        tenant_id: tenant_id("a"),
        subject: "user-1".into(),
        client_id: client_id("app"),
        scope: ScopeSet::parse(scope).unwrap(),
        granted_at: UnixTime(at),
    };
    store.save_consent(&consent("openid", 1), &[]).await.unwrap();
    store.save_consent(&consent("openid profile", 2), &[]).await.unwrap();
    let found = store.find_consent(&tenant_id("a"), "user-1", &client_id("app")).await.unwrap();
    assert_eq!(found, Some(consent("openid profile", 2)));
    assert_eq!(store.find_consent(&tenant_id("a"), "user-2", &client_id("app")).await.unwrap(), None);
}

async fn concurrent_rotations_of_one_token_rotate_once_and_repeat_its_response(engine: &Engine) {
    with_grant(engine, "g1", "h1").await;
    let store: Arc<dyn Store> = engine.store.clone();
    store.record_issuance(&tenant_id("a"), "g1", &issuance("at-0", Some("rt-0")), UnixTime(100), &[]).await.unwrap();
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let window = RotationWindow { now: UnixTime(200), grace_secs: 10 };
                let next = issuance(&format!("at-{}", i + 1), Some(&format!("rt-{}", i + 1)));
                rotate(&store, "rt-0", window, next, format!("response {i}").as_bytes()).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| **o == Rotation::Rotated).count(), 1, "{outcomes:?}");
    let winner = outcomes.iter().position(|o| *o == Rotation::Rotated).unwrap();
    let expected = Rotation::Grace { sealed_response: format!("response {winner}").into_bytes() };
    assert!(outcomes.iter().all(|o| *o == Rotation::Rotated || *o == expected), "{outcomes:?}");
}

async fn expired_and_abandoned_grants_and_expired_revocations_are_purged(engine: &Engine) {
    with_grant(engine, "used", "h1").await;
    let store = &engine.store;
    let a = tenant_id("a");
    let abandoned = Grant { created_at: UnixTime(100), ..grant("abandoned") };
    store.create_code(&abandoned, &code("h2", "abandoned"), &[]).await.unwrap();
    let expired = Grant { expires_at: UnixTime(1_000), ..grant("expired") };
    store.create_code(&expired, &code("h3", "expired"), &[]).await.unwrap();
    for (g, at, rt) in [("used", "at-1", "rt-1"), ("expired", "at-3", "rt-3")] {
        assert!(store.record_issuance(&a, g, &issuance(at, Some(rt)), UnixTime(101), &[]).await.unwrap());
    }
    assert_eq!(store.purge_expired_grants(UnixTime(500), UnixTime(50)).await.unwrap(), 0, "nothing is due yet");
    assert_eq!(store.purge_expired_grants(UnixTime(2_000), UnixTime(200)).await.unwrap(), 2);
    assert!(store.find_refresh_token(&a, "rt-1").await.unwrap().is_some(), "a live, used grant is kept");
    assert!(store.find_refresh_token(&a, "rt-3").await.unwrap().is_none(), "the expired grant's tokens went too");
    assert_eq!(store.consume_code(&a, "h2", UnixTime(150)).await.unwrap(), CodeRedemption::Unknown);

    store.revoke_token(&a, &jti("old"), UnixTime(1_000), &[]).await.unwrap();
    store.revoke_token(&a, &jti("live"), UnixTime(9_000), &[]).await.unwrap();
    assert_eq!(store.purge_expired_revocations(UnixTime(5_000)).await.unwrap(), 1);
    assert!(store.is_revoked(&a, &jti("live")).await.unwrap(), "a token that can still be used stays revoked");
    assert!(!store.is_revoked(&a, &jti("old")).await.unwrap());
}
