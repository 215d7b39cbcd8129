//! `PolicyService`: the policy decision point's use cases over the storage port. Writes are validated,
//! stored as a new immutable version, then installed; decisions run on the installed snapshot, through
//! the decision cache.

use std::sync::Arc;

use rsp_core::policy::{PolicySetContent, PolicySetVersion, SchemaFormat, StoredEntity};
use rsp_core::{Clock, Event, EventKind, Priority, Store, StoreError, TenantId};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    CacheStats, Decision, DecisionCache, DecisionRequest, Diagnostic, DiagnosticSource, EngineError, EntityRef,
    EntityStore, PolicyDocument, PolicyEngine, RequestError, SchemaSource, Snapshot, TemplateLink, validate,
};

/// Why a policy use case failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyServiceError {
    #[error("unknown tenant")]
    UnknownTenant,
    #[error("the policy set is invalid")]
    InvalidPolicies(Vec<Diagnostic>),
    #[error("invalid entities: {0}")]
    InvalidEntities(String),
    #[error("{0}")]
    InvalidRequest(RequestError),
    #[error("policy version {0} does not exist")]
    NoSuchVersion(u64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for PolicyServiceError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// The decision point.
pub struct PolicyService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    engine: PolicyEngine,
    cache: DecisionCache,
    /// Serialises writes on this instance, so validation, storage and installation happen as one step.
    writes: Mutex<()>,
}

impl std::fmt::Debug for PolicyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyService").finish_non_exhaustive()
    }
}

/// An entity write as an event; the store sets its subject to the entity version it assigns.
fn entities_event(tenant: &TenantId, actor: &str, counts: Value) -> Event {
    Event::new(tenant.clone(), EventKind::ENTITIES_CHANGED, Priority::Normal).actor(actor).data(counts)
}

/// The stored form of a document.
pub fn content_of(document: &PolicyDocument) -> PolicySetContent {
    let schema = document.schema.as_ref().map(|source| match source {
        SchemaSource::Cedar(text) => (SchemaFormat::Cedar, text.clone()),
        SchemaSource::Json(text) => (SchemaFormat::Json, text.clone()),
    });
    let links = serde_json::to_string(&document.template_links).unwrap_or_else(|_| "[]".into());
    PolicySetContent { policies: document.policies.clone(), schema, template_links: links }
}

/// The document a stored version holds.
pub fn document_of(content: &PolicySetContent) -> Result<PolicyDocument, PolicyServiceError> {
    let schema = content.schema.as_ref().map(|(format, text)| match format {
        SchemaFormat::Cedar => SchemaSource::Cedar(text.clone()),
        SchemaFormat::Json => SchemaSource::Json(text.clone()),
    });
    let template_links: Vec<TemplateLink> = serde_json::from_str(&content.template_links)
        .map_err(|e| PolicyServiceError::Internal(format!("stored template links: {e}")))?;
    Ok(PolicyDocument { policies: content.policies.clone(), schema, template_links })
}

fn entity_diagnostic(message: String) -> Diagnostic {
    Diagnostic {
        source: DiagnosticSource::Schema,
        policy_id: None,
        message: format!("stored entities do not conform to this schema: {message}"),
        line: None,
        column: None,
    }
}

impl PolicyService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cache_capacity: usize) -> Self {
        Self {
            store,
            clock,
            engine: PolicyEngine::new(),
            cache: DecisionCache::new(cache_capacity),
            writes: Mutex::new(()),
        }
    }

    async fn require_tenant(&self, tenant: &TenantId) -> Result<(), PolicyServiceError> {
        match self.store.get_tenant(tenant).await? {
            Some(_) => Ok(()),
            None => Err(PolicyServiceError::UnknownTenant),
        }
    }

    /// The tenant's current snapshot, loaded from the store on first use.
    pub async fn snapshot(&self, tenant: &TenantId) -> Result<Arc<Snapshot>, PolicyServiceError> {
        if let Some(snapshot) = self.engine.snapshot(tenant) {
            return Ok(snapshot);
        }
        self.require_tenant(tenant).await?;
        let latest = self.store.latest_policy_set(tenant).await?;
        let (entity_version, rows) = self.store.entities(tenant).await?;
        let policies = match &latest {
            Some(version) => validate(&document_of(&version.content)?)
                .map_err(|d| PolicyServiceError::Internal(format!("stored policy set no longer compiles: {d:?}")))?,
            None => crate::CompiledPolicies::empty(),
        };
        let json = rows
            .iter()
            .map(|row| serde_json::from_str::<Value>(&row.json))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PolicyServiceError::Internal(format!("stored entity: {e}")))?;
        let entities = EntityStore::from_json(Value::Array(json), policies.schema())
            .map_err(|e| PolicyServiceError::Internal(format!("stored entities: {e}")))?;
        let policy_version = latest.map_or(0, |v| v.version);
        let snapshot =
            Snapshot::new(tenant.clone(), policies.clone(), policy_version, entities.clone(), entity_version)
                .map_err(|e| PolicyServiceError::Internal(e.to_string()))?;
        // Install what was read; a concurrent load may have won, which is as good.
        if policy_version > 0 {
            let _ = self.engine.install_policies(tenant, policies, policy_version);
        }
        if entity_version > 0 {
            let _ = self.engine.install_entities(tenant, entities, entity_version);
        }
        Ok(self.engine.snapshot(tenant).unwrap_or_else(|| Arc::new(snapshot)))
    }

    /// Checks a document without storing it: every diagnostic, including stored entities that would not
    /// conform to its schema.
    pub async fn check(&self, tenant: &TenantId, document: &PolicyDocument) -> Result<(), PolicyServiceError> {
        self.compile_for(tenant, document).await.map(|_| ())
    }

    /// Compiles `document` and checks the tenant's stored entities fit its schema.
    async fn compile_for(
        &self,
        tenant: &TenantId,
        document: &PolicyDocument,
    ) -> Result<crate::CompiledPolicies, PolicyServiceError> {
        let compiled = validate(document).map_err(PolicyServiceError::InvalidPolicies)?;
        let current = self.snapshot(tenant).await?;
        current
            .entities()
            .with_schema(compiled.schema())
            .map_err(|e| PolicyServiceError::InvalidPolicies(vec![entity_diagnostic(e.to_string())]))?;
        Ok(compiled)
    }

    /// Validates, stores as a new version and installs `document`; returns the new version. Nothing
    /// changes when the document is invalid.
    pub async fn put_policies(
        &self,
        tenant: &TenantId,
        document: &PolicyDocument,
        actor: &str,
    ) -> Result<u64, PolicyServiceError> {
        self.store_policies(tenant, document, actor, None).await
    }

    /// [`Self::put_policies`], recording which version a rollback restored.
    async fn store_policies(
        &self,
        tenant: &TenantId,
        document: &PolicyDocument,
        actor: &str,
        rollback_of: Option<u64>,
    ) -> Result<u64, PolicyServiceError> {
        let _write = self.writes.lock().await;
        let compiled = self.compile_for(tenant, document).await?;
        // The store sets the subject to the new version, a number it assigns inside the transaction.
        let changed = Event::new(tenant.clone(), EventKind::POLICY_CHANGED, Priority::High)
            .actor(actor)
            .data(rollback_of.map_or(Value::Null, |version| json!({"rollback_of": version})));
        let version =
            self.store.append_policy_set(tenant, &content_of(document), self.clock.now(), actor, &[changed]).await?;
        match self.engine.install_policies(tenant, compiled, version) {
            Ok(_) | Err(EngineError::StaleVersion { .. }) => {}
            Err(error) => return Err(PolicyServiceError::Internal(error.to_string())),
        }
        tracing::info!(tenant = %tenant, version, actor, "policy set stored");
        Ok(version)
    }

    pub async fn latest(&self, tenant: &TenantId) -> Result<Option<PolicySetVersion>, PolicyServiceError> {
        self.require_tenant(tenant).await?;
        Ok(self.store.latest_policy_set(tenant).await?)
    }

    pub async fn versions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(u64, rsp_core::UnixTime, String)>, PolicyServiceError> {
        self.require_tenant(tenant).await?;
        Ok(self.store.list_policy_versions(tenant).await?)
    }

    /// Makes `version`'s content live again, as a new version (numbers never repeat).
    pub async fn rollback(&self, tenant: &TenantId, version: u64, actor: &str) -> Result<u64, PolicyServiceError> {
        self.require_tenant(tenant).await?;
        let old = self.store.policy_set(tenant, version).await?.ok_or(PolicyServiceError::NoSuchVersion(version))?;
        self.store_policies(tenant, &document_of(&old.content)?, actor, Some(version)).await
    }

    /// Upserts entities given in the Cedar JSON entity format; returns the new entity version.
    pub async fn put_entities(
        &self,
        tenant: &TenantId,
        entities: Value,
        actor: &str,
    ) -> Result<u64, PolicyServiceError> {
        let _write = self.writes.lock().await;
        let current = self.snapshot(tenant).await?;
        let updated = current
            .entities()
            .upsert(entities.clone())
            .map_err(|e| PolicyServiceError::InvalidEntities(e.to_string()))?;
        let rows = stored_rows(&entities)?;
        let changed = entities_event(tenant, actor, json!({"upserted": rows.len()}));
        let version = self.store.write_entities(tenant, &rows, &[], &[changed]).await?;
        self.install_entities(tenant, updated, version)?;
        tracing::info!(tenant = %tenant, version, actor, count = rows.len(), "entities stored");
        Ok(version)
    }

    /// Deletes entities by uid; returns the new entity version.
    pub async fn delete_entities(
        &self,
        tenant: &TenantId,
        uids: &[EntityRef],
        actor: &str,
    ) -> Result<u64, PolicyServiceError> {
        let _write = self.writes.lock().await;
        let current = self.snapshot(tenant).await?;
        let updated =
            current.entities().delete(uids).map_err(|e| PolicyServiceError::InvalidEntities(e.to_string()))?;
        let keys: Vec<(String, String)> =
            uids.iter().map(|u| (u.entity_type().to_owned(), u.id().to_owned())).collect();
        let changed = entities_event(tenant, actor, json!({"deleted": keys.len()}));
        let version = self.store.write_entities(tenant, &[], &keys, &[changed]).await?;
        self.install_entities(tenant, updated, version)?;
        tracing::info!(tenant = %tenant, version, actor, count = keys.len(), "entities deleted");
        Ok(version)
    }

    fn install_entities(
        &self,
        tenant: &TenantId,
        entities: EntityStore,
        version: u64,
    ) -> Result<(), PolicyServiceError> {
        match self.engine.install_entities(tenant, entities, version) {
            Ok(_) | Err(EngineError::StaleVersion { .. }) => Ok(()),
            Err(error) => Err(PolicyServiceError::Internal(error.to_string())),
        }
    }

    /// One decision, through the cache.
    pub async fn authorize(
        &self,
        tenant: &TenantId,
        request: &DecisionRequest,
    ) -> Result<Decision, PolicyServiceError> {
        let snapshot = self.snapshot(tenant).await?;
        self.cache.authorize(&snapshot, request).map_err(PolicyServiceError::InvalidRequest)
    }

    /// Many decisions on one snapshot, in order; a malformed item fails alone.
    pub async fn authorize_batch(
        &self,
        tenant: &TenantId,
        requests: &[Result<DecisionRequest, RequestError>],
    ) -> Result<Vec<Result<Decision, RequestError>>, PolicyServiceError> {
        let snapshot = self.snapshot(tenant).await?;
        Ok(requests
            .iter()
            .map(|request| request.as_ref().map_err(Clone::clone).and_then(|r| self.cache.authorize(&snapshot, r)))
            .collect())
    }

    /// Forgets a deleted tenant's snapshot and cached decisions.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.engine.remove_tenant(tenant);
        self.cache.remove_tenant(tenant);
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }
}

impl PolicyService {
    /// Whether the default tenant's policies let `client` perform the admin action `action` on `tenant`
    /// (`None`: the collection of tenants). `None` when no policy names `Rsp::Action::"<action>"`, so
    /// the `rsp:admin` scope alone decides; a request Cedar cannot evaluate counts as a denial.
    pub async fn permits_admin(
        &self,
        client: &str,
        action: &str,
        tenant: Option<&str>,
    ) -> Result<Option<bool>, PolicyServiceError> {
        let snapshot = self.snapshot(&TenantId::default_tenant()).await?;
        let reference =
            |kind: &str, id: &str| EntityRef::new(kind, id).map_err(|e| PolicyServiceError::Internal(e.to_string()));
        let action = reference("Rsp::Action", action)?;
        if !snapshot.policies().names_action(&action) {
            return Ok(None);
        }
        let resource = match tenant {
            Some(tenant) => reference("Rsp::Tenant", tenant)?,
            None => reference("Rsp::Platform", "admin")?,
        };
        let request = DecisionRequest::new(reference("Rsp::Client", client)?, action, resource);
        Ok(Some(self.cache.authorize(&snapshot, &request).is_ok_and(|decision| decision.allowed)))
    }
}

/// The action token issuance asks about, once a tenant's policies name it.
const REQUEST_SCOPE: &str = "RequestScope";

#[async_trait::async_trait]
impl rsp_core::ports::ScopeGate for PolicyService {
    /// Asks `Client::"<id>"` / `Action::"RequestScope"` / `Scope::"<scope>"` with the audience in the
    /// context. A request the tenant's schema rejects counts as a denial (and is logged): issuance fails
    /// closed.
    async fn permits_scope(
        &self,
        tenant: &TenantId,
        client: &rsp_core::ClientId,
        scope: &str,
        audience: &str,
    ) -> Result<Option<bool>, StoreError> {
        let snapshot = self.snapshot(tenant).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let reference =
            |kind: &str, id: &str| EntityRef::new(kind, id).map_err(|e| StoreError::Unavailable(e.to_string()));
        let action = reference("Action", REQUEST_SCOPE)?;
        if !snapshot.policies().names_action(&action) {
            return Ok(None);
        }
        let mut context = serde_json::Map::new();
        context.insert("audience".into(), Value::String(audience.to_owned()));
        let request = DecisionRequest::new(reference("Client", client.as_str())?, action, reference("Scope", scope)?)
            .with_context(context);
        match self.cache.authorize(&snapshot, &request) {
            Ok(decision) => Ok(Some(decision.allowed)),
            Err(error) => {
                tracing::warn!(tenant = %tenant, %error, "scope request does not fit the tenant's schema; denied");
                Ok(Some(false))
            }
        }
    }
}

/// One storage row per entity of a Cedar JSON entity array (already validated by the engine).
fn stored_rows(entities: &Value) -> Result<Vec<StoredEntity>, PolicyServiceError> {
    let Value::Array(items) = entities else {
        return Err(PolicyServiceError::InvalidEntities("expected a JSON array of entities".into()));
    };
    items
        .iter()
        .map(|item| {
            let uid =
                item.get("uid").ok_or_else(|| PolicyServiceError::InvalidEntities("an entity has no uid".into()))?;
            let uid = EntityRef::from_json(uid).map_err(|e| PolicyServiceError::InvalidEntities(e.to_string()))?;
            Ok(StoredEntity {
                entity_type: uid.entity_type().to_owned(),
                entity_id: uid.id().to_owned(),
                json: item.to_string(),
            })
        })
        .collect()
}
