//! `PolicyService`: the policy decision point's use cases over the storage port. Writes are validated,
//! stored as a new immutable version, then installed; decisions run on the installed snapshot, through
//! the decision cache.
//!
//! # Several replicas on one database
//! Each replica holds its own compiled snapshot per tenant, so a write on one must reach the others:
//! - **Notices.** After every successful write (policy set put or rollback, entity upsert or delete,
//!   tenant removal) the service calls [`Cache::invalidate`] with
//!   `Invalidation::key(CacheKind::PolicySnapshot, "<tenant>")`: the bare tenant id, as for signing keys
//!   (a `<tenant>/` prefix is understood too). [`PolicyService::spawn_invalidation_listener`] hears every
//!   replica's notices and drops the tenant's snapshot and decisions, so its next decision reloads from
//!   the store. The writer hears its own notice and reloads once too: one code path, one store read per
//!   write. Loads that started before a notice are never installed after it (see [`crate::engine`]).
//! - **Fallback.** Without a channel between replicas (no Redis), or when notices are lost, every
//!   snapshot is re-checked against the store once per `snapshot_recheck` (default 2 s; see
//!   `snapshots`).
//!
//! Staleness bound: no decision runs on a state older than `2 × snapshot_recheck` plus one store read,
//! with or without notices, while the store answers (when it does not, the replica keeps deciding on
//! what it has and logs it). With notices, a write is seen in about the channel's delivery time plus
//! one store read.
//!
//! # Audit
//! Denials of the decision API ([`PolicyService::authorize`], [`PolicyService::authorize_batch`]) become
//! `decision.denied` events for the configured [`EventSink`], sampled; see `audit`. The scope gate of
//! token issuance and the admin permission checks are not audited this way.

mod audit;
mod gates;
mod snapshots;

use std::sync::{Arc, Weak};
use std::time::Duration;

use rsp_cache::{CacheConfig, LocalCache};
use rsp_core::bus::EventSink;
use rsp_core::cache::{Cache, CacheKind, Invalidation};
use rsp_core::policy::{PolicySetContent, PolicySetVersion, SchemaFormat, StoredEntity};
use rsp_core::{Clock, Event, EventKind, Priority, Store, StoreError, TenantId};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Mutex, broadcast, watch};
use tokio::task::JoinHandle;

use self::audit::DeniedAudit;
pub use self::audit::SampleRateError;
pub use self::snapshots::DEFAULT_SNAPSHOT_RECHECK;
use self::snapshots::{Freshness, Snapshots};
use crate::{
    CacheStats, Decision, DecisionCache, DecisionRequest, Diagnostic, DiagnosticSource, EngineError, EntityRef,
    EntityStore, PolicyDocument, RequestError, SchemaSource, Snapshot, TemplateLink, validate,
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
    /// Installed snapshots and cached decisions, shared with background rechecks.
    snapshots: Arc<Snapshots>,
    /// Carries this replica's change notices to the others, and theirs to this one's listener.
    cache: Arc<dyn Cache>,
    audit: DeniedAudit,
    /// Serialises writes on this instance, so validation, storage and installation happen as one step.
    writes: Mutex<()>,
    /// Never sent on: dropping it with the service ends the invalidation listeners.
    alive: watch::Sender<()>,
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

/// The cache of a service nobody gave one: this process only, so notices reach its own listener alone.
fn process_cache() -> Arc<dyn Cache> {
    #[expect(clippy::expect_used, reason = "the default cache configuration is valid (rsp-cache tests it)")]
    let cache = LocalCache::new(&CacheConfig::default()).expect("the default cache configuration is valid");
    Arc::new(cache)
}

impl PolicyService {
    /// A service over `store`, caching about `cache_capacity` decisions, with a process-local cache port,
    /// no event sink and the default snapshot recheck interval.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cache_capacity: usize) -> Self {
        Self {
            snapshots: Arc::new(Snapshots::new(Arc::clone(&store), cache_capacity)),
            store,
            clock,
            cache: process_cache(),
            audit: DeniedAudit::new(),
            writes: Mutex::new(()),
            alive: watch::channel(()).0,
        }
    }

    /// The cache port that carries change notices between replicas (a `TwoLevelCache` when several
    /// replicas share a database). Set it before [`Self::spawn_invalidation_listener`].
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = cache;
        self
    }

    /// Where `decision.denied` events go (default: nowhere, and none are built).
    pub fn with_events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.audit = self.audit.with_sink(sink);
        self
    }

    /// How long a snapshot is used before it is checked against the store again (default
    /// [`DEFAULT_SNAPSHOT_RECHECK`]): the bound on staleness when change notices do not arrive. Zero
    /// checks before every decision.
    pub fn with_snapshot_recheck(self, interval: Duration) -> Self {
        self.snapshots.set_recheck(interval);
        self
    }

    /// The share of denied decisions recorded as `decision.denied` events: 1 (the default) all, 0 none.
    pub fn set_denied_audit_sample_rate(&self, rate: f64) -> Result<(), SampleRateError> {
        self.audit.set_rate(rate)
    }

    /// Starts the task that applies change notices heard on the cache port (this replica's and the
    /// others'): a tenant's snapshot and decisions are dropped, every tenant's on a notice that names no
    /// tenant or when the listener lagged and may have missed some. The task holds only a weak reference
    /// and ends when the service is dropped. Call it on a tokio runtime, once per service.
    pub fn spawn_invalidation_listener(self: &Arc<Self>) -> JoinHandle<()> {
        // Subscribed before returning, so no notice sent after this call is missed.
        let notices = self.cache.subscribe();
        tokio::spawn(listen(notices, Arc::downgrade(self), self.alive.subscribe()))
    }

    /// Records the repeat counts of denials (see `audit`) every window, so that they are recorded when
    /// denials stop too. Ends when the service is dropped.
    pub fn spawn_denied_audit_repeats(self: &Arc<Self>) -> JoinHandle<()> {
        let service = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(audit::REPEAT_WINDOW);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(service) = service.upgrade() else { break };
                service.audit.record_repeats(false);
            }
        })
    }

    /// Records the denial repeats counted so far without waiting for their window to end: at shutdown,
    /// before the event sink is drained.
    pub fn flush_denied_audit(&self) {
        self.audit.record_repeats(true);
    }

    /// Tells every replica (this one included) that the tenant's policies or entities changed. The write
    /// is already stored, so a failure here is logged, not returned: the others catch up by rechecking.
    async fn announce(&self, tenant: &TenantId) {
        let invalidation = Invalidation::key(CacheKind::PolicySnapshot, tenant.as_str());
        if let Err(error) = self.cache.invalidate(invalidation).await {
            tracing::warn!(tenant = %tenant, %error, "policy change not announced; other replicas see it on recheck");
        }
    }

    fn decisions(&self) -> &DecisionCache {
        self.snapshots.decisions()
    }

    async fn require_tenant(&self, tenant: &TenantId) -> Result<(), PolicyServiceError> {
        match self.store.get_tenant(tenant).await? {
            Some(_) => Ok(()),
            None => Err(PolicyServiceError::UnknownTenant),
        }
    }

    /// The tenant's current snapshot: loaded from the store on first use (and after a change notice),
    /// re-checked against it once per `snapshot_recheck`.
    pub async fn snapshot(&self, tenant: &TenantId) -> Result<Arc<Snapshot>, PolicyServiceError> {
        if let Some(snapshot) = self.snapshots.engine().snapshot(tenant) {
            match self.snapshots.freshness(&snapshot) {
                Freshness::Fresh => return Ok(snapshot),
                Freshness::Due => {
                    self.snapshots.recheck_in_background(Arc::clone(&snapshot));
                    return Ok(snapshot);
                }
                Freshness::Expired => match self.snapshots.recheck_expired(Arc::clone(&snapshot)).await {
                    Ok(Some(snapshot)) => return Ok(snapshot),
                    // The recheck (or a notice meanwhile) dropped it: load it as new below.
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(tenant = %tenant, %error, "policy snapshot recheck failed; deciding on it");
                        return Ok(snapshot);
                    }
                },
            }
        }
        self.require_tenant(tenant).await?;
        self.snapshots.load(tenant).await
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
        // Version `version` is exactly this document, so it can be installed whatever else changed.
        let installed = match self.snapshots.engine().replace_policies(tenant, compiled, version) {
            Ok(_) | Err(EngineError::StaleVersion { .. }) => Ok(()),
            Err(error) => Err(PolicyServiceError::Internal(error.to_string())),
        };
        self.announce(tenant).await;
        installed?;
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
        let installed = self.install_entities(tenant, &current, updated, version);
        self.announce(tenant).await;
        installed?;
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
        let installed = self.install_entities(tenant, &current, updated, version);
        self.announce(tenant).await;
        installed?;
        tracing::info!(tenant = %tenant, version, actor, count = keys.len(), "entities deleted");
        Ok(version)
    }

    /// Installs entities computed from `read` plus this write, stored as `version`. They are the stored
    /// state only if no other write came between (`version` follows `read`'s directly); otherwise the
    /// tenant is dropped and the next decision reads the store.
    fn install_entities(
        &self,
        tenant: &TenantId,
        read: &Snapshot,
        entities: EntityStore,
        version: u64,
    ) -> Result<(), PolicyServiceError> {
        if read.entity_version().checked_add(1) != Some(version) {
            self.snapshots.forget(tenant);
            return Ok(());
        }
        match self.snapshots.engine().replace_entities(tenant, entities, version) {
            Ok(_) | Err(EngineError::StaleVersion { .. }) => Ok(()),
            Err(error) => Err(PolicyServiceError::Internal(error.to_string())),
        }
    }

    /// One decision, through the cache.
    pub async fn authorize(
        &self,
        tenant: &TenantId,
        request: &DecisionRequest,
    ) -> Result<Arc<Decision>, PolicyServiceError> {
        let snapshot = self.snapshot(tenant).await?;
        let decision = self.decisions().authorize(&snapshot, request).map_err(PolicyServiceError::InvalidRequest)?;
        self.audit.record(tenant, [(request, &*decision)]);
        Ok(decision)
    }

    /// Many decisions on one snapshot, in order; a malformed item fails alone.
    pub async fn authorize_batch(
        &self,
        tenant: &TenantId,
        requests: &[Result<DecisionRequest, RequestError>],
    ) -> Result<Vec<Result<Arc<Decision>, RequestError>>, PolicyServiceError> {
        let snapshot = self.snapshot(tenant).await?;
        let decisions: Vec<_> = requests
            .iter()
            .map(|request| {
                request.as_ref().map_err(Clone::clone).and_then(|r| self.decisions().authorize(&snapshot, r))
            })
            .collect();
        let decided = requests.iter().zip(&decisions).filter_map(|pair| match pair {
            (Ok(request), Ok(decision)) => Some((request, &**decision)),
            _ => None,
        });
        self.audit.record(tenant, decided);
        Ok(decisions)
    }

    /// Forgets a deleted tenant's snapshot and cached decisions, here and (through the cache port) on
    /// every other replica.
    pub async fn forget_tenant(&self, tenant: &TenantId) {
        self.snapshots.forget(tenant);
        self.announce(tenant).await;
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.decisions().stats()
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

/// The invalidation listener's loop; see [`PolicyService::spawn_invalidation_listener`].
async fn listen(
    mut notices: broadcast::Receiver<rsp_core::cache::InvalidationNotice>,
    service: Weak<PolicyService>,
    mut alive: watch::Receiver<()>,
) {
    loop {
        let invalidation = tokio::select! {
            received = notices.recv() => match received {
                Ok(notice) => notice.invalidation,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "policy invalidation listener lagged; dropping every snapshot");
                    Invalidation::All
                }
                Err(RecvError::Closed) => return,
            },
            // Only ever an error: the service, the sender's owner, was dropped.
            _ = alive.changed() => return,
        };
        let Some(service) = service.upgrade() else {
            return;
        };
        service.snapshots.apply(&invalidation);
    }
}

#[cfg(test)]
mod tests;
