//! Records to store, built from short names.

use rsp_core::{
    Client, ClientId, ClientKind, GrantType, KeyId, KeyStatus, ScopeSet, SigningAlgorithm, StoredKey, Tenant, TenantId,
    TokenId, UnixTime,
};

pub fn tenant_id(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

pub fn client_id(id: &str) -> ClientId {
    ClientId::parse(id).unwrap()
}

pub fn jti(id: &str) -> TokenId {
    TokenId::parse(id).unwrap()
}

pub fn tenant(id: &str) -> Tenant {
    Tenant {
        id: tenant_id(id),
        name: id.to_uppercase(),
        signing_alg: SigningAlgorithm::ES256,
        created_at: UnixTime(1),
        updated_at: UnixTime(1),
    }
}

pub fn key(tenant: &str, kid: &str, at: i64) -> StoredKey {
    StoredKey {
        tenant_id: tenant_id(tenant),
        kid: KeyId::parse(kid).unwrap(),
        alg: SigningAlgorithm::ES256,
        status: KeyStatus::Active,
        created_at: UnixTime(at),
        retired_at: None,
        publish_until: None,
        max_token_ttl_secs: 600,
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        sealed_private_key: vec![0, 1, 2, 255],
    }
}

pub fn client(tenant: &str, id: &str) -> Client {
    Client {
        tenant_id: tenant_id(tenant),
        client_id: client_id(id),
        name: "svc".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some("hmac-sha256$x".into()),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("a b").unwrap(),
        audiences: vec!["https://api.example".into()],
        introspect_audiences: vec![],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        created_at: UnixTime(1),
        updated_at: UnixTime(1),
    }
}
