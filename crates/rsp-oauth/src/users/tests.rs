//! End users against a real (in-memory SQLite) store: hash parameters and upgrades (PWD-1), the throttle
//! (PWD-4), identical failures (PWD-3), secrets kept out of events and `Debug` (PWD-5), and the pool
//! permits that prove throttled attempts never reach Argon2.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rsp_core::bus::EventSink;
use rsp_core::{Event, EventKind, ManualClock, Secret, TenantId, UnixTime, User};
use rsp_store::SqliteStore;

use super::*;
use crate::admin::NewTenant;
use crate::crypto::MasterKey;
use crate::{AdminError, AuthService, Issuers, TokenSettings};

const OWASP_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";
const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

#[async_trait]
impl EventSink for Recorder {
    async fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }

    fn try_emit(&self, event: Event) -> bool {
        self.0.lock().unwrap().push(event);
        true
    }
}

struct Fixture {
    service: Arc<AuthService>,
    clock: Arc<ManualClock>,
    events: Arc<Recorder>,
    tenant: TenantId,
}

impl Fixture {
    async fn start(throttle: LoginThrottleSettings) -> Self {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let clock = Arc::new(ManualClock::new(UnixTime(1_800_000_000)));
        let events = Arc::new(Recorder::default());
        let hasher = PasswordHasher::new(HashParams::OWASP, 2).unwrap();
        let service = AuthService::new(
            store,
            clock.clone(),
            &MasterKey::generate(),
            Issuers::new("https://id.example.com"),
            TokenSettings::default(),
        )
        .with_events(events.clone())
        .with_user_auth(UserAuth::new(hasher, &throttle));
        service.create_tenant(NewTenant { id: "acme".into(), name: "Acme".into(), signing_alg: None }).await.unwrap();
        Self { service: Arc::new(service), clock, events, tenant: TenantId::parse("acme").unwrap() }
    }

    async fn user(&self, name: &str) -> User {
        let new = NewUser { username: name.into(), password: Some(Secret::new(PASSWORD)) };
        self.service.create_user("acme", new).await.unwrap()
    }

    async fn login(&self, name: &str, password: &str, ip: &str) -> Result<AuthenticatedUser, LoginError> {
        let ip: IpAddr = ip.parse().unwrap();
        self.service.authenticate_user(&self.tenant, name, &Secret::new(password), ip).await
    }

    fn permits(&self) -> u64 {
        self.service.user_auth().hasher().permits_taken()
    }

    fn events_of(&self, kind: &EventKind) -> Vec<Event> {
        self.events.0.lock().unwrap().iter().filter(|e| &e.kind == kind).cloned().collect()
    }
}

fn throttled(result: &Result<AuthenticatedUser, LoginError>) -> bool {
    matches!(result, Err(LoginError::Throttled { .. }))
}

fn refused(result: &Result<AuthenticatedUser, LoginError>) -> bool {
    matches!(result, Err(LoginError::InvalidCredentials))
}

#[tokio::test]
async fn hashes_use_owasp_parameters_and_a_salt_per_user() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    let (alice, bob) = (fx.user("alice").await, fx.user("bob").await);
    let (a, b) = (alice.password_hash.unwrap(), bob.password_hash.unwrap());
    assert!(a.starts_with(OWASP_PREFIX), "{a}");
    assert!(b.starts_with(OWASP_PREFIX), "{b}");
    assert_ne!(a, b, "one password, two users, two hashes");
}

#[tokio::test]
async fn a_weaker_stored_hash_is_upgraded_at_the_next_login() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    let alice = fx.user("alice").await;
    let weak = PasswordHasher::new(HashParams { memory_kib: 4096, iterations: 1, parallelism: 1 }, 1).unwrap();
    let weak_hash = weak.hash(&Secret::new(PASSWORD)).await.unwrap();
    assert!(weak_hash.starts_with("$argon2id$v=19$m=4096,t=1,p=1$"));
    let stored = User { password_hash: Some(weak_hash), ..alice.clone() };
    fx.service.store().update_user(&stored, &[]).await.unwrap();

    let login = fx.login("ALICE", PASSWORD, "192.0.2.1").await.unwrap();
    assert_eq!((login.user_id.clone(), login.amr.clone()), (alice.user_id.clone(), vec!["pwd".to_owned()]));
    let after = fx.service.store().get_user(&fx.tenant, &alice.user_id).await.unwrap().unwrap();
    assert!(after.password_hash.as_deref().unwrap().starts_with(OWASP_PREFIX), "rehashed at login");
    assert!(fx.login("alice", PASSWORD, "192.0.2.1").await.is_ok(), "the new hash verifies");
    let hash_now = fx.service.store().get_user(&fx.tenant, &alice.user_id).await.unwrap().unwrap().password_hash;
    assert_eq!(hash_now, after.password_hash, "a current hash is not rehashed again");
}

#[tokio::test]
async fn unknown_users_wrong_passwords_and_disabled_accounts_get_one_answer_for_one_hash() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    let alice = fx.user("alice").await;
    fx.user("dora").await;
    fx.service.set_user_disabled("acme", alice.user_id.as_str(), true).await.unwrap();
    // The dummy hash is made on first use; make it before counting.
    let _ = fx.login("nobody-at-all", "whatever-password", "192.0.2.9").await;
    let mut answers = Vec::new();
    for (name, password) in [("ghost", PASSWORD), ("dora", "wrong password!"), ("alice", PASSWORD)] {
        let before = fx.permits();
        let result = fx.login(name, password, "192.0.2.1").await;
        assert!(refused(&result), "{name}: {result:?}");
        assert_eq!(fx.permits() - before, 1, "{name}: exactly one Argon2 verification");
        answers.push(result.unwrap_err().to_string());
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert!(fx.login("dora", PASSWORD, "192.0.2.1").await.is_ok());
    let failed = fx.events_of(&EventKind::LOGIN_FAILED);
    let reasons: Vec<&str> = failed.iter().filter_map(|e| e.data["reason"].as_str()).collect();
    assert_eq!(reasons, ["unknown_user", "unknown_user", "wrong_password", "disabled"]);
    assert_eq!(fx.events_of(&EventKind::LOGIN_SUCCEEDED).len(), 1);
}

#[tokio::test]
async fn a_pair_lockout_never_reaches_the_owner_elsewhere_and_a_success_resets_it() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    fx.user("alice").await;
    for _ in 0..5 {
        assert!(refused(&fx.login("alice", "guess-guess", "203.0.113.66").await));
    }
    assert!(throttled(&fx.login("alice", PASSWORD, "203.0.113.66").await), "6th attempt from the guesser");
    assert!(refused(&fx.login("alice", "typo-typo", "198.51.100.7").await), "another IP is judged on its own");
    assert!(fx.login("alice", PASSWORD, "198.51.100.7").await.is_ok(), "the owner elsewhere is not locked out");
    fx.clock.advance(60);
    assert!(fx.login("alice", PASSWORD, "203.0.113.66").await.is_ok(), "the wait ends");
    for _ in 0..5 {
        assert!(refused(&fx.login("alice", "guess-guess", "203.0.113.66").await), "a success reset the count");
    }
    assert!(throttled(&fx.login("alice", "guess-guess", "203.0.113.66").await));
}

#[tokio::test]
async fn the_account_ceiling_refuses_even_a_new_ip_and_a_success_resets_it() {
    let mut settings = LoginThrottleSettings::default();
    settings.per_account.free_failures = 5;
    let fx = Fixture::start(settings).await;
    fx.user("alice").await;
    fx.user("bob").await;
    for n in 1..=5 {
        assert!(refused(&fx.login("alice", "guess-guess", &format!("203.0.113.{n}")).await));
    }
    let before = fx.permits();
    let sixth = fx.login("alice", PASSWORD, "198.51.100.200").await;
    assert!(throttled(&sixth), "the 6th inside the window is refused from a new IP: {sixth:?}");
    assert_eq!(fx.permits(), before, "refused before hashing");
    assert!(fx.login("bob", PASSWORD, "203.0.113.1").await.is_ok(), "other accounts are untouched");
    let Err(LoginError::Throttled { retry_after_secs }) = sixth else { unreachable!() };
    assert!(retry_after_secs <= 300, "the account ceiling's wait is short: {retry_after_secs}");
    fx.clock.advance(i64::try_from(retry_after_secs).unwrap());
    assert!(fx.login("alice", PASSWORD, "198.51.100.200").await.is_ok());
    assert!(refused(&fx.login("alice", "guess-guess", "198.51.100.201").await), "the success reset the ceiling");
}

#[tokio::test]
async fn a_thousand_throttled_attempts_take_no_hashing_permit_and_others_log_in_meanwhile() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    fx.user("victim").await;
    fx.user("bystander").await;
    for _ in 0..5 {
        assert!(refused(&fx.login("victim", "guess-guess", "203.0.113.66").await));
    }
    let before = fx.permits();
    let storm = {
        let (service, tenant) = (fx.service.clone(), fx.tenant.clone());
        tokio::spawn(async move {
            let ip: IpAddr = "203.0.113.66".parse().unwrap();
            let mut throttled = 0;
            for n in 0..1000 {
                let guess = Secret::new(format!("guess-{n:04}"));
                if let Err(LoginError::Throttled { .. }) =
                    service.authenticate_user(&tenant, "victim", &guess, ip).await
                {
                    throttled += 1;
                }
            }
            throttled
        })
    };
    let bystander = fx.login("bystander", PASSWORD, "192.0.2.10").await;
    assert_eq!(storm.await.unwrap(), 1000, "every attempt of the storm was throttled");
    assert!(bystander.is_ok(), "{bystander:?}");
    assert_eq!(fx.permits() - before, 1, "only the bystander's login used the hashing pool");
}

#[tokio::test]
async fn oversized_input_is_refused_before_hashing() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    fx.user("alice").await;
    let before = fx.permits();
    let huge = "x".repeat(1024 * 1024);
    assert!(matches!(fx.login("alice", &huge, "192.0.2.1").await, Err(LoginError::InvalidInput(_))));
    assert!(matches!(fx.login(&"a".repeat(129), PASSWORD, "192.0.2.1").await, Err(LoginError::InvalidInput(_))));
    let create = fx.service.create_user("acme", NewUser { username: "eve".into(), password: Some(Secret::new(huge)) });
    assert!(matches!(create.await, Err(AdminError::Invalid(_))));
    assert_eq!(fx.permits(), before, "nothing reached the hasher");
    let (nope, password) = (TenantId::parse("nope").unwrap(), Secret::new(PASSWORD));
    let unknown = fx.service.authenticate_user(&nope, "alice", &password, "192.0.2.1".parse().unwrap());
    assert!(matches!(unknown.await, Err(LoginError::UnknownTenant)));
}

#[tokio::test]
async fn passwords_reach_no_event_and_no_debug_string() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    let new = NewUser { username: "alice".into(), password: Some(Secret::new(PASSWORD)) };
    assert!(!format!("{new:?}").contains("horse"));
    let alice = fx.service.create_user("acme", new).await.unwrap();
    let hash = alice.password_hash.clone().unwrap();
    assert!(!format!("{alice:?}").contains(&hash));
    fx.service
        .set_user_password("acme", alice.user_id.as_str(), &Secret::new("another fine passphrase"))
        .await
        .unwrap();
    let ok = fx.login("alice", "another fine passphrase", "192.0.2.1").await.unwrap();
    let failed = fx.login("alice", PASSWORD, "192.0.2.1").await;
    for text in [format!("{ok:?}"), format!("{failed:?}")] {
        assert!(!text.contains("horse") && !text.contains("passphrase"), "{text}");
    }
    let all = fx.events.0.lock().unwrap().clone();
    assert!(!all.is_empty());
    for event in all {
        let json = event.to_json();
        assert!(!json.contains("horse") && !json.contains("passphrase") && !json.contains("$argon2"), "{json}");
    }
}

#[tokio::test]
async fn admin_use_cases_cover_the_user_lifecycle() {
    let fx = Fixture::start(LoginThrottleSettings::default()).await;
    let svc = &fx.service;
    let alice = fx.user("Alice").await;
    assert_eq!(alice.user_id.as_str().len(), 32);
    let twin = svc.create_user("acme", NewUser { username: " alice ".into(), password: None }).await;
    assert!(matches!(twin, Err(AdminError::Conflict(_))), "{twin:?}");
    let weak = svc.create_user("acme", NewUser { username: "x".into(), password: Some(Secret::new("password1")) });
    assert!(matches!(weak.await, Err(AdminError::Invalid(_))));
    let no_password = svc.create_user("acme", NewUser { username: "carol".into(), password: None }).await.unwrap();
    assert!(refused(&fx.login("carol", PASSWORD, "192.0.2.1").await), "no password, no login");
    for n in 0..3 {
        fx.user(&format!("user{n}")).await;
    }
    let first = svc.list_users("acme", None, Some(3)).await.unwrap();
    let rest = svc.list_users("acme", first.next_cursor.as_deref(), Some(3)).await.unwrap();
    assert_eq!(first.users.len() + rest.users.len(), 5);
    assert!(rest.next_cursor.is_none());
    assert!(matches!(svc.list_users("acme", None, Some(0)).await, Err(AdminError::Invalid(_))));
    assert!(matches!(svc.list_users("acme", Some("zz"), None).await, Err(AdminError::Invalid(_))));
    assert!(matches!(svc.list_users("nope", None, None).await, Err(AdminError::NotFound("tenant"))));

    let renamed = UserChanges { username: Some("Alicia".into()), disabled: Some(true) };
    let updated = svc.update_user("acme", alice.user_id.as_str(), renamed).await.unwrap();
    assert!(updated.is_disabled() && updated.username.as_str() == "Alicia");
    assert!(refused(&fx.login("alicia", PASSWORD, "192.0.2.1").await), "disabled");
    svc.set_user_disabled("acme", alice.user_id.as_str(), false).await.unwrap();
    assert_eq!(fx.login("alicia", PASSWORD, "192.0.2.1").await.unwrap().user_id, alice.user_id);
    let clash = svc.update_user(
        "acme",
        alice.user_id.as_str(),
        UserChanges { username: Some("CAROL".into()), ..UserChanges::default() },
    );
    assert!(matches!(clash.await, Err(AdminError::Conflict(_))));

    svc.delete_user("acme", no_password.user_id.as_str()).await.unwrap();
    assert!(matches!(svc.get_user("acme", no_password.user_id.as_str()).await, Err(AdminError::NotFound("user"))));
    assert!(matches!(svc.get_user("acme", "../../etc").await, Err(AdminError::NotFound("user"))));
    let kinds: Vec<String> = fx.events.0.lock().unwrap().iter().map(|e| e.kind.as_str().to_owned()).collect();
    assert!(kinds.iter().all(|k| k.starts_with("login.")), "user writes go to the outbox, not the sink: {kinds:?}");
}
