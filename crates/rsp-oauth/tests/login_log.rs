//! No password reaches the log, at any level. A test binary of its own: tracing caches per call site
//! whether anyone listens, and tests running on other threads of a shared binary could make that cache
//! skip this test's thread-local subscriber (the capture would then miss events, and prove nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rsp_core::{ManualClock, Secret, TenantId, UnixTime};
use rsp_oauth::admin::NewTenant;
use rsp_oauth::crypto::MasterKey;
use rsp_oauth::users::{HashParams, LoginThrottleSettings, NewUser, PasswordHasher, UserAuth};
use rsp_oauth::{AuthService, Issuers, TokenSettings};
use rsp_store::SqliteStore;

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_password_reaches_the_log_at_any_level() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(ManualClock::new(UnixTime(1_800_000_000)));
    let hasher = PasswordHasher::new(HashParams::OWASP, 2).unwrap();
    let service = AuthService::new(
        store,
        clock,
        &MasterKey::generate(),
        Issuers::new("https://id.example.com"),
        TokenSettings::default(),
    )
    .with_user_auth(UserAuth::new(hasher, &LoginThrottleSettings::default()));
    service.create_tenant(NewTenant { id: "acme".into(), name: "Acme".into(), signing_alg: None }).await.unwrap();
    let new = NewUser { username: "alice".into(), password: Some(Secret::new("correct horse battery staple")) };
    let alice = service.create_user("acme", new).await.unwrap();
    service.set_user_password("acme", alice.user_id.as_str(), &Secret::new("another fine passphrase")).await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let login = |name: &'static str, password: &'static str| {
        let (service, tenant) = (&service, &tenant);
        async move { service.authenticate_user(tenant, name, &Secret::new(password), ip).await }
    };
    login("alice", "another fine passphrase").await.unwrap();
    for _ in 0..6 {
        let _ = login("alice", "a wrong guess!").await;
    }
    let _ = login("ghost", "ghostly secret").await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("login succeeded") && text.contains("login throttled"), "the capture works: {text}");
    for secret in ["horse", "passphrase", "wrong guess", "ghostly", "$argon2"] {
        assert!(!text.contains(secret), "{secret} in the log: {text}");
    }
}
