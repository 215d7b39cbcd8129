//! Brute-force protection for end-user logins (OWASP Authentication; NIST SP 800-63B §5.2.2).
//!
//! # The scheme
//! Three counters of failed logins, each forgotten after `window_secs` without a new failure:
//!
//! - **per (account, source IP)**: after `per_account_and_ip.free_failures` failures, that pair waits a
//!   delay that doubles with each further failure (60 s, 120 s, … up to 15 min by default). This stops a
//!   single guesser cold and never touches the owner logging in from anywhere else, so an attacker
//!   cannot lock a user out by failing on purpose.
//! - **per source IP** (over all accounts of the tenant): the same doubling shape with a much larger allowance, against
//!   password spraying (one password tried on many accounts).
//! - **per account** (over all IPs): a global ceiling against a distributed guesser. It is set well above
//!   the pair allowance and grows slowly (linearly, capped at a few minutes), so a botnet cannot make the
//!   account unusable for long, while its guess rate stays bounded at about one per `max_delay_secs`.
//!
//! An attempt is refused if any counter holding it is waiting; a refused attempt is answered before any
//! password hashing and does not count as a failure (it would otherwise let the attacker extend the wait
//! at will). A successful login clears its pair and account counters, never the IP counter: one valid
//! account must not reset a sprayer's budget. IPv6 sources are counted by their /64, which a single host
//! usually owns whole.
//!
//! # Where the counters live
//! In the store ([`LoginFailureStore`]), one upsert per counter, so every replica counts every failure:
//! an attacker gains nothing by spreading guesses over replicas. Each replica also remembers the waits it
//! has seen, so refused attempts (the bulk of a storm) cost no database round trip; that memory is
//! bounded and only ever refuses what the store would refuse too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use rsp_core::ports::LoginFailureStore;
use rsp_core::{StoreError, TenantId, UnixTime};

/// Bounds the memory an attacker can make the remembered waits use with random usernames or addresses.
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
    pub(crate) fn delay(&self, failures: u32) -> i64 {
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

/// The three counters of one attempt, in the order of [`LoginThrottle::rules`]: the pair, the source, the
/// account. The address comes first in the pair so the first `/` ends it (no address contains one).
fn counter_keys(username: &str, ip: IpAddr) -> [String; 3] {
    let ip = source(ip);
    [format!("pair:{ip}/{username}"), format!("ip:{ip}"), format!("account:{username}")]
}

/// The login counters. They live in the store, so every replica sees every failure; this replica also
/// remembers which counters it knows to be waiting, so a storm of refused attempts is answered from
/// memory without a database round trip (the store stays authoritative: a counter not remembered here is
/// looked up).
#[derive(Debug)]
pub struct LoginThrottle {
    settings: LoginThrottleSettings,
    waiting: Mutex<HashMap<(TenantId, String), UnixTime>>,
}

impl LoginThrottle {
    pub fn new(settings: &LoginThrottleSettings) -> Self {
        Self { settings: settings.clone(), waiting: Mutex::new(HashMap::new()) }
    }

    /// How long a counter stays live after its last failure.
    pub fn window_secs(&self) -> i64 {
        self.settings.window_secs
    }

    fn rules(&self) -> [ThrottleRule; 3] {
        [self.settings.per_account_and_ip, self.settings.per_ip, self.settings.per_account]
    }

    fn since(&self, now: UnixTime) -> UnixTime {
        UnixTime(now.0.saturating_sub(self.settings.window_secs))
    }

    /// `Some(retry_after_secs)` while an attempt for the folded `username` from `ip` must wait.
    pub async fn check(
        &self,
        store: &dyn LoginFailureStore,
        tenant: &TenantId,
        username: &str,
        ip: IpAddr,
        now: UnixTime,
    ) -> Result<Option<u64>, StoreError> {
        let keys = counter_keys(username, ip);
        if let Some(wait) = self.remembered_wait(tenant, &keys, now) {
            return Ok(Some(wait));
        }
        let names: Vec<&str> = keys.iter().map(String::as_str).collect();
        let live = store.login_failures(tenant, &names, self.since(now)).await?;
        let mut longest = 0;
        for (key, rule) in keys.iter().zip(self.rules()) {
            let Some((_, failures, last)) = live.iter().find(|(found, _, _)| found == key) else { continue };
            // A counter is forgotten at the end of its window, so no wait outlasts it.
            let until = last.0 + rule.delay(*failures).min(self.settings.window_secs);
            if until > now.0 {
                self.remember(tenant, key, UnixTime(until), now);
                longest = longest.max(until - now.0);
            }
        }
        Ok((longest > 0).then(|| u64::try_from(longest).unwrap_or(u64::MAX)))
    }

    pub async fn record_failure(
        &self,
        store: &dyn LoginFailureStore,
        tenant: &TenantId,
        username: &str,
        ip: IpAddr,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let keys = counter_keys(username, ip);
        let names: Vec<&str> = keys.iter().map(String::as_str).collect();
        let counts = store.record_login_failure(tenant, &names, now, self.since(now)).await?;
        for ((key, rule), failures) in keys.iter().zip(self.rules()).zip(counts) {
            let delay = rule.delay(failures).min(self.settings.window_secs);
            if delay > 0 {
                self.remember(tenant, key, UnixTime(now.0 + delay), now);
            }
        }
        Ok(())
    }

    /// Clears the pair and account counters, never the source's: one valid account must not reset a
    /// sprayer's budget.
    pub async fn record_success(
        &self,
        store: &dyn LoginFailureStore,
        tenant: &TenantId,
        username: &str,
        ip: IpAddr,
    ) -> Result<(), StoreError> {
        let [pair, _, account] = counter_keys(username, ip);
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.remove(&(tenant.clone(), pair.clone()));
            waiting.remove(&(tenant.clone(), account.clone()));
        }
        store.clear_login_failures(tenant, &[pair.as_str(), account.as_str()]).await
    }

    fn remembered_wait(&self, tenant: &TenantId, keys: &[String; 3], now: UnixTime) -> Option<u64> {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let longest = keys
            .iter()
            .filter_map(|key| waiting.get(&(tenant.clone(), key.clone())))
            .map(|until| until.0 - now.0)
            .max()
            .filter(|wait| *wait > 0)?;
        u64::try_from(longest).ok()
    }

    /// Bounded: at the cap, passed waits are dropped first; if none has passed, nothing more is
    /// remembered (the store still answers).
    fn remember(&self, tenant: &TenantId, key: &str, until: UnixTime, now: UnixTime) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.len() >= MAX_TRACKED {
            waiting.retain(|_, until| until.0 > now.0);
            if waiting.len() >= MAX_TRACKED {
                return;
            }
        }
        let entry = waiting.entry((tenant.clone(), key.to_owned())).or_insert(until);
        *entry = UnixTime(entry.0.max(until.0));
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

    async fn store() -> rsp_store::SqliteStore {
        rsp_store::SqliteStore::in_memory().await.unwrap()
    }

    #[tokio::test]
    async fn a_pair_waits_after_its_allowance_and_the_window_forgets_it() {
        let (store, throttle) = (store().await, LoginThrottle::new(&LoginThrottleSettings::default()));
        let (tenant, at) = (TenantId::default_tenant(), UnixTime(1_000));
        let check = |user: &'static str, from: &'static str, at: i64| {
            let (store, throttle, tenant) = (&store, &throttle, &tenant);
            async move { throttle.check(store, tenant, user, ip(from), UnixTime(at)).await.unwrap() }
        };
        for _ in 0..5 {
            assert_eq!(check("bob", "192.0.2.1", 1_000).await, None);
            throttle.record_failure(&store, &tenant, "bob", ip("192.0.2.1"), at).await.unwrap();
        }
        assert_eq!(check("bob", "192.0.2.1", 1_000).await, Some(60));
        assert_eq!(check("bob", "192.0.2.1", 1_060).await, None, "the wait ends");
        assert_eq!(check("bob", "198.51.100.1", 1_000).await, None, "other sources are not locked");
        assert_eq!(check("alice", "192.0.2.1", 1_000).await, None, "other accounts are not locked");
        throttle.record_failure(&store, &tenant, "bob", ip("192.0.2.1"), UnixTime(1_060)).await.unwrap();
        assert_eq!(check("bob", "192.0.2.1", 1_060).await, Some(120), "the wait doubles");
        let later = UnixTime(1_060 + 15 * 60);
        throttle.record_failure(&store, &tenant, "bob", ip("192.0.2.1"), later).await.unwrap();
        assert_eq!(check("bob", "192.0.2.1", later.0).await, None, "a quiet window starts over");
    }

    #[tokio::test]
    async fn replicas_share_the_counters_and_a_success_clears_them_for_all() {
        let store = store().await;
        let settings = LoginThrottleSettings::default();
        let (first, second) = (LoginThrottle::new(&settings), LoginThrottle::new(&settings));
        let (tenant, at, guesser) = (TenantId::default_tenant(), UnixTime(1_000), ip("192.0.2.1"));
        for n in 0..5 {
            let replica = if n % 2 == 0 { &first } else { &second };
            replica.record_failure(&store, &tenant, "bob", guesser, at).await.unwrap();
        }
        assert_eq!(second.check(&store, &tenant, "bob", guesser, at).await.unwrap(), Some(60), "spread guesses add up");
        assert_eq!(first.check(&store, &tenant, "bob", guesser, at).await.unwrap(), Some(60));
        let owner = ip("203.0.113.9");
        first.record_success(&store, &tenant, "bob", owner).await.unwrap();
        assert_eq!(second.check(&store, &tenant, "bob", owner, at).await.unwrap(), None);
    }

    #[test]
    fn pair_keys_cannot_collide_across_addresses_and_usernames() {
        let [a, _, _] = counter_keys("x", ip("2001:db8::1"));
        let [b, _, _] = counter_keys("1/x", ip("2001:db8::"));
        assert_ne!(a, b);
    }
}
