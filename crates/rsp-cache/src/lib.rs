//! Adapters of the [`Cache`](rsp_core::cache::Cache) port: what the platform keeps in memory and in
//! Redis, and how a write on one replica reaches the memory of every other.
//!
//! # Layout
//! - [`config`]: per-kind capacities and TTLs, Redis timeouts, the key prefix.
//! - `l1`: moka caches per kind (bounded in bytes, TinyLFU admission, a TTL per entry) and the counters
//!   that stop a fill overtaken by an invalidation.
//! - `l2`: entries in Redis behind timeouts and a breaker (`breaker`), so a dead Redis costs almost nothing.
//! - `wire`: Redis key names (`{prefix}:c:{kind}:{key}`), the encoding of entries and tombstones, and the
//!   channel message (`{prefix}:invalidate`).
//! - [`LocalCache`]: L1 alone, for the single process without Redis.
//! - [`TwoLevelCache`]: L1 + L2 + the subscriber task that applies other replicas' invalidations; its doc
//!   states the behaviour when Redis is down and the staleness bounds.
//! - `metrics`: `rsp_cache_requests_total{kind,level,result}`, `rsp_cache_invalidations_total{kind,origin}`,
//!   `rsp_cache_redis_up`.
//!
//! Pick one at start-up and hand it to the use cases as `Arc<dyn Cache>`.

mod breaker;
pub mod config;
mod in_flight;
mod l1;
mod l2;
mod local;
mod metrics;
mod two_level;
mod wire;

pub use config::{CacheConfig, ConfigError, KindConfig, RedisConfig};
pub use local::LocalCache;
pub use two_level::TwoLevelCache;
