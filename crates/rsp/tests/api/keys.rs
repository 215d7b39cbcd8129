//! Signing keys: rotation keeps old tokens verifiable until they expire; keys are sealed at rest.

use reqwest::Method;
use rsp_testkit::{expect_status, spawn_app};

use crate::helpers::{header, jwks, service_client, verify_with_jwks};

#[tokio::test]
async fn rotation_publishes_the_new_key_and_keeps_the_old_until_its_tokens_expire() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let before = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let old_kid = header(&before).kid.unwrap();

    let rotated = expect_status(app.admin_call(Method::POST, "/tenants/default/keys/rotate", None).await, 200).await;
    let keys = rotated["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k["kid"] == old_kid.as_str() && k["status"] == "retired"));

    let after = app.access_token("default", &svc.id, &svc.secret, &[]).await;
    let new_kid = header(&after).kid.unwrap();
    assert_ne!(old_kid, new_kid);
    verify_with_jwks(&app, "default", &before, None).await.unwrap();
    verify_with_jwks(&app, "default", &after, None).await.unwrap();
    assert_eq!(app.introspect("default", &svc.id, &svc.secret, &before).await["active"], true);

    // Past the old key's last token lifetime (600 s) plus leeway (60 s), it is no longer published.
    app.advance(661);
    let set = jwks(&app, "default").await;
    assert!(set.find(&old_kid).is_none());
    assert!(set.find(&new_kid).is_some());
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest() {
    let app = spawn_app().await;
    let db = std::fs::read(app.config.data_dir.join("rsp.db")).unwrap();
    let wal = std::fs::read(app.config.data_dir.join("rsp.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        // An unsealed PKCS#8 P-256 key would contain this DER prefix of its algorithm identifier.
        let pkcs8_ec_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        assert!(!bytes.windows(pkcs8_ec_oid.len()).any(|w| w == pkcs8_ec_oid), "unsealed EC key in the database");
    }
    let master_key = std::fs::metadata(app.config.data_dir.join("master.key")).unwrap();
    let admin_file = std::fs::metadata(app.config.data_dir.join("admin-client.json")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(master_key.permissions().mode() & 0o777, 0o600);
        assert_eq!(admin_file.permissions().mode() & 0o777, 0o600);
    }
}
