//! Brute-force protection for client authentication (RFC 6749 §2.3.1): after a number of failures for
//! one client id within a window, further attempts for that id are refused until the window ends. Other
//! clients are not affected.

use std::collections::HashMap;
use std::sync::Mutex;

use rsp_core::{TenantId, UnixTime};

/// Bounds the memory an attacker can make the throttle use by sending random client ids.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start: UnixTime,
}

#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: u32,
    window_secs: i64,
    failures: Mutex<HashMap<(TenantId, String), Failures>>,
}

impl AuthThrottle {
    pub fn new(max_failures: u32, window_secs: i64) -> Self {
        Self { max_failures, window_secs, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry_after_secs)` while `client_id` is locked out.
    pub fn check(&self, tenant: &TenantId, client_id: &str, now: UnixTime) -> Result<(), u64> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // What every authenticated request finds while nobody is failing: no key to build.
        if map.is_empty() {
            return Ok(());
        }
        match map.get(&(tenant.clone(), client_id.to_owned())) {
            Some(f) if f.count >= self.max_failures && now.0 < f.window_start.0 + self.window_secs => {
                Err(u64::try_from(f.window_start.0 + self.window_secs - now.0).unwrap_or(1).max(1))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, tenant: &TenantId, client_id: &str, now: UnixTime) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            let window = self.window_secs;
            map.retain(|_, f| now.0 < f.window_start.0 + window);
        }
        let entry =
            map.entry((tenant.clone(), client_id.to_owned())).or_insert(Failures { count: 0, window_start: now });
        if now.0 >= entry.window_start.0 + self.window_secs {
            *entry = Failures { count: 0, window_start: now };
        }
        entry.count = entry.count.saturating_add(1);
    }

    pub fn record_success(&self, tenant: &TenantId, client_id: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return;
        }
        map.remove(&(tenant.clone(), client_id.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_one_client_after_the_limit_and_releases_it_after_the_window() {
        let throttle = AuthThrottle::new(3, 60);
        let tenant = TenantId::default_tenant();
        for _ in 0..3 {
            assert!(throttle.check(&tenant, "a", UnixTime(100)).is_ok());
            throttle.record_failure(&tenant, "a", UnixTime(100));
        }
        assert_eq!(throttle.check(&tenant, "a", UnixTime(100)), Err(60));
        assert!(throttle.check(&tenant, "b", UnixTime(100)).is_ok());
        assert!(throttle.check(&tenant, "a", UnixTime(160)).is_ok());
    }
}
