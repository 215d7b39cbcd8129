//! The metric names and labels the dashboards reference.

use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusBuilder;
use rsp_cache::TwoLevelCache;
use rsp_core::cache::{Cache, CacheKind, Cached, Invalidation, Lookup};

use crate::helpers::{clean, shared_redis, test_config};

/// Runs `work` on a current-thread runtime with a recorder of its own, and returns the exposition text.
fn recorded<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(work())
    });
    handle.render()
}

fn count(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[test]
fn hits_and_misses_are_counted_per_level_and_kind() {
    let text = recorded(|| async {
        let Some(url) = shared_redis().await else { return };
        let config = test_config();
        let a = TwoLevelCache::connect(&url, config.clone()).await.unwrap();
        let b = TwoLevelCache::connect(&url, config.clone()).await.unwrap();
        let Lookup::Miss(ticket) = a.get(CacheKind::Client, "acme/c1").await.unwrap() else { panic!() };
        a.put(ticket, Cached::Value(Bytes::from_static(b"v")), None).await;
        a.get(CacheKind::Client, "acme/c1").await.unwrap();
        b.get(CacheKind::Client, "acme/c1").await.unwrap();
        a.invalidate(Invalidation::key(CacheKind::Client, "acme/c1")).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        clean(&url, &config.prefix).await;
    });
    if text.is_empty() {
        return; // skipped: no redis
    }
    let requests = |level, result| {
        count(&text, &format!("rsp_cache_requests_total{{kind=\"client\",level=\"{level}\",result=\"{result}\"}}"))
    };
    assert_eq!(requests("l1", "miss"), 2, "A's first read and B's read");
    assert_eq!(requests("l1", "hit"), 1);
    assert_eq!(requests("l2", "miss"), 1);
    assert_eq!(requests("l2", "hit"), 1);
    let invalidations =
        |origin| count(&text, &format!("rsp_cache_invalidations_total{{kind=\"client\",origin=\"{origin}\"}}"));
    assert_eq!(invalidations("local"), 1);
    assert_eq!(invalidations("remote"), 1, "B applied A's invalidation; A skipped its own");
}
