//! The events the use cases send to the sink: what they carry, and never the token.

use rsp_core::context::RequestContext;
use rsp_core::{EventKind, Priority};
use rsp_oauth::TokenSettings;
use rsp_oauth::token;

use crate::Replicas;

#[tokio::test]
async fn every_issuance_emits_token_issued_without_the_token() {
    let r = Replicas::start("a b", TokenSettings::default()).await;
    let context = RequestContext::new(Some("req-7".into()), Some("0af7651916cd43dd8448eb211c80319c".into()));
    let access_token = context.scope(r.token(&r.a, "a b")).await;
    r.token(&r.b, "b").await;

    let keys = r.a.tenant_keys(&r.tenant).await.unwrap();
    let claims = token::verify(&keys, &access_token, &r.a.issuers().issuer(&r.tenant), r.a.now(), 0).unwrap();
    let issued: Vec<_> = r.events.events().into_iter().filter(|e| e.kind == EventKind::TOKEN_ISSUED).collect();
    assert_eq!(issued.len(), 2);
    let event = &issued[0];
    assert_eq!(event.tenant, r.tenant);
    assert_eq!(event.priority, Priority::Normal);
    assert_eq!(event.subject.as_deref(), Some(claims.jti.as_str()));
    assert_eq!(event.actor, r.client.client_id.as_str());
    assert_eq!(event.request_id.as_deref(), Some("req-7"));
    assert_eq!(event.trace_id.as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
    assert_eq!(event.data["grant_type"], "client_credentials");
    assert_eq!(event.data["scope"], "a b");
    assert_eq!(event.data["audience"], "https://api.example.com");
    let json = event.to_json();
    for part in access_token.split('.') {
        assert!(!json.contains(part), "the event carries part of the token");
    }
    assert_eq!(issued[1].data["scope"], "b");
}

#[tokio::test]
async fn introspection_is_never_recorded_at_rate_zero() {
    let settings = TokenSettings { introspection_audit_sample_rate: 0.0, ..TokenSettings::default() };
    let r = Replicas::start("a", settings).await;
    let token = r.token(&r.a, "a").await;
    for _ in 0..20 {
        r.a.introspect(&r.tenant, &r.client, &token).await.unwrap();
        r.a.introspect(&r.tenant, &r.client, "not-a-token").await.unwrap();
    }
    assert!(r.events.events().iter().all(|e| e.kind != EventKind::TOKEN_INTROSPECTED));
}

#[tokio::test]
async fn introspection_is_recorded_once_per_call_at_rate_one() {
    let settings = TokenSettings { introspection_audit_sample_rate: 1.0, ..TokenSettings::default() };
    let r = Replicas::start("a", settings).await;
    let token = r.token(&r.a, "a").await;
    let keys = r.a.tenant_keys(&r.tenant).await.unwrap();
    let jti = token::verify(&keys, &token, &r.a.issuers().issuer(&r.tenant), r.a.now(), 0).unwrap().jti;
    for _ in 0..3 {
        r.b.introspect(&r.tenant, &r.client, &token).await.unwrap();
    }
    r.b.introspect(&r.tenant, &r.client, "not-a-token").await.unwrap();

    let introspected: Vec<_> =
        r.events.events().into_iter().filter(|e| e.kind == EventKind::TOKEN_INTROSPECTED).collect();
    assert_eq!(introspected.len(), 4);
    for event in &introspected[..3] {
        assert_eq!(event.priority, Priority::Low);
        assert_eq!(event.subject.as_deref(), Some(jti.as_str()));
        assert_eq!(event.actor, r.client.client_id.as_str());
        assert_eq!(event.data["active"], true);
    }
    assert_eq!(introspected[3].subject, None);
    assert_eq!(introspected[3].data["active"], false);
}
