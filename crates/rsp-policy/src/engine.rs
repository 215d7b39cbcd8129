//! [`PolicyEngine`]: each tenant's current [`Snapshot`], replaced whole on every write.
//!
//! Readers load the tenant map with one atomic pointer read (arc-swap) and keep their `Arc<Snapshot>`
//! for as long as they decide, so a reload never blocks a decision and a decision never sees half a
//! reload. Writers are serialised by a mutex that readers never touch, and each write copies the tenant
//! map (pointers only): cheap for the number of tenants one process serves, and writes are rare.
//!
//! # Forgetting and late loads
//! A replica drops a tenant's snapshot when it hears that another replica changed the tenant
//! ([`PolicyEngine::remove_tenant`], [`PolicyEngine::remove_all`]); the next decision loads it again from
//! the store. A load that read the store *before* such a notice must not install what it read *after* it,
//! or the replica would keep the old state with nothing left to correct it. So every removal bumps a
//! generation (the tenant's, or every tenant's), a loader takes a [`LoadTicket`] before reading the store,
//! and [`PolicyEngine::install_loaded`] refuses a ticket that a removal has overtaken
//! ([`EngineError::Superseded`]). Both run under the writer lock, so no removal falls between the check and
//! the install.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// When the store read began that this content is known to be at least as new as, on the owner's
    /// monotonic clock (milliseconds from an origin it picks); 0 for a snapshot nobody stamped. A check
    /// that finds nothing new moves it forward instead of copying the snapshot.
    checked_at: AtomicU64,
    /// The earliest time another background check of this snapshot may start, on the same clock.
    next_claim: AtomicU64,
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
        Ok(Self {
            tenant,
            policy_version,
            entity_version,
            policies,
            entities,
            checked_at: AtomicU64::new(0),
            next_claim: AtomicU64::new(0),
        })
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

    /// When the store read began that this content is known to be at least as new as (see the field).
    pub fn checked_at(&self) -> u64 {
        self.checked_at.load(Ordering::Acquire)
    }

    /// Records a store read, begun at `at`, that this content is at least as new as. Never moves back.
    pub fn mark_checked(&self, at: u64) {
        self.checked_at.fetch_max(at, Ordering::AcqRel);
    }

    /// Claims a background check at `now`, allowing the next one from `next`. `false` when one was
    /// claimed less than an interval ago, so at most one runs per interval however many decisions race.
    pub fn claim_recheck(&self, now: u64, next: u64) -> bool {
        let allowed = self.next_claim.load(Ordering::Acquire);
        now >= allowed && self.next_claim.compare_exchange(allowed, next, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// A snapshot of the same tenant from these halves, as fresh as this one.
    fn rebuilt(
        &self,
        policies: CompiledPolicies,
        policy_version: u64,
        entities: EntityStore,
        entity_version: u64,
    ) -> Result<Self, EntityError> {
        let snapshot = Self::new(self.tenant.clone(), policies, policy_version, entities, entity_version)?;
        snapshot.checked_at.store(self.checked_at(), Ordering::Release);
        Ok(snapshot)
    }
}

/// What a loader saw before reading the store: the removal generations that apply to its tenant. See the
/// module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadTicket {
    tenant: TenantId,
    every_tenant: u64,
    this_tenant: u64,
}

/// Removal counters, guarded by the writer lock.
#[derive(Debug, Default)]
struct Generations {
    /// Bumped by [`PolicyEngine::remove_all`].
    every_tenant: u64,
    /// Bumped by [`PolicyEngine::remove_tenant`]; one entry per tenant ever removed.
    tenants: HashMap<TenantId, u64>,
}

impl Generations {
    fn ticket(&self, tenant: &TenantId) -> LoadTicket {
        LoadTicket {
            tenant: tenant.clone(),
            every_tenant: self.every_tenant,
            this_tenant: self.tenants.get(tenant).copied().unwrap_or(0),
        }
    }
}

/// The live policy state of every tenant this process serves.
pub struct PolicyEngine {
    tenants: ArcSwap<HashMap<TenantId, Arc<Snapshot>>>,
    /// Held by writers only, so that two writes cannot both start from the same map and lose one; it also
    /// guards the removal generations that late loads are checked against.
    writer: Mutex<Generations>,
}

impl PolicyEngine {
    pub fn new() -> Self {
        Self { tenants: ArcSwap::from_pointee(HashMap::new()), writer: Mutex::new(Generations::default()) }
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
        let writer = self.lock();
        self.apply_policies(&writer, tenant, policies, version)
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
        let writer = self.lock();
        self.apply_entities(&writer, tenant, entities, version)
    }

    /// [`Self::install_policies`] for a tenant that has a snapshot; `Ok(None)`, changing nothing, for one
    /// that has none (never loaded, or removed since): its next load reads the store, which is newer.
    /// For writers, so that a write racing a removal cannot create a snapshot with half the tenant.
    pub fn replace_policies(
        &self,
        tenant: &TenantId,
        policies: CompiledPolicies,
        version: u64,
    ) -> Result<Option<Arc<Snapshot>>, EngineError> {
        let writer = self.lock();
        if self.snapshot(tenant).is_none() {
            return Ok(None);
        }
        self.apply_policies(&writer, tenant, policies, version).map(Some)
    }

    /// [`Self::install_entities`] for a tenant that has a snapshot; see [`Self::replace_policies`].
    pub fn replace_entities(
        &self,
        tenant: &TenantId,
        entities: EntityStore,
        version: u64,
    ) -> Result<Option<Arc<Snapshot>>, EngineError> {
        let writer = self.lock();
        if self.snapshot(tenant).is_none() {
            return Ok(None);
        }
        self.apply_entities(&writer, tenant, entities, version).map(Some)
    }

    /// The policy half of an install; `_writer` proves the caller holds the writer lock.
    fn apply_policies(
        &self,
        _writer: &MutexGuard<'_, Generations>,
        tenant: &TenantId,
        policies: CompiledPolicies,
        version: u64,
    ) -> Result<Arc<Snapshot>, EngineError> {
        let current = self.tenants.load_full();
        let snapshot = match current.get(tenant) {
            Some(installed) => {
                check_newer(VersionKind::Policy, installed.policy_version, version)?;
                // The entities are as fresh as before: the snapshot keeps its check time.
                installed.rebuilt(policies, version, installed.entities.clone(), installed.entity_version)?
            }
            None => {
                check_newer(VersionKind::Policy, 0, version)?;
                Snapshot::new(tenant.clone(), policies, version, EntityStore::empty(), 0)?
            }
        };
        Ok(self.publish(&current, Arc::new(snapshot)))
    }

    /// The entity half of an install; `_writer` proves the caller holds the writer lock.
    fn apply_entities(
        &self,
        _writer: &MutexGuard<'_, Generations>,
        tenant: &TenantId,
        entities: EntityStore,
        version: u64,
    ) -> Result<Arc<Snapshot>, EngineError> {
        let current = self.tenants.load_full();
        let snapshot = match current.get(tenant) {
            Some(installed) => {
                check_newer(VersionKind::Entity, installed.entity_version, version)?;
                installed.rebuilt(installed.policies.clone(), installed.policy_version, entities, version)?
            }
            None => {
                check_newer(VersionKind::Entity, 0, version)?;
                Snapshot::new(tenant.clone(), CompiledPolicies::empty(), 0, entities, version)?
            }
        };
        Ok(self.publish(&current, Arc::new(snapshot)))
    }

    /// Takes the ticket a loader must hold before it reads `tenant` from the store.
    pub fn load_ticket(&self, tenant: &TenantId) -> LoadTicket {
        self.lock().ticket(tenant)
    }

    /// Installs a snapshot read from the store, unless a removal overtook the read
    /// ([`EngineError::Superseded`]). Each half only moves forward: where the installed policies or
    /// entities are as new or newer (a write or another load got there first), they are kept. Returns what
    /// is installed afterwards.
    #[tracing::instrument(skip_all, fields(tenant = ticket.tenant.as_str()))]
    pub fn install_loaded(&self, ticket: &LoadTicket, loaded: &Arc<Snapshot>) -> Result<Arc<Snapshot>, EngineError> {
        let generations = self.lock();
        if generations.ticket(&ticket.tenant) != *ticket {
            return Err(EngineError::Superseded);
        }
        let current = self.tenants.load_full();
        let Some(installed) = current.get(&ticket.tenant) else {
            return Ok(self.publish(&current, Arc::clone(loaded)));
        };
        // Whatever is kept is at least as new as the store was when the load began.
        installed.mark_checked(loaded.checked_at());
        let snapshot = match (
            loaded.policy_version > installed.policy_version,
            loaded.entity_version > installed.entity_version,
        ) {
            (false, false) => return Ok(Arc::clone(installed)),
            (true, true) => Arc::clone(loaded),
            (true, false) => Arc::new(installed.rebuilt(
                loaded.policies.clone(),
                loaded.policy_version,
                installed.entities.clone(),
                installed.entity_version,
            )?),
            (false, true) => Arc::new(installed.rebuilt(
                installed.policies.clone(),
                installed.policy_version,
                loaded.entities.clone(),
                loaded.entity_version,
            )?),
        };
        Ok(self.publish(&current, snapshot))
    }

    /// Forgets the tenant; returns whether it had a snapshot. Decisions in flight finish on the snapshot
    /// they hold, and loads of the tenant that started before are refused. A cache keyed by versions
    /// should drop the tenant too ([`DecisionCache::remove_tenant`](crate::DecisionCache::remove_tenant)),
    /// since a re-created tenant starts its versions again.
    #[tracing::instrument(skip_all, fields(tenant = tenant.as_str()))]
    pub fn remove_tenant(&self, tenant: &TenantId) -> bool {
        let mut generations = self.lock();
        let generation = generations.tenants.entry(tenant.clone()).or_default();
        *generation = generation.wrapping_add(1);
        let current = self.tenants.load_full();
        if !current.contains_key(tenant) {
            return false;
        }
        let mut tenants = HashMap::clone(&current);
        tenants.remove(tenant);
        self.tenants.store(Arc::new(tenants));
        true
    }

    /// Forgets every tenant, refusing every load that started before; returns how many had a snapshot.
    pub fn remove_all(&self) -> usize {
        let mut generations = self.lock();
        generations.every_tenant = generations.every_tenant.wrapping_add(1);
        let removed = self.tenants.swap(Arc::new(HashMap::new()));
        removed.len()
    }

    fn lock(&self) -> MutexGuard<'_, Generations> {
        // Every critical section leaves the counters and the map consistent, so a poisoned lock is safe.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the snapshot's tenant in `current` (the map loaded under the writer lock held by the caller).
    fn publish(&self, current: &HashMap<TenantId, Arc<Snapshot>>, snapshot: Arc<Snapshot>) -> Arc<Snapshot> {
        let mut tenants = HashMap::clone(current);
        tenants.insert(snapshot.tenant.clone(), Arc::clone(&snapshot));
        self.tenants.store(Arc::new(tenants));
        tracing::debug!(
            policy_version = snapshot.policy_version,
            entity_version = snapshot.entity_version,
            "policy snapshot installed"
        );
        snapshot
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
