//! Several replicas over the real PostgreSQL and Redis: what one replica writes, the others act on within
//! the invalidation bound; Redis going away costs no request and no audit event, and a replica starts
//! without it. Each test uses a schema and a Redis key prefix of its own (see `rsp_testkit::services`).

use std::time::{Duration, Instant};

use reqwest::Method;
use rsp_testkit::services::{PrivateRedis, Shared};
use rsp_testkit::{TestApp, TestOptions, expect_status, spawn_app_with};
use serde_json::{Value, json};

use crate::helpers::{Registered, client, service_client};

/// How long another replica may act on stale state after a write. The target on loopback is 100 ms; the
/// bound asserted is looser so a loaded 2-core machine does not fail it, and still far below every L1
/// TTL (seconds), so only a working invalidation passes.
const BOUND: Duration = Duration::from_millis(1000);

async fn deployment(shared: &Shared) -> (TestApp, TestApp) {
    let first = spawn_app_with(TestOptions { shared: Some(shared.clone()), ..TestOptions::default() }).await;
    let second = first.replica().await.unwrap();
    (first, second)
}

/// Polls `check` until it holds, returning how long that took, or fails after `BOUND` plus slack.
async fn within_bound<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < BOUND, "{what}: not seen within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn revoke(app: &TestApp, tenant: &str, caller: &Registered, token: &str) {
    let response = app
        .http
        .post(app.endpoint(tenant, "/oauth2/revoke"))
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_token_revoked_on_one_replica_is_inactive_on_the_other_within_the_bound() {
    let Some(shared) = Shared::fresh().await else { return };
    let (a, b) = deployment(&shared).await;
    let svc = service_client(&a, "default").await;
    let token = a.access_token("default", &svc.id, &svc.secret, &[]).await;
    // B has answered "active" (and cached that the token is not revoked) before the revocation.
    for _ in 0..3 {
        assert_eq!(b.introspect("default", &svc.id, &svc.secret, &token).await["active"], true);
    }
    revoke(&a, "default", &svc, &token).await;
    let took = within_bound("revocation on the other replica", || async {
        b.introspect("default", &svc.id, &svc.secret, &token).await["active"] == false
    })
    .await;
    eprintln!("revocation seen by the other replica after {took:?}");
    shared.cleanup().await;
}

#[tokio::test]
async fn a_client_change_on_one_replica_applies_on_the_other_within_the_bound() {
    let Some(shared) = Shared::fresh().await else { return };
    let (a, b) = deployment(&shared).await;
    let svc = service_client(&a, "default").await;
    assert_eq!(b.token_basic("default", &svc.id, &svc.secret, &[]).await.status(), 200);
    let rotated = a.admin_call(Method::POST, &format!("/tenants/default/clients/{}/secret", svc.id), None).await;
    let new_secret = expect_status(rotated, 200).await["client_secret"].as_str().unwrap().to_owned();
    let took = within_bound("the old secret refused on the other replica", || async {
        b.token_basic("default", &svc.id, &svc.secret, &[]).await.status() == 401
    })
    .await;
    eprintln!("secret rotation seen by the other replica after {took:?}");
    assert_eq!(b.token_basic("default", &svc.id, &new_secret, &[]).await.status(), 200);
    shared.cleanup().await;
}

const READERS: &str = r#"@id("readers") permit(principal, action == Action::"read", resource);"#;
const NOBODY: &str = r#"@id("nobody") forbid(principal, action, resource);"#;

async fn put(app: &TestApp, policies: &str) -> Value {
    let body = json!({"policies": policies});
    expect_status(app.admin_call(Method::PUT, "/tenants/acme/policies", Some(body)).await, 200).await
}

async fn decide(app: &TestApp, token: &str) -> String {
    let request = json!({"principal": "User::\"alice\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\""});
    let response =
        app.http.post(app.endpoint("acme", "/v1/authorize")).bearer_auth(token).json(&request).send().await.unwrap();
    expect_status(response, 200).await["decision"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_policy_change_on_one_replica_decides_on_the_other_within_the_bound() {
    let Some(shared) = Shared::fresh().await else { return };
    let (a, b) = deployment(&shared).await;
    a.create_tenant("acme", None).await;
    put(&a, READERS).await;
    let caller = client(&a, "acme", json!({"name": "pep", "scope": "rsp:authorize"})).await;
    let token = b.access_token("acme", &caller.id, &caller.secret, &[("scope", "rsp:authorize")]).await;
    assert_eq!(decide(&b, &token).await, "Allow");
    assert_eq!(decide(&b, &token).await, "Allow", "the second answer comes from B's decision cache");

    put(&a, NOBODY).await;
    let took =
        within_bound("the new policy on the other replica", || async { decide(&b, &token).await == "Deny" }).await;
    eprintln!("policy change decided on the other replica after {took:?}");

    let entities = json!([{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []}]);
    put(&a, READERS).await;
    within_bound("the policy put back", || async { decide(&b, &token).await == "Allow" }).await;
    let written = a.admin_call(Method::PUT, "/tenants/acme/entities", Some(entities)).await;
    let version = expect_status(written, 200).await["entity_version"].clone();
    within_bound("the entity write on the other replica", || async {
        let request = json!({"principal": "User::\"alice\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\""});
        let response =
            b.http.post(b.endpoint("acme", "/v1/authorize")).bearer_auth(&token).json(&request).send().await.unwrap();
        expect_status(response, 200).await["entity_version"] == version
    })
    .await;
    shared.cleanup().await;
}

/// Every record of `tenant`'s audit trail, oldest first, following the cursor.
async fn audit_trail(app: &TestApp, tenant: &str, kind: &str) -> Vec<Value> {
    let mut records = Vec::new();
    let mut after = 0u64;
    loop {
        let path = format!("/tenants/{tenant}/audit?kind={kind}&after={after}&limit=500");
        let page = expect_status(app.admin_call(Method::GET, &path, None).await, 200).await;
        let batch = page["records"].as_array().unwrap().clone();
        if batch.is_empty() {
            return records;
        }
        after = batch.last().unwrap()["seq"].as_u64().unwrap();
        records.extend(batch);
    }
}

/// Asks for `count` tokens, each of which must be issued, and keeps them in `issued`.
async fn issue(app: &TestApp, svc: &Registered, count: usize, issued: &mut Vec<String>) {
    for _ in 0..count {
        let response = app.token_basic("default", &svc.id, &svc.secret, &[]).await;
        assert_eq!(response.status(), 200, "a token request failed");
        let body: Value = response.json().await.unwrap();
        issued.push(body["access_token"].as_str().unwrap().to_owned());
    }
}

/// Waits until the issuance of each of `issued` is in the audit trail, once.
async fn wait_until_audited(app: &TestApp, issued: &[String]) {
    let started = Instant::now();
    let jtis: std::collections::HashSet<String> = issued.iter().map(|t| jti_of(t)).collect();
    loop {
        let trail = audit_trail(app, "default", "token.issued").await;
        let recorded: std::collections::HashSet<String> =
            trail.iter().filter_map(|r| r["subject"].as_str().map(str::to_owned)).collect();
        if jtis.is_subset(&recorded) {
            assert_eq!(trail.len(), recorded.len(), "an issuance was recorded twice");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {} issuances missing from the audit trail",
            jtis.difference(&recorded).count(),
            jtis.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn redis_stopped_during_load_costs_no_request_and_no_audit_event() {
    let Some(shared) = Shared::fresh_database().await else { return };
    let Some(mut redis) = PrivateRedis::start() else { return };
    let shared = shared.with_redis(redis.url());
    let app = spawn_app_with(TestOptions { shared: Some(shared.clone()), ..TestOptions::default() }).await;
    let svc = service_client(&app, "default").await;

    let mut issued = Vec::new();
    issue(&app, &svc, 50, &mut issued).await;
    redis.stop();
    // Requests keep succeeding with Redis gone: the cache serves L1 and the database, events go to the
    // database outbox.
    issue(&app, &svc, 50, &mut issued).await;
    let introspected = app.introspect("default", &svc.id, &svc.secret, &issued[0]).await;
    assert_eq!(introspected["active"], true);
    redis.start_again().unwrap();
    issue(&app, &svc, 50, &mut issued).await;

    // Every issuance reaches the audit trail once Redis is back: those published to Redis before it
    // stopped (kept by its append-only file), those that fell back to the database, those after.
    wait_until_audited(&app, &issued).await;
    shared.cleanup().await;
}

#[tokio::test]
async fn a_replica_started_while_redis_is_down_serves_and_catches_up_when_it_returns() {
    let Some(shared) = Shared::fresh_database().await else { return };
    let Some(mut redis) = PrivateRedis::start() else { return };
    redis.stop();
    let shared = shared.with_redis(redis.url());
    // The start itself must not need Redis: a replica restarted during an outage would otherwise fail in
    // a loop until Redis returns.
    let app = spawn_app_with(TestOptions { shared: Some(shared.clone()), ..TestOptions::default() }).await;
    let svc = service_client(&app, "default").await;

    let mut issued = Vec::new();
    issue(&app, &svc, 3, &mut issued).await;
    let introspected = app.introspect("default", &svc.id, &svc.secret, &issued[0]).await;
    assert_eq!(introspected["active"], true);
    // Long enough for a consumer's default retries (five attempts, 4–8 s apart in all) to run out on these
    // few events: the relay must keep what it cannot forward yet rather than give it up as dead letters.
    tokio::time::sleep(Duration::from_secs(15)).await;
    redis.start_again().unwrap();
    issue(&app, &svc, 3, &mut issued).await;

    // What happened before Redis answered went to the database outbox and is relayed once it does: the
    // issuances (the publisher's fallback) and the client's creation (written with the client).
    wait_until_audited(&app, &issued).await;
    let started = Instant::now();
    while !audit_trail(&app, "default", "client.created").await.iter().any(|r| r["subject"] == svc.id.as_str()) {
        assert!(started.elapsed() < Duration::from_secs(60), "the client's creation never reached the audit trail");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shared.cleanup().await;
}

fn jti_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}
