//! The token hot paths: minting a JWT access token, verifying one, and the whole client_credentials use
//! case (client lookup, secret check, scope and audience resolution, signing) and introspection, over an
//! in-memory SQLite store. Run with `cargo bench -p rsp-oauth --bench tokens`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark set-up fails loudly")]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rsp_core::{SystemClock, TenantId};
use rsp_oauth::admin::{ClientSettings, NewTenant};
use rsp_oauth::crypto::MasterKey;
use rsp_oauth::token::{self, AccessClaims};
use rsp_oauth::{AuthService, ClientCredentials, FormParams, Issuers, TokenSettings};
use rsp_store::SqliteStore;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (auth, tenant, credentials) = runtime.block_on(async {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let auth = AuthService::new(
            store,
            Arc::new(SystemClock),
            &MasterKey::generate(),
            Issuers::new("https://id.example.com"),
            TokenSettings::default(),
        );
        auth.create_tenant(NewTenant { id: "bench".into(), name: "Bench".into(), signing_alg: None }).await.unwrap();
        let settings = ClientSettings { name: Some("svc".into()), scope: Some("a b".into()), ..Default::default() };
        let (client, secret) = auth.create_client("bench", settings).await.unwrap();
        let credentials = ClientCredentials::Basic { client_id: client.client_id.to_string(), secret: secret.unwrap() };
        (auth, TenantId::parse("bench").unwrap(), credentials)
    });
    let keys = runtime.block_on(auth.tenant_keys(&tenant)).unwrap();
    let issuer = auth.issuers().issuer(&tenant);
    let claims = AccessClaims {
        iss: issuer.clone(),
        sub: "client".into(),
        aud: "https://api.example.com".into(),
        client_id: "client".into(),
        scope: Some("a b".into()),
        jti: token::new_token_id(),
        iat: rsp_core::Clock::now(&SystemClock).0,
        exp: rsp_core::Clock::now(&SystemClock).0 + 600,
        auth_time: None,
        acr: None,
        amr: None,
    };
    let jwt = token::mint(&keys, &claims).unwrap();
    let now = rsp_core::Clock::now(&SystemClock);

    c.bench_function("mint ES256 access token", |b| b.iter(|| token::mint(&keys, &claims).unwrap()));
    c.bench_function("verify ES256 access token", |b| b.iter(|| token::verify(&keys, &jwt, &issuer, now, 0).unwrap()));

    let params = FormParams::from_pairs(vec![("grant_type".into(), "client_credentials".into())]).unwrap();
    c.bench_function("client_credentials use case", |b| {
        b.iter(|| runtime.block_on(auth.token(&tenant, &credentials, &params)).unwrap())
    });
    let ClientCredentials::Basic { client_id, .. } = &credentials else { return };
    let caller =
        runtime.block_on(auth.store().get_client(&tenant, &rsp_core::ClientId::parse(client_id.clone()).unwrap()));
    let caller = caller.unwrap().unwrap();
    let (response, _) = runtime.block_on(auth.token(&tenant, &credentials, &params)).unwrap();
    c.bench_function("introspection use case", |b| {
        b.iter(|| runtime.block_on(auth.introspect(&tenant, &caller, &response.access_token)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
