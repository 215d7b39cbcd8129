//! Admin use cases: tenants, clients and keys. The HTTP admin API and the CLI are thin layers over these.

use rsp_core::cache::{CacheKind, Invalidation};
use rsp_core::{
    Client, ClientId, ClientKind, Event, EventKind, GrantType, Priority, ScopeSet, Secret, SigningAlgorithm, Tenant,
    TenantId,
};
use serde::Serialize;
use serde_json::json;

use crate::client_cache::tenant_prefix;
use crate::crypto::random_token;
use crate::{AdminError, AuthService};

/// The fields of a new tenant.
#[derive(Debug)]
pub struct NewTenant {
    pub id: String,
    pub name: String,
    pub signing_alg: Option<String>,
}

/// Changes to a tenant; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub signing_alg: Option<String>,
}

/// The registrable fields of a client.
#[derive(Debug, Default)]
pub struct ClientSettings {
    pub name: Option<String>,
    pub kind: Option<ClientKind>,
    pub grant_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub introspect_audiences: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
}

/// A key as the admin API shows it: never the private half.
#[derive(Debug, Serialize)]
pub struct KeySummary {
    pub kid: String,
    pub alg: &'static str,
    pub status: &'static str,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_until: Option<i64>,
}

fn check_name(name: &str, max: usize) -> Result<String, AdminError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max || trimmed.chars().any(char::is_control) {
        return Err(AdminError::Invalid(format!("name must be 1 to {max} printable characters")));
    }
    Ok(trimmed.to_owned())
}

fn parse_alg(alg: Option<&str>) -> Result<Option<SigningAlgorithm>, AdminError> {
    alg.map(|a| {
        SigningAlgorithm::parse(a)
            .ok_or_else(|| AdminError::Invalid("signing_alg must be ES256, EdDSA or RS256".into()))
    })
    .transpose()
}

fn parse_audiences(list: Vec<String>) -> Result<Vec<String>, AdminError> {
    if list.len() > Client::MAX_AUDIENCES {
        return Err(AdminError::Invalid(format!("at most {} audiences", Client::MAX_AUDIENCES)));
    }
    for audience in &list {
        let ok = url::Url::parse(audience).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base());
        if !ok || audience.len() > 512 {
            return Err(AdminError::Invalid(format!("audience {audience:?} must be an absolute URI without fragment")));
        }
    }
    Ok(list)
}

fn parse_grants(list: Vec<String>) -> Result<Vec<GrantType>, AdminError> {
    let mut grants = Vec::new();
    for name in list {
        let grant = GrantType::parse(&name)
            .ok_or_else(|| AdminError::Invalid(format!("grant type {name:?} is not supported")))?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    Ok(grants)
}

/// Checks redirect URIs, or post-logout redirect URIs, which follow the same rules (RP-Initiated
/// Logout 1.0 §3.1: registered, compared exactly).
fn parse_redirect_uris(list: Vec<String>) -> Result<Vec<String>, AdminError> {
    if list.len() > Client::MAX_REDIRECT_URIS {
        return Err(AdminError::Invalid(format!("at most {} redirect URIs per list", Client::MAX_REDIRECT_URIS)));
    }
    for uri in &list {
        crate::authorize::redirect_uri::validate_registration(uri).map_err(|e| AdminError::Invalid(e.to_string()))?;
    }
    Ok(list)
}

impl AuthService {
    pub async fn create_tenant(&self, new: NewTenant) -> Result<Tenant, AdminError> {
        let id = TenantId::parse(new.id).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let name = check_name(&new.name, Tenant::MAX_NAME_CHARS)?;
        let signing_alg = parse_alg(new.signing_alg.as_deref())?.unwrap_or_default();
        if self.store.get_tenant(&id).await?.is_some() {
            return Err(AdminError::Conflict(format!("tenant {id} already exists")));
        }
        let now = self.clock.now();
        let tenant = Tenant { id: id.clone(), name, signing_alg, created_at: now, updated_at: now };
        let key = self.keys.new_stored_key(&id, signing_alg)?;
        let created = tenant_event(EventKind::TENANT_CREATED, &tenant).data(json!({
            "name": tenant.name,
            "signing_alg": tenant.signing_alg.as_str(),
            "kid": key.kid.as_str(),
        }));
        self.store.create_tenant(&tenant, &key, &[created]).await?;
        self.keys.invalidate(&id);
        self.forget_signing_keys(&id).await?;
        tracing::info!(tenant = %id, "tenant created");
        Ok(tenant)
    }

    pub async fn get_tenant(&self, id: &str) -> Result<Tenant, AdminError> {
        let id = TenantId::parse(id).map_err(|_| AdminError::NotFound("tenant"))?;
        self.store.get_tenant(&id).await?.ok_or(AdminError::NotFound("tenant"))
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, AdminError> {
        Ok(self.store.list_tenants().await?)
    }

    pub async fn update_tenant(&self, id: &str, changes: TenantChanges) -> Result<Tenant, AdminError> {
        let mut tenant = self.get_tenant(id).await?;
        if let Some(name) = changes.name {
            tenant.name = check_name(&name, Tenant::MAX_NAME_CHARS)?;
        }
        if let Some(alg) = parse_alg(changes.signing_alg.as_deref())? {
            // Takes effect at the next key rotation.
            tenant.signing_alg = alg;
        }
        tenant.updated_at = self.clock.now();
        let updated = tenant_event(EventKind::TENANT_UPDATED, &tenant)
            .data(json!({"name": tenant.name, "signing_alg": tenant.signing_alg.as_str()}));
        self.store.update_tenant(&tenant, &[updated]).await?;
        Ok(tenant)
    }

    /// Deletes a tenant and all it owns. The default tenant hosts the admin client and cannot go.
    pub async fn delete_tenant(&self, id: &str) -> Result<(), AdminError> {
        let tenant = self.get_tenant(id).await?;
        if tenant.id.as_str() == TenantId::DEFAULT {
            return Err(AdminError::Conflict("the default tenant cannot be deleted".into()));
        }
        self.store.delete_tenant(&tenant.id, &[tenant_event(EventKind::TENANT_DELETED, &tenant)]).await?;
        // Invalidate everywhere first, then drop this replica's own state (see `forget_revocation`).
        self.forget_tenant(&tenant.id).await?;
        self.keys.invalidate(&tenant.id);
        self.verified.clear();
        tracing::info!(tenant = %tenant.id, "tenant deleted");
        Ok(())
    }

    /// Registers a client. Its id is server-assigned; the secret of a confidential client is returned
    /// here once and only its keyed hash is stored.
    pub async fn create_client(
        &self,
        tenant: &str,
        settings: ClientSettings,
    ) -> Result<(Client, Option<Secret>), AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        let name = check_name(settings.name.as_deref().unwrap_or_default(), Client::MAX_NAME_CHARS)?;
        let kind = settings.kind.unwrap_or(ClientKind::Confidential);
        let grant_types = parse_grants(settings.grant_types.unwrap_or_else(|| vec!["client_credentials".into()]))?;
        let scopes = ScopeSet::parse(settings.scope.as_deref().unwrap_or_default())
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let audiences = parse_audiences(settings.audiences.unwrap_or_default())?;
        let introspect_audiences = parse_audiences(settings.introspect_audiences.unwrap_or_default())?;
        let redirect_uris = parse_redirect_uris(settings.redirect_uris.unwrap_or_default())?;
        let post_logout_redirect_uris = parse_redirect_uris(settings.post_logout_redirect_uris.unwrap_or_default())?;
        validate_client_shape(kind, &grant_types, &redirect_uris)?;
        let secret = (kind == ClientKind::Confidential).then(|| Secret::new(random_token(32)));
        let now = self.clock.now();
        let client_id = ClientId::parse(new_client_id()).map_err(|e| AdminError::Internal(e.to_string()))?;
        let client = Client {
            tenant_id: tenant.id,
            client_id,
            name,
            kind,
            secret_hash: secret.as_ref().map(|s| self.hasher().hash(s.expose())),
            grant_types,
            scopes,
            audiences,
            introspect_audiences,
            redirect_uris,
            post_logout_redirect_uris,
            created_at: now,
            updated_at: now,
        };
        self.store.create_client(&client, &[client_event(EventKind::CLIENT_CREATED, &client)]).await?;
        // Ids are random, so no replica should hold a negative entry for this one; dropping it is cheap.
        self.forget_client(&client.tenant_id, &client.client_id).await?;
        tracing::info!(tenant = %client.tenant_id, client = %client.client_id, "client created");
        Ok((client, secret))
    }

    pub async fn get_client(&self, tenant: &str, client_id: &str) -> Result<Client, AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        let id = ClientId::parse(client_id).map_err(|_| AdminError::NotFound("client"))?;
        self.store.get_client(&tenant.id, &id).await?.ok_or(AdminError::NotFound("client"))
    }

    pub async fn list_clients(&self, tenant: &str) -> Result<Vec<Client>, AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        Ok(self.store.list_clients(&tenant.id).await?)
    }

    pub async fn update_client(
        &self,
        tenant: &str,
        client_id: &str,
        changes: ClientSettings,
    ) -> Result<Client, AdminError> {
        let mut client = self.get_client(tenant, client_id).await?;
        if changes.kind.is_some_and(|k| k != client.kind) {
            return Err(AdminError::Invalid("a client's kind cannot change; register a new client".into()));
        }
        if let Some(name) = changes.name {
            client.name = check_name(&name, Client::MAX_NAME_CHARS)?;
        }
        if let Some(grants) = changes.grant_types {
            client.grant_types = parse_grants(grants)?;
        }
        if let Some(scope) = changes.scope {
            client.scopes = ScopeSet::parse(&scope).map_err(|e| AdminError::Invalid(e.to_string()))?;
        }
        if let Some(audiences) = changes.audiences {
            client.audiences = parse_audiences(audiences)?;
        }
        if let Some(audiences) = changes.introspect_audiences {
            client.introspect_audiences = parse_audiences(audiences)?;
        }
        if let Some(uris) = changes.redirect_uris {
            client.redirect_uris = parse_redirect_uris(uris)?;
        }
        if let Some(uris) = changes.post_logout_redirect_uris {
            client.post_logout_redirect_uris = parse_redirect_uris(uris)?;
        }
        validate_client_shape(client.kind, &client.grant_types, &client.redirect_uris)?;
        client.updated_at = self.clock.now();
        self.store.update_client(&client, &[client_event(EventKind::CLIENT_UPDATED, &client)]).await?;
        self.forget_client(&client.tenant_id, &client.client_id).await?;
        Ok(client)
    }

    pub async fn delete_client(&self, tenant: &str, client_id: &str) -> Result<(), AdminError> {
        let client = self.get_client(tenant, client_id).await?;
        let deleted = Event::new(client.tenant_id.clone(), EventKind::CLIENT_DELETED, Priority::High)
            .subject(client.client_id.as_str());
        self.store.delete_client(&client.tenant_id, &client.client_id, &[deleted]).await?;
        self.forget_client(&client.tenant_id, &client.client_id).await?;
        Ok(())
    }

    /// Replaces a confidential client's secret; the old one stops working at once.
    pub async fn rotate_client_secret(&self, tenant: &str, client_id: &str) -> Result<(Client, Secret), AdminError> {
        let mut client = self.get_client(tenant, client_id).await?;
        if client.kind != ClientKind::Confidential {
            return Err(AdminError::Invalid("public clients have no secret".into()));
        }
        let secret = Secret::new(random_token(32));
        client.secret_hash = Some(self.hasher().hash(secret.expose()));
        client.updated_at = self.clock.now();
        // The secret itself never enters an event: the event says only that it changed.
        let rotated = Event::new(client.tenant_id.clone(), EventKind::CLIENT_SECRET_ROTATED, Priority::High)
            .subject(client.client_id.as_str());
        self.store.update_client(&client, &[rotated]).await?;
        self.forget_client(&client.tenant_id, &client.client_id).await?;
        tracing::info!(tenant = %client.tenant_id, client = %client.client_id, "client secret rotated");
        Ok((client, secret))
    }

    pub async fn list_keys(&self, tenant: &str) -> Result<Vec<KeySummary>, AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        let keys = self.store.published_keys(&tenant.id, self.clock.now()).await?;
        Ok(keys
            .into_iter()
            .map(|k| KeySummary {
                kid: k.kid.to_string(),
                alg: k.alg.as_str(),
                status: k.status.as_str(),
                created_at: k.created_at.0,
                retired_at: k.retired_at.map(|t| t.0),
                publish_until: k.publish_until.map(|t| t.0),
            })
            .collect())
    }

    /// Adds a new signing key in the tenant's algorithm and retires the current one, which stays
    /// published until every token it signed has expired.
    pub async fn rotate_keys(&self, tenant: &str) -> Result<Vec<KeySummary>, AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        let key = self.keys.new_stored_key(&tenant.id, tenant.signing_alg)?;
        let rotated = Event::new(tenant.id.clone(), EventKind::KEY_ROTATED, Priority::Critical)
            .subject(key.kid.as_str())
            .data(json!({"alg": key.alg.as_str()}));
        self.store.rotate_key(&key, self.clock.now(), ROTATION_LEEWAY_SECS, &[rotated]).await?;
        self.keys.invalidate(&tenant.id);
        self.forget_signing_keys(&tenant.id).await?;
        tracing::info!(tenant = %tenant.id, kid = %key.kid, "signing key rotated");
        self.list_keys(tenant.id.as_str()).await
    }
}

impl AuthService {
    /// After a rotation (or a tenant's creation, in case its id was used before): every replica parses
    /// the tenant's keys again.
    async fn forget_signing_keys(&self, tenant: &TenantId) -> Result<(), AdminError> {
        let invalidation = Invalidation::key(CacheKind::SigningKeys, tenant.as_str());
        self.cache.invalidate(invalidation).await.map_err(|e| AdminError::Internal(e.to_string()))
    }

    /// After a tenant's deletion: every replica drops its key set, its clients and its revocation state;
    /// the revocation notice also empties every replica's verified tokens.
    async fn forget_tenant(&self, tenant: &TenantId) -> Result<(), AdminError> {
        let prefix = tenant_prefix(tenant);
        let invalidations = [
            Invalidation::key(CacheKind::SigningKeys, tenant.as_str()),
            Invalidation::prefix(CacheKind::Client, prefix.clone()),
            Invalidation::prefix(CacheKind::Revocation, prefix),
        ];
        for invalidation in invalidations {
            self.cache.invalidate(invalidation).await.map_err(|e| AdminError::Internal(e.to_string()))?;
        }
        Ok(())
    }
}

/// A tenant lifecycle event. It belongs to the default tenant, whose administrators create and delete
/// tenants, so it stays in that tenant's audit trail after the tenant it names is gone.
fn tenant_event(kind: EventKind, tenant: &Tenant) -> Event {
    Event::new(TenantId::default_tenant(), kind, Priority::High).subject(tenant.id.as_str())
}

/// A client's registration as an event: what an auditor needs to see changed, never its secret hash.
fn client_event(kind: EventKind, client: &Client) -> Event {
    Event::new(client.tenant_id.clone(), kind, Priority::High).subject(client.client_id.as_str()).data(json!({
        "name": client.name,
        "kind": match client.kind {
            ClientKind::Confidential => "confidential",
            ClientKind::Public => "public",
        },
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": client.scopes.to_string(),
        "audiences": client.audiences,
        "introspect_audiences": client.introspect_audiences,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
    }))
}

/// A client id: 128 random bits in lowercase hex, so it never starts with a dash (command lines) and
/// is never a case-variant of another id.
fn new_client_id() -> String {
    use std::fmt::Write;
    let bytes = crate::crypto::random::random_bytes::<16>();
    bytes.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Extra time a retired key stays published beyond its tokens' lifetime, for clock skew at verifiers.
const ROTATION_LEEWAY_SECS: i64 = 60;

/// RFC 6749 §4.4: only confidential clients may use client_credentials. The code flow needs somewhere to
/// send users back, and refresh tokens exist only in it.
fn validate_client_shape(kind: ClientKind, grants: &[GrantType], redirect_uris: &[String]) -> Result<(), AdminError> {
    if grants.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(AdminError::Invalid("the authorization_code grant needs at least one redirect URI".into()));
    }
    if grants.contains(&GrantType::RefreshToken) && !grants.contains(&GrantType::AuthorizationCode) {
        return Err(AdminError::Invalid("the refresh_token grant needs the authorization_code grant".into()));
    }
    if kind == ClientKind::Public && grants.contains(&GrantType::ClientCredentials) {
        return Err(AdminError::Invalid("public clients may not use the client_credentials grant".into()));
    }
    if grants.is_empty() {
        return Err(AdminError::Invalid("a client needs at least one grant type".into()));
    }
    Ok(())
}
