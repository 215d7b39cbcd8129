//! Capacities, TTLs and Redis timeouts, per kind. The defaults suit one replica of a small deployment;
//! the binary's configuration overrides them.

use std::time::Duration;

use rsp_core::cache::CacheKind;

/// Sizes and lifetimes of one kind's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindConfig {
    /// Bound of this kind's L1 in bytes (keys plus values); past it TinyLFU decides what stays.
    pub l1_max_bytes: u64,
    /// How long a replica serves an entry from memory without asking L2. It is also the longest a replica
    /// can serve an invalidated entry when it missed the invalidation (Redis unreachable).
    pub l1_ttl: Duration,
    /// How long an entry lives in Redis.
    pub l2_ttl: Duration,
    /// How long "no such record" is remembered, in both levels.
    pub negative_ttl: Duration,
}

impl KindConfig {
    fn defaults(l1_mib: u64, l1_ttl_secs: u64, l2_ttl_secs: u64, negative_ttl_secs: u64) -> Self {
        Self {
            l1_max_bytes: l1_mib * 1024 * 1024,
            l1_ttl: Duration::from_secs(l1_ttl_secs),
            l2_ttl: Duration::from_secs(l2_ttl_secs),
            negative_ttl: Duration::from_secs(negative_ttl_secs),
        }
    }
}

/// How the Redis level behaves, above all when Redis is slow or gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// Bound on one command (GET, SET, PUBLISH): the most a dead or slow Redis adds to a request.
    pub op_timeout: Duration,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on a prefix or kind invalidation, which scans the keyspace.
    pub scan_timeout: Duration,
    /// After a failure, Redis is skipped for this long before one call probes it again.
    pub retry_after: Duration,
    /// How often the subscriber pings its connection, retries failed invalidations and runs the delayed
    /// second pass of prefix invalidations.
    pub maintenance_interval: Duration,
    /// How long an invalidated key refuses fills in Redis, and the delay of a prefix invalidation's second
    /// pass: a read that started before the write and ends after the invalidation cannot re-cache the old
    /// value unless it took longer than this.
    pub tombstone_ttl: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            op_timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(500),
            scan_timeout: Duration::from_secs(2),
            retry_after: Duration::from_secs(1),
            maintenance_interval: Duration::from_millis(500),
            tombstone_ttl: Duration::from_secs(5),
        }
    }
}

/// Everything the cache adapters need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Prefix of every Redis key and of the channel (`{prefix}:c:{kind}:{key}`, `{prefix}:invalidate`), so
    /// deployments or tests can share one Redis.
    pub prefix: String,
    pub client: KindConfig,
    pub signing_keys: KindConfig,
    pub verified_token: KindConfig,
    pub decision: KindConfig,
    pub revocation: KindConfig,
    pub redis: RedisConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            prefix: "rsp".to_owned(),
            client: KindConfig::defaults(16, 30, 300, 10),
            signing_keys: KindConfig::defaults(4, 30, 300, 10),
            // Entries are also capped by each token's `exp` (the `ttl` of `Cache::put`).
            verified_token: KindConfig::defaults(32, 300, 3600, 30),
            // Decision keys carry the policy and entity versions, so an old entry is never wrong, only unused.
            decision: KindConfig::defaults(64, 60, 300, 60),
            // Short: a revocation this replica missed must not be ignored for long.
            revocation: KindConfig::defaults(16, 5, 300, 5),
            redis: RedisConfig::default(),
        }
    }
}

/// Why a cache could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cache prefix must be 1 to 64 characters without spaces, '*', '?', '[', ']' or '\\', got {0:?}")]
    Prefix(String),
    #[error("cache kind {kind}: {reason}")]
    Kind { kind: CacheKind, reason: &'static str },
    #[error("redis {0} must be more than zero")]
    Redis(&'static str),
    #[error("invalid redis url: {0}")]
    Url(String),
}

impl CacheConfig {
    /// The configuration of a stored kind; `None` for [`CacheKind::PolicySnapshot`].
    pub fn kind(&self, kind: CacheKind) -> Option<&KindConfig> {
        match kind {
            CacheKind::Client => Some(&self.client),
            CacheKind::SigningKeys => Some(&self.signing_keys),
            CacheKind::VerifiedToken => Some(&self.verified_token),
            CacheKind::Decision => Some(&self.decision),
            CacheKind::Revocation => Some(&self.revocation),
            CacheKind::PolicySnapshot => None,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 64
            && !self.prefix.chars().any(|c| c.is_whitespace() || matches!(c, '*' | '?' | '[' | ']' | '\\'));
        if !prefix_ok {
            return Err(ConfigError::Prefix(self.prefix.clone()));
        }
        for kind in CacheKind::ALL {
            let Some(config) = self.kind(kind) else { continue };
            let fail = |reason| Err(ConfigError::Kind { kind, reason });
            if config.l1_ttl.is_zero() || config.l2_ttl.is_zero() || config.negative_ttl.is_zero() {
                return fail("every ttl must be more than zero");
            }
            if config.l1_ttl > config.l2_ttl {
                return fail("l1_ttl must not exceed l2_ttl");
            }
            if config.l1_max_bytes == 0 {
                return fail("l1_max_bytes must be more than zero");
            }
        }
        let redis = &self.redis;
        for (name, value) in [
            ("op_timeout", redis.op_timeout),
            ("connect_timeout", redis.connect_timeout),
            ("scan_timeout", redis.scan_timeout),
            ("retry_after", redis.retry_after),
            ("maintenance_interval", redis.maintenance_interval),
            ("tombstone_ttl", redis.tombstone_ttl),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Redis(name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_cover_every_stored_kind() {
        let config = CacheConfig::default();
        config.validate().unwrap();
        for kind in CacheKind::ALL {
            assert_eq!(config.kind(kind).is_some(), kind.is_stored(), "{kind}");
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut config = CacheConfig { prefix: "a b".to_owned(), ..CacheConfig::default() };
        assert!(matches!(config.validate(), Err(ConfigError::Prefix(_))));
        config.prefix = "rsp*".to_owned();
        assert!(matches!(config.validate(), Err(ConfigError::Prefix(_))));
        config.prefix = "rsp".to_owned();
        config.decision.l1_ttl = Duration::from_secs(600);
        assert!(matches!(config.validate(), Err(ConfigError::Kind { kind: CacheKind::Decision, .. })));
        config.decision.l1_ttl = Duration::ZERO;
        assert!(matches!(config.validate(), Err(ConfigError::Kind { kind: CacheKind::Decision, .. })));
        config.decision = CacheConfig::default().decision;
        config.redis.op_timeout = Duration::ZERO;
        assert!(matches!(config.validate(), Err(ConfigError::Redis("op_timeout"))));
    }
}
