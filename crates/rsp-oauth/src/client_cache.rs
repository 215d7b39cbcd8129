//! Registered clients read through the [`Cache`](rsp_core::cache::Cache) port, so authenticating a client
//! on the token, introspection and revocation endpoints does not read the database on every request.
//!
//! Entries are keyed `{tenant}/{client_id}` ([`CacheKind::Client`]); an unknown client is remembered as a
//! negative entry, so a flood of made-up ids costs one read each per negative TTL. Every client write in
//! [`crate::admin`] invalidates the key after the store write succeeds, and the cache carries that to the
//! other replicas, so a change is seen at once here and within the invalidation delay elsewhere.
//!
//! `rsp_core::Client` has no serde form of its own, so the cache holds a [`ClientRecord`]: the same
//! fields, including the secret's keyed hash (never the secret; the cache's `Debug` never prints bytes).

use std::sync::Arc;

use rsp_core::cache::{CacheExt, CacheKind, Invalidation};
use rsp_core::{Client, ClientId, ClientKind, GrantType, ScopeSet, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

use crate::{AuthService, OAuthError};

/// The cache key of a client. Tenant ids contain no `/`, so the first `/` ends the tenant and
/// [`tenant_prefix`] matches exactly that tenant's clients.
pub fn client_key(tenant: &TenantId, id: &ClientId) -> String {
    format!("{tenant}/{}", id.as_str())
}

/// The prefix of every cache key of `tenant` (clients and revocations).
pub fn tenant_prefix(tenant: &TenantId) -> String {
    format!("{tenant}/")
}

/// The invalidation a write of one client sends.
pub fn client_invalidation(tenant: &TenantId, id: &ClientId) -> Invalidation {
    Invalidation::key(CacheKind::Client, client_key(tenant, id))
}

/// A client as stored in the cache. Deserializing re-validates every id, scope and enum.
#[derive(Serialize, Deserialize)]
struct ClientRecord {
    tenant_id: TenantId,
    client_id: ClientId,
    name: String,
    kind: ClientKind,
    secret_hash: Option<String>,
    grant_types: Vec<GrantType>,
    scopes: ScopeSet,
    audiences: Vec<String>,
    introspect_audiences: Vec<String>,
    /// Absent in records cached before clients had redirect URIs.
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// Absent in records cached before clients had post-logout redirect URIs.
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    created_at: UnixTime,
    updated_at: UnixTime,
}

impl From<Client> for ClientRecord {
    fn from(c: Client) -> Self {
        Self {
            tenant_id: c.tenant_id,
            client_id: c.client_id,
            name: c.name,
            kind: c.kind,
            secret_hash: c.secret_hash,
            grant_types: c.grant_types,
            scopes: c.scopes,
            audiences: c.audiences,
            introspect_audiences: c.introspect_audiences,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<ClientRecord> for Client {
    fn from(r: ClientRecord) -> Self {
        Self {
            tenant_id: r.tenant_id,
            client_id: r.client_id,
            name: r.name,
            kind: r.kind,
            secret_hash: r.secret_hash,
            grant_types: r.grant_types,
            scopes: r.scopes,
            audiences: r.audiences,
            introspect_audiences: r.introspect_audiences,
            redirect_uris: r.redirect_uris,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl AuthService {
    /// The registered client `id` of `tenant`, from the cache or the store. An id that does not parse is
    /// simply unknown.
    pub(crate) async fn lookup_client(&self, tenant: &TenantId, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        let Ok(id) = ClientId::parse(id) else {
            return Ok(None);
        };
        self.cache
            .get_or_load_decoded(
                &self.decoded_clients,
                CacheKind::Client,
                &client_key(tenant, &id),
                Client::from,
                || async { Ok::<_, OAuthError>(self.store.get_client(tenant, &id).await?.map(ClientRecord::from)) },
            )
            .await
    }

    /// Tells every replica's cache that `client` changed or is gone. Called after the store write.
    pub(crate) async fn forget_client(&self, tenant: &TenantId, id: &ClientId) -> Result<(), OAuthError> {
        Ok(self.cache.invalidate(client_invalidation(tenant, id)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_every_field() {
        let client = Client {
            tenant_id: TenantId::parse("acme").unwrap(),
            client_id: ClientId::parse("c/1").unwrap(),
            name: "svc".into(),
            kind: ClientKind::Confidential,
            secret_hash: Some("hash".into()),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("a b").unwrap(),
            audiences: vec!["https://api.example.com".into()],
            introspect_audiences: vec!["https://rs.example.com".into()],
            redirect_uris: vec!["https://app.example.com/cb".into()],
            post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
            created_at: UnixTime(1),
            updated_at: UnixTime(2),
        };
        let json = serde_json::to_vec(&ClientRecord::from(client.clone())).unwrap();
        let back: ClientRecord = serde_json::from_slice(&json).unwrap();
        assert_eq!(Client::from(back), client);
        assert_eq!(client_key(&client.tenant_id, &client.client_id), "acme/c/1");
        assert!(client_key(&client.tenant_id, &client.client_id).starts_with(&tenant_prefix(&client.tenant_id)));
    }
}
