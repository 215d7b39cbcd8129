//! The cache's metrics. The names are referenced by the dashboards: change them only together.
//!
//! - `rsp_cache_requests_total{kind, level="l1|l2", result="hit|miss"}`: lookups per level; a negative
//!   entry found counts as a hit. A lookup skipped because Redis is down counts as an L2 miss.
//! - `rsp_cache_invalidations_total{kind, origin="local|remote"}`: invalidations applied to this replica's
//!   L1; `kind` is `all` for a global one.
//! - `rsp_cache_redis_up`: 1 while the last Redis call succeeded, 0 while Redis is skipped.

use std::cell::RefCell;

use metrics::Counter;
use rsp_core::cache::{CacheKind, Invalidation, Origin};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Level {
    L1,
    L2,
}

/// Every (kind, level, result) of `rsp_cache_requests_total`.
const REQUEST_SERIES: usize = CacheKind::ALL.len() * 2 * 2;

thread_local! {
    /// This thread's handles of `rsp_cache_requests_total`, registered at first use: a lookup happens
    /// several times per request, and building its key each time (label vector, hashing, the recorder's
    /// registry) cost more than the in-process lookup it counts.
    static REQUESTS: RefCell<[Option<Counter>; REQUEST_SERIES]> =
        const { RefCell::new([const { None }; REQUEST_SERIES]) };
}

pub(crate) fn request(kind: CacheKind, level: Level, hit: bool) {
    let kind_index = CacheKind::ALL.iter().position(|k| *k == kind).unwrap_or_default();
    let index = kind_index * 4 + usize::from(matches!(level, Level::L2)) * 2 + usize::from(hit);
    REQUESTS.with_borrow_mut(|handles| {
        let Some(slot) = handles.get_mut(index) else { return };
        slot.get_or_insert_with(|| {
            let level = match level {
                Level::L1 => "l1",
                Level::L2 => "l2",
            };
            let result = if hit { "hit" } else { "miss" };
            metrics::counter!("rsp_cache_requests_total", "kind" => kind.as_str(), "level" => level, "result" => result)
        })
        .increment(1);
    });
}

pub(crate) fn invalidation(invalidation: &Invalidation, origin: Origin) {
    let kind = invalidation.kind().map_or("all", CacheKind::as_str);
    metrics::counter!("rsp_cache_invalidations_total", "kind" => kind, "origin" => origin.as_str()).increment(1);
}

pub(crate) fn redis_up(up: bool) {
    metrics::gauge!("rsp_cache_redis_up").set(if up { 1.0 } else { 0.0 });
}
