//! Concurrent misses of one key, coalesced. The first lookup that misses leads: its ticket carries a
//! [`FillLease`] and its caller loads. Lookups that miss while it does wait until that ticket is gone
//! (filled, or dropped by a loader that failed), then read L1 again. So a hot key that expires or is
//! invalidated costs the database one load per replica, not one per request in flight.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rsp_core::cache::{CacheKind, FillLease};
use tokio::sync::Notify;

/// The longest a lookup waits for another's load before loading itself: far longer than a load from a
/// healthy database takes, and short enough that a stuck one does not hold requests back for long.
const WAIT_AT_MOST: Duration = Duration::from_secs(1);

type Loads = Mutex<HashMap<(CacheKind, String), Arc<Notify>>>;

/// The keys being loaded now, each with what its waiters wait on.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    loads: Arc<Loads>,
}

/// What a lookup that missed does next.
pub(crate) enum Turn {
    /// Load the key, keeping the lease on the ticket until the fill.
    Lead(FillLease),
    /// Another lookup's load of the key ended (or took too long): read again, and on a miss load without
    /// waiting a second time.
    Waited,
}

impl InFlight {
    pub(crate) async fn lead_or_wait(&self, kind: CacheKind, key: &str) -> Turn {
        let id = (kind, key.to_owned());
        let notify = {
            let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
            match loads.get(&id) {
                Some(notify) => Arc::clone(notify),
                None => {
                    let notify = Arc::new(Notify::new());
                    loads.insert(id.clone(), Arc::clone(&notify));
                    let release = Release { loads: Arc::clone(&self.loads), id, notify };
                    return Turn::Lead(FillLease::new(release));
                }
            }
        };
        let mut ended = pin!(notify.notified());
        // Registered before looking again, so a release between the look and the wait is not missed.
        ended.as_mut().enable();
        let still_loading = self
            .loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .is_some_and(|current| Arc::ptr_eq(current, &notify));
        if still_loading {
            let _ = tokio::time::timeout(WAIT_AT_MOST, ended).await;
        }
        Turn::Waited
    }

    #[cfg(test)]
    fn loading(&self) -> usize {
        self.loads.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Inside the leader's [`FillLease`]: when the last copy of its ticket goes, the key is no longer in
/// flight and its waiters wake.
struct Release {
    loads: Arc<Loads>,
    id: (CacheKind, String),
    notify: Arc<Notify>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
        if loads.get(&self.id).is_some_and(|current| Arc::ptr_eq(current, &self.notify)) {
            loads.remove(&self.id);
        }
        drop(loads);
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_miss_leads_and_the_others_wait_until_its_lease_is_gone() {
        let in_flight = Arc::new(InFlight::default());
        let Turn::Lead(lease) = in_flight.lead_or_wait(CacheKind::Client, "acme/c1").await else {
            panic!("the first miss must lead")
        };
        let Turn::Lead(_other_key) = in_flight.lead_or_wait(CacheKind::Client, "acme/c2").await else {
            panic!("another key has its own leader")
        };
        let waiting = tokio::spawn({
            let in_flight = Arc::clone(&in_flight);
            async move { matches!(in_flight.lead_or_wait(CacheKind::Client, "acme/c1").await, Turn::Waited) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a second miss waits while the first loads");
        let copy = lease.clone();
        drop(lease);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a copy of the ticket still holds the lease");
        drop(copy);
        assert!(tokio::time::timeout(WAIT_AT_MOST / 2, waiting).await.unwrap().unwrap());
        assert_eq!(in_flight.loading(), 1, "only acme/c2 is still in flight");
    }

    #[tokio::test(start_paused = true)]
    async fn a_load_that_never_ends_holds_the_others_back_at_most_the_bound() {
        let in_flight = InFlight::default();
        let Turn::Lead(_stuck) = in_flight.lead_or_wait(CacheKind::Revocation, "acme/j1").await else { panic!() };
        let started = tokio::time::Instant::now();
        assert!(matches!(in_flight.lead_or_wait(CacheKind::Revocation, "acme/j1").await, Turn::Waited));
        assert_eq!(started.elapsed(), WAIT_AT_MOST);
    }
}
