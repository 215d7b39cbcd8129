//! Brute-force protection for end-user logins (OWASP Authentication; NIST SP 800-63B §5.2.2).
//!
//! # The scheme
//! Three counters of failed logins, each forgotten after `window_secs` without a new failure:
//!
//! - **per (account, source IP)**: after `per_account_and_ip.free_failures` failures, that pair waits a
//!   delay that doubles with each further failure (60 s, 120 s, … up to 15 min by default). This stops a
//!   single guesser cold and never touches the owner logging in from anywhere else, so an attacker
//!   cannot lock a user out by failing on purpose.
//! - **per source IP** (over all accounts): the same doubling shape with a much larger allowance, against
//!   password spraying (one password tried on many accounts).
//! - **per account** (over all IPs): a global ceiling against a distributed guesser. It is set well above
//!   the pair allowance and grows slowly (linearly, capped at a few minutes), so a botnet cannot make the
//!   account unusable for long, while its guess rate stays bounded at about one per `max_delay_secs`.
//!
//! An attempt is refused if any counter holding it is waiting; a refused attempt is answered before any
//! password hashing and does not count as a failure (it would otherwise let the attacker extend the wait
//! at will). A successful login clears its pair and account counters, never the IP counter: one valid
//! account must not reset a sprayer's budget. IPv6 sources are counted by their /64, which a single host
//! usually owns whole. Memory is bounded: at the cap, expired entries and entries below their allowance
//! are dropped first.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use rsp_core::{TenantId, UnixTime};

/// Bounds the memory an attacker can make each counter map use with random usernames or addresses.
const MAX_TRACKED: usize = 100_000;

/// How one counter turns failures into a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures allowed before the first wait.
    pub free_failures: u32,
    /// The first wait.
    pub base_delay_secs: i64,
    /// No wait is longer.
    pub max_delay_secs: i64,
    /// Doubling (true) or linear (false) growth with each failure past the allowance.
    pub doubling: bool,
}

impl ThrottleRule {
    /// How long after the last failure an attempt waits, with `failures` counted.
    fn delay(&self, failures: u32) -> i64 {
        let Some(past) = failures.checked_sub(self.free_failures) else { return 0 };
        let delay = if self.doubling {
            self.base_delay_secs.saturating_mul(1_i64.checked_shl(past.min(62)).unwrap_or(i64::MAX))
        } else {
            self.base_delay_secs.saturating_mul(i64::from(past) + 1)
        };
        delay.min(self.max_delay_secs)
    }
}

/// The throttle's knobs; see the module documentation for the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginThrottleSettings {
    pub window_secs: i64,
    pub per_account_and_ip: ThrottleRule,
    pub per_ip: ThrottleRule,
    pub per_account: ThrottleRule,
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        Self {
            window_secs: 15 * 60,
            per_account_and_ip: ThrottleRule {
                free_failures: 5,
                base_delay_secs: 60,
                max_delay_secs: 15 * 60,
                doubling: true,
            },
            per_ip: ThrottleRule { free_failures: 100, base_delay_secs: 60, max_delay_secs: 60 * 60, doubling: true },
            per_account: ThrottleRule {
                free_failures: 50,
                base_delay_secs: 5,
                max_delay_secs: 5 * 60,
                doubling: false,
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: UnixTime,
}

/// One counter map with its rule.
#[derive(Debug)]
struct Counter<K> {
    rule: ThrottleRule,
    entries: Mutex<HashMap<K, Failures>>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(rule: ThrottleRule) -> Self {
        Self { rule, entries: Mutex::new(HashMap::new()) }
    }

    /// Seconds until `key` may try again (0: now).
    fn wait(&self, key: &K, now: UnixTime, window: i64) -> i64 {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(f) if now.0 < f.last.0 + window => (f.last.0 + self.rule.delay(f.count) - now.0).max(0),
            _ => 0,
        }
    }

    fn fail(&self, key: K, now: UnixTime, window: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&key) {
            let free = self.rule.free_failures;
            entries.retain(|_, f| now.0 < f.last.0 + window && f.count >= free);
        }
        let entry = entries.entry(key).or_insert(Failures { count: 0, last: now });
        if now.0 >= entry.last.0 + window {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    fn clear(&self, key: &K) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

type Account = (TenantId, String);

/// The three login counters.
#[derive(Debug)]
pub struct LoginThrottle {
    window_secs: i64,
    pairs: Counter<(Account, IpAddr)>,
    ips: Counter<IpAddr>,
    accounts: Counter<Account>,
}

impl LoginThrottle {
    pub fn new(settings: &LoginThrottleSettings) -> Self {
        Self {
            window_secs: settings.window_secs,
            pairs: Counter::new(settings.per_account_and_ip),
            ips: Counter::new(settings.per_ip),
            accounts: Counter::new(settings.per_account),
        }
    }

    /// `Err(retry_after_secs)` while an attempt for the folded `username` from `ip` must wait.
    pub fn check(&self, tenant: &TenantId, username: &str, ip: IpAddr, now: UnixTime) -> Result<(), u64> {
        let (account, ip) = ((tenant.clone(), username.to_owned()), source(ip));
        let window = self.window_secs;
        let wait = self
            .pairs
            .wait(&(account.clone(), ip), now, window)
            .max(self.ips.wait(&ip, now, window))
            .max(self.accounts.wait(&account, now, window));
        if wait > 0 { Err(u64::try_from(wait).unwrap_or(u64::MAX)) } else { Ok(()) }
    }

    pub fn record_failure(&self, tenant: &TenantId, username: &str, ip: IpAddr, now: UnixTime) {
        let (account, ip) = ((tenant.clone(), username.to_owned()), source(ip));
        self.pairs.fail((account.clone(), ip), now, self.window_secs);
        self.ips.fail(ip, now, self.window_secs);
        self.accounts.fail(account, now, self.window_secs);
    }

    pub fn record_success(&self, tenant: &TenantId, username: &str, ip: IpAddr) {
        let account = (tenant.clone(), username.to_owned());
        self.pairs.clear(&(account.clone(), source(ip)));
        self.accounts.clear(&account);
    }
}

/// The unit an address is counted by: the address itself for IPv4, its /64 for IPv6.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1_u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn doubling_and_linear_delays_grow_and_stop_at_their_cap() {
        let doubling = ThrottleRule { free_failures: 5, base_delay_secs: 60, max_delay_secs: 900, doubling: true };
        let delays: Vec<i64> = (4..=10).map(|n| doubling.delay(n)).collect();
        assert_eq!(delays, [0, 60, 120, 240, 480, 900, 900]);
        assert_eq!(doubling.delay(u32::MAX), 900);
        let linear = ThrottleRule { free_failures: 2, base_delay_secs: 5, max_delay_secs: 12, doubling: false };
        assert_eq!((1..=5).map(|n| linear.delay(n)).collect::<Vec<_>>(), [0, 5, 10, 12, 12]);
    }

    #[test]
    fn ipv6_hosts_are_counted_by_their_64_prefix() {
        assert_eq!(source(ip("2001:db8:1:2:aaaa::1")), source(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(source(ip("2001:db8:1:2::1")), source(ip("2001:db8:1:3::1")));
        assert_eq!(source(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn a_pair_waits_after_its_allowance_and_the_window_forgets_it() {
        let throttle = LoginThrottle::new(&LoginThrottleSettings::default());
        let (tenant, at) = (TenantId::default_tenant(), UnixTime(1_000));
        for _ in 0..5 {
            assert!(throttle.check(&tenant, "bob", ip("192.0.2.1"), at).is_ok());
            throttle.record_failure(&tenant, "bob", ip("192.0.2.1"), at);
        }
        assert_eq!(throttle.check(&tenant, "bob", ip("192.0.2.1"), at), Err(60));
        assert!(throttle.check(&tenant, "bob", ip("192.0.2.1"), UnixTime(1_060)).is_ok(), "the wait ends");
        assert!(throttle.check(&tenant, "bob", ip("198.51.100.1"), at).is_ok(), "other sources are not locked");
        assert!(throttle.check(&tenant, "alice", ip("192.0.2.1"), at).is_ok(), "other accounts are not locked");
        throttle.record_failure(&tenant, "bob", ip("192.0.2.1"), UnixTime(1_060));
        assert_eq!(throttle.check(&tenant, "bob", ip("192.0.2.1"), UnixTime(1_060)), Err(120), "the wait doubles");
        let later = UnixTime(1_060 + 15 * 60);
        throttle.record_failure(&tenant, "bob", ip("192.0.2.1"), later);
        assert!(throttle.check(&tenant, "bob", ip("192.0.2.1"), later).is_ok(), "a quiet window starts over");
    }
}
