//! The password login (PWD-3): an unknown username and a wrong password must cost the same (both verify
//! one Argon2id hash at OWASP parameters), and a throttled attempt must cost next to nothing (it is
//! refused before hashing). Run with `cargo bench -p rsp-oauth --bench login`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark set-up fails loudly")]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rsp_core::{Secret, SystemClock, TenantId};
use rsp_oauth::admin::NewTenant;
use rsp_oauth::crypto::MasterKey;
use rsp_oauth::users::{LoginError, LoginThrottleSettings, NewUser, PasswordHasher, ThrottleRule, UserAuth};
use rsp_oauth::{AuthService, Issuers, TokenSettings};
use rsp_store::SqliteStore;

async fn service(throttle: &LoginThrottleSettings) -> AuthService {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let auth = AuthService::new(
        store,
        Arc::new(SystemClock),
        &MasterKey::generate(),
        Issuers::new("https://id.example.com"),
        TokenSettings::default(),
    )
    .with_user_auth(UserAuth::new(PasswordHasher::owasp(), throttle));
    auth.create_tenant(NewTenant { id: "bench".into(), name: "Bench".into(), signing_alg: None }).await.unwrap();
    let alice = NewUser { username: "alice".into(), password: Some(Secret::new("correct horse battery staple")) };
    auth.create_user("bench", alice).await.unwrap();
    auth
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let unlimited = ThrottleRule { free_failures: u32::MAX, base_delay_secs: 0, max_delay_secs: 0, doubling: false };
    let open = LoginThrottleSettings {
        window_secs: 1,
        per_account_and_ip: unlimited,
        per_ip: unlimited,
        per_account: unlimited,
    };
    let (auth, locked) =
        runtime.block_on(async { (service(&open).await, service(&LoginThrottleSettings::default()).await) });
    let tenant = TenantId::parse("bench").unwrap();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let wrong = Secret::new("not the password");
    runtime.block_on(async {
        for _ in 0..5 {
            let _ = locked.authenticate_user(&tenant, "alice", &wrong, ip).await;
        }
    });

    let mut group = c.benchmark_group("login");
    group.sample_size(30).measurement_time(Duration::from_secs(10));
    let login = |auth: &AuthService, name: &'static str| {
        let result = runtime.block_on(auth.authenticate_user(&tenant, name, &wrong, ip));
        assert!(matches!(result, Err(LoginError::InvalidCredentials)));
    };
    group.bench_function("wrong password", |b| b.iter(|| login(&auth, "alice")));
    group.bench_function("unknown user", |b| b.iter(|| login(&auth, "nobody")));
    group.bench_function("throttled (refused before hashing)", |b| {
        b.iter(|| {
            let result = runtime.block_on(locked.authenticate_user(&tenant, "alice", &wrong, ip));
            assert!(matches!(result, Err(LoginError::Throttled { .. })));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
