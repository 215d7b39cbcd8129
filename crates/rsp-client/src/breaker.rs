//! A circuit breaker: after repeated failures the platform is not called at all for a while, so a down
//! policy service costs callers a mutex lock instead of a timeout each, and the service is not hammered
//! while it recovers.
//!
//! Pure logic: every method takes `now`, so tests drive time by hand and never sleep.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics;

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before one probe is let through.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failure_threshold: 3, open_for: Duration::from_secs(15) }
    }
}

/// The breaker's state, as exposed by `state()` and the `rsp_client_breaker_state` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; failures are counted.
    Closed = 0,
    /// Calls fail at once, without I/O.
    Open = 1,
    /// One probe call is in flight; its outcome closes or reopens the breaker.
    HalfOpen = 2,
}

impl BreakerState {
    fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Leave to make one call, returned by [`CircuitBreaker::try_acquire`] and handed back with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// An ordinary call while closed.
    Normal,
    /// The half-open probe; the number tells a late answer from an earlier probe apart from the current.
    Probe(u64),
}

/// The call was not admitted because the breaker is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    /// When the breaker last opened (state `Open`) or the current probe started (state `HalfOpen`).
    since: Instant,
    probe: u64,
}

/// The breaker. Cheap to consult: one uncontended mutex, no allocation.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        metrics::breaker_state(BreakerState::Closed as u8);
        let inner = Inner { state: BreakerState::Closed, consecutive_failures: 0, since: now, probe: 0 };
        Self {
            config: BreakerConfig { failure_threshold: config.failure_threshold.max(1), ..config },
            inner: inner.into(),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Whether a call made now would be refused. Used before queueing a call for a batch, so callers do
    /// not wait for a flush only to be refused then; it changes nothing.
    pub fn rejects(&self, now: Instant) -> bool {
        let inner = self.lock();
        match inner.state {
            BreakerState::Closed => false,
            BreakerState::Open | BreakerState::HalfOpen => !self.period_over(&inner, now),
        }
    }

    /// Admits a call, or refuses it while open. After the open period the first caller becomes the probe.
    /// A probe that never reports (its caller was cancelled) is replaced after another open period, so
    /// the breaker cannot stay half-open forever.
    pub fn try_acquire(&self, now: Instant) -> Result<Admission, Rejected> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(Admission::Normal),
            BreakerState::Open | BreakerState::HalfOpen if self.period_over(&inner, now) => {
                inner.probe = inner.probe.wrapping_add(1);
                inner.since = now;
                Self::transition(&mut inner, BreakerState::HalfOpen);
                Ok(Admission::Probe(inner.probe))
            }
            BreakerState::Open | BreakerState::HalfOpen => Err(Rejected),
        }
    }

    /// Reports a call's outcome. `failed` should be true only for errors that say the platform is
    /// unhealthy (see [`crate::ClientError::counts_as_failure`]).
    pub fn record(&self, admission: Admission, failed: bool, now: Instant) {
        let mut inner = self.lock();
        match (inner.state, admission) {
            (BreakerState::Closed, Admission::Normal) if failed => {
                inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
                if inner.consecutive_failures >= self.config.failure_threshold {
                    inner.since = now;
                    Self::transition(&mut inner, BreakerState::Open);
                }
            }
            (BreakerState::Closed, Admission::Normal) => inner.consecutive_failures = 0,
            (BreakerState::HalfOpen, Admission::Probe(probe)) if probe == inner.probe => {
                inner.since = now;
                inner.consecutive_failures = 0;
                Self::transition(&mut inner, if failed { BreakerState::Open } else { BreakerState::Closed });
            }
            // A call admitted before the breaker opened, or a superseded probe: its news is stale.
            _ => {}
        }
    }

    fn period_over(&self, inner: &Inner, now: Instant) -> bool {
        now.saturating_duration_since(inner.since) >= self.config.open_for
    }

    fn transition(inner: &mut Inner, to: BreakerState) {
        if inner.state != to {
            tracing::info!(from = inner.state.label(), to = to.label(), "circuit breaker state change");
            inner.state = to;
            metrics::breaker_state(to as u8);
            metrics::breaker_transition(to.label());
        }
    }

    /// Every method leaves the state consistent before anything could panic, so a poisoned lock is safe
    /// to reuse; refusing all calls because of it would turn a bug into an outage.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
