//! The local decision cache: hits never reach the server, entries expire, fallbacks are never stored.

use std::time::Duration;

use rsp_client::{CacheConfig, ClientError, DecidedBy};

use crate::request;
use crate::server::TestServer;

const TTL: Duration = Duration::from_millis(300);

fn cached(server: &TestServer) -> rsp_client::DecisionClientBuilder {
    server.client().cache(Some(CacheConfig { ttl: TTL, max_entries: 100 }))
}

#[tokio::test]
async fn hits_do_not_reach_the_server_and_expire_after_the_ttl() {
    let server = TestServer::spawn().await;
    let client = cached(&server).build().unwrap();

    let first = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(first.decided_by, DecidedBy::Server);
    for _ in 0..10 {
        let again = client.authorize(request("alice", true)).await.unwrap();
        assert_eq!(again.decided_by, DecidedBy::Cache);
        assert_eq!((again.effect, &again.reasons), (first.effect, &first.reasons));
    }
    assert_eq!(server.knobs.decision_calls(), 1);

    // A different context is a different question.
    client.authorize(request("alice", false)).await.unwrap();
    assert_eq!(server.knobs.decision_calls(), 2);

    tokio::time::sleep(TTL + Duration::from_millis(50)).await;
    let expired = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(expired.decided_by, DecidedBy::Server);
    assert_eq!(server.knobs.decision_calls(), 3);
}

#[tokio::test]
async fn fallbacks_are_never_cached() {
    let server = TestServer::spawn().await;
    let client = cached(&server).batching(None).failure_threshold(10).build().unwrap();
    server.knobs.set_fail(true);
    let fallback = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(fallback.decided_by, DecidedBy::Fallback(ClientError::Server(503)));

    server.knobs.set_fail(false);
    let real = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(real.decided_by, DecidedBy::Server);
    assert!(real.is_allowed());
    assert_eq!(server.knobs.decision_calls(), 2);
}

#[tokio::test]
async fn requests_with_their_own_entities_are_not_cached() {
    let server = TestServer::spawn().await;
    let client = cached(&server).batching(None).build().unwrap();
    for _ in 0..3 {
        let decision = client.authorize(request("alice", true).with_entities(vec![])).await.unwrap();
        assert_eq!(decision.decided_by, DecidedBy::Server);
    }
    assert_eq!(server.knobs.decision_calls(), 3);
}

#[tokio::test]
async fn the_cache_is_consulted_by_authorize_all_too() {
    let server = TestServer::spawn().await;
    let client = cached(&server).batching(None).build().unwrap();
    client.authorize(request("alice", true)).await.unwrap();
    let answers = client.authorize_all(vec![request("alice", true), request("bob", true)]).await;
    assert_eq!(answers[0].as_ref().unwrap().decided_by, DecidedBy::Cache);
    assert_eq!(answers[1].as_ref().unwrap().decided_by, DecidedBy::Server);
    assert_eq!(server.knobs.batch_sizes(), vec![1], "only the miss was sent");
}
