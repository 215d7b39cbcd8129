//! Retry delays: exponential in the attempt, capped, with jitter so that events which failed together (a
//! dependency went down) do not all come back in the same instant.

use std::hash::BuildHasher;
use std::time::Duration;

/// The delay before retrying after failed `attempt` (1-based): `base * 2^(attempt-1)`, at most `max`, of
/// which the upper half is random ("equal jitter": never less than half the nominal delay).
pub(crate) fn delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let nominal = base.saturating_mul(1 << doublings).min(max);
    let half = nominal / 2;
    half + random_below(nominal - half)
}

/// A random duration in `[0, limit)`. Std's `RandomState` is randomly keyed per instance, which is all the
/// randomness jitter needs, without a dependency for it.
fn random_below(limit: Duration) -> Duration {
    let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    Duration::from_nanos(random % nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_stay_within_jitter_bounds() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 1..=40 {
            let nominal = (base * 2u32.saturating_pow((attempt - 1).min(31))).min(max);
            let d = delay(base, max, attempt);
            assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?} not within {nominal:?}");
        }
        assert!(delay(base, max, 40) >= Duration::from_millis(2500));
        assert_eq!(delay(Duration::ZERO, max, 3), Duration::ZERO);
    }

    #[test]
    fn jitter_varies() {
        let draws: std::collections::HashSet<Duration> =
            (0..20).map(|_| delay(Duration::from_secs(1), Duration::from_secs(1), 1)).collect();
        assert!(draws.len() > 1);
    }
}
