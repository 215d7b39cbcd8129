//! No TOTP secret, code or recovery code reaches the log, at any level (TOTP-5.1, PWD-5). A test binary of
//! its own for the reason `login_log.rs` gives: a global subscriber, so tracing's per-call-site cache
//! cannot make the capture miss events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rsp_core::{Clock, ManualClock, Secret, TenantId, UnixTime, UserId};
use rsp_oauth::admin::NewTenant;
use rsp_oauth::crypto::MasterKey;
use rsp_oauth::mfa::TotpStatus;
use rsp_oauth::mfa::totp::{STEP_SECS, step_at};
use rsp_oauth::users::{AuthenticatedUser, HashParams, LoginThrottleSettings, NewUser, PasswordHasher, UserAuth};
use rsp_oauth::{AuthService, Issuers, TokenSettings};
use rsp_store::SqliteStore;

const PASSWORD: &str = "correct horse battery staple";

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

async fn second_factor(service: &AuthService, tenant: &TenantId, user: &UserId, code: &str) -> bool {
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let passed = AuthenticatedUser {
        user_id: user.clone(),
        username: "bob".into(),
        auth_time: service.now(),
        amr: vec!["pwd".into()],
    };
    service.begin_second_factor(tenant, &passed, "pre-session").await.unwrap();
    service.complete_second_factor(tenant, "pre-session", &Secret::new(code), ip).await.is_ok()
}

#[tokio::test]
async fn no_totp_secret_or_code_reaches_the_log_at_any_level() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    // No timestamps: their microseconds could spell a 6-digit code by chance.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .without_time()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(ManualClock::new(UnixTime(1_800_000_000)));
    let hasher = PasswordHasher::new(HashParams::OWASP, 2).unwrap();
    let service = AuthService::new(
        store,
        clock.clone(),
        &MasterKey::generate(),
        Issuers::new("https://id.example.com"),
        TokenSettings::default(),
    )
    .with_user_auth(UserAuth::new(hasher, &LoginThrottleSettings::default()));
    service.create_tenant(NewTenant { id: "acme".into(), name: "Acme".into(), signing_alg: None }).await.unwrap();
    let new = NewUser { username: "bob".into(), password: Some(Secret::new(PASSWORD)) };
    let user = service.create_user("acme", new).await.unwrap().user_id;
    let tenant = TenantId::parse("acme").unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();

    service.start_totp_enrolment(&tenant, &user, &Secret::new(PASSWORD), ip).await.unwrap();
    let TotpStatus::Pending(pending) = service.totp_status(&tenant, &user).await.unwrap() else {
        panic!("expected a pending enrolment")
    };
    let confirm = pending.secret.code_at_step(step_at(clock.now()));
    service.confirm_totp_enrolment(&tenant, &user, &Secret::new(confirm.clone())).await.unwrap();
    let recovery = service.take_new_recovery_codes(&tenant, &user).await.unwrap().unwrap();
    clock.advance(STEP_SECS);
    let code = pending.secret.code_at_step(step_at(clock.now()));
    assert!(second_factor(&service, &tenant, &user, &code).await);
    assert!(!second_factor(&service, &tenant, &user, &code).await, "replayed");
    assert!(second_factor(&service, &tenant, &user, recovery.first().unwrap()).await);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("second factor accepted") && text.contains("second factor refused"), "capture: {text}");
    let normalised = recovery.first().unwrap().replace('-', "");
    for secret in [pending.secret.to_base32(), pending.uri.clone(), confirm, code, normalised, PASSWORD.to_owned()] {
        assert!(!text.contains(&secret), "{secret} in the log: {text}");
    }
    assert!(!text.contains(recovery.first().unwrap().as_str()));
}
