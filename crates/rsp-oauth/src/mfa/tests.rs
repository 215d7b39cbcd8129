//! The TOTP use cases against a real (in-memory SQLite) store and a controlled clock: the secret sealed
//! at rest (TOTP-5.1), the window (TOTP-5.2a), one-time use (TOTP-5.2b), the back-off (HOTP-7.3),
//! recovery codes, and the password asked before every change (PWD-6).

use std::net::IpAddr;
use std::sync::Arc;

use rsp_core::{Clock, ManualClock, Secret, TenantId, UnixTime, UserId};
use rsp_store::SqliteStore;

use super::totp::{STEP_SECS, step_at};
use super::*;
use crate::admin::NewTenant;
use crate::crypto::MasterKey;
use crate::users::{HashParams, LoginThrottleSettings, NewUser, PasswordHasher, UserAuth};
use crate::{AuthService, Issuers, TokenSettings};

const PASSWORD: &str = "correct horse battery staple";
const PRE_SESSION: &str = "pre-session-cookie-value";

struct Fixture {
    service: AuthService,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    user: UserId,
}

fn ip() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}

impl Fixture {
    async fn start() -> Self {
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
        Self { service, clock, tenant: TenantId::parse("acme").unwrap(), user }
    }

    async fn start_enrolment(&self) -> TotpSecret {
        self.service.start_totp_enrolment(&self.tenant, &self.user, &Secret::new(PASSWORD), ip()).await.unwrap();
        match self.service.totp_status(&self.tenant, &self.user).await.unwrap() {
            TotpStatus::Pending(pending) => pending.secret,
            other => panic!("expected a pending enrolment, got {other:?}"),
        }
    }

    /// Enrols and confirms; returns the secret and the recovery codes.
    async fn enrol(&self) -> (TotpSecret, Vec<String>) {
        let secret = self.start_enrolment().await;
        let code = secret.code_at_step(step_at(self.clock.now()));
        self.service.confirm_totp_enrolment(&self.tenant, &self.user, &Secret::new(code)).await.unwrap();
        let codes = self.service.take_new_recovery_codes(&self.tenant, &self.user).await.unwrap().unwrap();
        (secret, codes)
    }

    async fn second_factor(&self, code: &str) -> Result<Vec<String>, MfaError> {
        let user = self.service.store().get_user(&self.tenant, &self.user).await.unwrap().unwrap();
        let passed = crate::users::AuthenticatedUser {
            user_id: user.user_id,
            username: "bob".into(),
            auth_time: self.clock.now(),
            amr: vec!["pwd".into()],
        };
        self.service.begin_second_factor(&self.tenant, &passed, PRE_SESSION).await.unwrap();
        let done = self.service.complete_second_factor(&self.tenant, PRE_SESSION, &Secret::new(code), ip()).await;
        done.map(|user| user.amr)
    }

    fn next_step(&self) {
        self.clock.advance(STEP_SECS);
    }
}

#[tokio::test]
async fn the_secret_is_random_sealed_at_rest_and_never_in_debug() {
    let fx = Fixture::start().await;
    let secret = fx.start_enrolment().await;
    assert_eq!(secret.expose().len(), 20);
    let stored = fx.service.store().find_totp(&fx.tenant, &fx.user).await.unwrap().unwrap();
    assert!(!stored.secret_sealed.windows(20).any(|w| w == secret.expose()), "stored as ciphertext");
    assert_eq!(stored.secret_sealed.len(), 12 + 20 + 16, "nonce, ciphertext, tag");
    let status = format!("{:?}", fx.service.totp_status(&fx.tenant, &fx.user).await.unwrap());
    let stored_debug = format!("{stored:?}");
    for debug in [status, stored_debug] {
        assert!(!debug.contains(&secret.to_base32()) && !debug.contains("secret="), "{debug}");
    }
}

#[tokio::test]
async fn enrolment_needs_the_password_and_a_pending_secret_never_logs_in() {
    let fx = Fixture::start().await;
    let wrong = fx.service.start_totp_enrolment(&fx.tenant, &fx.user, &Secret::new("not my password"), ip()).await;
    assert!(matches!(wrong, Err(MfaError::InvalidPassword)), "{wrong:?}");
    let secret = fx.start_enrolment().await;
    assert!(!fx.service.second_factor_required(&fx.tenant, &fx.user).await.unwrap(), "pending is not active");
    let login = fx.second_factor(&secret.code_at_step(step_at(fx.clock.now()))).await;
    assert!(matches!(login, Err(MfaError::NotEnabled)), "{login:?}");
    let bad = fx.service.confirm_totp_enrolment(&fx.tenant, &fx.user, &Secret::new("000000")).await;
    assert!(matches!(bad, Err(MfaError::InvalidCode)) || secret.matching_step("000000", fx.clock.now()).is_some());
    fx.clock.advance(PENDING_ENROLMENT_SECS);
    let stale = secret.code_at_step(step_at(fx.clock.now()));
    let late = fx.service.confirm_totp_enrolment(&fx.tenant, &fx.user, &Secret::new(stale)).await;
    assert!(matches!(late, Err(MfaError::NoPendingEnrolment)), "{late:?}");
}

#[tokio::test]
async fn codes_of_t_minus_1_t_and_t_plus_1_pass_once_each_and_never_again() {
    let fx = Fixture::start().await;
    let (secret, _) = fx.enrol().await;
    fx.next_step();
    fx.next_step();
    let now = step_at(fx.clock.now());
    assert!(fx.second_factor(&secret.code_at_step(now - 2)).await.is_err(), "T-2");
    assert_eq!(fx.second_factor(&secret.code_at_step(now - 1)).await.unwrap(), ["pwd", "otp", "mfa"]);
    assert!(matches!(fx.second_factor(&secret.code_at_step(now - 1)).await, Err(MfaError::InvalidCode)), "replay");
    assert!(fx.second_factor(&secret.code_at_step(now)).await.is_ok(), "T");
    assert!(fx.second_factor(&secret.code_at_step(now + 1)).await.is_ok(), "T+1");
    assert!(fx.second_factor(&secret.code_at_step(now)).await.is_err(), "T after T+1 was used");
    assert!(fx.second_factor(&secret.code_at_step(now + 2)).await.is_err(), "T+2");
}

#[tokio::test]
async fn five_wrong_codes_lock_even_the_right_one_until_the_backoff_ends() {
    let fx = Fixture::start().await;
    let (secret, _) = fx.enrol().await;
    let wrong = |step: i64| {
        let right = secret.code_at_step(step);
        let n: u32 = right.parse().unwrap();
        format!("{:06}", (n + 500_000) % 1_000_000)
    };
    fx.next_step();
    for _ in 0..5 {
        let now = step_at(fx.clock.now());
        assert!(matches!(fx.second_factor(&wrong(now)).await, Err(MfaError::InvalidCode)));
    }
    let right = secret.code_at_step(step_at(fx.clock.now()));
    assert!(matches!(fx.second_factor(&right).await, Err(MfaError::Throttled { retry_after_secs: 60 })));
    fx.clock.advance(60);
    let right = secret.code_at_step(step_at(fx.clock.now()));
    assert!(fx.second_factor(&right).await.is_ok(), "after the back-off");
}

#[tokio::test]
async fn a_recovery_code_works_once_and_gives_amr_without_otp() {
    let fx = Fixture::start().await;
    let (_, codes) = fx.enrol().await;
    assert_eq!(codes.len(), 10);
    assert!(fx.service.take_new_recovery_codes(&fx.tenant, &fx.user).await.unwrap().is_none(), "shown once");
    let first = codes.first().unwrap();
    assert_eq!(fx.second_factor(&first.to_uppercase()).await.unwrap(), ["pwd", "mfa"]);
    assert!(matches!(fx.second_factor(first).await, Err(MfaError::InvalidCode)));
    assert!(fx.second_factor(codes.get(1).unwrap()).await.is_ok());
    match fx.service.totp_status(&fx.tenant, &fx.user).await.unwrap() {
        TotpStatus::On { recovery_codes_left } => assert_eq!(recovery_codes_left, 8),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_challenge_belongs_to_one_browser_and_expires() {
    let fx = Fixture::start().await;
    let (secret, _) = fx.enrol().await;
    fx.next_step();
    let code = Secret::new(secret.code_at_step(step_at(fx.clock.now())));
    let other = fx.service.complete_second_factor(&fx.tenant, "another-browser", &code, ip()).await;
    assert!(matches!(other, Err(MfaError::Expired)), "{other:?}");
    assert!(matches!(fx.service.complete_second_factor(&fx.tenant, "", &code, ip()).await, Err(MfaError::Expired)));
    let user = crate::users::AuthenticatedUser {
        user_id: fx.user.clone(),
        username: "bob".into(),
        auth_time: fx.clock.now(),
        amr: vec!["pwd".into()],
    };
    fx.service.begin_second_factor(&fx.tenant, &user, PRE_SESSION).await.unwrap();
    fx.clock.advance(CHALLENGE_LIFETIME_SECS);
    let code = Secret::new(secret.code_at_step(step_at(fx.clock.now())));
    let late = fx.service.complete_second_factor(&fx.tenant, PRE_SESSION, &code, ip()).await;
    assert!(matches!(late, Err(MfaError::Expired)), "{late:?}");
}

#[tokio::test]
async fn disabling_needs_password_and_code_and_an_admin_can_reset() {
    let fx = Fixture::start().await;
    let (secret, _) = fx.enrol().await;
    fx.next_step();
    let code = || Secret::new(secret.code_at_step(step_at(fx.clock.now())));
    let no_password = fx.service.disable_totp(&fx.tenant, &fx.user, &Secret::new("wrong!"), &code(), ip()).await;
    assert!(matches!(no_password, Err(MfaError::InvalidPassword)), "{no_password:?}");
    let no_code = fx.service.disable_totp(&fx.tenant, &fx.user, &Secret::new(PASSWORD), &Secret::new("x"), ip()).await;
    assert!(matches!(no_code, Err(MfaError::InvalidCode)), "{no_code:?}");
    fx.service.disable_totp(&fx.tenant, &fx.user, &Secret::new(PASSWORD), &code(), ip()).await.unwrap();
    assert!(!fx.service.second_factor_required(&fx.tenant, &fx.user).await.unwrap());

    fx.enrol().await;
    assert!(fx.service.user_totp_enabled(&fx.tenant, &fx.user).await.unwrap());
    assert!(fx.service.reset_user_totp("acme", fx.user.as_str()).await.unwrap());
    assert!(!fx.service.user_totp_enabled(&fx.tenant, &fx.user).await.unwrap());
    assert!(!fx.service.reset_user_totp("acme", fx.user.as_str()).await.unwrap());
}
