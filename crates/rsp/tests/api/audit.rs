//! The audit trail as an administrator reads it: what is recorded, with which fields, filters, cursor
//! pagination, and errors in the API's format. Runs on the no-configuration default (SQLite, the
//! database-backed bus), where the audit writer consumes in process.

use std::time::{Duration, Instant};

use reqwest::Method;
use rsp_testkit::{TestApp, expect_status, spawn_app};
use serde_json::Value;

use crate::helpers::service_client;

async fn page(app: &TestApp, query: &str) -> Value {
    expect_status(app.admin_call(Method::GET, &format!("/tenants/default/audit{query}"), None).await, 200).await
}

/// Waits until the trail holds at least `at_least` records of each kind in `kinds` (the writer consumes
/// asynchronously).
async fn wait_for(app: &TestApp, kinds: &[&str], at_least: usize) -> Vec<Value> {
    wait_until(app, &format!("{at_least} of each of {kinds:?}"), |records| {
        kinds.iter().all(|kind| records.iter().filter(|r| r["kind"] == *kind).count() >= at_least)
    })
    .await
}

/// Waits until `holds` is true of the whole trail. The writer consumes asynchronously and in priority
/// order, so one record being there says nothing of another: wait for exactly what will be asserted.
async fn wait_until(app: &TestApp, what: &str, holds: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let records = page(app, "?limit=1000").await["records"].as_array().unwrap().clone();
        if holds(&records) {
            return records;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "audit trail lacks {what}: {records:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn changes_and_tokens_are_recorded_with_who_what_and_which_request() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/token"))
        .basic_auth(&svc.id, Some(&svc.secret))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let revoked = app
        .http
        .post(app.endpoint("default", "/oauth2/revoke"))
        .basic_auth(&svc.id, Some(&svc.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);

    // The admin calls of this test issue tokens too: wait for the one the service client got.
    let issued_to_the_client = |r: &Value| r["kind"] == "token.issued" && r["actor"] == svc.id.as_str();
    let records = wait_until(&app, "the client's creation, its token and the revocation", |records| {
        ["client.created", "token.revoked"].iter().all(|kind| records.iter().any(|r| r["kind"] == *kind))
            && records.iter().any(issued_to_the_client)
    })
    .await;
    let created = records.iter().find(|r| r["kind"] == "client.created").unwrap();
    assert_eq!(created["actor"], app.admin.client_id.as_str(), "the admin who made the change");
    assert_eq!(created["subject"], svc.id.as_str());
    assert_eq!(created["tenant"], "default");
    let issued = records.iter().find(|r| issued_to_the_client(r)).unwrap();
    assert_eq!(issued["actor"], svc.id.as_str());
    assert_eq!(issued["trace_id"], trace_id, "the W3C trace id of the request");
    assert_eq!(issued["request_id"], request_id.as_str());
    assert!(issued["occurred_at_ms"].as_u64().unwrap() > 1_700_000_000_000);
    let serialized = serde_json::to_string(&records).unwrap();
    assert!(!serialized.contains(&token), "a token reached the audit trail");
    assert!(!serialized.contains(&svc.secret), "a client secret reached the audit trail");
}

#[tokio::test]
async fn filters_and_the_cursor_walk_the_trail_without_gaps_or_repeats() {
    let app = spawn_app().await;
    for _ in 0..3 {
        service_client(&app, "default").await;
    }
    let all = wait_for(&app, &["client.created"], 4).await;
    let created: Vec<&Value> = all.iter().filter(|r| r["kind"] == "client.created").collect();
    assert!(created.len() >= 4, "the admin client and three more: {created:?}");

    // Newest first, one per page, following next_cursor back to the start.
    let mut seen = Vec::new();
    let mut query = "?kind=client.created&limit=1".to_owned();
    loop {
        let page = page(&app, &query).await;
        let records = page["records"].as_array().unwrap();
        seen.extend(records.iter().map(|r| r["seq"].as_u64().unwrap()));
        match page["next_cursor"].as_u64() {
            Some(cursor) => query = format!("?kind=client.created&limit=1&before={cursor}"),
            None => break,
        }
    }
    let mut expected: Vec<u64> = created.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected);

    let by_actor = page(&app, &format!("?actor={}", app.admin.client_id)).await;
    assert!(by_actor["records"].as_array().unwrap().iter().all(|r| r["actor"] == app.admin.client_id.as_str()));
    let subject = created[0]["subject"].as_str().unwrap();
    let by_subject = page(&app, &format!("?subject={subject}")).await;
    assert!(by_subject["records"].as_array().unwrap().iter().all(|r| r["subject"] == subject));
    let future = page(&app, "?since_ms=99999999999999").await;
    assert_eq!(future["records"], serde_json::json!([]));
    assert_eq!(future["next_cursor"], Value::Null);
}

#[tokio::test]
async fn bad_audit_queries_are_refused_in_the_apis_format() {
    let app = spawn_app().await;
    for query in ["?limit=0", "?limit=1001", "?before=1&after=2", "?limit=abc", "?colour=red"] {
        let response = app.admin_call(Method::GET, &format!("/tenants/default/audit{query}"), None).await;
        let body = expect_status(response, 400).await;
        assert_eq!(body["error"], "invalid_request", "{query}: {body}");
    }
    let missing = app.admin_call(Method::GET, "/tenants/nope/audit", None).await;
    assert_eq!(missing.status(), 404);
    let anonymous = app.http.get(format!("{}/admin/v1/tenants/default/audit", app.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}
