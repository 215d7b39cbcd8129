//! [`Snapshots`]: the tenants' installed snapshots and their decisions, loaded from the store, dropped on
//! invalidation notices and re-checked against the store when no notice comes.
//!
//! A snapshot records when the store read it reflects began ([`Snapshot::checked_at`]). With `R` the
//! `snapshot_recheck` interval, a decision finding a snapshot of age
//! - under `R` uses it;
//! - from `R` to `2R` uses it, and the first such decision (one compare-and-swap, so one per interval
//!   however many race) re-reads the store in the background;
//! - of `2R` or more (the tenant was quiet, or the background check failed) re-reads the store before
//!   answering; concurrent decisions of the tenant wait for that one read rather than each making their
//!   own. So no decision runs on a state older than `2R` plus one store read while the store answers.
//!
//! The re-read is `latest_policy_set` plus `entities` (the store port has no cheaper version query);
//! halves whose versions did not move are reused rather than compiled again. Versions that went *down*
//! mean the tenant was removed or re-created behind this replica's back: the tenant is forgotten and the
//! next decision loads it as new (or finds it unknown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rsp_core::cache::{CacheKind, Invalidation};
use rsp_core::policy::{PolicySetVersion, StoredEntity};
use rsp_core::{Store, TenantId};
use serde_json::Value;
use tokio::time::Instant;

use super::{PolicyServiceError, document_of};
use crate::{CompiledPolicies, DecisionCache, EngineError, EntityStore, PolicyEngine, Snapshot, validate};

/// The default of [`crate::PolicyService::with_snapshot_recheck`].
pub const DEFAULT_SNAPSHOT_RECHECK: Duration = Duration::from_secs(2);

/// What a decision should do with the installed snapshot it found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Younger than the interval, or its background check is already claimed.
    Fresh,
    /// Use it, and check it in the background (this caller claimed the check).
    Due,
    /// Two intervals old or more: check before answering ([`Snapshots::recheck_expired`]).
    Expired,
}

/// The service's in-memory policy state. Shared (`Arc`) with the background checks it spawns.
pub(super) struct Snapshots {
    store: Arc<dyn Store>,
    engine: PolicyEngine,
    decisions: DecisionCache,
    /// `snapshot_recheck` in milliseconds.
    recheck_ms: AtomicU64,
    /// The zero of the monotonic clock that check times are written in. Tokio's clock, so a test may
    /// pause it; the protocol [`Clock`](rsp_core::Clock) counts whole seconds, too coarse for this.
    origin: Instant,
    /// Per tenant, held while an expired snapshot is re-read, so a burst of decisions after a quiet spell
    /// makes one store read. One entry per tenant ever expired.
    expired: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
}

/// One read of a tenant from the store.
struct Stored {
    policies: Option<PolicySetVersion>,
    entity_version: u64,
    entities: Vec<StoredEntity>,
}

impl Stored {
    async fn read(store: &dyn Store, tenant: &TenantId) -> Result<Self, PolicyServiceError> {
        let policies = store.latest_policy_set(tenant).await?;
        let (entity_version, entities) = store.entities(tenant).await?;
        Ok(Self { policies, entity_version, entities })
    }

    fn policy_version(&self) -> u64 {
        self.policies.as_ref().map_or(0, |v| v.version)
    }

    /// The snapshot this read describes, reusing the halves of `current` whose versions it shares.
    fn build(self, tenant: &TenantId, current: Option<&Snapshot>) -> Result<Snapshot, PolicyServiceError> {
        let policy_version = self.policy_version();
        let policies = match (current, &self.policies) {
            (Some(current), _) if current.policy_version() == policy_version => current.policies().clone(),
            (_, Some(version)) => validate(&document_of(&version.content)?)
                .map_err(|d| PolicyServiceError::Internal(format!("stored policy set no longer compiles: {d:?}")))?,
            (_, None) => CompiledPolicies::empty(),
        };
        let entities = match current {
            Some(current) if current.entity_version() == self.entity_version => current.entities().clone(),
            _ => {
                let json = self
                    .entities
                    .iter()
                    .map(|row| serde_json::from_str::<Value>(&row.json))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| PolicyServiceError::Internal(format!("stored entity: {e}")))?;
                EntityStore::from_json(Value::Array(json), policies.schema())
                    .map_err(|e| PolicyServiceError::Internal(format!("stored entities: {e}")))?
            }
        };
        Snapshot::new(tenant.clone(), policies, policy_version, entities, self.entity_version)
            .map_err(|e| PolicyServiceError::Internal(e.to_string()))
    }
}

impl Snapshots {
    pub(super) fn new(store: Arc<dyn Store>, decision_capacity: usize) -> Self {
        Self {
            store,
            engine: PolicyEngine::new(),
            decisions: DecisionCache::new(decision_capacity),
            recheck_ms: AtomicU64::new(millis(DEFAULT_SNAPSHOT_RECHECK)),
            origin: Instant::now(),
            expired: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    pub(super) fn decisions(&self) -> &DecisionCache {
        &self.decisions
    }

    pub(super) fn set_recheck(&self, interval: Duration) {
        self.recheck_ms.store(millis(interval), Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        millis(self.origin.elapsed())
    }

    /// Classifies `snapshot` for a decision, claiming its background check when one is due. Costs a
    /// clock read and two atomic loads when nothing is due.
    pub(super) fn freshness(&self, snapshot: &Snapshot) -> Freshness {
        let now = self.now();
        let interval = self.recheck_ms.load(Ordering::Relaxed);
        let age = now.saturating_sub(snapshot.checked_at());
        if age < interval {
            Freshness::Fresh
        } else if age < interval.saturating_mul(2) {
            if snapshot.claim_recheck(now, now.saturating_add(interval)) { Freshness::Due } else { Freshness::Fresh }
        } else {
            Freshness::Expired
        }
    }

    /// Re-reads an expired tenant before answering, once for all the decisions waiting on it; returns what
    /// is installed afterwards (`None` when the check dropped the tenant: load it as new).
    pub(super) async fn recheck_expired(
        &self,
        snapshot: Arc<Snapshot>,
    ) -> Result<Option<Arc<Snapshot>>, PolicyServiceError> {
        let tenant = snapshot.tenant();
        let gate =
            Arc::clone(self.expired.lock().unwrap_or_else(PoisonError::into_inner).entry(tenant.clone()).or_default());
        let _gate = gate.lock().await;
        let Some(installed) = self.engine.snapshot(tenant) else {
            return Ok(None);
        };
        // Another decision may have re-read it while this one waited.
        if self.freshness(&installed) != Freshness::Expired {
            return Ok(Some(installed));
        }
        self.recheck(&installed).await?;
        Ok(self.engine.snapshot(tenant))
    }

    /// Reads the tenant from the store and installs it; a load that an invalidation overtook still
    /// answers its own caller, but is not installed.
    pub(super) async fn load(&self, tenant: &TenantId) -> Result<Arc<Snapshot>, PolicyServiceError> {
        let ticket = self.engine.load_ticket(tenant);
        let read_at = self.now();
        let loaded = Stored::read(self.store.as_ref(), tenant).await?.build(tenant, None)?;
        loaded.mark_checked(read_at);
        let loaded = Arc::new(loaded);
        match self.engine.install_loaded(&ticket, &loaded) {
            Ok(installed) => Ok(installed),
            Err(EngineError::Superseded) => Ok(loaded),
            Err(error) => Err(PolicyServiceError::Internal(error.to_string())),
        }
    }

    /// Checks `current` against the store and installs what moved (see the module documentation).
    pub(super) async fn recheck(&self, current: &Snapshot) -> Result<(), PolicyServiceError> {
        let tenant = current.tenant();
        let ticket = self.engine.load_ticket(tenant);
        let read_at = self.now();
        let stored = Stored::read(self.store.as_ref(), tenant).await?;
        let versions = (stored.policy_version(), stored.entity_version);
        if versions.0 < current.policy_version() || versions.1 < current.entity_version() {
            tracing::info!(tenant = %tenant, "stored policy versions went back: the tenant was re-created; reloading");
            self.forget(tenant);
            return Ok(());
        }
        if versions == (current.policy_version(), current.entity_version()) {
            current.mark_checked(read_at);
            return Ok(());
        }
        let loaded = stored.build(tenant, Some(current))?;
        loaded.mark_checked(read_at);
        match self.engine.install_loaded(&ticket, &Arc::new(loaded)) {
            Ok(_) | Err(EngineError::Superseded) => Ok(()),
            Err(error) => Err(PolicyServiceError::Internal(error.to_string())),
        }
    }

    /// [`Self::recheck`] on a task of its own, so the decision that found the snapshot due is not held up.
    pub(super) fn recheck_in_background(self: &Arc<Self>, snapshot: Arc<Snapshot>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Not on a tokio runtime (no async caller does this): the next decision past due retries.
            return;
        };
        let snapshots = Arc::clone(self);
        runtime.spawn(async move {
            if let Err(error) = snapshots.recheck(&snapshot).await {
                tracing::warn!(tenant = %snapshot.tenant(), %error, "policy snapshot recheck failed; retrying later");
            }
        });
    }

    /// Drops the tenant's snapshot and decisions; loads of it that are under way will not be installed.
    pub(super) fn forget(&self, tenant: &TenantId) {
        self.engine.remove_tenant(tenant);
        self.decisions.remove_tenant(tenant);
    }

    pub(super) fn forget_all(&self) {
        let tenants = self.engine.remove_all();
        self.decisions.clear();
        tracing::debug!(tenants, "every policy snapshot dropped");
    }

    /// Applies one invalidation heard on the cache port: a [`CacheKind::PolicySnapshot`] one naming a
    /// tenant (key `acme`, or prefix `acme/`) drops that tenant; any other of that kind, and
    /// [`Invalidation::All`] (also what a lagging listener hears), drop every tenant. Idempotent, as the
    /// port requires.
    pub(super) fn apply(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::All => self.forget_all(),
            Invalidation::Key { kind: CacheKind::PolicySnapshot, key } => {
                // A key that is no tenant id names no snapshot.
                if let Ok(tenant) = TenantId::parse(key.strip_suffix('/').unwrap_or(key)) {
                    self.forget(&tenant);
                }
            }
            Invalidation::Prefix { kind: CacheKind::PolicySnapshot, prefix } => {
                match prefix.strip_suffix('/').map(TenantId::parse) {
                    Some(Ok(tenant)) => self.forget(&tenant),
                    _ => self.forget_all(),
                }
            }
            Invalidation::Kind { kind: CacheKind::PolicySnapshot } => self.forget_all(),
            Invalidation::Key { .. } | Invalidation::Prefix { .. } | Invalidation::Kind { .. } => {}
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
