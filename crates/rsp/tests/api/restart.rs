//! Restarting keeps tenants, clients, keys and revocations.

use rsp_testkit::spawn_app;

use crate::helpers::{header, service_client, verify_with_jwks};

#[tokio::test]
async fn a_restart_keeps_clients_keys_and_revocations() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let live = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let revoked = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let response = app
        .http
        .post(app.endpoint("default", "/oauth2/revoke"))
        .basic_auth(&svc.id, Some(&svc.secret))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let admin_before = app.admin.client_id.clone();

    let app = app.restart().await.unwrap();
    assert_eq!(app.admin.client_id, admin_before, "the admin client is not re-created");
    verify_with_jwks(&app, "default", &live, None).await.unwrap();
    assert_eq!(app.introspect("default", &svc.id, &svc.secret, &live).await["active"], true);
    assert_eq!(app.introspect("default", &svc.id, &svc.secret, &revoked).await["active"], false);
    let again = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    assert_eq!(header(&again).kid, header(&live).kid, "the signing key survived the restart");
}
