//! The cache's metrics. The names are referenced by the dashboards: change them only together.
//!
//! - `rsp_cache_requests_total{kind, level="l1|l2", result="hit|miss"}`: lookups per level; a negative
//!   entry found counts as a hit. A lookup skipped because Redis is down counts as an L2 miss.
//! - `rsp_cache_invalidations_total{kind, origin="local|remote"}`: invalidations applied to this replica's
//!   L1; `kind` is `all` for a global one.
//! - `rsp_cache_redis_up`: 1 while the last Redis call succeeded, 0 while Redis is skipped.

use rsp_core::cache::{CacheKind, Invalidation, Origin};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Level {
    L1,
    L2,
}

pub(crate) fn request(kind: CacheKind, level: Level, hit: bool) {
    let level = match level {
        Level::L1 => "l1",
        Level::L2 => "l2",
    };
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!("rsp_cache_requests_total", "kind" => kind.as_str(), "level" => level, "result" => result)
        .increment(1);
}

pub(crate) fn invalidation(invalidation: &Invalidation, origin: Origin) {
    let kind = invalidation.kind().map_or("all", CacheKind::as_str);
    metrics::counter!("rsp_cache_invalidations_total", "kind" => kind, "origin" => origin.as_str()).increment(1);
}

pub(crate) fn redis_up(up: bool) {
    metrics::gauge!("rsp_cache_redis_up").set(if up { 1.0 } else { 0.0 });
}
