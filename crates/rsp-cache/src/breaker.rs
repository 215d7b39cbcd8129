//! "Redis is down, try again in a second": after a failed call, every call skips Redis at once until
//! `retry_after` has passed; then a single call probes it, and its outcome closes or re-opens the breaker.
//! Without it, each request would wait for its own timeout while Redis is gone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Breaker {
    started: Instant,
    retry_after_ms: u64,
    /// Milliseconds since `started` before which calls are skipped; 0 while closed.
    open_until_ms: AtomicU64,
    /// Whether the last call that went through succeeded, to log and count only the transitions.
    up: AtomicBool,
}

impl Breaker {
    pub(crate) fn new(retry_after: Duration) -> Self {
        Self {
            started: Instant::now(),
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX).max(1),
            open_until_ms: AtomicU64::new(0),
            up: AtomicBool::new(true),
        }
    }

    fn now_ms(&self) -> u64 {
        // +1 so that a deadline is never 0, the "closed" marker.
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(1)
    }

    /// Whether a call may go to Redis now. When the breaker is open and its delay has passed, exactly one
    /// caller wins the probe; the others keep skipping for another `retry_after`.
    pub(crate) fn allow(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= until
            && self
                .open_until_ms
                .compare_exchange(until, now.saturating_add(self.retry_after_ms), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Records a success; `true` when it ends an outage.
    pub(crate) fn succeeded(&self) -> bool {
        self.open_until_ms.store(0, Ordering::Release);
        !self.up.swap(true, Ordering::AcqRel)
    }

    /// Records a failure and opens the breaker; `true` when it starts an outage.
    pub(crate) fn failed(&self) -> bool {
        self.open_until_ms.store(self.now_ms().saturating_add(self.retry_after_ms), Ordering::Release);
        self.up.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failure_skips_redis_until_one_probe_may_go() {
        let breaker = Breaker::new(Duration::from_secs(1));
        assert!(breaker.allow());
        assert!(breaker.failed(), "the first failure starts an outage");
        assert!(!breaker.failed(), "a second one does not");
        assert!(!breaker.allow());
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(breaker.allow(), "one probe after the delay");
        assert!(!breaker.allow(), "and only one");
        assert!(breaker.succeeded(), "its success ends the outage");
        assert!(breaker.allow());
        assert!(!breaker.succeeded());
        assert!(breaker.is_up());
    }
}
