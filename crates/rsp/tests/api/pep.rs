//! The PEP SDK (`rsp-client`) against the real server: decisions single and micro-batched over HTTP/2,
//! and local validation of the platform's access tokens.

use std::time::Duration;

use reqwest::Method;
use rsp_client::{
    AuthorizeRequest, BatchConfig, ClientCredentials, DecidedBy, DecisionClient, EntityUid, HttpVersion,
    TokenValidator, ValidationError,
};
use rsp_testkit::{expect_status, spawn_app};
use serde_json::json;

use crate::helpers::client;

#[tokio::test]
async fn the_sdk_gets_decisions_from_the_real_server_singly_and_in_batches() {
    let app = spawn_app().await;
    app.create_tenant("shop", None).await;
    let policies = json!({"policies": "@id(\"view\") permit(principal, action == Action::\"view\", resource);"});
    expect_status(app.admin_call(Method::PUT, "/tenants/shop/policies", Some(policies)).await, 200).await;
    let pep = client(&app, "shop", json!({"name": "orders-api", "scope": "rsp:authorize"})).await;

    for version in [HttpVersion::Http2, HttpVersion::Http1] {
        let sdk = DecisionClient::builder(app.url.as_str(), "shop", ClientCredentials::new(&pep.id, &pep.secret))
            .http_version(version)
            .batching(Some(BatchConfig { max_size: 50, max_delay: Duration::from_millis(5) }))
            .cache(None)
            .build()
            .unwrap();
        let calls = (0..40).map(|i| {
            let action = if i % 2 == 0 { "view" } else { "delete" };
            let request = AuthorizeRequest::new(
                EntityUid::new("User", format!("u{i}")),
                EntityUid::new("Action", action),
                EntityUid::new("Order", "o1"),
            );
            let sdk = sdk.clone();
            async move { (i, sdk.authorize(request).await.unwrap()) }
        });
        for (i, decision) in futures_join(calls).await {
            assert!(
                matches!(decision.decided_by, DecidedBy::Server),
                "{version:?} call {i}: {:?}",
                decision.decided_by
            );
            assert_eq!(decision.is_allowed(), i % 2 == 0, "{version:?} call {i}");
        }
    }
}

async fn futures_join<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_sdk_validates_the_platforms_tokens_locally() {
    let app = spawn_app().await;
    let svc = client(&app, "default", json!({"name": "svc", "scope": "a", "audiences": ["https://api.example"]})).await;
    let token = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let validator = TokenValidator::builder(app.issuer("default"), "https://api.example").build().unwrap();
    let claims = validator.validate(&token).await.unwrap();
    assert_eq!(claims.client_id, svc.id);
    let other = TokenValidator::builder(app.issuer("default"), "https://other.example").build().unwrap();
    assert!(matches!(other.validate(&token).await, Err(ValidationError::WrongAudience)));
    let slash = TokenValidator::builder(format!("{}/", app.issuer("default")), "https://api.example").build().unwrap();
    assert!(slash.validate(&token).await.is_err(), "JWTAT-4: an issuer with an extra slash is refused");
}
