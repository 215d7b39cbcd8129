//! The breaker, the fallback policies, and which errors count as failures.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rsp_client::{BatchConfig, BreakerState, ClientError, DecidedBy, Effect, Fallback};

use crate::server::TestServer;
use crate::{malformed, request};

const OPEN_FOR: Duration = Duration::from_millis(300);

#[tokio::test]
async fn opens_after_three_failures_then_fails_closed_without_touching_the_server() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).open_for(OPEN_FOR).build().unwrap();
    server.knobs.set_fail(true);

    for _ in 0..3 {
        let decision = client.authorize(request("alice", true)).await.unwrap();
        assert_eq!(decision.effect, Effect::Deny);
        assert_eq!(decision.decided_by, DecidedBy::Fallback(ClientError::Server(503)));
    }
    assert_eq!(client.state(), BreakerState::Open);
    assert_eq!(server.knobs.decision_calls(), 3);

    let started = Instant::now();
    for _ in 0..1000 {
        let decision = client.authorize(request("alice", true)).await.unwrap();
        assert_eq!(decision.effect, Effect::Deny);
        assert_eq!(decision.decided_by, DecidedBy::Fallback(ClientError::BreakerOpen));
    }
    let per_call = started.elapsed() / 1000;
    assert!(per_call < Duration::from_micros(200), "an open breaker took {per_call:?} per call");
    assert_eq!(server.knobs.decision_calls(), 3, "no call may reach the server while open");
}

#[tokio::test]
async fn after_the_open_period_one_probe_goes_through_and_recovery_closes() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).open_for(OPEN_FOR).build().unwrap();
    server.knobs.set_fail(true);
    for _ in 0..3 {
        client.authorize(request("alice", true)).await.unwrap();
    }
    assert_eq!(client.state(), BreakerState::Open);

    tokio::time::sleep(OPEN_FOR + Duration::from_millis(50)).await;
    server.knobs.set_fail(false);
    server.knobs.delay_ms.store(300, Ordering::SeqCst);
    let probe = tokio::spawn({
        let client = client.clone();
        async move { client.authorize(request("alice", true)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(client.state(), BreakerState::HalfOpen);
    // While the probe is out, everyone else still fails closed at once.
    let other = client.authorize(request("bob", true)).await.unwrap();
    assert_eq!(other.decided_by, DecidedBy::Fallback(ClientError::BreakerOpen));
    assert_eq!(server.knobs.decision_calls(), 4, "only the probe reached the server");

    let probed = probe.await.unwrap().unwrap();
    assert_eq!((probed.effect, probed.decided_by), (Effect::Allow, DecidedBy::Server));
    assert_eq!(client.state(), BreakerState::Closed);

    server.knobs.delay_ms.store(0, Ordering::SeqCst);
    let after = client.authorize(request("bob", true)).await.unwrap();
    assert_eq!(after.decided_by, DecidedBy::Server);
    assert_eq!(server.knobs.decision_calls(), 5);
}

#[tokio::test]
async fn a_failed_probe_reopens() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).open_for(OPEN_FOR).build().unwrap();
    server.knobs.set_fail(true);
    for _ in 0..3 {
        client.authorize(request("alice", true)).await.unwrap();
    }
    tokio::time::sleep(OPEN_FOR + Duration::from_millis(50)).await;
    let probe = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(probe.decided_by, DecidedBy::Fallback(ClientError::Server(503)));
    assert_eq!(client.state(), BreakerState::Open);
    let refused = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(refused.decided_by, DecidedBy::Fallback(ClientError::BreakerOpen));
    assert_eq!(server.knobs.decision_calls(), 4);
}

#[tokio::test]
async fn with_batching_the_breaker_counts_batch_calls_and_refuses_before_queueing() {
    let server = TestServer::spawn().await;
    let client = server.client().open_for(Duration::from_secs(60)).build().unwrap();
    server.knobs.set_fail(true);
    for _ in 0..3 {
        let decision = client.authorize(request("alice", true)).await.unwrap();
        assert_eq!(decision.decided_by, DecidedBy::Fallback(ClientError::Server(503)));
    }
    assert_eq!(client.state(), BreakerState::Open);
    assert_eq!(server.knobs.batch_calls.load(Ordering::SeqCst), 3);
    let started = Instant::now();
    let refused = client.authorize(request("alice", true)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(5), "refused without waiting for a batch flush");
    assert_eq!(refused.decided_by, DecidedBy::Fallback(ClientError::BreakerOpen));
    assert_eq!(server.knobs.decision_calls(), 3);
}

#[tokio::test]
async fn timeouts_count_as_failures() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).timeout(Duration::from_millis(100)).build().unwrap();
    // Fetch the token before the server turns slow, so the timeouts hit the decision calls.
    client.authorize(request("alice", true)).await.unwrap();
    server.knobs.delay_ms.store(500, Ordering::SeqCst);
    for _ in 0..3 {
        let decision = client.authorize(request("alice", true)).await.unwrap();
        assert_eq!(decision.decided_by, DecidedBy::Fallback(ClientError::Timeout));
    }
    assert_eq!(client.state(), BreakerState::Open);
}

#[tokio::test]
async fn a_malformed_request_is_an_error_and_never_trips_the_breaker() {
    let server = TestServer::spawn().await;
    for batching in [None, Some(BatchConfig::default())] {
        let client = server.client().batching(batching).fallback(Fallback::Allow).build().unwrap();
        for _ in 0..5 {
            let error = client.authorize(malformed("x")).await.unwrap_err();
            assert!(matches!(&error, ClientError::InvalidRequest(d) if d.contains("unknown entity type Bogus")));
        }
        assert_eq!(client.state(), BreakerState::Closed, "batching {batching:?}");
    }
}

#[tokio::test]
async fn one_malformed_item_in_a_batch_fails_alone() {
    let server = TestServer::spawn().await;
    let client = server.client().build().unwrap();
    let (good, bad, other) = tokio::join!(
        client.authorize(request("alice", true)),
        client.authorize(malformed("mallory")),
        client.authorize(request("bob", false)),
    );
    assert_eq!(server.knobs.batch_sizes(), vec![3]);
    assert_eq!(good.unwrap().reasons, vec!["echo:alice"]);
    assert!(matches!(bad, Err(ClientError::InvalidRequest(_))));
    assert_eq!(other.unwrap().effect, Effect::Deny);
    assert_eq!(client.state(), BreakerState::Closed);
}

#[tokio::test]
async fn fallback_policies() {
    let server = TestServer::spawn().await;
    server.knobs.set_fail(true);

    let allow = server.client().batching(None).fallback(Fallback::Allow).build().unwrap();
    let decision = allow.authorize(request("alice", false)).await.unwrap();
    assert_eq!(decision.effect, Effect::Allow);
    assert!(decision.is_fallback());
    assert_eq!(decision.policy_version, None);

    let error = server.client().batching(None).fallback(Fallback::Error).build().unwrap();
    assert_eq!(error.authorize(request("alice", true)).await.unwrap_err(), ClientError::Server(503));
}

#[tokio::test]
async fn an_unreachable_platform_fails_closed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = rsp_client::DecisionClient::builder(base, "acme", rsp_client::ClientCredentials::new("a", "b"))
        .batching(None)
        .build()
        .unwrap();
    let decision = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(decision.effect, Effect::Deny);
    assert!(matches!(decision.decided_by, DecidedBy::Fallback(ClientError::Unavailable(_))));
}
