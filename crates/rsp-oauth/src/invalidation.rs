//! Applies the cache port's invalidation notices to what this replica keeps outside the cache: the parsed
//! signing key sets ([`crate::keyring`]) and the verified bearer tokens ([`crate::verified`]). Entries of
//! the cache itself (clients, revocations) are dropped by the cache adapter; this listener exists for the
//! structures that must never leave the process.
//!
//! | notice | effect |
//! |---|---|
//! | `SigningKeys` (key = tenant id, prefix, kind) | the named tenants' key sets are parsed again on next use |
//! | `Revocation` or `VerifiedToken`, any scope | every verified token is verified again on next use |
//! | `All`, or a lagged receiver | both of the above |

use std::sync::{Arc, Weak};

use rsp_core::cache::{CacheKind, Invalidation, InvalidationNotice};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AuthService;

impl AuthService {
    /// Starts the task that applies invalidation notices (local and from other replicas) to this service's
    /// in-process structures. A server must call it once, inside a tokio runtime, after
    /// [`AuthService::with_cache`]; without it a rotation or revocation made on another replica is seen
    /// here only after the key ring's 30 s reload, and revoked tokens stay in the verified-token cache
    /// until they expire. The task holds only a weak reference and ends when the service is dropped.
    pub fn spawn_invalidation_listener(self: &Arc<Self>) -> JoinHandle<()> {
        let notices = self.cache.subscribe();
        let dropped = self.alive.subscribe();
        tokio::spawn(listen(Arc::downgrade(self), notices, dropped))
    }

    /// Applies one notice. Idempotent: a notice heard twice costs only a reload.
    pub fn apply_invalidation(&self, invalidation: &Invalidation) {
        if matches!(invalidation.kind(), None | Some(CacheKind::Revocation | CacheKind::VerifiedToken)) {
            self.verified.clear();
        }
        self.keys.apply(invalidation);
    }
}

/// The listener's loop. `dropped` never receives a value: its sender lives in the service, so it closes
/// exactly when the service is dropped.
async fn listen(
    service: Weak<AuthService>,
    mut notices: Receiver<InvalidationNotice>,
    mut dropped: watch::Receiver<()>,
) {
    loop {
        let invalidation = tokio::select! {
            received = notices.recv() => match received {
                Ok(notice) => notice.invalidation,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "invalidation notices missed; dropping every in-process key set and verified token");
                    Invalidation::All
                }
                Err(RecvError::Closed) => return,
            },
            _ = dropped.changed() => return,
        };
        let Some(service) = service.upgrade() else { return };
        service.apply_invalidation(&invalidation);
    }
}
