//! [`PolicyEngine`]: each tenant's current [`Snapshot`], replaced whole on every write.
//!
//! Readers load the tenant map with one atomic pointer read (arc-swap) and keep their `Arc<Snapshot>`
//! for as long as they decide, so a reload never blocks a decision and a decision never sees half a
//! reload. Writers are serialised by a mutex that readers never touch, and each write copies the tenant
//! map (pointers only): cheap for the number of tenants one process serves, and writes are rare.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use rsp_core::TenantId;

use crate::compile::CompiledPolicies;
use crate::document::Schema;
use crate::entities::EntityStore;
use crate::error::{EngineError, EntityError, VersionKind};

/// Everything one decision reads, frozen: policies (with their schema) and entities, each with the
/// version it was installed as. The entities always conform to the policies' schema.
#[derive(Debug)]
pub struct Snapshot {
    tenant: TenantId,
    policy_version: u64,
    entity_version: u64,
    policies: CompiledPolicies,
    entities: EntityStore,
}

impl Snapshot {
    /// Pairs policies and entities, re-checking the entities against the policies' schema unless they
    /// were built against that very schema.
    pub fn new(
        tenant: TenantId,
        policies: CompiledPolicies,
        policy_version: u64,
        entities: EntityStore,
        entity_version: u64,
    ) -> Result<Self, EntityError> {
        let entities = entities.with_schema(policies.schema())?;
        Ok(Self { tenant, policy_version, entity_version, policies, entities })
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The version the policies were installed as; 0 when none were.
    pub fn policy_version(&self) -> u64 {
        self.policy_version
    }

    /// The version the entities were installed as; 0 when none were.
    pub fn entity_version(&self) -> u64 {
        self.entity_version
    }

    pub fn policies(&self) -> &CompiledPolicies {
        &self.policies
    }

    pub fn entities(&self) -> &EntityStore {
        &self.entities
    }

    pub fn schema(&self) -> Option<&Schema> {
        self.policies.schema()
    }
}

/// The live policy state of every tenant this process serves.
pub struct PolicyEngine {
    tenants: ArcSwap<HashMap<TenantId, Arc<Snapshot>>>,
    /// Held by writers only, so that two writes cannot both start from the same map and lose one.
    writer: Mutex<()>,
}

impl PolicyEngine {
    pub fn new() -> Self {
        Self { tenants: ArcSwap::from_pointee(HashMap::new()), writer: Mutex::new(()) }
    }

    /// The tenant's current snapshot; `None` before anything was installed for it. Never blocks.
    pub fn snapshot(&self, tenant: &TenantId) -> Option<Arc<Snapshot>> {
        self.tenants.load().get(tenant).cloned()
    }

    /// The tenants with a snapshot, sorted.
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut tenants: Vec<TenantId> = self.tenants.load().keys().cloned().collect();
        tenants.sort_unstable();
        tenants
    }

    /// Replaces the tenant's policies (keeping its entities, re-checked if the schema changed).
    /// `version` must be greater than the installed policy version (0 for a new tenant); on any error
    /// nothing changes.
    #[tracing::instrument(skip_all, fields(tenant = tenant.as_str(), version))]
    pub fn install_policies(
        &self,
        tenant: &TenantId,
        policies: CompiledPolicies,
        version: u64,
    ) -> Result<Arc<Snapshot>, EngineError> {
        self.update(tenant, |current| {
            let (installed, entities, entity_version) = match current {
                Some(current) => (current.policy_version, current.entities.clone(), current.entity_version),
                None => (0, EntityStore::empty(), 0),
            };
            check_newer(VersionKind::Policy, installed, version)?;
            Ok(Snapshot::new(tenant.clone(), policies, version, entities, entity_version)?)
        })
    }

    /// Replaces the tenant's entities (re-checked against the installed schema unless built against it).
    /// `version` must be greater than the installed entity version (0 for a new tenant); on any error
    /// nothing changes.
    #[tracing::instrument(skip_all, fields(tenant = tenant.as_str(), version))]
    pub fn install_entities(
        &self,
        tenant: &TenantId,
        entities: EntityStore,
        version: u64,
    ) -> Result<Arc<Snapshot>, EngineError> {
        self.update(tenant, |current| {
            let (installed, policies, policy_version) = match current {
                Some(current) => (current.entity_version, current.policies.clone(), current.policy_version),
                None => (0, CompiledPolicies::empty(), 0),
            };
            check_newer(VersionKind::Entity, installed, version)?;
            Ok(Snapshot::new(tenant.clone(), policies, policy_version, entities, version)?)
        })
    }

    /// Forgets the tenant; returns whether it had a snapshot. Decisions in flight finish on the snapshot
    /// they hold. A cache keyed by versions should drop the tenant too
    /// ([`DecisionCache::remove_tenant`](crate::DecisionCache::remove_tenant)), since a re-created tenant
    /// starts its versions again.
    #[tracing::instrument(skip_all, fields(tenant = tenant.as_str()))]
    pub fn remove_tenant(&self, tenant: &TenantId) -> bool {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.tenants.load_full();
        if !current.contains_key(tenant) {
            return false;
        }
        let mut tenants = HashMap::clone(&current);
        tenants.remove(tenant);
        self.tenants.store(Arc::new(tenants));
        true
    }

    /// Builds the next snapshot from the current one under the writer lock and publishes it.
    fn update(
        &self,
        tenant: &TenantId,
        next: impl FnOnce(Option<&Snapshot>) -> Result<Snapshot, EngineError>,
    ) -> Result<Arc<Snapshot>, EngineError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.tenants.load_full();
        let snapshot = Arc::new(next(current.get(tenant).map(Arc::as_ref))?);
        let mut tenants = HashMap::clone(&current);
        tenants.insert(tenant.clone(), Arc::clone(&snapshot));
        self.tenants.store(Arc::new(tenants));
        tracing::debug!(
            policy_version = snapshot.policy_version,
            entity_version = snapshot.entity_version,
            "policy snapshot installed"
        );
        Ok(snapshot)
    }
}

fn check_newer(kind: VersionKind, installed: u64, offered: u64) -> Result<(), EngineError> {
    if offered > installed { Ok(()) } else { Err(EngineError::StaleVersion { kind, installed, offered }) }
}

impl Default for PolicyEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine").field("tenants", &self.tenants.load().len()).finish()
    }
}

#[cfg(test)]
mod tests;
