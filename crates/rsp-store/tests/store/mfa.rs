//! Second factors on both engines: a pending enrolment is never usable and a confirmed one cannot be
//! overwritten; time steps are accepted by compare-and-set (one winner, only growing); recovery codes and
//! the codes' display are spent once; failures are counted and cleared; login challenges expire.

use std::sync::Arc;

use rsp_core::mfa::{MfaChallenge, TotpEnrolment};
use rsp_core::{Store, StoreError, TenantId, UnixTime, User, UserId, Username};

use crate::engine::Engine;
use crate::fixtures::{key, tenant, tenant_id};

on_both_engines!(
    a_pending_enrolment_is_replaced_and_unusable_until_confirmed,
    accepted_steps_only_grow_and_failures_reset,
    recovery_codes_and_their_display_are_spent_once,
    concurrent_uses_of_one_step_or_code_have_exactly_one_winner,
    challenges_live_until_they_expire_or_end,
    deleting_the_enrolment_or_the_user_removes_everything,
);

fn user_id(digit: char) -> UserId {
    UserId::parse(digit.to_string().repeat(32)).unwrap()
}

async fn setup(store: &Arc<dyn Store>) -> TenantId {
    store.create_tenant(&tenant("a"), &key("a", "k1", 1), &[]).await.unwrap();
    for digit in ['1', '2'] {
        let user = User {
            tenant_id: tenant_id("a"),
            user_id: user_id(digit),
            username: Username::parse(&format!("user-{digit}")).unwrap(),
            password_hash: None,
            disabled_at: None,
            created_at: UnixTime(1),
            updated_at: UnixTime(1),
            password_changed_at: None,
        };
        store.create_user(&user, &[]).await.unwrap();
    }
    tenant_id("a")
}

fn pending(digit: char, sealed: &[u8], at: i64) -> TotpEnrolment {
    TotpEnrolment {
        tenant_id: tenant_id("a"),
        user_id: user_id(digit),
        secret_sealed: sealed.to_vec(),
        created_at: UnixTime(at),
        confirmed_at: None,
        last_used_step: None,
        failed_attempts: 0,
        last_failure_at: None,
    }
}

async fn confirmed(store: &Arc<dyn Store>, tenant: &TenantId, digit: char, codes: &[String]) {
    store.save_pending_totp(&pending(digit, b"sealed", 10), &[]).await.unwrap();
    assert!(store.confirm_totp(tenant, &user_id(digit), 100, codes, b"display", UnixTime(20), &[]).await.unwrap());
}

async fn a_pending_enrolment_is_replaced_and_unusable_until_confirmed(engine: &Engine) {
    let store = &engine.store;
    let tenant = setup(store).await;
    let user = user_id('1');
    assert_eq!(store.find_totp(&tenant, &user).await.unwrap(), None);
    store.save_pending_totp(&pending('1', b"first", 10), &[]).await.unwrap();
    store.save_pending_totp(&pending('1', b"second", 11), &[]).await.unwrap();
    let found = store.find_totp(&tenant, &user).await.unwrap().unwrap();
    assert_eq!((found.secret_sealed.as_slice(), found.is_confirmed()), (b"second".as_slice(), false));
    assert!(!store.use_totp_step(&tenant, &user, 5).await.unwrap(), "a pending secret never logs in");

    let hashes = vec!["h1".to_owned(), "h2".to_owned()];
    assert!(store.confirm_totp(&tenant, &user, 100, &hashes, b"d", UnixTime(20), &[]).await.unwrap());
    assert!(!store.confirm_totp(&tenant, &user, 101, &hashes, b"d", UnixTime(21), &[]).await.unwrap(), "once");
    let found = store.find_totp(&tenant, &user).await.unwrap().unwrap();
    assert_eq!((found.confirmed_at, found.last_used_step), (Some(UnixTime(20)), Some(100)));
    let again = store.save_pending_totp(&pending('1', b"third", 30), &[]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a confirmed enrolment is not overwritten: {again:?}");
    assert_eq!(store.find_totp(&tenant, &user).await.unwrap().unwrap().secret_sealed, b"second");
    assert_eq!(store.find_totp(&tenant, &user_id('2')).await.unwrap(), None);
}

async fn accepted_steps_only_grow_and_failures_reset(engine: &Engine) {
    let store = &engine.store;
    let tenant = setup(store).await;
    let user = user_id('1');
    confirmed(store, &tenant, '1', &[]).await;
    assert!(!store.use_totp_step(&tenant, &user, 100).await.unwrap(), "the confirming code is spent");
    assert!(store.use_totp_step(&tenant, &user, 101).await.unwrap());
    assert!(!store.use_totp_step(&tenant, &user, 101).await.unwrap(), "replay");
    assert!(!store.use_totp_step(&tenant, &user, 100).await.unwrap(), "an older step after a newer one");
    assert!(store.use_totp_step(&tenant, &user, 103).await.unwrap());

    for expected in 1..=3 {
        assert_eq!(store.record_totp_failure(&tenant, &user, UnixTime(50 + expected)).await.unwrap(), expected as u32);
    }
    let found = store.find_totp(&tenant, &user).await.unwrap().unwrap();
    assert_eq!((found.failed_attempts, found.last_failure_at), (3, Some(UnixTime(53))));
    assert!(store.use_totp_step(&tenant, &user, 104).await.unwrap());
    let found = store.find_totp(&tenant, &user).await.unwrap().unwrap();
    assert_eq!((found.failed_attempts, found.last_failure_at, found.last_used_step), (0, None, Some(104)));
    assert_eq!(store.record_totp_failure(&tenant, &user_id('2'), UnixTime(60)).await.unwrap(), 0, "not enrolled");
}

async fn recovery_codes_and_their_display_are_spent_once(engine: &Engine) {
    let store = &engine.store;
    let tenant = setup(store).await;
    let user = user_id('1');
    let hashes: Vec<String> = (0..10).map(|i| format!("hash-{i}")).collect();
    confirmed(store, &tenant, '1', &hashes).await;
    assert_eq!(store.count_recovery_codes(&tenant, &user).await.unwrap(), 10);
    assert_eq!(store.take_recovery_display(&tenant, &user).await.unwrap().as_deref(), Some(b"display".as_slice()));
    assert_eq!(store.take_recovery_display(&tenant, &user).await.unwrap(), None, "shown once");

    store.record_totp_failure(&tenant, &user, UnixTime(70)).await.unwrap();
    assert!(store.use_recovery_code(&tenant, &user, "hash-3").await.unwrap());
    assert!(!store.use_recovery_code(&tenant, &user, "hash-3").await.unwrap(), "single use");
    assert!(!store.use_recovery_code(&tenant, &user, "unknown").await.unwrap());
    assert!(!store.use_recovery_code(&tenant, &user_id('2'), "hash-4").await.unwrap(), "another user's code");
    assert_eq!(store.count_recovery_codes(&tenant, &user).await.unwrap(), 9);
    assert_eq!(store.find_totp(&tenant, &user).await.unwrap().unwrap().failed_attempts, 0, "a success clears");
}

async fn concurrent_uses_of_one_step_or_code_have_exactly_one_winner(engine: &Engine) {
    let store = &engine.store;
    let tenant = setup(store).await;
    let user = user_id('1');
    confirmed(store, &tenant, '1', &["only".to_owned()]).await;
    for (step, code) in [(200, "only"), (201, "none")] {
        let attempts = (0..8).map(|_| {
            let (store, tenant, user) = (store.clone(), tenant.clone(), user.clone());
            tokio::spawn(async move {
                let by_step = store.use_totp_step(&tenant, &user, step).await.unwrap();
                let by_code = store.use_recovery_code(&tenant, &user, code).await.unwrap();
                (by_step, by_code)
            })
        });
        let results: Vec<(bool, bool)> =
            futures_join(attempts.collect()).await.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(results.iter().filter(|(s, _)| *s).count(), 1, "step {step}: {results:?}");
        let code_wins = results.iter().filter(|(_, c)| *c).count();
        assert_eq!(code_wins, usize::from(code == "only"), "code {code}: {results:?}");
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await);
    }
    out
}

async fn challenges_live_until_they_expire_or_end(engine: &Engine) {
    let store = &engine.store;
    let tenant = setup(store).await;
    let challenge = MfaChallenge {
        tenant_id: tenant.clone(),
        challenge_hash: "c1".into(),
        user_id: user_id('1'),
        auth_time: UnixTime(10),
        expires_at: UnixTime(100),
    };
    store.save_mfa_challenge(&challenge).await.unwrap();
    store.save_mfa_challenge(&MfaChallenge { challenge_hash: "c2".into(), ..challenge.clone() }).await.unwrap();
    assert_eq!(store.find_mfa_challenge(&tenant, "c1", UnixTime(50)).await.unwrap(), Some(challenge.clone()));
    assert_eq!(store.find_mfa_challenge(&tenant, "c1", UnixTime(100)).await.unwrap(), None, "expired");
    assert_eq!(store.find_mfa_challenge(&tenant_id("b"), "c1", UnixTime(50)).await.unwrap(), None);
    let renewed = MfaChallenge { user_id: user_id('2'), expires_at: UnixTime(200), ..challenge.clone() };
    store.save_mfa_challenge(&renewed).await.unwrap();
    assert_eq!(store.find_mfa_challenge(&tenant, "c1", UnixTime(150)).await.unwrap(), Some(renewed));
    store.delete_mfa_challenge(&tenant, "c1").await.unwrap();
    assert_eq!(store.find_mfa_challenge(&tenant, "c1", UnixTime(50)).await.unwrap(), None);
    assert_eq!(store.purge_expired_mfa_challenges(UnixTime(100)).await.unwrap(), 1);
    assert_eq!(store.purge_expired_mfa_challenges(UnixTime(100)).await.unwrap(), 0);
}

async fn deleting_the_enrolment_or_the_user_removes_everything(engine: &Engine) {
    let store = &engine.store;
    let tenant = setup(store).await;
    confirmed(store, &tenant, '1', &["h".to_owned()]).await;
    confirmed(store, &tenant, '2', &["h".to_owned()]).await;
    assert!(store.delete_totp(&tenant, &user_id('1'), &[]).await.unwrap());
    assert!(!store.delete_totp(&tenant, &user_id('1'), &[]).await.unwrap());
    assert_eq!(store.find_totp(&tenant, &user_id('1')).await.unwrap(), None);
    assert_eq!(store.count_recovery_codes(&tenant, &user_id('1')).await.unwrap(), 0);
    store.delete_user(&tenant, &user_id('2'), &[]).await.unwrap();
    assert_eq!(store.find_totp(&tenant, &user_id('2')).await.unwrap(), None);
    assert_eq!(store.count_recovery_codes(&tenant, &user_id('2')).await.unwrap(), 0);
}
