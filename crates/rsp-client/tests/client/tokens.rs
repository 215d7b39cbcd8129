//! The client's own token: fetched once with form-urlencoded Basic credentials, refreshed before expiry
//! and after a 401 `invalid_token`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rsp_client::{BreakerState, ClientCredentials, ClientError, DecidedBy, DecisionClient, Effect, Fallback};

use crate::request;
use crate::server::{TENANT, TestServer};

#[tokio::test]
async fn the_token_is_fetched_once_and_reused() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).build().unwrap();
    for _ in 0..5 {
        assert_eq!(client.authorize(request("alice", true)).await.unwrap().decided_by, DecidedBy::Server);
    }
    assert_eq!(server.knobs.token_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_and_the_call_retried() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).build().unwrap();
    client.authorize(request("alice", true)).await.unwrap();
    server.knobs.revoke_tokens();

    let decision = client.authorize(request("alice", true)).await.unwrap();
    assert_eq!((decision.effect, decision.decided_by), (Effect::Allow, DecidedBy::Server));
    assert_eq!(server.knobs.token_calls.load(Ordering::SeqCst), 2);
    assert_eq!(server.knobs.authorize_calls.load(Ordering::SeqCst), 3, "first call, the 401, the retry");
    assert_eq!(client.state(), BreakerState::Closed);
}

#[tokio::test]
async fn concurrent_calls_share_one_refresh() {
    let server = TestServer::spawn().await;
    let client = server.client().batching(None).build().unwrap();
    client.authorize(request("alice", true)).await.unwrap();
    server.knobs.revoke_tokens();
    let (a, b, c) = tokio::join!(
        client.authorize(request("a", true)),
        client.authorize(request("b", true)),
        client.authorize(request("c", true)),
    );
    for decision in [a, b, c] {
        assert_eq!(decision.unwrap().decided_by, DecidedBy::Server);
    }
    assert_eq!(server.knobs.token_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_is_refreshed_shortly_before_it_expires() {
    let server = TestServer::spawn().await;
    server.knobs.token_lifetime_secs.store(1, Ordering::SeqCst);
    let client = server.client().batching(None).build().unwrap();
    client.authorize(request("alice", true)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(950)).await;
    client.authorize(request("alice", true)).await.unwrap();
    assert_eq!(server.knobs.token_calls.load(Ordering::SeqCst), 2);
    assert_eq!(server.knobs.authorize_calls.load(Ordering::SeqCst), 2, "refreshed ahead, not after a 401");
}

#[tokio::test]
async fn refused_credentials_deny_even_under_allow_and_do_not_trip_the_breaker() {
    let server = TestServer::spawn().await;
    let client = DecisionClient::builder(&server.base, TENANT, ClientCredentials::new("pep:orders", "wrong"))
        .batching(None)
        .fallback(Fallback::Allow)
        .build()
        .unwrap();
    for _ in 0..5 {
        let decision = client.authorize(request("alice", true)).await.unwrap();
        assert_eq!(decision.effect, Effect::Deny);
        assert!(
            matches!(decision.decided_by, DecidedBy::Fallback(ClientError::Credentials(ref e)) if e.contains("invalid_client"))
        );
    }
    assert_eq!(client.state(), BreakerState::Closed);
    assert_eq!(server.knobs.decision_calls(), 0);
}

#[test]
fn credentials_never_show_their_secret() {
    let shown = format!("{:?}", ClientCredentials::new("pep", "hunter2"));
    assert!(shown.contains("pep") && !shown.contains("hunter2"), "{shown}");
}

/// Hands out tokens the test server accepts, counting calls: a caller that issues its own tokens.
struct Provider {
    knobs: std::sync::Arc<crate::server::Knobs>,
    calls: std::sync::atomic::AtomicUsize,
}

impl rsp_client::TokenProvider for Provider {
    fn token(&self) -> rsp_client::ProvidedToken<'_> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let token = format!("provided-{n}");
            self.knobs.valid_tokens.lock().unwrap().insert(token.clone());
            Ok((token, Duration::from_secs(3600)))
        })
    }
}

#[tokio::test]
async fn a_token_provider_replaces_the_token_endpoint_and_is_asked_again_after_a_401() {
    let server = TestServer::spawn().await;
    let provider =
        std::sync::Arc::new(Provider { knobs: server.knobs.clone(), calls: std::sync::atomic::AtomicUsize::new(0) });
    let credentials = ClientCredentials::provided("self-issuer", provider.clone());
    let client = DecisionClient::builder(&server.base, TENANT, credentials).batching(None).cache(None).build().unwrap();
    for _ in 0..3 {
        assert_eq!(client.authorize(request("alice", true)).await.unwrap().decided_by, DecidedBy::Server);
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    server.knobs.revoke_tokens();
    assert!(client.authorize(request("alice", true)).await.unwrap().is_allowed());
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    assert_eq!(server.knobs.token_calls.load(Ordering::SeqCst), 0, "the token endpoint is never called");
}
