//! Two `TwoLevelCache` replicas on a real Redis (`RSP_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`),
//! under a random key prefix deleted afterwards:
//!
//! - `l1 hit`: a `get` answered from memory;
//! - `l2 hit`: a `get` that misses L1 (its TTL is 1 ms) and is answered by Redis (GET + PTTL, one round
//!   trip), then copied into L1;
//! - `invalidation round trip`: `invalidate` of a key on replica A until replica B's subscriber hears it
//!   (SET tombstone + PUBLISH, then pub/sub delivery and B's L1 drop). Each round trip is also recorded
//!   in an HdrHistogram whose p50/p99 are printed at the end.
//!
//! `cargo bench -p rsp-cache --bench cache`. Skips (saying why) when Redis is unreachable.

#![expect(clippy::unwrap_used, reason = "a benchmark fails loudly")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use redis::AsyncCommands;
use rsp_cache::{CacheConfig, TwoLevelCache};
use rsp_core::cache::{Cache, CacheKind, Cached, Invalidation, Lookup, Origin};

/// Keys the L2 benchmark cycles through, so each read finds its L1 entry expired.
const L2_KEYS: usize = 1000;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let url = std::env::var("RSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut config =
        CacheConfig { prefix: format!("rsp-bench-{}", uuid::Uuid::new_v4().simple()), ..Default::default() };
    config.decision.l1_ttl = Duration::from_millis(1);
    let Some((a, b)) = runtime.block_on(replicas(&url, &config)) else { return };

    runtime.block_on(async {
        fill(&a, CacheKind::Client, "bench/l1").await;
        for n in 0..L2_KEYS {
            fill(&a, CacheKind::Decision, &format!("bench/{n}")).await;
        }
    });

    let mut group = c.benchmark_group("cache");
    group.bench_function("l1 hit", |bench| {
        bench.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(a.get(CacheKind::Client, "bench/l1").await.unwrap());
                }
                started.elapsed()
            })
        })
    });

    let mut next = 0usize;
    group.bench_function("l2 hit", |bench| {
        bench.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    next = (next + 1) % L2_KEYS;
                    let found = b.get(CacheKind::Decision, &format!("bench/{next}")).await.unwrap();
                    assert!(matches!(found, Lookup::Hit(_)), "the L2 benchmark must hit redis");
                }
                started.elapsed()
            })
        })
    });

    let mut notices = b.subscribe();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    let mut round = 0u64;
    group.bench_function("invalidation round trip", |bench| {
        bench.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let wanted = Invalidation::key(CacheKind::Client, format!("bench/r{round}"));
                    let started = Instant::now();
                    a.invalidate(wanted.clone()).await.unwrap();
                    loop {
                        let notice = notices.recv().await.unwrap();
                        if notice.invalidation == wanted && notice.origin == Origin::Remote {
                            break;
                        }
                    }
                    let elapsed = started.elapsed();
                    histogram.record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1)).unwrap();
                    total += elapsed;
                }
                total
            })
        })
    });
    group.finish();
    println!(
        "invalidation round trip over {} rounds: p50 {} µs, p99 {} µs, max {} µs",
        histogram.len(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.max()
    );
    runtime.block_on(clean(&url, &config.prefix));
}

async fn replicas(url: &str, config: &CacheConfig) -> Option<(TwoLevelCache, TwoLevelCache)> {
    let a = TwoLevelCache::connect(url, config.clone()).await.unwrap();
    let b = TwoLevelCache::connect(url, config.clone()).await.unwrap();
    if !(a.is_listening() && b.is_listening()) {
        eprintln!("skipped: redis at {url} unreachable");
        return None;
    }
    Some((a, b))
}

async fn fill(cache: &TwoLevelCache, kind: CacheKind, key: &str) {
    let Lookup::Miss(ticket) = cache.get(kind, key).await.unwrap() else { return };
    cache.put(ticket, Cached::Value(Bytes::from_static(b"{\"decision\":\"allow\"}")), None).await;
}

async fn clean(url: &str, prefix: &str) {
    let mut connection = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = connection.keys(format!("{prefix}:*")).await.unwrap();
    if !keys.is_empty() {
        let _: () = connection.del(keys).await.unwrap();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
