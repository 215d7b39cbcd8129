//! Micro-batching: fewer HTTP calls, and every caller still gets its own answer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rsp_client::{BatchConfig, DecidedBy, Effect, HttpVersion};
use serde_json::json;
use tokio::task::JoinSet;

use crate::request;
use crate::server::TestServer;

#[tokio::test]
async fn two_hundred_concurrent_calls_take_at_most_ten_requests_and_answers_reach_their_callers() {
    let server = TestServer::spawn().await;
    let client = server.client().build().unwrap();
    let mut calls = JoinSet::new();
    for i in 0..200 {
        let client = client.clone();
        calls.spawn(async move { (i, client.authorize(request(&format!("user-{i}"), i % 2 == 1)).await) });
    }
    let mut answered = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, decision) = joined.unwrap();
        let decision = decision.unwrap();
        assert_eq!(decision.decided_by, DecidedBy::Server);
        assert_eq!(decision.reasons, vec![format!("echo:user-{i}")], "caller {i} got someone else's answer");
        assert_eq!(decision.is_allowed(), i % 2 == 1);
        assert_eq!(decision.policy_version, Some(7));
        answered += 1;
    }
    assert_eq!(answered, 200);
    let sizes = server.knobs.batch_sizes();
    assert!(server.knobs.decision_calls() <= 10, "{} HTTP calls: {sizes:?}", server.knobs.decision_calls());
    assert_eq!(server.knobs.authorize_calls.load(Ordering::SeqCst), 0);
    assert_eq!(sizes.iter().sum::<usize>(), 200);
    assert!(sizes.iter().all(|&size| size <= 50), "{sizes:?}");
}

#[tokio::test]
async fn a_lone_call_is_sent_after_the_delay_without_waiting_for_a_full_batch() {
    let server = TestServer::spawn().await;
    let client = server
        .client()
        .batching(Some(BatchConfig { max_size: 1000, max_delay: Duration::from_millis(20) }))
        .build()
        .unwrap();
    let decision = tokio::time::timeout(Duration::from_secs(2), client.authorize(request("alice", true)))
        .await
        .expect("a partial batch must be flushed")
        .unwrap();
    assert!(decision.is_allowed());
    assert_eq!(server.knobs.batch_sizes(), vec![1]);
}

#[tokio::test]
async fn without_batching_each_call_is_its_own_request() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).build().unwrap();
    let mut calls = JoinSet::new();
    for i in 0..20 {
        let client = client.clone();
        calls.spawn(async move { client.authorize(request(&format!("user-{i}"), true)).await });
    }
    while let Some(joined) = calls.join_next().await {
        assert!(joined.unwrap().unwrap().is_allowed());
    }
    assert_eq!(server.knobs.authorize_calls.load(Ordering::SeqCst), 20);
    assert_eq!(server.knobs.batch_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn requests_carrying_entities_are_batched_with_their_own_entities() {
    let server = TestServer::spawn().await;
    let client = server.client().build().unwrap();
    let entity = |id: &str| json!({"uid": {"type": "Order", "id": id}, "attrs": {}, "parents": []});
    let (one, two) = tokio::join!(
        client.authorize(request("alice", true).with_entities(vec![entity("o-1")])),
        client.authorize(request("bob", true).with_entities(vec![entity("o-1"), entity("o-2")])),
    );
    assert_eq!(one.unwrap().reasons, vec!["echo:alice", "entities:1"]);
    assert_eq!(two.unwrap().reasons, vec!["echo:bob", "entities:2"]);
    assert_eq!(server.knobs.batch_sizes(), vec![2]);
}

#[tokio::test]
async fn authorize_all_splits_at_the_endpoint_limit_and_keeps_order() {
    let server = TestServer::spawn().await;
    let client = server.client().build().unwrap();
    let requests = (0..2500).map(|i| request(&format!("user-{i}"), i % 3 == 0)).collect();
    let answers = client.authorize_all(requests).await;
    assert_eq!(answers.len(), 2500);
    for (i, answer) in answers.into_iter().enumerate() {
        let decision = answer.unwrap();
        assert_eq!(decision.reasons, vec![format!("echo:user-{i}")]);
        assert_eq!(decision.effect, if i % 3 == 0 { Effect::Allow } else { Effect::Deny });
    }
    assert_eq!(server.knobs.batch_sizes(), vec![1000, 1000, 500]);
}

#[tokio::test]
async fn speaks_http2_by_default_and_http1_when_asked() {
    let server = TestServer::spawn().await;
    let h2 = server.client().batching(None).build().unwrap();
    h2.authorize(request("alice", true)).await.unwrap();
    assert_eq!(server.knobs.http2_requests.load(Ordering::SeqCst), 1);

    let h1 = server.client().batching(None).http_version(HttpVersion::Http1).build().unwrap();
    assert!(h1.authorize(request("alice", true)).await.unwrap().is_allowed());
    assert_eq!(server.knobs.http1_requests.load(Ordering::SeqCst), 1);
}
