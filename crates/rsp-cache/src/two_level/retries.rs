//! Invalidation work left for later: L2 steps that failed because Redis was unreachable (replayed once it
//! answers, so Redis never keeps serving an entry whose invalidation it missed), and the delayed second
//! pass of prefix, kind and global invalidations (see [`super::TwoLevelCache`]).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use rsp_core::cache::Invalidation;
use tokio::time::Instant;

/// Past this many waiting invalidations, they are replaced by one [`Invalidation::All`].
const MAX_WAITING: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct Retries {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failed: VecDeque<Invalidation>,
    /// Too many failed ones were dropped: the replay must drop everything instead.
    overflowed: bool,
    second_passes: VecDeque<(Instant, Invalidation)>,
}

/// What is due now.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Due {
    /// L2 steps to replay: this replica's L1 already applied them.
    pub(super) failed: Vec<Invalidation>,
    /// Invalidations to apply again, in L1 and L2.
    pub(super) second_passes: Vec<Invalidation>,
}

impl Retries {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent at every step, so a panic elsewhere does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn failed(&self, invalidation: Invalidation) {
        let mut state = self.state();
        if state.overflowed || state.failed.contains(&invalidation) {
            return;
        }
        if state.failed.len() >= MAX_WAITING {
            state.failed.clear();
            state.overflowed = true;
            return;
        }
        state.failed.push_back(invalidation);
    }

    pub(super) fn second_pass(&self, at: Instant, invalidation: Invalidation) {
        let mut state = self.state();
        if state.second_passes.iter().any(|(_, waiting)| *waiting == invalidation) {
            return;
        }
        if state.second_passes.len() >= MAX_WAITING {
            state.second_passes.clear();
            state.second_passes.push_back((at, Invalidation::All));
            return;
        }
        state.second_passes.push_back((at, invalidation));
    }

    pub(super) fn take_due(&self, now: Instant) -> Due {
        let mut state = self.state();
        let failed = if std::mem::take(&mut state.overflowed) {
            state.failed.clear();
            vec![Invalidation::All]
        } else {
            state.failed.drain(..).collect()
        };
        let mut second_passes = Vec::new();
        while state.second_passes.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, invalidation)) = state.second_passes.pop_front() {
                second_passes.push(invalidation);
            }
        }
        Due { failed, second_passes }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rsp_core::cache::CacheKind;

    use super::*;

    #[test]
    fn failed_steps_are_replayed_once_and_collapse_when_too_many() {
        let retries = Retries::default();
        let key = Invalidation::key(CacheKind::Client, "a/b");
        retries.failed(key.clone());
        retries.failed(key.clone());
        let now = Instant::now();
        assert_eq!(retries.take_due(now), Due { failed: vec![key], second_passes: vec![] });
        assert_eq!(retries.take_due(now), Due::default());
        for n in 0..=MAX_WAITING {
            retries.failed(Invalidation::key(CacheKind::Client, format!("k{n}")));
        }
        assert_eq!(retries.take_due(now).failed, vec![Invalidation::All]);
    }

    #[test]
    fn second_passes_wait_for_their_time() {
        let retries = Retries::default();
        let now = Instant::now();
        let tenant = Invalidation::prefix(CacheKind::Client, "acme/");
        retries.second_pass(now + Duration::from_secs(5), tenant.clone());
        retries.second_pass(now + Duration::from_secs(6), tenant.clone());
        assert!(retries.take_due(now).second_passes.is_empty());
        assert_eq!(retries.take_due(now + Duration::from_secs(5)).second_passes, vec![tenant]);
        assert!(retries.take_due(now + Duration::from_secs(60)).second_passes.is_empty());
    }
}
